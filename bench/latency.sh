#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Latency at a fixed rate (issue 19, "Latency, the way the seed measures it"): for each
# server and path, its capacity first (wrk, closed loop, LAT_CONNS connections, the median
# of LAT_CAP_ROUNDS runs), then p50, p99, p99.9 and max at 25 %, 50 % and 75 % of that
# capacity, measured open loop by bench/ratelat.c (why not wrk or h2load: see its header
# and docs/PERFORMANCE.md). Same machine split as bench/run.sh: the server on CPU 1, the
# load on CPU 0. Writes a table, the data (build/bench/latency-*.dat) and, with gnuplot,
# a plot (LAT_PLOT, default docs/latency.png).
#
# LAT_ROUNDS rounds (default 3) go through all the servers in turn, so a disturbance of
# the machine falls on one server's figures of one round, not on one server's all; the
# report shows per server, path and load the median of the rounds (a tail percentile of a
# single 5 s run moves by tens of percent from run to run on this machine). Capacities
# are measured in the first round only.
#
# Usage: bench/latency.sh
#   LAT_SERVERS="floor_epoll chopin nginx h2o hyper fasthttp"   LAT_PATHS="plaintext json"
#     floor_epoll (bench/floor_epoll.c: reads a request, sends a fixed answer, no HTTP work)
#     is the baseline: the generator's, the loopback's and the scheduler's own tails, which
#     no server can go below.
#   LAT_LOADS="25 50 75"   LAT_SECONDS=5   LAT_WARMUP=1   LAT_CONNS=64   LAT_CAP_ROUNDS=3
#   LAT_ROUNDS=3
#   LAT_DATA=build/bench/latency-….dat      (the table and plot of an earlier run; nothing is run)
#   LAT_QUICK=1   a short run to see that everything works (2 s per measurement, one
#                 capacity round: about 4 minutes for the six servers, figures too short to
#                 quote); the figures for docs/ come from the defaults on a quiet machine
#                 (about 7 minutes, plus the waits for a quiet machine). Set variables above
#                 still win.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

quick=${LAT_QUICK:-0}
SECONDS_RUN=${LAT_SECONDS:-$([ "$quick" = 1 ] && echo 2 || echo 5)}
WARM=${LAT_WARMUP:-1}
CONNS=${LAT_CONNS:-64}
LOADS=${LAT_LOADS:-25 50 75}
PATHS=${LAT_PATHS:-plaintext json}
CAP_ROUNDS=${LAT_CAP_ROUNDS:-$([ "$quick" = 1 ] && echo 1 || echo 3)}
ROUNDS=${LAT_ROUNDS:-$([ "$quick" = 1 ] && echo 1 || echo 3)}
SERVERS=$(expand_servers "${LAT_SERVERS:-floor_epoll chopin nginx h2o hyper fasthttp}")
STAMP=$(date +%Y-%m-%d-%H%M%S)
DATA=$OUT/latency-$STAMP.dat
MEDIANS=${DATA%.dat}.medians
declare -A CAPACITY # "server path": req/s, from the first round
PLOT=${LAT_PLOT:-$ROOT/docs/latency.png}

