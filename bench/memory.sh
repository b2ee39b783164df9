#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# RSS growth per idle keep-alive connection, servers side by side.
#
# For each server: start it (one worker, pinned like bench/run.sh), read its VmRSS, open N
# connections that are each served one request and then held open idle (build/bench/
# idle_conns), read VmRSS again, and report (after - before) / N. Growth, not total: what a
# server preallocates at start (nginx its whole connection table, for one) is in "before".
#
# Usage: bench/memory.sh [N]     (N: MEM_CONNS, default 5000)
#   MEM_SERVERS="chopin nginx h2o"   ("chopin" = each of CHOPIN_VARIANTS)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N=${1:-${MEM_CONNS:-5000}}
SERVERS=$(expand_servers "${MEM_SERVERS:-chopin nginx h2o}")
# Chopin's idle timeout must outlast the measurement (the peers' configs say 120 s).
export CHOPIN_EXTRA_ENV="CHOPIN_KEEPALIVE_TIMEOUT_MS=120000 ${CHOPIN_EXTRA_ENV:-}"
FAILURES=0

# measure NAME: prints one table row, or says why it could not.
measure() {
    local name=$1 before after out pid i open
    server_start "$name" || { FAILURES=$((FAILURES + 1)); return; }
    # A file of its own, created before the client starts: its redirection happens in the
    # child, after this shell may already be reading the file.
    out=$SERVER_DIR/idle.out
    : > "$out"
    echo "  $name: $(server_command_line | sed "s|$BENCH_TMP|\$TMP|g")"
    before=$(rss_kib "$SERVER_PID")
    taskset -c "$CLIENT_CPU" "$OUT/idle_conns" "$SERVER_PORT" "$N" > "$out" 2>&1 &
    pid=$!
    track_pid "$pid"
    for ((i = 0; i < 600; i++)); do
        grep -q '^ready' "$out" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ready' "$out"; then
        log "memory: $name: the $N connections did not all get their response:"
        sed 's/^/memory:   /' "$out" >&2
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        untrack_pid "$pid"
        server_stop
        FAILURES=$((FAILURES + 1))
        return
    fi
    sleep 0.5 # let the server finish any work after its last response
    after=$(rss_kib "$SERVER_PID")
    kill -TERM "$pid"
    wait "$pid"
    untrack_pid "$pid"
    open=$(awk '/^open/ { print $2 }' "$out")
    server_stop
    awk -v s="$name" -v b="$before" -v a="$after" -v n="$N" -v o="$open" 'BEGIN {
        printf "%-24s %12d %12d %14.0f %14s\n", s, b, a, (a - b) * 1024 / n, o "/" n }' >> "$ROWS"
    [ "$open" = "$N" ] || log "memory: $name closed $((N - open)) of the idle connections before the end"
}

main() {
    local s why
    raise_fd_limit $((N + 1024))
    build_tools
    chopin_snapshot
    ROWS=$BENCH_TMP/rows
    : > "$ROWS"
    echo "RSS growth per idle keep-alive connection ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr))"
    echo "client: taskset -c $CLIENT_CPU build/bench/idle_conns PORT $N   (each connection: one GET /plaintext, then idle)"
    echo "servers (\$TMP: a temporary directory; configs from bench/nginx.conf, bench/h2o.conf):"
    for s in $SERVERS; do
        why=$(server_missing "$s")
        if [ -n "$why" ]; then
            printf '%-24s skipped: %s\n' "$s" "$why" >> "$ROWS"
            continue
        fi
        measure "$s"
    done
    echo
    printf '%-24s %12s %12s %14s %14s\n' server "VmRSS before" "after (KiB)" "bytes/conn" "still open"
    cat "$ROWS"
    [ "$FAILURES" -eq 0 ] || exit 1
}

main "$@"
