/* SPDX-License-Identifier: MIT */
/*
 * The access log: one line per answer, formatted on the worker into its own buffer (no
 * lock, no stdio, no syscall per request) and written in batches from the loop turn
 * (chopin__observe_turn), so a request pays for formatting a line only.
 *
 * Every worker writes whole lines with one write(2) per batch to the same descriptor,
 * opened with O_APPEND: batches of several workers never interleave inside a line. A
 * reopen (logrotate) replaces the file under that descriptor number with dup3, so a
 * batch goes whole to the old file or whole to the new one: no line is lost or split.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "http/message.h"
#include "ops/observe.h"

#define BUF_SIZE (256u << 10)
/* Written from the loop turn once this much has gathered, or once the oldest line has
 * waited FLUSH_MS: few writes under load, lines soon in the file when quiet (the loop
 * turns at least once a second). A write's fixed cost (the inode's lock and times, the
 * syscall) is most of what a short line costs the kernel: 146-byte lines to ext4 cost
 * 49 ns each in 16 KiB writes, 38 in 64 KiB and 29 in 256 KiB ones (this machine,
 * 2026-12-03); the buffer's pages are touched only as far as lines fill them. */
#define FLUSH_BYTES (128u << 10)
#define FLUSH_MS 100
/* The longest a line may be: the target and at most six other fields (address, method,
 * user, referer, agent, id), each cut to its share, escaping quadrupling every byte, and
 * the fixed text. The buffer always has room for one more line after a flush. */
#define TARGET_MAX 2048
#define FIELD_MAX 512
#define LINE_MAX (4 * (TARGET_MAX + 6 * FIELD_MAX) + 512)

/* The peer's address per connection slot: one getpeername per connection, not per line. */
struct peer {
    uint32_t gen;
    uint8_t len;   /* 0: not looked up yet for this gen */
    uint8_t plain; /* needs no escaping */
    char text[50];
};

struct chopin__access {
    int fd;
    uint32_t format;
    size_t len;
    uint64_t first_ms; /* when the oldest line in the buffer was written */
    time_t stamp_sec;  /* the second `stamp` shows, in the format's spelling */
    char stamp[48];    /* JSON_HEAD or COMBINED_STAMP with the time: refresh_stamp */
    struct peer *peers;
    uint32_t npeers;
    char buf[];
};

/* ----- the file ------------------------------------------------------------------------ */

static int open_log(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int chopin__access_open(struct chopin__config *cfg) {
    if (!cfg->access_path[0])
        return 0;
    if (strcmp(cfg->access_path, "-") == 0) {
        cfg->access_fd = STDERR_FILENO;
        return 0;
    }
    int fd = open_log(cfg->access_path);
    if (fd < 0) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot open the access log %s: %s",
                   cfg->access_path, strerror(-fd));
        return fd;
    }
    cfg->access_fd = fd;
    return 0;
}

