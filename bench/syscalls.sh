#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Syscalls per request, servers side by side (epoll against io_uring, mainly).
#
# For each server and scenario: start the server (pinned like bench/run.sh), warm it up,
# attach `strace -c -f` to all its threads, run wrk for a fixed time, detach, and divide the
# syscalls strace counted by the requests wrk completed. ptrace slows the server down a lot,
# so only these counts mean anything here, never the rates. Connection setup (one accept
# and one close per wrk connection) is included, spread over the requests.
#
# Usage: bench/syscalls.sh
#   SYSCALL_SERVERS="chopin floor_epoll floor_uring nginx h2o"   ("chopin" = CHOPIN_VARIANTS)
#   SYSCALL_SCENARIOS="plaintext-256 pipeline-256"   SYSCALL_DURATION=3
set -uo pipefail
source "$(dirname "$0")/lib.sh"

SERVERS=$(expand_servers "${SYSCALL_SERVERS:-chopin floor_epoll floor_uring nginx h2o}")
SCENARIOS=${SYSCALL_SCENARIOS:-plaintext-256 pipeline-256}
DURATION=${SYSCALL_DURATION:-3}
FAILURES=0

# strace_attached PID: strace has seized every thread of PID that can be traced (io_uring's
# own kernel threads cannot be, and strace skips them).
strace_attached() {
    local f comm
    for f in /proc/"$1"/task/*; do
        read -r comm < "$f/comm" 2>/dev/null || continue
        case $comm in iou-*) continue ;; esac
        grep -q '^TracerPid:[[:space:]]*0$' "$f/status" 2>/dev/null && return 1
    done
    return 0
}

# count NAME SCENARIO: one table row.
count() {
    local name=$1 scen=$2 trace=$SERVER_DIR/strace.$2 out=$SERVER_DIR/wrk.$2 spid i req
    wrk_args "$scen" 1 "$SERVER_PORT"
    "${WRK_ARGS[@]}" > /dev/null 2>&1
    strace -c -f -o "$trace" -p "$SERVER_PID" 2> "$trace.err" &
    spid=$!
    track_pid "$spid"
    for ((i = 0; i < 50; i++)); do strace_attached "$SERVER_PID" && break; sleep 0.1; done
    wrk_args "$scen" "$DURATION" "$SERVER_PORT"
    "${WRK_ARGS[@]}" > "$out" 2>&1
    kill -INT "$spid"
    wait "$spid"
    untrack_pid "$spid"
    read -r req _ <<< "$(wrk_parse "$out")"
    if [ "$req" -eq 0 ] || [ ! -s "$trace" ]; then
        log "syscalls: $name $scen: no requests or no strace summary"
        cat "$out" "$trace.err" | sed 's/^/syscalls:   /' >&2
        FAILURES=$((FAILURES + 1))
        return
    fi
    # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall
    awk -v s="$name" -v sc="$scen" -v req="$req" '
        $1 ~ /^[0-9.]+$/ && $NF != "total" { calls[$NF] = $4; total += $4 }
        END {
            top = ""
            for (k = 0; k < 4; k++) {
                best = ""
                for (c in calls) if (best == "" || calls[c] > calls[best]) best = c
                if (best == "") break
                top = top sprintf("%s%s %.2f", top == "" ? "" : ", ", best, calls[best] / req)
                delete calls[best]
            }
            printf "%-24s %-14s %10d %10d %8.2f   %s\n", s, sc, req, total, total / req, top
        }' "$trace" >> "$ROWS"
}

main() {
    local s scen why
    command -v strace > /dev/null || die "strace is not installed (scripts/deps.sh bench)"
    raise_fd_limit 4096
    build_tools
    chopin_snapshot
    ROWS=$BENCH_TMP/rows
    : > "$ROWS"
    echo "Syscalls per request ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr))"
    echo "trace: strace -c -f -p PID, attached after 1s of warm-up, for the load below"
    for scen in $SCENARIOS; do
        wrk_args "$scen" "$DURATION" PORT
        echo "  $scen: $(shell_words "${WRK_ARGS[@]}" | sed "s|$ROOT/||g")"
    done
    echo "servers (\$TMP: a temporary directory; configs from bench/nginx.conf, bench/h2o.conf):"
    for s in $SERVERS; do
        why=$(server_missing "$s")
        if [ -n "$why" ]; then
            printf '%-24s skipped: %s\n' "$s" "$why" >> "$ROWS"
            continue
        fi
        server_start "$s" || { FAILURES=$((FAILURES + 1)); continue; }
        echo "  $s: $(server_command_line | sed "s|$BENCH_TMP|\$TMP|g")"
        for scen in $SCENARIOS; do count "$s" "$scen"; done
        server_stop
    done
    echo
    printf '%-24s %-14s %10s %10s %8s   %s\n' server scenario requests syscalls "per req" \
        "most frequent (per request)"
    cat "$ROWS"
    [ "$FAILURES" -eq 0 ] || exit 1
}

main "$@"
