#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP/2 (issue 20): h2load against Chopin's demo (h2c with prior knowledge), nginx
# (listen ... http2, h2c) and h2o (h2c), 64 connections of 100 streams each, /plaintext
# and /json: server CPU time per request, as bench/run.sh measures it (one server thread
# pinned to CPU 1, h2load one thread on CPU 0, rounds interleaved, medians and spread).
# Then the same for Chopin over HTTP/1.1 pipelined 100 deep (h2load --h1): what HTTP/2
# costs per request over HTTP/1.1.
# H2_TLS=1: h2 over TLS instead (ALPN h2), every server with the same certificate (ECDSA
# P-256, tests/tls/mkcerts.sh), group X25519 and suite (TLS 1.3 TLS_AES_128_GCM_SHA256;
# h2o 2.2 has no TLS 1.3: ECDHE-ECDSA-AES128-GCM-SHA256); no HTTP/1.1 comparison.
# Usage: bench/h2.sh   (BENCH_DURATION=5 BENCH_ROUNDS=3 BENCH_CONNS=64 BENCH_STREAMS=100
#                       H2_SERVERS="chopin-epoll chopin-io_uring nginx h2o chopin-h1-epoll"
#                       H2_TLS=1)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-64}
STREAMS=${BENCH_STREAMS:-100}
VARIANTS=""
for v in $CHOPIN_VARIANTS; do VARIANTS="$VARIANTS chopin-$v"; done
TLS=${H2_TLS:-0}
if [ "$TLS" = 1 ]; then
    SERVERS=${H2_SERVERS:-"$VARIANTS nginx h2o"}
    SCHEME=https
else
    SERVERS=${H2_SERVERS:-"$VARIANTS nginx h2o chopin-h1-epoll"}
    SCHEME=http
fi
PATHS=${H2_PATHS:-"plaintext json"}
mkdir -p "$OUT"
RESULTS=$OUT/h2-$(date +%Y-%m-%d-%H%M%S).txt
command -v h2load >/dev/null || die "h2load is not installed (nghttp2-client: scripts/deps.sh bench)"
grep -q 'U nghttp2_session_mem_recv' <(nm "$BUILD/libchopin.a" 2>/dev/null) ||
  die "$BUILD/libchopin.a has no HTTP/2 (libnghttp2-dev missing when it was built)"
if [ "$TLS" = 1 ]; then
    "$ROOT/tests/tls/mkcerts.sh" "$BENCH_TMP/certs" || die "cannot make certificates"
fi
raise_fd_limit 4096
chopin_snapshot

say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }

# h2_prepare_tls NAME PORT DIR: as h2_prepare, h2 over TLS on PORT.
h2_prepare_tls() {
    local name=$1 port=$2 dir=$3
    cp "$BENCH_TMP/certs/a.pem" "$dir/cert.pem"
    cp "$BENCH_TMP/certs/a.key" "$dir/key.pem"
    chmod 644 "$dir/cert.pem" "$dir/key.pem" # h2o reads them as nobody
    case $name in
        nginx)
            mkdir -p "$dir/tmp"
            render "$BENCH_DIR/nginx_h2_tls.conf" "$dir/nginx.conf" "$port" "$dir"
            SERVER_ENV=()
            SERVER_CMD=(nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log") ;;
        h2o)
            server_prepare h2o "$port" "$dir"
            render "$BENCH_DIR/h2o_h2_tls.conf" "$dir/h2o.conf" "$port" "$dir" ;;
        *) # the demo: its https:// listener on PORT, its plain one elsewhere
            free_port
            server_prepare "$name" "$FREE_PORT" "$dir"
            SERVER_ENV+=(TLS_PORT="$port" CHOPIN_TLS_CERT="$dir/cert.pem" CHOPIN_TLS_KEY="$dir/key.pem"
                         CHOPIN_TLS_CIPHERSUITES=TLS_AES_128_GCM_SHA256 CHOPIN_TLS_GROUPS=X25519
                         CHOPIN_TLS_CIPHERS=ECDHE-ECDSA-AES128-GCM-SHA256) ;;
    esac
}

# h2_prepare NAME PORT DIR: SERVER_ENV and SERVER_CMD for NAME (h2c on PORT).
h2_prepare() {
    local name=$1 port=$2 dir=$3
    [ "$TLS" = 1 ] && { h2_prepare_tls "$@"; return; }
    case $name in
        nginx)
            mkdir -p "$dir/tmp"
            render "$BENCH_DIR/nginx_h2.conf" "$dir/nginx.conf" "$port" "$dir"
            SERVER_ENV=()
            SERVER_CMD=(nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log") ;;
        chopin-h1-*)
            server_prepare "chopin-${name#chopin-h1-}" "$port" "$dir" ;;
        *)
            server_prepare "$name" "$port" "$dir"
            SERVER_ENV+=(CHOPIN_H2C=1) ;;
    esac
}

