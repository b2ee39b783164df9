#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The same requests to Chopin's static directory (build/examples/files) and to nginx
# (nginx-light, started here on loopback in a temporary directory, serving the same tree),
# side by side: status, the headers that carry meaning, and the body byte for byte. Every
# difference must be one docs/static.md explains (the EXPECTED table below names its
# section); any other difference fails. Skipped when nginx or curl is missing.
# Usage: tests/integration/static_nginx.sh BUILD_DIR   (prints "RESULT passed failed [skipped]")
#        STATIC_NGINX_SHOW=1 to print every request's two answers.
set -u
build=${1:-build}
bin=$build/examples/files
pass=0 fail=0
if ! command -v nginx > /dev/null || ! command -v curl > /dev/null; then
  echo "skip: nginx or curl not installed (scripts/deps.sh test installs nginx-light)"
  echo "RESULT 0 0 1"
  exit 0
fi
[ -x "$bin" ] || { echo "no $bin (make build-all)"; echo "RESULT 0 1"; exit 1; }
tmp=$(mktemp -d)
cpid= npid=
cleanup() {
  [ -n "$cpid" ] && kill "$cpid" 2>/dev/null
  [ -n "$npid" ] && kill "$npid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# ----- the tree both serve -------------------------------------------------------------
www=$tmp/www
mkdir -p "$www/sub" "$www/nolist" "$tmp/outside"
printf 'hello, static world\n' > "$www/hello.txt"
printf 'body { color: red }\n' > "$www/style.css"
printf 'console.log(1);\n' > "$www/app.js"
printf '<p>sub index</p>\n' > "$www/sub/index.html"
printf 'x\n' > "$www/nolist/x.txt"
printf 'dot\n' > "$www/.hidden"
printf 'TOP SECRET\n' > "$tmp/outside/secret.txt"
ln -s ../outside/secret.txt "$www/link_out"
ln -s hello.txt "$www/link_in"
head -c 100000 /dev/urandom > "$www/big.bin"
: > "$www/empty.txt"
chmod -R a+rX "$tmp"

free_port() { # a port nothing listens on now
  local p
  for _ in $(seq 50); do
    p=$((25000 + RANDOM % 7000)) # below the ephemeral range, away from bench/lib.sh's
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo 0
}
wait_port() { # port pid
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

PORT=0 CHOPIN_WORKERS=1 "$bin" "$www" > "$tmp/chopin.log" 2>&1 &
cpid=$!
cport=
for _ in $(seq 100); do # the kernel's port, from the start banner
  cport=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/chopin.log")
  [ -n "$cport" ] && break
  sleep 0.1
done
# start_nginx: on a free port (a few tries: a port can be taken between the check and the
# bind). Sets nport and npid; returns 1 when it did not come up.
start_nginx() {
  for _ in 1 2 3 4 5; do
    nport=$(free_port)
    mkdir -p "$tmp/nginx/tmp"
    cat > "$tmp/nginx/nginx.conf" <<CONF
    daemon off;
    master_process off;
    worker_processes 1;
    pid $tmp/nginx/nginx.pid;
    error_log $tmp/nginx/error.log warn;
    events { worker_connections 256; }
    http {
        access_log off;
        server_tokens off;
        sendfile on;
        open_file_cache max=1024 inactive=60s;
        open_file_cache_valid 1s;
        include /etc/nginx/mime.types;
        default_type application/octet-stream;
        client_body_temp_path $tmp/nginx/tmp/body;
        proxy_temp_path $tmp/nginx/tmp/proxy;
        fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
        uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
        scgi_temp_path $tmp/nginx/tmp/scgi;
        server {
            listen 127.0.0.1:$nport;
            root $www;
        }
    }
CONF
    nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" > "$tmp/nginx.log" 2>&1 &
    npid=$!
    wait_port "$nport" "$npid" && return 0
    kill "$npid" 2>/dev/null
    wait "$npid" 2>/dev/null
    npid=
  done
  return 1
}

if ! start_nginx; then
  echo "skip: nginx did not start: $(tail -n 3 "$tmp/nginx/error.log" "$tmp/nginx.log" 2>/dev/null | tr '\n' ' ')"
  echo "RESULT 0 0 1"
  exit 0
fi
wait_port "$cport" "$cpid" || { echo "FAIL chopin did not start"; cat "$tmp/chopin.log"; echo "RESULT 0 1"; exit 1; }

# ----- one request to both ---------------------------------------------------------------
# summary PORT NAME ARGS...: "status | header: value | ... | body <md5>" of one request,
# with the headers that carry meaning. Compared by shape only, as docs/static.md says why:
# Date, Server, the ETag's spelling, the multipart boundary; the charset=utf-8 Chopin adds
# to text types ("Content types"); the bodies and types of error answers (nginx's are HTML
# pages, Chopin's a line of text: "Error answers"); Accept-Ranges on a 206 (nginx leaves it
# out there: "Several ranges").
summary() {
  local port=$1 name=$2; shift 2
  curl -s --max-time 5 -D "$tmp/$name.head" -o "$tmp/$name.body" "$@" "http://127.0.0.1:$port$URLPATH" || true
  local status etag ctype
  status=$(awk 'NR == 1 { print $2 }' "$tmp/$name.head")
  printf '%s' "$status"
  for h in content-type content-length content-range accept-ranges last-modified location content-encoding; do
    local v
    v=$(awk -F': ' -v h="$h" 'tolower($1) == h { sub(/\r$/, "", $2); print $2 }' "$tmp/$name.head")
    [ "$h" = content-type ] && v=$(printf '%s' "$v" | sed -e 's/boundary=.*/boundary=B/' -e 's/; charset=utf-8$//')
    case $status:$h in
      [45]*:content-type | [45]*:content-length | 206:accept-ranges | 301:content-*) continue ;;
    esac
    [ -n "$v" ] && printf ' | %s: %s' "$h" "$v"
  done
  etag=$(awk -F': ' 'tolower($1) == "etag" { print "etag" }' "$tmp/$name.head")
  [ -n "$etag" ] && printf ' | etag'
  ctype=$(awk -F': ' 'tolower($1) == "content-type" { print $2 }' "$tmp/$name.head")
  case $status in
    2*) case $ctype in
          *) [ "${HEAD_REQUEST:-0}" = 1 ] && { printf ' | body: (HEAD)'; return; } ;;
        esac
        case $ctype in
          multipart/*) printf ' | body: %s' "$(parts "$tmp/$name.body")" ;;
          *) printf ' | body: %s' "$(md5sum < "$tmp/$name.body" | cut -c1-12)" ;;
        esac ;;
    *) printf ' | body: (not compared)' ;;
  esac
}

# parts FILE: the Content-Range lines and the md5 of each part's bytes of a multipart body.
parts() {
  awk 'BEGIN { RS = "\r\n--"; ORS = "" } /Content-Range/ { n = split($0, a, "\r\n\r\n"); match($0, /Content-Range: [^\r]*/); print substr($0, RSTART + 15, RLENGTH - 15) " "; }' "$1"
}

