#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the net/http + database/sql peer of bench/todo_pg.sh
# (bench/peers/todo_pg_go/main.go) into build/bench/todo_pg_go-bench, offline, from
# Debian's golang-go and golang-github-lib-pq-dev: see build_go.sh.
# Usage: bench/peers/build_todo_pg_go.sh [-f]     (-f: rebuild even if the binary is up to date)
exec "$(dirname "${BASH_SOURCE[0]}")/build_go.sh" todo_pg_go golang-github-lib-pq-dev lib/pq "$@"
