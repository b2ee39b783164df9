#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# systemd without systemd running (issue 19):
#   - socket activation with systemd-socket-activate (Debian systemd): the demo takes the
#     socket it is given (LISTEN_FDS) as the item of CHOPIN_LISTEN with its address, opens
#     nothing else for it, and serves the first connection, the one that started it; an
#     inherited socket no item names is served as given, beside the items;
#   - sd_notify to a notify socket of the test's own (a path, and an abstract name): READY=1
#     with MAINPID once it listens, WATCHDOG=1 repeatedly when WATCHDOG_USEC asks, STOPPING=1
#     at SIGTERM; across a SIGUSR2 restart, READY=1 from the new process and no STOPPING=1
#     from the old.
# Each part is skipped, saying why, when its tool is missing.
# Usage: tests/integration/systemd.sh BUILD_DIR   (prints "RESULT passed failed skipped")
set -u
build=${1:-build}
bin=$build/examples/demo
tmp=$(mktemp -d)
pass=0 fail=0 skip=0
pids=()
cleanup() {
  { for p in "${pids[@]}"; do kill -9 "$p"; done; wait; } 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*" >&2; }
check() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # file, pattern: 0 once the file holds the pattern (10 s at most)
  for _ in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ----- socket activation -----------------------------------------------------------------
activation_part() {
  if ! command -v systemd-socket-activate >/dev/null; then
    echo "skip socket activation: no systemd-socket-activate (Debian: systemd)" >&2
    skip=$((skip + 1)); return
  fi
  local port
  port=$(free_port)
  # The demo is started by the first connection, and is given the listening socket.
  systemd-socket-activate -l "127.0.0.1:$port" --fdname=web \
    -E CHOPIN_LISTEN="127.0.0.1:$port" -E CHOPIN_WORKERS=2 -E CHOPIN_TODO_DB="$tmp/todo.db" \
    -E CHOPIN_BACKEND="${CHOPIN_BACKEND:-auto}" "$bin" 2>"$tmp/activate.err" &
  local apid=$!
  pids+=($apid)
  for _ in $(seq 50); do grep -qs "Listening on" "$tmp/activate.err" && break; sleep 0.1; done
  check "activation: the first connection is served" \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/plaintext")" 200
  check "activation: and the next" \
    "$(curl -s --max-time 5 "http://127.0.0.1:$port/plaintext")" "Hello, World!"
  # One listener: the inherited socket, taken by the item; nothing else opened.
  check "activation: listening on" "$(sed -n 's/.*listening on //p' "$tmp/activate.err")" \
    "127.0.0.1:$port"
  kill -TERM "$apid"; wait "$apid" 2>/dev/null
  # An inherited socket that no item names is served as given, beside the items.
  port=$(free_port)
  systemd-socket-activate -l "127.0.0.1:$port" \
    -E CHOPIN_LISTEN="unix:$tmp/a.sock" -E CHOPIN_WORKERS=1 -E CHOPIN_TODO_DB="$tmp/todo.db" \
    -E CHOPIN_BACKEND="${CHOPIN_BACKEND:-auto}" "$bin" 2>"$tmp/activate2.err" &
  apid=$!
  pids+=($apid)
  for _ in $(seq 50); do grep -qs "Listening on" "$tmp/activate2.err" && break; sleep 0.1; done
  check "activation: an unnamed socket" \
    "$(curl -s --max-time 5 "http://127.0.0.1:$port/plaintext")" "Hello, World!"
  check "activation: beside the Unix item" \
    "$(curl -s --max-time 5 --unix-socket "$tmp/a.sock" http://x/plaintext)" "Hello, World!"
  kill -TERM "$apid"; wait "$apid" 2>/dev/null
}

# ----- sd_notify ---------------------------------------------------------------------------
# A notify socket: every datagram received goes to $2 as one line ("|" for newlines).
notify_socket() { # address (path, or @abstract), log
  python3 -u -c '
import socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
out = open(sys.argv[2], "a", buffering=1)
out.write("BOUND\n")
while True:
    out.write(s.recv(4096).decode().replace("\n", "|") + "\n")
' "$1" "$2" &
  pids+=($!)
  wait_for "$2" BOUND
}

notify_part() { # notify socket address, label
  local log=$tmp/notify.$2 err=$tmp/notify.$2.err
  if ! command -v python3 >/dev/null; then
    echo "skip sd_notify: no python3 for the notify socket" >&2; skip=$((skip + 1)); return
  fi
  notify_socket "$1" "$log" || { bad "$2: notify socket did not start"; return; }
  NOTIFY_SOCKET=$1 WATCHDOG_USEC=200000 CHOPIN_LISTEN=127.0.0.1:0 CHOPIN_WORKERS=2 \
    CHOPIN_TODO_DB=$tmp/todo.db "$bin" 2>"$err" &
  local pid=$!
  pids+=($pid)
  wait_for "$log" "READY=1" && ok || bad "$2: no READY=1"
  grep -q "READY=1|MAINPID=$pid|STATUS=127.0.0.1:" "$log" && ok || bad "$2: READY without MAINPID=$pid: $(cat "$log")"
  # Pings every 100 ms (WATCHDOG_USEC / 2): several within a second.
  sleep 1
  local pings
  pings=$(grep -c '^WATCHDOG=1$' "$log")
  [ "$pings" -ge 3 ] && ok || bad "$2: $pings watchdog pings in a second"
  grep -q STOPPING "$log" && bad "$2: STOPPING before the stop" || ok
  if [ "$2" = path ]; then
    # A restart: the new process says READY=1 with its own pid; the old one no STOPPING.
    kill -USR2 "$pid"
    wait_for "$err" "restart: pid [0-9]* listens" || bad "$2: no restart: $(tail -3 "$err")"
    local new
    new=$(sed -n 's/^chopin: restart: pid \([0-9]*\) listens.*/\1/p' "$err")
    pids+=($new) # no child of ours: cleanup ends it by its pid
    wait "$pid"
    grep -q "READY=1|MAINPID=$new|" "$log" && ok || bad "$2: no READY=1 from the new pid $new"
    grep -q STOPPING "$log" && bad "$2: STOPPING from the process that handed over" || ok
    pid=$new
  fi
  kill -TERM "$pid"
  wait_for "$log" "^STOPPING=1$" && ok || bad "$2: no STOPPING=1 at SIGTERM: $(tail -3 "$log")"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}

if [ ! -x "$bin" ]; then
  echo "no $bin: build it first" >&2; echo "RESULT 0 1"; exit 1
fi
command -v curl >/dev/null && command -v python3 >/dev/null || {
  echo "skip: needs curl and python3" >&2; echo "RESULT 0 0 1"; exit 0; }
activation_part
notify_part "$tmp/notify.sock" path
notify_part "@chopin-test-$$" abstract
echo "RESULT $pass $fail $skip"
[ "$fail" -eq 0 ]
