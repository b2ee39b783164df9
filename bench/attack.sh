#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make attack: the attack shapes of issue 13 against the demo and nginx in the same run, one
# table. Each server runs as one worker pinned to CPU 1 (bench/lib.sh, as make bench runs
# them), the client (bench/attack.c, built here) pinned to CPU 0, and each shape gets a
# fresh server, so no shape inherits another's state:
#   slowloris   HOLD connections each holding half a request head (twice the capacity:
#               Chopin's CHOPIN_SLAB_CAPACITY, nginx's worker_connections), then CLIENTS
#               normal clients at once: how many were served within TIMEOUT_MS, p50/p99
#   resets      RESETS clients each send RESET_BYTES of a 10 MiB upload, then close with
#               SO_LINGER 0 together: the server's open descriptors before and SETTLE s
#               after (and, if more, how long until they are back, up to RESET_WAIT s)
#   stop        one upload half sent, STOP_KEEPALIVE keep-alive and STOP_NEW new connections
#               each send a request, the graceful stop signal at once (Chopin SIGTERM, nginx
#               SIGQUIT: nginx runs with its master process here, since without one SIGQUIT
#               ends it at once), the upload then finishes: answered vs reset or closed
#   uploads     RSS idle, then idle again after UPLOADS POSTs of UPLOAD_SIZE (UPLOAD_CONC at
#               a time; Chopin /echo, nginx reads each body after a mirror and answers 204)
#   burst       RSS idle, with BURST connections that each sent a request at once held idle
#               once answered, and after they close
#   slowread    RSS idle, with SLOWREAD slow readers each holding a page of PAGE_TODOS todos
#               of 1 KiB titles (about 106 KB: Chopin's /todos?limit=100, built per request;
#               nginx sends the same bytes from a file), and SETTLE+1 s after they read
#               their answers and left. A slow reader offers a 2 KiB window over an
#               Ethernet-sized segment (bench/attack.c), so the server keeps most of its answer
# The figures are reported, never judged: the script fails only when a server dies or does
# not start, or a shape cannot run.
#
# Usage: bench/attack.sh   (make attack; BUILD picks the demo, build/examples/demo)
#   ATTACK_SERVERS="chopin nginx"  CHOPIN_VARIANTS="epoll io_uring"
#   ATTACK_SHAPES="slowloris resets stop uploads burst slowread"   (a subset, in this order)
#   ATTACK_CAPACITY=256 ATTACK_HOLD=2*CAPACITY ATTACK_CLIENTS=32 ATTACK_TIMEOUT_MS=3000
#   ATTACK_RESETS=64 ATTACK_RESET_BYTES=262144 ATTACK_SETTLE=1 ATTACK_RESET_WAIT=10
#   ATTACK_STOP_KEEPALIVE=8 ATTACK_STOP_NEW=8 ATTACK_STOP_BODY=1048576
#   ATTACK_UPLOADS=16 ATTACK_UPLOAD_SIZE=8388608 ATTACK_UPLOAD_CONC=4 ATTACK_BURST=1000
#   ATTACK_SLOWREAD=500 ATTACK_PAGE_TODOS=100
set -uo pipefail
source "$(dirname "$0")/lib.sh"

CAPACITY=${ATTACK_CAPACITY:-256}
HOLD=${ATTACK_HOLD:-$((2 * CAPACITY))}
CLIENTS=${ATTACK_CLIENTS:-32}
TIMEOUT_MS=${ATTACK_TIMEOUT_MS:-3000}
RESETS=${ATTACK_RESETS:-64}
RESET_BYTES=${ATTACK_RESET_BYTES:-262144}
SETTLE=${ATTACK_SETTLE:-1}
RESET_WAIT=${ATTACK_RESET_WAIT:-10}
STOP_KEEPALIVE=${ATTACK_STOP_KEEPALIVE:-8}
STOP_NEW=${ATTACK_STOP_NEW:-8}
STOP_BODY=${ATTACK_STOP_BODY:-1048576}
UPLOADS=${ATTACK_UPLOADS:-16}
UPLOAD_SIZE=${ATTACK_UPLOAD_SIZE:-8388608}
UPLOAD_CONC=${ATTACK_UPLOAD_CONC:-4}
BURST=${ATTACK_BURST:-1000}
SLOWREAD=${ATTACK_SLOWREAD:-500}
PAGE_TODOS=${ATTACK_PAGE_TODOS:-100}
SERVERS=$(expand_servers "${ATTACK_SERVERS:-chopin nginx}")
SHAPES=${ATTACK_SHAPES:-slowloris resets stop uploads burst slowread}
FAILURES=0
SHAPE=none

