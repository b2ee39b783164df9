/* SPDX-License-Identifier: MIT */
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
 *  directory ($TMPDIR/chopin-todo-XXXXXX). Returns a static buffer, or NULL after printing
 *  why. */
const char *todo_default_db_path(void);

/** Removes the temporary directory todo_default_db_path() created, with the database
 *  files in it; does nothing when it created none (CHOPIN_TODO_DB names the file). */
void todo_remove_temp_db(void);

/** $PORT checked (digits only, 0 to 65535; "8080" when unset), or NULL after printing
 *  why it is not a port: " 2", "+2" and "99999" are not. */
const char *todo_env_port(void);

#endif
