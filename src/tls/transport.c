/* SPDX-License-Identifier: MIT */
/*
 * The TLS transport: a session (session.c) plugged into a connection through conn.h's
 * transport hook. Ciphertext from the backend goes in; the plaintext goes up to the
 * protocol (chopin__conn_deliver). The protocol's plaintext output (iovecs, or a file
 * range read with pread piece by piece: never the whole file) is encrypted into records,
 * and the backend sends those as it would any memory.
 *
 * What the connection owes its peer besides records: the clear 400 for plain HTTP, a
 * fatal alert, and close_notify before the half-close of a connection that ends
 * politely. Until the handshake is done its deadline is the handshake timeout.
 *
 * kTLS (ktls.c, docs/tls.md): where the kernel has the tls module, each direction moves to
 * the kernel once nothing of it is left in user space, and from then on its bytes pass as
 * on a plain connection (sendfile, io_uring's plain sends). Sending moves once every record
 * OpenSSL wrote (the handshake's end, its tickets) has reached the socket; receiving once
 * OpenSSL and the session hold no ciphertext (a record cut by a read waits for its end), and
 * only on a backend that takes no bytes ahead of the connection (engine->reads_ahead).
 */
#include "tls/transport.h"
#include "h2/h2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "engine.h"
#include "tls/tls.h"

/* Plaintext encrypted per plan, at most: the records of one plan are held until sent. */
#define PLAN_BUDGET (64 * 1024)
/* One TLS record's worth of plaintext (RFC 8446 5.1: 2^14). */
#define RECORD_MAX 16384
/* A worker with more connections than this starts new TLS sessions lean (their OpenSSL
 * buffers given back between records): below it, keeping them saves a malloc and a free
 * of some 17 KiB each way per request (~9 % of a keep-alive request's instructions,
 * bench/micro_tls.c), and the buffers kept are bounded to this many (~34 MiB a worker). */
#define KEEP_BUFFERS_CONNS 1024

/* The directions of a connection (tls_transport's ktls, ktls_want). */
#define KTLS_TX 1u
#define KTLS_RX 2u

struct tls_transport {
    struct chopin__transport t; /* first: conn->transport points here */
    struct chopin__tls_session s;
    uint64_t handshake_deadline;
    uint8_t notify_sent; /* close_notify queued */
    uint8_t ktls;        /* the directions the kernel has */
    uint8_t ktls_want;   /* the directions it will take once nothing is left above it */
};

/* Per worker thread: decrypted bytes on their way up, plaintext gathered into a record. */
static __thread char scratch[RECORD_MAX];

static struct tls_transport *of(const struct chopin__conn *c) {
    return (struct tls_transport *)c->transport;
}

/* The kernel's record layer, where it has one: the socket takes it now, the keys follow
 * (ktls_move). Without it (or for TLS 1.2) the records stay in user space. */
static void ktls_begin(struct chopin__conn *c, struct tls_transport *tt) {
    if (!tt->s.keys) {
        if (c->fd >= 0) /* (a test's connection has no socket) */
            chopin__ktls_fallback();
        return;
    }
    if (SSL_version(tt->s.ssl) != TLS1_3_VERSION || chopin__ktls_attach(c->fd) < 0) {
        chopin__tls_session_drop_keys(&tt->s);
        return;
    }
    tt->ktls_want = KTLS_TX | (c->engine->reads_ahead ? 0 : KTLS_RX);
}

/* Hands direction `dir` to the kernel if nothing of it is left above the socket; gives up
 * on it when the kernel refuses (the connection goes on in user space). */
static void ktls_move(struct chopin__conn *c, struct tls_transport *tt, unsigned dir) {
    if (tt->s.state != CHOPIN__TLS_OPEN || (dir == KTLS_TX && chopin__tls_session_pending(&tt->s)))
        return;
    struct chopin__ktls_crypto ci;
    int rc = chopin__ktls_crypto(&tt->s, dir == KTLS_TX, &ci);
    if (rc == -EAGAIN)
        return;
    if (rc == 0)
        rc = chopin__ktls_install(c->fd, dir == KTLS_TX, &ci);
    OPENSSL_cleanse(&ci, sizeof ci);
    tt->ktls_want &= (uint8_t)~dir;
    if (rc == 0) {
        tt->ktls |= (uint8_t)dir;
        if (dir == KTLS_TX)
            chopin__tls_ctx_count(tt->s.ctx, CHOPIN__TLS_COUNT_KTLS);
    }
    if (!tt->ktls_want)
        chopin__tls_session_drop_keys(&tt->s);
}

static void handshake_done(struct chopin__conn *c, struct tls_transport *tt) {
    ktls_begin(c, tt);
    tt->handshake_deadline = 0;
    chopin__conn_arm(c, c->engine->now_ms + c->engine->cfg->opt.keepalive_timeout_ms);
    unsigned len;
    const unsigned char *proto = chopin__tls_session_alpn(&tt->s, &len);
    if (proto && len == 2 && memcmp(proto, "h2", 2) == 0 && chopin__h2_start(c) < 0)
        chopin__conn_close(c); /* it chose HTTP/2: HTTP/1.1 would be a protocol error */
}

