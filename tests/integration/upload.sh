#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo's /upload (issue 18) with real clients: curl -F (several files and text fields,
# 100-continue on the larger ones) and Python's requests; each file's size and SHA-256 in
# the answer and on disk; its own 4 GiB limit over CHOPIN_MAX_BODY_BYTES (1 KiB here); 415
# for a body that is not multipart, 400 for a malformed one; a client that stops mid-part
# leaves no file behind, and the server serves on.
# Usage: tests/integration/upload.sh BUILD_DIR   (prints "RESULT passed failed skipped")
set -u
. "$(dirname "$0")/lib/banner.sh"
build=${1:-build}
bin=$build/examples/demo
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

check() { # name, command...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $name" >&2; fi
}

if ! command -v curl >/dev/null; then
  echo "skip: no curl (scripts/deps.sh test installs it)"
  echo "RESULT 0 0 1"
  exit 0
fi

mkdir -p "$tmp/store"
PORT=0 CHOPIN_WORKERS=1 CHOPIN_MAX_BODY_BYTES=1024 CHOPIN_TODO_DB=$tmp/todo.db \
  CHOPIN_UPLOAD_DIR=$tmp/store "$bin" 2>"$tmp/err" &
pid=$!
port=$(banner_port "$tmp/err")
url=http://127.0.0.1:$port/upload

head -c 3000000 /dev/urandom >"$tmp/a.bin"
printf 'line one\r\n--not a boundary\r\n\r\n' >"$tmp/b.txt"
: >"$tmp/empty"
sha() { sha256sum "$1" | cut -d' ' -f1; }

# The answer's files, one "field filename size sha256 stored" line each.
files_of() { python3 -c 'import json,sys
for f in json.load(sys.stdin)["files"]: print(f["field"], f["filename"], f["size"], f["sha256"], f["stored"])'; }

check "GET /upload is the form" bash -c "curl -s --max-time 5 $url | grep -q 'enctype=\"multipart/form-data\"'"

curl -s --max-time 30 -F 'title=Caf\xc3\xa9 & co' -F "files=@$tmp/a.bin" -F "files=@$tmp/b.txt" \
  -F "extra=@$tmp/empty" -F 'notes=two words' "$url" >"$tmp/answer"
files_of <"$tmp/answer" >"$tmp/files" 2>/dev/null
check "curl -F: three files in the answer" [ "$(wc -l <"$tmp/files")" -eq 3 ]
check "curl -F: sizes and SHA-256" diff <(printf '%s\n' "files a.bin 3000000 $(sha "$tmp/a.bin")" \
  "files b.txt $(stat -c %s "$tmp/b.txt") $(sha "$tmp/b.txt")" "extra empty 0 $(sha "$tmp/empty")") \
  <(cut -d' ' -f1-4 "$tmp/files")
check "curl -F: text fields" bash -c "python3 -c 'import json,sys; d=json.load(sys.stdin)[\"fields\"]; sys.exit(d.get(\"notes\") != \"two words\")' <$tmp/answer"
stored=$(awk '$2 == "a.bin" {print $5}' "$tmp/files")
check "the stored file is the upload" [ -n "$stored" ] && cmp -s "$tmp/store/$stored" "$tmp/a.bin"

# Past CHOPIN_MAX_BODY_BYTES (1 KiB here): the route's own limit applies.
head -c 20000000 /dev/urandom >"$tmp/big.bin"
curl -s --max-time 60 -F "f=@$tmp/big.bin" "$url" | files_of >"$tmp/big" 2>/dev/null
check "20 MB upload over a 1 KiB server limit" [ "$(cut -d' ' -f3-4 "$tmp/big")" = "20000000 $(sha "$tmp/big.bin")" ]

check "415 for a body that is not multipart" \
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --data 'a=1' "$url")" = 415 ]
check "400 for a body cut before its closing boundary" \
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: multipart/form-data; boundary=zz' \
       --data-binary $'--zz\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue' "$url")" = 400 ]
check "400 for a part without a name" \
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: multipart/form-data; boundary=zz' \
       --data-binary $'--zz\r\nContent-Disposition: form-data; filename=a\r\n\r\nvalue\r\n--zz--' "$url")" = 400 ]

# A client that leaves mid-part: nothing of its file stays in the directory.
before=$(ls "$tmp/store" | wc -l)
curl -s --max-time 2 --limit-rate 2M -F "f=@$tmp/big.bin" "$url" >/dev/null 2>&1
sleep 0.3
check "an upload cut short leaves no file ($before before, $(ls "$tmp/store" | wc -l) after)" \
  [ "$(ls "$tmp/store" | wc -l)" -eq "$before" ]
check "the server serves on" [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url")" = 200 ]

if python3 -c 'import requests' 2>/dev/null; then
  out=$(python3 - "$url" "$tmp/a.bin" <<'PY'
import hashlib, sys, requests
url, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
r = requests.post(url, files={"doc": ("r\u00e9sum\u00e9.bin", data, "application/octet-stream")},
                  data={"who": "python"}, timeout=30)
f = r.json()["files"][0]
ok = (r.status_code == 200 and f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
      and f["filename"] == "r\u00e9sum\u00e9.bin" and r.json()["fields"]["who"] == "python")
print("ok" if ok else "bad: %s %s" % (r.status_code, r.text[:300]))
PY
)
  check "Python requests upload ($out)" [ "$out" = ok ]
else
  skip=$((skip + 1))
  echo "skip: Python requests: python3-requests is not installed (scripts/deps.sh test installs it)"
fi

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM exits 0 (got $rc)" [ "$rc" -eq 0 ]
echo "RESULT $pass $fail $skip"
[ "$fail" -eq 0 ]
