/* SPDX-License-Identifier: MIT */
/* The test client (see client.h). */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifdef CHOPIN_HAVE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

/* ----- TLS (CHOPIN_TEST_TLS=1) -------------------------------------------------------- */

int cl_tls(void) {
    const char *v = getenv("CHOPIN_TEST_TLS");
    return v && strcmp(v, "1") == 0;
}

/* The ports of the TLS servers cl_start started: a test's own chopin_server_start stays
 * plain, and so do the connections to it. */
static int tls_ports[256];
static int ntls_ports;

void cl_mark_tls(int port) {
    if (ntls_ports < (int)(sizeof tls_ports / sizeof *tls_ports))
        tls_ports[ntls_ports++] = port;
}

static int port_is_tls(int port) {
    for (int i = 0; i < ntls_ports; i++)
        if (tls_ports[i] == port)
            return 1;
    return 0;
}

#ifdef CHOPIN_HAVE_TLS
static char cert_dir[64];

static void remove_certs(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cert_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", cert_dir);
}

/* The directory of the test certificates, made at the first call. */
static pthread_once_t certs_once = PTHREAD_ONCE_INIT;

static void make_certs(void) {
    char cmd[256];
    snprintf(cert_dir, sizeof cert_dir, "/tmp/chopin-itest-tls-XXXXXX");
    snprintf(cmd, sizeof cmd, "tests/tls/mkcerts.sh %s", mkdtemp(cert_dir) ? cert_dir : "/nonexistent");
    if (system(cmd) != 0) {
        fprintf(stderr, "cl: cannot make test certificates (tests/tls/mkcerts.sh)\n");
        exit(1);
    }
    atexit(remove_certs);
}

const char *cl_certs(void) {
    pthread_once(&certs_once, make_certs);
    return cert_dir;
}

/* The clients' context, made once for every thread of the test. */
static SSL_CTX *client_ctx;
static pthread_once_t client_ctx_once = PTHREAD_ONCE_INIT;

static void make_client_ctx(void) {
    char ca[128];
    snprintf(ca, sizeof ca, "%s/ca.pem", cl_certs());
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        SSL_CTX_free(ctx);
        return;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* A server closing an idle connection sends no close_notify (nor does nginx's
     * keep-alive timeout): that EOF is a close, as on a plain socket. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    client_ctx = ctx;
}

/* The TLS session of each connection, by descriptor, kept beside struct cl_conn rather
 * than in it: suites that make a cl_conn of their own (malloc, fd, len) stay plain. */
#define MAX_FDS 65536
static SSL *tls_of[MAX_FDS];

static SSL *ssl_of(const struct cl_conn *c) {
    return c->fd >= 0 && c->fd < MAX_FDS ? __atomic_load_n(&tls_of[c->fd], __ATOMIC_ACQUIRE) : NULL;
}

static int tls_handshake(struct cl_conn *c) {
    pthread_once(&client_ctx_once, make_client_ctx);
    if (!client_ctx)
        return -1;
    SSL *ssl = SSL_new(client_ctx);
    if (!ssl)
        return -1;
    SSL_set_fd(ssl, c->fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (c->fd >= MAX_FDS) {
        SSL_free(ssl);
        return -1;
    }
    __atomic_store_n(&tls_of[c->fd], ssl, __ATOMIC_RELEASE);
    if (SSL_connect(ssl) != 1) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static ssize_t tls_recv(struct cl_conn *c, char *buf, size_t cap) {
    size_t got = 0;
    SSL *ssl = ssl_of(c);
    if (SSL_read_ex(ssl, buf, cap, &got) == 1)
        return (ssize_t)got;
    int err = SSL_get_error(ssl, 0);
    ERR_clear_error();
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET)))
        return 0; /* close_notify, a bare EOF or a reset: closed */
    return -1;
}

static ssize_t tls_send(struct cl_conn *c, const char *s, size_t n) {
    size_t put = 0;
    if (SSL_write_ex(ssl_of(c), s, n, &put) != 1) {
        ERR_clear_error();
        return -1;
    }
    return (ssize_t)put;
}

