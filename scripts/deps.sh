#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages Chopin needs to build and test, skipping those present.
# Usage: scripts/deps.sh [build|test|bench|fuzz|attack]   (test includes build; bench,
# fuzz and attack include test; attack adds only nginx-light, for `make attack`). `test`
# brings PostgreSQL (server and libpq) for the asynchronous database example and its suite
# (tests/integration/todo_pg.sh starts a private server). The fuzzing toolchain (clang and
# its runtime, about 375 MB) is installed only for `make fuzz`: every test, the fuzz
# targets' corpus runs included, builds with gcc.
set -euo pipefail
level=${1:-build}

pkgs=(make gcc libc6-dev pkg-config liburing-dev libsqlite3-dev libjansson-dev
      # TLS (issue 16): OpenSSL 3 to build with, the openssl command to make test certificates
      libssl-dev openssl
      # on-the-fly compression (issue 15): each coding is left out when its library is missing;
      # libbrotli-dev also brings the brotli decoder the tests check with
      libdeflate-dev zlib1g-dev libbrotli-dev libzstd-dev
      # HTTP/2 (issue 20; built in when pkg-config finds it)
      libnghttp2-dev
      # (zlib1g-dev is also WebSocket permessage-deflate's, issue 17)
      )
case $level in
  test|bench|fuzz|attack) pkgs+=(curl procps postgresql libpq-dev
                                 # a real server-sent events client (tests/integration/sse.sh)
                                 nodejs node-eventsource
                                 # uploads from Python's requests (tests/integration/upload.sh)
                                 python3 python3-requests
                                 # static files side by side with nginx (static_nginx.sh)
                                 nginx-light
                                 # HTTP/2 clients: nghttp and h2load (tests/integration/h2.sh, bench)
                                 nghttp2-client
                                 # promtool checks the metrics' exposition (issue 19)
                                 prometheus
                                 # load balancers in front of the demo (tests/integration/lb.sh),
                                 # socket activation (systemd-socket-activate)
                                 haproxy systemd
                                 # real WebSocket clients and a browser (issue 17: tests/integration/ws*.sh)
                                 python3-websockets node-ws chromium) ;;&
  bench) pkgs+=(wrk nginx-light h2o strace
                # the plot of bench/latency.sh (docs/latency.png)
                gnuplot-nox
                # the hyper and fasthttp peers, built offline by bench/peers/build_*.sh
                cargo rustc librust-hyper-dev librust-tokio-dev librust-serde-json-dev
                librust-serde-derive-dev golang-go golang-github-valyala-fasthttp-dev
                # the Go net/http + database/sql peer of bench/todo_pg.sh
                golang-github-lib-pq-dev
                # the gorilla/websocket peer of bench/ws.sh (issue 17)
                golang-github-gorilla-websocket-dev) ;;
  fuzz) pkgs+=(clang libclang-rt-14-dev llvm) ;;
  attack) pkgs+=(nginx-light) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: need root to install packages (or install them yourself): ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
