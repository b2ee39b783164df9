#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/tls.sh: HTTPS (issue 16), Chopin against nginx and h2o with the same certificate
# (ECDSA P-256 from tests/tls/mkcerts.sh), group (X25519) and suite (TLS 1.3
# TLS_AES_128_GCM_SHA256; TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 where a server has no 1.3),
# one worker pinned to CPU 1, the load pinned to CPU 0, interleaved rounds, medians:
#
#   keepalive-256  wrk -t1 -c256 https://…/plaintext: req/s and server CPU per request
#   full           new connections, a full handshake each (build/bench/tls_client full):
#                  handshakes/s and server CPU per handshake (+ one request)
#   resumed        the same, every handshake resumed from a ticket (tls_client resumed)
#   file-1m        wrk -t1 -c8 https://…/file, a 1 MiB file: MiB/s and server CPU per MiB
#   plain-256      (Chopin) wrk -c256 http://…/plaintext on the plain listener of the same
#                  process: the cost of TLS over plain
#
# Chopin is bench/tls_server.c (an https:// and a plain listener, /plaintext and /file).
# Usage: bench/tls.sh   BENCH_DURATION=5 BENCH_ROUNDS=3
#        BENCH_TLS_SERVERS="chopin-epoll chopin-io_uring nginx h2o"
set -uo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
SERVERS=${BENCH_TLS_SERVERS:-"chopin-epoll chopin-io_uring nginx h2o"}
RAW=$BENCH_TMP/tls.raw

build() {
    mkdir -p "$OUT"
    # (grep reads a process substitution: under pipefail, nm killed by grep -q's early exit
    # would fail a pipe)
    grep -qE ' T chopin__tls_transport_install$' <(nm "$BUILD/libchopin.a" 2>/dev/null) ||
        die "$BUILD/libchopin.a has no TLS (OpenSSL 3 missing when it was built)"
    local libs="-pthread -lssl -lcrypto $(h2_libs "$BUILD/libchopin.a")"
    have_liburing && libs="$libs -luring"
    log "bench: cc -O2 bench/tls_server.c, bench/tls_client.c"
    cc -O2 -Wall -Wextra -I"$ROOT/include" -o "$OUT/tls_server" "$BENCH_DIR/tls_server.c" \
        "$BUILD/libchopin.a" $libs || die "cannot build tls_server"
    cc -O2 -Wall -Wextra -o "$OUT/tls_client" "$BENCH_DIR/tls_client.c" -lssl -lcrypto ||
        die "cannot build tls_client"
    "$ROOT/tests/tls/mkcerts.sh" "$BENCH_TMP/certs" || die "cannot make certificates"
    head -c $((1 << 20)) /dev/urandom > "$BENCH_TMP/file.bin"
}

