#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench: wrk against Chopin's demo server and its peers, side by side.
#
# Each server runs as one worker pinned to CPU 1, wrk as one thread pinned to CPU 0. Without
# pipelining one wrk thread saturates its core before a fast server does, so req/s alone
# cannot rank servers: the server's CPU time per request (utime+stime from /proc/PID/stat
# over the requests wrk completed) is reported beside it. Servers are interleaved round by
# round (each round starts one server later, so none always runs first), and the tables show
# medians with the spread (min-max) of the rounds. A run that saw non-2xx answers or socket
# errors is flagged and left out of the medians.
#
# Usage: bench/run.sh            (see bench/README.md for every variable)
#   BENCH_DURATION=5 BENCH_ROUNDS=3 BENCH_WARMUP=1
#   BENCH_SERVERS="floor_epoll floor_uring nginx h2o hyper fasthttp chopin"
#                                         ("chopin" = CHOPIN_VARIANTS; hyper and fasthttp are
#                                          built by bench/peers/build_*.sh into build/bench)
#   CHOPIN_VARIANTS="epoll io_uring"                            (also: io_uring+sqpoll)
#   BENCH_SCENARIOS="plaintext-16 plaintext-256 pipeline-256 json-256"
#   BENCH_EXTRA="plaintext-1024 latency-64"                     (appended to the scenarios)
#   BENCH_QUIET_WAIT=20 BENCH_QUIET_MAX=20   (wait for other jobs to leave the CPUs)
#   BENCH_SYSCALLS=1 BENCH_MEMORY=1          (then run bench/syscalls.sh and bench/memory.sh)
#   BENCH_TLS=1                              (then bench/tls.sh: HTTPS, issue 16)
#   BENCH_LATENCY=1                          (then bench/latency.sh: latency at a fixed rate)
#   BENCH_COMPRESS=1                         (then bench/compress.sh: gzip against nginx's
#                                            gzip module, brotli and zstd; 0 skips it)
#   BENCH_STATIC=1                           (then bench/static.sh: static files against nginx,
#                                            issue 15)
#   BENCH_WS=0                               (skip bench/ws.sh, the WebSocket benchmarks)
#   BENCH_REPORT=build/bench/results-….txt   (print an earlier run's tables again, from its
#                                            raw lines; nothing is run)
#   BENCH_EXTERNAL="libreactor=/opt/lr/server @PORT@"   (servers built outside the repository,
#                                            named in BENCH_SERVERS; ";" between entries)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-1}
SCENARIOS="${BENCH_SCENARIOS:-plaintext-16 plaintext-256 pipeline-256 json-256} ${BENCH_EXTRA:-}"
DEFAULT_SERVERS="floor_epoll floor_uring nginx h2o hyper fasthttp chopin"
SERVERS=$(expand_servers "${BENCH_SERVERS:-$DEFAULT_SERVERS}")
RESULTS=$OUT/results-$(date +%Y-%m-%d-%H%M%S).txt
FAILURES=0

# say: print to the terminal and to the results file.
say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }

check_machine() {
    local cpus s
    cpus=$(nproc --all)
    [ "$cpus" -gt "$SERVER_CPU" ] && [ "$cpus" -gt "$CLIENT_CPU" ] ||
        die "needs CPUs $CLIENT_CPU and $SERVER_CPU (this machine has $cpus)"
    command -v wrk > /dev/null || die "wrk is not installed (scripts/deps.sh bench)"
    command -v curl > /dev/null || die "curl is not installed (scripts/deps.sh bench)"
    for s in $SCENARIOS; do scenario_valid "$s" || die "bad scenario '$s' (KIND-CONNECTIONS)"; done
    local max=0
    for s in $SCENARIOS; do [ "${s##*-}" -gt $max ] && max=${s##*-}; done
    raise_fd_limit $((max + 1024))
}

# select_servers: ACTIVE lists the servers that can run; the others are skipped aloud.
select_servers() {
    local s why
    ACTIVE=()
    for s in $SERVERS; do
        why=$(server_missing "$s")
        case $why in unknown*) die "$s: $why" ;; esac
        if [ -n "$why" ]; then
            log "bench: skipping $s: $why"
            SKIPPED+=("$s: $why")
        else
            ACTIVE+=("$s")
        fi
    done
    [ ${#ACTIVE[@]} -gt 0 ] || die "no server to measure"
}

machine_summary() {
    say "# date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    say "# machine: $(uname -srm), $(nproc --all) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    say "# commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    say "# peers:   $(nginx -v 2>&1 | sed 's/.*: //'), $(h2o --version 2>/dev/null | head -1), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
    local pv
    pv=$(peer_versions)
    [ -n "$pv" ] && say "# built:   $pv (bench/peers, from Debian's packages)"
    [ -x "$CHOPIN_BIN" ] && say "# chopin:  ${CHOPIN_BIN#"$ROOT"/} built $(date -u -r "$CHOPIN_BIN" '+%Y-%m-%d %H:%M:%S UTC'), sha256 $(sha256sum < "$CHOPIN_BIN" | cut -c1-16) (a copy of it runs)"
    say "# load at start: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on CPU $CLIENT_CPU or $SERVER_CPU add noise)"
}

# print_commands: the exact commands, PORT standing for the free port picked at each start.
print_commands() {
    local s
    say "# invocation: BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_WARMUP=$WARMUP" \
        "BENCH_SERVERS=\"${BENCH_SERVERS:-$DEFAULT_SERVERS}\"" \
        "CHOPIN_VARIANTS=\"$CHOPIN_VARIANTS\" BENCH_SCENARIOS=\"$(echo $SCENARIOS)\" bench/run.sh"
    say "# servers (configs: bench/nginx.conf, bench/h2o.conf with @PORT@ and @DIR@ filled in):"
    for s in "${ACTIVE[@]}"; do
        mkdir -p "$BENCH_TMP/cmd/$s"
        server_prepare "$s" PORT "$BENCH_TMP/cmd/$s"
        say "#   $s: $(server_command_line | sed "s|$BENCH_TMP/cmd/$s|\$DIR|g")"
    done
    say "# load (after ${WARMUP}s of the same load as warm-up):"
    for s in $SCENARIOS; do
        wrk_args "$s" "$DURATION" PORT
        say "#   $s: $(shell_words "${WRK_ARGS[@]}" | sed "s|$ROOT/||g")"
    done
    say "# server CPU: utime+stime of the server (and any child) from /proc/PID/stat, CLK_TCK=$CLK_TCK"
}

# run_one ROUND SCENARIO NAME: one measured wrk run against the running server; appends a
# raw line to the results file.
run_one() {
    local round=$1 scen=$2 name=$3 out=$BENCH_TMP/wrk.out
    local t0 t1 c0 c1 ns0 ns1 parsed req rps non2xx sock p50 p90 p99 ticks us other status
    wait_quiet
    if [ "$WARMUP" != 0 ]; then
        wrk_args "$scen" "$WARMUP" "$SERVER_PORT"
        "${WRK_ARGS[@]}" > /dev/null 2>&1
    fi
    wrk_args "$scen" "$DURATION" "$SERVER_PORT"
    t0=$(tree_ticks "$SERVER_PID") c0=$(cpu_busy_ticks "$SERVER_CPU") ns0=$(date +%s%N)
    "${WRK_ARGS[@]}" > "$out" 2>&1
    t1=$(tree_ticks "$SERVER_PID") c1=$(cpu_busy_ticks "$SERVER_CPU") ns1=$(date +%s%N)

    parsed=$(wrk_parse "$out")
    read -r req rps non2xx sock p50 p90 p99 <<< "$parsed"
    ticks=$((t1 - t0))
    # Share of the server's CPU used by other processes: noise, reported per scenario.
    other=$(awk -v b=$((c1 - c0)) -v t=$ticks -v ns=$((ns1 - ns0)) -v hz="$CLK_TCK" \
            'BEGIN { o = (b - t) / (ns / 1e9 * hz) * 100; printf "%.0f", o < 0 ? 0 : o }')
    us=$(awk -v t=$ticks -v n="$req" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", n ? t / hz * 1e6 / n : 0 }')
    status=ok
    [ "$non2xx" -gt 0 ] || [ "$sock" -gt 0 ] && status=errors
    [ "$req" -eq 0 ] && status=failed
    if ! server_alive; then
        status=died ticks=0 us=0 other=0 # its /proc entry, and its CPU time, are gone
    fi
    printf 'R %s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$round" "$scen" "$name" "$req" "$rps" \
        "$ticks" "$us" "$non2xx" "$sock" "$other" "$status" "$p50" "$p90" "$p99" >> "$RESULTS"
    log "bench: round $round/$ROUNDS $name $scen: $rps req/s, $us us CPU/req, other load ${other}%" \
        "$([ "$status" = ok ] || echo "[$status]")"
    if [ "$status" != ok ]; then
        log "bench: $name $scen: $status; wrk said:"
        grep -Ev '^ +(Latency|Req/Sec|Thread Stats|[0-9]+%)' "$out" | sed 's/^/bench:   /' >&2
    fi
    [ "$status" != died ]
}

# bench_server ROUND NAME: starts NAME, runs every scenario against it, stops it.
bench_server() {
    local round=$1 name=$2 scen
    if ! server_start "$name"; then
        FAILURES=$((FAILURES + 1))
        say "# round $round: $name failed to start (see the messages above)"
        return
    fi
    for scen in $SCENARIOS; do
        if ! run_one "$round" "$scen" "$name"; then
            wait "$SERVER_PID"
            server_failed "$name" "died during $scen (exit status $?)"
            untrack_pid "$SERVER_PID"
            FAILURES=$((FAILURES + 1))
            return
        fi
    done
    server_stop
}

# report: one table per scenario from the raw lines of the results file. Ratios are of
# medians; "x floor" compares with the floor of the same kind of loop (floor_uring for
# io_uring servers, floor_epoll for the others). Below each table, "paired" lines give
# Chopin's CPU per request (and pipelined, its req/s) against nginx, the floor and, for the
# other backends, chopin-epoll, as the median of per-round ratios: servers of one round run
# back to back, so a round that was slow for everyone (this kind of shared VM drifts by
# 20% and more between rounds) cancels out of those ratios.
report() {
    awk -v scenarios="$SCENARIOS" -v servers="${ACTIVE[*]}" -v depth="$PIPELINE_DEPTH" \
        -v rounds="$ROUNDS" -v duration="$DURATION" -v cpu="$SERVER_CPU" \
        -v externals="$(external_names)" '
    function median(a, n,   b, i, j, t) {
        for (i = 1; i <= n; i++) b[i] = a[i]
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
        lo = b[1]; hi = b[n]
        return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
    }
    function commas(x,   s, r) {
        s = sprintf("%.0f", x); r = ""
        while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
        return s r
    }
    function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
    # median [min-max] over the rounds where both counted of CPU(k) / CPU(b)
    # (of req/s when f is "rps"), over the rounds where both counted
    function paired(k, b, f,   i, n, a) {
        n = 0
        for (i = 1; i <= rounds; i++)
            if ((k, i, f) in per && (b, i, f) in per && per[b, i, f] > 0)
                a[++n] = per[k, i, f] / per[b, i, f]
        if (!n) return "-"
        m = median(a, n)
        return sprintf("%.2f [%.2f-%.2f]", m, lo, hi)
    }
    function title(s,   kind, conns) {
        kind = s; sub(/-[0-9]+$/, "", kind); conns = s; sub(/^.*-/, "", conns)
        if (kind == "json") return "/json, " conns " connections"
        if (kind == "pipeline") return "/plaintext pipelined " depth " deep, " conns " connections"
        if (kind == "latency") return "/plaintext latency (wrk --latency), " conns " connections"
        return "/plaintext, " conns " connections"
    }
    # medians of field f of the counted runs of key k, into M[k, f], LO[k, f], HI[k, f]
    function summarize(k, f,   i, a) {
        for (i = 1; i <= ok[k]; i++) a[i] = val[k, i, f]
        M[k, f] = median(a, ok[k]); LO[k, f] = lo; HI[k, f] = hi
    }
    $1 == "R" {
        k = $3 SUBSEP $4
        runs[k]++; total[$3]++
        if ($12 == "ok") {
            n = ++ok[k]
            for (f = 6; f <= 15; f++) val[k, n, f] = $f
            per[k, $2, "cpu"] = $8; per[k, $2, "rps"] = $6
        } else {
            bad[k]++
            why[k] = why[k] sprintf(" round %s: %s (non-2xx %s, socket errors %s);", $2, $12, $9, $10)
        }
        if ($11 > 10) noisy[$3]++
    }
    END {
        ns = split(scenarios, S, " "); nv = split(servers, V, " "); nx = split(externals, X, " ")
        for (i = 1; i <= ns; i++) {
            s = S[i]; lat = s ~ /^latency-/
            for (j = 1; j <= nv; j++) {
                k = s SUBSEP V[j]
                if (ok[k]) { summarize(k, 6); summarize(k, 8); summarize(k, 13); summarize(k, 14); summarize(k, 15) }
            }
            printf "%s  (median of %d rounds x %ss, [min-max])\n", title(s), rounds, duration
            if (lat)
                printf "%-24s %10s %9s %9s %9s %8s %12s %8s\n", "server", "req/s", "p50 ms", "p90 ms", "p99 ms",
                    "p99 x ng", "CPU us/req", "x nginx"
            else
                printf "%-24s %10s %-21s %7s %7s %14s %-13s %7s %7s\n", "server", "req/s", " [min-max]",
                    "x nginx", "x floor", "CPU us/req", " [min-max]", "x nginx", "x floor"
            notes = ""
            for (j = 1; j <= nv; j++) {
                v = V[j]; k = s SUBSEP v
                fl = (v ~ /uring/) ? "floor_uring" : "floor_epoll"
                ng = s SUBSEP "nginx"; fk = s SUBSEP fl
                name = v (bad[k] ? " !" : "")
                if (bad[k]) notes = notes sprintf("  ! %s: %d of %d runs not counted:%s\n", v, bad[k], runs[k], why[k])
                if (!runs[k]) { printf "%-24s %10s\n", v, "not run"; continue }
                if (!ok[k]) { printf "%-24s %10s\n", name, "ERRORS"; continue }
                if (lat)
                    printf "%-24s %10s %9.2f %9.2f %9.2f %8s %12.2f %8s\n", name, commas(M[k, 6]),
                        M[k, 13] / 1000, M[k, 14] / 1000, M[k, 15] / 1000, ratio(M[k, 15], M[ng, 15]),
                        M[k, 8], ratio(M[k, 8], M[ng, 8])
                else
                    printf "%-24s %10s %-21s %7s %7s %14.2f %-13s %7s %7s\n", name, commas(M[k, 6]),
                        " [" commas(LO[k, 6]) "-" commas(HI[k, 6]) "]",
                        ratio(M[k, 6], M[ng, 6]), ratio(M[k, 6], M[fk, 6]),
                        M[k, 8], sprintf(" [%.2f-%.2f]", LO[k, 8], HI[k, 8]),
                        ratio(M[k, 8], M[ng, 8]), ratio(M[k, 8], M[fk, 8])
            }
            for (j = 1; j <= nv && !lat; j++) {
                v = V[j]; k = s SUBSEP v
                if (v !~ /^chopin/ || !ok[k]) continue
                fl = (v ~ /uring/) ? "floor_uring" : "floor_epoll"
                line = sprintf("  paired %-22s CPU/req x nginx %s, x floor %s", v ":",
                    paired(k, s SUBSEP "nginx", "cpu"), paired(k, s SUBSEP fl, "cpu"))
                if (v != "chopin-epoll" && ok[s SUBSEP "chopin-epoll"])
                    line = line ", x chopin-epoll " paired(k, s SUBSEP "chopin-epoll", "cpu")
                for (x = 1; x <= nx; x++)
                    if (ok[s SUBSEP X[x]])
                        line = line ", x " X[x] " " paired(k, s SUBSEP X[x], "cpu")
                if (s ~ /^pipeline-/)
                    line = line "; req/s x floor " paired(k, s SUBSEP fl, "rps")
                print line
            }
            printf "%s", notes
            if (noisy[s])
                printf "  noise: in %d of %d runs other processes used >10%% of CPU %s\n", noisy[s], total[s], cpu
            print ""
        }
    }' "$RESULTS"
}

# extra_script VAR SCRIPT: runs bench/SCRIPT into the results too, unless VAR is 0.
# The io_uring issue asks make bench for syscalls per request; the performance issue for
# memory per idle connection beside nginx and h2o in the same run.
extra_script() {
    [ "${!1:-1}" = 0 ] && return 0
    echo | tee -a "$RESULTS"
    "$BENCH_DIR/$2" 2>&1 | tee -a "$RESULTS" || FAILURES=$((FAILURES + 1))
}

main() {
    SKIPPED=()
    check_machine
    build_tools
    chopin_snapshot
    select_servers
    mkdir -p "$OUT"
    : > "$RESULTS"
    machine_summary
    print_commands
    local runs=$((${#ACTIVE[@]} * $(echo $SCENARIOS | wc -w)))
    log "bench: ${#ACTIVE[@]} servers x $(echo $SCENARIOS | wc -w) scenarios x $ROUNDS rounds," \
        "about $(( (runs * (DURATION + WARMUP) + ${#ACTIVE[@]} * 2) * ROUNDS / 60 + 1)) min"
    say "# raw: R round scenario server requests req/s cpu_ticks us_cpu/req non2xx socket_errors other_load% status p50_us p90_us p99_us"

    local round i n=${#ACTIVE[@]}
    for ((round = 1; round <= ROUNDS; round++)); do
        for ((i = 0; i < n; i++)); do
            bench_server "$round" "${ACTIVE[$(((i + round - 1) % n))]}"
        done
    done

    echo | tee -a "$RESULTS"
    report | tee -a "$RESULTS"
    local s
    for s in "${SKIPPED[@]}"; do say "skipped $s"; done
    extra_script BENCH_SYSCALLS syscalls.sh
    extra_script BENCH_MEMORY memory.sh
    # HTTPS against nginx and h2o (issue 16); BENCH_TLS=0 leaves it out.
    extra_script BENCH_TLS tls.sh
    # latency at 25/50/75 % of each server's capacity, open loop (issue 19)
    extra_script BENCH_LATENCY latency.sh
    extra_script BENCH_COMPRESS compress.sh # issue 15: on-the-fly compression against nginx
    extra_script BENCH_STATIC static.sh
    extra_script BENCH_WS ws.sh # WebSocket echo, broadcast and idle memory (issue 17)
    say "raw results and these tables: ${RESULTS#"$ROOT"/}"
    [ "$FAILURES" -eq 0 ] || { log "bench: $FAILURES server start(s) or run(s) failed: see above"; exit 1; }
}

# The tables of an earlier run, rebuilt from its raw lines (servers, scenarios and rounds as
# they were run).
report_again() {
    RESULTS=$1
    [ -f "$RESULTS" ] || die "BENCH_REPORT: no file $RESULTS"
    SCENARIOS=$(awk '$1 == "R" && !seen[$3]++ {printf "%s ", $3}' "$RESULTS")
    read -r -a ACTIVE <<<"$(awk '$1 == "R" && !seen[$4]++ {printf "%s ", $4}' "$RESULTS")"
    ROUNDS=$(awk '$1 == "R" && $2 > n {n = $2} END {print n + 0}' "$RESULTS")
    report
}

if [ -n "${BENCH_REPORT:-}" ]; then
    report_again "$BENCH_REPORT"
else
    main "$@"
fi
