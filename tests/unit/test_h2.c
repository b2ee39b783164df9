/* SPDX-License-Identifier: MIT */
/*
 * HTTP/2 (src/h2, issue 20) through the fake backend: a client nghttp2 session in memory
 * talks to a connection that recognised the h2c preface, its bytes fed whole or one at a
 * time. The attacks are written as raw frames (header blocks from nghttp2's HPACK
 * encoder), the server's answer read frame by frame.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "fake.h"

#ifndef CHOPIN_HAVE_NGHTTP2
int main(void) {
    printf("skip test_h2: built without nghttp2 (install libnghttp2-dev)\n");
    printf("RESULT %d %d 1\n", test_passed, test_failed);
    return 0;
}
#else

#include <nghttp2/nghttp2.h>

#include "exchange.h"
#include "h2/h2.h"

/* ----- the application ------------------------------------------------------------ */

static chopin_exchange held;
static int file_fd = -1;
#define FILE_SIZE 300000

static void hello(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "hello", 5);
}

static void echo(chopin_req *req, chopin_res *res, void *data) {
    chopin_str b = chopin_req_body(req);
    chopin_res_copy(res, 200, "application/octet-stream", b.ptr, b.len);
}

static void fields(chopin_req *req, chopin_res *res, void *data) {
    char text[512];
    chopin_str a = chopin_req_header(req, "x-a"), ck = chopin_req_header(req, "cookie");
    chopin_str q = chopin_req_query(req, "q"), id = chopin_req_param(req, "id");
    chopin_str host = chopin_req_header(req, "host");
    snprintf(text, sizeof text, "%.*s|%.*s|%.*s|%.*s|%.*s", (int)a.len, a.ptr ? a.ptr : "",
             (int)ck.len, ck.ptr ? ck.ptr : "", (int)q.len, q.ptr ? q.ptr : "", (int)id.len,
             id.ptr ? id.ptr : "", (int)host.len, host.ptr ? host.ptr : "");
    chopin_res_header_add(res, "X-Reply", "yes");
    chopin_res_header_add(res, "Connection", "close"); /* not an HTTP/2 field: dropped */
    chopin_res_text(res, 200, text);
}

static void later(chopin_req *req, chopin_res *res, void *data) { chopin_defer(req, res, &held); }

static void file(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_fd(res, 200, "application/octet-stream", file_fd, 0, FILE_SIZE, 0);
}

static void free_body(void *p, void *arg) { free(p); }

static void owned(chopin_req *req, chopin_res *res, void *data) {
    size_t n = 100000;
    char *b = malloc(n);
    memset(b, 'o', n);
    chopin_res_owned(res, 200, NULL, b, n, free_body, NULL);
}

/* A stream that says "nothing yet" after every chunk until resumed. */
static struct {
    int produced, parked, done;
    chopin_stream handle;
} st;

static long produce(void *state, char *buf, size_t cap) {
    if (st.produced == 3)
        return 0;
    if (st.parked) {
        st.parked = 0;
        return CHOPIN_EAGAIN;
    }
    st.parked = 1;
    int n = snprintf(buf, cap, "chunk%d;", ++st.produced);
    return n;
}

static void stream_done(void *state) { st.done++; }

static void stream(chopin_req *req, chopin_res *res, void *data) {
    st.handle = chopin_req_stream(req);
    chopin_res_stream(res, 200, "text/plain", produce, stream_done, NULL);
}

/* Trailers (issue 20): after a stream, and after a body of known length. */
static long produce_once(void *state, char *buf, size_t cap) {
    int *calls = state;
    if ((*calls)++)
        return 0;
    memcpy(buf, "streamed", 8);
    return 8;
}

static int once_calls;

static void trailed(chopin_req *req, chopin_res *res, void *data) {
    once_calls = 0;
    chopin_res_stream(res, 200, "text/plain", produce_once, NULL, &once_calls);
    chopin_res_trailer(res, "X-Checksum", "abc123");
    chopin_res_trailer(res, "Grpc-Status", "0");
}

static void trailed_static(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "sized", 5);
    chopin_res_trailer(res, "X-Checksum", "def456");
}

static void trailed_empty(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_empty(res, 204);
    chopin_res_trailer(res, "X-Checksum", "none");
}

/* A body read as it arrives (issue 18 on HTTP/2): its bytes counted and summed, the
 * answer given at its end; optionally paused after its first piece. */
static struct {
    int pause_first;
    int calls, ended, error;
    uint64_t len, sum;
    chopin_exchange x;
} up;

static void up_data(chopin_exchange x, const char *p, size_t n, void *arg) {
    if (up.pause_first && up.calls == 0)
        CHECK_INT(chopin_body_pause(x), 0);
    up.calls++;
    up.len += n;
    for (size_t i = 0; i < n; i++)
        up.sum += (unsigned char)p[i];
}

static void up_end(chopin_exchange x, void *arg) {
    char text[64];
    up.ended++;
    snprintf(text, sizeof text, "%llu %llu", (unsigned long long)up.len,
             (unsigned long long)up.sum);
    chopin_res_text(chopin_exchange_res(x), 200, text);
    chopin_exchange_finish(x);
}

static void up_error(chopin_exchange x, int err, void *arg) { up.error = err; }

static void upload(chopin_req *req, chopin_res *res, void *data) {
    static const chopin_body_handler h = {up_data, up_end, up_error};
    if (chopin_req_header(req, "x-refuse").ptr) {
        chopin_res_error(res, 401, NULL);
        return;
    }
    chopin_body_read(req, res, &h, NULL, &up.x);
}

static void setup_opts(struct fake *f, chopin_options *o) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hello", hello, NULL);
    chopin_router_post(r, "/echo", echo, NULL);
    chopin_router_get(r, "/fields/:id", fields, NULL);
    chopin_router_get(r, "/later", later, NULL);
    chopin_router_get(r, "/file", file, NULL);
    chopin_router_get(r, "/owned", owned, NULL);
    chopin_router_get(r, "/stream", stream, NULL);
    chopin_router_get(r, "/trailed", trailed, NULL);
    chopin_router_get(r, "/trailed-static", trailed_static, NULL);
    chopin_router_get(r, "/trailed-empty", trailed_empty, NULL);
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/up", upload, NULL, 1 << 20);
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/up-small", upload, NULL, 10000);
    memset(&up, 0, sizeof up);
    o->slab_capacity = 8;
    o->h2c = 1;
    fake_start(f, r, o);
    memset(&st, 0, sizeof st);
}

static void setup(struct fake *f) {
    chopin_options o = chopin_options_default();
    setup_opts(f, &o);
}

/* ----- a client session in memory ------------------------------------------------- */

#define MAX_ID 64
struct reply {
    int status;
    char *body;
    size_t len;
    int closed;
    uint32_t error;
    char fields[1024];
    char trailers[256]; /* a HEADERS frame after the response's */
    int trailer_end;    /* ...which ended the stream */
};

