#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Server-sent events from the demo's /events read by a real client: Debian's
# node-eventsource (scripts/deps.sh test). Ids and data, the client's own reconnection
# with Last-Event-ID resuming the count, an explicit Last-Event-ID, and the server
# noticing the client leaving (/events/open back to 0). Skipped, saying why, without
# node or the package.
# Usage: tests/integration/sse.sh BUILD_DIR   (prints "RESULT passed failed skipped")
set -u
. "$(dirname "$0")/lib/banner.sh"
build=${1:-build}
bin=$build/examples/demo
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
if ! command -v node >/dev/null || ! node -e 'require("eventsource")' 2>/dev/null; then
  echo "skip: no node with the eventsource module (Debian: nodejs node-eventsource)" >&2
  echo "RESULT 0 0 1"
  exit 0
fi
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

PORT=0 CHOPIN_WORKERS=2 CHOPIN_TODO_DB=$tmp/todo.db "$bin" 2>"$tmp/err" &
pid=$!
port=$(banner_port "$tmp/err")
out=$(timeout 60 node "$(dirname "$0")/sse_client.js" "http://127.0.0.1:$port" 2>&1)
printf '%s\n' "$out" | grep -v '^PASS' >&2
pass=$(printf '%s\n' "$out" | grep -c '^PASS')
fail=$(printf '%s\n' "$out" | grep -c '^FAIL')
[ "$pass" -eq 0 ] && [ "$fail" -eq 0 ] && fail=1 # the client never reported

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
if [ "$rc" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL SIGTERM exit $rc" >&2; fi
echo "RESULT $pass $fail"
