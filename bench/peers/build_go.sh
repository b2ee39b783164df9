#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds a Go peer of the benchmarks (bench/peers/NAME/main.go) into build/bench/NAME-bench,
# offline, from Debian packages only: golang-go and the Go sources that PACKAGE (with its
# dependencies) installs under /usr/share/gocode. GOPATH mode (GO111MODULE=off,
# GOPATH=/usr/share/gocode): no module proxy, no go.mod; the build cache is a private
# directory in build/. build_fasthttp.sh, build_sleep.sh and build_todo_pg_go.sh name
# their peer and package and call this.
#
# Usage: bench/peers/build_go.sh NAME PACKAGE LABEL [-f]
#   LABEL names PACKAGE in the results' header ("fasthttp", "lib/pq"); -f rebuilds even if
#   the binary is up to date.
# Exit status: 0 built or up to date; 2 a package is missing (why on stdout, nothing built);
# 1 the build failed. Progress goes to stderr. Variables: BUILD (default build/), PEER_GO
# (default /usr/bin/go: Debian's).
set -uo pipefail

NAME=$1 PKG=$2 LABEL=$3
PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PEERS/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SRC=$PEERS/$NAME/main.go
WORK=$BUILD/bench/$NAME
BIN=$BUILD/bench/$NAME-bench
GOPATH_DEB=/usr/share/gocode
GO=${PEER_GO:-/usr/bin/go}

missing=()
for p in golang-go "$PKG"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ ! -x "$GO" ]; then
    echo "Debian packages missing: ${missing[*]:-golang-go} (scripts/deps.sh bench installs them)"
    exit 2
fi

if [ "${4:-}" != -f ] && [ -x "$BIN" ] && [ "$BIN" -nt "$SRC" ] && [ "$BIN" -nt "${BASH_SOURCE[0]}" ]; then
    exit 0
fi

mkdir -p "$WORK/cache" "$WORK/tmp"
echo "bench: building the $NAME peer: GO111MODULE=off GOPATH=$GOPATH_DEB $GO build" >&2
if ! (cd "$WORK" && env -u GOROOT GO111MODULE=off GOPATH="$GOPATH_DEB" GOFLAGS= GOPROXY=off \
        GOCACHE="$WORK/cache" GOTMPDIR="$WORK/tmp" CGO_ENABLED=0 \
        "$GO" build -trimpath -o "$BIN.tmp" "$SRC" >&2); then
    echo "bench: building the $NAME peer failed (see above)" >&2
    exit 1
fi
mv "$BIN.tmp" "$BIN" || exit 1
# The versions that went in, for the results' header.
echo "$LABEL $(dpkg-query -W -f='${Version}' "$PKG" | sed 's/^[0-9]*://; s/-[^-]*$//'), $("$GO" version | cut -d' ' -f3)" > "$BIN.versions"
echo "bench: built ${BIN#"$ROOT"/} ($(cat "$BIN.versions"))" >&2