struct client {
    nghttp2_session *s;
    struct chopin__conn *c;
    struct fake *f;
    size_t split; /* bytes per read the server gets */
    int read;     /* the client reads what the server sends */
    struct reply r[MAX_ID];
    int goaway;
    uint32_t goaway_error;
    int32_t goaway_last;
};

static struct reply *reply_of(struct client *cl, int32_t id) {
    return id > 0 && id < MAX_ID ? &cl->r[id] : &cl->r[0];
}

static int cl_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *n, size_t nl,
                     const uint8_t *v, size_t vl, uint8_t flags, void *ud) {
    struct reply *r = reply_of(ud, fr->hd.stream_id);
    if (nl == 7 && memcmp(n, ":status", 7) == 0)
        r->status = atoi((const char *)v);
    char *into = fr->headers.cat == NGHTTP2_HCAT_HEADERS ? r->trailers : r->fields;
    size_t cap = into == r->trailers ? sizeof r->trailers : sizeof r->fields;
    size_t used = strlen(into);
    snprintf(into + used, cap - used, "%.*s: %.*s\n", (int)nl, n, (int)vl, v);
    return 0;
}

static int cl_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                   void *ud) {
    struct reply *r = reply_of(ud, id);
    r->body = realloc(r->body, r->len + n + 1);
    memcpy(r->body + r->len, d, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static int cl_close(nghttp2_session *s, int32_t id, uint32_t error, void *ud) {
    struct reply *r = reply_of(ud, id);
    r->closed = 1;
    r->error = error;
    return 0;
}

static int cl_frame(nghttp2_session *s, const nghttp2_frame *fr, void *ud) {
    struct client *cl = ud;
    if (fr->hd.type == NGHTTP2_HEADERS && fr->headers.cat == NGHTTP2_HCAT_HEADERS)
        reply_of(cl, fr->hd.stream_id)->trailer_end = !!(fr->hd.flags & NGHTTP2_FLAG_END_STREAM);
    if (fr->hd.type == NGHTTP2_GOAWAY) {
        cl->goaway = 1;
        cl->goaway_error = fr->goaway.error_code;
        cl->goaway_last = fr->goaway.last_stream_id;
    }
    return 0;
}

static void client_open(struct client *cl, struct fake *f, size_t split,
                        const nghttp2_settings_entry *iv, size_t niv) {
    memset(cl, 0, sizeof *cl);
    cl->f = f;
    cl->split = split;
    cl->read = 1;
    cl->c = chopin__engine_conn_new(&f->engine, -1);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, cl_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cl_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, cl_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, cl_frame);
    nghttp2_session_client_new(&cl->s, cb, cl);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(cl->s, NGHTTP2_FLAG_NONE, iv, niv);
}

static void client_close(struct client *cl) {
    for (int i = 0; i < MAX_ID; i++)
        free(cl->r[i].body);
    nghttp2_session_del(cl->s);
    if (cl->c && cl->c->live)
        chopin__engine_conn_free(&cl->f->engine, cl->c);
}

/* Feeds bytes to the server in pieces of cl->split, from a buffer scribbled over after. */
static void server_feed(struct client *cl, const uint8_t *p, size_t n) {
    while (n && !(cl->c->ask & CHOPIN__CONN_CLOSE)) {
        size_t k = n < cl->split ? n : cl->split;
        char *buf = malloc(k);
        memcpy(buf, p, k);
        chopin__conn_on_data(cl->c, buf, k);
        memset(buf, '#', k);
        free(buf);
        p += k;
        n -= k;
    }
}

/* What the server has to send, to the client (when it reads) or to `raw`. */
static size_t server_drain(struct client *cl, char *raw, size_t cap) {
    size_t total = 0;
    struct chopin__plan p;
    while (chopin__conn_out_plan(cl->c, &p) > 0) {
        size_t n = 0;
        for (int i = 0; i < p.iovcnt; i++) {
            if (raw && total + n + p.iov[i].iov_len <= cap)
                memcpy(raw + total + n, p.iov[i].iov_base, p.iov[i].iov_len);
            else if (!raw)
                nghttp2_session_mem_recv(cl->s, p.iov[i].iov_base, p.iov[i].iov_len);
            n += p.iov[i].iov_len;
        }
        if (p.iovcnt == 0 && p.file_len) /* (HTTP/2 never plans files) */
            break;
        total += n;
        chopin__conn_on_sent(cl->c, n);
    }
    return total;
}

/* Both ways until neither side has anything more to say. */
static void pump(struct client *cl) {
    for (int round = 0; round < 10000; round++) {
        size_t moved = 0;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(cl->s, &p)) > 0) {
            server_feed(cl, p, (size_t)n);
            moved += (size_t)n;
        }
        if (cl->c->live && !(cl->c->ask & CHOPIN__CONN_CLOSE) && cl->read)
            moved += server_drain(cl, NULL, 0);
        if (!moved)
            return;
    }
}

static int32_t request(struct client *cl, const char *method, const char *path,
                       const nghttp2_nv *extra, size_t nextra, nghttp2_data_provider *body) {
    nghttp2_nv nv[16] = {
        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"example.test", 10, 12, 0},
    };
    for (size_t i = 0; i < nextra; i++)
        nv[4 + i] = extra[i];
    return nghttp2_submit_request(cl->s, NULL, nv, 4 + nextra, body, NULL);
}

static void start(struct client *cl, struct fake *f, size_t split) {
    client_open(cl, f, split, NULL, 0);
    const char *preface = CHOPIN__H2_PREFACE;
    (void)preface; /* (the client session sends it) */
}

/* ----- requests and responses ----------------------------------------------------- */

static void check_hello(size_t split) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, split);
    int32_t id = request(&cl, "GET", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK_INT(cl.c->phase, CHOPIN__PHASE_PROTOCOL);
    CHECK_INT(cl.r[id].status, 200);
    CHECK_MEM(cl.r[id].body, cl.r[id].len, "hello");
    CHECK(strstr(cl.r[id].fields, "content-length: 5\n") != NULL);
    CHECK(strstr(cl.r[id].fields, "content-type: text/plain\n") != NULL);
    CHECK(strstr(cl.r[id].fields, "server: chopin\n") != NULL);
    CHECK(cl.r[id].closed && cl.r[id].error == 0);
    CHECK_INT(f.engine.counters.requests, 1);
    client_close(&cl);
    fake_stop(&f);
}

static void test_hello(void) { check_hello(1 << 20); }
/* The same with every byte its own read: the preface and every frame split everywhere. */
static void test_hello_byte_by_byte(void) { check_hello(1); }

/* A request whose method, path or fields are malformed never reaches a handler: nghttp2
 * checks what RFC 9113 §8 requires (here: a connection-specific field, §8.2.2). */
static void test_malformed_request_reset(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    nghttp2_nv bad = {(uint8_t *)"connection", (uint8_t *)"close", 10, 5, NGHTTP2_NV_FLAG_NONE};
    int32_t id = request(&cl, "GET", "/hello", &bad, 1, NULL);
    pump(&cl);
    CHECK(cl.r[id].closed && cl.r[id].error == NGHTTP2_PROTOCOL_ERROR);
    CHECK_INT(f.engine.counters.requests, 0);
    client_close(&cl);
    fake_stop(&f);
}