int chopin__access_reopen(const struct chopin__config *cfg) {
    if (cfg->access_fd < 0 || cfg->access_fd == STDERR_FILENO)
        return 0;
    int fd = open_log(cfg->access_path);
    if (fd < 0)
        return fd;
    int rc = dup3(fd, cfg->access_fd, O_CLOEXEC) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

void chopin__access_close(struct chopin__config *cfg) {
    if (cfg->access_fd > STDERR_FILENO)
        close(cfg->access_fd);
    cfg->access_fd = -1;
}

struct chopin__access *chopin__access_new(int fd, uint32_t format, uint32_t nslots) {
    /* zeroed: a short field's block is loaded whole from the line (put_escaped), so the
     * bytes past it are defined from the start */
    struct chopin__access *a = calloc(1, sizeof *a + BUF_SIZE);
    if (!a)
        return NULL;
    *a = (struct chopin__access){.fd = fd, .format = format, .stamp_sec = -1, .npeers = nslots};
    a->peers = calloc(nslots, sizeof *a->peers);
    if (!a->peers) {
        free(a);
        return NULL;
    }
    return a;
}

void chopin__access_free(struct chopin__access *a) {
    free(a->peers);
    free(a);
}

void chopin__access_flush(struct chopin__access *a, uint64_t now_ms, int force) {
    if (!a->len || (!force && a->len < FLUSH_BYTES && now_ms - a->first_ms < FLUSH_MS))
        return;
    size_t off = 0;
    while (off < a->len) {
        ssize_t n = write(a->fd, a->buf + off, a->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk or a closed stderr: these lines are lost, the next may not be */
        off += (size_t)n;
    }
    a->len = 0;
}

/* ----- formatting ---------------------------------------------------------------------- */

static const char hex[] = "0123456789abcdef";

static char *put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, s) put((p), (s), sizeof(s) - 1)

/* "00" to "99": two digits per step, half the divisions of one at a time. */
static const char digits2[201] = "00010203040506070809101112131415161718192021222324"
                                 "25262728293031323334353637383940414243444546474849"
                                 "50515253545556575859606162636465666768697071727374"
                                 "75767778798081828384858687888990919293949596979899";

/* Written from its last digit back, at its length counted first: no copy through a
 * scratch array (which cost a byte-by-byte loop per number). */
static inline char *put_u64(char *p, uint64_t v) {
    if (v < 10) {
        *p = (char)('0' + v);
        return p + 1;
    }
    size_t n = 2;
    for (uint64_t x = v / 100; x; x /= 10)
        n++;
    char *end = p + n, *q = end;
    while (v >= 100) {
        q -= 2;
        memcpy(q, digits2 + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10)
        memcpy(q - 2, digits2 + 2 * v, 2);
    else
        q[-1] = (char)('0' + v);
    return end;
}

/* Bytes that go into a log line as they are: printable ASCII but the quote and the
 * backslash, which would end or bend a quoted field. A table: one load and a test per
 * byte where four comparisons were. (Ranges do not overlap: -Woverride-init.) */
static const uint8_t verbatim[256] = {
    [0x20 ... 0x21] = 1, /* '"' is 0x22 */
    [0x23 ... 0x5b] = 1, /* '\\' is 0x5c */
    [0x5d ... 0x7e] = 1,
};

#ifdef __SSE2__
/* Bit i set: byte i of v must be escaped. */
static unsigned escape_mask(__m128i v) {
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    /* signed: bytes 0x80-0xff are negative, so "below a space" takes them too */
    __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)),
                               _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    return (unsigned)_mm_movemask_epi8(bad);
}

static __m128i load16(const char *s) {
    return _mm_loadu_si128((const __m128i *)(const void *)s);
}
#endif

/* How many bytes of s[0..n) go verbatim before the first that must be escaped. Sixteen
 * at a time where SSE2 is there (every x86-64): a User-Agent and a Referer are a few
 * hundred bytes per line. Tested a byte at a time, a line cost 3,317 instructions; 16 at a
 * time (the tail through the table), 1,409 (callgrind, bench/micro_ops.c, a browser's
 * request). Only whole blocks inside the field are loaded: nothing is read past its end. */
static size_t verbatim_prefix(const char *s, size_t n) {
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= n; i += 16) {
        unsigned mask = escape_mask(load16(s + i));
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    while (i < n && verbatim[(unsigned char)s[i]])
        i++;
    return i;
}

/* Escapes s[0..n) at p, from its first byte that needs it on. Out of line: its registers
 * would otherwise be saved and restored on every field. */
__attribute__((noinline)) static char *put_escaped_slow(char *p, const char *s, size_t n, int json) {
    size_t i = 0;
    while (i < n) {
        size_t run = i + verbatim_prefix(s + i, n - i);
        memcpy(p, s + i, run - i);
        p += run - i;
        if (run == n)
            break;
        unsigned char ch = (unsigned char)s[run];
        if (json && (ch == '"' || ch == '\\')) {
            *p++ = '\\';
            *p++ = (char)ch;
        } else {
            p = json ? PUT_LIT(p, "\\u00") : PUT_LIT(p, "\\x");
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
        i = run + 1;
    }
    return p;
}

#ifdef __SSE2__
/* n < 16 bytes, with two copies that may overlap: no call, no `rep movs` (which gcc makes
 * of a memcpy whose length it can bound, and which takes tens of cycles to start). */
static void copy_short(char *p, const char *s, size_t n) {
    if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, s, 8), memcpy(&y, s + n - 8, 8);
        memcpy(p, &x, 8), memcpy(p + n - 8, &y, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4), memcpy(&y, s + n - 4, 4);
        memcpy(p, &x, 4), memcpy(p + n - 4, &y, 4);
    } else if (n) {
        p[0] = s[0], p[n / 2] = s[n / 2], p[n - 1] = s[n - 1];
    }
}
#endif

/* A field is copied and scanned in the same 16-byte blocks (the last one overlapping the
 * one before, so nothing is read past the field); a field shorter than a block is copied
 * first and its block loaded from the line, which has room past it (a line never comes
 * within LINE_MAX of the buffer's end), the bytes past the field masked off. Only a field
 * with a byte to escape (rare: client bytes are nearly always printable ASCII) is written
 * again, from that byte on. */
