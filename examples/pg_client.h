/* SPDX-License-Identifier: MIT */
/*
 * A small asynchronous PostgreSQL client for one Chopin worker: one libpq connection in
 * non-blocking pipeline mode, driven by the worker's descriptor watching
 * (chopin_worker_watch), so queries never block the worker's loop.
 *
 * Queries name statements prepared on every connection. They are sent as soon as they
 * are made (pipeline mode: many in flight on one connection, answered in order), each
 * followed by its own Sync so that one failing query does not abort the next ones.
 *
 * When the connection is lost (or cannot be made) every query waiting on it is answered
 * "unavailable" (a NULL result), new queries are refused until it is back, and the client
 * reconnects in the background on a timer with a growing delay.
 *
 * Everything here runs on the worker's thread; a client is never shared.
 */
#ifndef CHOPIN_EXAMPLE_PG_CLIENT_H
#define CHOPIN_EXAMPLE_PG_CLIENT_H

#include <chopin.h>
#include <libpq-fe.h>

/* A statement prepared on each connection; queries name it by its index. */
struct pg_statement {
    const char *name;
    const char *sql;
};

struct pg_client;
struct pg_query;

/* The result of a query, valid only during the call; NULL when the database is
 * unavailable (not connected, the connection was lost, the server is shutting down). */
typedef void (*pg_result_fn)(const PGresult *r, void *arg);

/** A client for worker `w` that starts connecting at once. `conninfo` and `stmts` (an
 *  array of `nstmts`) must outlive it. NULL when out of memory. */
struct pg_client *pg_client_new(chopin_worker *w, const char *conninfo,
                                const struct pg_statement *stmts, int nstmts);

/** Closes the connection and frees the client; queries still waiting are dropped
 *  without their callbacks. On the worker's thread (worker_fini). */
void pg_client_free(struct pg_client *c);

/** Nonzero when a query made now will be sent: connected, or connecting (queries then
 *  wait for the connection). Zero while waiting to reconnect. */
int pg_client_available(const struct pg_client *c);

/** Runs statement `stmt` with `nparams` text parameters (NULL: SQL NULL; copied) and
 *  calls fn(result, arg) once when it completes, never from within this call. Returns the
 *  query, or NULL when the client is unavailable or out of memory (fn will not run). */
struct pg_query *pg_client_query(struct pg_client *c, int stmt, const char *const *params,
                                 int nparams, pg_result_fn fn, void *arg);

/** The query's callback will not run: its result, when it comes, is discarded. */
void pg_query_forget(struct pg_query *q);

#endif
