/* SPDX-License-Identifier: MIT */
/*
 * The server of bench/later.sh: the same 13-byte answer given five ways, so that the cost
 * of answering later is what differs (issue 14, Benchmarks):
 *   /sync    answered before the handler returns (the plain path)
 *   /now     deferred, finished before the handler returns
 *   /timer   deferred, finished from a 0 ms timer (the worker's own thread, next turn)
 *   /post    deferred, finished from a function the handler posts to its own worker
 *   /pool    deferred, finished after a round trip through the offload pool (no work)
 *   /sleep?ms=N  deferred, finished from an N ms timer (10,000 connections waiting)
 * and the todo service's GET /todos/:id two ways (issue 14, point 5: should its SQLite
 * statements run on the offload pool?), on a database of 1,000 todos:
 *   /todo-worker/:id  the statement runs on the worker (examples/todo.c's way)
 *   /todo-pool/:id    it runs on a pool thread (one connection per thread), the JSON is
 *                     written back on the worker
 * Usage: later_server PORT [DB_PATH]   (CHOPIN_* variables as usual)
 */
#include <chopin.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char HELLO[] = "Hello, World!";

static void hello(chopin_res *res) {
    chopin_res_static(res, 200, "text/plain", HELLO, sizeof HELLO - 1);
}

static void finish(chopin_exchange x) {
    chopin_res *res = chopin_exchange_res(x);
    if (res) {
        hello(res);
        chopin_exchange_finish(x);
    }
}

static void sync_route(chopin_req *req, chopin_res *res, void *data) { hello(res); }

static void now_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_exchange x;
    if (chopin_defer(req, res, &x) == 0)
        finish(x);
}

static void timer_fired(chopin_worker *w, chopin_timer t, void *arg) {
    chopin_exchange *x = arg;
    finish(*x);
    free(x);
}

static void defer_until(chopin_req *req, chopin_res *res, uint64_t ms) {
    chopin_exchange *x = malloc(sizeof *x);
    if (!x || chopin_defer(req, res, x) < 0) {
        free(x);
        return;
    }
    if (!chopin_timer_start(chopin_req_worker(req), ms, 0, timer_fired, x)) {
        finish(*x);
        free(x);
    }
}

static void timer_route(chopin_req *req, chopin_res *res, void *data) { defer_until(req, res, 0); }

static void sleep_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_str ms = chopin_req_query(req, "ms");
    defer_until(req, res, ms.ptr ? strtoull(ms.ptr, NULL, 10) : 100);
}

static void posted(chopin_worker *w, void *arg) {
    chopin_exchange *x = arg;
    finish(*x);
    free(x);
}

static void post_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_exchange *x = malloc(sizeof *x);
    if (!x || chopin_defer(req, res, x) < 0) {
        free(x);
        return;
    }
    if (chopin_worker_post(chopin_req_worker(req), posted, x) < 0) {
        finish(*x);
        free(x);
    }
}

static void no_work(void *arg) {}
static void pool_done(chopin_exchange x, void *arg) { finish(x); }

static void pool_route(chopin_req *req, chopin_res *res, void *data) {
    chopin_offload(req, res, no_work, pool_done, NULL);
}

/* ----- GET /todos/:id on the worker and on the pool ----------------------------------- */

static const char *db_path;
static const char SELECT[] = "SELECT id, title, done, created_at FROM todos WHERE id = ?";

struct todo_conn {
    sqlite3 *db;
    sqlite3_stmt *select;
};

static struct todo_conn *todo_open(void) {
    struct todo_conn *c = calloc(1, sizeof *c);
    if (c && (sqlite3_open_v2(db_path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                              NULL) != SQLITE_OK ||
              sqlite3_prepare_v3(c->db, SELECT, -1, SQLITE_PREPARE_PERSISTENT, &c->select,
                                 NULL) != SQLITE_OK)) {
        fprintf(stderr, "later_server: %s: %s\n", db_path, sqlite3_errmsg(c->db));
        exit(1);
    }
    return c;
}

static void *worker_init(int id, void *arg) { return todo_open(); }