static inline char *put_escaped(char *p, const char *s, size_t n, size_t max, int json) {
    if (n > max)
        n = max;
    size_t at; /* where the last block starts */
#ifdef __SSE2__
    unsigned mask;
    if (n >= 16) {
        for (at = 0; at + 16 < n; at += 16) {
            __m128i v = load16(s + at);
            _mm_storeu_si128((__m128i *)(void *)(p + at), v);
            if ((mask = escape_mask(v)))
                goto escape;
        }
        at = n - 16;
        __m128i v = load16(s + at);
        _mm_storeu_si128((__m128i *)(void *)(p + at), v);
        mask = escape_mask(v);
    } else {
        copy_short(p, s, n);
        at = 0;
        mask = escape_mask(load16(p)) & ((1u << n) - 1);
    }
    if (__builtin_expect(!mask, 1))
        return p + n;
escape:
    at += (size_t)__builtin_ctz(mask);
#else
    memcpy(p, s, n);
    at = verbatim_prefix(s, n);
    if (at == n)
        return p + n;
#endif
    return put_escaped_slow(p + at, s + at, n - at, json);
}

/* A status is three digits (200..599, or a 1xx: chopin.h). */
static char *put_status(char *p, int status) {
    unsigned s = (unsigned)status % 1000u;
    p[0] = (char)('0' + s / 100);
    memcpy(p + 1, digits2 + 2 * (s % 100), 2);
    return p + 3;
}

