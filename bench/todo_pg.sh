#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# GET /todos/:id of the todo API, three ways, side by side (issue 14, Benchmarks):
#   chopin-pg      build/examples/todo_pg: PostgreSQL through libpq's asynchronous API,
#                  the answer deferred until the query returns (one connection, pipelined)
#   chopin-sqlite  build/examples/todo_app: SQLite, the statement run in the handler
#   go-pg          bench/peers/todo_pg_go: Go net/http + database/sql + lib/pq
#                  (Debian's golang-github-lib-pq-dev), a pool of 8 connections
# Each server runs one worker (GOMAXPROCS=1 for Go) pinned to CPU 1, wrk one thread pinned
# to CPU 0, and PostgreSQL (a private cluster, tests/integration/lib/pg.sh) to CPU 0 too,
# so the server's core runs nothing else. Reported per request: the server's CPU time and
# PostgreSQL's (all its processes), beside req/s; interleaved rounds, medians [min-max],
# and ratios to chopin-pg round by round. The row read is one of TODO_ROWS todos seeded
# through each service's POST at the start.
#
# Usage: bench/todo_pg.sh
#   BENCH_DURATION=5 BENCH_ROUNDS=5 BENCH_WARMUP=1 BENCH_CONNS=64 TODO_ROWS=100
#   TODO_SERVERS="chopin-pg chopin-sqlite go-pg"  CHOPIN_BACKEND=epoll (of both Chopin ones)
#   BUILD=build (where the examples are; results go to $BUILD/bench/todo_pg-*.txt)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
# shellcheck source=../tests/integration/lib/pg.sh
source "$ROOT/tests/integration/lib/pg.sh"

DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-5}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-64}
ROWS=${TODO_ROWS:-100}
SERVERS=${TODO_SERVERS:-chopin-pg chopin-sqlite go-pg}
BACKEND=${CHOPIN_BACKEND:-epoll}
ID=$(( (ROWS + 1) / 2 ))
RESULTS=$OUT/todo_pg-$(date +%Y-%m-%d-%H%M%S).txt
PG_CPU=$CLIENT_CPU
TODO_RE='^\{"id":[0-9]+,"title":"todo [0-9]+","done":false,"created_at":[0-9]+\}$'

say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }
trap 'pg_stop; cleanup' EXIT

# server_env NAME PORT: sets SERVER_ENV and SERVER_CMD for NAME.
server_env() {
    case $1 in
        chopin-pg)
            SERVER_ENV=(PORT="$2" HOST=127.0.0.1 CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1
                        CHOPIN_BACKEND="$BACKEND" CHOPIN_TODO_PG="$PG_CONNINFO")
            SERVER_CMD=("$BUILD/examples/todo_pg") ;;
        chopin-sqlite)
            SERVER_ENV=(PORT="$2" HOST=127.0.0.1 CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1
                        CHOPIN_BACKEND="$BACKEND" CHOPIN_TODO_DB="$BENCH_TMP/todo.db")
            SERVER_CMD=("$BUILD/examples/todo_app") ;;
        go-pg)
            SERVER_ENV=(GOMAXPROCS=1)
            SERVER_CMD=("$OUT/todo_pg_go-bench" "$2" "$PG_CONNINFO sslmode=disable") ;;
        *) die "unknown server $1 (known: chopin-pg chopin-sqlite go-pg)" ;;
    esac
}

# start NAME: the server on a fresh port, pinned; waits until GET /todos/ID answers a todo.
start() {
    local i got
    free_port
    SERVER_PORT=$FREE_PORT
    server_env "$1" "$SERVER_PORT"
    env "${SERVER_ENV[@]}" taskset -c "$SERVER_CPU" "${SERVER_CMD[@]}" > "$BENCH_TMP/$1.log" 2>&1 &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    for ((i = 0; i < 100; i++)); do
        port_listening "$SERVER_PORT" && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    got=$(curl -s --max-time 5 "http://127.0.0.1:$SERVER_PORT/todos/$ID")
    [[ $got =~ $TODO_RE ]] && return 0
    log "bench: $1: GET /todos/$ID answered '$got'; its log:"
    tail -n 10 "$BENCH_TMP/$1.log" >&2
    return 1
}

stop() { server_stop; }

