#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the upload peer of bench/upload.sh (net/http with MultipartReader,
# bench/peers/upload/main.go) into build/bench/upload-bench, offline, from Debian's
# golang-go (the standard library only): see build_go.sh.
# Usage: bench/peers/build_upload.sh [-f]     (-f: rebuild even if the binary is up to date)
exec "$(dirname "${BASH_SOURCE[0]}")/build_go.sh" upload golang-go "Go net/http" "$@"