etag_of() { curl -s -D - -o /dev/null "http://127.0.0.1:$1/hello.txt" | awk -F': ' 'tolower($1) == "etag" { sub(/\r$/, "", $2); print $2 }'; }
CETAG=$(etag_of "$cport")
NETAG=$(etag_of "$nport")
LASTMOD=$(curl -s -D - -o /dev/null "http://127.0.0.1:$cport/hello.txt" | awk -F': ' 'tolower($1) == "last-modified" { sub(/\r$/, "", $2); print $2 }')

# Differences docs/static.md explains, by request id: "id|section". Anything else fails.
EXPECTED="
ctype-js|Content types
dir-redirect|Redirects
dir-redirect-query|Redirects
multi|Multipart answers
multi-big|Multipart answers
overlap|Several ranges
dotfile|Dot-files and links
link-out|Dot-files and links
link-in|Dot-files and links
range-head|HEAD and ranges
range-invalid|Several ranges
"

# check ID PATH CURL-ARGS...: compares the two answers to one request.
check() {
  local id=$1; URLPATH=$2; shift 2
  local c n args_c=() args_n=() a
  HEAD_REQUEST=0
  for a in "$@"; do
    [ "$a" = -I ] && HEAD_REQUEST=1
    args_c+=("${a//@ETAG@/$CETAG}")
    args_n+=("${a//@ETAG@/$NETAG}")
  done
  c=$(summary "$cport" chopin "${args_c[@]}")
  n=$(summary "$nport" nginx "${args_n[@]}")
  local why
  why=$(printf '%s\n' "$EXPECTED" | awk -F'|' -v id="$id" '$1 == id { print $2 }')
  if [ "$c" = "$n" ]; then
    pass=$((pass + 1))
    [ -n "${STATIC_NGINX_SHOW:-}" ] && printf 'same     %-20s %s\n         %s\n' "$id" "$URLPATH $*" "$c"
  elif [ -n "$why" ]; then
    pass=$((pass + 1))
    [ -n "${STATIC_NGINX_SHOW:-}" ] && printf 'differs  %-20s %s  (docs/static.md, "%s")\n  chopin: %s\n  nginx:  %s\n' "$id" "$URLPATH $*" "$why" "$c" "$n"
  else
    fail=$((fail + 1))
    printf 'FAIL %s: %s %s\n  chopin: %s\n  nginx:  %s\n' "$id" "$URLPATH" "$*" "$c" "$n" >&2
  fi
  # Whatever the difference, nothing outside the root ever comes from Chopin.
  if grep -q 'TOP SECRET' "$tmp/chopin.body" 2>/dev/null; then
    fail=$((fail + 1)); echo "FAIL $id: chopin served a file outside its root" >&2
  fi
}

