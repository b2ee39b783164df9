#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# docs/api.md's examples are programs, not prose: every ```c block on that page is compiled
# on its own with -Wall -Wextra -Werror and linked against the library of the build tree
# given (a block without main gets an empty one, so every symbol it names must exist).
# A block whose main returns on its own (it does not call chopin_serve) is also run and
# must exit 0.
# Usage: tests/build/docs.sh [BUILD_TREE]   (prints "RESULT passed failed skipped")
set -u
cd "$(dirname "$0")/../.."
tree=${1:-build}
lib=$tree/libchopin.a
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

if [ ! -f "$lib" ]; then
  echo "skip: no $lib: build the tree first" >&2
  echo "RESULT 0 0 1"; exit 0
fi
# The tree's own compiler, flags and libraries (its flags file, "cc flags... | libs..."), so
# a sanitizer or kqueue tree links its examples the way it links its tests; the examples
# are held to -Wunused-parameter and free of the library's -Wmissing-prototypes.
flags=$(cat "$tree/flags" 2>/dev/null || echo "cc -Iinclude | -pthread")
read -r -a compile <<<"${flags%%|*}"
read -r -a libs <<<"${flags#*|}"
compile+=(-Wall -Wextra -Werror -Wunused-parameter -Wno-missing-prototypes)

# One file per block: docs-1.c, docs-2.c, ...
awk -v dir="$tmp" '/^```c$/ { n++; out = dir "/docs-" n ".c"; next }
                   out && /^```$/ { close(out); out = ""; next }
                   out { print > out }' docs/api.md
blocks=$(ls "$tmp"/docs-*.c 2>/dev/null | sort -V)
if [ -z "$blocks" ]; then
  echo "FAIL docs/api.md has no C example" >&2
  echo "RESULT 0 1 0"; exit 1
fi

for src in $blocks; do
  name=docs/api.md:$(basename "$src" .c)
  grep -q 'int main(' "$src" || printf '\nint main(void) { return 0; }\n' >>"$src"
  if ! "${compile[@]}" "$src" "$lib" -o "${src%.c}" "${libs[@]}" 2>"$tmp/cc.log"; then
    fail=$((fail + 1)); echo "FAIL $name does not build:" >&2; head -n 20 "$tmp/cc.log" >&2
    continue
  fi
  if grep -q 'chopin_serve(' "$src"; then
    pass=$((pass + 1)); continue # serves until a signal: building it is the check
  fi
  if CHOPIN_QUIET=1 timeout 20 "${src%.c}" >"$tmp/run.log" 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL $name exited non-zero:" >&2; tail -n 5 "$tmp/run.log" >&2
  fi
done
echo "RESULT $pass $fail 0"
[ "$fail" -eq 0 ]
