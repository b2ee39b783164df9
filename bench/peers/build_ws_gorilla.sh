#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the gorilla/websocket peer of bench/ws.sh (bench/peers/ws_gorilla/main.go) into
# build/bench/ws_gorilla-bench, offline, from Debian's golang-go and
# golang-github-gorilla-websocket-dev: see build_go.sh.
# Usage: bench/peers/build_ws_gorilla.sh [-f]     (-f: rebuild even if up to date)
exec "$(dirname "${BASH_SOURCE[0]}")/build_go.sh" ws_gorilla golang-github-gorilla-websocket-dev gorilla/websocket "$@"