/* Fields, cookie crumbs joined, query, params, authority as host; connection-specific
 * response fields dropped, names lower-cased. */
static void test_request_fields(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 7);
    nghttp2_nv extra[] = {
        {(uint8_t *)"x-a", (uint8_t *)"va", 3, 2, 0},
        {(uint8_t *)"cookie", (uint8_t *)"a=1", 6, 3, 0},
        {(uint8_t *)"cookie", (uint8_t *)"b=2", 6, 3, 0},
    };
    int32_t id = request(&cl, "GET", "/fields/42?q=x%20y", extra, 3, NULL);
    pump(&cl);
    CHECK_INT(cl.r[id].status, 200);
    CHECK_MEM(cl.r[id].body, cl.r[id].len, "va|a=1; b=2|x y|42|");
    CHECK(strstr(cl.r[id].fields, "x-reply: yes\n") != NULL);
    CHECK(strstr(cl.r[id].fields, "connection") == NULL);
    client_close(&cl);
    fake_stop(&f);
}

static void test_head_404_405(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int32_t head = request(&cl, "HEAD", "/hello", NULL, 0, NULL);
    int32_t missing = request(&cl, "GET", "/nope", NULL, 0, NULL);
    int32_t wrong = request(&cl, "DELETE", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK_INT(cl.r[head].status, 200);
    CHECK_INT(cl.r[head].len, 0);
    CHECK(strstr(cl.r[head].fields, "content-length: 5\n") != NULL);
    CHECK_INT(cl.r[missing].status, 404);
    CHECK_INT(cl.r[wrong].status, 405);
    CHECK(strstr(cl.r[wrong].fields, "allow: ") != NULL);
    client_close(&cl);
    fake_stop(&f);
}

/* A request body in DATA frames, read back by the handler. */
struct upload {
    const char *p;
    size_t len, off;
};

static ssize_t upload_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud) {
    struct upload *u = src->ptr;
    size_t n = u->len - u->off < len ? u->len - u->off : len;
    memcpy(buf, u->p + u->off, n);
    u->off += n;
    if (u->off == u->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void test_request_body(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1000);
    size_t n = 50000;
    char *text = malloc(n);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    struct upload u = {text, n, 0};
    nghttp2_data_provider dp = {.source.ptr = &u, .read_callback = upload_read};
    int32_t id = request(&cl, "POST", "/echo", NULL, 0, &dp);
    pump(&cl);
    CHECK_INT(cl.r[id].status, 200);
    CHECK_INT(cl.r[id].len, n);
    CHECK(cl.r[id].body && memcmp(cl.r[id].body, text, n) == 0);
    free(text);
    client_close(&cl);
    fake_stop(&f);
}

/* The request checks that replace nghttp2's (RFC 9113 §8.1.1, §8.2, §8.3): each of these
 * requests is malformed, its stream reset with PROTOCOL_ERROR, no handler run; the
 * connection serves on. */
static int32_t raw_request(struct client *cl, const nghttp2_nv *nv, size_t n,
                           nghttp2_data_provider *body) {
    return nghttp2_submit_request(cl->s, NULL, nv, n, body, NULL);
}

#define NVS(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0}

static void test_malformed_requests(void) {
    static const nghttp2_nv cases[][5] = {
        /* (upper-case names: nghttp2's client lowers them; h2spec 8.1.2 sends them) */
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":scheme", "http"), NVS("x-a", "b\t")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS("x-a", "1"), NVS(":scheme", "http")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":scheme", "http"), NVS(":status", "200")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":scheme", "http"), NVS(":path", "/x")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":authority", "a"), NVS("x-a", "b")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":scheme", "http"), NVS("te", "gzip")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":scheme", "http"), NVS("x-a", " lead")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":scheme", "http"), NVS("x-a", "a\x01b")},
        {NVS(":method", "GET"), NVS(":path", ""), NVS(":scheme", "http"), NVS("x-a", "1")},
        {NVS(":method", "G T"), NVS(":path", "/hello"), NVS(":scheme", "http"), NVS("x-a", "1")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":scheme", "http"), NVS("upgrade", "h2c")},
        {NVS(":method", "GET"), NVS(":path", "/hello"), NVS(":scheme", "http"),
         NVS("content-length", "1x")},
    };
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int32_t ids[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ids[i] = raw_request(&cl, cases[i], 4, NULL);
    /* A body shorter, and one longer, than its content-length. */
    char text[100];
    memset(text, 't', sizeof text);
    struct upload shorter = {text, 50, 0}, longer = {text, 100, 0};
    nghttp2_data_provider dp1 = {.source.ptr = &shorter, .read_callback = upload_read};
    nghttp2_data_provider dp2 = {.source.ptr = &longer, .read_callback = upload_read};
    static const nghttp2_nv post[] = {NVS(":method", "POST"), NVS(":path", "/echo"),
                                      NVS(":scheme", "http"), NVS("content-length", "60")};
    int32_t short_id = raw_request(&cl, post, 4, &dp1), long_id = raw_request(&cl, post, 4, &dp2);
    pump(&cl);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cl.r[ids[i]].closed && cl.r[ids[i]].error == NGHTTP2_PROTOCOL_ERROR);
        CHECK_INT(cl.r[ids[i]].status, 0);
    }
    CHECK(cl.r[short_id].closed && cl.r[short_id].error == NGHTTP2_PROTOCOL_ERROR);
    CHECK(cl.r[long_id].closed && cl.r[long_id].error == NGHTTP2_PROTOCOL_ERROR);
    CHECK_INT(f.engine.counters.requests, 0);
    int32_t next = request(&cl, "GET", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK_MEM(cl.r[next].body, cl.r[next].len, "hello");
    client_close(&cl);
    fake_stop(&f);
}

static void upload_text(char *text, size_t n) {
    for (size_t i = 0; i < n; i++)
        text[i] = (char)(i * 7 % 251);
}

static uint64_t text_sum(const char *text, size_t n) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)text[i];
    return sum;
}

/* A route that streams gets the body as it arrives, past max_body_bytes (its own bound
 * is larger) and past the initial flow-control window: its window is given back. */
