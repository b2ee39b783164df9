#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Integration test of the bookmarks service (examples/bookmarks.c) over real sockets, with
# curl and bash's /dev/tcp.
#
#   bash tests/integration/bookmarks.sh BUILD_DIR        (BUILD_DIR: build, build/asan, ...)
#
# Starts $BUILD_DIR/examples/bookmarks on 127.0.0.1 with a port the kernel picks (read back
# from the start banner), a database and a static directory in a temporary directory, and
# checks: login and the session cookie, CRUD scoped to the user, the ?tag and ?starred
# filters, 401 for every spelling of an /api path without a session (405 included), static
# files, path traversal that never yields /etc/passwd, CORS, the access log line of a
# malformed request, logout, a clean exit on SIGTERM and the removal of the default
# temporary database. CHOPIN_BACKEND and the other CHOPIN_* variables pass through.
# Prints "RESULT <passed> <failed> <skipped>" last; exits non-zero when a check failed.
set -u

BUILD=${1:?usage: bookmarks.sh BUILD_DIR}
APP=$BUILD/examples/bookmarks
NAME=bookmarks
# shellcheck source=lib/app.sh
. "$(dirname "$0")/lib/app.sh"

# ---- server lifecycle ------------------------------------------------------------------

# start_server [VAR=value...]: starts the app with extra environment (and none of the
# caller's BOOKMARKS_* settings), sets BASE and PORT; returns 1 if it never listens.
start_server() { app_start -u BOOKMARKS_DB -u BOOKMARKS_STATIC "$@"; }

# ---- requests and checks ---------------------------------------------------------------