# capacity PATH: the median req/s of CAP_ROUNDS closed-loop wrk runs against SERVER_PORT.
capacity() {
    local i out rates=()
    for ((i = 0; i < CAP_ROUNDS; i++)); do
        out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${SECONDS_RUN}s" --timeout 2s \
              "http://127.0.0.1:$SERVER_PORT/$1" 2>&1)
        rates+=("$(awk '/^Requests\/sec:/ { printf "%d", $2 }' <<<"$out")")
    done
    printf '%s\n' "${rates[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

measure_server() { # NAME ROUND
    local name=$1 round=$2 path cap load rate out busy
    server_start "$name" || return 1
    for path in $PATHS; do
        wait_quiet
        # how busy other work kept the two CPUs just before (the server idle): a figure
        # taken while it was high is not one to quote
        busy=$(cpus_busy_pct)
        cap=${CAPACITY["$name $path"]:-}
        [ -n "$cap" ] || cap=$(capacity "$path")
        CAPACITY["$name $path"]=$cap
        [ -n "$cap" ] && [ "$cap" -gt 0 ] || { log "bench: $name /$path: no capacity"; continue; }
        for load in $LOADS; do
            rate=$((cap * load / 100))
            out=$(taskset -c "$CLIENT_CPU" "$OUT/ratelat" "$SERVER_PORT" "/$path" "$rate" \
                  "$SECONDS_RUN" "$CONNS" "$WARM" 2>&1)
            # name path load capacity rate p50 p99 p999 max errors busy round
            awk -v n="$name" -v p="$path" -v l="$load" -v c="$cap" -v b="$busy" -v r="$round" '
                /^sent / { print n, p, l, c, $8, $10, $12, $14, $16, $6, b, r }' <<<"$out" |
                tee -a "$DATA" >&2
        done
    done
    server_alive || log "bench: $name died during the run"
    server_stop
}

# The rounds' median per server, path and load (columns as in DATA; errors summed, busy
# the highest), in the order the servers were measured: what the report and plot show.
medians() {
    awk '
        { k = $1 " " $2 " " $3; if (!(k in n)) order[++keys] = k
          i = ++n[k]; cap[k] = $4; errs[k] += $10; if ($11 + 0 > busy[k]) busy[k] = $11 + 0
          for (c = 5; c <= 9; c++) v[k, c, i] = $c }
        function median(k, c,   i, j, t, a, m) {
            m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, c, i]
            for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
        END { for (o = 1; o <= keys; o++) { k = order[o]
                printf "%s %d %s %s %s %s %s %d %d %d\n", k, cap[k], median(k, 5), median(k, 6),
                       median(k, 7), median(k, 8), median(k, 9), errs[k], busy[k], n[k] } }' "$DATA" > "$MEDIANS"
}

report() {
    local path
    medians
    for path in $PATHS; do
        printf '\n/%s, %s connections, open loop at a fixed rate, latencies in microseconds\n' \
            "$path" "$CONNS"
        printf '%-16s %9s %5s %9s %9s %9s %9s %9s %6s %5s %6s\n' server capacity load rate p50 p99 \
            p99.9 max errors busy rounds
        awk -v p="$path" '$2 == p { printf "%-16s %9d %4d%% %9d %9.1f %9.1f %9.1f %9.1f %6d %4s%% %6d\n",
                                    $1, $4, $3, $5, $6, $7, $8, $9, $10, $11, $12 }' "$MEDIANS"
    done
    printf '\nEach figure is the median of the rounds (columns rounds); errors summed over them.\n'
    printf '\nbusy: how busy other work kept the two CPUs just before each server and path was\n'
    printf 'measured (the server idle), the highest of the rounds; figures taken while it was above a\n'
    printf 'few %% are not ones to quote.\n'
}

plot() {
    command -v gnuplot > /dev/null || { log "bench: no gnuplot: no plot (apt-get install gnuplot-nox)"; return 0; }
    local path cmds="" i=0 s
    cmds="set terminal pngcairo size 1200,520 font ',10' noenhanced; set output '$PLOT';"
    cmds+="set multiplot layout 1,2 title 'p99 latency at a fixed rate (open loop, $CONNS connections; server on one core)';"
    cmds+="set logscale y; set ylabel 'p99 (µs)'; set xlabel 'load (% of each server''s capacity)';"
    cmds+="set xrange [20:80]; set xtics ('25' 25, '50' 50, '75' 75); set key top left; set grid;"
    for path in $PATHS; do
        cmds+="set title '/$path'; plot "
        i=0
        for s in $SERVERS; do
            [ $i -gt 0 ] && cmds+=", "
            cmds+="'< awk \"\\\$1==\\\"$s\\\" && \\\$2==\\\"$path\\\"\" $MEDIANS' using 3:7 with linespoints lw 2 title '$s'"
            i=$((i + 1))
        done
        cmds+=";"
    done
    cmds+="unset multiplot"
    gnuplot -e "$cmds" && log "bench: plot: ${PLOT#"$ROOT"/}"
}

main() {
    command -v wrk > /dev/null || die "wrk is not installed (scripts/deps.sh bench)"
    build_tool ratelat -D_GNU_SOURCE
    build_tool floor_epoll
    chopin_snapshot
    mkdir -p "$OUT"
    : > "$DATA"
    local s why
    log "bench: latency at 25/50/75 % of capacity: $(echo $SERVERS), paths $PATHS, $ROUNDS rounds"
    local round present=""
    for s in $SERVERS; do
        why=$(server_missing "$s")
        if [ -n "$why" ]; then log "bench: skipped $s: $why"; continue; fi
        present+="$s "
    done
    for ((round = 1; round <= ROUNDS; round++)); do
        for s in $present; do
            measure_server "$s" "$round"
        done
    done
    report
    plot
    echo "data: ${DATA#"$ROOT"/}"
}

if [ -n "${LAT_DATA:-}" ]; then
    DATA=$LAT_DATA
    MEDIANS=${DATA%.dat}.medians
    [ -f "$DATA" ] || die "LAT_DATA: no file $DATA"
    SERVERS=$(awk '!seen[$1]++ { printf "%s ", $1 }' "$DATA")
    PATHS=$(awk '!seen[$2]++ { printf "%s ", $2 }' "$DATA")
    report
    plot
else
    main "$@"
fi