declare -A FIG # FIG[row|server]: one cell of the table

# The lib's server_prepare, then what a shape changes: Chopin's slab capacity for slowloris;
# for nginx the matching worker_connections (one more: its listener takes one), the upload
# location, and its master process for the graceful stop.
eval "$(declare -f server_prepare | sed '1s/server_prepare/lib_server_prepare/')"
server_prepare() {
    lib_server_prepare "$@"
    local dir=$3
    case $1 in
        chopin-*)
            [ "$SHAPE" = slowloris ] && SERVER_ENV+=(CHOPIN_SLAB_CAPACITY="$CAPACITY")
            SERVER_ENV+=(CHOPIN_MAX_BODY_BYTES=$((UPLOAD_SIZE > 16 << 20 ? UPLOAD_SIZE : 16 << 20))) ;;
        nginx)
            local conf=$dir/nginx.conf
            # /echo: the mirror reads the whole body before the content phase; the 404 the
            # static module then gives (no such file) becomes a 204, so the answer follows
            # the body, as Chopin's echo does (without sending it back).
            sed -i -e 's|^\( *\)location = /plaintext {|\1client_max_body_size 0;\
\1location = /echo {\
\1    mirror /mirrored;\
\1    mirror_request_body on;\
\1    error_page 404 405 =204 /done;\
\1}\
\1location = /mirrored { internal; return 204; }\
\1location = /done { return 204; }\
&|' "$conf"
            [ "$SHAPE" = slowloris ] &&
                sed -i "s|worker_connections [0-9]*;|worker_connections $((CAPACITY + 1));|" "$conf"
            [ "$SHAPE" = stop ] && sed -i 's|^master_process off;|master_process on;|' "$conf"
            # /todos: the page the demo builds, as a file (shape_slowread writes it), sent
            # with sendfile (nginx's default is to read it into its output buffers, 64 KiB
            # per connection).
            [ "$SHAPE" = slowread ] && sed -i 's|^\( *\)location = /plaintext {|\1location = /todos {\
\1    default_type application/json;\
\1    sendfile on;\
\1    alias '"$dir"'/page.json;\
\1}\
\1location = /plaintext {|' "$conf"
            ;;
    esac
}

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# worker_pid: the process that serves (nginx's worker when it has a master).
worker_pid() {
    local child
    child=$(pgrep -P "$SERVER_PID" | head -1)
    echo "${child:-$SERVER_PID}"
}

