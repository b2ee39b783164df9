#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the sleep peer of bench/later.sh (bench/peers/sleep/main.go: net/http and fasthttp)
# into build/bench/sleep-bench, offline, from Debian packages only: golang-go and the Go
# sources that golang-github-valyala-fasthttp-dev (with its dependencies) installs under
# /usr/share/gocode. GOPATH mode (GO111MODULE=off, GOPATH=/usr/share/gocode): no module
# proxy, no go.mod; the build cache is a private directory in build/.
#
# Usage: bench/peers/build_sleep.sh [-f]     (-f: rebuild even if the binary is up to date)
# Exit status: 0 built or up to date; 2 a package is missing (why on stdout, nothing built);
# 1 the build failed. Progress goes to stderr. Variables: BUILD (default build/), FASTHTTP_GO
# (default /usr/bin/go: Debian's).
set -uo pipefail

PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PEERS/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SRC=$PEERS/sleep/main.go
WORK=$BUILD/bench/sleep
BIN=$BUILD/bench/sleep-bench
GOPATH_DEB=/usr/share/gocode
GO=${FASTHTTP_GO:-/usr/bin/go}
PKGS="golang-go golang-github-valyala-fasthttp-dev"

missing=()
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ ! -x "$GO" ]; then
    echo "Debian packages missing: ${missing[*]:-golang-go} (scripts/deps.sh bench installs them)"
    exit 2
fi

if [ "${1:-}" != -f ] && [ -x "$BIN" ] && [ "$BIN" -nt "$SRC" ] && [ "$BIN" -nt "${BASH_SOURCE[0]}" ]; then
    exit 0
fi

mkdir -p "$WORK/cache" "$WORK/tmp"
echo "bench: building the sleep peer: GO111MODULE=off GOPATH=$GOPATH_DEB $GO build" >&2
if ! (cd "$WORK" && env -u GOROOT GO111MODULE=off GOPATH="$GOPATH_DEB" GOFLAGS= GOPROXY=off \
        GOCACHE="$WORK/cache" GOTMPDIR="$WORK/tmp" CGO_ENABLED=0 \
        "$GO" build -trimpath -o "$BIN.tmp" "$SRC" >&2); then
    echo "bench: building the sleep peer failed (see above)" >&2
    exit 1
fi
mv "$BIN.tmp" "$BIN" || exit 1
# The versions that went in, for the results' header.
echo "fasthttp $(dpkg-query -W -f='${Version}' golang-github-valyala-fasthttp-dev | sed 's/^[0-9]*://; s/-[^-]*$//'), $("$GO" version | cut -d' ' -f3)" > "$BIN.versions"
echo "bench: built ${BIN#"$ROOT"/} ($(cat "$BIN.versions"))" >&2
