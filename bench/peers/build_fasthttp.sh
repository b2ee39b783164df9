#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the fasthttp peer of bench/run.sh (bench/peers/fasthttp/main.go) into
# build/bench/fasthttp-bench, offline, from Debian's golang-go and golang-github-valyala-
# fasthttp-dev: see build_go.sh.
# Usage: bench/peers/build_fasthttp.sh [-f]     (-f: rebuild even if the binary is up to date)
exec "$(dirname "${BASH_SOURCE[0]}")/build_go.sh" fasthttp golang-github-valyala-fasthttp-dev fasthttp "$@"
