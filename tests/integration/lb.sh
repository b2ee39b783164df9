#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo behind real load balancers, all on loopback in a temp dir (issue 19):
#   - HAProxy (Debian haproxy) in TCP mode with send-proxy-v2, and in HTTP mode with
#     send-proxy (v1), to a ?proxy listener: GET /whoami sees the curl client's own address
#     and port, not HAProxy's; with the proxies' address not trusted, the connection is
#     closed without an answer (curl: empty reply);
#   - nginx (Debian nginx-light) as a reverse proxy setting X-Forwarded-For and
#     X-Forwarded-Proto: the client address is curl's, a forged X-Forwarded-For sent by
#     curl is not believed, and sent straight to the server it is ignored.
# The client, the proxies and the server use different loopback addresses (127.0.0.1,
# .2, .3) so "trusted" means only the proxy. Each part is skipped, saying why, when its
# program is missing or does not start.
# Usage: tests/integration/lb.sh BUILD_DIR   (prints "RESULT passed failed skipped")
set -u
build=${1:-build}
bin=$build/examples/demo
tmp=$(mktemp -d)
pass=0 fail=0 skip=0
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*" >&2; }
check() { # label, got, want
  if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # host port: 1 when something listens there within 5 s
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Starts the demo with CHOPIN_LISTEN=$1 and CHOPIN_TRUSTED_PROXIES=$2; sets $ports to the
# ports it listens on, in order.
start_demo() {
  local err=$tmp/demo.$RANDOM
  CHOPIN_LISTEN=$1 CHOPIN_TRUSTED_PROXIES=$2 PORT=0 CHOPIN_WORKERS=2 \
    CHOPIN_TODO_DB=$tmp/todo.db "$bin" 2>"$err" &
  pids+=($!)
  demo_pid=$!
  ports=
  for _ in $(seq 100); do
    ports=$(sed -n 's/.*listening on //p' "$err" | grep -oE ':[0-9]+' | tr -d ':' | tr '\n' ' ')
    [ -n "$ports" ] && return 0
    sleep 0.1
  done
  echo "demo did not start: $(cat "$err")" >&2
  return 1
}

stop() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# GET /whoami through host:port from 127.0.0.1, extra curl arguments after: prints the
# answer with the client's own port in it replaced by "PORT" (the machine may be busy, so
# curl picks a free port itself: --local-port with a range, -w tells which).
whoami() {
  local host=$1 port=$2 out lport; shift 2
  out=$(curl -s --max-time 5 --interface 127.0.0.1 --local-port 20000-30000 "$@" \
    -w '\n%{local_port}' "http://$host:$port/whoami")
  lport=${out##*$'\n'}
  out=${out%$'\n'*}
  printf '%s' "${out//127.0.0.1:$lport /127.0.0.1:PORT }"
}

# ----- HAProxy ---------------------------------------------------------------------------
haproxy_run() { # mode (tcp|http), send-proxy flag, backend port, frontend port
  local cfg=$tmp/haproxy-$1.cfg
  cat >"$cfg" <<EOF
global
  maxconn 100
defaults
  mode $1
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.2:$4
  default_backend be
backend be
  server chopin 127.0.0.1:$3 $2 source 127.0.0.3
EOF
  haproxy -f "$cfg" -db >"$tmp/haproxy-$1.log" 2>&1 &
  pids+=($!)
  haproxy_pid=$!
  wait_port 127.0.0.2 "$4"
}

haproxy_part() {
  if ! command -v haproxy >/dev/null; then
    echo "skip HAProxy: not installed (Debian: haproxy)" >&2; skip=$((skip + 1)); return
  fi
  start_demo "127.0.0.1:0?proxy" "127.0.0.3" || { bad "demo start"; return; }
  local cport=${ports%% *} fport
  fport=$(free_port)
  if ! haproxy_run tcp send-proxy-v2 "$cport" "$fport"; then
    echo "skip HAProxy: it did not start: $(tail -3 "$tmp/haproxy-tcp.log")" >&2
    skip=$((skip + 1)); stop "$demo_pid"; return
  fi
  check "haproxy v2 tcp" "$(whoami 127.0.0.2 "$fport")" \
    "remote=127.0.0.1:PORT client=127.0.0.1 scheme=http"
  # Keep-alive through the proxy: both requests of the connection carry the client.
  local two
  two=$(curl -s --max-time 5 --interface 127.0.0.1 --local-port 20000-30000 -w '|%{local_port}\n' \
    "http://127.0.0.2:$fport/whoami" "http://127.0.0.2:$fport/whoami" |
    sed -n 's/^remote=127.0.0.1:\([0-9]*\) .*/\1/p; s/^|//p' | sort -u | wc -l)
  check "haproxy v2 keep-alive: one client port in both answers" "$two" 1
  stop "$haproxy_pid"
  if haproxy_run http send-proxy "$cport" "$fport"; then
    check "haproxy v1 http" "$(whoami 127.0.0.2 "$fport")" \
      "remote=127.0.0.1:PORT client=127.0.0.1 scheme=http"
    stop "$haproxy_pid"
  else
    bad "haproxy http mode did not start: $(tail -3 "$tmp/haproxy-http.log")"
  fi
  stop "$demo_pid"

  # The same, with the proxy not trusted: closed without an answer.
  start_demo "127.0.0.1:0?proxy" "10.0.0.0/8" || { bad "demo start"; return; }
  cport=${ports%% *}
  if haproxy_run tcp send-proxy-v2 "$cport" "$fport"; then
    local out rc
    out=$(curl -s --max-time 5 "http://127.0.0.2:$fport/whoami"); rc=$?
    check "haproxy untrusted: no answer" "$out" ""
    check "haproxy untrusted: curl says empty reply (52)" "$rc" 52
    stop "$haproxy_pid"
  else
    bad "haproxy did not start again"
  fi
  stop "$demo_pid"
}

# ----- nginx -------------------------------------------------------------------------------
nginx_part() {
  local nginx
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  if [ ! -x "$nginx" ]; then
    echo "skip nginx: not installed (Debian: nginx-light)" >&2; skip=$((skip + 1)); return
  fi
  start_demo "127.0.0.1:0" "127.0.0.3" || { bad "demo start"; return; }
  local cport=${ports%% *} nport
  nport=$(free_port)
  mkdir -p "$tmp/nginx"
  cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.2:$nport;
    location / {
      proxy_pass http://127.0.0.1:$cport;
      proxy_bind 127.0.0.3;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
  "$nginx" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/start.log" &
  pids+=($!)
  local npid=$!
  if ! wait_port 127.0.0.2 "$nport"; then
    echo "skip nginx: it did not start: $(cat "$tmp/nginx/start.log" "$tmp/nginx/error.log" 2>/dev/null | tail -3)" >&2
    skip=$((skip + 1)); stop "$demo_pid"; return
  fi
  local out
  out=$(whoami 127.0.0.2 "$nport")
  check "nginx: the client" "${out#remote=127.0.0.3:* }" "client=127.0.0.1 scheme=http"
  # A forged X-Forwarded-For from the client ends up left of nginx's entry: not believed.
  out=$(whoami 127.0.0.2 "$nport" -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-Proto: https')
  check "nginx: forged X-Forwarded-For" "${out#remote=127.0.0.3:* }" "client=127.0.0.1 scheme=http"
  # Straight to the server, the headers come from an untrusted peer.
  out=$(whoami 127.0.0.1 "$cport" -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-Proto: https')
  check "direct: headers ignored" "$out" "remote=127.0.0.1:PORT client=127.0.0.1 scheme=http"
  stop "$npid"
  stop "$demo_pid"
}

if [ ! -x "$bin" ]; then
  echo "no $bin: build it first" >&2
  echo "RESULT 0 1"
  exit 1
fi
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then
  echo "skip: needs curl and python3" >&2
  echo "RESULT 0 0 1"
  exit 0
fi
haproxy_part
nginx_part
echo "RESULT $pass $fail $skip"
[ "$fail" -eq 0 ]