# seed NAME: TODO_ROWS todos through the service's POST (one keep-alive connection).
seed() {
    local urls=() i
    for ((i = 1; i <= ROWS; i++)); do urls+=(-o /dev/null "http://127.0.0.1:$SERVER_PORT/todos"); done
    curl -s --max-time 60 -H 'Content-Type: application/json' --data-binary '{"title":"todo 1"}' \
        -w '%{http_code}\n' "${urls[@]}" | grep -cx 201 | grep -qx "$ROWS" ||
        die "$1: seeding $ROWS todos failed"
}

start_postgres() {
    chmod 755 "$BENCH_TMP"
    pg_start "$BENCH_TMP/pg" || die "PostgreSQL: $PG_WHY"
    local p
    for p in $(pg_pids); do taskset -a -cp "$PG_CPU" "$p" > /dev/null; done
}

# run ROUND NAME: one measured wrk run; appends "R round name requests rps server_ticks
# db_ticks non2xx socket_errors" to the results.
run() {
    local out=$BENCH_TMP/wrk.out wrk s0 s1 d0 d1 pm parsed req rps non2xx sock
    wrk=(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" --timeout 2s "http://127.0.0.1:$SERVER_PORT/todos/$ID")
    wait_quiet
    [ "$WARMUP" != 0 ] && "${wrk[@]}" -d"$WARMUP"s > /dev/null 2>&1
    pm=$(head -n 1 "$PG_DIR/data/postmaster.pid")
    s0=$(tree_ticks "$SERVER_PID") d0=$(tree_ticks "$pm")
    "${wrk[@]}" -d"$DURATION"s > "$out" 2>&1
    s1=$(tree_ticks "$SERVER_PID") d1=$(tree_ticks "$pm")
    parsed=$(wrk_parse "$out")
    read -r req rps non2xx sock _ <<< "$parsed"
    say "R $1 $2 $req $rps $((s1 - s0)) $((d1 - d0)) $non2xx $sock"
    log "bench: round $1/$ROUNDS $2: $rps req/s$([ "$non2xx$sock" = 00 ] || echo " [non-2xx $non2xx, socket errors $sock]")"
}

report() {
    awk -v servers="$SERVERS" -v hz="$CLK_TCK" -v rounds="$ROUNDS" -v duration="$DURATION" '
    function median(a, n,   b, i, j, t) {
        for (i = 1; i <= n; i++) b[i] = a[i]
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
        lo = b[1]; hi = b[n]
        return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
    }
    function stat(k, f,   i, a, n) {
        n = 0
        for (i = 1; i <= rounds; i++) if ((k, i) in ok) a[++n] = v[k, i, f]
        if (!n) return "-"
        m = median(a, n)
        return sprintf(f == "rps" ? "%.0f [%.0f-%.0f]" : "%.2f [%.2f-%.2f]", m, lo, hi)
    }
    function paired(k, b, f,   i, a, n) {
        n = 0
        for (i = 1; i <= rounds; i++)
            if ((k, i) in ok && (b, i) in ok && v[b, i, f] > 0) a[++n] = v[k, i, f] / v[b, i, f]
        if (!n) return "-"
        m = median(a, n)
        return sprintf("%.2f [%.2f-%.2f]", m, lo, hi)
    }
    $1 == "R" {
        k = $3; r = $2
        if ($8 != 0 || $9 != 0 || $4 == 0) { bad[k]++; next }
        ok[k, r] = 1
        v[k, r, "rps"] = $5
        v[k, r, "srv"] = $6 / hz * 1e6 / $4
        v[k, r, "db"] = $7 / hz * 1e6 / $4
        v[k, r, "all"] = ($6 + $7) / hz * 1e6 / $4
    }
    END {
        n = split(servers, S, " ")
        printf "GET /todos/:id  (median of %d rounds x %ss, [min-max]; CPU in us per request)\n", rounds, duration
        printf "%-14s %-24s %-22s %-22s %-22s\n", "server", "req/s", "server CPU", "PostgreSQL CPU", "server + PostgreSQL"
        for (i = 1; i <= n; i++) {
            k = S[i]
            printf "%-14s %-24s %-22s %-22s %-22s%s\n", k, stat(k, "rps"), stat(k, "srv"),
                k == "chopin-sqlite" ? "(none)" : stat(k, "db"), stat(k, "all"),
                bad[k] ? sprintf("  ! %d runs with errors left out", bad[k]) : ""
        }
        print ""
        print "paired ratios to chopin-pg (round by round, median [min-max]):"
        for (i = 1; i <= n; i++) {
            k = S[i]
            if (k == "chopin-pg") continue
            printf "  %-14s req/s %s, server CPU %s, server + PostgreSQL CPU %s\n", k,
                paired(k, "chopin-pg", "rps"), paired(k, "chopin-pg", "srv"), paired(k, "chopin-pg", "all")
        }
    }' "$RESULTS"
}

main() {
    local s active=() round i n why
    [ "$(nproc --all)" -gt "$SERVER_CPU" ] || die "needs CPUs $CLIENT_CPU and $SERVER_CPU"
    command -v wrk > /dev/null || die "wrk is not installed (scripts/deps.sh bench)"
    for s in $SERVERS; do
        case $s in
            chopin-pg) [ -x "$BUILD/examples/todo_pg" ] || die "$BUILD/examples/todo_pg not built (make; needs libpq-dev)" ;;
            chopin-sqlite) [ -x "$BUILD/examples/todo_app" ] || die "$BUILD/examples/todo_app not built (make)" ;;
            go-pg) why=$(peer_build todo_pg_go); [ -z "$why" ] || { log "bench: skipping go-pg: $why"; continue; } ;;
        esac
        active+=("$s")
    done
    SERVERS=${active[*]}
    mkdir -p "$OUT"
    : > "$RESULTS"
    start_postgres
    say "# date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    say "# machine: $(uname -srm), $(nproc --all) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    say "# $("$PG_BIN/postgres" --version), libpq $(pkg-config --modversion libpq 2>/dev/null), SQLite $(pkg-config --modversion sqlite3 2>/dev/null)$([ -s "$OUT/todo_pg_go-bench.versions" ] && echo ", $(cat "$OUT/todo_pg_go-bench.versions")")"
    say "# invocation: BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_WARMUP=$WARMUP BENCH_CONNS=$CONNS TODO_ROWS=$ROWS TODO_SERVERS=\"$SERVERS\" CHOPIN_BACKEND=$BACKEND BUILD=${BUILD#"$ROOT"/} bench/todo_pg.sh"
    say "# load: taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d${DURATION}s --timeout 2s http://127.0.0.1:PORT/todos/$ID (after ${WARMUP}s of the same)"
    say "# PostgreSQL: initdb, listen_addresses='', a Unix socket, fsync=off, all its processes on CPU $PG_CPU"
    for s in $SERVERS; do
        server_env "$s" PORT
        say "#   $s: $(shell_words "${SERVER_ENV[@]}" taskset -c "$SERVER_CPU" "${SERVER_CMD[@]}" | sed "s|$BENCH_TMP|\$TMP|g; s|$ROOT/||g")"
    done
    # The rows, through each service's POST (PostgreSQL's table is made by todo_pg).
    case " $SERVERS " in *" chopin-pg "* | *" go-pg "*) start_seed chopin-pg ;; esac
    case " $SERVERS " in *" chopin-sqlite "*) start_seed chopin-sqlite ;; esac
    say "# raw: R round server requests req/s server_ticks postgres_ticks non2xx socket_errors (CLK_TCK=$CLK_TCK)"
    read -r -a active <<< "$SERVERS"
    n=${#active[@]}
    for ((round = 1; round <= ROUNDS; round++)); do
        for ((i = 0; i < n; i++)); do
            s=${active[$(((i + round - 1) % n))]}
            start "$s" || die "$s did not start"
            run "$round" "$s"
            stop
        done
    done
    echo | tee -a "$RESULTS"
    report | tee -a "$RESULTS"
    say "raw results and this table: ${RESULTS#"$ROOT"/}"
}

# start_seed NAME: starts NAME once to fill its database with TODO_ROWS todos.
start_seed() {
    local i
    free_port
    SERVER_PORT=$FREE_PORT
    server_env "$1" "$SERVER_PORT"
    env "${SERVER_ENV[@]}" "${SERVER_CMD[@]}" > "$BENCH_TMP/$1.seed.log" 2>&1 &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    for ((i = 0; i < 100; i++)); do port_listening "$SERVER_PORT" && break; sleep 0.1; done
    seed "$1"
    stop
}

main "$@"