/* Plain HTTP or a failed handshake: what is owed (the 400, an alert) goes out, then the
 * connection closes (tls_on_sent); with nothing owed it closes now. */
static void finish_failed(struct chopin__conn *c, struct tls_transport *tt) {
    c->keep_open = 0;
    if (chopin__tls_session_pending(&tt->s) == 0)
        chopin__conn_close(c);
}

/* The handshake has just finished (in input, or in the read that followed it). */
static void maybe_opened(struct chopin__conn *c, struct tls_transport *tt) {
    if (tt->handshake_deadline && tt->s.state == CHOPIN__TLS_OPEN)
        handshake_done(c, tt);
}

static void tls_on_input(struct chopin__conn *c, char *data, size_t n) {
    struct tls_transport *tt = of(c);
    if (tt->ktls & KTLS_RX) { /* the kernel decrypted it */
        chopin__conn_deliver(c, data, n);
        return;
    }
    chopin__tls_session_input(&tt->s, data, n);
    ssize_t got;
    while (!(c->ask & CHOPIN__CONN_CLOSE) &&
           (got = chopin__tls_session_read(&tt->s, scratch, sizeof scratch)) > 0) {
        maybe_opened(c, tt);
        chopin__conn_deliver(c, scratch, (size_t)got);
        if (!chopin__tls_session_more(&tt->s))
            break; /* (a read that would only find nothing costs a fifth of a record's) */
    }
    chopin__tls_session_input_done(&tt->s);
    maybe_opened(c, tt);
    if (tt->s.state == CHOPIN__TLS_PLAIN || tt->s.state == CHOPIN__TLS_FAILED)
        finish_failed(c, tt);
    else if (tt->s.state == CHOPIN__TLS_CLOSED && !c->eof)
        chopin__conn_on_eof(c); /* close_notify: the peer will send nothing more */
    else if ((tt->ktls_want & KTLS_RX) && !(c->ask & CHOPIN__CONN_CLOSE))
        ktls_move(c, tt, KTLS_RX);
}

/* Encrypts up to PLAN_BUDGET bytes of the protocol's output. Small pieces are gathered so
 * that a head and its body share a record. */
static void encrypt_output(struct chopin__conn *c, struct tls_transport *tt) {
    size_t done = 0;
    struct chopin__plan pp;
    while (done < PLAN_BUDGET && tt->s.state == CHOPIN__TLS_OPEN &&
           chopin__conn_plain_plan(c, &pp) > 0) {
        size_t used = 0, staged = 0;
        if (pp.iovcnt == 0) { /* a file range: one record's worth, read where it lies */
            size_t want = pp.file_len < RECORD_MAX ? (size_t)pp.file_len : RECORD_MAX;
            ssize_t r = pread(pp.file_fd, scratch, want, (off_t)pp.file_off);
            if (r <= 0) {
                chopin__conn_on_file_short(c);
                return;
            }
            staged = used = (size_t)r;
        } else {
            for (int i = 0; i < pp.iovcnt && staged < RECORD_MAX; i++) {
                size_t k = pp.iov[i].iov_len;
                if (k > RECORD_MAX - staged)
                    k = RECORD_MAX - staged;
                memcpy(scratch + staged, pp.iov[i].iov_base, k);
                staged += k;
                if (k < pp.iov[i].iov_len)
                    break;
            }
            used = staged;
        }
        if (chopin__tls_session_write(&tt->s, scratch, staged) < 0) {
            chopin__conn_close(c);
            return;
        }
        chopin__conn_plain_sent(c, used);
        done += used;
    }
}

/* The kernel builds the records: the plaintext plan as it is (file ranges by sendfile);
 * close_notify is an alert record the kernel sends for us. */
static size_t ktls_out_plan(struct chopin__conn *c, struct tls_transport *tt,
                            struct chopin__plan *p) {
    size_t n = chopin__conn_plain_plan(c, p);
    if (n == 0 && !c->out && (c->ask & CHOPIN__CONN_SHUTDOWN) && !tt->notify_sent) {
        tt->notify_sent = 1;
        chopin__ktls_close_notify(c->fd);
    }
    return n;
}

