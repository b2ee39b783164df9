#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every test binary of each build tree given (unit tests once, integration tests once
# per backend compiled in), plus the shell suites against the demo server, then once the
# suites about the build itself (tests/build: a scratch build and install of their own), and
# prints one total line: "N passed, N failed, N skipped". Exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0
run_one() { # label, command...
  local label=$1; shift
  local out rc line
  out=$(timeout 300 "$@" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^RESULT [0-9]+ [0-9]+( [0-9]+)?$' | tail -n 1)
  if [ -z "$line" ]; then
    echo "FAIL $label: no RESULT line (exit $rc)"; printf '%s\n' "$out" | tail -n 30
    failed=$((failed + 1)); return
  fi
  set -- $line
  passed=$((passed + $2)); failed=$((failed + $3)); skipped=$((skipped + ${4:-0}))
  if [ "$3" -ne 0 ] || [ $rc -ne 0 ]; then
    echo "FAIL $label ($2 passed, $3 failed, exit $rc)"
    printf '%s\n' "$out" | grep -v '^RESULT' | tail -n 40
    [ "$3" -eq 0 ] && failed=$((failed + 1))
  else
    local skip=; [ "${4:-0}" -ne 0 ] && skip=", $4 skipped"
    echo "ok   $label ($2 passed$skip)"
  fi
}

has_tls() { # the tree was built with TLS (issue 16)
  nm "$1/libchopin.a" 2>/dev/null | grep -qE ' T chopin__tls_transport_install$'
}

plain_only() { # the reason a suite does not run over TLS (tests/tls/plain_only), or nothing
  sed -n "s/^$1 \{1,\}//p" tests/tls/plain_only 2>/dev/null
}

backends() { # the backends a build tree was compiled with
  local b=epoll
  nm "$1/libchopin.a" 2>/dev/null | grep -qE ' [TDR] chopin__uring_backend$' && b="$b io_uring"
  nm "$1/libchopin.a" 2>/dev/null | grep -qE ' [TDR] chopin__kqueue_backend$' && b="$b kqueue"
  echo $b
}

for tree in "$@"; do
  case $tree in */tsan) export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp ${TSAN_OPTIONS:-}" ;; esac
  for t in "$tree"/tests/test_*; do
    [ -x "$t" ] && run_one "$t" "$t"
  done
  for t in "$tree"/regress/fuzz_*; do
    [ -x "$t" ] || continue
    corpus=fuzz/corpus/$(basename "$t" | sed 's/^fuzz_//')
    files=$(find "$corpus" -type f 2>/dev/null | sort)
    if [ -z "$files" ]; then
      echo "skip $t: no corpus in $corpus"; skipped=$((skipped + 1)); continue
    fi
    run_one "$t (corpus)" "$t" $files
  done
  for be in $(backends "$tree"); do
    for t in "$tree"/itests/test_*; do
      [ -x "$t" ] && run_one "$t [$be]" env CHOPIN_BACKEND=$be "$t"
    done
    # The same suites over TLS (issue 16): cl_start listens on https:// and the client
    # handshakes; the suites built on raw sockets stay plain (tests/tls/plain_only).
    if has_tls "$tree"; then
      for t in "$tree"/itests/test_*; do
        [ -x "$t" ] || continue
        why=$(plain_only "$(basename "$t")")
        if [ -n "$why" ]; then
          echo "skip $t [$be, tls]: $why"; skipped=$((skipped + 1)); continue
        fi
        run_one "$t [$be, tls]" env CHOPIN_BACKEND=$be CHOPIN_TEST_TLS=1 "$t"
      done
    fi
    case $tree in */tsan) continue ;; esac # only the threaded tests: no demo there
    for s in tests/integration/*.sh; do
      [ -f "$s" ] && run_one "$s $tree [$be]" env CHOPIN_BACKEND=$be bash "$s" "$tree"
    done
  done
done

for s in tests/build/*.sh; do
  [ -f "$s" ] && run_one "$s" bash "$s" "$1"
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