static void test_streamed_body(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.max_body_bytes = 1000;
    setup_opts(&f, &o);
    struct client cl;
    start(&cl, &f, 1000);
    size_t n = 300000;
    char *text = malloc(n);
    upload_text(text, n);
    struct upload u = {text, n, 0};
    nghttp2_data_provider dp = {.source.ptr = &u, .read_callback = upload_read};
    int32_t id = request(&cl, "POST", "/up", NULL, 0, &dp);
    pump(&cl);
    chopin__engine_run_ready(&f.engine); /* (on_end finished it: answered at the turn) */
    pump(&cl);
    char want[64];
    snprintf(want, sizeof want, "%zu %llu", n, (unsigned long long)text_sum(text, n));
    CHECK_INT(cl.r[id].status, 200);
    CHECK_MEM(cl.r[id].body, cl.r[id].len, want);
    CHECK(up.calls > 5);
    CHECK_INT(up.ended, 1);
    CHECK(cl.r[id].closed && cl.r[id].error == 0);
    /* Answered without its body (401): the stream ends, the connection serves on. */
    nghttp2_nv refuse = {(uint8_t *)"x-refuse", (uint8_t *)"1", 8, 1, 0};
    u.off = 0;
    int32_t refused = request(&cl, "POST", "/up", &refuse, 1, &dp);
    pump(&cl);
    CHECK_INT(cl.r[refused].status, 401);
    CHECK(cl.r[refused].closed);
    int32_t next = request(&cl, "GET", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK_MEM(cl.r[next].body, cl.r[next].len, "hello");
    free(text);
    client_close(&cl);
    fake_stop(&f);
}

/* chopin_body_pause stops the stream's WINDOW_UPDATEs: its client sends one window and
 * waits, the connection's other streams go on; resumed, everything arrives. */
static void test_streamed_body_paused(void) {
    struct fake f;
    setup(&f);
    up.pause_first = 1;
    struct client cl;
    start(&cl, &f, 1 << 20);
    size_t n = 300000;
    char *text = malloc(n);
    upload_text(text, n);
    struct upload u = {text, n, 0};
    nghttp2_data_provider dp = {.source.ptr = &u, .read_callback = upload_read};
    int32_t id = request(&cl, "POST", "/up", NULL, 0, &dp);
    pump(&cl);
    CHECK_INT(up.calls, 1);
    CHECK(u.off < 70000); /* one window (65,535) and no more */
    CHECK_INT(nghttp2_session_get_stream_remote_window_size(cl.s, id), 0);
    CHECK(!cl.r[id].closed);
    int32_t other = request(&cl, "GET", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK_MEM(cl.r[other].body, cl.r[other].len, "hello");
    up.pause_first = 0;
    CHECK_INT(chopin_body_resume(up.x), 0);
    CHECK_INT(up.calls, 1); /* handed over from the loop's turn, not inside the call */
    chopin__engine_run_ready(&f.engine);
    pump(&cl);
    chopin__engine_run_ready(&f.engine);
    pump(&cl);
    char want[64];
    snprintf(want, sizeof want, "%zu %llu", n, (unsigned long long)text_sum(text, n));
    CHECK_INT(cl.r[id].status, 200);
    CHECK_MEM(cl.r[id].body, cl.r[id].len, want);
    CHECK_INT(up.ended, 1);
    free(text);
    client_close(&cl);
    fake_stop(&f);
}

static ssize_t stalling_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                             uint32_t *flags, nghttp2_data_source *src, void *ud) {
    int *sent = src->ptr;
    if (*sent)
        return NGHTTP2_ERR_DEFERRED; /* and never resumed */
    *sent = 1;
    memset(buf, 's', 1000);
    return 1000;
}

/* A streamed body that stops arriving: 408 after body_timeout_ms from its last bytes, the
 * handler hears CHOPIN_ETIMEDOUT, the connection stays. */
static void test_streamed_body_timeout(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.body_timeout_ms = 1000;
    setup_opts(&f, &o);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int sent = 0;
    nghttp2_data_provider dp = {.source.ptr = &sent, .read_callback = stalling_read};
    int32_t id = request(&cl, "POST", "/up", NULL, 0, &dp);
    pump(&cl);
    CHECK_INT(up.calls, 1);
    CHECK_INT(cl.r[id].status, 0);
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 1500, FAKE_WALL + 2);
    chopin__engine_run_timers(&f.engine);
    chopin__engine_run_ready(&f.engine);
    pump(&cl);
    CHECK_INT(cl.r[id].status, 408);
    CHECK_INT(up.error, CHOPIN_ETIMEDOUT);
    CHECK_INT(cl.c->live, 1);
    CHECK(!cl.goaway);
    client_close(&cl);
    fake_stop(&f);
}

/* Past the route's bound: 413, the handler hears CHOPIN_EFBIG, the rest is not wanted. */
static void test_streamed_body_too_large(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    size_t n = 50000;
    char *text = malloc(n);
    upload_text(text, n);
    struct upload u = {text, n, 0};
    nghttp2_data_provider dp = {.source.ptr = &u, .read_callback = upload_read};
    int32_t id = request(&cl, "POST", "/up-small", NULL, 0, &dp);
    pump(&cl);
    CHECK_INT(cl.r[id].status, 413);
    CHECK(cl.r[id].closed);
    CHECK_INT(up.error, CHOPIN_EFBIG);
    CHECK_INT(up.ended, 0);
    CHECK_INT(cl.c->live, 1);
    free(text);
    client_close(&cl);
    fake_stop(&f);
}

/* max_body_bytes: a declared length past it is answered 413 before any of the body; one
 * that only grows past it is answered 413 when it does, and the rest is not wanted. */
static void test_body_too_large(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.max_body_bytes = 1000;
    setup_opts(&f, &o);
    struct client cl;
    start(&cl, &f, 1 << 20);
    char text[3000];
    memset(text, 'b', sizeof text);
    struct upload u1 = {text, sizeof text, 0}, u2 = {text, sizeof text, 0};
    nghttp2_data_provider dp1 = {.source.ptr = &u1, .read_callback = upload_read};
    nghttp2_data_provider dp2 = {.source.ptr = &u2, .read_callback = upload_read};
    nghttp2_nv len = {(uint8_t *)"content-length", (uint8_t *)"3000", 14, 4, 0};
    int32_t declared = request(&cl, "POST", "/echo", &len, 1, &dp1);
    int32_t grown = request(&cl, "POST", "/echo", NULL, 0, &dp2);
    pump(&cl);
    CHECK_INT(cl.r[declared].status, 413);
    CHECK_INT(cl.r[grown].status, 413);
    CHECK(cl.r[declared].closed && cl.r[grown].closed);
    CHECK_INT(f.engine.counters.requests, 0);
    CHECK_INT(cl.c->live, 1);
    client_close(&cl);
    fake_stop(&f);
}

/* The header list size bound (max_header_bytes) holds however well the fields compress:
 * the same large field repeated costs a byte or two each on the wire (an HPACK bomb). */
