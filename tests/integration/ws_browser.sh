#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo's chat page in a real browser (issue 17): headless Chromium (Debian chromium)
# opens /chat in two tabs, one says a line, and the test reads both pages' DOM for it
# (tests/integration/ws_browser.js, over the DevTools protocol with node-ws). Two workers,
# so the tabs' connections usually land on different ones: the room is publish/subscribe.
# Skipped, saying why, without chromium, node or node-ws, or when chromium cannot start.
# Usage: tests/integration/ws_browser.sh BUILD_DIR   (prints "RESULT passed failed skipped")
set -u
build=${1:-build}
bin=$build/examples/demo
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
skip() { echo "skip: $1" >&2; echo "RESULT 0 0 1"; exit 0; }
command -v chromium >/dev/null || skip "no chromium (Debian: chromium)"
command -v node >/dev/null && node -e 'require("ws")' 2>/dev/null || skip "no node with the ws module (Debian: nodejs node-ws)"
tmp=$(mktemp -d)
pid= cpid=
cleanup() {
  [ -n "$cpid" ] && kill -9 "$cpid" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

PORT=0 CHOPIN_WORKERS=2 CHOPIN_TODO_DB=$tmp/todo.db "$bin" 2>"$tmp/err" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/err")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL the demo did not start" >&2; cat "$tmp/err" >&2; echo "RESULT 0 1"; exit 1; }

# --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
chromium --headless=new --no-sandbox --disable-gpu --no-first-run --disable-extensions \
  --remote-debugging-port=0 --user-data-dir="$tmp/profile" about:blank >"$tmp/chromium.log" 2>&1 &
cpid=$!
devtools=
for _ in $(seq 150); do
  [ -s "$tmp/profile/DevToolsActivePort" ] &&
    devtools="ws://127.0.0.1:$(sed -n 1p "$tmp/profile/DevToolsActivePort")$(sed -n 2p "$tmp/profile/DevToolsActivePort")"
  case $devtools in */devtools/*) break ;; esac
  kill -0 "$cpid" 2>/dev/null || break
  sleep 0.1
done
case $devtools in
  */devtools/*) ;;
  *) tail -5 "$tmp/chromium.log" >&2; skip "chromium did not start (its log above)" ;;
esac

out=$(timeout 60 node "$(dirname "$0")/ws_browser.js" "$devtools" "http://127.0.0.1:$port" 2>&1)
printf '%s\n' "$out" | grep -v '^PASS' >&2
pass=$(printf '%s\n' "$out" | grep -c '^PASS')
fail=$(printf '%s\n' "$out" | grep -c '^FAIL')
[ "$pass" -eq 0 ] && [ "$fail" -eq 0 ] && fail=1 # the driver never reported
echo "RESULT $pass $fail"
