#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Go net/http + database/sql peer of bench/todo_pg.sh
# (bench/peers/todo_pg_go/main.go) into build/bench/todo_pg_go-bench, offline, the way
# build_fasthttp.sh builds its peer: Debian's golang-go in GOPATH mode over the sources
# that golang-github-lib-pq-dev installs under /usr/share/gocode (no module proxy).
#
# Usage: bench/peers/build_todo_pg_go.sh [-f]   (-f: rebuild even if up to date)
# Exit status: 0 built or up to date; 2 a package is missing (why on stdout); 1 the build
# failed. Variables: BUILD (default build/).
set -uo pipefail

PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$PEERS/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SRC=$PEERS/todo_pg_go/main.go
WORK=$BUILD/bench/todo_pg_go
BIN=$BUILD/bench/todo_pg_go-bench
GO=/usr/bin/go

missing=()
for p in golang-go golang-github-lib-pq-dev; do
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
echo "bench: building the Go database/sql peer: GO111MODULE=off GOPATH=/usr/share/gocode $GO build" >&2
if ! (cd "$WORK" && env -u GOROOT GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off \
        GOCACHE="$WORK/cache" GOTMPDIR="$WORK/tmp" CGO_ENABLED=0 \
        "$GO" build -trimpath -o "$BIN.tmp" "$SRC" >&2); then
    echo "bench: building the Go database/sql peer failed (see above)" >&2
    exit 1
fi
mv "$BIN.tmp" "$BIN" || exit 1
echo "lib/pq $(dpkg-query -W -f='${Version}' golang-github-lib-pq-dev | sed 's/^[0-9]*://; s/-[^-]*$//'), $("$GO" version | cut -d' ' -f3)" > "$BIN.versions"
echo "bench: built ${BIN#"$ROOT"/} ($(cat "$BIN.versions"))" >&2
