# SPDX-License-Identifier: MIT
# Helpers shared by bench/run.sh, bench/memory.sh and bench/syscalls.sh: building the
# bench tools, starting and checking servers, reading CPU time, running wrk.
# Source it from bash; it needs only bash, awk (mawk is enough), coreutils, curl and wrk.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUT=$BUILD/bench

SERVER_CPU=${BENCH_SERVER_CPU:-1}
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
CHOPIN_BIN=${CHOPIN_BIN:-$BUILD/examples/demo}
CHOPIN_VARIANTS=${CHOPIN_VARIANTS:-"epoll io_uring"}
CLK_TCK=$(getconf CLK_TCK)

# The request headers TechEmpower's wrk runs send, so parsers see a realistic request.
ACCEPT_PLAINTEXT='text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
ACCEPT_JSON='application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# ----- cleanup: everything started here is stopped on exit, however the script ends -----
BENCH_PIDS=()
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/chopin-bench.XXXXXX")
# h2o drops privileges to nobody when started as root: it must be able to read its files.
chmod 755 "$BENCH_TMP"

cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${BENCH_PIDS[@]}"; do
        proc_wait_exit "$pid" 50 || kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
# Background jobs of a non-interactive shell ignore SIGINT, so Ctrl-C alone would leave the
# servers running: exit through the EXIT trap instead.
trap 'exit 130' INT
trap 'exit 143' TERM

track_pid() { BENCH_PIDS+=("$1"); }

# untrack_pid PID: once PID is reaped its number may be reused by anyone's new process,
# which cleanup must then not signal.
untrack_pid() {
    local p keep=()
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
}

# proc_wait_exit PID TENTHS: waits up to TENTHS/10 s for PID to go; reaps it if it is ours.
proc_wait_exit() {
    local i
    for ((i = 0; i < $2; i++)); do
        kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
        sleep 0.1
    done
    return 1
}

raise_fd_limit() {
    local want=$1 hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=1048576
    ulimit -n "$hard" 2>/dev/null || true
    [ "$(ulimit -n)" -ge "$want" ] ||
        die "need $want open files, the hard limit is $hard (raise it: ulimit -Hn, limits.conf)"
}

# ----- tools built from bench/*.c --------------------------------------------------------
have_liburing() { [ -e /usr/include/liburing.h ]; }
# h2_libs LIB: the link flags HTTP/2 adds when the library LIB was built with it (issue 20).
h2_libs() { grep -q ' U nghttp2_' <(nm "$1" 2>/dev/null) && echo -lnghttp2; }

# tree_libs / tree_defs: the libraries and the -D/-I flags the tree BUILD was built with
# (its flags file, "CC CPPFLAGS CFLAGS | LDLIBS APP_LIBS"), so that a program linked with
# BUILD/libchopin.a, or built from the sources, has what that tree has (io_uring, HTTP/2,
# TLS, compression): issue 19, ops.sh, which linked -luring only and stopped building once
# the library needed OpenSSL and nghttp2.
tree_libs() { sed -n 's/^.* | //p' "$BUILD/flags"; }
tree_defs() { sed -n 's/ | .*//p' "$BUILD/flags" | tr ' ' '\n' | grep -E '^-(D|I/)' | tr '\n' ' '; }

# build_tool NAME [LIBS]: cc -O2 bench/NAME.c into build/bench/NAME when missing or stale.
build_tool() {
    local name=$1 src=$BENCH_DIR/$1.c bin=$OUT/$1
    shift
    mkdir -p "$OUT"
    [ -x "$bin" ] && [ "$bin" -nt "$src" ] && return 0
    log "bench: cc -O2 -o ${bin#"$ROOT"/} ${src#"$ROOT"/} $*"
    cc -O2 -Wall -Wextra -o "$bin" "$src" "$@" || die "could not build $src"
}

build_tools() {
    build_tool floor_epoll
    build_tool idle_conns
    if have_liburing; then build_tool floor_uring -luring; fi
}

