# SPDX-License-Identifier: MIT
# A private PostgreSQL server for a shell suite (todo_pg.sh) and the benchmark
# (bench/todo_pg.sh): a cluster made by initdb in a directory of its own, listening on a
# Unix socket in that directory only (listen_addresses=''), trust authentication for the
# one role it creates, no fsync (the data is thrown away). PostgreSQL refuses to run as
# root: as root the server runs as PG_USER (default nobody), which then owns the directory.
#
#   . lib/pg.sh
#   pg_start DIR || { echo "skip: $PG_WHY"; ... }   # sets PG_CONNINFO
#   pg_kill       # stop at once (-m immediate): clients see their connections cut
#   pg_restart    # start the same cluster again
#   pg_stop       # stop (at exit: call it from the caller's EXIT trap)
#   pg_pids       # the server's processes (to stop them with SIGSTOP, say)
#
# DIR must not exist yet; its parent must be searchable by PG_USER. Every function
# returns 1 with PG_WHY set when it fails; the server's log is $PG_DIR/log.

PG_BIN=${PG_BIN:-}
PG_USER=${PG_USER:-nobody}
PG_DIR='' PG_CONNINFO='' PG_WHY=''

# pg_find_bin: PG_BIN is the directory of initdb and pg_ctl (Debian puts them under
# /usr/lib/postgresql/<major>/bin, outside PATH).
pg_find_bin() {
  local d
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/pg_ctl" ] && return 0
  if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    PG_BIN=$(dirname "$(command -v pg_ctl)"); return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && { PG_BIN=$d; return 0; }
  done
  PG_WHY="PostgreSQL's server programs (initdb, pg_ctl) are not installed (scripts/deps.sh test installs postgresql)"
  return 1
}

# pg_as_owner CMD...: runs CMD as the cluster's owner (PG_USER when we are root).
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

pg_start() {
  PG_DIR=$1
  pg_find_bin || return 1
  mkdir -p "$PG_DIR" || { PG_WHY="cannot create $PG_DIR"; return 1; }
  if [ "$(id -u)" -eq 0 ]; then
    id "$PG_USER" >/dev/null 2>&1 || { PG_WHY="running as root and there is no user $PG_USER to run PostgreSQL as"; return 1; }
    chown "$PG_USER" "$PG_DIR" || { PG_WHY="cannot give $PG_DIR to $PG_USER"; return 1; }
    pg_as_owner test -w "$PG_DIR" ||
      { PG_WHY="$PG_USER cannot reach $PG_DIR (a parent directory is not searchable: set TMPDIR)"; return 1; }
  fi
  if ! pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U chopin --auth=trust -E UTF8 \
       --no-instructions >"$PG_DIR/initdb.log" 2>&1; then
    PG_WHY="initdb failed: $(tail -n 3 "$PG_DIR/initdb.log" | tr '\n' ' ')"
    return 1
  fi
  PG_CONNINFO="host=$PG_DIR user=chopin dbname=postgres"
  pg_restart
}

# pg_restart: starts the cluster of pg_start and waits until it accepts connections.
pg_restart() {
  if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 \
       -o "-c listen_addresses='' -k $PG_DIR -c fsync=off -c max_connections=200" \
       start >"$PG_DIR/pg_ctl.log" 2>&1; then
    PG_WHY="PostgreSQL did not start: $(tail -n 3 "$PG_DIR/log" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
}

pg_kill() {
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 ||
    { PG_WHY="pg_ctl stop -m immediate failed"; return 1; }
}

# pg_stop: stops the server if it runs; safe to call more than once, and before pg_start.
pg_stop() {
  [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] &&
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
  return 0
}

pg_pids() {
  local pm
  pm=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || return 1
  [ -n "$pm" ] || return 1
  echo "$pm" $(pgrep -P "$pm")
}
