#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Static files (issue 15, Benchmarks): Chopin's static directory (examples/files.c,
# chopin_router_static with its defaults) against nginx with sendfile on and
# open_file_cache (bench/static_nginx.conf), the same files from the same directory.
# One worker pinned to CPU 1, wrk pinned to CPU 0, as in run.sh; server CPU time per
# request from /proc/PID/stat (all threads), interleaved rounds, medians [min-max].
#
#   small  GET /1k.bin (1 KiB), keep-alive, STATIC_CONNS (256) connections
#   304    the same with If-None-Match (the server's own ETag) and If-Modified-Since
#   large  GET /1m.bin (1 MiB), STATIC_LARGE_CONNS (16) connections: MiB/s and CPU per MiB,
#          the server's and the server's plus wrk's (see "both" below)
#
# Usage: bench/static.sh          (after make; BUILD=dir for another tree)
# chopin-epoll-nocache is Chopin with its open-file cache off (FILES_CACHE=0).
# Variables: STATIC_ROUNDS (3), STATIC_SECONDS (5), STATIC_CONNS (256),
# STATIC_LARGE_CONNS (16), CHOPIN_VARIANTS ("epoll io_uring").
set -u
. "$(dirname "$0")/lib.sh"

ROUNDS=${STATIC_ROUNDS:-3}
SECS=${STATIC_SECONDS:-5}
CONNS=${STATIC_CONNS:-256}
LARGE_CONNS=${STATIC_LARGE_CONNS:-16}
SERVER=$BUILD/examples/files
WWW=$BENCH_TMP/www