# chopin_snapshot: the servers run a private copy of CHOPIN_BIN, so a rebuild by someone
# else in the middle of a benchmark cannot change the binary between rounds.
CHOPIN_RUN=$CHOPIN_BIN
chopin_snapshot() {
    [ -x "$CHOPIN_BIN" ] || return 0
    cp "$CHOPIN_BIN" "$BENCH_TMP/chopin" && CHOPIN_RUN=$BENCH_TMP/chopin
}

# ----- /proc readers ---------------------------------------------------------------------

# proc_ticks PID: utime+stime of the process, all its threads included (fields 14 and 15 of
# /proc/PID/stat, in clock ticks). The fields are counted after the ")" that ends the
# command name, which may itself hold spaces or parentheses.
proc_ticks() {
    local line rest
    read -r line 2>/dev/null < "/proc/$1/stat" || { echo 0; return; }
    rest=${line##*) }
    set -- $rest
    echo $(( ${12} + ${13} ))
}

# tree_ticks PID: proc_ticks of PID and of its children, so a server that forks workers
# (nginx with a master process, say) is charged for all the processes that serve.
tree_ticks() {
    local root=$1 sum f line rest
    sum=$(proc_ticks "$root")
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null < "$f" || continue
        rest=${line##*) }
        set -- $rest
        [ "$2" = "$root" ] || continue
        sum=$(( sum + ${12} + ${13} ))
    done
    echo "$sum"
}

# cpu_busy_ticks CPU: user+nice+system ticks spent on that CPU by everyone (not irq/softirq,
# which are mostly the loopback traffic of the benchmark itself).
cpu_busy_ticks() {
    awk -v cpu="cpu$1" '$1 == cpu { print $2 + $3 + $4; exit }' /proc/stat
}

# cpus_busy_pct: the busier of the client and server CPUs over 0.3 s, in percent, all
# time but idle and iowait. Called between runs, when the benchmark itself is idle.
cpus_busy_pct() {
    local a b
    a=$(grep -E "^cpu($CLIENT_CPU|$SERVER_CPU) " /proc/stat)
    sleep 0.3
    b=$(grep -E "^cpu($CLIENT_CPU|$SERVER_CPU) " /proc/stat)
    printf '%s\n%s\n' "$a" "$b" | awk '
        { busy = 0; for (i = 2; i <= NF; i++) if (i != 5 && i != 6) busy += $i
          if ($1 in b0) { db = busy - b0[$1]; dt = busy + $5 + $6 - t0[$1]
                          p = dt ? db * 100 / dt : 0; if (p > max) max = p }
          else { b0[$1] = busy; t0[$1] = busy + $5 + $6 } }
        END { printf "%.0f", max }'
}

# wait_quiet: other jobs may share these two CPUs; before a run, wait (up to
# BENCH_QUIET_WAIT seconds, default 20) until neither CPU is more than BENCH_QUIET_MAX
# percent busy (default 20). After three waits in a row in vain the machine is taken to be
# busy for good and the waiting stops. Runs that shared CPU 1 are flagged in the report.
QUIET_MISSES=0
wait_quiet() {
    local limit=${BENCH_QUIET_WAIT:-20} max=${BENCH_QUIET_MAX:-20} start=$SECONDS busy said=0
    [ "$limit" -gt 0 ] && [ "$QUIET_MISSES" -lt 3 ] || return 0
    while busy=$(cpus_busy_pct); [ "$busy" -gt "$max" ]; do
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            QUIET_MISSES=$((QUIET_MISSES + 1))
            log "bench: CPUs still ${busy}% busy with other work after ${limit}s: running anyway"
            [ "$QUIET_MISSES" -eq 3 ] && log "bench: the machine stays busy: no more waiting"
            return 0
        fi
        [ $said = 0 ] && log "bench: CPUs ${busy}% busy with other work: waiting up to ${limit}s" && said=1
        sleep 1
    done
    QUIET_MISSES=0
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# ----- ports -----------------------------------------------------------------------------

port_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'substr($2, length($2) - 4) == p && $4 == "0A" { found = 1 }
                      END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port: sets FREE_PORT to a port nothing listens on, never the same twice in one run
# (not printed: a $(subshell) would lose the counter). An io_uring server
# can hold its listener for a moment after it exits (the ring is torn down asynchronously),
# so reusing the port of the previous server would fail to bind.
NEXT_PORT=${BENCH_PORT_BASE:-$((20000 + RANDOM % 5000))}
free_port() {
    while port_listening "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
    FREE_PORT=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
}

# ----- servers ---------------------------------------------------------------------------
# Server names: floor_epoll, floor_uring, nginx, h2o, hyper, fasthttp, chopin-<variant> where
# variant is epoll, io_uring or io_uring+sqpoll.

# expand_servers LIST: "chopin" becomes one chopin-<variant> per CHOPIN_VARIANTS.
expand_servers() {
    local s v
    for s in $1; do
        if [ "$s" = chopin ]; then
            for v in $CHOPIN_VARIANTS; do echo "chopin-$v"; done
        else
            echo "$s"
        fi
    done
}

# external_command NAME: the command BENCH_EXTERNAL gives NAME ("name=command @PORT@;..."),
# for servers built outside the repository (libreactor, lwan: not Debian packages, so never
# part of make bench). Returns 1 when NAME is not there.
external_command() {
    local entry
    local IFS=';'
    for entry in ${BENCH_EXTERNAL:-}; do
        entry=${entry#"${entry%%[! ]*}"}
        [ "${entry%%=*}" = "$1" ] && { printf '%s\n' "${entry#*=}"; return 0; }
    done
    return 1
}

# external_names: the names BENCH_EXTERNAL defines, space-separated.
external_names() {
    local entry out=()
    local IFS=';'
    for entry in ${BENCH_EXTERNAL:-}; do
        entry=${entry#"${entry%%[! ]*}"}
        [ -n "$entry" ] && out+=("${entry%%=*}")
    done
    echo "${out[*]}"
}

# server_missing NAME: prints why NAME cannot run here, nothing if it can.
server_missing() {
    local ext
    if ext=$(external_command "$1"); then
        local bin=${ext%% *}
        [ -x "$bin" ] || command -v "$bin" > /dev/null || echo "$bin (BENCH_EXTERNAL) is not executable"
        return 0
    fi
    case $1 in
        floor_epoll) ;;
        floor_uring) have_liburing || echo "liburing-dev is not installed" ;;
        nginx) command -v nginx > /dev/null || echo "nginx is not installed (apt-get install nginx-light)" ;;
        h2o) command -v h2o > /dev/null || echo "h2o is not installed (apt-get install h2o)" ;;
        hyper | fasthttp) peer_build "$1" ;;
        chopin-*) [ -x "$CHOPIN_BIN" ] || echo "${CHOPIN_BIN#"$ROOT"/} not found (run make)" ;;
        *) echo "unknown server (known: floor_epoll floor_uring nginx h2o hyper fasthttp chopin-<variant>, or a name in BENCH_EXTERNAL)" ;;
    esac
}