static int is_tls(const struct cl_conn *c) { return ssl_of(c) != NULL; }

static void tls_free(struct cl_conn *c) {
    SSL_free(ssl_of(c));
    __atomic_store_n(&tls_of[c->fd], NULL, __ATOMIC_RELEASE);
}
#else
const char *cl_certs(void) { return NULL; }
/* The TLS session of each connection, by descriptor, kept beside struct cl_conn rather
 * than in it: suites that make a cl_conn of their own (malloc, fd, len) stay plain. */
#define MAX_FDS 65536
static SSL *tls_of[MAX_FDS];

static SSL *ssl_of(const struct cl_conn *c) {
    return c->fd >= 0 && c->fd < MAX_FDS ? __atomic_load_n(&tls_of[c->fd], __ATOMIC_ACQUIRE) : NULL;
}

static int tls_handshake(struct cl_conn *c) { return -1; }
static ssize_t tls_recv(struct cl_conn *c, char *buf, size_t cap) { return -1; }
static ssize_t tls_send(struct cl_conn *c, const char *s, size_t n) { return -1; }
static int is_tls(const struct cl_conn *c) { return 0; }
static void tls_free(struct cl_conn *c) {}
#endif

static ssize_t conn_recv(struct cl_conn *c, char *buf, size_t cap) {
    return is_tls(c) ? tls_recv(c, buf, cap) : recv(c->fd, buf, cap, 0);
}

/* ----- connections ------------------------------------------------------------------- */