static void two(char *p, int v) {
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* The text around the time, once a second, copied into each line whole (a fixed length:
 * moves, not a call): JSON's start up to the address's value, or combined's
 * ` [03/Dec/2026:15:14:30 +0000] "`. */
#define JSON_HEAD "{\"time\":\"2026-12-03T15:14:30Z\",\"remote\":\""
#define JSON_STAMP_AT 9
#define COMBINED_STAMP " [03/Dec/2026:15:14:30 +0000] \""

static void refresh_stamp(struct chopin__access *a, time_t sec) {
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    if (sec == a->stamp_sec || !gmtime_r(&sec, &tm))
        return;
    a->stamp_sec = sec;
    int year = tm.tm_year + 1900;
    if (a->format == CHOPIN_ACCESS_LOG_JSON) {
        memcpy(a->stamp, JSON_HEAD, sizeof JSON_HEAD - 1);
        char *p = a->stamp + JSON_STAMP_AT; /* 2026-12-03T15:14:30Z */
        two(p, year / 100), two(p + 2, year);
        two(p + 5, tm.tm_mon + 1), two(p + 8, tm.tm_mday);
        two(p + 11, tm.tm_hour), two(p + 14, tm.tm_min), two(p + 17, tm.tm_sec);
        return;
    }
    memcpy(a->stamp, COMBINED_STAMP, sizeof COMBINED_STAMP - 1);
    char *p = a->stamp + 2; /* 03/Dec/2026:15:14:30 +0000 */
    two(p, tm.tm_mday), memcpy(p + 3, months + 3 * tm.tm_mon, 3);
    two(p + 7, year / 100), two(p + 9, year), two(p + 12, tm.tm_hour);
    two(p + 15, tm.tm_min), two(p + 18, tm.tm_sec);
}

/* The client's address without its port ("127.0.0.1", "::1"), looked up once per
 * connection, not with a getpeername system call per line (the rest of a line is some
 * hundred instructions: bench/ops.sh part C). This holds while
 * chopin_req_remote_addr answers per connection (the socket's peer, or the address a
 * PROXY protocol header gave); an address taken per request from a trusted proxy's
 * Forwarded header would have to be read here for every line instead. Whether it needs
 * escaping is found once too: an IP address never does. */
static const struct peer *peer_of(struct chopin__engine *e, struct chopin__access *a,
                                  struct chopin__conn *c, const chopin_req *req,
                                  chopin_str *uncached) {
    uint32_t i = chopin__slab_index(&e->slab, c);
    struct peer *pe = i < a->npeers ? &a->peers[i] : NULL;
    if (pe && pe->len && pe->gen == c->gen)
        return pe;
    chopin_str s = chopin_req_remote_addr((chopin_req *)req);
    const char *colon = memrchr(s.ptr, ':', s.len);
    if (colon && s.ptr[0] == '[' && colon > s.ptr && colon[-1] == ']')
        s = (chopin_str){s.ptr + 1, (size_t)(colon - s.ptr) - 2};
    else if (colon && !memchr(s.ptr, ':', (size_t)(colon - s.ptr)))
        s.len = (size_t)(colon - s.ptr);
    if (!pe) {
        *uncached = s;
        return NULL;
    }
    if (s.len > sizeof pe->text)
        s.len = sizeof pe->text;
    memcpy(pe->text, s.ptr, s.len);
    pe->len = (uint8_t)s.len;
    pe->plain = verbatim_prefix(pe->text, pe->len) == pe->len;
    pe->gen = c->gen;
    return pe;
}

/* Body bytes of the answer as far as they are known when it is queued ("-" in the
 * combined format when none or unknown: a stream). */
static uint64_t body_bytes(const chopin_req *req, const chopin_res *res) {
    if (req->head.method_id == CHOPIN_METHOD_HEAD && req->head.method_len)
        return 0;
    if (res->status < 200 || res->status == 204 || res->status == 304)
        return 0;
    return res->body_len;
}

struct fields {
    const struct peer *pe; /* NULL: the address is `peer` */
    chopin_str peer, user, id, referer, agent;
    const char *protocol; /* 8 bytes: "HTTP/1.1" */
    uint64_t bytes;
};

/* The address: from its cache entry with a copy of fixed length (the line has room) when
 * it needs no escaping. */
static char *put_peer(char *p, const struct fields *f, int json) {
    if (f->pe && f->pe->plain) {
        memcpy(p, f->pe->text, sizeof f->pe->text);
        return p + f->pe->len;
    }
    chopin_str s = f->pe ? (chopin_str){f->pe->text, f->pe->len} : f->peer;
    return put_escaped(p, s.ptr, s.len, FIELD_MAX, json);
}

/* What the middleware left for the log (chopin_request_id, chopin_basic_auth): one pass,
 * none at all for most requests. */
static void find_data(const chopin_req *req, struct fields *f) {
    for (uint32_t i = 0; i < req->ndata; i++) {
        const chopin_str *s = req->data[i].value;
        if (!s || !s->ptr)
            continue;
        if (req->data[i].key == &chopin__user_key && !f->user.ptr)
            f->user = *s;
        else if (req->data[i].key == &chopin__request_id_key && !f->id.ptr)
            f->id = *s;
    }
}

/* Header names are tokens (the parser let no other byte through), so setting bit 0x20
 * lowers their letters and turns no other token byte into a letter: a word compare, not a
 * loop of byte compares. */
static uint64_t lower_word(const char *s, size_t n) {
    uint64_t w = 0;
    memcpy(&w, s, n);
    return w | 0x2020202020202020ull;
}

static uint64_t word_of(const char *lower, size_t n) {
    uint64_t w = 0;
    memcpy(&w, lower, n);
    return w | 0x2020202020202020ull;
}

/* The first Referer and User-Agent, in one pass over the headers (their lengths sort out
 * nearly every other header at once). */
static void find_referer_agent(const chopin_req *req, struct fields *f) {
    for (uint32_t i = 0; i < req->head.nheaders; i++) {
        const struct chopin__header *h = &req->head.headers[i];
        if (h->name_len == 7) {
            if (!f->referer.ptr && lower_word(h->name, 7) == word_of("referer", 7))
                f->referer = (chopin_str){h->value, h->value_len};
        } else if (h->name_len == 10) {
            if (!f->agent.ptr && lower_word(h->name, 8) == word_of("user-age", 8) &&
                lower_word(h->name + 8, 2) == word_of("nt", 2))
                f->agent = (chopin_str){h->value, h->value_len};
        }
    }
}

/* A known method is written from a table of its own, 8 bytes a copy: its text is the
 * method's name (the parser and HTTP/2 set method_id only on an exact match), which needs
 * no escaping. */
#define METHOD_TEXT(name, str) str,
#define METHOD_LEN(name, str) sizeof(str) - 1,
static const char method_text[CHOPIN_METHOD_OTHER][8] = {CHOPIN_METHOD_MAP(METHOD_TEXT)};
static const uint8_t method_len[CHOPIN_METHOD_OTHER] = {CHOPIN_METHOD_MAP(METHOD_LEN)};
#undef METHOD_TEXT
#undef METHOD_LEN

static char *put_method(char *p, const struct chopin__head *h, int json) {
    if (h->method_id < CHOPIN_METHOD_OTHER) {
        memcpy(p, method_text[h->method_id], 8);
        return p + method_len[h->method_id];
    }
    return put_escaped(p, h->method, h->method_len, FIELD_MAX, json);
}

static char *combined_line(char *p, const struct chopin__access *a, const chopin_req *req,
                           const chopin_res *res, const struct fields *f) {
    const struct chopin__head *h = &req->head;
    p = put_peer(p, f, 0);
    if (f->user.len) {
        p = PUT_LIT(p, " - ");
        p = put_escaped(p, f->user.ptr, f->user.len, FIELD_MAX, 0);
    } else {
        p = PUT_LIT(p, " - -");
    }
    p = put(p, a->stamp, sizeof COMBINED_STAMP - 1);
    if (h->method_len) {
        p = put_method(p, h, 0);
        *p++ = ' ';
        p = put_escaped(p, h->target, h->target_len, TARGET_MAX, 0);
        *p++ = ' ';
        p = put(p, f->protocol, 8);
    } else {
        *p++ = '-'; /* refused before it was a request */
    }
    p = PUT_LIT(p, "\" ");
    p = put_status(p, res->status);
    *p++ = ' ';
    p = f->bytes ? put_u64(p, f->bytes) : PUT_LIT(p, "-");
    p = PUT_LIT(p, " \"");
    p = f->referer.ptr ? put_escaped(p, f->referer.ptr, f->referer.len, FIELD_MAX, 0) : PUT_LIT(p, "-");
    p = PUT_LIT(p, "\" \"");
    p = f->agent.ptr ? put_escaped(p, f->agent.ptr, f->agent.len, FIELD_MAX, 0) : PUT_LIT(p, "-");
    *p++ = '"';
    if (f->id.len) {
        p = PUT_LIT(p, " \"");
        p = put_escaped(p, f->id.ptr, f->id.len, FIELD_MAX, 0);
        *p++ = '"';
    }
    return p;
}

static inline char *json_field(char *p, const char *name, size_t name_len, chopin_str v, size_t max) {
    p = put(p, name, name_len);
    p = put_escaped(p, v.ptr, v.len, max, 1);
    *p++ = '"';
    return p;
}

#define JSON_FIELD(p, lit, v, max) json_field((p), (lit), sizeof(lit) - 1, (v), (max))

static char *json_line(char *p, const struct chopin__access *a, struct chopin__engine *e,
                       const chopin_req *req, const chopin_res *res, const struct fields *f,
                       uint64_t duration_ns) {
    const struct chopin__head *h = &req->head;
    p = put(p, a->stamp, sizeof JSON_HEAD - 1); /* {"time":"…","remote":" */
    p = put_peer(p, f, 1);
    *p++ = '"';
    if (h->method_len) {
        p = PUT_LIT(p, ",\"method\":\"");
        p = put_method(p, h, 1);
        *p++ = '"';
        p = JSON_FIELD(p, ",\"target\":\"", ((chopin_str){h->target, h->target_len}), TARGET_MAX);
        p = PUT_LIT(p, ",\"protocol\":\"");
        p = put(p, f->protocol, 8);
        *p++ = '"';
    }
    p = PUT_LIT(p, ",\"status\":");
    p = put_status(p, res->status);
    p = PUT_LIT(p, ",\"bytes\":");
    p = put_u64(p, f->bytes);
    if (f->referer.ptr)
        p = JSON_FIELD(p, ",\"referer\":\"", f->referer, FIELD_MAX);
    if (f->agent.ptr)
        p = JSON_FIELD(p, ",\"user_agent\":\"", f->agent, FIELD_MAX);
    if (f->user.len)
        p = JSON_FIELD(p, ",\"user\":\"", f->user, FIELD_MAX);
    if (f->id.len)
        p = JSON_FIELD(p, ",\"request_id\":\"", f->id, FIELD_MAX);
    if (duration_ns) {
        p = PUT_LIT(p, ",\"duration_us\":");
        p = put_u64(p, duration_ns / 1000);
    }
    p = PUT_LIT(p, ",\"worker\":");
    p = put_u64(p, (uint64_t)e->worker_id);
    *p++ = '}';
    return p;
}

void chopin__access_line(struct chopin__engine *e, struct chopin__access *a,
                         struct chopin__conn *c, const chopin_req *req, const chopin_res *res,
                         uint64_t duration_ns, const char *protocol) {
    if (BUF_SIZE - a->len < LINE_MAX)
        chopin__access_flush(a, e->now_ms, 1);
    if (!a->len)
        a->first_ms = e->now_ms;
    refresh_stamp(a, e->date.second);
    struct fields f = {
        .bytes = body_bytes(req, res),
        .protocol = protocol ? protocol : req->head.minor ? "HTTP/1.1" : "HTTP/1.0",
    };
    f.pe = peer_of(e, a, c, req, &f.peer);
    find_data(req, &f);
    find_referer_agent(req, &f);
    char *start = a->buf + a->len, *p;
    if (a->format == CHOPIN_ACCESS_LOG_JSON)
        p = json_line(start, a, e, req, res, &f, duration_ns);
    else
        p = combined_line(start, a, req, res, &f);
    *p++ = '\n';
    a->len += (size_t)(p - start);
}