# h2_start NAME: as lib.sh's server_start, checked with curl over h2c (HTTP/1.1 for
# chopin-h1-*: nginx's h2c listener speaks nothing else).
h2_start() {
    local name=$1 i proto=--http2-prior-knowledge
    free_port
    SERVER_PORT=$FREE_PORT
    SERVER_DIR=$BENCH_TMP/$name.$SERVER_PORT
    SERVER_LOG=$SERVER_DIR/server.log
    mkdir -p "$SERVER_DIR"
    h2_prepare "$name" "$SERVER_PORT" "$SERVER_DIR"
    local cmd=("${SERVER_CMD[@]}")
    [ "${cmd[0]}" = "$CHOPIN_BIN" ] && cmd[0]=$CHOPIN_RUN
    env "${SERVER_ENV[@]}" taskset -c "$SERVER_CPU" "${cmd[@]}" > "$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    track_pid "$SERVER_PID"
    for ((i = 0; i < 100; i++)); do
        port_listening "$SERVER_PORT" && break
        sleep 0.1
    done
    case $name in chopin-h1-*) proto=--http1.1 ;; esac
    [ "$TLS" = 1 ] && proto=--http2
    local got
    got=$(curl -sk $proto --max-time 5 -w ' %{http_code} %{http_version}' "$SCHEME://127.0.0.1:$SERVER_PORT/json")
    if [ "$got" != '{"message":"Hello, World!"} 200 '"$([ $proto = --http1.1 ] && echo 1.1 || echo 2)" ]; then
        server_failed "$name" "GET /json over $proto answered '$got'"
        server_stop
        return 1
    fi
}

# measure NAME PATH: one h2load run; prints "req/s us_per_req ok".
measure() {
    local name=$1 path=$2 h1=() before after out done ok
    case $name in chopin-h1-*) h1=(--h1) ;; esac
    wait_quiet
    before=$(tree_ticks "$SERVER_PID")
    out=$(taskset -c "$CLIENT_CPU" h2load "${h1[@]}" -t1 -c "$CONNS" -m "$STREAMS" -D "$DURATION" \
          --warm-up-time=1 "$SCHEME://127.0.0.1:$SERVER_PORT/$path" 2>&1)
    after=$(tree_ticks "$SERVER_PID")
    done=$(printf '%s\n' "$out" | sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p')
    ok=$(printf '%s\n' "$out" | grep -c 'status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx')
    local rps
    rps=$(printf '%s\n' "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
    # (warm-up requests are not counted by h2load but cost CPU: the ticks cover them too,
    # so the figure is an upper bound, the same for every server)
    awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="${done:-0}" -v r="${rps:-0}" -v ok="$ok" \
        'BEGIN { printf "%.0f %.2f %d\n", r, n ? t / hz * 1e6 / n : 0, ok }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f (%.2f-%.2f)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }

say "# bench/h2.sh: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -srm), $(nproc) CPUs"
say "# commit $(git -C "$ROOT" rev-parse --short HEAD), $(nginx -v 2>&1 | sed 's/.*: //'), $(h2o --version 2>/dev/null | head -1), h2load $(h2load --version 2>&1 | awk '{ print $2; exit }')"
say "# $([ "$TLS" = 1 ] && echo 'h2 over TLS (ALPN), same certificate and group; TLS 1.3 AES-128-GCM (h2o: TLS 1.2 ECDHE-ECDSA-AES128-GCM)' || echo 'h2c with prior knowledge')"
say "# h2load -t1 -c $CONNS -m $STREAMS -D $DURATION --warm-up-time=1, pinned to CPU $CLIENT_CPU; servers one thread on CPU $SERVER_CPU; $ROUNDS rounds"
declare -A CPU RPS
for ((round = 0; round < ROUNDS; round++)); do
    list=($SERVERS)
    n=${#list[@]}
    for ((k = 0; k < n; k++)); do
        name=${list[$(((k + round) % n))]}
        h2_start "$name" || continue
        for path in $PATHS; do
            read -r rps us ok < <(measure "$name" "$path")
            if [ "$ok" != 1 ]; then
                log "bench: $name /$path: errors or non-2xx answers: left out"
                continue
            fi
            CPU[$name.$path]+="$us "
            RPS[$name.$path]+="$rps "
            log "round $((round + 1)): $name /$path: $rps req/s, $us us/req"
        done
        server_stop
    done
done
say ""
say "$(printf '%-18s %-9s %-26s %s' server path 'us CPU/request (spread)' 'req/s (spread)')"
for name in $SERVERS; do
    for path in $PATHS; do
        [ -n "${CPU[$name.$path]:-}" ] || continue
        say "$(printf '%-18s %-9s %-26s %s' "$name" "/$path" "$(tr ' ' '\n' <<< "${CPU[$name.$path]}" | grep . | median)" "$(tr ' ' '\n' <<< "${RPS[$name.$path]}" | grep . | median)")"
    done
done
say ""
# Ratios: each Chopin h2 variant against the best peer, and against its HTTP/1.1 self.
for path in $PATHS; do
    best= bestname=
    for peer in nginx h2o; do
        v=$(tr ' ' '\n' <<< "${CPU[$peer.$path]:-}" | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')
        [ -n "$v" ] || continue
        if [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$v bestname=$peer; fi
    done
    h1=$(tr ' ' '\n' <<< "${CPU[chopin-h1-epoll.$path]:-}" | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')
    for v in $VARIANTS; do
        c=$(tr ' ' '\n' <<< "${CPU[$v.$path]:-}" | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')
        [ -n "$c" ] || continue
        [ -n "$best" ] && say "$(printf '/%-9s %-16s / best peer (%s): %.2fx' "$path" "$v" "$bestname" "$(awk -v a="$c" -v b="$best" 'BEGIN { print a / b }')")"
        [ -n "$h1" ] && say "$(printf '/%-9s %-16s h2 - HTTP/1.1 pipelined (epoll): %+.2f us/request' "$path" "$v" "$(awk -v a="$c" -v b="$h1" 'BEGIN { print a - b }')")"
    done
done
say "# results: $RESULTS"
