#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# WebSocket benchmarks (issue 17), with the load generator written for them
# (bench/ws_load.c) and Chopin's side in bench/ws_server.c:
#
#  A. Echo of 32-byte and 4 KiB binary messages over 256 connections, one message in flight
#     per connection: Chopin (epoll, io_uring; one worker) against Go's gorilla/websocket
#     (bench/peers/ws_gorilla, GOMAXPROCS=1) and Node's ws (bench/peers/ws_node.js), each
#     server pinned to CPU 1, the load to CPU 0, a fresh server per run, rounds interleaved.
#     Messages per second, and server CPU time per message (all threads, /proc/PID/stat):
#     the median over the rounds, and its ratio to the best peer's. Beside them, not a peer:
#     floor-epoll (bench/ws_floor.c), one read and one send per message and nothing else,
#     what the kernel costs on this machine (no server can go below it with that design).
#  B. Broadcast: 10,000 subscribers over 2 workers, one message published (32 bytes), the
#     time from its send to its delivery to the last subscriber (median of the rounds), and
#     the server's CPU time per broadcast.
#  C. Idle memory per WebSocket connection: the server's RSS growth with 10,000 idle
#     connections open, divided by 10,000 (one worker): permessage-deflate off; agreed but
#     no message yet (zlib's state comes with the first message); and after one echoed
#     message each (our compressor kept for context takeover).
#     Kernel socket buffers are not in it (as for HTTP in bench/memory.sh).
#
# Usage: bench/ws.sh            (after make; BUILD=dir for another tree)
# Variables: WS_ROUNDS (3), WS_SECONDS (5), WS_CONNS (256), WS_SUBSCRIBERS (10000),
# WS_IDLE (10000), WS_PARTS ("A B C").
set -u
. "$(dirname "$0")/lib.sh"

ROUNDS=${WS_ROUNDS:-3}
SECS=${WS_SECONDS:-5}
CONNS=${WS_CONNS:-256}
SUBS=${WS_SUBSCRIBERS:-10000}
IDLE=${WS_IDLE:-10000}
PARTS=${WS_PARTS:-A B C}
LIB=$BUILD/libchopin.a
SERVER=$OUT/ws_server
LOAD=$OUT/ws_load

[ -f "$LIB" ] || die "${LIB#"$ROOT"/} not found (run make)"
mkdir -p "$OUT"
# the libraries the tree links (its flags file: TLS, HTTP/2 and compression came since),
# and the brotli decoder the Makefile adds for its tests and examples
libs="-pthread $(sed -n 's/^[^|]*| //p' "$BUILD/flags" 2>/dev/null)"
pkg-config --exists libbrotlidec 2>/dev/null && libs="$libs $(pkg-config --libs libbrotlidec)"
log "bench: cc -O2 -o ${SERVER#"$ROOT"/} bench/ws_server.c ${LIB#"$ROOT"/}"
cc -O2 -Wall -Wextra -I"$ROOT/include" -o "$SERVER" "$BENCH_DIR/ws_server.c" "$LIB" $libs ||
    die "could not build ws_server"
build_tool ws_load
build_tool ws_floor
raise_fd_limit $((SUBS > IDLE ? SUBS + 100 : IDLE + 100))

# start/stop: bench/lib.sh's (a server on FREE_PORT, pinned; stopped by PID).

# server_cmd NAME: the command that serves /echo on FREE_PORT.
server_cmd() {
    case $1 in
        chopin-epoll) echo "PORT=$FREE_PORT CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 CHOPIN_BACKEND=epoll taskset -c $SERVER_CPU $SERVER" ;;
        chopin-io_uring) echo "PORT=$FREE_PORT CHOPIN_WORKERS=1 CHOPIN_PIN=0 CHOPIN_QUIET=1 CHOPIN_BACKEND=io_uring taskset -c $SERVER_CPU $SERVER" ;;
        gorilla) echo "PORT=$FREE_PORT GOMAXPROCS=1 taskset -c $SERVER_CPU $OUT/ws_gorilla-bench" ;;
        node-ws) echo "PORT=$FREE_PORT taskset -c $SERVER_CPU node $BENCH_DIR/peers/ws_node.js" ;;
        floor-epoll) echo "PORT=$FREE_PORT taskset -c $SERVER_CPU $OUT/ws_floor" ;;
    esac
}

SERVERS="chopin-epoll"
have_liburing && SERVERS="$SERVERS chopin-io_uring"
if why=$("$BENCH_DIR/peers/build_ws_gorilla.sh" 2>"$BENCH_TMP/gorilla.log"); then
    SERVERS="$SERVERS gorilla"
else
    log "bench: gorilla/websocket left out: ${why:-its build failed ($(tail -1 "$BENCH_TMP/gorilla.log"))}"
fi
if command -v node >/dev/null && NODE_PATH=/usr/share/nodejs node -e 'require("ws")' 2>/dev/null; then
    SERVERS="$SERVERS node-ws"
else
    log "bench: node ws left out: no node with the ws module (Debian: nodejs node-ws)"
fi
SERVERS="$SERVERS floor-epoll"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