# peer_build NAME: builds a peer compiled from Debian's packages (hyper: Rust, fasthttp: Go)
# into build/bench/NAME-bench with bench/peers/build_NAME.sh, offline, when the binary is
# missing or older than its sources (the build's progress goes to stderr). Prints why the
# peer cannot run, nothing if it can: its toolchain packages are missing, or the build failed.
peer_build() {
    local why rc
    why=$(BUILD=$BUILD "$BENCH_DIR/peers/build_$1.sh")
    rc=$?
    case $rc in
        0) [ -x "$OUT/$1-bench" ] || echo "$1: ${OUT#"$ROOT"/}/$1-bench missing after its build" ;;
        2) echo "$why" ;;
        *) echo "its build failed (bench/peers/build_$1.sh, status $rc: see above)" ;;
    esac
}

# peer_versions: "hyper 0.14.19, ...; fasthttp 1.31.0, go1.19.8" for the peers built here.
peer_versions() {
    local p v out=()
    for p in hyper fasthttp; do
        [ -s "$OUT/$p-bench.versions" ] && v=$(cat "$OUT/$p-bench.versions") && out+=("$v")
    done
    local IFS=';'
    echo "${out[*]}" | sed 's/;/; /g'
}

# render TEMPLATE DEST PORT DIR: fills in @PORT@ and @DIR@.
render() {
    sed -e "s|@PORT@|$3|g" -e "s|@DIR@|$4|g" "$1" > "$2"
}

