/* SPDX-License-Identifier: MIT */
/*
 * The demo server: TechEmpower's /plaintext and /json, an echo, the todo REST API, answers
 * that come later (/sleep from a timer, /offload from the blocking pool), metrics and
 * health (/metrics, /healthz, /readyz), and a page listing them. `make run` starts it on
 * port 8080 (PORT overrides), and HTTPS on 8443 (TLS_PORT overrides; see tls_configure).
 *
 * An invalid PORT or CHOPIN_* variable stops it before it creates anything; the
 * temporary directory of the database (without CHOPIN_TODO_DB) is removed at exit.
 */
#include <chopin.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_page.h"
#include "todo.h"
#include "upload.h"

static const char INDEX[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Chopin</title></head><body>\n"
    "<h1>Chopin demo</h1>\n<ul>\n"
    "<li><a href=\"/plaintext\">GET /plaintext</a>: Hello, World!</li>\n"
    "<li><a href=\"/json\">GET /json</a>: a JSON message, serialized per request</li>\n"
    "<li>POST /echo: the request body back, with its Content-Type</li>\n"
    "<li><a href=\"/todos\">/todos</a>: a todo REST API on SQLite "
    "(POST, GET, GET/PUT/PATCH/DELETE /todos/:id)</li>\n"
    "<li><a href=\"/sleep?ms=500\">GET /sleep?ms=N</a>: answered by a timer after N ms "
    "(the worker serves others meanwhile)</li>\n"
    "<li><a href=\"/offload?ms=500\">GET /offload?ms=N</a>: a blocking sleep of N ms on the "
    "offload pool (503 when its queue is full)</li>\n"
    "<li><a href=\"/events\">GET /events</a>: server-sent events, a count every second "
    "(?ms=N every N ms, ?n=N ends the stream after N, Last-Event-ID resumes the count); "
    "GET /events/open: how many streams are open</li>\n"
    "<li><a href=\"/upload\">/upload</a>: a form for files and text fields; the upload is "
    "streamed to disk and answered with each file's size and SHA-256 (up to 4 GiB)</li>\n"
    "<li><a href=\"/static/\">/static/</a>: the files of examples/public/ (DEMO_PUBLIC "
    "overrides), with validators, ranges and an open-file cache</li>\n"
    "<li><a href=\"/metrics\">GET /metrics</a>: Prometheus metrics; "
    "<a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a>: liveness and "
    "readiness (CHOPIN_ACCESS_LOG=- logs every answer on stderr)</li>\n"
    "<li>/ws/echo: a WebSocket that echoes every message (permessage-deflate offered); "
    "<a href=\"/chat\">/chat</a>: a chat room for every visitor, on every worker "
    "(WebSocket and publish/subscribe)</li>\n"
    "</ul>\n</body></html>\n";

static void index_page(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/html; charset=utf-8", INDEX, sizeof INDEX - 1);
}

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

/* TechEmpower requires the JSON to be serialized for every request. */
static void json(chopin_req *req, chopin_res *res, void *data) {
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "message");
    chopin_json_str(j, "Hello, World!");
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

static void echo(chopin_req *req, chopin_res *res, void *data) {
    chopin_str body = chopin_req_body(req);
    chopin_str type = chopin_req_header(req, "Content-Type");
    char *ctype = NULL;
    if (type.ptr && (ctype = chopin_req_alloc(req, type.len + 1))) {
        memcpy(ctype, type.ptr, type.len);
        ctype[type.len] = '\0';
    }
    chopin_res_copy(res, 200, ctype ? ctype : "application/octet-stream", body.ptr, body.len);
}

/* ----- answers that come later ------------------------------------------------------- */

/* The longest wait /sleep and /offload accept. */
#define WAIT_MAX_MS 60000

/* The "ms" query parameter: 0 to WAIT_MAX_MS, or -1 (the handler answers 400). */
static long wait_ms(chopin_req *req) {
    chopin_str v = chopin_req_query(req, "ms");
    if (!v.ptr || v.len == 0 || v.len > 5)
        return -1;
    long ms = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return -1;
        ms = ms * 10 + (v.ptr[i] - '0');
    }
    return ms <= WAIT_MAX_MS ? ms : -1;
}