[ -x "$SERVER" ] || die "${SERVER#"$ROOT"/} not found (run make)"
command -v nginx > /dev/null || die "nginx not found (scripts/deps.sh bench installs nginx-light)"
mkdir -p "$WWW"
head -c 1024 /dev/urandom > "$WWW/1k.bin"
head -c $((1 << 20)) /dev/urandom > "$WWW/1m.bin"
chmod 755 "$WWW"
chmod 644 "$WWW"/*.bin

# start NAME: starts server NAME on a fresh port, pinned to SERVER_CPU. Sets PID, URL.
start() {
    free_port
    local dir=$BENCH_TMP/$1.$FREE_PORT
    mkdir -p "$dir/tmp"
    case $1 in
        nginx)
            sed -e "s|@PORT@|$FREE_PORT|g" -e "s|@DIR@|$dir|g" "$BENCH_DIR/static_nginx.conf" > "$dir/nginx.conf"
            ln -s "$WWW" "$dir/www"
            taskset -c "$SERVER_CPU" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" > "$dir/log" 2>&1 & ;;
        chopin-*)
            local be=${1#chopin-} cache=1
            [ "${be%-nocache}" != "$be" ] && cache=0 && be=${be%-nocache}
            env PORT="$FREE_PORT" FILES_CACHE=$cache CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 CHOPIN_BACKEND="$be" \
                taskset -c "$SERVER_CPU" "$SERVER" "$WWW" > "$dir/log" 2>&1 & ;;
    esac
    PID=$!
    track_pid "$PID"
    URL=http://127.0.0.1:$FREE_PORT
    local i
    for ((i = 0; i < 100; i++)); do
        port_listening "$FREE_PORT" && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    port_listening "$FREE_PORT" || { cat "$dir/log" >&2; die "$1 did not start"; }
    # Byte for byte, and the 304 really is one, before anything is measured.
    curl -s --max-time 5 -o "$dir/1k" "$URL/1k.bin" && cmp -s "$dir/1k" "$WWW/1k.bin" || die "$1: /1k.bin differs"
    curl -s --max-time 5 -o "$dir/1m" "$URL/1m.bin" && cmp -s "$dir/1m" "$WWW/1m.bin" || die "$1: /1m.bin differs"
    ETAG=$(curl -s -D - -o /dev/null "$URL/1k.bin" | awk -F': ' 'tolower($1) == "etag" { sub(/\r$/, "", $2); print $2 }')
    LASTMOD=$(curl -s -D - -o /dev/null "$URL/1k.bin" | awk -F': ' 'tolower($1) == "last-modified" { sub(/\r$/, "", $2); print $2 }')
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" -H "If-Modified-Since: $LASTMOD" "$URL/1k.bin")
    [ "$code" = 304 ] || die "$1: conditional GET answered $code"
}

stop() {
    kill -TERM "$PID" 2>/dev/null
    proc_wait_exit "$PID" 50 || kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    untrack_pid "$PID"
}

# run_wrk CONNS PATH [HEADER...]: sets REQS, RPS, BAD, TICKS (server), CLIENT (wrk's user +
# system seconds).
run_wrk() {
    local conns=$1 path=$2 t0 t1 r
    shift 2
    local hdr=()
    for h in "$@"; do hdr+=(-H "$h"); done
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d1s "${hdr[@]}" "$URL$path" > /dev/null 2>&1
    t0=$(proc_ticks "$PID")
    /usr/bin/time -f '%U %S' -o "$BENCH_TMP/time.out" \
        taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"$SECS"s --timeout 5s "${hdr[@]}" "$URL$path" > "$BENCH_TMP/wrk.out" 2>&1
    t1=$(proc_ticks "$PID")
    CLIENT=$(awk '{ print $1 + $2 }' "$BENCH_TMP/time.out")
    read -r REQS RPS r BAD _ < <(wrk_parse "$BENCH_TMP/wrk.out")
    BAD=$((BAD + r))
    TICKS=$((t1 - t0))
}

us_per() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "[%s-%s]", lo, hi }'; }

servers=(nginx)
for be in $CHOPIN_VARIANTS; do servers+=("chopin-$be"); done
# Without the open-file cache: every request opens, stats and (small files) reads its file
# on the worker, which is what a cold lookup costs (docs/static.md, "What blocks").
servers+=(chopin-epoll-nocache)

echo "# bench/static.sh at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), $(date -u +%F), $(uname -r), $(nproc) CPUs, $(nginx -v 2>&1)"
: > "$BENCH_TMP/results"
for ((round = 0; round < ROUNDS; round++)); do
    for ((k = 0; k < ${#servers[@]}; k++)); do
        s=${servers[$(((k + round) % ${#servers[@]}))]}
        start "$s"
        wait_quiet
        run_wrk "$CONNS" /1k.bin
        echo "$s small $(us_per "$TICKS" "$REQS") $RPS $BAD" >> "$BENCH_TMP/results"
        wait_quiet
        run_wrk "$CONNS" /1k.bin "If-None-Match: $ETAG" "If-Modified-Since: $LASTMOD"
        echo "$s 304 $(us_per "$TICKS" "$REQS") $RPS $BAD" >> "$BENCH_TMP/results"
        wait_quiet
        run_wrk "$LARGE_CONNS" /1m.bin
        # CPU per MiB sent, and MiB/s: each answer is 1 MiB of body.
        echo "$s large $(us_per "$TICKS" "$REQS") $RPS $BAD" >> "$BENCH_TMP/results"
        # On loopback the receiver's protocol work runs in whichever process transmits: it
        # moves between server and client with the socket buffers, so their sum is shown too.
        echo "$s both $(awk -v t="$TICKS" -v hz="$CLK_TCK" -v c="$CLIENT" -v n="$REQS" 'BEGIN { printf "%.2f", n ? (t / hz + c) * 1e6 / n : 0 }') $RPS $BAD" >> "$BENCH_TMP/results"
        stop
    done
done

col() { awk -v s="$1" -v k="$2" -v c="$3" '$1 == s && $2 == k && $5 == 0 { print $c }' "$BENCH_TMP/results"; }
table() { # KIND TITLE UNIT
    echo
    echo "## $2 (${SECS}s x $ROUNDS rounds)"
    echo
    echo "| server | CPU µs/$3 | vs nginx | $3/s |"
    echo "|---|---|---|---|"
    local base
    base=$(col nginx "$1" 3 | median)
    for s in "${servers[@]}"; do
        local cpu rps
        cpu=$(col "$s" "$1" 3 | median)
        rps=$(col "$s" "$1" 4 | median)
        printf '| %s | %s %s | %s | %.0f %s |\n' "$s" "$cpu" "$(col "$s" "$1" 3 | spread)" \
            "$(awk -v a="$cpu" -v b="$base" 'BEGIN { printf "%.2f", b ? a / b : 0 }')" \
            "${rps:-0}" "$(col "$s" "$1" 4 | spread)"
    done
    local bad
    bad=$(awk -v k="$1" '$2 == k && $5 != 0 { print $1 ": " $5 " errors" }' "$BENCH_TMP/results")
    [ -n "$bad" ] && printf 'Runs left out (errors): %s\n' "$(echo "$bad" | tr '\n' ';')"
    return 0
}
table small "1 KiB file, keep-alive, $CONNS connections" request
table 304 "304 revalidation of the 1 KiB file (If-None-Match + If-Modified-Since), $CONNS connections" request
table large "1 MiB file, $LARGE_CONNS connections (server CPU per MiB of body)" MiB
table both "1 MiB file, $LARGE_CONNS connections (server + wrk CPU per MiB of body)" MiB
