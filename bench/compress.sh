#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compression of a dynamic answer (issue 15, Benchmarks): gzip of a 10 KiB JSON answer by
# Chopin's chopin_compress (libdeflate) against nginx's gzip module (zlib) at the same level,
# nginx serving the same bytes from a file (open_file_cache, so no open per request); brotli
# and zstd from Chopin beside them, and both servers uncompressed as the baseline.
#
# One worker / one nginx process pinned to CPU 1, wrk -t1 -c64 pinned to CPU 0, every request
# with "Accept-Encoding: gzip, br, zstd" (each Chopin prefix offers one coding). Per case:
# server CPU time per request (/proc/PID/stat, all threads) over interleaved rounds (the
# median and [min-max]), req/s, and the answer's size on the wire and its ratio to the
# original. Before measuring, every case is checked: the right Content-Encoding, and curl
# --compressed decodes it back to the file byte for byte.
#
# Usage: bench/compress.sh        (after make; BUILD=dir for another tree)
# Variables: COMPRESS_LEVELS ("1 6": the gzip levels compared), COMPRESS_BR_LEVEL (4),
# COMPRESS_ZSTD_LEVEL (3), COMPRESS_ROUNDS (3), COMPRESS_SECONDS (5), COMPRESS_CONNS (64).
set -u
. "$(dirname "$0")/lib.sh"

LEVELS=${COMPRESS_LEVELS:-1 6}
BR_LEVEL=${COMPRESS_BR_LEVEL:-4}
ZSTD_LEVEL=${COMPRESS_ZSTD_LEVEL:-3}
ROUNDS=${COMPRESS_ROUNDS:-3}
SECS=${COMPRESS_SECONDS:-5}
CONNS=${COMPRESS_CONNS:-64}
LIB=$BUILD/libchopin.a
SERVER=$OUT/compress_server
ASK='Accept-Encoding: gzip, br, zstd'

[ -f "$LIB" ] || die "${LIB#"$ROOT"/} not found (run make)"
command -v nginx > /dev/null || die "nginx is not installed (apt-get install nginx-light)"
mkdir -p "$OUT"
libs=$(pkg-config --libs zlib libdeflate libbrotlienc libzstd 2>/dev/null) ||
    die "the compression libraries are missing (scripts/deps.sh build)"
have_liburing && libs="$libs -luring"
log "bench: cc -O2 -o ${SERVER#"$ROOT"/} bench/compress_server.c ${LIB#"$ROOT"/} $libs"
cc -O2 -Wall -Wextra -Wno-unused-parameter -I"$ROOT/include" -o "$SERVER" \
    "$BENCH_DIR/compress_server.c" "$LIB" $libs -pthread || die "could not build compress_server"

# The answer: a todo list as JSON, cut to whole records just under 10 KiB.
DATA=$BENCH_TMP/data.json
awk 'BEGIN {
    s = "["
    for (i = 1; ; i++) {
        rec = sprintf("%s{\"id\":%d,\"title\":\"todo number %d\",\"done\":%s,\"created_at\":%d}",
                      i > 1 ? "," : "", i, i * 7 % 1000, i % 3 ? "false" : "true", 1700000000 + i * 37)
        if (length(s) + length(rec) + 1 > 10240) break
        s = s rec
    }
    printf "%s]", s
}' > "$DATA"
SIZE=$(stat -c %s "$DATA")

# start NAME CMD...: a server on FREE_PORT pinned to SERVER_CPU; sets PID_<NAME>.
start() {
    local name=$1 i pid
    shift
    env "$@" > "$BENCH_TMP/$name.log" 2>&1 &
    pid=$!
    track_pid "$pid"
    for ((i = 0; i < 100; i++)); do
        port_listening "$FREE_PORT" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    port_listening "$FREE_PORT" || { cat "$BENCH_TMP/$name.log" >&2; die "$name did not start: $*"; }
    printf -v "PID_$name" '%s' "$pid"
    printf -v "PORT_$name" '%s' "$FREE_PORT"
}

stop() {
    kill -TERM "$1" 2>/dev/null
    proc_wait_exit "$1" 50 || kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    untrack_pid "$1"
}

# check SERVER PATH CODING: the answer has that Content-Encoding ("" for none) and decodes
# back to the file; prints its size on the wire.
check() {
    local port=$1 path=$2 coding=$3 got size
    got=$(curl -s --max-time 5 -H "$ASK" -D "$BENCH_TMP/h" -o "$BENCH_TMP/b" -w '%{size_download}' \
          "http://127.0.0.1:$port$path") || die "$path: curl failed"
    size=$got
    got=$(awk 'tolower($1) == "content-encoding:" { sub(/\r$/, "", $2); print $2 }' "$BENCH_TMP/h")
    [ "$got" = "$coding" ] || die "$path on port $port: Content-Encoding '$got', want '$coding'"
    curl -s --max-time 5 --compressed -H "$ASK" -o "$BENCH_TMP/d" "http://127.0.0.1:$port$path"
    cmp -s "$BENCH_TMP/d" "$DATA" || die "$path on port $port: does not decode back to the file"
    echo "$size"
}