# server_prepare NAME PORT DIR: writes the server's files into DIR and sets SERVER_ENV and
# SERVER_CMD, the command (without taskset) that runs it in the foreground as one process.
server_prepare() {
    local name=$1 port=$2 dir=$3 ext
    SERVER_ENV=()
    if ext=$(external_command "$name"); then
        read -r -a SERVER_CMD <<< "${ext//@PORT@/$port}"
        return 0
    fi
    case $name in
        floor_epoll | floor_uring)
            SERVER_CMD=("$OUT/$name" "$port") ;;
        nginx)
            mkdir -p "$dir/tmp"
            render "$BENCH_DIR/nginx.conf" "$dir/nginx.conf" "$port" "$dir"
            SERVER_CMD=(nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log") ;;
        h2o)
            printf 'Hello, World!' > "$dir/plaintext.txt"
            printf '{"message":"Hello, World!"}' > "$dir/json.json"
            chmod 755 "$dir"
            chmod 644 "$dir/plaintext.txt" "$dir/json.json"
            render "$BENCH_DIR/h2o.conf" "$dir/h2o.conf" "$port" "$dir"
            SERVER_CMD=(h2o -c "$dir/h2o.conf") ;;
        hyper)
            # tokio current-thread runtime: one thread accepts and serves.
            SERVER_CMD=("$OUT/hyper-bench" "$port") ;;
        fasthttp)
            # GOMAXPROCS=1 (main.go sets it too): one thread runs Go code at a time; the
            # runtime's own few threads (sysmon, idle Ms) are pinned with it by taskset.
            SERVER_ENV=(GOMAXPROCS=1)
            SERVER_CMD=("$OUT/fasthttp-bench" "$port") ;;
        chopin-*)
            local variant=${name#chopin-}
            SERVER_ENV=(PORT="$port" CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1
                        CHOPIN_BACKEND="${variant%+sqpoll}")
            [ "$variant" != "${variant%+sqpoll}" ] && SERVER_ENV+=(CHOPIN_SQPOLL=1)
            SERVER_ENV+=(${CHOPIN_EXTRA_ENV:-})
            SERVER_CMD=("$CHOPIN_BIN") ;;
    esac
}

# shell_words ARG...: the arguments as one line a shell reads back the same, quoting only
# those that need it, in single quotes (more readable than printf %q's backslashes).
shell_words() {
    local a out=()
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
            out+=("$a")
        else
            out+=("'${a//\'/\'\\\'\'}'")
        fi
    done
    echo "${out[*]}"
}

# server_command_line: the command of server_prepare as one copy-pastable line.
server_command_line() {
    shell_words "${SERVER_ENV[@]}" taskset -c "$SERVER_CPU" "${SERVER_CMD[@]}"
}

