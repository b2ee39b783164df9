#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The licence travels with the code: LICENSE is the MIT text, and every source, build and
# script file git tracks names it in an SPDX line near its top (corpora and prose aside).
# Usage: tests/build/licence.sh   (prints "RESULT passed failed skipped")
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0
if grep -q '^MIT License' LICENSE 2>/dev/null; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL LICENSE is missing or not the MIT text" >&2; fi
if ! command -v git >/dev/null || ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "skip: not a git checkout: the tracked files cannot be listed" >&2
  echo "RESULT $pass $fail 1"; exit "$fail"
fi
missing=$(git ls-files | grep -E '\.(c|h|sh|lua|go|rs|toml|conf)$|^Makefile$|^\.ci/run$' |
  while read -r f; do [ -f "$f" ] && ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT' && echo "$f"; done)
if [ -z "$missing" ]; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL no SPDX line in:" $missing >&2; fi
echo "RESULT $pass $fail 0"
[ "$fail" -eq 0 ]
