#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the sleep peer of bench/later.sh (net/http and fasthttp)
# (bench/peers/sleep/main.go) into build/bench/sleep-bench, offline, from Debian's golang-
# go and golang-github-valyala-fasthttp-dev: see build_go.sh.
# Usage: bench/peers/build_sleep.sh [-f]     (-f: rebuild even if the binary is up to date)
exec "$(dirname "${BASH_SOURCE[0]}")/build_go.sh" sleep golang-github-valyala-fasthttp-dev fasthttp "$@"
