#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The licence travels with the code: LICENSE is the MIT text, and every source, build and
# script file names it in an SPDX line near its top (corpora and prose aside).
# Usage: tests/build/licence.sh   (prints "RESULT passed failed skipped")
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0
if grep -q '^MIT License' LICENSE 2>/dev/null; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL LICENSE is missing or not the MIT text" >&2; fi
# The files themselves, not git's list: a fresh copy of the tree may have no .git.
missing=$(find src include tests bench fuzz examples scripts .ci Makefile -type f \
    \( -name '*.[ch]' -o -name '*.sh' -o -name '*.lua' -o -name '*.go' -o -name '*.rs' \
       -o -name '*.toml' -o -name '*.conf' -o -name Makefile -o -path .ci/run \) \
    -not -path 'fuzz/corpus/*' |
  while read -r f; do head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT' || echo "$f"; done)
if [ -z "$missing" ]; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL no SPDX line in:" $missing >&2; fi
echo "RESULT $pass $fail 0"
[ "$fail" -eq 0 ]
