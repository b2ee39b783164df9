# SPDX-License-Identifier: MIT
# Chopin: one root Makefile. `make` builds the library and examples; see README for the rest.
SHELL := /bin/bash
# The tree rules below come first in the file; without this `make` would build only the
# library they start with.
.DEFAULT_GOAL := all
CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
VERSION := 0.1.0
comma   := ,

# CFLAGS and CPPFLAGS the environment gave, before this file appends to them: the sub-make
# below must start from these, not from the appended values make exports.
ENV_FLAGS := $(foreach v,CFLAGS CPPFLAGS,$(if $(filter environment,$(origin $(v))),$(v)='$(subst ','\'',$($(v)))'))

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -pthread -fPIC -fvisibility=hidden $(WARN)
CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE
LDLIBS  := -pthread

# io_uring backend when liburing is installed (CHOPIN_URING=0 leaves it out).
CHOPIN_URING ?= $(shell test -e /usr/include/liburing.h && echo 1 || echo 0)
ifeq ($(CHOPIN_URING),1)
  CPPFLAGS += -DCHOPIN_HAVE_URING
  LDLIBS   += -luring
endif

# On-the-fly compression (issue 15, src/api/compress*.c): each library built in when
# pkg-config finds it (scripts/deps.sh installs them): libdeflate (whole gzip bodies), zlib
# (gzip streams; whole bodies too without libdeflate), libbrotlienc, libzstd. A coding whose
# library is missing is left out (chopin_compress_supported); CHOPIN_COMPRESS=0 leaves out
# all of them. The tests decode brotli with libbrotlidec (COMPRESS_TEST_LIBS).
CHOPIN_COMPRESS ?= 1
compress_pkg = $(if $(filter 1,$(CHOPIN_COMPRESS)),$(shell pkg-config --exists $(1) 2>/dev/null && echo $(1)))
COMPRESS_ZLIB := $(call compress_pkg,zlib)
COMPRESS_PKGS := $(COMPRESS_ZLIB) $(if $(COMPRESS_ZLIB),$(call compress_pkg,libdeflate)) \
                 $(call compress_pkg,libbrotlienc) $(call compress_pkg,libzstd)
COMPRESS_DEFS := $(addprefix -DCHOPIN_HAVE_,$(patsubst zlib,ZLIB,$(patsubst libdeflate,LIBDEFLATE,\
                   $(patsubst libbrotlienc,BROTLI,$(patsubst libzstd,ZSTD,$(COMPRESS_PKGS))))))
COMPRESS_TEST_LIBS := $(if $(call compress_pkg,libbrotlidec),$(shell pkg-config --libs libbrotlidec))
CPPFLAGS += $(COMPRESS_DEFS) $(if $(COMPRESS_TEST_LIBS),-DCHOPIN_HAVE_BROTLIDEC)
LDLIBS   += $(if $(strip $(COMPRESS_PKGS)),$(shell pkg-config --libs $(COMPRESS_PKGS)))
# HTTP/2 (issue 20, src/h2) when pkg-config finds libnghttp2 (libnghttp2-dev); without it
# the library has no HTTP/2 and its tests skip. CHOPIN_H2=0 leaves it out.
CHOPIN_H2 ?= $(shell pkg-config --exists libnghttp2 2>/dev/null && echo 1 || echo 0)
ifeq ($(CHOPIN_H2),1)
  CPPFLAGS += -DCHOPIN_HAVE_NGHTTP2 $(shell pkg-config --cflags libnghttp2)
  LDLIBS   += $(shell pkg-config --libs libnghttp2)
endif

# WebSocket permessage-deflate (issue 17, src/ws/deflate.c): zlib when pkg-config knows it,
# whatever CHOPIN_COMPRESS says (CHOPIN_WS_DEFLATE; linked here unless compression already
# links it). Without it WebSockets run uncompressed and no offer is accepted.
WS_ZLIB_LIBS := $(shell pkg-config --libs zlib 2>/dev/null)
ifneq ($(WS_ZLIB_LIBS),)
  CPPFLAGS += -DCHOPIN_WS_DEFLATE
  LDLIBS   += $(if $(COMPRESS_ZLIB),,$(WS_ZLIB_LIBS))
endif

LIB_SRC  := $(wildcard src/*.c src/*/*.c)
# TLS (issue 16, docs/tls.md): OpenSSL 3 when pkg-config finds it (libssl-dev, installed by
# scripts/deps.sh build; CHOPIN_TLS=0 leaves it out). Without it src/tls/ is not built,
# https:// listeners are refused with CHOPIN_ENOTSUP and the TLS tests say they skip.
CHOPIN_TLS ?= $(shell pkg-config --exists 'openssl >= 3' 2>/dev/null && echo 1 || echo 0)
ifeq ($(CHOPIN_TLS),1)
  CPPFLAGS += -DCHOPIN_HAVE_TLS $(shell pkg-config --cflags openssl)
  LDLIBS   += $(shell pkg-config --libs openssl)
else
  LIB_SRC  := $(filter-out src/tls/%,$(LIB_SRC))
  FUZZ_NEEDS_TLS := fuzz_tls
endif
# Programs of one file each; the others are built by their own rules below.
EXAMPLE_PARTS := examples/demo.c examples/todo_app.c examples/todo.c examples/todo_pg.c \
                 examples/pg_client.c examples/todo_input.c examples/upload.c examples/sha256.c
# The SQLite todo service and the input rules it shares with the PostgreSQL one.
TODO_SRC := examples/todo.c examples/todo.h examples/todo_input.c examples/todo_input.h
# The demo's /upload (issue 18): multipart uploads streamed to disk, hashed with SHA-256.
UPLOAD_SRC := examples/upload.c examples/upload.h examples/sha256.c examples/sha256.h
EXAMPLES := demo $(patsubst examples/%.c,%,$(filter-out $(EXAMPLE_PARTS),$(wildcard examples/*.c)))
UNIT     := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
INTEG    := $(patsubst tests/integration/%.c,%,$(wildcard tests/integration/test_*.c))
FUZZERS  := $(filter-out $(FUZZ_NEEDS_TLS),$(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c)))

# ----- platform: which event backends this system has (docs/kqueue.md) -------------------
# Linux: epoll (and io_uring, above). macOS and the BSDs: kqueue, without the epoll file.
UNAME_S := $(shell uname -s)
ifneq ($(filter Darwin FreeBSD NetBSD OpenBSD DragonFly,$(UNAME_S)),)
  CPPFLAGS += -DCHOPIN_HAVE_KQUEUE
  LIB_SRC  := $(filter-out src/backend/epoll.c,$(LIB_SRC))
endif

# The demo and the todo example need SQLite and jansson.
APP_LIBS := -lsqlite3 -ljansson
# The todo service on PostgreSQL (examples/todo_pg.c) also needs libpq: built when
# pkg-config knows it (libpq-dev, installed by scripts/deps.sh test), left out otherwise.
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null)
PQ_LIBS   := $(shell pkg-config --libs libpq 2>/dev/null)
PG_EXAMPLES := $(if $(PQ_LIBS),todo_pg)

# ----- one build tree per flavour: $(BUILD) (release) and $(BUILD)/asan ------------------
# $(1)/flags holds the compiler and flags the tree was built with, rewritten only when they
# change: everything in the tree depends on it, so a change (CHOPIN_URING, CFLAGS, a new
# liburing) rebuilds the tree, and an unchanged build rebuilds nothing.
define tree # $(1)=dir
$(1)/flags: FORCE
	@mkdir -p $$(@D)
	@flags='$$(subst ','\'',$$(CC) $$(CPPFLAGS) $$(CFLAGS) $$(EXTRA_$(1)) | $$(LDLIBS) $$(APP_LIBS))'; \
	  printf '%s\n' "$$$$flags" | cmp -s - $$@ || printf '%s\n' "$$$$flags" > $$@

$(1)/obj/%.o: src/%.c $$(wildcard include/*.h src/*.h src/*/*.h) $(1)/flags
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) $$(EXTRA_$(1)) -c $$< -o $$@

$(1)/libchopin.a: $$(patsubst src/%.c,$(1)/obj/%.o,$$(LIB_SRC))
	@rm -f $$@
	ar rcs $$@ $$^

$(1)/tests/%: tests/unit/%.c $(1)/libchopin.a tests/test.h tests/unit/fake.h tests/compress_decode.h $(1)/flags
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -Itests $$(CFLAGS) $$(EXTRA_$(1)) $$< $(1)/libchopin.a -o $$@ $$(LDLIBS) $$(APP_LIBS) $$(COMPRESS_TEST_LIBS)

$(1)/itests/%: tests/integration/%.c tests/integration/client.c tests/integration/client.h $(1)/libchopin.a tests/test.h tests/compress_decode.h $(1)/flags
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -Itests -Itests/integration $$(CFLAGS) $$(EXTRA_$(1)) $$< tests/integration/client.c $(1)/libchopin.a -o $$@ $$(LDLIBS) $$(COMPRESS_TEST_LIBS)

$(1)/regress/%: fuzz/%.c fuzz/regress.c $(wildcard fuzz/*.h) $(1)/libchopin.a $(1)/flags
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) $$(EXTRA_$(1)) -Wno-missing-prototypes $$< fuzz/regress.c $(1)/libchopin.a -o $$@ $$(LDLIBS)

$(1)/examples/demo: examples/demo.c examples/chat_page.h $(TODO_SRC) $(UPLOAD_SRC) $(1)/libchopin.a $(1)/flags
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -Iexamples $$(CFLAGS) $$(EXTRA_$(1)) examples/demo.c $(filter %.c,$(TODO_SRC) $(UPLOAD_SRC)) $(1)/libchopin.a -o $$@ $$(LDLIBS) $$(APP_LIBS)

$(1)/examples/todo_app: examples/todo_app.c $(TODO_SRC) $(1)/libchopin.a $(1)/flags
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -Iexamples $$(CFLAGS) $$(EXTRA_$(1)) examples/todo_app.c $(filter %.c,$(TODO_SRC)) $(1)/libchopin.a -o $$@ $$(LDLIBS) $$(APP_LIBS)

$(1)/examples/todo_pg: examples/todo_pg.c examples/pg_client.c examples/pg_client.h $(TODO_SRC) \
                      $(1)/libchopin.a $(1)/flags
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -Iexamples $$(PQ_CFLAGS) $$(CFLAGS) $$(EXTRA_$(1)) examples/todo_pg.c examples/pg_client.c \
	  $(filter %.c,$(TODO_SRC)) $(1)/libchopin.a -o $$@ $$(LDLIBS) $$(APP_LIBS) $$(PQ_LIBS)

$(1)/examples/%: examples/%.c $(1)/libchopin.a $(1)/flags
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) $$(EXTRA_$(1)) $$< $(1)/libchopin.a -o $$@ $$(LDLIBS) $$(APP_LIBS)

$(1)-all: $(1)/libchopin.a $(addprefix $(1)/examples/,$(EXAMPLES) $(PG_EXAMPLES)) $(if $(wildcard examples/todo_app.c),$(1)/examples/todo_app) \
          $(addprefix $(1)/tests/,$(UNIT)) $(addprefix $(1)/itests/,$(INTEG)) $(addprefix $(1)/regress/,$(FUZZERS)) \
          $(1)/itests/loadgen # the load generator of tests/integration/restart.sh (issue 19)
endef

EXTRA_$(BUILD)/asan := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(eval $(call tree,$(BUILD)))
$(eval $(call tree,$(BUILD)/asan))
# ThreadSanitizer: the library, and only the tests that run threads against it (the
# worker's post queue and loop); `make test` runs them after the other two trees.
EXTRA_$(BUILD)/tsan := -O1 -fsanitize=thread -fno-omit-frame-pointer
TSAN_TESTS := $(BUILD)/tsan/tests/test_loop $(BUILD)/tsan/itests/test_loop $(BUILD)/tsan/itests/test_defer \
              $(BUILD)/tsan/itests/test_offload \
              $(BUILD)/tsan/itests/test_metrics # workers' counters read by a scrape (issue 19)
# TLS (issue 16): the context every worker shares (ticket keys, reload under load)
ifeq ($(CHOPIN_TLS),1)
  TSAN_TESTS += $(BUILD)/tsan/itests/test_tls
endif
# WebSocket: chopin_ws_post and publish from other threads (issue 17)
TSAN_TESTS += $(BUILD)/tsan/itests/test_ws
$(eval $(call tree,$(BUILD)/tsan))

.PHONY: all deps run test test-fast soak attack bench bench-micro fuzz fuzz-build install clean FORCE

# `make`, `make run`, `make test`, `make test-fast` and `make bench` first install the
# Debian packages they need (scripts/deps.sh), then run again as a sub-make. The io_uring
# choice above is made when make reads this file, so it must be read after liburing-dev is
# installed: else the first build on a fresh machine would be the epoll-only one.
ifeq ($(CHOPIN_DEPS_DONE),)
all run test test-fast bench:
	@scripts/deps.sh $(or $(DEPS_LEVEL_$@),build)
	@$(ENV_FLAGS) $(MAKE) --no-print-directory CHOPIN_DEPS_DONE=1 $@
DEPS_LEVEL_test      := test
DEPS_LEVEL_test-fast := test
DEPS_LEVEL_bench     := bench
else
all: $(BUILD)/libchopin.a $(BUILD)/libchopin.so $(addprefix $(BUILD)/examples/,$(EXAMPLES) $(PG_EXAMPLES)) \
     $(if $(wildcard examples/todo_app.c),$(BUILD)/examples/todo_app)

PORT ?= 8080
run: all
	PORT=$(PORT) $(BUILD)/examples/demo

# The README's test command: release suite, then the same suite under ASan+UBSan, then
# the threaded tests under TSan.
test: $(BUILD)-all $(BUILD)/asan-all $(TSAN_TESTS)
	@tests/run.sh $(BUILD) $(BUILD)/asan $(BUILD)/tsan

test-fast: $(BUILD)-all
	@tests/run.sh $(BUILD)

bench: all
	bench/run.sh
	@# HTTP/2 (issue 20): h2load against nginx and h2o over h2c
	bench/h2.sh
endif

deps:
	@scripts/deps.sh build

FORCE:

$(BUILD)/libchopin.so: $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/flags
	$(CC) -shared $(SONAME_FLAG) $(CFLAGS) $(filter %.o,$^) -o $@ $(LDLIBS)

SONAME_FLAG := $(if $(filter Darwin,$(shell uname -s)),-Wl$(comma)-install_name$(comma)libchopin.0.dylib,-Wl$(comma)-soname$(comma)libchopin.so.0)

# Not part of `make test`: millions of requests over tens of thousands of connections, then
# open fds and RSS must be back where they started (tests/integration/soak.c). Once per
# backend; SOAK_REQUESTS and SOAK_THREADS size it.
soak:
	@$(MAKE) --no-print-directory $(BUILD)/itests/soak
	@for be in epoll $$(nm $(BUILD)/libchopin.a 2>/dev/null | grep -qE ' [TDR] chopin__uring_backend$$' && echo io_uring); do \
	  echo "== soak [$$be]"; CHOPIN_BACKEND=$$be $(BUILD)/itests/soak || exit 1; \
	done

# Not part of `make test`: each attack shape of issue 13 (slowloris, resets mid-upload,
# graceful stop with requests in flight, memory after uploads, after a burst and after
# slow readers) against the demo, one worker, and nginx in the same run, one table
# (bench/attack.sh; ATTACK_* size it, small by default so .ci/run can run it). It reports
# figures; it fails only when a server dies or a shape cannot run.
attack:
	@scripts/deps.sh attack
	@$(ENV_FLAGS) $(MAKE) --no-print-directory $(BUILD)/examples/demo
	BUILD=$(abspath $(BUILD)) bench/attack.sh

# ----- the kqueue backend on Linux, over libkqueue (docs/kqueue.md) ----------------------
# `make test-kqueue KQUEUE_PREFIX=/opt/libkqueue` (libkqueue built and installed outside
# the repository). $(BUILD)/kqueue: the whole suite, every backend, kqueue included, with
# the Linux wake (an eventfd). $(BUILD)/kqueue-user: the BSD wake (EVFILT_USER on the
# worker's kqueue); only the kqueue backend can run it, so only its integration tests run.
# Both abort on a write event after a write filter was deleted (CHOPIN_KQUEUE_CHECK).
.PHONY: test-kqueue
KQUEUE_PREFIX ?=
KQ_TREES := $(BUILD)/kqueue $(BUILD)/kqueue-user
ifneq ($(KQUEUE_PREFIX),)
KQ_FLAGS := -DCHOPIN_HAVE_KQUEUE -DCHOPIN_KQUEUE_CHECK -I$(KQUEUE_PREFIX)/include/kqueue
EXTRA_$(BUILD)/kqueue := $(KQ_FLAGS)
EXTRA_$(BUILD)/kqueue-user := $(KQ_FLAGS) -DCHOPIN_WAKE_EVFILT_USER
$(addsuffix /%,$(KQ_TREES)): LDLIBS += -L$(KQUEUE_PREFIX)/lib -Wl,-rpath,$(KQUEUE_PREFIX)/lib -lkqueue
$(foreach t,$(KQ_TREES),$(eval $(call tree,$(t))))
endif

test-kqueue:
ifeq ($(KQUEUE_PREFIX),)
	@echo "test-kqueue: skipped: give KQUEUE_PREFIX=<where libkqueue is installed> (docs/kqueue.md)"
else
	@test -f $(KQUEUE_PREFIX)/include/kqueue/sys/event.h || \
	  { echo "test-kqueue: no $(KQUEUE_PREFIX)/include/kqueue/sys/event.h: is libkqueue installed there?"; exit 1; }
	@$(MAKE) --no-print-directory $(addsuffix -all,$(KQ_TREES))
	@fail=0; tests/run.sh $(BUILD)/kqueue || fail=1; \
	echo "== $(BUILD)/kqueue-user: integration tests on kqueue with the EVFILT_USER wake"; \
	tree=$(BUILD)/kqueue-user; \
	for t in $$tree/itests/test_* tests/integration/*.sh; do \
	  case $$t in *.sh) cmd="bash $$t $$tree" ;; *) cmd=$$t ;; esac; \
	  out=$$(CHOPIN_BACKEND=kqueue timeout 300 $$cmd 2>&1); rc=$$?; \
	  res=$$(printf '%s\n' "$$out" | grep -E '^RESULT ' | tail -n 1); \
	  if [ $$rc -eq 0 ]; then echo "ok   $$t [kqueue, EVFILT_USER] ($$res)"; \
	  else echo "FAIL $$t [kqueue, EVFILT_USER] (exit $$rc, $$res)"; printf '%s\n' "$$out" | tail -n 30; fail=1; fi; \
	done; exit $$fail
endif

# kTLS (issue 16, docs/tls.md): on a machine whose kernel has the tls module, checks that
# every TLS connection takes the kernel's tls layer (none says it fell back) and that the
# TLS suites pass with it, on each backend. Fails where the module cannot be loaded.
.PHONY: test-ktls
test-ktls:
	@modprobe tls 2>/dev/null || true
	@$(MAKE) --no-print-directory $(BUILD)/tests/test_tls $(BUILD)/itests/test_tls $(BUILD)/itests/test_server
	@fail=0; for be in epoll $$(nm $(BUILD)/libchopin.a | grep -qE ' [TDR] chopin__uring_backend$$' && echo io_uring); do \
	  for t in "$(BUILD)/itests/test_tls" "env CHOPIN_TEST_TLS=1 $(BUILD)/itests/test_server"; do \
	    out=$$(CHOPIN_BACKEND=$$be CHOPIN_TEST_KTLS=1 $$t 2>&1); rc=$$?; \
	    echo "$$([ $$rc -eq 0 ] && echo ok || echo FAIL) $$t [$$be, kTLS] ($$(printf '%s\n' "$$out" | grep '^RESULT'))"; \
	    [ $$rc -eq 0 ] || { printf '%s\n' "$$out" | tail -n 20; fail=1; }; \
	  done; \
	done; exit $$fail

# The demo's chat and upload pages in headless Chromium (issues 17, 18; tests/integration/browser.sh;
# `make test` runs it too, per backend). Installs chromium and node-ws with the test
# packages; skipped, saying why, when chromium cannot start.
.PHONY: test-browser
test-browser:
	@scripts/deps.sh test
	@$(ENV_FLAGS) $(MAKE) --no-print-directory $(BUILD)/examples/demo
	@bash tests/integration/browser.sh $(BUILD)

# h2spec (issue 20), the public HTTP/2 conformance suite, built outside the repository
# (not in Debian; never committed): `make h2spec H2SPEC=/path/to/h2spec` (docs/http2.md).
.PHONY: h2spec
H2SPEC ?=
h2spec:
ifeq ($(H2SPEC),)
	@echo "h2spec: skipped: give H2SPEC=<path to the h2spec binary> (github.com/summerwind/h2spec, built outside the repository; docs/http2.md)"
else
	@$(MAKE) --no-print-directory $(BUILD)/examples/demo
	tests/h2spec.sh $(BUILD) $(H2SPEC)
endif

bench-micro:
	@$(MAKE) --no-print-directory $(BUILD)/libchopin.a
	bench/micro.sh $(BUILD)

# libFuzzer targets, built with clang (the sanitizer runtimes of gcc and clang do not mix):
# the library once, instrumented for coverage (fuzzer-no-link), then each target linked
# against it. `make fuzz FUZZ_TIME=60` runs each for FUZZ_TIME seconds on a scratch copy of
# its corpus; crashes land in $(BUILD)/fuzz/.
FUZZ_TIME  ?= 60
FUZZ_CC    ?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -std=gnu11 \
              -Wno-unused-command-line-argument
fuzz-build: $(addprefix $(BUILD)/fuzz/,$(FUZZERS))
.PHONY: fuzz-deps
fuzz-deps:
	@scripts/deps.sh fuzz
$(BUILD)/fuzz/obj/%.o: src/%.c $(wildcard include/*.h src/*.h src/*/*.h) | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(CPPFLAGS) -c $< -o $@
$(BUILD)/fuzz/libchopin.a: $(patsubst src/%.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRC))
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/%: fuzz/%.c $(wildcard fuzz/*.h) $(BUILD)/fuzz/libchopin.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $(CPPFLAGS) $< $(BUILD)/fuzz/libchopin.a -o $@ $(LDLIBS)
fuzz: fuzz-build
	@for f in $(FUZZERS); do \
	  name=$${f#fuzz_}; work=$(BUILD)/fuzz/corpus-$$name; mkdir -p $$work; \
	  echo "== $$f ($(FUZZ_TIME) s)"; \
	  $(BUILD)/fuzz/$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/$$f- $$work fuzz/corpus/$$name 2>&1 | \
	    grep -E '^(stat::number_of_executed_units|stat::peak_rss|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY)' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# Copies the libraries, the headers (chopin_jansson.h, the examples' jansson glue, too) and
# chopin.pc. It installs no packages: it builds the library with what this machine has
# (`make` first installs the build packages). chopin.pc names -luring (Libs.private, for
# static links) only when the library has the io_uring backend.
install: $(BUILD)/libchopin.a $(BUILD)/libchopin.so
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/chopin.h include/chopin_jansson.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libchopin.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libchopin.so $(DESTDIR)$(PREFIX)/lib/libchopin.so.$(VERSION)
	ln -sf libchopin.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libchopin.so.0
	ln -sf libchopin.so.0 $(DESTDIR)$(PREFIX)/lib/libchopin.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS@|$(LDLIBS)|' chopin.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/chopin.pc

clean:
	rm -rf $(BUILD)
