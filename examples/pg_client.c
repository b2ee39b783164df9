/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous PostgreSQL client of pg_client.h.
 *
 * States: CONNECTING (PQconnectPoll says which readiness it waits for; queries made
 * meanwhile wait in `unsent`), UP (pipeline mode; each query is sent at once and waits in
 * `sent` for its results), DOWN (no connection; a timer starts the next attempt, queries
 * are refused). Losing the connection in any state answers every query "unavailable" and
 * goes DOWN.
 *
 * In pipeline mode one query's results arrive as: its result(s), a NULL, then the
 * PGRES_PIPELINE_SYNC of the Sync sent after it. The statements are prepared by one
 * more entry in `sent` (no callback) sent first on each connection: a failure there
 * drops the connection, to retry later.
 */
#include "pg_client.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_FIRST_MS 50
#define RETRY_MAX_MS 1000

enum pg_state { PG_DOWN, PG_CONNECTING, PG_UP };

struct pg_query {
    struct pg_query *next;
    pg_result_fn fn; /* NULL: forgotten (or the setup entry) */
    void *arg;
    PGresult *result; /* the first result, or the first error */
    int stmt, nparams, setup;
    const char *params[]; /* strings copied after the array */
};

struct pg_list {
    struct pg_query *head, *tail;
};

struct pg_client {
    chopin_worker *w;
    const char *conninfo;
    const struct pg_statement *stmts;
    int nstmts;
    enum pg_state state;
    PGconn *conn;
    int fd;           /* watched descriptor, -1: none */
    unsigned watched; /* the events it is watched for */
    chopin_timer retry;  /* the next connection attempt */
    chopin_timer broken; /* a send failed: drop the connection outside the caller's call */
    uint64_t retry_ms;
    int said_down; /* the outage was reported */
    struct pg_list unsent, sent;
};

static void pg_connect(struct pg_client *c);

/* ---- queries and their lists ---------------------------------------------------------- */

static void list_push(struct pg_list *l, struct pg_query *q)
{
    q->next = NULL;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
}

static struct pg_query *list_pop(struct pg_list *l)
{
    struct pg_query *q = l->head;
    if (q) {
        l->head = q->next;
        if (!l->head)
            l->tail = NULL;
    }
    return q;
}

static struct pg_query *query_new(int stmt, const char *const *params, int nparams,
                                  pg_result_fn fn, void *arg)
{
    size_t bytes = 0;
    for (int i = 0; i < nparams; i++)
        bytes += params[i] ? strlen(params[i]) + 1 : 0;
    struct pg_query *q = malloc(sizeof *q + (size_t)nparams * sizeof q->params[0] + bytes);
    if (!q)
        return NULL;
    *q = (struct pg_query){.fn = fn, .arg = arg, .stmt = stmt, .nparams = nparams};
    char *copy = (char *)&q->params[nparams];
    for (int i = 0; i < nparams; i++) {
        q->params[i] = params[i] ? copy : NULL;
        if (params[i])
            copy = stpcpy(copy, params[i]) + 1;
    }
    return q;
}

/* Runs the query's callback, if any, with `r`, then frees the query. */
static void query_complete(struct pg_query *q, const PGresult *r)
{
    if (q->fn)
        q->fn(r, q->arg);
    PQclear(q->result);
    free(q);
}

/* An error that says the server is going away (or never came): the caller's "try again
 * later", not the query's fault. SQLSTATE class 08 is the connection exceptions, 57P01-03
 * the shutdowns and "cannot connect now". */
static int server_unavailable(const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!state)
        return PQresultStatus(r) == PGRES_FATAL_ERROR; /* libpq's own: the connection */
    return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
           strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

/* ---- the descriptor --------------------------------------------------------------------- */

static void on_ready(chopin_worker *w, int fd, unsigned events, void *arg);

static void unwatch(struct pg_client *c)
{
    if (c->fd >= 0)
        chopin_worker_unwatch(c->w, c->fd);
    c->fd = -1;
    c->watched = 0;
}

/* Watches libpq's current socket for `events`; returns -1 when that is impossible. */
static int watch(struct pg_client *c, unsigned events)
{
    int fd = PQsocket(c->conn);
    if (fd != c->fd)
        unwatch(c); /* libpq may change sockets while connecting */
    if (fd < 0)
        return -1;
    if (fd == c->fd && events == c->watched)
        return 0;
    if (chopin_worker_watch(c->w, fd, events, on_ready, c) < 0)
        return -1;
    c->fd = fd;
    c->watched = events;
    return 0;
}

/* ---- connection lifetime ------------------------------------------------------------------ */

static void on_retry(chopin_worker *w, chopin_timer t, void *arg)
{
    struct pg_client *c = arg;
    c->retry = 0;
    pg_connect(c);
}

