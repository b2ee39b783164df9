#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Answers that come later (issue 14, Benchmarks), in two parts, servers pinned to CPU 1 and
# wrk to CPU 0 as in run.sh:
#
#  A. What deferring costs: bench/later_server.c gives the same 13-byte answer five ways
#     (/sync, /now: deferred and finished in the handler, /timer: finished from a 0 ms
#     timer, /post: from a function posted to its own worker, /pool: after a round trip
#     through the offload pool with no work). One worker, one pool thread, 64 connections;
#     server CPU time per request (all threads, /proc/PID/stat) over interleaved rounds,
#     the median, and its ratio to /sync.
#     And the todo service's GET /todos/:id with its SQLite statement on the worker and on
#     the pool (/todo-worker/42, /todo-pool/42: issue 14, point 5).
#  B. 10,000 connections, each request answered after 100 ms (/sleep?ms=100): chopin (a
#     timer, epoll and io_uring) against Go's net/http and fasthttp (a time.Sleep handler,
#     bench/peers/sleep, GOMAXPROCS=1): req/s against the Little's-law bound
#     (connections / 0.1 s), server CPU time per request, CPU use, and peak RSS (VmHWM).
#     A fresh server per run.
#
# Usage: bench/later.sh          (after make; BUILD=dir for another tree)
# Variables: LATER_ROUNDS (3), LATER_SECONDS (5, part A), LATER_SLEEP_SECONDS (10, part B),
# LATER_CONNS (10000), LATER_PARTS ("A B").
set -u
. "$(dirname "$0")/lib.sh"

ROUNDS=${LATER_ROUNDS:-3}
SECS=${LATER_SECONDS:-5}
SLEEP_SECS=${LATER_SLEEP_SECONDS:-10}
CONNS=${LATER_CONNS:-10000}
PARTS=${LATER_PARTS:-A B}
LIB=$BUILD/libchopin.a
SERVER=$OUT/later_server

[ -f "$LIB" ] || die "${LIB#"$ROOT"/} not found (run make)"
mkdir -p "$OUT"
uring_libs=
have_liburing && uring_libs=-luring
log "bench: cc -O2 -o ${SERVER#"$ROOT"/} bench/later_server.c ${LIB#"$ROOT"/}"
cc -O2 -Wall -Wextra -Wno-unused-parameter -I"$ROOT/include" -o "$SERVER" \
    "$BENCH_DIR/later_server.c" "$LIB" $uring_libs $(h2_libs "$LIB") -lsqlite3 -pthread || die "could not build later_server"

echo "# bench/later.sh at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), $(date -u +%F), $(uname -r), $(nproc) CPUs"