# http METHOD PATH [BODY] [curl options...]: sets STATUS, BODY and HEADERS (lowercase, no
# CRs). Sends the session cookie jar when it exists; --path-as-is keeps dot segments.
http() {
  local method=$1 path=$2 data=()
  shift 2
  if [ $# -ge 1 ] && [[ $1 != -* ]]; then
    data=(--data-binary "$1" -H 'Content-Type: application/json'); shift
  fi
  local jar=(); [ -f "$TMP/jar" ] && jar=(-b "$TMP/jar")
  STATUS=$("${CURL[@]}" --path-as-is -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' \
    -X "$method" "${jar[@]}" "${data[@]}" "$@" "$BASE$path" 2>"$TMP/curl.err") ||
    STATUS="curl-error($(head -c 200 "$TMP/curl.err"))"
  BODY=$(cat "$TMP/body" 2>/dev/null)
  HEADERS=$(tr -d '\r' <"$TMP/headers" 2>/dev/null | tr 'A-Z' 'a-z')
}

# expect LABEL STATUS [BODY_REGEX]: one check on the last response.
expect() {
  local label=$1 status=$2 regex=${3:-}
  if [ "$STATUS" != "$status" ]; then
    fail "$label: status $STATUS, expected $status; body: ${BODY:0:200}"
  elif [ -n "$regex" ] && ! [[ $BODY =~ $regex ]]; then
    fail "$label: body ${BODY:0:200} does not match $regex"
  else
    ok
  fi
}

# expect_header LABEL REGEX: a header line (lowercased) of the last response matches.
expect_header() {
  if grep -qE -- "$2" <<<"$HEADERS"; then ok; else fail "$1: no header /$2/ in: $HEADERS"; fi
}

JSON_ERROR='^\{"error":"[^"].*"\}$'
# bookmark_re ID URL TITLE TAG STARRED (regex fragments; TAG null or "x" with quotes)
bookmark_re() { echo "\\{\"id\":$1,\"url\":\"$2\",\"title\":\"$3\",\"tag\":$4,\"starred\":$5\\}"; }
ids() { grep -o '"id":[0-9]*' <<<"$BODY" | cut -d: -f2 | tr '\n' ' '; }
expect_ids() { # LABEL "ID ID ": the ids of the last list, in order
  if [ "$STATUS" = 200 ] && [ "$(ids)" = "$2" ]; then ok; else fail "$1: status $STATUS, ids '$(ids)', expected '$2'"; fi
}

# ---- the run ---------------------------------------------------------------------------

mkdir -p "$TMP/static/css"
echo 'index page' >"$TMP/static/index.html"
echo 'hello static' >"$TMP/static/hello.txt"
echo 'body{}' >"$TMP/static/css/site.css"
ln -s /etc/passwd "$TMP/static/passwd"
ln -s /etc "$TMP/static/etc"

start_server BOOKMARKS_DB="$TMP/bookmarks.db" BOOKMARKS_STATIC="$TMP/static" \
  BOOKMARKS_ORIGIN=http://app.example || finish

# Without a session, every spelling of an /api path is refused by the auth middleware, a
# 405 (DELETE on the list) and the catch-all file route included.
for p in /api/bookmarks /api/../api/bookmarks /%61pi/bookmarks /public/../api/bookmarks \
  /api/./bookmarks /API/../api/bookmarks/1 /api/bookmarks/1 /api/nothing-here /api /api/; do
  http GET "$p"
  expect "GET $p without a session" 401 "$JSON_ERROR"
done
expect_header "401 names the scheme" '^www-authenticate: bearer'
http DELETE /api/bookmarks
expect "DELETE /api/bookmarks (a 405 route) without a session" 401 "$JSON_ERROR"
http POST /api/bookmarks '{"url":"https://x.example"}'
expect "POST /api/bookmarks without a session" 401
http GET /api/bookmarks -H 'Cookie: sid=0123456789abcdef0123456789abcdef'
expect "a made-up session cookie" 401
http GET /api/bookmarks -H 'Authorization: Bearer nope'
expect "a made-up bearer token" 401

# Login.
http POST /login '{"user":"alice","password":"wrong"}'
expect "wrong password" 401 "$JSON_ERROR"
http POST /login '{"user":"mallory","password":"x"}'
expect "unknown user" 401 "$JSON_ERROR"
http POST /login '{"user":"alice"'
expect "login with invalid JSON" 400 '^\{"error":"invalid JSON'
http POST /login '{"name":"alice"}'
expect "login without the fields" 400 "$JSON_ERROR"
http POST /login '{"user":"alice","password":"wonderland"}' -c "$TMP/jar"
expect "alice logs in" 200 '^\{"user":"alice","token":"[0-9a-f]{32}"\}$'
expect_header "session cookie" '^set-cookie: sid=[0-9a-f]{32}; path=/; httponly; samesite=lax$'
grep -q 'sid' "$TMP/jar" && ok || fail "curl kept no session cookie"

# CRUD with the cookie.
http GET /api/bookmarks
expect_ids "empty list" ""
expect_header "private answers" '^cache-control: private, no-store$'
http POST /api/bookmarks '{"url":"https://a.example/","title":"A","tag":"x","starred":true}'
expect "create" 201 "^$(bookmark_re '[0-9]+' 'https://a.example/' A '"x"' true)\$"
expect_header "Location of the new bookmark" '^location: /api/bookmarks/[0-9]+$'
A=$(grep -o '"id":[0-9]*' <<<"$BODY" | cut -d: -f2)
http POST /api/bookmarks '{"url":"http://b.example","tag":"y"}'
expect "create with defaults (title = url)" 201 "^$(bookmark_re '[0-9]+' 'http://b.example' 'http://b.example' '"y"' false)\$"
B=$(grep -o '"id":[0-9]*' <<<"$BODY" | cut -d: -f2)
http POST /api/bookmarks '{"url":"https://c.example","tag":"x"}'
expect "create a third" 201
C=$(grep -o '"id":[0-9]*' <<<"$BODY" | cut -d: -f2)
http GET "/api/bookmarks/$A"
expect "get one" 200 "^$(bookmark_re "$A" 'https://a.example/' A '"x"' true)\$"
http PUT "/api/bookmarks/$B" '{"url":"https://b2.example","title":"B2","tag":null}'
expect "replace" 200 "^$(bookmark_re "$B" 'https://b2.example' B2 null false)\$"
http GET "/api/bookmarks/$B"
expect "the replacement is stored" 200 "^$(bookmark_re "$B" 'https://b2.example' B2 null false)\$"

# Validation: a 400 with a JSON error, nothing stored.
for body in '{"title":"no url"}' '{"url":"javascript:alert(1)"}' '{"url":"ftp://x"}' \
  '{"url":"https://x","titel":"typo"}' '{"url":"https://x","starred":1}' '{"url":"https://x","tag":""}' \
  '{"url":42}' '[1,2]' '"text"' '{"url":"https://x","url":"https://y"}' '{"url":'; do
  http POST /api/bookmarks "$body"
  expect "create refuses $body" 400 "$JSON_ERROR"
done
http PUT "/api/bookmarks/$A" '{"title":"no url"}'
expect "replace refuses a body without url" 400 "$JSON_ERROR"

# Filters: ?tag, ?starred (bare), ?starred=true|false, both.
http GET /api/bookmarks
expect_ids "list in id order" "$A $B $C "
http GET '/api/bookmarks?tag=x'
expect_ids "?tag=x" "$A $C "
http GET '/api/bookmarks?tag=nope'
expect_ids "?tag=nope" ""
http GET '/api/bookmarks?starred'
expect_ids "?starred (bare)" "$A "
http GET '/api/bookmarks?starred=true'
expect_ids "?starred=true" "$A "
http GET '/api/bookmarks?starred=false'
expect_ids "?starred=false" "$B $C "
http GET '/api/bookmarks?tag=x&starred=false'
expect_ids "?tag=x&starred=false" "$C "
http GET '/api/bookmarks?starred='
expect "?starred= (empty value) is refused" 400 "$JSON_ERROR"
http GET '/api/bookmarks?starred=maybe'
expect "?starred=maybe is refused" 400 "$JSON_ERROR"

# Another user (with a Bearer token) sees none of alice's bookmarks.
mv "$TMP/jar" "$TMP/alice.jar"
http POST /login '{"user":"bob","password":"builder"}'
expect "bob logs in" 200
BOB=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' <<<"$BODY")
http GET /api/bookmarks -H "Authorization: Bearer $BOB"
expect_ids "bob's list is empty" ""
http GET "/api/bookmarks/$A" -H "Authorization: Bearer $BOB"
expect "bob cannot read alice's" 404 "$JSON_ERROR"
http PUT "/api/bookmarks/$A" '{"url":"https://evil.example"}' -H "Authorization: Bearer $BOB"
expect "bob cannot replace alice's" 404 "$JSON_ERROR"
http DELETE "/api/bookmarks/$A" -H "Authorization: Bearer $BOB"
expect "bob cannot delete alice's" 404 "$JSON_ERROR"
mv "$TMP/alice.jar" "$TMP/jar"
http GET "/api/bookmarks/$A"
expect "alice's is untouched" 200 "^$(bookmark_re "$A" 'https://a.example/' A '"x"' true)\$"

# Delete.
http DELETE "/api/bookmarks/$C"
expect "delete" 204 '^$'
http GET "/api/bookmarks/$C"
expect "deleted is gone" 404 "$JSON_ERROR"
http DELETE "/api/bookmarks/$C"
expect "delete again" 404 "$JSON_ERROR"
for id in abc 0 -1 99999999999999999999 1.0; do
  http GET "/api/bookmarks/$id"
  expect "no bookmark has id $id" 404 "$JSON_ERROR"
done
http PATCH "/api/bookmarks/$A" '{}'
expect "PATCH is not a method here (405 with a session)" 405
expect_header "405 lists the methods" '^allow: '

# Static files: the /static route and the catch-all serve the same directory.
http GET /static/hello.txt
expect "static file" 200 '^hello static$'
http GET /static/css/site.css
expect "static file in a subdirectory" 200 '^body\{\}$'
expect_header "content type from the extension" '^content-type: text/css'
http GET /hello.txt
expect "catch-all file" 200 '^hello static$'
http GET /
expect "index page" 200 '^index page$'
http GET /missing.txt
expect "missing file" 404

# Traversal: whatever the spelling, /etc/passwd never comes back.
for p in /static/../../etc/passwd /static/../../../../../../etc/passwd /static/%2e%2e/%2e%2e/etc/passwd \
  /static/..%2f..%2f..%2fetc%2fpasswd /static/%2fetc%2fpasswd /static/passwd /passwd /static/etc/passwd \
  /etc/passwd /static/%5c..%5c..%5cetc%5cpasswd '/static/.%2e/.%2e/etc/passwd' /..%2f..%2fetc/passwd; do
  http GET "$p"
  if [ "$STATUS" != 200 ] && ! grep -q 'root:' "$TMP/body"; then ok
  else fail "traversal $p: status $STATUS, body ${BODY:0:80}"; fi
done

# CORS: a preflight is answered before auth; every answer names the allowed origin.
http OPTIONS /api/bookmarks -H 'Origin: http://app.example' -H 'Access-Control-Request-Method: DELETE' \
  -H 'Access-Control-Request-Headers: content-type'
expect "preflight" 204 '^$'
expect_header "preflight allows the methods" '^access-control-allow-methods: .*delete'
expect_header "preflight allows the headers" '^access-control-allow-headers: .*content-type'
expect_header "preflight names the origin" '^access-control-allow-origin: http://app.example$'
http GET /stats -H 'Origin: http://app.example'
expect "stats" 200 '^\{"requests":[0-9]+,"connections_accepted":[0-9]+,"connections_open":[0-9]+,"bytes_sent":[0-9]+,"errors_4xx":[1-9][0-9]*,"errors_5xx":0,'
expect_header "origin on a plain answer" '^access-control-allow-origin: http://app.example$'
expect_header "credentials allowed" '^access-control-allow-credentials: true$'
mv "$TMP/jar" "$TMP/alice.jar"
http GET /api/bookmarks
expect "401 without a session" 401
expect_header "origin on a 401" '^access-control-allow-origin: http://app.example$'
mv "$TMP/alice.jar" "$TMP/jar"

# The access log sees a malformed request, refused before routing (raw bytes, no curl).
raw_request() { # BYTES: sends them, prints the status line of the answer
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  printf '%b' "$1" >&3
  timeout 10 head -n 1 <&3 | tr -d '\r'
  exec 3<&- 3>&-
}
line=$(raw_request 'GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n')
[[ $line == 'HTTP/1.1 400 '* ]] && ok || fail "malformed request: got '$line'"
line=$(raw_request 'NOT-HTTP\r\n\r\n')
[[ $line == 'HTTP/1.1 400 '* ]] && ok || fail "garbage request: got '$line'"
logged() { # REGEX: a log line appears (the log is written after the answer: wait a little)
  local i
  for i in $(seq 50); do
    grep -qE -- "$1" "$TMP/server.log" && return 0
    sleep 0.1
  done
  return 1
}
logged '^access - - 400$' && ok || fail "no access log line for the malformed requests"
[ "$(grep -cE '^access - - 400$' "$TMP/server.log")" -ge 2 ] && ok || fail "one malformed request not logged"
logged '^access GET /%61pi/bookmarks 401$' && ok || fail "the log does not show the raw path"
logged '^access DELETE /api/bookmarks 401$' && ok || fail "the refused 405 is not logged as a 401"
logged '^access OPTIONS /api/bookmarks 204$' && ok || fail "the preflight is not logged"

# Logout: the cookie is expired and the session is gone on the server too.
cp "$TMP/jar" "$TMP/old.jar"
http POST /logout
expect "logout" 204
expect_header "the cookie expires" '^set-cookie: sid=; path=/; max-age=0'
rm -f "$TMP/jar"
http GET /api/bookmarks -b "$TMP/old.jar"
expect "the old session cookie no longer works" 401
http GET /api/bookmarks -H "Authorization: Bearer $BOB"
expect "bob's session is still valid" 200

stop_server

# Without BOOKMARKS_DB: a temporary database, removed at exit; without BOOKMARKS_STATIC no
# file is served.
mkdir -p "$TMP/tmpdir"
if start_server TMPDIR="$TMP/tmpdir"; then
  http POST /login '{"user":"alice","password":"wonderland"}' -c "$TMP/jar"
  expect "login on the temporary database" 200
  http POST /api/bookmarks '{"url":"https://t.example"}'
  expect "write to the temporary database" 201
  http GET /hello.txt
  expect "no static directory: no files" 404
  [ -n "$(ls -A "$TMP/tmpdir")" ] && ok || fail "no temporary database directory while running"
  stop_server
  [ -z "$(ls -A "$TMP/tmpdir")" ] && ok || fail "temporary database left behind: $(ls -AR "$TMP/tmpdir")"
fi

# A bad PORT is reported before anything is created.
rm -rf "$TMP/tmpdir"/*
out=$(env PORT=80x TMPDIR="$TMP/tmpdir" "$APP" 2>&1); rc=$?
[ $rc -ne 0 ] && [[ $out == *PORT* ]] && [ -z "$(ls -A "$TMP/tmpdir")" ] && ok ||
  fail "bad PORT: exit $rc, output '$out', tmpdir: $(ls -A "$TMP/tmpdir")"

finish