static size_t tls_out_plan(struct chopin__conn *c, struct chopin__plan *p) {
    struct tls_transport *tt = of(c);
    const char *out = NULL;
    size_t n = 0;
    if (tt->ktls_want & KTLS_TX)
        ktls_move(c, tt, KTLS_TX);
    if (tt->ktls & KTLS_TX)
        return ktls_out_plan(c, tt, p);
    /* A closing connection sends nothing more, as the plain path: a backend that met a
     * reset would otherwise be handed the same records again (an evicted one's last
     * answer, its farewell, still goes out). */
    if (!(c->ask & CHOPIN__CONN_CLOSE) || c->farewell) {
        /* The answer's records join those waiting (the handshake's tickets: one send for
         * both), while less than a plan's worth waits: the socket's pace still bounds
         * how much plaintext is taken. */
        if (chopin__tls_session_pending(&tt->s) < PLAN_BUDGET) {
            encrypt_output(c, tt);
            if (!c->out && (c->ask & CHOPIN__CONN_SHUTDOWN) && !tt->notify_sent) {
                tt->notify_sent = 1; /* close_notify before the half-close (RFC 8446 6.1) */
                chopin__tls_session_shutdown(&tt->s);
            }
        }
        n = chopin__tls_session_out(&tt->s, &out);
    }
    p->iovcnt = n ? 1 : 0;
    p->iov[0].iov_base = (void *)out;
    p->iov[0].iov_len = n;
    p->file_len = 0;
    p->more = 0;
    p->bytes = n;
    return n;
}

static void tls_on_sent(struct chopin__conn *c, size_t n) {
    struct tls_transport *tt = of(c);
    if (tt->ktls & KTLS_TX) {
        chopin__conn_plain_sent(c, n);
        return;
    }
    chopin__tls_session_out_done(&tt->s, n);
    if (chopin__tls_session_pending(&tt->s) == 0 && tt->s.state >= CHOPIN__TLS_PLAIN)
        chopin__conn_close(c); /* the 400 or the alert is out */
}

static int tls_has_output(const struct chopin__conn *c) {
    const struct tls_transport *tt = of(c);
    if (tt->ktls & KTLS_TX) /* what OpenSSL might still write is never sent */
        return (c->ask & CHOPIN__CONN_SHUTDOWN) && !tt->notify_sent;
    return chopin__tls_session_pending(&tt->s) != 0 ||
           ((c->ask & CHOPIN__CONN_SHUTDOWN) && !tt->notify_sent && tt->s.state == CHOPIN__TLS_OPEN);
}

static uint64_t tls_deadline(const struct chopin__conn *c) { return of(c)->handshake_deadline; }

static void tls_release(struct chopin__conn *c) {
    struct tls_transport *tt = of(c);
    if (tt->handshake_deadline && c->engine->now_ms >= tt->handshake_deadline &&
        tt->s.state < CHOPIN__TLS_OPEN)
        chopin__tls_ctx_count(tt->s.ctx, CHOPIN__TLS_COUNT_TIMEOUT);
    chopin__tls_session_release(&tt->s);
    free(tt);
}

static const struct chopin__transport_ops tls_ops = {
    .name = "tls",
    .on_input = tls_on_input,
    .out_plan = tls_out_plan,
    .on_sent = tls_on_sent,
    .has_output = tls_has_output,
    .deadline = tls_deadline,
    .release = tls_release,
};

int chopin__tls_transport_install(struct chopin__conn *c, struct chopin__tls_ctx *ctx) {
    struct tls_transport *tt = calloc(1, sizeof *tt);
    if (!tt)
        return -ENOMEM;
    if (chopin__tls_session_init(&tt->s, ctx) < 0) {
        free(tt);
        return -ENOMEM;
    }
    if (c->engine->slab.used > KEEP_BUFFERS_CONNS)
        chopin__tls_session_lean(&tt->s);
    tt->t.ops = &tls_ops;
    tt->handshake_deadline = c->engine->now_ms + chopin__tls_ctx_handshake_timeout_ms(ctx);
    chopin__conn_set_transport(c, &tt->t);
    return 0;
}

const struct chopin__tls_session *chopin__tls_transport_session(const struct chopin__conn *c) {
    return c->transport && c->transport->ops == &tls_ops ? &of(c)->s : NULL;
}

int chopin__tls_server_ctx(const chopin_options *opt, struct chopin__tls_ctx **out) {
    struct chopin__tls_settings set;
    char err[512];
    int rc = chopin__tls_settings_resolve(&set, opt);
    if (rc == 0 && (rc = chopin__tls_ctx_new(out, &set, err, sizeof err)) < 0)
        chopin_log(CHOPIN_LOG_ERROR, "chopin: TLS: %s", err);
    chopin__tls_settings_free(&set);
    return rc;
}

int chopin__tls_server_reload(struct chopin__tls_ctx *ctx) {
    char err[512];
    int rc = chopin__tls_ctx_reload(ctx, err, sizeof err);
    if (rc < 0)
        chopin_log(CHOPIN_LOG_ERROR, "chopin: TLS reload refused, the old certificates stay: %s", err);
    return rc < 0 ? -EINVAL : 0;
}

const char *chopin__tls_conn_subject(const struct chopin__conn *c) {
    const struct chopin__tls_session *s = chopin__tls_transport_session(c);
    return s && s->subject ? s->subject : NULL;
}

int chopin__tls_conn_is_tls(const struct chopin__conn *c) {
    return chopin__tls_transport_session(c) != NULL;
}