# start NAME: sets PID, PORT (TLS), PLAIN (Chopin's plain listener), DIR.
start() {
    local name=$1 i
    free_port; PORT=$FREE_PORT
    free_port; PLAIN=$FREE_PORT
    DIR=$BENCH_TMP/$name.$PORT
    mkdir -p "$DIR/tmp"
    chmod 755 "$DIR"
    cp "$BENCH_TMP/certs/a.pem" "$DIR/cert.pem"
    cp "$BENCH_TMP/certs/a.key" "$DIR/key.pem"
    cp "$BENCH_TMP/file.bin" "$DIR/file.bin"
    printf 'Hello, World!' > "$DIR/plaintext.txt"
    chmod 644 "$DIR"/*.pem "$DIR"/*.bin "$DIR"/*.txt # h2o reads them as nobody
    case $name in
        chopin-*)
            CMD=(env CHOPIN_BACKEND="${name#chopin-}" CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1
                 CHOPIN_TLS_CERT="$DIR/cert.pem" CHOPIN_TLS_KEY="$DIR/key.pem"
                 CHOPIN_TLS_CIPHERSUITES=TLS_AES_128_GCM_SHA256 CHOPIN_TLS_GROUPS=X25519
                 CHOPIN_TLS_CIPHERS=ECDHE-ECDSA-AES128-GCM-SHA256
                 "$OUT/tls_server" "$PORT" "$PLAIN" "$DIR/file.bin") ;;
        nginx)
            render "$BENCH_DIR/nginx_tls.conf" "$DIR/nginx.conf" "$PORT" "$DIR"
            CMD=(nginx -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log") ;;
        h2o)
            render "$BENCH_DIR/h2o_tls.conf" "$DIR/h2o.conf" "$PORT" "$DIR"
            CMD=(h2o -c "$DIR/h2o.conf") ;;
        *) die "unknown server $name" ;;
    esac
    taskset -c "$SERVER_CPU" "${CMD[@]}" > "$DIR/log" 2>&1 &
    PID=$!
    track_pid "$PID"
    for ((i = 0; i < 100; i++)); do
        port_listening "$PORT" && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$(curl -sk --max-time 5 "https://127.0.0.1:$PORT/plaintext")" != 'Hello, World!' ]; then
        log "bench: $name did not answer over TLS: $(shell_words "${CMD[@]}")"
        tail -n 5 "$DIR/log" "$DIR/error.log" 2>/dev/null | sed 's/^/bench:   /' >&2
        stop
        return 1
    fi
}

stop() {
    kill -TERM "$PID" 2>/dev/null
    proc_wait_exit "$PID" 50 || kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    untrack_pid "$PID"
}

# measure NAME SCENARIO: one run; appends "NAME SCENARIO rate cpu_us_per_unit" to RAW.
measure() {
    local name=$1 sc=$2 t0 t1 out=$BENCH_TMP/run.out units rate secs
    local url="https://127.0.0.1:$PORT"
    [ "$sc" = plain-256 ] && url="http://127.0.0.1:$PLAIN"
    wait_quiet
    case $sc in
        keepalive-256 | plain-256)
            taskset -c "$CLIENT_CPU" wrk -t1 -c256 -d1s "$url/plaintext" > /dev/null 2>&1
            t0=$(tree_ticks "$PID")
            taskset -c "$CLIENT_CPU" wrk -t1 -c256 -d"$DURATION"s --timeout 2s "$url/plaintext" > "$out" 2>&1
            t1=$(tree_ticks "$PID")
            read -r units rate _ < <(wrk_parse "$out") ;;
        file-1m)
            t0=$(tree_ticks "$PID")
            taskset -c "$CLIENT_CPU" wrk -t1 -c8 -d"$DURATION"s --timeout 5s "$url/file" > "$out" 2>&1
            t1=$(tree_ticks "$PID")
            read -r units rate _ < <(wrk_parse "$out") ;; # 1 request = 1 MiB
        full | resumed)
            local version=TLS1.3
            [ "$name" = h2o ] && version=TLS1.2
            t0=$(tree_ticks "$PID")
            taskset -c "$CLIENT_CPU" "$OUT/tls_client" "$sc" "$PORT" "$DURATION" "$version" > "$out" 2>&1
            t1=$(tree_ticks "$PID")
            read -r _ units _ _ _ _ _ secs < "$out"
            rate=$(awk -v n="$units" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')
            grep -q ' failed 0 ' "$out" || log "bench: $name $sc: $(cat "$out")" ;;
    esac
    local cpu
    cpu=$(awk -v d=$((t1 - t0)) -v n="${units:-0}" -v hz="$CLK_TCK" \
          'BEGIN { printf "%.2f", (n > 0 ? d / hz * 1e6 / n : 0) }')
    echo "$name $sc ${rate:-0} $cpu" >> "$RAW"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2); else print "-" }'; }
col() { awk -v s="$1" -v c="$2" -v k="$3" '$1 == s && $2 == c { print $k }' "$RAW" | median; }

report() {
    local sc s unit rate_name cpu_name
    echo "# TLS (bench/tls.sh): $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -r), $(nproc) CPUs, ${DURATION}s x $ROUNDS rounds, medians"
    echo "# $(nginx -v 2>&1 | sed 's/.*: //'), $(h2o --version 2>/dev/null | head -1), $(openssl version)"
    for sc in keepalive-256 full resumed file-1m plain-256; do
        case $sc in
            keepalive-256) rate_name="req/s" cpu_name="CPU us/req" ;;
            plain-256) rate_name="req/s" cpu_name="CPU us/req" ;;
            full | resumed) rate_name="handshakes/s" cpu_name="CPU us/handshake" ;;
            file-1m) rate_name="MiB/s" cpu_name="CPU us/MiB" ;;
        esac
        echo
        echo "## $sc"
        printf '%-18s %14s %18s %14s\n' server "$rate_name" "$cpu_name" "CPU vs nginx"
        local ncpu
        ncpu=$(col nginx "$sc" 4)
        for s in $SERVERS; do
            [ "$sc" = plain-256 ] && [ "${s#chopin}" = "$s" ] && continue
            local r c
            r=$(col "$s" "$sc" 3) c=$(col "$s" "$sc" 4)
            [ "$r" = - ] && continue
            printf '%-18s %14s %18s %14s\n' "$s" "$r" "$c" \
                "$(awk -v a="$c" -v b="$ncpu" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2fx", a / b; else print "-" }')"
        done
    done
    echo
    echo "## the cost of TLS for Chopin (keepalive-256 over plain-256, CPU per request)"
    for s in $SERVERS; do
        [ "${s#chopin}" = "$s" ] && continue
        awk -v n="$s" -v t="$(col "$s" keepalive-256 4)" -v p="$(col "$s" plain-256 4)" \
            'BEGIN { if (p + 0 > 0) printf "%-18s %.2f us TLS, %.2f us plain: +%.2f us (%.2fx)\n", n, t, p, t - p, t / p }'
    done
}

check_machine() {
    command -v wrk > /dev/null || die "wrk is not installed (scripts/deps.sh bench)"
    [ "$(nproc --all)" -gt "$SERVER_CPU" ] || die "needs CPU $SERVER_CPU"
    raise_fd_limit 4096
}

check_machine
build
: > "$RAW"
for ((round = 1; round <= ROUNDS; round++)); do
    list=($SERVERS)
    n=${#list[@]}
    for ((k = 0; k < n; k++)); do
        s=${list[$(((k + round - 1) % n))]}
        command -v "${s%%-*}" > /dev/null 2>&1 || [ "${s#chopin}" != "$s" ] || { log "bench: skipping $s: not installed"; continue; }
        start "$s" || continue
        for sc in keepalive-256 full resumed file-1m plain-256; do
            [ "$sc" = plain-256 ] && [ "${s#chopin}" = "$s" ] && continue
            measure "$s" "$sc"
        done
        stop
    done
    log "bench: tls round $round/$ROUNDS done"
done
cp "$RAW" "$OUT/tls.raw"
report | tee "$OUT/tls-$(date +%Y-%m-%d-%H%M%S).txt"