static void test_hpack_bomb(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    char big[3000];
    memset(big, 'v', sizeof big);
    nghttp2_nv many[12];
    for (int i = 0; i < 12; i++)
        many[i] = (nghttp2_nv){(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof big, 0};
    int32_t id = request(&cl, "GET", "/hello", many, 12, NULL);
    pump(&cl);
    CHECK_INT(cl.r[id].status, 431);
    CHECK_INT(f.engine.counters.requests, 0);
    int32_t next = request(&cl, "GET", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK_INT(cl.r[next].status, 200); /* the connection goes on */
    client_close(&cl);
    fake_stop(&f);
}

/* A deferred answer comes when the application finishes it; a second one times out (504)
 * at handler_timeout_ms; streams after them are answered meanwhile. */
static void test_deferred(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.handler_timeout_ms = 5000;
    setup_opts(&f, &o);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int32_t first = request(&cl, "GET", "/later", NULL, 0, NULL);
    pump(&cl);
    chopin_exchange a = held;
    int32_t second = request(&cl, "GET", "/later", NULL, 0, NULL);
    int32_t third = request(&cl, "GET", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK_INT(cl.r[third].status, 200);
    CHECK_INT(cl.r[first].status, 0);
    chopin_res_static(chopin_exchange_res(a), 202, "text/plain", "done", 4);
    CHECK_INT(chopin_exchange_finish(a), 0);
    chopin__engine_run_ready(&f.engine);
    pump(&cl);
    CHECK_INT(cl.r[first].status, 202);
    CHECK_MEM(cl.r[first].body, cl.r[first].len, "done");
    CHECK_INT(cl.r[second].status, 0);
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 6000, FAKE_WALL + 6);
    chopin__engine_run_timers(&f.engine);
    chopin__engine_run_ready(&f.engine);
    pump(&cl);
    CHECK_INT(cl.r[second].status, 504);
    CHECK_INT(f.engine.xopen, 0);
    client_close(&cl);
    fake_stop(&f);
}

/* A deferred exchange whose stream the client resets is cancelled: its handle goes stale. */
static void test_reset_cancels_deferred(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int32_t id = request(&cl, "GET", "/later", NULL, 0, NULL);
    pump(&cl);
    CHECK(chopin_exchange_open(held));
    nghttp2_submit_rst_stream(cl.s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    pump(&cl);
    CHECK(!chopin_exchange_open(held));
    CHECK_INT(f.engine.xopen, 0);
    client_close(&cl);
    fake_stop(&f);
}

/* A file larger than the windows goes out in DATA frames read with pread; owned bodies
 * are freed once sent. */
static void test_file_and_owned(void) {
    struct fake f;
    setup(&f);
    char path[] = "/tmp/chopin-h2-XXXXXX";
    file_fd = mkstemp(path);
    unlink(path);
    char *content = malloc(FILE_SIZE);
    for (int i = 0; i < FILE_SIZE; i++)
        content[i] = (char)(i * 7);
    CHECK_INT(write(file_fd, content, FILE_SIZE), FILE_SIZE);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int32_t fid = request(&cl, "GET", "/file", NULL, 0, NULL);
    int32_t oid = request(&cl, "GET", "/owned", NULL, 0, NULL);
    pump(&cl);
    CHECK_INT(cl.r[fid].status, 200);
    CHECK_INT(cl.r[fid].len, FILE_SIZE);
    CHECK(cl.r[fid].body && memcmp(cl.r[fid].body, content, FILE_SIZE) == 0);
    CHECK(strstr(cl.r[fid].fields, "content-length: 300000\n") != NULL);
    CHECK_INT(cl.r[oid].len, 100000);
    free(content);
    close(file_fd);
    client_close(&cl);
    fake_stop(&f);
}

/* A stream whose producer waits is resumed by chopin_stream_resume, and its done() runs
 * once the stream ends. */
static void test_stream_resume(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int32_t id = request(&cl, "GET", "/stream", NULL, 0, NULL);
    pump(&cl);
    CHECK_MEM(cl.r[id].body, cl.r[id].len, "chunk1;");
    CHECK(!cl.r[id].closed);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(chopin_stream_resume(st.handle), 0);
        chopin__engine_run_ready(&f.engine);
        pump(&cl);
    }
    CHECK_MEM(cl.r[id].body, cl.r[id].len, "chunk1;chunk2;chunk3;");
    CHECK(cl.r[id].closed && cl.r[id].error == 0);
    CHECK_INT(st.done, 1);
    client_close(&cl);
    fake_stop(&f);
}

/* Trailer fields go as a last HEADERS frame that ends the stream, after a streamed body
 * and after one of known length; a response without a body has nowhere to put them. */
static void test_trailers(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 7);
    int32_t a = request(&cl, "GET", "/trailed", NULL, 0, NULL);
    int32_t b = request(&cl, "GET", "/trailed-static", NULL, 0, NULL);
    int32_t c = request(&cl, "GET", "/trailed-empty", NULL, 0, NULL);
    int32_t d = request(&cl, "HEAD", "/trailed-static", NULL, 0, NULL);
    pump(&cl);
    CHECK_INT(cl.r[a].status, 200);
    CHECK_MEM(cl.r[a].body, cl.r[a].len, "streamed");
    CHECK_STR(cl.r[a].trailers, "x-checksum: abc123\ngrpc-status: 0\n");
    CHECK(cl.r[a].trailer_end && cl.r[a].closed && cl.r[a].error == 0);
    CHECK_MEM(cl.r[b].body, cl.r[b].len, "sized");
    CHECK_STR(cl.r[b].trailers, "x-checksum: def456\n");
    CHECK(cl.r[b].trailer_end && cl.r[b].closed && cl.r[b].error == 0);
    CHECK_INT(cl.r[c].status, 204);
    CHECK_STR(cl.r[c].trailers, "");
    CHECK(cl.r[c].closed && cl.r[c].error == 0);
    CHECK_INT(cl.r[d].status, 200);
    CHECK_STR(cl.r[d].trailers, "");
    CHECK(cl.r[d].closed && cl.r[d].error == 0);
    client_close(&cl);
    fake_stop(&f);
}

/* ----- flow control and memory -------------------------------------------------------- */

/* A client that reads nothing: what the server queued stays near its bound however much
 * the answers hold, and reading pauses. Then it reads, and everything arrives. */
static void test_slow_reader_bounded(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    client_open(&cl, &f, 1 << 20, iv, 1);
    nghttp2_session_set_local_window_size(cl.s, NGHTTP2_FLAG_NONE, 0, 1 << 28);
    cl.read = 0;
    int32_t ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = request(&cl, "GET", "/owned", NULL, 0, NULL);
    pump(&cl);
    CHECK(cl.c->out != NULL);
    CHECK(cl.c->out->pending <= 64 * 1024 + 16384 + 64);
    CHECK(!chopin__conn_wants_read(cl.c));
    /* The socket takes what was queued: the queue refills to its bound, and reading stays
     * paused. */
    struct chopin__plan p;
    CHECK(chopin__conn_out_plan(cl.c, &p) > 0);
    for (int i = 0; i < p.iovcnt; i++)
        nghttp2_session_mem_recv(cl.s, p.iov[i].iov_base, p.iov[i].iov_len);
    chopin__conn_on_sent(cl.c, p.bytes);
    CHECK(cl.c->out != NULL && cl.c->out->pending <= 64 * 1024 + 16384 + 64);
    CHECK(!chopin__conn_wants_read(cl.c));
    cl.read = 1;
    pump(&cl);
    for (int i = 0; i < 8; i++)
        CHECK_INT(cl.r[ids[i]].len, 100000);
    client_close(&cl);
    fake_stop(&f);
}

/* A client that keeps its window shut (INITIAL_WINDOW_SIZE 0) holds its answers in: the
 * server holds no output for it, and closes at the write deadline, which its PINGs do
 * not move. */
static void test_zero_window_stall(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.write_timeout_ms = 3000;
    setup_opts(&f, &o);
    struct client cl;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0}};
    client_open(&cl, &f, 1 << 20, iv, 1);
    int32_t id = request(&cl, "GET", "/owned", NULL, 0, NULL);
    pump(&cl);
    CHECK_INT(cl.r[id].status, 200);
    CHECK_INT(cl.r[id].len, 0);
    CHECK(cl.c->out == NULL);
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 2000, FAKE_WALL + 2);
    nghttp2_submit_ping(cl.s, NGHTTP2_FLAG_NONE, NULL);
    pump(&cl);
    chopin__engine_run_timers(&f.engine);
    CHECK(!(cl.c->ask & CHOPIN__CONN_CLOSE));
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 3500, FAKE_WALL + 4);
    chopin__engine_run_timers(&f.engine);
    CHECK(cl.c->ask & CHOPIN__CONN_CLOSE);
    client_close(&cl);
    fake_stop(&f);
}