part_a() {
    echo "== A. echo, $CONNS connections, one message in flight each, ${SECS}s runs, $ROUNDS rounds (median)"
    echo "   versions: gorilla: $(cat "$OUT/ws_gorilla-bench.versions" 2>/dev/null || echo -), node $(node --version 2>/dev/null) ws $(dpkg-query -W -f='${Version}' node-ws 2>/dev/null)"
    local size s r
    for size in 32 4096; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for s in $SERVERS; do
                wait_quiet
                free_port
                # shellcheck disable=SC2046
                start $(server_cmd "$s")
                sleep 0.3
                local t0 t1 out msgs
                t0=$(tree_ticks "$PID")
                out=$(taskset -c "$CLIENT_CPU" "$LOAD" echo "$FREE_PORT" /echo "$CONNS" "$size" "$SECS")
                t1=$(tree_ticks "$PID")
                stop
                msgs=$(echo "$out" | awk '{ print $2 }')
                rate=$(echo "$out" | awk '{ print $6 }')
                # the CPU time covers the warm-up second too: count its messages at the same rate
                awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v m="$msgs" -v r="$rate" -v s="$SECS" \
                    'BEGIN { printf "%s %.3f\n", r, t / hz * 1e6 / (m + r) }' >> "$BENCH_TMP/a-$size-$s"
            done
        done
        printf '   %-6s %-16s %12s %14s %10s\n' size server msgs/s "CPU us/msg" "vs best"
        local best= line cpu
        for s in $SERVERS; do
            case $s in chopin-* | floor-*) continue ;; esac
            cpu=$(awk '{ print $2 }' "$BENCH_TMP/a-$size-$s" | median)
            if [ -z "$best" ] || awk -v a="$cpu" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$cpu; fi
        done
        for s in $SERVERS; do
            local rate cpu
            rate=$(awk '{ print $1 }' "$BENCH_TMP/a-$size-$s" | median)
            cpu=$(awk '{ print $2 }' "$BENCH_TMP/a-$size-$s" | median)
            awk -v sz="$size" -v s="$s" -v r="$rate" -v c="$cpu" -v b="${best:-0}" \
                'BEGIN { printf "   %-6s %-16s %12.0f %14.3f %10s\n", sz, s, r, c, b ? sprintf("%.2fx", c / b) : "-" }'
        done
    done
}

part_b() {
    echo "== B. broadcast: one 32-byte publish to $SUBS subscribers on 2 workers, $((ROUNDS * 5)) rounds"
    local be
    for be in epoll $(have_liburing && echo io_uring); do
        wait_quiet
        free_port
        start PORT=$FREE_PORT CHOPIN_WORKERS=2 CHOPIN_QUIET=1 CHOPIN_BACKEND=$be "$SERVER"
        sleep 0.3
        # the subscribers connect first (not timed); then every round is one publish
        "$LOAD" broadcast "$FREE_PORT" "$SUBS" 32 $((ROUNDS * 5)) > "$BENCH_TMP/b.out" &
        local lpid=$!
        local t0 t1
        while ! grep -q '^round 0' "$BENCH_TMP/b.out" 2>/dev/null; do
            kill -0 $lpid 2>/dev/null || break
            sleep 0.05
        done
        t0=$(tree_ticks "$PID")
        wait $lpid
        t1=$(tree_ticks "$PID")
        stop
        awk -v be="$be" -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n=$((ROUNDS * 5 - 1)) -v subs="$SUBS" '
            /^median_us/ { med = $2 }
            END { printf "   chopin-%-9s time to the last delivery: median %.2f ms; server CPU %.2f ms per broadcast (%.0f ns per delivery)\n",
                         be, med / 1000, t / hz * 1000 / n, t / hz * 1e9 / n / subs }' "$BENCH_TMP/b.out"
    done
}

part_c() {
    echo "== C. idle memory: $IDLE WebSocket connections open, one worker (server RSS growth / connections)"
    local be path
    for be in epoll $(have_liburing && echo io_uring); do
        for mode in off deflate message; do
            wait_quiet
            free_port
            start PORT=$FREE_PORT CHOPIN_WORKERS=1 CHOPIN_QUIET=1 CHOPIN_BACKEND=$be "$SERVER"
            sleep 0.3
            local before after path=/echo_deflate
            before=$(rss_kib "$PID")
            [ $mode = off ] && path=/echo
            "$LOAD" idle "$FREE_PORT" "$path" "$IDLE" $mode > "$BENCH_TMP/c.out" &
            local lpid=$!
            while ! grep -q '^ready' "$BENCH_TMP/c.out" 2>/dev/null; do
                kill -0 $lpid 2>/dev/null || break
                sleep 0.1
            done
            sleep 1
            after=$(rss_kib "$PID")
            kill -TERM $lpid
            wait $lpid
            stop
            local what="deflate off"
            [ $mode = deflate ] && what="deflate agreed"
            [ $mode = message ] && what="deflate, 1 msg"
            awk -v be="$be" -v p="$what" -v a="$after" -v b="$before" -v n="$IDLE" -v open="$(awk '/^open/ { print $2 }' "$BENCH_TMP/c.out")" '
                BEGIN { printf "   chopin-%-9s %-14s RSS %6d -> %7d KiB: %6.0f bytes per connection (%s of %d still open)\n",
                               be, p, b, a, (a - b) * 1024 / n, open, n }'
        done
    done
}

for p in $PARTS; do
    case $p in
        A) part_a ;;
        B) part_b ;;
        C) part_c ;;
    esac
done
