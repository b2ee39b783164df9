#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# RSS growth per idle keep-alive connection, servers side by side.
#
# For each server and each shape of load: start it (one worker, pinned like bench/run.sh),
# read its VmRSS, open N connections that are each served one request and then held open
# idle (build/bench/idle_conns), read VmRSS again once they are all idle, and report
# (after - before) / N. Growth, not total: what a server preallocates at start (nginx its
# whole connection table, for one) is in "before". The shapes:
#   sequential  each connection is opened, sends its request and reads the answer before
#               the next one opens (what a server keeps per idle connection);
#   burst       every connection sends its request before any answer is read (idle_conns
#               -b), so the server holds N requests at once; what it kept for that burst
#               shows once everyone is idle (issue 13: io_uring's receive buffers).
# After the last answer the server has MEM_SETTLE seconds (default 3) before the reading:
# idle is idle for a while, and Chopin's io_uring worker returns buffers after 1 s quiet.
#
# Usage: bench/memory.sh [N]     (N: MEM_CONNS, default 5000)
#   MEM_SERVERS="chopin nginx h2o"   ("chopin" = each of CHOPIN_VARIANTS)
#   MEM_SHAPES="sequential burst"
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-${MEM_CONNS:-5000}}
SERVERS=$(expand_servers "${MEM_SERVERS:-chopin nginx h2o}")
SHAPES=${MEM_SHAPES:-sequential burst}
SETTLE=${MEM_SETTLE:-3}
# Chopin's idle timeout must outlast the measurement (the peers' configs say 120 s).
export CHOPIN_EXTRA_ENV="CHOPIN_KEEPALIVE_TIMEOUT_MS=120000 ${CHOPIN_EXTRA_ENV:-}"
FAILURES=0

# measure NAME SHAPE: prints one table row, or says why it could not.
measure() {
    local name=$1 shape=$2 before after out pid i open flag=
    [ "$shape" = burst ] && flag=-b
    server_start "$name" || { FAILURES=$((FAILURES + 1)); return; }
    # A file of its own, created before the client starts: its redirection happens in the
    # child, after this shell may already be reading the file.
    out=$SERVER_DIR/idle.out
    : > "$out"
    echo "  $name ($shape): $(server_command_line | sed "s|$BENCH_TMP|\$TMP|g")"
    before=$(rss_kib "$SERVER_PID")
    taskset -c "$CLIENT_CPU" "$OUT/idle_conns" $flag "$SERVER_PORT" "$N" > "$out" 2>&1 &
    pid=$!
    track_pid "$pid"
    for ((i = 0; i < 600; i++)); do
        grep -q '^ready' "$out" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ready' "$out"; then
        log "memory: $name ($shape): the $N connections did not all get their response:"
        sed 's/^/memory:   /' "$out" >&2
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        untrack_pid "$pid"
        server_stop
        FAILURES=$((FAILURES + 1))
        return
    fi
    sleep "$SETTLE" # idle for a while (see the top)
    after=$(rss_kib "$SERVER_PID")
    kill -TERM "$pid"
    wait "$pid"
    untrack_pid "$pid"
    open=$(awk '/^open/ { print $2 }' "$out")
    server_stop
    awk -v s="$name" -v h="$shape" -v b="$before" -v a="$after" -v n="$N" -v o="$open" 'BEGIN {
        printf "%-24s %-10s %12d %12d %14.0f %14s\n", s, h, b, a, (a - b) * 1024 / n, o "/" n }' >> "$ROWS"
    [ "$open" = "$N" ] || log "memory: $name ($shape) closed $((N - open)) of the idle connections before the end"
}

main() {
    local s why shape
    raise_fd_limit $((N + 1024))
    build_tools
    chopin_snapshot
    ROWS=$BENCH_TMP/rows
    : > "$ROWS"
    echo "RSS growth per idle keep-alive connection ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr))"
    echo "client: taskset -c $CLIENT_CPU build/bench/idle_conns [-b] PORT $N   (each connection: one GET /plaintext, then idle; -b: the burst shape)"
    echo "servers (\$TMP: a temporary directory; configs from bench/nginx.conf, bench/h2o.conf):"
    for s in $SERVERS; do
        why=$(server_missing "$s")
        if [ -n "$why" ]; then
            printf '%-24s skipped: %s\n' "$s" "$why" >> "$ROWS"
            continue
        fi
        for shape in $SHAPES; do
            measure "$s" "$shape"
        done
    done
    echo
    printf '%-24s %-10s %12s %12s %14s %14s\n' server shape "VmRSS before" "after (KiB)" "bytes/conn" "still open"
    cat "$ROWS"
    [ "$FAILURES" -eq 0 ] || exit 1
}

main "$@"