static void answer_waited(chopin_exchange x, const char *what, long ms) {
    chopin_res *res = chopin_exchange_res(x);
    if (!res)
        return; /* the client left, or the deadline answered for us */
    char body[48];
    int len = snprintf(body, sizeof body, "%s %ld ms\n", what, ms);
    chopin_res_copy(res, 200, "text/plain", body, (size_t)len);
    chopin_exchange_finish(x);
}

struct sleeper {
    chopin_exchange x;
    chopin_worker *w;
    chopin_timer t;
    long ms;
};

static void sleep_over(chopin_worker *w, chopin_timer t, void *arg) {
    struct sleeper *s = arg;
    answer_waited(s->x, "slept", s->ms);
    free(s);
}

/* The exchange ended first (client gone, deadline, stop): its timer goes with it. */
static void sleep_cancelled(chopin_exchange x, void *arg) {
    struct sleeper *s = arg;
    chopin_timer_stop(s->w, s->t);
    free(s);
}

/* GET /sleep?ms=N: the answer comes from a timer; the worker is free meanwhile. */
static void sleep_route(chopin_req *req, chopin_res *res, void *data) {
    long ms = wait_ms(req);
    struct sleeper *s = ms >= 0 ? malloc(sizeof *s) : NULL;
    if (ms < 0) {
        chopin_res_error(res, 400, "ms: a whole number of milliseconds, 0 to 60000\n");
        return;
    }
    if (!s || chopin_defer(req, res, &s->x) < 0) { /* (chopin_defer's 503) */
        if (!s)
            chopin_res_error(res, 503, NULL);
        free(s);
        return;
    }
    s->w = chopin_req_worker(req);
    s->ms = ms;
    s->t = chopin_timer_start(s->w, (uint64_t)ms, 0, sleep_over, s);
    if (!s->t) {
        chopin_res_error(chopin_exchange_res(s->x), 503, NULL);
        chopin_exchange_finish(s->x);
        free(s);
        return;
    }
    chopin_exchange_on_cancel(s->x, sleep_cancelled, s);
}

struct offloaded {
    long ms;
};

static void offload_work(void *arg) { /* on a pool thread: blocking is its purpose */
    const struct offloaded *o = arg;
    usleep((useconds_t)o->ms * 1000);
}

static void offload_done(chopin_exchange x, void *arg) {
    struct offloaded *o = arg;
    answer_waited(x, "offloaded", o->ms);
    free(o);
}

/* GET /offload?ms=N: a blocking sleep on the offload pool (a full queue answers 503). */
static void offload_route(chopin_req *req, chopin_res *res, void *data) {
    long ms = wait_ms(req);
    struct offloaded *o = ms >= 0 ? malloc(sizeof *o) : NULL;
    if (ms < 0) {
        chopin_res_error(res, 400, "ms: a whole number of milliseconds, 0 to 60000\n");
        return;
    }
    if (!o) {
        chopin_res_error(res, 503, NULL);
        return;
    }
    o->ms = ms;
    if (chopin_offload(req, res, offload_work, offload_done, o) < 0)
        free(o); /* res holds the 503 */
}

/* ----- /events: server-sent events ------------------------------------------------- */

struct counter {
    chopin_sse *sse;
    chopin_worker *w;
    chopin_timer t;
    unsigned long next, left; /* left: events before the server ends the stream (0: no end) */
};

static atomic_int events_open; /* streams open on every worker (GET /events/open) */

static void count_tick(chopin_worker *w, chopin_timer t, void *arg) {
    struct counter *c = arg;
    char n[24];
    int len = snprintf(n, sizeof n, "%lu", c->next);
    if (chopin_sse_send(c->sse, "tick", n, n, (size_t)len) == 0)
        c->next++;
    if (c->left && --c->left == 0)
        chopin_sse_close(c->sse); /* the client reconnects, with Last-Event-ID */
}

static void count_closed(chopin_sse *s, void *arg) {
    struct counter *c = arg;
    chopin_timer_stop(c->w, c->t);
    atomic_fetch_sub(&events_open, 1);
    free(c);
}