static struct cl_conn *open_addr(const struct sockaddr *sa, socklen_t len, int port) {
    struct cl_conn *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->len = 0;
    c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (c->fd < 0 || connect(c->fd, sa, len) < 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    if (port_is_tls(port) && tls_handshake(c) < 0) {
        cl_close(c);
        return NULL;
    }
    return c;
}

struct cl_conn *cl_open(int port) {
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return open_addr((struct sockaddr *)&sin, sizeof sin, port);
}

struct cl_conn *cl_open6(int port) {
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    sin6.sin6_addr = in6addr_loopback;
    return open_addr((struct sockaddr *)&sin6, sizeof sin6, port);
}

void cl_close(struct cl_conn *c) {
    if (!c)
        return;
    if (is_tls(c))
        tls_free(c);
    close(c->fd);
    free(c);
}

int cl_send(struct cl_conn *c, const char *s, size_t n) {
    if (n == 0)
        n = strlen(s);
    while (n > 0) {
        ssize_t k = is_tls(c) ? tls_send(c, s, n) : send(c->fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads more bytes into the buffer; returns bytes read, 0 on EOF, -1 on error/timeout. */
static ssize_t fill(struct cl_conn *c) {
    if (c->len == sizeof c->buf)
        return -1;
    ssize_t n;
    do
        n = conn_recv(c, c->buf + c->len, sizeof c->buf - c->len);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

static void consume(struct cl_conn *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Waits until `need` bytes are buffered. */
static int want(struct cl_conn *c, size_t need) {
    while (c->len < need)
        if (fill(c) <= 0)
            return -1;
    return 0;
}

static char *find_crlf(struct cl_conn *c, size_t from) {
    for (;;) {
        char *p = c->len > from ? memmem(c->buf + from, c->len - from, "\r\n", 2) : NULL;
        if (p)
            return p;
        if (fill(c) <= 0)
            return NULL;
    }
}

static int append_body(struct cl_resp *r, const char *p, size_t n) {
    char *b = realloc(r->body, r->body_len + n + 1);
    if (!b)
        return -1;
    memcpy(b + r->body_len, p, n);
    r->body = b;
    r->body_len += n;
    b[r->body_len] = '\0';
    return 0;
}

static int read_chunked(struct cl_conn *c, struct cl_resp *r) {
    for (;;) {
        char *eol = find_crlf(c, 0);
        if (!eol)
            return -1;
        unsigned long size = strtoul(c->buf, NULL, 16);
        consume(c, (size_t)(eol + 2 - c->buf));
        if (size == 0) {
            /* trailers until an empty line */
            for (;;) {
                eol = find_crlf(c, 0);
                if (!eol)
                    return -1;
                size_t l = (size_t)(eol - c->buf);
                consume(c, l + 2);
                if (l == 0)
                    return 0;
            }
        }
        if (want(c, size + 2) < 0 || append_body(r, c->buf, size) < 0)
            return -1;
        consume(c, size + 2);
    }
}

int cl_read(struct cl_conn *c, struct cl_resp *r, int head_request) {
    memset(r, 0, sizeof *r);
    char *end;
    for (;;) {
        end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end)
            break;
        if (fill(c) <= 0)
            return -1;
    }
    size_t head_len = (size_t)(end + 4 - c->buf);
    if (head_len >= sizeof r->head || sscanf(c->buf, "HTTP/1.%d %d", &r->minor, &r->status) != 2)
        return -1;
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    consume(c, head_len);
    char v[64];
    r->body = calloc(1, 1);
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304)
        return 0;
    if (cl_header(r, "Transfer-Encoding", v, sizeof v) == 0 && strcasestr(v, "chunked")) {
        r->chunked = 1;
        return read_chunked(c, r);
    }
    if (cl_header(r, "Content-Length", v, sizeof v) == 0) {
        size_t n = strtoull(v, NULL, 10);
        if (want(c, n) < 0 || append_body(r, c->buf, n) < 0)
            return -1;
        consume(c, n);
        return 0;
    }
    for (;;) { /* close-delimited */
        ssize_t n = fill(c);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
    }
    int rc = append_body(r, c->buf, c->len);
    c->len = 0;
    return rc;
}

void cl_resp_free(struct cl_resp *r) {
    free(r->body);
    r->body = NULL;
}

int cl_header(const struct cl_resp *r, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line && line[2] != '\r') {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol)
            break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = (size_t)(eol - v);
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
        line = eol;
    }
    return -1;
}

int cl_closed(struct cl_conn *c) {
    if (c->len)
        return 0;
    char b[256];
    ssize_t n;
    do
        n = conn_recv(c, b, sizeof b);
    while (n < 0 && errno == EINTR);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

int cl_get(int port, const char *target, struct cl_resp *r) {
    struct cl_conn *c = cl_open(port);
    if (!c)
        return -1;
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    struct cl_resp tmp;
    struct cl_resp *out = r ? r : &tmp;
    int status = cl_send(c, req, 0) == 0 && cl_read(c, out, 0) == 0 ? out->status : -1;
    if (!r)
        cl_resp_free(&tmp);
    cl_close(c);
    return status;
}

chopin_server *cl_start(chopin_router *r, chopin_options *opt) {
    chopin_options o = opt ? *opt : chopin_options_default();
    o.quiet = 1;
    if (!opt || !opt->workers)
        o.workers = 1;
    chopin_server *s;
    const char *address = "127.0.0.1:0";
    char cert[128], key[128];
#ifdef CHOPIN_HAVE_TLS
    if (cl_tls()) {
        address = "https://127.0.0.1:0";
        snprintf(cert, sizeof cert, "%s/a.pem", cl_certs());
        snprintf(key, sizeof key, "%s/a.key", cl_certs());
        if (!o.tls_cert)
            o.tls_cert = cert, o.tls_key = key;
    }
#else
    (void)cert, (void)key; /* no TLS in this build: CHOPIN_TEST_TLS runs plain */
#endif
    int rc = chopin_server_start(r, address, &o, &s);
    if (rc < 0) {
        fprintf(stderr, "cl_start: %s\n", chopin_strerror(rc));
        return NULL;
    }
    if (cl_tls())
        cl_mark_tls(chopin_server_port(s));
    return s;
}

void cl_stop(chopin_server *s) {
    if (!s)
        return;
    int port = chopin_server_port(s); /* the port may serve a plain server next */
    for (int i = 0; i < ntls_ports; i++)
        if (tls_ports[i] == port)
            tls_ports[i] = tls_ports[--ntls_ports];
    chopin_server_stop(s);
    chopin_server_wait(s);
}

int cl_connect_fd(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int cl_send_fd(int fd, const char *s) {
    size_t n = strlen(s);
    return fd >= 0 && send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n;
}