# server_start NAME: starts NAME pinned to SERVER_CPU on a fresh port, waits until it
# listens and answers correctly. Sets SERVER_PID, SERVER_PORT, SERVER_DIR, SERVER_LOG.
# Returns 1, having said why and shown the server's log, if it does not come up.
server_start() {
    local name=$1 i
    free_port
    SERVER_PORT=$FREE_PORT
    SERVER_DIR=$BENCH_TMP/$name.$SERVER_PORT
    SERVER_LOG=$SERVER_DIR/server.log
    mkdir -p "$SERVER_DIR"
    server_prepare "$name" "$SERVER_PORT" "$SERVER_DIR"
    local cmd=("${SERVER_CMD[@]}")
    [ "${cmd[0]}" = "$CHOPIN_BIN" ] && cmd[0]=$CHOPIN_RUN
    env "${SERVER_ENV[@]}" taskset -c "$SERVER_CPU" "${cmd[@]}" > "$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID"
            server_failed "$name" "exited with status $? before listening"
            untrack_pid "$SERVER_PID"
            return 1
        fi
        port_listening "$SERVER_PORT" && break
        sleep 0.1
    done
    if ! port_listening "$SERVER_PORT"; then
        server_failed "$name" "not listening on 127.0.0.1:$SERVER_PORT after 10 s"
        server_stop
        return 1
    fi
    server_verify "$name" || { server_stop; return 1; }
    server_affinity_check "$name"
}

# server_affinity_check NAME: warns about threads of the server allowed off SERVER_CPU.
# Kernels before 6.x place an io_uring SQPOLL thread without SQ_AFF on any online CPU,
# whatever taskset said: there it competes with wrk for CPU 0.
server_affinity_check() {
    local t comm cpus
    for t in /proc/"$SERVER_PID"/task/*; do
        cpus=$(awk '/^Cpus_allowed_list:/ { print $2 }' "$t/status" 2>/dev/null) || continue
        [ -z "$cpus" ] || [ "$cpus" = "$SERVER_CPU" ] && continue
        read -r comm < "$t/comm"
        log "bench: warning: $1 thread ${t##*/} ($comm) may run on CPUs $cpus, not only $SERVER_CPU"
    done
}

server_failed() {
    log "bench: $1 FAILED: $2"
    log "bench:   command: $(server_command_line)"
    if [ -s "$SERVER_LOG" ]; then
        log "bench:   last lines of its output:"
        tail -n 15 "$SERVER_LOG" | sed 's/^/bench:     /' >&2
    fi
    [ -s "$SERVER_DIR/error.log" ] && tail -n 15 "$SERVER_DIR/error.log" | sed 's/^/bench:     /' >&2
    return 0
}

# server_verify NAME: each endpoint must answer 200 with the exact body and content type,
# so no server is measured serving something cheaper (a 404, an empty body). The floors
# answer every path with the plaintext response; only that is checked for them.
server_verify() {
    local name=$1 path body ctype want_body want_type got
    for path in plaintext json; do
        [ "$path" = json ] && case $name in floor_*) continue ;; esac
        if [ $path = plaintext ]; then
            want_body='Hello, World!' want_type=text/plain
        else
            want_body='{"message":"Hello, World!"}' want_type=application/json
        fi
        got=$(curl -s --max-time 5 -o "$SERVER_DIR/body" -w '%{http_code} %{content_type}' \
              "http://127.0.0.1:$SERVER_PORT/$path") || true
        body=$(cat "$SERVER_DIR/body" 2>/dev/null)
        ctype=${got#* }
        if [ "${got%% *}" != 200 ] || [ "$body" != "$want_body" ] ||
           [ "${ctype%%;*}" != "$want_type" ]; then
            server_failed "$name" "GET /$path answered '$got' '$body'; want '200 $want_type' '$want_body'"
            return 1
        fi
    done
}

# server_stop: SIGTERM, then SIGKILL after 5 s; says so if the server had already died.
server_stop() {
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        if ! proc_wait_exit "$SERVER_PID" 50; then
            log "bench: pid $SERVER_PID did not stop on SIGTERM within 5 s: SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null
    untrack_pid "$SERVER_PID"
    return 0
}

server_alive() { kill -0 "$SERVER_PID" 2>/dev/null; }

# ----- wrk -------------------------------------------------------------------------------
# Scenarios are KIND-CONNECTIONS: plaintext-256, json-256, pipeline-256 (/plaintext,
# PIPELINE_DEPTH requests per send), latency-64 (/plaintext with wrk --latency).

