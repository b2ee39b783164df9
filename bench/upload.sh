#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Streamed uploads (issue 18, Benchmarks): one 100 MiB multipart/form-data upload (curl -F,
# a file of random bytes on tmpfs) over loopback to a server that reads it as it arrives,
# counting each part's bytes: chopin (bench/upload_server.c, one worker, epoll and
# io_uring) against Go's net/http with Request.MultipartReader (bench/peers/upload,
# GOMAXPROCS=1). Server pinned to CPU 1, curl to CPU 0; interleaved rounds, a fresh server
# per round. Per server: server CPU time per MiB (all threads, schedstat; median of
# the rounds), peak RSS (VmHWM) and its growth over the idle server's RSS, and the ratio
# to Go.
#
# Usage: bench/upload.sh          (after make; BUILD=dir for another tree)
# Variables: UPLOAD_ROUNDS (5), UPLOAD_MIB (100).
set -u
. "$(dirname "$0")/lib.sh"

ROUNDS=${UPLOAD_ROUNDS:-5}
MIB=${UPLOAD_MIB:-100}
LIB=$BUILD/libchopin.a
SERVER=$OUT/upload_server

[ -f "$LIB" ] || die "${LIB#"$ROOT"/} not found (run make)"
command -v curl >/dev/null || die "curl is missing (scripts/deps.sh bench installs it)"
mkdir -p "$OUT"
uring_libs=
have_liburing && uring_libs=-luring
log "bench: cc -O2 -o ${SERVER#"$ROOT"/} bench/upload_server.c ${LIB#"$ROOT"/}"
cc -O2 -Wall -Wextra -Wno-unused-parameter -I"$ROOT/include" -o "$SERVER" \
    "$BENCH_DIR/upload_server.c" "$LIB" $uring_libs -pthread || die "could not build upload_server"
servers=("chopin-epoll" "Go net/http")
have_liburing && servers=("chopin-epoll" "chopin-io_uring" "Go net/http")
go_ok=1
"$BENCH_DIR/peers/build_upload.sh" >&2 || go_ok=0
[ "$go_ok" = 1 ] || { log "bench: the Go peer cannot be built: chopin only"; servers=("${servers[@]:0:${#servers[@]}-1}"); }

data=/dev/shm
[ -w "$data" ] || data=$BENCH_TMP
file=$data/chopin-upload-$$.bin
head -c $((MIB << 20)) /dev/urandom > "$file" || die "cannot write $file"
trap 'rm -f "$file"; cleanup' EXIT

pin_client=() pin_server=()
if command -v taskset >/dev/null && taskset -c 1 true 2>/dev/null; then
  pin_client=(taskset -c 0) pin_server=(taskset -c 1)
fi
# CPU time of every thread of PID in ns (/proc/PID/task/*/schedstat, first field): clock
# ticks (10 ms) are too coarse for an upload that takes tens of milliseconds of CPU.
proc_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

start() { # name port
  case $1 in
    chopin-*) CHOPIN_BACKEND=${1#chopin-} "${pin_server[@]}" "$SERVER" "$2" & ;;
    *) GOMAXPROCS=1 "${pin_server[@]}" "$OUT/upload-bench" "$2" & ;;
  esac
  SERVER_PID=$!
  track_pid "$SERVER_PID"
  for _ in $(seq 100); do port_listening "$2" && return 0; sleep 0.05; done
  return 1
}

declare -A cpu rss grow
for round in $(seq "$ROUNDS"); do
  for s in "${servers[@]}"; do
    free_port
    port=$FREE_PORT
    start "$s" "$port" || die "$s did not start"
    sleep 0.2
    idle=$(rss_kib "$SERVER_PID")
    t0=$(proc_ns "$SERVER_PID")
    out=$("${pin_client[@]}" curl -s --max-time 120 -F "file=@$file;type=application/octet-stream" \
           -F "note=benchmark" "http://127.0.0.1:$port/upload")
    t1=$(proc_ns "$SERVER_PID")
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; untrack_pid "$SERVER_PID"
    want="2 $(( (MIB << 20) + 9 ))"
    [ "$out" = "$want" ] || die "$s answered \"$out\", not \"$want\""
    cpu[$s]+="$(awk -v t=$((t1 - t0)) -v m="$MIB" 'BEGIN { printf "%.4f", t / 1e6 / m }') "
    rss[$s]+="$hwm "
    grow[$s]+="$((hwm - idle)) "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
go=${servers[-1]}
go_cpu=$(echo "${cpu[$go]}" | median)
go_rss=$(echo "${rss[$go]}" | median)
printf '%s MiB multipart upload (curl -F) over loopback, %s rounds, medians%s\n' "$MIB" "$ROUNDS" \
  "$( [ "$go_ok" = 1 ] && printf '; Go peer: %s' "$(cat "$OUT/upload-bench.versions")")"
printf '%-16s %14s %14s %16s %10s %10s\n' server "CPU ms/MiB" "peak RSS KiB" "RSS growth KiB" "CPU vs Go" "RSS vs Go"
for s in "${servers[@]}"; do
  c=$(echo "${cpu[$s]}" | median) r=$(echo "${rss[$s]}" | median) g=$(echo "${grow[$s]}" | median)
  rc=- rr=-
  if [ "$go_ok" = 1 ]; then
    rc=$(awk -v a="$c" -v b="$go_cpu" 'BEGIN { printf "%.2f", a / b }')
    rr=$(awk -v a="$r" -v b="$go_rss" 'BEGIN { printf "%.2f", a / b }')
  fi
  printf '%-16s %14s %14s %16s %10s %10s\n' "$s" "$c" "$r" "$g" "$rc" "$rr"
done
