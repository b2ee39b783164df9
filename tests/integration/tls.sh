#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo's HTTPS as a user runs it (issue 16): TLS_PORT beside PORT, a self-signed
# certificate made on first run in a temporary directory (removed at exit) and read with
# `curl -k`, or the certificate of CHOPIN_TLS_CERT/CHOPIN_TLS_KEY verified with its CA;
# TLS_PORT=off serves plain HTTP only. Skipped without TLS in the build, curl or openssl.
# Usage: tests/integration/tls.sh BUILD_DIR   (prints "RESULT passed failed [skipped]")
set -u
build=${1:-build}
bin=$build/examples/demo
pass=0 fail=0
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

if ! nm "$build/libchopin.a" 2>/dev/null | grep -qE ' T chopin__tls_transport_install$' ||
   ! command -v curl >/dev/null || ! command -v openssl >/dev/null; then
  echo "tls.sh: skipped: needs a build with TLS, curl and openssl"; echo "RESULT 0 0 1"; exit 0
fi

check() { # name, command...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $name" >&2; fi
}

start() { # env assignments...; sets pid, port (plain), tls_port, temp (the demo's cert dir)
  env PORT=0 CHOPIN_WORKERS=1 CHOPIN_TODO_DB=$tmp/todo.db "$@" "$bin" 2>"$tmp/err" &
  pid=$!
  port= tls_port=
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/err")
    [ -n "$port" ] && break
    sleep 0.1
  done
  tls_port=$(sed -n 's/.*listening on https:\/\/[^,]*:\([0-9][0-9]*\),.*/\1/p' "$tmp/err")
  temp=$(sed -n 's/^demo: HTTPS with a self-signed certificate for localhost in \([^ ]*\) .*/\1/p' "$tmp/err")
}

stop() { kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=; return $rc; }

start
check "banner names the https listener first" [ -n "$tls_port" ]
check "curl -k https /plaintext" [ "$(curl -sk --max-time 5 "https://127.0.0.1:$tls_port/plaintext")" = "Hello, World!" ]
check "https /json" bash -c "curl -sk --max-time 5 https://127.0.0.1:$tls_port/json | grep -q Hello"
if curl -V | grep -q HTTP2 && nm "$build/libchopin.a" 2>/dev/null | grep -q " T chopin__h2_start$"; then
  check "HTTP/2 by ALPN (curl --http2)" [ "$(curl -sk --http2 --max-time 5 -o /dev/null -w '%{http_version} %{http_code}' "https://127.0.0.1:$tls_port/json")" = "2 200" ]
  check "HTTP/1.1 still when asked (curl --http1.1)" [ "$(curl -sk --http1.1 --max-time 5 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$tls_port/json")" = "1.1" ]
fi
py=/usr/bin/python3; [ -x "$py" ] || py=python3
if "$py" -c "import websockets" 2>/dev/null; then
  check "wss:// echo (python3-websockets over TLS)" [ "$("$py" - "$tls_port" <<'PY'
import asyncio, ssl, sys
import websockets
async def main():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    async with websockets.connect("wss://127.0.0.1:%s/ws/echo" % sys.argv[1], ssl=ctx,
                                  open_timeout=5) as ws:
        await ws.send("over tls")
        print(await asyncio.wait_for(ws.recv(), 5))
asyncio.run(main())
PY
)" = "over tls" ]
fi
check "TLS 1.3 by default" bash -c "curl -skv --max-time 5 -o /dev/null https://127.0.0.1:$tls_port/plaintext 2>&1 | grep -q 'TLSv1.3'"
check "plain HTTP beside it" [ "$(curl -s --max-time 5 "http://127.0.0.1:$port/plaintext")" = "Hello, World!" ]
check "plain HTTP to the TLS port: 400" [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$tls_port/plaintext")" = "400" ]
check "self-signed certificate made in a temporary directory" [ -n "$temp" ] && [ -f "$temp/cert.pem" ]
check "SIGTERM exits 0" stop
check "its directory removed at exit" [ ! -e "${temp:-/nonexistent}" ]

tests/tls/mkcerts.sh "$tmp/certs"
start CHOPIN_TLS_CERT="$tmp/certs/a.pem" CHOPIN_TLS_KEY="$tmp/certs/a.key"
check "CHOPIN_TLS_CERT: no certificate made" [ -z "$temp" ]
check "CHOPIN_TLS_CERT: verified with its CA" [ "$(curl -s --max-time 5 --cacert "$tmp/certs/ca.pem" "https://localhost:$tls_port/plaintext")" = "Hello, World!" ]
check "SIGTERM exits 0 (own certificate)" stop

# SIGHUP reloads the certificate files: a new one is served, a bad one keeps the old.
subject() { openssl s_client -connect "127.0.0.1:$tls_port" </dev/null 2>/dev/null |
            openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'; }
cp "$tmp/certs/a.pem" "$tmp/live.pem"; cp "$tmp/certs/a.key" "$tmp/live.key"
start CHOPIN_TLS_CERT="$tmp/live.pem" CHOPIN_TLS_KEY="$tmp/live.key"
check "SIGHUP: a.test served first" [ "$(subject)" = "a.test" ]
cp "$tmp/certs/b.pem" "$tmp/live.pem"; cp "$tmp/certs/b.key" "$tmp/live.key"
kill -HUP "$pid"
for _ in $(seq 50); do grep -q "TLS certificates reloaded" "$tmp/err" && break; sleep 0.1; done
check "SIGHUP: b.test served after the reload" [ "$(subject)" = "b.test" ]
cp "$tmp/certs/a.key" "$tmp/live.key" # b's certificate with a's key: refused
kill -HUP "$pid"
for _ in $(seq 50); do grep -q "reload refused" "$tmp/err" && break; sleep 0.1; done
check "SIGHUP: a bad pair is refused and says why" grep -q "TLS reload refused, the old certificates stay" "$tmp/err"
check "SIGHUP: b.test still served" [ "$(subject)" = "b.test" ]
check "SIGTERM exits 0 (after reloads)" stop

start TLS_PORT=off
check "TLS_PORT=off: no https listener" bash -c "! grep -q https:// $tmp/err"
check "SIGTERM exits 0 (plain only)" stop

echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
