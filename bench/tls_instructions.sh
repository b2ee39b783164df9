#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/tls_instructions.sh: the server's user-space instructions per full handshake, per
# resumed handshake and per keep-alive request over TLS (issue 16), Chopin (epoll) against
# nginx, counted by callgrind: deterministic where bench/tls.sh's CPU times are not (a
# shared machine). Same certificate, suite, group and clients as bench/tls.sh. Each server
# runs under `valgrind --tool=callgrind --instr-atstart=no`; counting is switched on once
# it listens (callgrind_control -i on), the client runs SECONDS, the counts are dumped and
# divided by what the client completed. The kernel's share is not counted (bench/tls.sh's
# CPU times have it; bench/syscalls.sh counts the calls).
# Usage: bench/tls_instructions.sh [SECONDS]   (default 10; needs valgrind, nginx, wrk)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

SECS=${1:-10}
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    die "needs valgrind (callgrind_control)"
command -v nginx >/dev/null && command -v wrk >/dev/null || die "needs nginx and wrk"
grep -qE ' T chopin__tls_transport_install$' <(nm "$BUILD/libchopin.a" 2>/dev/null) ||
    die "$BUILD/libchopin.a has no TLS"
mkdir -p "$OUT"
libs="-pthread -lssl -lcrypto $(h2_libs "$BUILD/libchopin.a")"
have_liburing && libs="$libs -luring"
cc -O2 -I"$ROOT/include" -o "$OUT/tls_server" "$BENCH_DIR/tls_server.c" "$BUILD/libchopin.a" \
    $libs || die "cannot build tls_server"
cc -O2 -o "$OUT/tls_client" "$BENCH_DIR/tls_client.c" -lssl -lcrypto || die "cannot build tls_client"
"$ROOT/tests/tls/mkcerts.sh" "$BENCH_TMP/certs" >/dev/null 2>&1 || die "cannot make certificates"
DIR=$BENCH_TMP/srv
mkdir -p "$DIR/tmp"
cp "$BENCH_TMP/certs/a.pem" "$DIR/cert.pem"
cp "$BENCH_TMP/certs/a.key" "$DIR/key.pem"
head -c $((1 << 20)) /dev/urandom > "$DIR/file.bin"

# run NAME SCENARIO: prints "NAME SCENARIO units instructions per-unit".
run() {
    local name=$1 sc=$2 port pid units out i ir=0 f n
    free_port; port=$FREE_PORT
    rm -f "$BENCH_TMP"/cg.*
    case $name in
        nginx)
            render "$BENCH_DIR/nginx_tls.conf" "$DIR/nginx.conf" "$port" "$DIR"
            valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$BENCH_TMP/cg.%p" \
                nginx -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log" > "$DIR/log" 2>&1 & ;;
        chopin-*)
            free_port
            CHOPIN_BACKEND=${name#chopin-} CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 \
                CHOPIN_TLS_CERT="$DIR/cert.pem" CHOPIN_TLS_KEY="$DIR/key.pem" \
                CHOPIN_TLS_CIPHERSUITES=TLS_AES_128_GCM_SHA256 CHOPIN_TLS_GROUPS=X25519 \
                valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$BENCH_TMP/cg.%p" \
                "$OUT/tls_server" "$port" "$FREE_PORT" "$DIR/file.bin" > "$DIR/log" 2>&1 & ;;
    esac
    pid=$!
    track_pid "$pid"
    for ((i = 0; i < 300; i++)); do
        port_listening "$port" && break
        sleep 0.1
    done
    callgrind_control -i on "$pid" > /dev/null 2>&1
    case $sc in
        full | resumed)
            out=$("$OUT/tls_client" "$sc" "$port" "$SECS" TLS1.3 2>&1)
            units=$(awk '{ print $2 }' <<< "$out") ;;
        keepalive)
            out=$(wrk -t1 -c16 -d"${SECS}"s "https://127.0.0.1:$port/plaintext" 2>&1)
            units=$(awk '/requests in/ { print $1 }' <<< "$out") ;;
    esac
    callgrind_control -i off "$pid" > /dev/null 2>&1
    callgrind_control -d "$pid" > /dev/null 2>&1
    kill -TERM "$pid" 2>/dev/null
    proc_wait_exit "$pid" 100 || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    untrack_pid "$pid"
    for f in "$BENCH_TMP"/cg.*; do
        n=$(awk '/^totals:/ { s += $2 } END { print s + 0 }' "$f")
        ir=$((ir + n))
    done
    echo "$name $sc ${units:-0} $ir $(( ${units:-0} > 0 ? ir / units : 0 ))"
}

echo "# TLS instructions (bench/tls_instructions.sh $SECS): $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nginx -v 2>&1 | sed 's/.*: //'), $(openssl version | cut -d' ' -f1-2)"
printf '%-14s %-10s %8s %14s %12s\n' server scenario units instructions per-unit
for sc in full resumed keepalive; do
    for name in chopin-epoll nginx; do
        read -r n s u ir per < <(run "$name" "$sc")
        printf '%-14s %-10s %8s %14s %12s\n' "$n" "$s" "$u" "$ir" "$per"
        eval "per_${name//-/_}_$sc=$per"
    done
    awk -v c="$(eval echo "\$per_chopin_epoll_$sc")" -v g="$(eval echo "\$per_nginx_$sc")" -v s="$sc" \
        'BEGIN { if (g > 0) printf "%-25s chopin/nginx %.2fx\n", s, c / g }'
done