# attack ARGS...: runs the client pinned to CLIENT_CPU; its key=value lines go to $BENCH_TMP/out
# and into KV. Returns 1 when the client failed.
declare -A KV
attack() {
    local k v
    KV=()
    taskset -c "$CLIENT_CPU" "$OUT/attack" "$@" > "$BENCH_TMP/out" 2> "$BENCH_TMP/err" || {
        log "attack: client '$*' failed: $(cat "$BENCH_TMP/err")"
        return 1
    }
    while IFS='=' read -r k v; do KV[$k]=$v; done < "$BENCH_TMP/out"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

shape_slowloris() {
    local s=$1
    attack slowloris "$SERVER_PORT" "$HOLD" "$CLIENTS" "$TIMEOUT_MS" || return 1
    FIG[sl_served|$s]="${KV[served]} / ${KV[clients]}"
    if [ "${KV[served]}" -gt 0 ]; then
        FIG[sl_time|$s]="${KV[p50_ms]} / ${KV[p99_ms]} ms"
    else
        FIG[sl_time|$s]="none within $TIMEOUT_MS ms"
    fi
    FIG[sl_closed|$s]="${KV[halves_closed]} / $HOLD"
}

shape_resets() {
    local s=$1 pid before after
    pid=$(worker_pid)
    before=$(fd_count "$pid")
    attack reset "$SERVER_PORT" "$RESETS" "$RESET_BYTES" /echo || return 1
    local t0 t1
    t0=$(date +%s%N)
    sleep "$SETTLE"
    after=$(fd_count "$pid")
    FIG[rs_fds|$s]="$before → $after"
    # How long the extra ones stay, up to RESET_WAIT s after the resets.
    while t1=$(date +%s%N); [ "$(fd_count "$pid")" -gt "$before" ] &&
          [ $(((t1 - t0) / 1000000000)) -lt "$RESET_WAIT" ]; do
        sleep 0.1
    done
    if [ "$after" -gt "$before" ]; then
        local now
        now=$(fd_count "$pid")
        if [ "$now" -gt "$before" ]; then
            FIG[rs_fds|$s]+=" (still $now after ${RESET_WAIT} s)"
        else
            FIG[rs_fds|$s]+=" (back after $(awk -v n=$((t1 - t0)) 'BEGIN { printf "%.1f", n / 1e9 }') s)"
        fi
    fi
}

shape_stop() {
    local s=$1 sig=TERM
    [ "$s" = nginx ] && sig=QUIT
    attack stop "$SERVER_PORT" "$SERVER_PID" "$(kill -l "$sig")" "$STOP_KEEPALIVE" "$STOP_NEW" \
        "$STOP_BODY" /echo || return 1
    FIG[st_upload|$s]=${KV[upload]}
    FIG[st_keep|$s]="${KV[keepalive_answered]} / ${KV[keepalive]}"
    FIG[st_new|$s]="${KV[new_answered]} / ${KV[new]}"
    FIG[st_lost|$s]="${KV[reset]} / ${KV[closed]} / ${KV[unanswered]}"
    if proc_wait_exit "$SERVER_PID" 150; then
        FIG[st_exit|$s]=yes
    else
        FIG[st_exit|$s]="no (SIGKILL after 15 s)"
    fi
}

shape_uploads() {
    local s=$1 pid idle after
    pid=$(worker_pid)
    idle=$(rss_kib "$pid")
    attack upload "$SERVER_PORT" "$UPLOADS" "$UPLOAD_SIZE" /echo "$UPLOAD_CONC" || return 1
    [ "${KV[answered]}" = "$UPLOADS" ] || log "attack: $s answered ${KV[answered]} of $UPLOADS uploads"
    sleep "$SETTLE"
    after=$(rss_kib "$pid")
    FIG[mem_up|$s]="$(mib "$idle") → $(mib "$after")"
}

# shape_burst: the client holds its connections idle once all are answered and says "held";
# RSS is read then, and again once they are closed.
shape_burst() {
    local s=$1 pid idle held after i client
    pid=$(worker_pid)
    idle=$(rss_kib "$pid")
    taskset -c "$CLIENT_CPU" "$OUT/attack" burst "$SERVER_PORT" "$BURST" $((SETTLE * 1000 + 500)) \
        > "$BENCH_TMP/burst" 2> "$BENCH_TMP/err" &
    client=$!
    for ((i = 0; i < 300; i++)); do
        grep -q '^held' "$BENCH_TMP/burst" && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.1
    done
    sleep "$SETTLE"
    held=$(rss_kib "$pid")
    wait "$client" || { log "attack: burst client failed: $(cat "$BENCH_TMP/err")"; return 1; }
    sleep "$SETTLE"
    after=$(rss_kib "$pid")
    FIG[mem_burst|$s]=$(awk -v i="$idle" -v h="$held" -v n="$BURST" \
        -v ans="$(sed -n 's/^answered=//p' "$BENCH_TMP/burst")" \
        'BEGIN { printf "%d B (%s answered)", (h - i) * 1024 / n, ans }')
    FIG[mem_after|$s]="$(mib "$idle") → $(mib "$held") → $(mib "$after")"
}

# seed_todos: PAGE_TODOS todos with titles of 1024 bytes (the demo's longest) in the
# server's fresh database, then its page of them into $BENCH_TMP/page.json, for nginx.
seed_todos() {
    local i code title
    title=$(head -c 1024 /dev/zero | tr '\0' t)
    for ((i = 0; i < PAGE_TODOS; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
            --data "{\"title\":\"$title\"}" "http://127.0.0.1:$SERVER_PORT/todos")
        [ "$code" = 201 ] || { log "attack: POST /todos answered $code"; return 1; }
    done
    curl -sf -o "$BENCH_TMP/page.json" "http://127.0.0.1:$SERVER_PORT/todos?limit=$PAGE_TODOS"
}

# shape_slowread: as shape_burst, with slow readers of the todo page; nginx serves the page
# Chopin answered (or, when it ran alone, as many bytes of filler).
shape_slowread() {
    local s=$1 pid idle held after i client k v
    pid=$(worker_pid)
    if [ "$s" = nginx ]; then
        [ -s "$BENCH_TMP/page.json" ] || head -c $((PAGE_TODOS * 1060)) /dev/zero |
            tr '\0' t > "$BENCH_TMP/page.json"
        cp "$BENCH_TMP/page.json" "$SERVER_DIR/page.json"
        chmod 644 "$SERVER_DIR/page.json"
    else
        seed_todos || return 1
    fi
    idle=$(rss_kib "$pid")
    taskset -c "$CLIENT_CPU" "$OUT/attack" slowread "$SERVER_PORT" "$SLOWREAD" \
        "/todos?limit=$PAGE_TODOS" $((SETTLE * 1000 + 500)) > "$BENCH_TMP/slowread" 2> "$BENCH_TMP/err" &
    client=$!
    for ((i = 0; i < 300; i++)); do
        grep -q '^held' "$BENCH_TMP/slowread" && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.1
    done
    sleep "$SETTLE"
    held=$(rss_kib "$pid")
    wait "$client" || { log "attack: slowread client failed: $(cat "$BENCH_TMP/err")"; return 1; }
    sleep $((SETTLE + 1))
    after=$(rss_kib "$pid")
    KV=()
    while IFS='=' read -r k v; do KV[$k]=$v; done < "$BENCH_TMP/slowread"
    FIG[sr_mem|$s]="$(mib "$idle") → $(mib "$held") → $(mib "$after")"
    FIG[sr_per|$s]=$(awk -v i="$idle" -v h="$held" -v n="$SLOWREAD" -v w="${KV[whole]}" \
        -v b="${KV[body_bytes]}" 'BEGIN { printf "%.1f KiB (%d of %d read whole, %d B)", (h - i) / n, w, n, b }')
}

# run_shape SHAPE NAME: a fresh server for the shape; a server that dies (or does not start)
# fails the run.
run_shape() {
    SHAPE=$1
    local name=$2
    if ! server_start "$name"; then
        log "attack: $name did not start for $SHAPE"
        FAILURES=$((FAILURES + 1))
        return
    fi
    log "attack: $SHAPE against $name (port $SERVER_PORT, pid $SERVER_PID)"
    if ! "shape_$SHAPE" "$name"; then
        log "attack: $SHAPE could not run against $name"
        FAILURES=$((FAILURES + 1))
    elif [ "$SHAPE" != stop ] && ! server_alive; then
        log "attack: $name DIED during $SHAPE"
        FAILURES=$((FAILURES + 1))
    fi
    server_stop
}

row() {
    local key=$1 s line="| $2 | $3 |"
    for s in $SERVERS; do line+=" ${FIG[$key|$s]:-n/a} |"; done
    echo "$line"
}

print_table() {
    local s head="| attack | measured |" rule="|---|---|"
    for s in $SERVERS; do head+=" $s |"; rule+="---|"; done
    echo "$head"
    echo "$rule"
    row sl_served "slowloris: $HOLD half heads, capacity $CAPACITY" "$CLIENTS clients served within $TIMEOUT_MS ms"
    row sl_time "" "time to be served, p50 / p99"
    row sl_closed "" "half heads the server closed"
    row rs_fds "$RESETS uploads reset after $((RESET_BYTES / 1024)) KiB" "open fds before → ${SETTLE} s after"
    row st_upload "graceful stop (Chopin SIGTERM, nginx SIGQUIT)" "upload of $((STOP_BODY / 1024)) KiB in flight"
    row st_keep "" "keep-alive connections with a request sent: answered"
    row st_new "" "new connections with a request sent: answered"
    row st_lost "" "reset / closed unanswered / no answer in 10 s"
    row st_exit "" "process exited"
    row mem_up "$UPLOADS POSTs of $((UPLOAD_SIZE >> 20)) MiB, $UPLOAD_CONC at a time" "RSS idle → idle after"
    row mem_burst "burst: $BURST connections, a request each at once" "RSS per connection, held idle"
    row mem_after "" "RSS idle → held → ${SETTLE} s after they close"
    row sr_mem "slow readers: $SLOWREAD, each of a page of $PAGE_TODOS todos" "RSS idle → held → $((SETTLE + 1)) s after they leave"
    row sr_per "" "RSS per slow reader, held"
}

main() {
    local s shape why
    command -v nginx > /dev/null || case " $SERVERS " in *" nginx "*)
        die "nginx is not installed (scripts/deps.sh attack)" ;; esac
    raise_fd_limit $((HOLD + CLIENTS + BURST + SLOWREAD + 1024))
    build_tool attack
    chopin_snapshot
    # The tree when the run starts (a commit during the run must not be named instead).
    local tree
    tree="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" \
        diff --quiet HEAD -- src include 2>/dev/null || echo ' with uncommitted changes in src/include')"
    log "attack: servers: $(echo $SERVERS); shapes: $SHAPES"
    for shape in $SHAPES; do
        for s in $SERVERS; do
            why=$(server_missing "$s")
            [ -n "$why" ] && die "$s: $why"
            wait_quiet
            run_shape "$shape" "$s"
        done
    done
    echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $tree, $(uname -sr), $(nproc) CPUs, $(nginx -v 2>&1 | sed 's/.*: //')"
    echo "# ATTACK_CAPACITY=$CAPACITY ATTACK_HOLD=$HOLD ATTACK_CLIENTS=$CLIENTS ATTACK_TIMEOUT_MS=$TIMEOUT_MS" \
         "ATTACK_RESETS=$RESETS ATTACK_RESET_BYTES=$RESET_BYTES ATTACK_SETTLE=$SETTLE ATTACK_RESET_WAIT=$RESET_WAIT" \
         "ATTACK_STOP_KEEPALIVE=$STOP_KEEPALIVE ATTACK_STOP_NEW=$STOP_NEW ATTACK_STOP_BODY=$STOP_BODY" \
         "ATTACK_UPLOADS=$UPLOADS ATTACK_UPLOAD_SIZE=$UPLOAD_SIZE ATTACK_UPLOAD_CONC=$UPLOAD_CONC ATTACK_BURST=$BURST" \
         "ATTACK_SLOWREAD=$SLOWREAD ATTACK_PAGE_TODOS=$PAGE_TODOS"
    print_table
    [ "$FAILURES" -eq 0 ] || die "$FAILURES shape(s) could not run or a server died (see above)"
}

main
