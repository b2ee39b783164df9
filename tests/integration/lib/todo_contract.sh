# SPDX-License-Identifier: MIT
# The todo API's contract, as checks over real sockets with curl, shared by the suites of
# the services that implement it (todo.sh: SQLite, todo_pg.sh: PostgreSQL).
#
# Source it after lib/app.sh, then call todo_contract_checks on a server just started on
# an empty database (BASE set). It checks every status of the API and concurrent writers
# on several connections, and leaves ID1, ID2 (todos it changed), ID_DEL (one it deleted)
# and TOTAL (how many todos there are) for the caller's own checks (after a restart, say).
#
# Bodies are matched as text: the servers' JSON writer emits compact JSON with the keys
# in a fixed order (id, title, done, created_at), so no JSON tool is needed here.

# ---- requests and checks ---------------------------------------------------------------

# http METHOD PATH [BODY]: sets STATUS, BODY and HEADERS (lowercase names, no CRs).
http() {
  local data=()
  [ $# -ge 3 ] && data=(--data-binary "$3" -H 'Content-Type: application/json')
  STATUS=$("${CURL[@]}" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -X "$1" \
    "${data[@]}" "$BASE$2" 2>"$TMP/curl.err") || STATUS="curl-error($(head -c 200 "$TMP/curl.err"))"
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

# expect_header LABEL "name: value" (name lowercase; value compared lowercased).
expect_header() {
  if grep -qxF -- "$2" <<<"$HEADERS"; then ok; else fail "$1: no header '$2' in: $HEADERS"; fi
}

JSON_ERROR='^\{"error":"[^"].*"\}$'
# A todo with id N (any id when N is [0-9]+), title T (a regex), done D.
todo_re() { echo "^\\{\"id\":$1,\"title\":\"$2\",\"done\":$3,\"created_at\":[0-9]+\\}\$"; }

# expect_400 LABEL METHOD PATH [BODY]: a 400 with a JSON error body.
expect_400() {
  local label=$1; shift
  http "$@"
  expect "$label" 400 "$JSON_ERROR"
}

json_field() { # NAME: the integer value of a top-level-or-first field NAME in BODY
  sed -n "s/.*\"$1\":\\([0-9][0-9]*\\).*/\\1/p" <<<"$BODY" | head -n 1
}

# ---- the checks ------------------------------------------------------------------------

todo_contract_checks() {
  # Create (201, the todo with its id, Location).
  http POST /todos '{"title":"buy milk"}'
  expect "create" 201 "$(todo_re '[0-9]+' 'buy milk' false)"
  ID1=$(json_field id)
  expect_header "create Location" "location: /todos/$ID1"
  expect_header "create Content-Type" "content-type: application/json"
  http POST /todos '{"title":"say \"hi\" \\ é","done":true}'
  expect "create with done and escapes" 201 "$(todo_re '[0-9]+' 'say \\"hi\\" \\\\ é' true)"
  ID2=$(json_field id)
  [ -n "$ID1" ] && [ -n "$ID2" ] && [ "$ID1" != "$ID2" ] && ok || fail "ids '$ID1' '$ID2' not distinct"

  # Read one, and HEAD of it (the router answers HEAD with GET's headers, no body).
  http GET "/todos/$ID1"
  expect "get" 200 "$(todo_re "$ID1" 'buy milk' false)"
  HEAD_OUT=$("${CURL[@]}" -I "$BASE/todos/$ID1" | tr -d '\r' | head -n 1)
  [[ $HEAD_OUT == "HTTP/1.1 200"* ]] && ok || fail "HEAD: $HEAD_OUT"

  # List and paging.
  for t in three four five; do http POST /todos "{\"title\":\"$t\"}"; expect "create $t" 201; done
  http GET /todos
  expect "list" 200 '^\{"items":\[.*\],"limit":20,"offset":0,"total":5\}$'
  http GET '/todos?limit=2&offset=1'
  expect "list page" 200 "^\\{\"items\":\\[\\{\"id\":$ID2,[^]]*\"title\":\"three\"[^]]*\\}\\],\"limit\":2,\"offset\":1,\"total\":5\\}\$"
  [ "$(grep -o '"id":' <<<"$BODY" | wc -l)" -eq 2 ] && ok || fail "list page: not 2 items: $BODY"
  http GET '/todos?offset=1000'
  expect "list past the end" 200 '^\{"items":\[\],"limit":20,"offset":1000,"total":5\}$'
  http GET '/todos?limit=100&offset=0'
  expect "list limit 100" 200 '"limit":100,"offset":0,"total":5\}$'

  # Full replace: done not given falls back to false.
  http PUT "/todos/$ID2" '{"title":"replaced"}'
  expect "put" 200 "$(todo_re "$ID2" replaced false)"
  http PUT "/todos/$ID2" '{"title":"replaced","done":true}'
  expect "put with done" 200 "$(todo_re "$ID2" replaced true)"
  # Partial update: only what is given changes.
  http PATCH "/todos/$ID1" '{"done":true}'
  expect "patch done" 200 "$(todo_re "$ID1" 'buy milk' true)"
  http PATCH "/todos/$ID1" '{"title":"buy oat milk"}'
  expect "patch title" 200 "$(todo_re "$ID1" 'buy oat milk' true)"
  http PATCH "/todos/$ID1" '{}'
  expect "patch nothing" 200 "$(todo_re "$ID1" 'buy oat milk' true)"
  http GET "/todos/$ID1"
  expect "get after patch" 200 "$(todo_re "$ID1" 'buy oat milk' true)"

  # Delete.
  http POST /todos '{"title":"to delete"}'
  ID_DEL=$(json_field id)
  http DELETE "/todos/$ID_DEL"
  expect "delete" 204 '^$'
  http GET "/todos/$ID_DEL"
  expect "get deleted" 404 "$JSON_ERROR"
  http DELETE "/todos/$ID_DEL"
  expect "delete twice" 404 "$JSON_ERROR"

  # 400: invalid JSON and invalid fields.
  LONG=$(printf 'x%.0s' $(seq 1025))
  expect_400 "invalid JSON" POST /todos '{"title":'
  expect_400 "empty body" POST /todos ''
  expect_400 "JSON array" POST /todos '["buy milk"]'
  expect_400 "JSON string" POST /todos '"buy milk"'
  expect_400 "duplicate key" POST /todos '{"title":"a","title":"b"}'
  expect_400 "missing title" POST /todos '{"done":true}'
  expect_400 "empty title" POST /todos '{"title":""}'
  expect_400 "blank title" POST /todos '{"title":"  "}'
  expect_400 "null title" POST /todos '{"title":null}'
  expect_400 "number title" POST /todos '{"title":42}'
  expect_400 "title too long" POST /todos "{\"title\":\"$LONG\"}"
  expect_400 "done as string" POST /todos '{"title":"a","done":"yes"}'
  expect_400 "done as number" POST /todos '{"title":"a","done":1}'
  expect_400 "unknown field" POST /todos '{"title":"a","priority":1}'
  expect_400 "read-only id" POST /todos '{"title":"a","id":7}'
  expect_400 "put without title" PUT "/todos/$ID1" '{"done":true}'
  expect_400 "put invalid JSON" PUT "/todos/$ID1" 'nope'
  expect_400 "patch wrong type" PATCH "/todos/$ID1" '{"done":null}'
  expect_400 "patch empty title" PATCH "/todos/$ID1" '{"title":""}'
  expect_400 "patch invalid JSON" PATCH "/todos/$ID1" '{"done":tru}'
  for bad in abc 0 -1 1.5 +1 99999999999999999999 '1%20'; do
    expect_400 "id '$bad'" GET "/todos/$bad"
  done
  expect_400 "put bad id" PUT /todos/x '{"title":"a"}'
  expect_400 "patch bad id" PATCH /todos/0 '{"done":true}'
  expect_400 "delete bad id" DELETE /todos/-5
  for q in limit=0 limit=101 limit=abc limit= limit=-1 'limit=1.5' 'limit=%zz' offset=-1 offset=x offset= 'offset=1e3'; do
    expect_400 "list ?$q" GET "/todos?$q"
  done
  http GET "/todos/$ID1"
  expect "unchanged after bad requests" 200 "$(todo_re "$ID1" 'buy oat milk' true)"

  # 404: a well-formed id with no todo.
  for m in GET DELETE; do http $m /todos/987654321; expect "$m unknown id" 404 "$JSON_ERROR"; done
  http PUT /todos/987654321 '{"title":"a"}'
  expect "PUT unknown id" 404 "$JSON_ERROR"
  http PATCH /todos/987654321 '{"done":true}'
  expect "PATCH unknown id" 404 "$JSON_ERROR"

  # 405: the path exists for other methods (the router adds Allow).
  http POST "/todos/$ID1"
  expect "POST /todos/:id" 405
  expect_header "405 Allow on an item" "allow: get, head, put, delete, patch"
  for m in DELETE PUT PATCH; do http $m /todos; expect "$m /todos" 405; done
  expect_header "405 Allow on the collection" "allow: get, head, post"

  # Concurrent writers: 4 connections (one keep-alive curl each) creating 25 todos each,
  # while a reader lists. Every create must be 201, the ids unique, the total exact.
  http GET /todos
  TOTAL_BEFORE=$(json_field total)
  WRITERS=4 PER_WRITER=25
  writer() { # N: 25 POSTs on one connection; prints each body then its status
    local urls=() i
    for i in $(seq "$PER_WRITER"); do urls+=("$BASE/todos"); done
    curl -sS --max-time 60 -H 'Content-Type: application/json' \
      --data-binary "{\"title\":\"writer $1\"}" -w '\n%{http_code}\n' "${urls[@]}"
  }
  reader() { # lists until the writers are done; prints each status
    while [ ! -e "$TMP/writers.done" ]; do
      "${CURL[@]}" -o /dev/null -w '%{http_code}\n' "$BASE/todos?limit=100"
    done
  }
  rm -f "$TMP/writers.done"
  reader >"$TMP/reader.out" 2>&1 &
  READER=$!
  pids=()
  for w in $(seq "$WRITERS"); do
    writer "$w" >"$TMP/writer.$w" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  touch "$TMP/writers.done"
  wait "$READER"
  CREATED=$(cat "$TMP"/writer.* | grep -cx 201)
  [ "$CREATED" -eq $((WRITERS * PER_WRITER)) ] && ok ||
    fail "concurrent creates: $CREATED of $((WRITERS * PER_WRITER)) answered 201: $(grep -vx 201 "$TMP"/writer.* | grep -v '"id"' | sort | uniq -c | head)"
  UNIQUE=$(cat "$TMP"/writer.* | grep -o '"id":[0-9]*' | sort -u | wc -l)
  [ "$UNIQUE" -eq $((WRITERS * PER_WRITER)) ] && ok || fail "concurrent creates: $UNIQUE unique ids"
  READER_BAD=$(grep -cvx 200 "$TMP/reader.out")
  [ "$READER_BAD" -eq 0 ] && ok || fail "concurrent reader: $READER_BAD non-200 answers: $(sort "$TMP/reader.out" | uniq -c)"
  http GET /todos
  expect "list after concurrent writers" 200 "\"limit\":20,\"offset\":0,\"total\":$((TOTAL_BEFORE + WRITERS * PER_WRITER))\\}\$"
  [ "$(grep -o '"id":' <<<"$BODY" | wc -l)" -eq 20 ] && ok || fail "default page does not hold 20 items"
  for w in $(seq "$WRITERS"); do
    http GET "/todos?limit=100&offset=$TOTAL_BEFORE"
    n=$(grep -o "\"title\":\"writer $w\"" <<<"$BODY" | wc -l)
    [ "$n" -eq "$PER_WRITER" ] && ok || fail "writer $w: $n of $PER_WRITER todos listed"
  done
  TOTAL=$((TOTAL_BEFORE + WRITERS * PER_WRITER))
}
