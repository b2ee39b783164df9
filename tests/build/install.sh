#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The build as a user meets it, in a scratch build tree and a scratch install root:
# - a change of build flags rebuilds: an epoll-only build, then CHOPIN_URING=1 in the same
#   tree, must give a library with the io_uring backend; an unchanged build rebuilds nothing;
# - `make install` (no CHOPIN_URING given: the Makefile finds liburing) installs both headers
#   and a chopin.pc that links the README's program shared and static, the static link
#   taking -luring from Libs.private;
# - the README's program compiles with -Wall -Wextra -Werror, answers on the PORT it is
#   given and exits 0 on SIGTERM; the jansson glue header compiles from the install.
# Usage: tests/build/install.sh   (prints "RESULT passed failed skipped")
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0 fail=0 skip=0

check() { # name, command...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $name" >&2; fi
}

# This make is not a sub-make of the one running the tests: it gets its own settings.
unset MAKEFLAGS MFLAGS MAKELEVEL
build=$tmp/build root=$tmp/root
mk() { # make arguments...: quiet unless it fails
  make --no-print-directory -j"$(nproc)" BUILD="$build" "$@" >"$tmp/make.log" 2>&1 && return
  tail -n 20 "$tmp/make.log" >&2; return 1
}
has_uring() { nm "$1" 2>/dev/null | grep -qE ' [TDR] chopin__uring_backend$'; }
pc() { PKG_CONFIG_LIBDIR=$root/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root pkg-config "$@"; }

if [ ! -e /usr/include/liburing.h ]; then
  echo "skip: no liburing.h (liburing-dev): the io_uring build cannot be checked" >&2
  echo "RESULT 0 0 1"; exit 0
fi

check "epoll-only build" mk CHOPIN_URING=0 "$build/libchopin.a"
check "CHOPIN_URING=0 leaves io_uring out" bash -c "! nm '$build/libchopin.a' | grep -q chopin__uring_backend"
check "rebuild with CHOPIN_URING=1" mk CHOPIN_URING=1 "$build/libchopin.a"
check "the rebuilt library has the io_uring backend" has_uring "$build/libchopin.a"
touch "$tmp/mark"
check "unchanged build" mk CHOPIN_URING=1 "$build/libchopin.a"
check "an unchanged build recompiles nothing" \
  bash -c "[ -z \"\$(find '$build' -name '*.o' -newer '$tmp/mark')\" ]"

check "make install" mk install DESTDIR="$root" PREFIX=/usr
for f in include/chopin.h include/chopin_jansson.h lib/libchopin.a lib/libchopin.so.0 \
         lib/pkgconfig/chopin.pc; do
  check "installs $f" test -e "$root/usr/$f"
done
check "the installed library has the io_uring backend" has_uring "$root/usr/lib/libchopin.a"
check "chopin.pc: a static link gets -luring" bash -c "$(declare -f pc); root='$root'; pc --static --libs chopin | grep -qw -- -luring"
check "chopin.pc: MIT licence" grep -qx 'License: MIT' "$root/usr/lib/pkgconfig/chopin.pc"

# The README's program: the first C block after the "## A program" heading.
awk '/^## A program/ { on = 1 } on && /^```c$/ { code = 1; next }
     code && /^```$/ { exit } code { print }' README.md >"$tmp/app.c"
check "README has a C program" grep -q 'chopin_serve' "$tmp/app.c"
cflags="-Wall -Wextra -Werror $(pc --cflags chopin)"
check "README program: shared link, -Wall -Wextra -Werror" \
  cc $cflags "$tmp/app.c" $(pc --libs chopin) -o "$tmp/app_shared"
static_libs=$(pc --static --libs chopin | sed 's/-lchopin\b/-l:libchopin.a/')
check "README program: static link from Libs.private" \
  cc $cflags "$tmp/app.c" $static_libs -o "$tmp/app_static"
check "the static program needs no libchopin.so" \
  bash -c "test -x '$tmp/app_static' && ! readelf -d '$tmp/app_static' | grep -q 'libchopin'"

serve() { # name, program: started on PORT=0, answers /hello/:name, exits 0 on SIGTERM
  local name=$1 port= rc
  PORT=0 CHOPIN_WORKERS=1 LD_LIBRARY_PATH=$root/usr/lib "$2" 2>"$tmp/err" &
  pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/err")
    [ -n "$port" ] && break
    sleep 0.1
  done
  check "$name: listens on the PORT given (0: the kernel's pick, not the default 8080)" \
    test -n "$port" -a "$port" != 8080
  check "$name: answers" \
    test "$(curl -s --max-time 5 "http://127.0.0.1:$port/hello/world")" = '{"hello":"world"}'
  kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
  check "$name: SIGTERM exits 0 (got $rc)" test "$rc" -eq 0
}
if command -v curl >/dev/null; then
  serve "shared" "$tmp/app_shared"
  serve "static" "$tmp/app_static"
else
  echo "skip: no curl: the README program is built, not run" >&2; skip=$((skip + 1))
fi

cat >"$tmp/glue.c" <<'EOF'
#include <chopin.h>
#include <chopin_jansson.h>
static void handler(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    json_t *v = chopin_req_json_body(req, res);
    if (v) { chopin_res_text(res, 200, "ok"); json_decref(v); }
}
int main(void) {
    chopin_router *r = chopin_router_new();
    if (!r)
        return 1;
    int rc = chopin_router_post(r, "/", handler, NULL);
    chopin_router_free(r);
    return rc < 0;
}
EOF
check "chopin_jansson.h from the install, with -ljansson" \
  cc $cflags "$tmp/glue.c" $(pc --libs chopin) -ljansson -o "$tmp/glue"

echo "RESULT $pass $fail $skip"
[ "$fail" -eq 0 ]