/* An unsigned number in the query (`key`=N), or `dflt`. */
static unsigned long query_number(chopin_req *req, const char *key, unsigned long dflt,
                                  unsigned long max) {
    chopin_str v = chopin_req_query(req, key);
    char text[24];
    if (!v.ptr || v.len == 0 || v.len >= sizeof text)
        return dflt;
    memcpy(text, v.ptr, v.len);
    text[v.len] = '\0';
    char *end;
    unsigned long n = strtoul(text, &end, 10);
    return *end || n > max ? dflt : n;
}

/* GET /events: tick events counting up from 1, or from after the Last-Event-ID of a
 * client that reconnects. */
static void events_route(chopin_req *req, chopin_res *res, void *data) {
    struct counter *c = calloc(1, sizeof *c);
    if (!c) {
        chopin_res_error(res, 503, NULL);
        return;
    }
    chopin_str last = chopin_sse_last_id(req);
    char id[24] = "";
    if (last.ptr && last.len < sizeof id)
        memcpy(id, last.ptr, last.len);
    c->next = strtoul(id, NULL, 10) + 1;
    c->left = query_number(req, "n", 0, 1000000);
    unsigned long every = query_number(req, "ms", 1000, 60000);
    c->w = chopin_req_worker(req);
    c->sse = chopin_sse_open(req, res, count_closed, c);
    if (!c->sse) {
        free(c);
        chopin_res_error(res, 503, NULL);
        return;
    }
    atomic_fetch_add(&events_open, 1);
    chopin_sse_retry(c->sse, (uint32_t)(every ? every : 1));
    c->t = chopin_timer_start(c->w, every, every ? every : 1, count_tick, c);
}

static void events_open_route(chopin_req *req, chopin_res *res, void *data) {
    char n[16];
    int len = snprintf(n, sizeof n, "%d", atomic_load(&events_open));
    chopin_res_copy(res, 200, "text/plain", n, (size_t)len);
}

/* ----- HTTPS beside HTTP (issue 16) ---------------------------------------------------
 * TLS_PORT (default 8443; 0 when PORT is 0, so tests get a free port; "off": none) serves
 * the same routes over TLS. The certificate is CHOPIN_TLS_CERT/CHOPIN_TLS_KEY when set,
 * else a self-signed one for localhost made by the openssl command in a temporary
 * directory (removed at exit): `curl -k https://localhost:8443/plaintext`. */
static char tls_dir[64];
static char tls_cert[96], tls_key[96];

static void tls_remove_temp(void) {
    if (!tls_dir[0])
        return;
    unlink(tls_cert);
    unlink(tls_key);
    rmdir(tls_dir);
}

static int tls_self_signed(void) {
    snprintf(tls_dir, sizeof tls_dir, "/tmp/chopin-demo-tls-XXXXXX");
    if (!mkdtemp(tls_dir)) {
        tls_dir[0] = '\0';
        return -1;
    }
    snprintf(tls_cert, sizeof tls_cert, "%s/cert.pem", tls_dir);
    snprintf(tls_key, sizeof tls_key, "%s/key.pem", tls_dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             "-keyout %s -out %s >/dev/null 2>&1", tls_key, tls_cert);
    return system(cmd) == 0 ? 0 : -1;
}

/* Prepends the https:// listener to `address` and names the certificate in `opt`. */
static void tls_configure(chopin_options *opt, const char *port, char *address, size_t cap) {
    const char *tls_port = getenv("TLS_PORT");
    if (!tls_port || !*tls_port)
        tls_port = strcmp(port, "0") == 0 ? "0" : "8443";
    if (strcmp(tls_port, "off") == 0)
        return;
    if (!chopin_tls_available()) {
        fprintf(stderr, "demo: this build of Chopin has no TLS (OpenSSL 3): HTTPS is off\n");
        return;
    }
    if (!getenv("CHOPIN_TLS_CERT")) {
        if (tls_self_signed() < 0) {
            fprintf(stderr, "demo: no certificate (CHOPIN_TLS_CERT unset and the openssl "
                            "command failed): HTTPS is off\n");
            tls_remove_temp();
            return;
        }
        opt->tls_cert = tls_cert;
        opt->tls_key = tls_key;
        fprintf(stderr, "demo: HTTPS with a self-signed certificate for localhost in %s "
                        "(curl -k)\n", tls_dir);
    }
    char plain[64];
    snprintf(plain, sizeof plain, "%.63s", address);
    snprintf(address, cap, "https://0.0.0.0:%.8s, %s", tls_port, plain);
}