/* Drops the connection: every query is answered unavailable, the next attempt is timed.
 * Said once per outage (the connection lost, or the first attempt that failed), not at
 * every attempt. */
static void go_down(struct pg_client *c, const char *why)
{
    if (!c->said_down)
        fprintf(stderr, "pg_client: worker %d: database unavailable (retrying until it is "
                        "back): %s\n", chopin_worker_id(c->w), why);
    c->said_down = 1;
    unwatch(c);
    PQfinish(c->conn);
    c->conn = NULL;
    c->state = PG_DOWN;
    /* The callbacks may make queries: they are refused now that the state is DOWN. */
    struct pg_query *q;
    while ((q = list_pop(&c->sent)) || (q = list_pop(&c->unsent)))
        query_complete(q, NULL);
    if (!c->retry)
        c->retry = chopin_timer_start(c->w, c->retry_ms, 0, on_retry, c);
    c->retry_ms = c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2;
}

/* libpq's message on one line: its lines joined, its trailing newline gone. */
static const char *one_line(const char *msg, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *p = msg; *p && n + 1 < cap; p++) {
        int space = *p == '\n' || *p == '\t';
        if (!space || (n > 0 && buf[n - 1] != ' '))
            buf[n++] = space ? ' ' : *p;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

static const char *conn_error(struct pg_client *c, char *buf, size_t cap)
{
    return one_line(c->conn ? PQerrorMessage(c->conn) : "out of memory", buf, cap);
}

static void fail(struct pg_client *c)
{
    char msg[256];
    go_down(c, conn_error(c, msg, sizeof msg));
}

/* Sends what libpq holds; watches for writability while some is left. */
static int flush(struct pg_client *c)
{
    int rc = PQflush(c->conn);
    if (rc < 0)
        return -1;
    return watch(c, CHOPIN_READABLE | (rc ? CHOPIN_WRITABLE : 0));
}

static int send_query(struct pg_client *c, struct pg_query *q)
{
    const struct pg_statement *s = &c->stmts[q->stmt];
    if (!PQsendQueryPrepared(c->conn, s->name, q->nparams, q->params, NULL, NULL, 0) ||
        !PQpipelineSync(c->conn))
        return -1;
    list_push(&c->sent, q);
    return 0;
}

/* Sends the statements to prepare, one entry in `sent` answered by their Sync. */
static int send_setup(struct pg_client *c)
{
    struct pg_query *setup = query_new(0, NULL, 0, NULL, NULL);
    if (!setup)
        return -1;
    setup->setup = 1;
    for (int i = 0; i < c->nstmts; i++)
        if (!PQsendPrepare(c->conn, c->stmts[i].name, c->stmts[i].sql, 0, NULL))
            goto failed;
    if (!PQpipelineSync(c->conn))
        goto failed;
    list_push(&c->sent, setup);
    return 0;
failed:
    free(setup);
    return -1;
}

/* Connected: pipeline mode, the statements prepared, the waiting queries sent. */
static void go_up(struct pg_client *c)
{
    if (PQsetnonblocking(c->conn, 1) != 0 || !PQenterPipelineMode(c->conn) ||
        send_setup(c) < 0) {
        fail(c);
        return;
    }
    c->state = PG_UP;
    struct pg_query *q;
    while ((q = list_pop(&c->unsent))) {
        if (!q->fn) {
            free(q); /* forgotten before it could be sent */
        } else if (send_query(c, q) < 0) {
            list_push(&c->unsent, q); /* answered with the others */
            fail(c);
            return;
        }
    }
    if (flush(c) < 0)
        fail(c);
}

static void continue_connecting(struct pg_client *c)
{
    switch (PQconnectPoll(c->conn)) {
    case PGRES_POLLING_READING:
        if (watch(c, CHOPIN_READABLE) < 0)
            fail(c);
        break;
    case PGRES_POLLING_WRITING:
        if (watch(c, CHOPIN_WRITABLE) < 0)
            fail(c);
        break;
    case PGRES_POLLING_OK:
        go_up(c);
        break;
    default:
        fail(c);
        break;
    }
}

static void pg_connect(struct pg_client *c)
{
    c->state = PG_CONNECTING;
    c->conn = PQconnectStart(c->conninfo);
    if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
        fail(c);
        return;
    }
    /* Before the first poll libpq waits for writability (the socket's connect). */
    if (watch(c, CHOPIN_WRITABLE) < 0)
        fail(c);
}

/* ---- results ------------------------------------------------------------------------------- */

