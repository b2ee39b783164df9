#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Integration test of the todo REST API (examples/todo_app) over real sockets, with curl.
#
#   bash tests/integration/todo.sh BUILD_DIR        (BUILD_DIR: build, build/asan, ...)
#
# Starts $BUILD_DIR/examples/todo_app on 127.0.0.1 with a port the kernel picks (read back
# from the start banner) and a database in a temporary directory, checks every status of
# the API, concurrent writers on several connections, a clean exit on SIGTERM, and that
# the data survives a restart on the same file. CHOPIN_BACKEND and the other CHOPIN_*
# variables pass through to the server. Prints "RESULT <passed> <failed>" last; exits
# non-zero when a check failed. The server it started is always stopped (trap). The API's
# checks are lib/todo_contract.sh, shared with the PostgreSQL service's todo_pg.sh.
set -u

BUILD=${1:?usage: todo.sh BUILD_DIR}
APP=$BUILD/examples/todo_app
NAME=todo
# shellcheck source=lib/app.sh
. "$(dirname "$0")/lib/app.sh"

# ---- server lifecycle ------------------------------------------------------------------

# Starts the app on the test database and sets BASE; returns 1 if it never listens.
start_server() { app_start HOST=127.0.0.1 CHOPIN_TODO_DB="$TMP/todo.db"; }

# shellcheck source=lib/todo_contract.sh
. "$(dirname "$0")/lib/todo_contract.sh"

# ---- the suite -------------------------------------------------------------------------

if [ ! -x "$APP" ]; then
  fail "$APP not built"
  finish
fi
start_server || finish

todo_contract_checks

# Stop (SIGTERM must exit 0), restart on the same database: the data is still there.
stop_server
start_server || finish
http GET "/todos/$ID1"
expect "get after restart" 200 "$(todo_re "$ID1" 'buy oat milk' true)"
http GET "/todos/$ID2"
expect "get after restart (2)" 200 "$(todo_re "$ID2" replaced true)"
http GET "/todos/$ID_DEL"
expect "deleted stays deleted" 404 "$JSON_ERROR"
http GET /todos
expect "total after restart" 200 "\"total\":$TOTAL\\}\$"
http POST /todos '{"title":"after restart"}'
expect "create after restart" 201 "$(todo_re '[0-9]+' 'after restart' false)"
NEW_ID=$(json_field id)
[ -n "$NEW_ID" ] && ! grep -q "\"id\":$NEW_ID," "$TMP"/writer.* && [ "$NEW_ID" != "$ID1" ] && ok ||
  fail "id $NEW_ID reused after restart"
stop_server

# A bad PORT or CHOPIN_* value stops the app before it creates its temporary database
# directory; a run that created one removes it at exit.
PRIVATE="$TMP/private"
mkdir -p "$PRIVATE"
leftovers() { ls -d "$PRIVATE"/chopin-todo-* 2>/dev/null | wc -l; }
for bad in PORT=99999 'PORT= 2' CHOPIN_WORKERS=+2; do
  env -u CHOPIN_TODO_DB TMPDIR="$PRIVATE" HOST=127.0.0.1 PORT=0 "$bad" \
    timeout -s KILL 10 "$APP" >/dev/null 2>"$TMP/bad.log"
  status=$?
  name=${bad%%=*}
  [ "$status" -ne 0 ] && grep -qE "(^|: )$name=\"" "$TMP/bad.log" && ok ||
    fail "$bad: exit $status, message: $(head -c 300 "$TMP/bad.log")"
  [ "$(leftovers)" -eq 0 ] && ok || fail "$bad: left $(leftovers) chopin-todo-* directories"
done
env -u CHOPIN_TODO_DB TMPDIR="$PRIVATE" HOST=127.0.0.1 PORT=0 CHOPIN_WORKERS=1 "$APP" 2>"$TMP/own.log" &
SERVER_PID=$!
for i in $(seq 100); do
  grep -q 'listening on' "$TMP/own.log" && break
  sleep 0.1
done
[ "$(leftovers)" -eq 1 ] && ok || fail "own temporary database: $(leftovers) directories while running"
stop_server
[ "$(leftovers)" -eq 0 ] && ok || fail "own temporary database directory left at exit"

finish
