#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What the operations features of issue 19 cost: server CPU time per request of
# /plaintext at 256 connections (wrk -t1 pinned to CPU 0, one worker pinned to CPU 1, as
# run.sh), with each feature on against all of them off (bench/ops_server.c):
#   off        nothing
#   log        the access log, combined format, to a file (the issue's target: <= 5%)
#   log-json   the access log, JSON lines
#   metrics    the metrics route registered: histograms timed per request
#   all        log + metrics + request id middleware
# Interleaved rounds, each variant a fresh server per round; the median and [min-max] of
# the rounds, and the ratio to `off`. The access log's lines are counted against the
# requests wrk completed (a line per answer, the warm-up and the check included).
#
# Usage: bench/ops.sh           (after make; BUILD=dir for another tree)
# Variables: OPS_ROUNDS (5), OPS_SECONDS (5), OPS_CONNS (256), OPS_BACKENDS (epoll io_uring)
set -u
. "$(dirname "$0")/lib.sh"

ROUNDS=${OPS_ROUNDS:-5}
SECS=${OPS_SECONDS:-5}
CONNS=${OPS_CONNS:-256}
BACKENDS=${OPS_BACKENDS:-epoll io_uring}
LIB=$BUILD/libchopin.a
SERVER=$OUT/ops_server

[ -f "$LIB" ] || die "${LIB#"$ROOT"/} not found (run make)"
mkdir -p "$OUT"
uring_libs=
have_liburing && uring_libs=-luring
log "bench: cc -O2 -o ${SERVER#"$ROOT"/} bench/ops_server.c ${LIB#"$ROOT"/}"
cc -O2 -Wall -Wextra -Wno-unused-parameter -I"$ROOT/include" -o "$SERVER" \
    "$BENCH_DIR/ops_server.c" "$LIB" $uring_libs -pthread || die "could not build ops_server"
raise_fd_limit $((CONNS + 1024))

variants=(off log log-json metrics all)
# variant_env VARIANT: the server's environment for it (the log file is fresh per run).
variant_env() {
    case $1 in
        off) ;;
        log) echo "CHOPIN_ACCESS_LOG=$BENCH_TMP/access.log" ;;
        log-json) echo "CHOPIN_ACCESS_LOG=$BENCH_TMP/access.log CHOPIN_ACCESS_LOG_FORMAT=json" ;;
        metrics) echo "OPS_METRICS=1" ;;
        all) echo "CHOPIN_ACCESS_LOG=$BENCH_TMP/access.log OPS_METRICS=1 OPS_REQUEST_ID=1" ;;
    esac
}

echo "# bench/ops.sh at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), $(date -u +%F), $(uname -r), $(nproc) CPUs"
for be in $BACKENDS; do
    : > "$BENCH_TMP/ops.$be"
    for ((round = 0; round < ROUNDS; round++)); do
        for ((k = 0; k < ${#variants[@]}; k++)); do
            v=${variants[$(((k + round) % ${#variants[@]}))]}
            rm -f "$BENCH_TMP/access.log"
            free_port
            # shellcheck disable=SC2046
            start CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 CHOPIN_BACKEND="$be" $(variant_env "$v") \
                  taskset -c "$SERVER_CPU" "$SERVER" "$FREE_PORT"
            url=http://127.0.0.1:$FREE_PORT/plaintext
            got=$(curl -s --max-time 5 "$url")
            [ "$got" = "Hello, World!" ] || die "$v on $be: /plaintext answered '$got'"
            wait_quiet
            taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s "$url" > "$BENCH_TMP/warm.out" 2>&1
            warm=$(wrk_parse "$BENCH_TMP/warm.out" | awk '{ print $1 }')
            run_wrk "$CONNS" "$SECS" "$url"
            stop
            lines=-
            if [ -f "$BENCH_TMP/access.log" ]; then
                lines=$(wc -l < "$BENCH_TMP/access.log")
                # every answer has its line: the check, the warm-up, the run (wrk counts the
                # answers it read; a connection cut at its end may have had one more sent)
                [ "$lines" -ge $((1 + warm + REQS)) ] || log "bench: $v on $be: $lines lines for $((1 + warm + REQS)) answers"
            fi
            [ "$BAD" -eq 0 ] || log "bench: $v on $be: $BAD errors (run left out)"
            [ "$BAD" -eq 0 ] && echo "$v $(us_per_req "$TICKS" "$REQS") $RPS $lines $((1 + warm + REQS))" >> "$BENCH_TMP/ops.$be"
        done
    done
    echo
    echo "## $be: server CPU per request, /plaintext, $CONNS connections, one worker (${SECS}s x $ROUNDS rounds)"
    echo
    echo "| variant | CPU µs/request | vs off | req/s | log lines / answers (last run) |"
    echo "|---|---|---|---|---|"
    base=$(awk '$1 == "off" { print $2 }' "$BENCH_TMP/ops.$be" | median)
    for v in "${variants[@]}"; do
        cpu=$(awk -v v="$v" '$1 == v { print $2 }' "$BENCH_TMP/ops.$be" | median)
        cpus=$(awk -v v="$v" '$1 == v { print $2 }' "$BENCH_TMP/ops.$be" | spread)
        rps=$(awk -v v="$v" '$1 == v { print $3 }' "$BENCH_TMP/ops.$be" | median)
        lines=$(awk -v v="$v" '$1 == v { l = $4 " / " $5 } END { print l }' "$BENCH_TMP/ops.$be")
        ratio=$(awk -v a="$cpu" -v b="$base" 'BEGIN { printf "%.3f", b ? a / b : 0 }')
        printf '| %s | %s %s | %s | %.0f | %s |\n' "$v" "$cpu" "$cpus" "$ratio" "$rps" "$lines"
    done
done