# ----- A: the cost of deferring ------------------------------------------------------------
if [[ " $PARTS " == *" A "* ]]; then
    paths=(sync now timer post pool todo-worker/42 todo-pool/42)
    for be in $CHOPIN_VARIANTS; do
        free_port
        start CHOPIN_WORKERS=1 CHOPIN_OFFLOAD_THREADS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 \
              CHOPIN_BACKEND="$be" taskset -c "$SERVER_CPU" "$SERVER" "$FREE_PORT" "$BENCH_TMP/todo.db"
        for p in "${paths[@]}"; do
            got=$(curl -s --max-time 5 "http://127.0.0.1:$FREE_PORT/$p")
            want='Hello, World!'
            [ "${p#todo}" != "$p" ] && want='{"id":42,"title":"todo number 42","done":false,"created_at":1700000042}'
            [ "$got" = "$want" ] || die "/$p answered '$got'"
        done
        : > "$BENCH_TMP/A.$be"
        for ((round = 0; round < ROUNDS; round++)); do
            for ((k = 0; k < ${#paths[@]}; k++)); do
                p=${paths[$(((k + round) % ${#paths[@]}))]}
                wait_quiet
                url=http://127.0.0.1:$FREE_PORT/$p
                taskset -c "$CLIENT_CPU" wrk -t1 -c64 -d1s "$url" > /dev/null 2>&1
                run_wrk 64 "$SECS" "$url"
                [ "$BAD" -eq 0 ] || log "bench: /$p on $be: $BAD errors (run left out)"
                [ "$BAD" -eq 0 ] && echo "$p $(us_per_req "$TICKS" "$REQS") $RPS" >> "$BENCH_TMP/A.$be"
            done
        done
        stop
        echo
        echo "## A. Deferred answers, $be: server CPU per request (one worker, 64 connections, ${SECS}s x $ROUNDS rounds)"
        echo
        echo "| answer | CPU µs/request | vs /sync | req/s |"
        echo "|---|---|---|---|"
        base=$(awk '$1 == "sync" { print $2 }' "$BENCH_TMP/A.$be" | median)
        for p in "${paths[@]}"; do
            cpu=$(awk -v p="$p" '$1 == p { print $2 }' "$BENCH_TMP/A.$be" | median)
            cpus=$(awk -v p="$p" '$1 == p { print $2 }' "$BENCH_TMP/A.$be" | spread)
            rps=$(awk -v p="$p" '$1 == p { print $3 }' "$BENCH_TMP/A.$be" | median)
            ratio=$(awk -v a="$cpu" -v b="$base" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
            printf '| /%s | %s %s | %s | %.0f |\n' "$p" "$cpu" "$cpus" "$ratio" "$rps"
        done
    done
fi

# ----- B: 10,000 connections waiting 100 ms each -------------------------------------------
if [[ " $PARTS " == *" B "* ]]; then
    raise_fd_limit $((CONNS + 1024))
    peer_ok=1
    why=$(BUILD=$BUILD "$BENCH_DIR/peers/build_sleep.sh") || { log "bench: Go peers left out: $why"; peer_ok=0; }
    servers=()
    for be in $CHOPIN_VARIANTS; do servers+=("chopin-$be"); done
    [ $peer_ok = 1 ] && servers+=(nethttp fasthttp)
    : > "$BENCH_TMP/B"
    for ((round = 0; round < ROUNDS; round++)); do
        for ((k = 0; k < ${#servers[@]}; k++)); do
            s=${servers[$(((k + round) % ${#servers[@]}))]}
            free_port
            case $s in
                chopin-*) start CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 CHOPIN_BACKEND="${s#chopin-}" \
                                taskset -c "$SERVER_CPU" "$SERVER" "$FREE_PORT" "$BENCH_TMP/todo.db" ;;
                *) start GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$OUT/sleep-bench" "$s" "$FREE_PORT" ;;
            esac
            got=$(curl -s --max-time 5 "http://127.0.0.1:$FREE_PORT/sleep?ms=100")
            [ "$got" = "Hello, World!" ] || die "$s: /sleep answered '$got'"
            wait_quiet
            run_wrk "$CONNS" "$SLEEP_SECS" "http://127.0.0.1:$FREE_PORT/sleep?ms=100"
            hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status")
            stop
            [ "$BAD" -eq 0 ] || log "bench: $s: $BAD errors in round $round (kept, flagged)"
            echo "$s $RPS $(us_per_req "$TICKS" "$REQS") $(awk -v t="$TICKS" -v hz="$CLK_TCK" -v d="$SLEEP_SECS" 'BEGIN { printf "%.0f", t / hz / d * 100 }') $hwm $BAD" >> "$BENCH_TMP/B"
        done
    done
    bound=$(awk -v c="$CONNS" 'BEGIN { print c / 0.1 }')
    echo
    echo "## B. $CONNS connections, each answer after 100 ms (bound: $bound req/s; ${SLEEP_SECS}s x $ROUNDS rounds, fresh server each)"
    echo
    echo "| server | req/s | of bound | CPU µs/request | CPU % | peak RSS MiB | errors |"
    echo "|---|---|---|---|---|---|---|"
    for s in "${servers[@]}"; do
        col() { awk -v s="$s" -v c="$1" '$1 == s { print $c }' "$BENCH_TMP/B"; }
        rps=$(col 2 | median)
        printf '| %s | %.0f %s | %.2f | %s %s | %s | %.1f | %s |\n' "$s" "$rps" "$(col 2 | spread)" \
            "$(awk -v r="$rps" -v b="$bound" 'BEGIN { print r / b }')" \
            "$(col 3 | median)" "$(col 3 | spread)" "$(col 4 | median)" \
            "$(awk -v k="$(col 5 | median)" 'BEGIN { print k / 1024 }')" "$(col 6 | tr '\n' ' ')"
    done
fi