/* GET /whoami: the client as the connection and the trusted proxies tell it (issue 19;
 * tests/integration/lb.sh puts HAProxy and nginx in front). */
static void whoami(chopin_req *req, chopin_res *res, void *data) {
    chopin_str remote = chopin_req_remote_addr(req), client = chopin_req_client_addr(req),
               scheme = chopin_req_client_scheme(req);
    char text[256];
    int n = snprintf(text, sizeof text, "remote=%.*s client=%.*s scheme=%.*s\n",
                     (int)remote.len, remote.ptr, (int)client.len, client.ptr,
                     (int)scheme.len, scheme.ptr);
    chopin_res_copy(res, 200, "text/plain", text, (size_t)n);
}

static int add_lb_routes(chopin_router *r) { return chopin_router_get(r, "/whoami", whoami, NULL); }

/* Operations (issue 19): metrics, health, and request ids when answers are logged (the
 * access log itself is the library's: CHOPIN_ACCESS_LOG). */
static const chopin_health_options health = {.live_path = "/healthz", .ready_path = "/readyz"};

static int add_ops_routes(chopin_router *r) {
    int rc = chopin_metrics_route(r, "/metrics");
    if (!rc) rc = chopin_health_routes(r, &health);
    const char *log = getenv("CHOPIN_ACCESS_LOG");
    if (!rc && log && *log) rc = chopin_router_use(r, NULL, chopin_request_id, NULL);
    return rc;
}

/* Every problem of the configuration (PORT and each CHOPIN_* variable) is printed before
 * anything is created, so a bad start leaves nothing behind. */
static int configure(chopin_options *opt, char *address, size_t cap) {
    const char *port = todo_env_port();
    *opt = chopin_options_default();
    opt->worker_init = todo_worker_init;
    opt->worker_fini = todo_worker_fini;
    int options_ok = chopin_options_check(opt) == 0;
    if (!port || !options_ok)
        return -1;
    snprintf(address, cap, "0.0.0.0:%s", port);
    tls_configure(opt, port, address, cap);
    return 0;
}

/* ----- WebSocket: /ws/echo, and the chat room of /chat (issue 17) ----------------------- */

static void ws_echo_message(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    chopin_ws_send(ws, kind, data, len);
}

static void ws_echo_route(chopin_req *req, chopin_res *res, void *data) {
    static const chopin_ws_config echo = {
        .on_message = ws_echo_message,
        .max_message = 16u << 20, /* as large as an HTTP body may be */
        .max_queued = 32u << 20,
        .deflate = 1,
    };
    chopin_ws_upgrade(req, res, &echo, NULL);
}

#define CHAT_TOPIC "chat"

static void chat_open(chopin_ws *ws) { chopin_ws_subscribe(ws, CHAT_TOPIC); }

/* Every line goes to everyone in the room, this sender included, on every worker. The
 * page sends JSON and shows it as text; what it sends is passed on as it came. */
static void chat_message(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    if (kind == CHOPIN_WS_TEXT)
        chopin_ws_publish(chopin_ws_server(ws), CHAT_TOPIC, kind, data, len);
}

static void ws_chat_route(chopin_req *req, chopin_res *res, void *data) {
    static const chopin_ws_config chat = {
        .on_open = chat_open,
        .on_message = chat_message,
        .max_message = 4096,
        .max_queued = 1u << 20,
    };
    chopin_ws_upgrade(req, res, &chat, NULL);
}

static void chat_page(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/html; charset=utf-8", CHAT_PAGE, sizeof CHAT_PAGE - 1);
}

static int add_ws_routes(chopin_router *r) {
    int rc = chopin_router_get(r, "/ws/echo", ws_echo_route, NULL);
    if (!rc) rc = chopin_router_get(r, "/ws/chat", ws_chat_route, NULL);
    if (!rc) rc = chopin_router_get(r, "/chat", chat_page, NULL);
    return rc;
}

/* Compression (issue 15): the files of /static/ are compressed for the clients that
 * accept it (docs/compression.md). Only there: /plaintext and /json are what `make bench`
 * measures against servers that do not compress them. */