check ctype-txt /hello.txt
check ctype-css /style.css
check ctype-js /app.js
check head /hello.txt -I
check empty /empty.txt
check big /big.bin
check missing /missing.txt
check file-slash /hello.txt/
check dir-redirect /sub
check dir-redirect-query '/sub?a=1'
check index /sub/
check no-index /nolist/
check dotdot-encoded '/%2e%2e/outside/secret.txt' --path-as-is
check dotdot '/../outside/secret.txt' --path-as-is
check dotfile /.hidden
check link-out /link_out
check link-in /link_in
check post /hello.txt -X POST -d x
check range-first /hello.txt -H 'Range: bytes=0-4'
check range-open /hello.txt -H 'Range: bytes=5-'
check range-suffix /hello.txt -H 'Range: bytes=-5'
check range-clamped /hello.txt -H 'Range: bytes=10-1000'
check range-big /big.bin -H 'Range: bytes=1000-50999'
check range-416 /hello.txt -H 'Range: bytes=100-'
check range-invalid /hello.txt -H 'Range: bytes=5-2'
check range-unit /hello.txt -H 'Range: lines=1-2'
check range-head /hello.txt -I -H 'Range: bytes=0-4'
check multi /hello.txt -H 'Range: bytes=0-1,4-5'
check multi-big /big.bin -H 'Range: bytes=0-99,50000-50099,-100'
check overlap /hello.txt -H 'Range: bytes=0-4,3-6'
check inm /hello.txt -H 'If-None-Match: @ETAG@'
check inm-star /hello.txt -H 'If-None-Match: *'
check inm-other /hello.txt -H 'If-None-Match: "nope"'
check ims /hello.txt -H "If-Modified-Since: $LASTMOD"
check ims-old /hello.txt -H 'If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT'
check im-other /hello.txt -H 'If-Match: "nope"'
check im-etag /hello.txt -H 'If-Match: @ETAG@'
check ius-old /hello.txt -H 'If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT'
check if-range-etag /hello.txt -H 'Range: bytes=0-4' -H 'If-Range: @ETAG@'
check if-range-stale /hello.txt -H 'Range: bytes=0-4' -H 'If-Range: "stale"'
check if-range-date /hello.txt -H 'Range: bytes=0-4' -H "If-Range: $LASTMOD"

echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
