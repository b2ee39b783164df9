#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo's pages in a real browser: headless Chromium (Debian chromium) driven over the
# DevTools protocol by tests/integration/browser.js (with node-ws):
# - /chat (issue 17) in two tabs: one says a line, both pages' DOM show it. Two workers, so
#   the tabs' connections usually land on different ones: the room is publish/subscribe.
# - /upload (issue 18): the form with text fields and three files, sent as the browser
#   encodes multipart/form-data; the answer's sizes and SHA-256 must be the files'.
# Skipped, saying why, without chromium, node or node-ws, or when chromium cannot start.
# Usage: tests/integration/browser.sh BUILD_DIR   (prints "RESULT passed failed skipped")
set -u
. "$(dirname "$0")/lib/banner.sh"
build=${1:-build}
bin=$build/examples/demo
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
skip() { echo "skip: $1" >&2; echo "RESULT 0 0 1"; exit 0; }
command -v chromium >/dev/null || skip "no chromium (Debian: chromium)"
command -v node >/dev/null && node -e 'require("ws")' 2>/dev/null || skip "no node with the ws module (Debian: nodejs node-ws)"
tmp=$(mktemp -d)
pid= cpid=
cleanup() {
  # Chromium's own children (zygote, renderers) share its process group (setsid below).
  [ -n "$cpid" ] && kill -9 -- "-$cpid" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  wait 2>/dev/null
  for _ in 1 2 3 4 5; do rm -rf "$tmp" 2>/dev/null && break; sleep 0.2; done
}
trap cleanup EXIT

PORT=0 CHOPIN_WORKERS=2 CHOPIN_TODO_DB=$tmp/todo.db "$bin" 2>"$tmp/err" &
pid=$!
port=$(banner_port "$tmp/err")
[ -n "$port" ] || { echo "FAIL the demo did not start" >&2; cat "$tmp/err" >&2; echo "RESULT 0 1"; exit 1; }

# --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start. A UTF-8
# locale: in the C locale Chromium cannot open a file whose name is not ASCII (the upload
# check's "Grüße" file arrived empty in a fresh root, whose locale is C).
LC_ALL=C.UTF-8 setsid chromium --headless=new --no-sandbox --disable-gpu --no-first-run --disable-extensions \
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

mkdir "$tmp/files"
out=$(timeout 90 node "$(dirname "$0")/browser.js" "$devtools" "http://127.0.0.1:$port" "$tmp/files" 2>&1)
printf '%s\n' "$out" | grep -v '^PASS' >&2
pass=$(printf '%s\n' "$out" | grep -c '^PASS')
fail=$(printf '%s\n' "$out" | grep -c '^FAIL')
[ "$pass" -eq 0 ] && [ "$fail" -eq 0 ] && fail=1 # the driver never reported
echo "RESULT $pass $fail"
