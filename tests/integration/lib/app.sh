# SPDX-License-Identifier: MIT
# The harness of the shell suites that drive an example server over real sockets (todo.sh,
# bookmarks.sh): counters and the RESULT line, a scratch directory, and a server started
# on a port the kernel picks (read back from its banner) and stopped with SIGTERM.
#
# Source it after setting APP (the server binary) and NAME (a word for the scratch
# directory). It sets TMP, and after app_start, SERVER_PID, PORT and BASE.

CURL=(curl -sS --max-time 10)
passed=0 failed=0 skipped=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chopin-$NAME-test.XXXXXX")
SERVER_PID='' BASE='' PORT=''

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
  [ "$failed" -ne 0 ] && [ -s "$TMP/server.log" ] && { echo "--- server log (tail)"; tail -n 20 "$TMP/server.log"; }
  echo "RESULT $passed $failed $skipped"
  [ "$failed" -eq 0 ]
  exit
}
app_cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap app_cleanup EXIT
trap 'fail "interrupted"; finish' INT TERM

# app_start [-u VAR...] [VAR=value...]: starts $APP on PORT=0 with that environment (the
# CHOPIN_* variables of the caller pass through, but CHOPIN_QUIET: the banner is read),
# sets SERVER_PID, PORT and BASE; returns 1 if it never listens.
app_start() {
  : >"$TMP/server.log"
  env -u CHOPIN_QUIET PORT=0 CHOPIN_WORKERS="${CHOPIN_WORKERS:-4}" env "$@" "$APP" \
    >>"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  local i
  PORT=''
  for i in $(seq 100); do # at most ~10 s, an ASan build starts slowly
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$TMP/server.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$PORT" ]; then
    fail "server did not start"
    return 1
  fi
  BASE="http://127.0.0.1:$PORT"
}

# SIGTERM, then the exit status must be 0 within the drain bound (else KILL).
stop_server() {
  local pid=$SERVER_PID i status
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  wait "$pid"; status=$?
  SERVER_PID=''
  if [ "$status" -eq 0 ]; then ok; else fail "server exit status after SIGTERM: $status"; fi
}