static size_t heap_used(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

/* What an idle HTTP/2 connection and an idle stream (a deferred request) cost in heap,
 * beyond the connection slot: bounded, and printed for docs/http2.md. */
static void test_idle_costs(void) {
    struct fake f;
    setup(&f);
    struct client warm; /* the engine's spares, the first exchange and the deferred
                         * exchanges' handle table exist after this */
    start(&warm, &f, 1 << 20);
    request(&warm, "GET", "/hello", NULL, 0, NULL);
    request(&warm, "GET", "/later", NULL, 0, NULL);
    pump(&warm);
    client_close(&warm);
    struct client cl;
    start(&cl, &f, 1 << 20);
    size_t before = heap_used();
    pump(&cl); /* preface and SETTINGS exchanged: the session exists, nothing else */
    size_t idle_conn = heap_used() - before;
    before = heap_used();
    for (int i = 0; i < 10; i++) {
        request(&cl, "GET", "/later", NULL, 0, NULL);
        pump(&cl);
    }
    size_t per_stream = (heap_used() - before) / 10;
    if (idle_conn) /* (0 under a sanitizer, whose allocator mallinfo2 does not see) */
        fprintf(stderr, "  h2 idle connection: %zu bytes of heap; idle (deferred) stream: %zu\n",
                idle_conn, per_stream);
    CHECK(idle_conn < 48 * 1024);
    CHECK(per_stream < 24 * 1024);
    client_close(&cl);
    fake_stop(&f);
}

/* ----- attacks, as raw frames --------------------------------------------------------- */

struct raw {
    struct client cl;
    nghttp2_hd_deflater *hd;
    uint8_t buf[1 << 20];
    size_t len;
    char out[1 << 20];
    size_t out_len;
};

static void frame(struct raw *w, uint8_t type, uint8_t flags, uint32_t id, const void *p,
                  size_t n) {
    uint8_t *b = w->buf + w->len;
    b[0] = (uint8_t)(n >> 16);
    b[1] = (uint8_t)(n >> 8);
    b[2] = (uint8_t)n;
    b[3] = type;
    b[4] = flags;
    b[5] = (uint8_t)(id >> 24);
    b[6] = (uint8_t)(id >> 16);
    b[7] = (uint8_t)(id >> 8);
    b[8] = (uint8_t)id;
    if (n)
        memcpy(b + 9, p, n);
    w->len += 9 + n;
}

static size_t header_block(struct raw *w, uint8_t *out, size_t cap, const char *path) {
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
    };
    return (size_t)nghttp2_hd_deflate_hd(w->hd, out, cap, nv, 4);
}

static void raw_open(struct raw *w, struct fake *f) {
    memset(&w->cl, 0, sizeof w->cl);
    w->cl.f = f;
    w->cl.split = 1 << 20;
    w->cl.c = chopin__engine_conn_new(&f->engine, -1);
    nghttp2_hd_deflate_new(&w->hd, 4096);
    w->len = w->out_len = 0;
    memcpy(w->buf, CHOPIN__H2_PREFACE, CHOPIN__H2_PREFACE_LEN);
    w->len = CHOPIN__H2_PREFACE_LEN;
    frame(w, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
}

/* Sends what was framed, collects what the server answers. */
static void raw_flush(struct raw *w) {
    server_feed(&w->cl, w->buf, w->len);
    w->len = 0;
    w->out_len += server_drain(&w->cl, w->out + w->out_len, sizeof w->out - w->out_len);
}

/* The server's GOAWAY, if it sent one: its error code, else -1. */
static long raw_goaway(const struct raw *w, uint32_t *last) {
    for (size_t at = 0; at + 9 <= w->out_len;) {
        const uint8_t *b = (const uint8_t *)w->out + at;
        size_t n = ((size_t)b[0] << 16) | ((size_t)b[1] << 8) | b[2];
        if (b[3] == NGHTTP2_GOAWAY && n >= 8) {
            if (last)
                *last = ((uint32_t)b[9] << 24 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 8 |
                         b[12]) & 0x7fffffff;
            return (long)((uint32_t)b[13] << 24 | (uint32_t)b[14] << 16 |
                          (uint32_t)b[15] << 8 | b[16]);
        }
        at += 9 + n;
    }
    return -1;
}

/* Frames of `type` the server sent on stream `id`. */
static int raw_count(const struct raw *w, uint8_t type, uint32_t id) {
    int count = 0;
    for (size_t at = 0; at + 9 <= w->out_len;) {
        const uint8_t *b = (const uint8_t *)w->out + at;
        size_t n = ((size_t)b[0] << 16) | ((size_t)b[1] << 8) | b[2];
        uint32_t sid = ((uint32_t)b[5] << 24 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 8 | b[8]);
        count += b[3] == type && sid == id;
        at += 9 + n;
    }
    return count;
}

static void raw_close(struct raw *w) {
    nghttp2_hd_deflate_del(w->hd);
    if (w->cl.c->live)
        chopin__engine_conn_free(&w->cl.f->engine, w->cl.c);
}

static struct raw raw_conn; /* (large: not on the stack) */

/* CVE-2023-44487: requests each reset at once by their client. Past RESETS_PER_SEC in a
 * second the server answers GOAWAY ENHANCE_YOUR_CALM and stops. */
static void test_rapid_reset(void) {
    struct fake f;
    setup(&f);
    struct raw *w = &raw_conn;
    raw_open(w, &f);
    uint8_t block[256];
    static const uint8_t cancel[4] = {0, 0, 0, NGHTTP2_CANCEL};
    for (uint32_t i = 0; i < 300; i++) {
        uint32_t id = 1 + 2 * i;
        size_t n = header_block(w, block, sizeof block, "/later");
        frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id,
              block, n);
        frame(w, NGHTTP2_RST_STREAM, 0, id, cancel, 4);
    }
    raw_flush(w);
    CHECK_INT(raw_goaway(w, NULL), NGHTTP2_ENHANCE_YOUR_CALM);
    CHECK(f.engine.counters.requests <= 101);
    CHECK_INT(f.engine.xopen, 0);
    raw_close(w);
    fake_stop(&f);
}

