#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Integration test of the todo REST API on PostgreSQL (examples/todo_pg) over real sockets.
#
#   bash tests/integration/todo_pg.sh BUILD_DIR        (BUILD_DIR: build, build/asan, ...)
#
# Starts a private PostgreSQL (lib/pg.sh: initdb in the test's temporary directory, a Unix
# socket there only, stopped at the end) and $BUILD_DIR/examples/todo_pg on 127.0.0.1, then:
# - the todo API's contract, the same checks as the SQLite service (lib/todo_contract.sh);
# - the data outlives a restart of the service;
# - a stalled database (its processes stopped): clients that give up cancel their
#   exchanges, the handler deadline answers 504, and the service answers again once the
#   database resumes (the late results are dropped);
# - the database killed (pg_ctl stop -m immediate) under a load of concurrent clients:
#   every answer is a 200/201 or a 503 with a JSON error (no hang: every curl is bounded,
#   none fails; no crash: the process lives), a request while it is down is a 503 at once;
#   then PostgreSQL starts again and the service recovers (polled, no timing asserted).
# Skipped, saying why, when PostgreSQL cannot start here or libpq is not installed (then
# the example is not built). Prints "RESULT <passed> <failed> <skipped>" last.
set -u

BUILD=${1:?usage: todo_pg.sh BUILD_DIR}
APP=$BUILD/examples/todo_pg
NAME=todo_pg
HERE=$(dirname "$0")
# shellcheck source=lib/app.sh
. "$HERE/lib/app.sh"
# shellcheck source=lib/pg.sh
. "$HERE/lib/pg.sh"
# shellcheck source=lib/todo_contract.sh
. "$HERE/lib/todo_contract.sh"

trap 'pg_stop; app_cleanup' EXIT
skip() { skipped=$((skipped + 1)); echo "SKIP $*"; }

# The handler deadline of the stalled-database checks (CHOPIN_HANDLER_TIMEOUT_MS).
DEADLINE_MS=1500
start_server() {
  app_start HOST=127.0.0.1 CHOPIN_TODO_PG="$PG_CONNINFO" CHOPIN_HANDLER_TIMEOUT_MS=$DEADLINE_MS
}
server_alive() {
  kill -0 "$SERVER_PID" 2>/dev/null && ok || fail "$1: the server process is gone"
}

# until_ok TRIES CMD...: runs CMD every 0.2 s until it succeeds; 1 if it never does.
until_ok() {
  local tries=$1 i; shift
  for ((i = 0; i < tries; i++)); do "$@" && return 0; sleep 0.2; done
  return 1
}

# all_answer STATUS N: N requests on fresh connections (so on any worker) all answer STATUS.
all_answer() {
  local want=$1 n=$2 i
  for ((i = 0; i < n; i++)); do
    http GET "/todos/$ID1"
    [ "$STATUS" = "$want" ] || return 1
  done
}

# ---- the suite -------------------------------------------------------------------------

if [ ! -x "$APP" ]; then
  if pkg-config --exists libpq 2>/dev/null; then
    fail "$APP not built"
  else
    skip "libpq is not installed, so $APP is not built (scripts/deps.sh test installs libpq-dev)"
  fi
  finish
fi
chmod 711 "$TMP" # PostgreSQL's user (not root) reaches its directory inside
if ! pg_start "$TMP/pg"; then
  skip "PostgreSQL cannot start here: $PG_WHY"
  finish
fi
start_server || finish

todo_contract_checks

# The data lives in the database, not in the service.
stop_server
start_server || finish
http GET "/todos/$ID1"
expect "get after a restart of the service" 200 "$(todo_re "$ID1" 'buy oat milk' true)"
http GET /todos
expect "total after a restart of the service" 200 "\"total\":$TOTAL\\}\$"

# ---- a stalled database: cancellations and the handler deadline -------------------------

# Every worker connected before the stall (new connections would wait too, unanswered).
all_answer 200 12 && ok || fail "before the stall: $STATUS"
PG_PIDS=$(pg_pids)
if [ -z "$PG_PIDS" ]; then
  fail "cannot find the processes of the test's PostgreSQL"
else
  kill -STOP $PG_PIDS
  # Clients that leave before their answer: their exchanges are cancelled.
  early=()
  for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null --max-time 0.3 "$BASE/todos/$ID1" &
    early+=($!)
    curl -s -o /dev/null --max-time 0.3 -H 'Content-Type: application/json' \
      --data-binary '{"title":"left early"}' "$BASE/todos" &
    early+=($!)
  done
  wait "${early[@]}"
  # One that waits: the deadline answers 504.
  http GET "/todos/$ID1"
  expect "stalled database: the handler deadline" 504
  kill -CONT $PG_PIDS
  server_alive "stalled database"
  until_ok 50 all_answer 200 12 && ok || fail "after the stall: $STATUS ${BODY:0:200}"
fi

# ---- the database killed under load, then back -----------------------------------------

# client N: keep-alive connections of 20 requests each (GETs and POSTs) until told to stop;
# prints every status and curl's exit code ("000 28": it hit its time bound, "000 52": an
# empty reply, "000 56": a reset; man curl, EXIT CODES).
client() {
  local urls=() i
  for i in $(seq 20); do urls+=(-o /dev/null "$BASE/todos/$ID1"); done
  while [ ! -e "$TMP/load.stop" ]; do
    curl -s --max-time 10 -w '%{http_code} %{exitcode}\n' "${urls[@]}"
    curl -s --max-time 10 -o /dev/null -w '%{http_code} %{exitcode}\n' -H 'Content-Type: application/json' \
      --data-binary "{\"title\":\"load $1\"}" "$BASE/todos"
  done
}
# The files are read by name each time: a glob made before the clients start finds none.
load_saw() { grep -qs "^$1 0\$" "$TMP"/load.*; }
load_counts() { cat "$TMP"/load.* | sort | uniq -c | tr '\n' ' '; }
rm -f "$TMP/load.stop"
pids=()
for c in 1 2 3 4 5 6; do
  client "$c" >"$TMP/load.$c" 2>&1 &
  pids+=($!)
done
until_ok 50 load_saw 200 || fail "the load never got a 200: $(load_counts)"
pg_kill || fail "$PG_WHY"
# The load meets the dead database: 503s.
until_ok 100 load_saw 503 && ok || fail "no 503 under load after the database was killed: $(load_counts)"
http GET "/todos/$ID1"
expect "database down: 503" 503 "$JSON_ERROR"
expect_header "database down: Retry-After" "retry-after: 1"
http POST /todos '{"title":"while down"}'
expect "database down: 503 to a write" 503 "$JSON_ERROR"
touch "$TMP/load.stop"
wait "${pids[@]}"
server_alive "database killed"
BAD=$(cat "$TMP"/load.* | grep -cvxE '(200|201|503) 0')
[ "$BAD" -eq 0 ] && ok ||
  fail "under load with the database killed: $BAD answers not 200/201/503: $(load_counts)"

# Back: every worker reconnects (on its own timer), the service answers again.
pg_restart || fail "$PG_WHY"
until_ok 150 all_answer 200 12 && ok || fail "no recovery after the database came back: $STATUS ${BODY:0:200}"
http GET "/todos/$ID1"
expect "after recovery: the data" 200 "$(todo_re "$ID1" 'buy oat milk' true)"
http POST /todos '{"title":"after recovery"}'
expect "after recovery: a write" 201 "$(todo_re '[0-9]+' 'after recovery' false)"
stop_server

finish