static void worker_fini(int id, void *data, void *arg) {
    struct todo_conn *c = data;
    sqlite3_finalize(c->select);
    sqlite3_close(c->db);
    free(c);
}

struct todo_row {
    long long id, created_at;
    int found, done;
    char title[128];
};

static void todo_read(struct todo_conn *c, struct todo_row *row) {
    sqlite3_bind_int64(c->select, 1, row->id);
    row->found = sqlite3_step(c->select) == SQLITE_ROW;
    if (row->found) {
        snprintf(row->title, sizeof row->title, "%s", sqlite3_column_text(c->select, 1));
        row->done = sqlite3_column_int(c->select, 2);
        row->created_at = sqlite3_column_int64(c->select, 3);
    }
    sqlite3_reset(c->select);
}

static void todo_answer(chopin_res *res, const struct todo_row *row) {
    if (!row->found) {
        chopin_res_error(res, 404, NULL);
        return;
    }
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "id");
    chopin_json_int(j, row->id);
    chopin_json_key(j, "title");
    chopin_json_str(j, row->title);
    chopin_json_key(j, "done");
    chopin_json_bool(j, row->done);
    chopin_json_key(j, "created_at");
    chopin_json_int(j, row->created_at);
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

static long long param_id(chopin_req *req) {
    chopin_str id = chopin_req_param(req, "id");
    return id.ptr ? strtoll(id.ptr, NULL, 10) : 0;
}

static void todo_worker_route(chopin_req *req, chopin_res *res, void *data) {
    struct todo_row row = {.id = param_id(req)};
    todo_read(chopin_req_worker_data(req), &row);
    todo_answer(res, &row);
}

/* A pool thread's own connection, opened on its first job (kept until the process ends:
 * the pool has no per-thread hooks). */
static __thread struct todo_conn *pool_conn;

static void todo_pool_work(void *arg) {
    if (!pool_conn)
        pool_conn = todo_open();
    todo_read(pool_conn, arg);
}

static void todo_pool_done(chopin_exchange x, void *arg) {
    chopin_res *res = chopin_exchange_res(x);
    if (res) {
        todo_answer(res, arg);
        chopin_exchange_finish(x);
    }
    free(arg);
}

static void todo_pool_route(chopin_req *req, chopin_res *res, void *data) {
    struct todo_row *row = calloc(1, sizeof *row);
    if (!row) {
        chopin_res_error(res, 503, NULL);
        return;
    }
    row->id = param_id(req);
    if (chopin_offload(req, res, todo_pool_work, todo_pool_done, row) < 0)
        free(row);
}

/* A fresh database of 1,000 todos, as the todo service's schema has them. */
static void make_db(void) {
    sqlite3 *db;
    unlink(db_path);
    if (sqlite3_open(db_path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
                         "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
                         "done INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
                         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                         "WHERE i < 1000) INSERT INTO todos (title, done, created_at) "
                         "SELECT 'todo number ' || i, i % 2, 1700000000 + i FROM n;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "later_server: %s: %s\n", db_path, sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_close(db);
}

int main(int argc, char **argv) {
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%s", argc > 1 ? argv[1] : "8080");
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/sync", sync_route, NULL);
    chopin_router_get(r, "/now", now_route, NULL);
    chopin_router_get(r, "/timer", timer_route, NULL);
    chopin_router_get(r, "/post", post_route, NULL);
    chopin_router_get(r, "/pool", pool_route, NULL);
    chopin_router_get(r, "/sleep", sleep_route, NULL);
    chopin_router_get(r, "/todo-worker/:id", todo_worker_route, NULL);
    chopin_router_get(r, "/todo-pool/:id", todo_pool_route, NULL);
    db_path = argc > 2 ? argv[2] : "/tmp/later_server.db";
    make_db();
    chopin_options o = chopin_options_default();
    o.worker_init = worker_init;
    o.worker_fini = worker_fini;
    int rc = chopin_serve(r, address, &o);
    chopin_router_free(r);
    return rc < 0 ? 1 : 0;
}
