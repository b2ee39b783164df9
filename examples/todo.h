/*
 * The todo service: a REST API on SQLite (one connection per worker, WAL mode, prepared
 * statements). Used by the demo server under /todos and by examples/todo_app.c.
 */
#ifndef CHOPIN_EXAMPLE_TODO_H
#define CHOPIN_EXAMPLE_TODO_H

#include <chopin.h>

/** Creates the database file and its schema if needed (call once, before serving).
 *  Returns 0, or -1 after printing why. */
int todo_open_schema(const char *db_path);

/** Registers the routes under `prefix` ("/todos"): POST prefix, GET prefix (paging with
 *  ?limit=&offset=), GET/PUT/PATCH/DELETE prefix/:id. Returns 0 or a chopin error. */
int todo_mount(chopin_router *r, const char *prefix);

/** Worker hooks for chopin_options: open and close the worker's own connection.
 *  `arg` is the database path. */
void *todo_worker_init(int worker_id, void *arg);
void todo_worker_fini(int worker_id, void *worker_data, void *arg);

/** The default database path: $CHOPIN_TODO_DB, or a file in a fresh temporary
 *  directory. Returns a static buffer. */
const char *todo_default_db_path(void);

#endif