us_per_req() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "[%s-%s]", lo, hi }'; }

echo "# bench/compress.sh at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), $(date -u +%F), $(uname -r), $(nproc) CPUs"
echo "# $(nginx -v 2>&1 | sed 's/^nginx version: //'), zlib $(pkg-config --modversion zlib), libdeflate $(pkg-config --modversion libdeflate), brotli $(pkg-config --modversion libbrotlienc), zstd $(pkg-config --modversion libzstd)"
echo "# answer: $SIZE bytes of JSON; wrk -t1 -c$CONNS -d${SECS}s -H '$ASK', $ROUNDS rounds; server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"

for level in $LEVELS; do
    mkdir -p "$BENCH_TMP/nginx/tmp"
    cp "$DATA" "$BENCH_TMP/nginx/data.json"
    chmod -R a+rX "$BENCH_TMP/nginx"
    free_port
    sed -e "s|@PORT@|$FREE_PORT|g" -e "s|@DIR@|$BENCH_TMP/nginx|g" -e "s|@LEVEL@|$level|g" \
        "$BENCH_DIR/compress_nginx.conf" > "$BENCH_TMP/nginx/nginx.conf"
    start nginx taskset -c "$SERVER_CPU" nginx -p "$BENCH_TMP/nginx" -c "$BENCH_TMP/nginx/nginx.conf" \
          -e "$BENCH_TMP/nginx/error.log"
    free_port
    start chopin CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 CHOPIN_BACKEND=epoll GZIP_LEVEL="$level" \
          BR_LEVEL="$BR_LEVEL" ZSTD_LEVEL="$ZSTD_LEVEL" taskset -c "$SERVER_CPU" "$SERVER" "$FREE_PORT" "$DATA"

    # case: label server path coding level
    cases=("nginx identity" "nginx gzip" "chopin identity" "chopin gzip" "chopin br" "chopin zstd")
    : > "$BENCH_TMP/runs"
    : > "$BENCH_TMP/sizes"
    for c in "${cases[@]}"; do
        read -r srv coding <<< "$c"
        port_var=PORT_$srv
        want=$coding
        [ "$coding" = identity ] && want=
        echo "$srv $coding $(check "${!port_var}" "/$coding/json" "$want")" >> "$BENCH_TMP/sizes"
    done
    for ((round = 0; round < ROUNDS; round++)); do
        for ((k = 0; k < ${#cases[@]}; k++)); do
            read -r srv coding <<< "${cases[$(((k + round) % ${#cases[@]}))]}"
            port_var=PORT_$srv pid_var=PID_$srv
            url=http://127.0.0.1:${!port_var}/$coding/json
            wait_quiet
            taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s -H "$ASK" "$url" > /dev/null 2>&1
            t0=$(proc_ticks "${!pid_var}")
            taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$SECS"s --timeout 5s -H "$ASK" "$url" \
                > "$BENCH_TMP/wrk.out" 2>&1
            t1=$(proc_ticks "${!pid_var}")
            read -r reqs rps non2xx sock _ < <(wrk_parse "$BENCH_TMP/wrk.out")
            if [ $((non2xx + sock)) -ne 0 ]; then
                log "bench: $srv $coding: $non2xx non-2xx, $sock socket errors (run left out)"
                continue
            fi
            echo "$srv $coding $(us_per_req $((t1 - t0)) "$reqs") $rps" >> "$BENCH_TMP/runs"
        done
    done
    stop "$PID_nginx"
    stop "$PID_chopin"

    base=$(awk '$1 == "nginx" && $2 == "gzip" { print $3 }' "$BENCH_TMP/runs" | median)
    echo
    echo "## gzip level $level (brotli $BR_LEVEL, zstd $ZSTD_LEVEL): a $SIZE-byte JSON answer"
    echo
    echo "| server | coding | bytes sent | of the original | CPU µs/request | vs nginx gzip | req/s |"
    echo "|---|---|---|---|---|---|---|"
    for c in "${cases[@]}"; do
        read -r srv coding <<< "$c"
        size=$(awk -v s="$srv" -v c="$coding" '$1 == s && $2 == c { print $3 }' "$BENCH_TMP/sizes")
        sel() { awk -v s="$srv" -v c="$coding" -v f="$1" '$1 == s && $2 == c { print $f }' "$BENCH_TMP/runs"; }
        cpu=$(sel 3 | median)
        printf '| %s | %s | %s | %.1f%% | %s %s | %s | %.0f |\n' "$srv" "$coding" "$size" \
            "$(awk -v a="$size" -v b="$SIZE" 'BEGIN { print a * 100 / b }')" "$cpu" "$(sel 3 | spread)" \
            "$(awk -v a="$cpu" -v b="$base" 'BEGIN { if (b) printf "%.2f", a / b; else print "-" }')" \
            "$(sel 4 | median)"
    done
done
