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
# B. On a machine other jobs share, CPU time per request moves by more than the few
# percent in question from run to run. So the same runs are profiled (perf record,
# frame pointers: the server and library built from source with -fno-omit-frame-pointer)
# and the share of the server's CPU samples spent in the code each feature adds is
# summed: the self time of the functions of src/ops/ and of the request id middleware,
# the clock reads (vDSO), and the whole of the write(2) calls (only the access log writes
# with write(2): sockets use sendmsg or io_uring). Skipped when perf cannot record.
#
# C. Instructions per request in user space, exact and unaffected by other jobs:
# bench/micro_ops.c under callgrind (two run lengths, the difference divided by the
# requests between them), with wrk's request and with a browser's (User-Agent, Referer).
# Skipped without valgrind.
#
# Usage: bench/ops.sh           (after make; BUILD=dir for another tree)
# Variables: OPS_ROUNDS (5), OPS_SECONDS (5), OPS_CONNS (256), OPS_BACKENDS (epoll io_uring),
# OPS_PARTS ("A B C")
set -u
. "$(dirname "$0")/lib.sh"

ROUNDS=${OPS_ROUNDS:-5}
SECS=${OPS_SECONDS:-5}
CONNS=${OPS_CONNS:-256}
BACKENDS=${OPS_BACKENDS:-epoll io_uring}
PARTS=${OPS_PARTS:-A B C}
LIB=$BUILD/libchopin.a
SERVER=$OUT/ops_server

[ -f "$LIB" ] && [ -f "$BUILD/flags" ] || die "${LIB#"$ROOT"/} not found (run make)"
mkdir -p "$OUT"
libs=$(tree_libs)
log "bench: cc -O2 -o ${SERVER#"$ROOT"/} bench/ops_server.c ${LIB#"$ROOT"/} $libs"
# shellcheck disable=SC2086
cc -O2 -Wall -Wextra -Wno-unused-parameter -I"$ROOT/include" -o "$SERVER" \
    "$BENCH_DIR/ops_server.c" "$LIB" $libs || die "could not build ops_server"
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
[[ " $PARTS " == *" A "* ]] && for be in $BACKENDS; do
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

# ----- B: the share of the server's CPU in the code each feature adds (perf) ---------------
# The functions whose self time is the features' (inlined helpers are in their callers):
# every function of src/ops/access.c and observe.c that gcc may leave out of line (`nm
# build/obj/ops/access.o`: put_peer, put_escaped_slow and verbatim_prefix were missing
# until the formatting rework's runs had been counted without them).
OPS_SYMBOLS='^(chopin__observe_[a-z_]+|chopin__access_[a-z_.0-9]+|put_escaped(_slow)?|put_peer|put_method|put_status|verbatim_prefix|copy_short|escape_mask|find_data|find_referer_agent|peer_of|refresh_stamp|combined_line|json_line|json_field|put_u64|hist_add|bucket_of|clock_ns|slot_of|chopin_request_id|hex64|mix|acceptable|__vdso_clock_gettime|clock_gettime)$'

# perf_share DATA: "SHARE% (FORMAT% + WRITE%)" of the samples in DATA.
perf_share() {
    perf report -i "$1" --children --sort symbol --stdio -g none 2>/dev/null |
        awk -v re="$OPS_SYMBOLS" '
            $3 == "[.]" && $4 ~ re { sub(/%/, "", $2); code += $2 }
            $3 == "[k]" && $4 == "ksys_write" { sub(/%/, "", $1); w = $1 }
            END { printf "%.2f%% (code %.2f%% + write(2) %.2f%%)", code + w, code, w }'
}

if [[ " $PARTS " == *" B "* ]] && ! perf record -o "$BENCH_TMP/probe.data" -- true > /dev/null 2>&1; then
    log "bench: perf cannot record here: part B skipped"
elif [[ " $PARTS " == *" B "* ]]; then
    FP=$OUT/ops_server_fp
    srcs=()
    defs=$(tree_defs)
    for f in "$ROOT"/src/*.c "$ROOT"/src/*/*.c; do
        case $f in */kqueue.c) continue ;; esac
        case $f in */tls/*) [[ " $defs " == *" -DCHOPIN_HAVE_TLS "* ]] || continue ;; esac
        srcs+=("$f")
    done
    # shellcheck disable=SC2086
    cc -O2 -g -fno-omit-frame-pointer -std=gnu11 -pthread -I"$ROOT/include" -I"$ROOT/src" $defs \
        "${srcs[@]}" "$BENCH_DIR/ops_server.c" -o "$FP" $libs || die "could not build $FP"
    for be in $BACKENDS; do
        echo
        echo "## B. $be: share of the server's CPU samples in each feature's code (perf, ${SECS}s, $CONNS connections)"
        echo
        echo "| variant | share of server CPU | req/s |"
        echo "|---|---|---|"
        for v in log log-json metrics all; do
            rm -f "$BENCH_TMP/access.log"
            free_port
            # shellcheck disable=SC2046
            start CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 CHOPIN_BACKEND="$be" $(variant_env "$v") \
                  taskset -c "$SERVER_CPU" "$FP" "$FREE_PORT"
            url=http://127.0.0.1:$FREE_PORT/plaintext
            taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s "$url" > /dev/null 2>&1
            perf record -F 2999 -g -p "$PID" -o "$BENCH_TMP/perf.data" -- sleep "$SECS" > /dev/null 2>&1 &
            perf_pid=$!
            run_wrk "$CONNS" "$SECS" "$url"
            wait "$perf_pid"
            stop
            printf '| %s | %s | %.0f |\n' "$v" "$(perf_share "$BENCH_TMP/perf.data")" "$RPS"
        done
    done
fi

# ----- C: instructions per request in user space (callgrind) -------------------------------
# instructions VARIANT REQUEST: per request, from the difference of 10,000 and 30,000.
instructions() {
    local a b
    a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$OUT/micro_ops" 10 "$1" "$2" 2>&1 | awk '/Collected/ { print $4 }')
    b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$OUT/micro_ops" 30 "$1" "$2" 2>&1 | awk '/Collected/ { print $4 }')
    echo $(((b - a) / 20000))
}

if [[ " $PARTS " == *" C "* ]] && ! command -v valgrind > /dev/null; then
    log "bench: no valgrind: part C skipped"
elif [[ " $PARTS " == *" C "* ]]; then
    # shellcheck disable=SC2086
    cc -O2 -g -I"$ROOT/include" -I"$ROOT/src" -D_GNU_SOURCE "$BENCH_DIR/micro_ops.c" "$LIB" \
        -o "$OUT/micro_ops" $libs || die "could not build micro_ops"
    echo
    echo "## C. Instructions per request in user space (callgrind, bench/micro_ops.c: parse to sent, one request per read)"
    echo
    echo "| variant | wrk's request | added | a browser's (User-Agent, Referer) | added |"
    echo "|---|---|---|---|---|"
    base0=$(instructions 0 0)
    base1=$(instructions 0 1)
    printf '| off | %s | | %s | |\n' "$base0" "$base1"
    for v in 1 2 3 4; do
        i0=$(instructions "$v" 0)
        i1=$(instructions "$v" 1)
        printf '| %s | %s | +%s | %s | +%s |\n' "${variants[$v]}" "$i0" $((i0 - base0)) "$i1" $((i1 - base1))
    done
fi