static int compression_setup(chopin_router *r) {
    return chopin_router_use(r, "/static", chopin_compress, NULL);
}

/* GET /static/...: the files of examples/public/ (or $DEMO_PUBLIC), freed after the serve.
 * A missing directory leaves the route out with a note: the demo still runs elsewhere. */
static chopin_static *demo_static;

static int static_routes(chopin_router *r) {
    const char *dir = getenv("DEMO_PUBLIC") ? getenv("DEMO_PUBLIC") : "examples/public";
    chopin_static_options so = CHOPIN_STATIC_OPTIONS_INIT;
    so.cache_control = "public, max-age=60";
    so.flags = CHOPIN_STATIC_PRECOMPRESSED;
    int rc = chopin_static_new(dir, &so, &demo_static);
    if (rc < 0) {
        fprintf(stderr, "demo: no /static/: %s: %s\n", dir, chopin_strerror(rc));
        return 0;
    }
    return chopin_router_static(r, "/static", demo_static);
}

/* GET /trailers (issue 20): a streamed body, then trailer fields (curl -D - shows them
 * after it: over HTTP/2 a last HEADERS frame, over HTTP/1.1 the chunked body's trailer). */
static long two_lines(void *state, char *buf, size_t cap) {
    static const char text[] = "line one\nline two\n";
    int *sent = state;
    if (*sent || cap < sizeof text - 1)
        return 0;
    *sent = 1;
    memcpy(buf, text, sizeof text - 1);
    return (long)(sizeof text - 1);
}

static void trailers_route(chopin_req *req, chopin_res *res, void *data) {
    int *sent = calloc(1, sizeof *sent); /* (outlives the request's arena on HTTP/1.1) */
    if (!sent || chopin_res_stream(res, 200, "text/plain", two_lines, free, sent) < 0) {
        free(sent);
        chopin_res_error(res, 503, NULL);
        return;
    }
    chopin_res_trailer(res, "X-Lines", "2");
    chopin_res_trailer(res, "X-Checksum", "demo-trailer");
}

static int add_h2_routes(chopin_router *r) {
    return chopin_router_get(r, "/trailers", trailers_route, NULL);
}

static int add_routes(chopin_router *r) {
    int rc = compression_setup(r);
    if (!rc) rc = chopin_router_get(r, "/", index_page, NULL);
    if (!rc) rc = chopin_router_get(r, "/plaintext", plaintext, NULL);
    if (!rc) rc = chopin_router_get(r, "/json", json, NULL);
    if (!rc) rc = chopin_router_post(r, "/echo", echo, NULL);
    if (!rc) rc = chopin_router_get(r, "/sleep", sleep_route, NULL);
    if (!rc) rc = chopin_router_get(r, "/offload", offload_route, NULL);
    if (!rc) rc = chopin_router_get(r, "/events", events_route, NULL);
    if (!rc) rc = chopin_router_get(r, "/events/open", events_open_route, NULL);
    if (!rc) rc = add_ws_routes(r);
    if (!rc) rc = add_lb_routes(r);
    if (!rc) rc = todo_mount(r, "/todos");
    if (!rc) rc = upload_mount(r, "/upload");
    if (!rc) rc = static_routes(r);
    if (!rc) rc = add_ops_routes(r);
    if (!rc) rc = add_h2_routes(r);
    if (rc < 0)
        fprintf(stderr, "demo: %s: %s\n", chopin_strerror(rc), chopin_router_error(r));
    return rc;
}

int main(void) {
    chopin_options opt;
    char address[160];
    if (configure(&opt, address, sizeof address) < 0)
        return 1;
    const char *db = todo_default_db_path();
    if (!db || todo_open_schema(db) < 0 || upload_dir_open() < 0) {
        todo_remove_temp_db();
        tls_remove_temp();
        return 1;
    }
    opt.worker_arg = (void *)db;
    chopin_router *r = chopin_router_new();
    int rc = r ? add_routes(r) : -1;
    if (rc == 0)
        rc = chopin_serve(r, address, &opt);
    chopin_router_free(r);
    chopin_static_free(demo_static);
    todo_remove_temp_db();
    tls_remove_temp();
    upload_dir_remove();
    return rc < 0 ? 1 : 0;
}