PIPELINE_DEPTH=${BENCH_PIPELINE_DEPTH:-16}

scenario_title() {
    local kind=${1%-*} conns=${1##*-}
    case $kind in
        plaintext) echo "/plaintext, $conns connections" ;;
        json) echo "/json, $conns connections" ;;
        pipeline) echo "/plaintext pipelined $PIPELINE_DEPTH deep, $conns connections" ;;
        latency) echo "/plaintext latency (wrk --latency), $conns connections" ;;
    esac
}

scenario_valid() {
    [[ $1 =~ ^(plaintext|json|pipeline|latency)-[1-9][0-9]*$ ]]
}

# wrk_args SCENARIO SECONDS PORT: sets WRK_ARGS, the full wrk command line.
wrk_args() {
    local kind=${1%-*} conns=${1##*-} path=plaintext accept=$ACCEPT_PLAINTEXT
    [ "$kind" = json ] && path=json accept=$ACCEPT_JSON
    WRK_ARGS=(taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"$2"s --timeout 2s
              -H "Accept: $accept" -H 'Connection: keep-alive')
    [ "$kind" = latency ] && WRK_ARGS+=(--latency)
    [ "$kind" = pipeline ] && WRK_ARGS+=(-s "$BENCH_DIR/pipeline.lua")
    WRK_ARGS+=("http://127.0.0.1:$3/$path")
    [ "$kind" = pipeline ] && WRK_ARGS+=(-- "$PIPELINE_DEPTH")
    return 0
}

# wrk_parse FILE: prints "requests rps non2xx socket_errors p50 p90 p99" from wrk's output;
# latencies in microseconds, "-" when wrk printed no distribution.
wrk_parse() {
    awk '
        function us(v) {
            if (v ~ /us$/) return v + 0
            if (v ~ /ms$/) return v * 1000
            if (v ~ /m$/)  return v * 60000000
            if (v ~ /s$/)  return v * 1000000
            return v + 0
        }
        / requests in /             { req = $1 }
        /^Requests\/sec:/           { rps = $2 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/            { gsub(/,/, ""); sock = $4 + $6 + $8 + $10 }
        /^ +50% /                   { p50 = us($2) }
        /^ +90% /                   { p90 = us($2) }
        /^ +99% /                   { p99 = us($2) }
        END {
            printf "%d %.2f %d %d %s %s %s\n", req, rps, non2xx, sock,
                p50 == "" ? "-" : p50, p90 == "" ? "-" : p90, p99 == "" ? "-" : p99
        }' "$1"
}

# ----- one server at a time (later.sh, ops.sh) -----------------------------------------

# start CMD...: starts a server pinned to SERVER_CPU on FREE_PORT (already in CMD), waits
# until it listens. Sets PID.
start() {
    env "$@" > "$BENCH_TMP/server.log" 2>&1 &
    PID=$!
    track_pid "$PID"
    local i
    for ((i = 0; i < 100; i++)); do
        port_listening "$FREE_PORT" && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    log "bench: server did not start: $*"
    cat "$BENCH_TMP/server.log" >&2
    exit 1
}

stop() {
    kill -TERM "$PID" 2>/dev/null
    proc_wait_exit "$PID" 50 || kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    untrack_pid "$PID"
}

# run_wrk CONNS SECONDS URL: sets REQS, RPS, BAD (non-2xx + socket errors), TICKS (server).
run_wrk() {
    local t0 t1 r
    t0=$(proc_ticks "$PID")
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$1" -d"$2"s --timeout 5s "$3" > "$BENCH_TMP/wrk.out" 2>&1
    t1=$(proc_ticks "$PID")
    read -r REQS RPS r BAD _ < <(wrk_parse "$BENCH_TMP/wrk.out")
    BAD=$((BAD + r))
    TICKS=$((t1 - t0))
}

us_per_req() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "[%s-%s]", lo, hi }'; }