/* The setup entry completed: the statements are prepared, or the connection is useless. */
static int setup_done(struct pg_client *c, struct pg_query *q)
{
    int ok = !q->result || PQresultStatus(q->result) == PGRES_COMMAND_OK;
    if (ok) {
        c->retry_ms = RETRY_FIRST_MS;
        if (c->said_down)
            fprintf(stderr, "pg_client: worker %d: database back\n", chopin_worker_id(c->w));
        c->said_down = 0;
    } else {
        char why[400], msg[512];
        snprintf(msg, sizeof msg, "cannot prepare the statements: %s",
                 one_line(PQresultErrorMessage(q->result), why, sizeof why));
        go_down(c, msg);
    }
    PQclear(q->result);
    free(q);
    return ok ? 0 : -1;
}

/* Keeps the first result of the query, or its first error (the one that aborted it). */
static void keep_result(struct pg_query *q, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    int error = st == PGRES_FATAL_ERROR;
    int kept_error = q->result && PQresultStatus(q->result) == PGRES_FATAL_ERROR;
    if (!q->result || (error && !kept_error)) {
        PQclear(q->result);
        q->result = r;
    } else {
        PQclear(r);
    }
}

/* Reads every result that has arrived and completes the queries they end. Returns -1
 * when the connection is gone (the client is DOWN then). */
static int read_results(struct pg_client *c)
{
    int nulls = 0;
    while (c->state == PG_UP && c->sent.head && !PQisBusy(c->conn)) {
        PGresult *r = PQgetResult(c->conn);
        if (!r) {
            /* The end of one query's results; two in a row: libpq has nothing more. */
            if (++nulls > 1)
                break;
            continue;
        }
        nulls = 0;
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            keep_result(c->sent.head, r);
            continue;
        }
        PQclear(r);
        struct pg_query *q = list_pop(&c->sent);
        if (q->setup) {
            if (setup_done(c, q) < 0)
                return -1;
        } else if (q->result && server_unavailable(q->result)) {
            char why[256];
            one_line(PQresultErrorMessage(q->result), why, sizeof why);
            list_push(&c->sent, q); /* answered unavailable with the others */
            go_down(c, why);
            return -1;
        } else {
            query_complete(q, q->result);
        }
    }
    return c->state == PG_UP ? 0 : -1;
}

static void on_ready(chopin_worker *w, int fd, unsigned events, void *arg)
{
    struct pg_client *c = arg;
    if (c->state == PG_CONNECTING) {
        continue_connecting(c);
        return;
    }
    if (c->state != PG_UP)
        return;
    if ((events & CHOPIN_WRITABLE) && flush(c) < 0) {
        fail(c);
        return;
    }
    if (events & CHOPIN_READABLE) {
        if (!PQconsumeInput(c->conn)) {
            fail(c);
            return;
        }
        if (read_results(c) < 0)
            return;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD)
        fail(c);
}

static void on_broken(chopin_worker *w, chopin_timer t, void *arg)
{
    struct pg_client *c = arg;
    c->broken = 0;
    if (c->state == PG_UP)
        fail(c);
}

/* ---- the public functions -------------------------------------------------------------------- */

struct pg_client *pg_client_new(chopin_worker *w, const char *conninfo,
                                const struct pg_statement *stmts, int nstmts)
{
    struct pg_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = (struct pg_client){.w = w, .conninfo = conninfo, .stmts = stmts, .nstmts = nstmts,
                            .fd = -1, .retry_ms = RETRY_FIRST_MS};
    pg_connect(c);
    return c;
}

void pg_client_free(struct pg_client *c)
{
    if (!c)
        return;
    unwatch(c);
    if (c->retry)
        chopin_timer_stop(c->w, c->retry);
    if (c->broken)
        chopin_timer_stop(c->w, c->broken);
    PQfinish(c->conn);
    struct pg_query *q;
    while ((q = list_pop(&c->sent)) || (q = list_pop(&c->unsent))) {
        PQclear(q->result);
        free(q);
    }
    free(c);
}

int pg_client_available(const struct pg_client *c)
{
    return c->state != PG_DOWN;
}

struct pg_query *pg_client_query(struct pg_client *c, int stmt, const char *const *params,
                                 int nparams, pg_result_fn fn, void *arg)
{
    if (c->state == PG_DOWN || stmt < 0 || stmt >= c->nstmts)
        return NULL;
    struct pg_query *q = query_new(stmt, params, nparams, fn, arg);
    if (!q)
        return NULL;
    if (c->state == PG_CONNECTING) {
        list_push(&c->unsent, q);
        return q;
    }
    /* A failed send means a broken connection. This query is refused now; the others are
     * answered from a timer, since their callbacks must not run inside this call. */
    if (send_query(c, q) < 0 || flush(c) < 0) {
        if (c->sent.tail == q)
            q->fn = NULL; /* sent, but its caller is told it was not */
        else
            free(q);
        if (!c->broken)
            c->broken = chopin_timer_start(c->w, 0, 0, on_broken, c);
        return NULL;
    }
    return q;
}

void pg_query_forget(struct pg_query *q)
{
    q->fn = NULL;
}