/* CVE-2024-28182: a header block that never ends, CONTINUATION after CONTINUATION. */
static void test_continuation_flood(void) {
    struct fake f;
    setup(&f);
    struct raw *w = &raw_conn;
    raw_open(w, &f);
    uint8_t block[256];
    size_t n = header_block(w, block, sizeof block, "/hello");
    frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, block, n);
    static const uint8_t field[] = {0x40, 1, 'x', 1, 'y'}; /* literal x: y */
    for (int i = 0; i < 1000; i++)
        frame(w, NGHTTP2_CONTINUATION, 0, 1, field, sizeof field);
    raw_flush(w);
    CHECK(raw_goaway(w, NULL) >= 0 || (w->cl.c->ask & CHOPIN__CONN_CLOSE));
    CHECK_INT(f.engine.counters.requests, 0);
    CHECK(w->cl.c->ask & (CHOPIN__CONN_CLOSE | CHOPIN__CONN_SHUTDOWN));
    raw_close(w);
    fake_stop(&f);
}

static void check_control_flood(uint8_t type) {
    struct fake f;
    setup(&f);
    struct raw *w = &raw_conn;
    raw_open(w, &f);
    static const uint8_t ping[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t setting[6] = {0, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0, 0, 0, 50};
    for (int i = 0; i < 500; i++) {
        if (type == NGHTTP2_PING)
            frame(w, NGHTTP2_PING, 0, 0, ping, sizeof ping);
        else
            frame(w, NGHTTP2_SETTINGS, 0, 0, setting, sizeof setting);
    }
    raw_flush(w);
    CHECK_INT(raw_goaway(w, NULL), NGHTTP2_ENHANCE_YOUR_CALM);
    CHECK(raw_count(w, type, 0) <= 110); /* (ACKs: one per frame before the bound) */
    raw_close(w);
    fake_stop(&f);
}

static void test_ping_flood(void) { check_control_flood(NGHTTP2_PING); }
static void test_settings_flood(void) { check_control_flood(NGHTTP2_SETTINGS); }

/* A few PINGs and SETTINGS a second are what clients send: no GOAWAY for them. */
static void test_control_frames_allowed(void) {
    struct fake f;
    setup(&f);
    struct raw *w = &raw_conn;
    raw_open(w, &f);
    static const uint8_t ping[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < 20; i++)
        frame(w, NGHTTP2_PING, 0, 0, ping, sizeof ping);
    raw_flush(w);
    CHECK_INT(raw_goaway(w, NULL), -1);
    CHECK_INT(raw_count(w, NGHTTP2_PING, 0), 20);
    raw_close(w);
    fake_stop(&f);
}

/* A client at the end of the stream id space is answered, then told GOAWAY with that
 * stream as the last, and the connection ends once it is answered. */
static void test_stream_id_exhaustion(void) {
    struct fake f;
    setup(&f);
    struct raw *w = &raw_conn;
    raw_open(w, &f);
    uint8_t block[256];
    size_t n = header_block(w, block, sizeof block, "/hello");
    frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 0x7fffffff,
          block, n);
    raw_flush(w);
    uint32_t last = 0;
    CHECK_INT(raw_goaway(w, &last), NGHTTP2_NO_ERROR);
    CHECK_INT(last, 0x7fffffff);
    CHECK_INT(raw_count(w, NGHTTP2_DATA, 0x7fffffff), 1);
    CHECK(w->cl.c->ask & CHOPIN__CONN_SHUTDOWN);
    raw_close(w);
    fake_stop(&f);
}

/* RFC 9113 §5.1.1: a stream id below the last one opened is a connection error. */
static void test_stream_id_going_back(void) {
    struct fake f;
    setup(&f);
    struct raw *w = &raw_conn;
    raw_open(w, &f);
    uint8_t block[256];
    size_t n = header_block(w, block, sizeof block, "/hello");
    frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 5, block, n);
    n = header_block(w, block, sizeof block, "/hello");
    frame(w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3, block, n);
    raw_flush(w);
    CHECK_INT(raw_goaway(w, NULL), NGHTTP2_PROTOCOL_ERROR);
    CHECK_INT(f.engine.counters.requests, 1);
    raw_close(w);
    fake_stop(&f);
}

/* ----- the connection's life ---------------------------------------------------------- */

/* A drain says GOAWAY with the last stream, finishes the streams in flight, then ends. */
static void test_drain(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int32_t id = request(&cl, "GET", "/later", NULL, 0, NULL);
    pump(&cl);
    chopin__engine_drain(&f.engine);
    pump(&cl);
    CHECK(cl.goaway);
    CHECK_INT(cl.goaway_last, id);
    CHECK(!(cl.c->ask & (CHOPIN__CONN_CLOSE | CHOPIN__CONN_SHUTDOWN)));
    chopin_res_static(chopin_exchange_res(held), 200, "text/plain", "late", 4);
    chopin_exchange_finish(held);
    chopin__engine_run_ready(&f.engine);
    pump(&cl);
    CHECK_MEM(cl.r[id].body, cl.r[id].len, "late");
    CHECK(cl.c->ask & CHOPIN__CONN_SHUTDOWN);
    client_close(&cl);
    fake_stop(&f);
}

/* A drain resets a stream that waits for its application (an endless event stream), and
 * the connection ends with it; its done() runs. */
static void test_drain_waiting_stream(void) {
    struct fake f;
    setup(&f);
    struct client cl;
    start(&cl, &f, 1 << 20);
    int32_t id = request(&cl, "GET", "/stream", NULL, 0, NULL);
    pump(&cl);
    CHECK_MEM(cl.r[id].body, cl.r[id].len, "chunk1;");
    chopin__engine_drain(&f.engine);
    pump(&cl);
    CHECK(cl.goaway);
    CHECK(cl.r[id].closed && cl.r[id].error == NGHTTP2_CANCEL);
    CHECK_INT(st.done, 1);
    CHECK(cl.c->ask & CHOPIN__CONN_SHUTDOWN);
    client_close(&cl);
    fake_stop(&f);
}

/* An idle connection is told GOAWAY at the keep-alive timeout. */
static void test_idle_timeout(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.keepalive_timeout_ms = 1000;
    setup_opts(&f, &o);
    struct client cl;
    start(&cl, &f, 1 << 20);
    request(&cl, "GET", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK(!cl.goaway);
    chopin__engine_set_clock(&f.engine, FAKE_T0 + 1500, FAKE_WALL + 2);
    chopin__engine_run_timers(&f.engine);
    pump(&cl);
    CHECK(cl.goaway);
    CHECK(cl.c->ask & CHOPIN__CONN_SHUTDOWN);
    client_close(&cl);
    fake_stop(&f);
}

/* Without the option the preface is HTTP/1.1's to refuse; with it, HTTP/1.1 still works. */
static void test_h2c_option(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    setup_opts(&f, &o);
    f.cfg.opt.h2c = 0;
    chopin__stack_choose(&f.engine.stack, &f.cfg.opt, NULL);
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, CHOPIN__H2_PREFACE);
    CHECK(strncmp(fake_output(c), "HTTP/1.1 400", 12) == 0); /* ("*" is OPTIONS' only) */
    CHECK(c->phase != CHOPIN__PHASE_PROTOCOL);
    chopin__engine_conn_free(&f.engine, c);
    f.cfg.opt.h2c = 1;
    chopin__stack_choose(&f.engine.stack, &f.cfg.opt, NULL);
    c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "PRI * HTTP/1.1\r\nHost: x\r\n\r\n"); /* starts like the preface */
    CHECK(strncmp(fake_output(c), "HTTP/1.1 400", 12) == 0);
    CHECK(c->phase != CHOPIN__PHASE_PROTOCOL);
    chopin__engine_conn_free(&f.engine, c);
    c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(strstr(fake_output(c), "\r\n\r\nhello") != NULL);
    CHECK_INT(c->phase == CHOPIN__PHASE_PROTOCOL, 0);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
}

/* ----- Upgrade: h2c ------------------------------------------------------------------- */

static void base64url(const uint8_t *p, size_t n, char *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = abc[(acc >> bits) & 63];
        }
    }
    if (bits)
        *out++ = abc[(acc << (6 - bits)) & 63];
    *out = '\0';
}

/* An upgrading request's client: the settings it sends in HTTP2-Settings, and its session
 * upgraded the way the server's is, stream 1 half closed. */
static void upgrade_client(struct client *cl, struct fake *f, const char *target, char *request,
                           size_t cap) {
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    client_open(cl, f, 5, iv, 1);
    uint8_t payload[64];
    char text[128];
    ssize_t n = nghttp2_pack_settings_payload(payload, sizeof payload, iv, 1);
    base64url(payload, (size_t)n, text);
    nghttp2_session_upgrade2(cl->s, payload, (size_t)n, 0, NULL);
    snprintf(request, cap,
             "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
             "Upgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n",
             target, text);
}

/* The server's bytes after the 101's head, to the client session. */
static void upgrade_answer(struct client *cl, char *out, size_t len) {
    const char *end = strstr(out, "\r\n\r\n");
    CHECK(strncmp(out, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK(strstr(out, "\r\nUpgrade: h2c\r\n") != NULL);
    CHECK(strstr(out, "\r\nConnection: Upgrade\r\n") != NULL); /* (clients wait for it) */
    if (end)
        nghttp2_session_mem_recv(cl->s, (const uint8_t *)end + 4, len - (size_t)(end + 4 - out));
}

/* RFC 7540 §3.2: the 101, then the server's SETTINGS and the request's answer as stream 1;
 * the connection goes on as HTTP/2. */
static void test_upgrade(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.h2c_upgrade = 1;
    setup_opts(&f, &o);
    struct client cl;
    char line[512];
    upgrade_client(&cl, &f, "/fields/9?q=up", line, sizeof line);
    server_feed(&cl, (const uint8_t *)line, strlen(line));
    struct raw *w = &raw_conn;
    size_t n = server_drain(&cl, w->out, sizeof w->out);
    w->out[n] = '\0';
    upgrade_answer(&cl, w->out, n);
    CHECK_INT(cl.c->phase, CHOPIN__PHASE_PROTOCOL);
    pump(&cl);
    CHECK_INT(cl.r[1].status, 200);
    CHECK_MEM(cl.r[1].body, cl.r[1].len, "||up|9|x");
    int32_t id = request(&cl, "GET", "/hello", NULL, 0, NULL);
    pump(&cl);
    CHECK_INT(id, 3);
    CHECK_MEM(cl.r[3].body, cl.r[3].len, "hello");
    client_close(&cl);
    fake_stop(&f);
}

/* A deferred stream 1 is answered when finished, over HTTP/2. */
static void test_upgrade_deferred(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    o.h2c_upgrade = 1;
    setup_opts(&f, &o);
    struct client cl;
    char line[512];
    upgrade_client(&cl, &f, "/later", line, sizeof line);
    server_feed(&cl, (const uint8_t *)line, strlen(line));
    struct raw *w = &raw_conn;
    size_t n = server_drain(&cl, w->out, sizeof w->out);
    w->out[n] = '\0';
    upgrade_answer(&cl, w->out, n);
    pump(&cl);
    CHECK_INT(cl.r[1].status, 0);
    chopin_res_static(chopin_exchange_res(held), 200, "text/plain", "later", 5);
    chopin_exchange_finish(held);
    chopin__engine_run_ready(&f.engine);
    pump(&cl);
    CHECK_MEM(cl.r[1].body, cl.r[1].len, "later");
    client_close(&cl);
    fake_stop(&f);
}

/* Without the option, or without a valid HTTP2-Settings, HTTP/1.1 answers the request. */
static void test_upgrade_refused(void) {
    struct fake f;
    chopin_options o = chopin_options_default();
    setup_opts(&f, &o);
    const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    struct chopin__conn *c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, req);
    CHECK(strncmp(fake_output(c), "HTTP/1.1 200 OK", 15) == 0);
    chopin__engine_conn_free(&f.engine, c);
    f.cfg.opt.h2c_upgrade = 1;
    chopin__stack_choose(&f.engine.stack, &f.cfg.opt, NULL);
    c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 "Upgrade: h2c\r\nHTTP2-Settings: !!\r\n\r\n");
    CHECK(strncmp(fake_output(c), "HTTP/1.1 200 OK", 15) == 0);
    chopin__engine_conn_free(&f.engine, c);
    c = chopin__engine_conn_new(&f.engine, -1);
    fake_feed(c, req);
    CHECK(strncmp(fake_output(c), "HTTP/1.1 101 ", 13) == 0);
    chopin__engine_conn_free(&f.engine, c);
    fake_stop(&f);
}

int main(void) {
    RUN(test_hello);
    RUN(test_hello_byte_by_byte);
    RUN(test_malformed_request_reset);
    RUN(test_request_fields);
    RUN(test_malformed_requests);
    RUN(test_head_404_405);
    RUN(test_request_body);
    RUN(test_body_too_large);
    RUN(test_streamed_body);
    RUN(test_streamed_body_paused);
    RUN(test_streamed_body_too_large);
    RUN(test_streamed_body_timeout);
    RUN(test_hpack_bomb);
    RUN(test_deferred);
    RUN(test_reset_cancels_deferred);
    RUN(test_file_and_owned);
    RUN(test_stream_resume);
    RUN(test_trailers);
    RUN(test_slow_reader_bounded);
    RUN(test_zero_window_stall);
    RUN(test_idle_costs);
    RUN(test_rapid_reset);
    RUN(test_continuation_flood);
    RUN(test_ping_flood);
    RUN(test_settings_flood);
    RUN(test_control_frames_allowed);
    RUN(test_stream_id_exhaustion);
    RUN(test_stream_id_going_back);
    RUN(test_drain);
    RUN(test_drain_waiting_stream);
    RUN(test_idle_timeout);
    RUN(test_h2c_option);
    RUN(test_upgrade);
    RUN(test_upgrade_deferred);
    RUN(test_upgrade_refused);
    TEST_END();
}
#endif
