/* SPDX-License-Identifier: MIT */
/*
 * The todo service: a REST API on SQLite, JSON in (jansson) and out (the library's writer).
 *
 *   POST   {prefix}      {"title": "...", "done": false}   201 + the todo + Location
 *   GET    {prefix}      ?limit=1..100 (20) &offset=0..     200 {"items","limit","offset","total"}
 *   GET    {prefix}/:id                                    200 the todo
 *   PUT    {prefix}/:id  {"title": "...", "done": true}    200 the todo (full replace)
 *   PATCH  {prefix}/:id  {"done": true}                    200 the todo (given fields only)
 *   DELETE {prefix}/:id                                    204
 *
 * A todo is {"id": 1, "title": "...", "done": false, "created_at": <unix seconds>}. Ids
 * are never reused, even after the newest todo is deleted (see SCHEMA_SQL). Lists are in
 * id order.
 *
 * Input rules (every violation is a 400 with {"error": "..."}):
 * - The body must be one JSON object; duplicate keys make it invalid JSON. Its only fields
 *   are "title" and "done": any other field, "id" and "created_at" included, is refused,
 *   so neither a typo ("titel") nor an attempt to set a read-only field passes silently.
 * - "title" is a string with at least one non-space character and at most TODO_TITLE_MAX
 *   bytes: a list page is built in the request arena, and 100 titles escaped at worst 6
 *   bytes per byte stay well under its 1 MiB headroom. It is required by POST and PUT. "done" is a
 *   boolean (not 0/1), optional: POST and PUT default it to false, PATCH keeps the stored
 *   value. PATCH with {} changes nothing and answers the todo.
 * - ":id" is a decimal positive integer that fits in 64 bits; a valid id with no todo is
 *   a 404. "limit" and "offset" are decimal integers without sign; out of range is a 400
 *   rather than a silent clamp, so a client never misreads a page.
 * - The Content-Type of a request is not checked (curl -d sends a form type).
 *
 * Database: each worker thread owns one connection (opened without SQLite's own mutexes,
 * since no other thread touches it) with every statement prepared once. Several workers,
 * and several processes, write the same file: WAL lets readers run beside the one writer,
 * and busy_timeout makes a writer wait for the lock instead of failing at once. That wait
 * blocks the worker's event loop, the price of calling SQLite synchronously; it is short
 * because a commit in WAL with synchronous=NORMAL does not fsync. A lock still
 * held after BUSY_TIMEOUT_MS answers 503, and so does a worker whose connection could not
 * be opened.
 */
#include "todo.h"
#include "todo_input.h"

#include <chopin_jansson.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a writer waits for another worker's (or process's) write lock. */
#define BUSY_TIMEOUT_MS 5000

#define TODO_COLUMNS "id, title, done, created_at"

/* Every statement a worker runs, prepared once per connection. */
#define TODO_STATEMENTS(X)                                                                  \
    X(insert, "INSERT INTO todos(title, done, created_at) VALUES(?1, ?2, ?3) "              \
              "RETURNING " TODO_COLUMNS)                                                    \
    X(select_one, "SELECT " TODO_COLUMNS " FROM todos WHERE id = ?1")                       \
    X(select_page, "SELECT " TODO_COLUMNS " FROM todos ORDER BY id LIMIT ?1 OFFSET ?2")     \
    X(count_all, "SELECT count(*) FROM todos")                                              \
    X(replace, "UPDATE todos SET title = ?1, done = ?2 WHERE id = ?3 "                     \
               "RETURNING " TODO_COLUMNS)                                                   \
    X(patch, "UPDATE todos SET title = coalesce(?1, title), done = coalesce(?2, done) "     \
             "WHERE id = ?3 RETURNING " TODO_COLUMNS)                                       \
    X(remove, "DELETE FROM todos WHERE id = ?1")                                            \
    X(begin, "BEGIN")                                                                       \
    X(commit, "COMMIT")                                                                     \
    X(rollback, "ROLLBACK")

struct todo_db {
    sqlite3 *conn;
#define TODO_STMT_FIELD(name, sql) sqlite3_stmt *name;
    TODO_STATEMENTS(TODO_STMT_FIELD)
#undef TODO_STMT_FIELD
};

/* AUTOINCREMENT: without it SQLite hands out max(id)+1, so deleting the newest todo and
 * creating another reuses its id, and a client still holding the old URL (a retried
 * DELETE, a cached link) would act on a different todo. It costs one sqlite_sequence
 * update per insert. */
static const char SCHEMA_SQL[] =
    "CREATE TABLE IF NOT EXISTS todos ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " title TEXT NOT NULL,"
    " done INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER)";

/* ---- database setup ------------------------------------------------------------------ */

/* journal_mode is a query: it answers the mode in force, which is not "wal" when the
 * file cannot use it (for example on a file system without shared memory). */
static int enable_wal(sqlite3 *conn)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int ok = sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

/* Settings of every connection. synchronous=NORMAL is the documented pairing with WAL:
 * a commit survives a crash of the process; only a power loss may undo the last ones. */
static int configure_connection(sqlite3 *conn)
{
    if (sqlite3_busy_timeout(conn, BUSY_TIMEOUT_MS) != SQLITE_OK || enable_wal(conn) < 0)
        return -1;
    return sqlite3_exec(conn, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int todo_open_schema(const char *db_path)
{
    if (!db_path) {
        fprintf(stderr, "todo: no database path\n");
        return -1;
    }
    sqlite3 *conn = NULL;
    int rc = sqlite3_open_v2(db_path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK && configure_connection(conn) < 0)
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(conn, SCHEMA_SQL, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "todo: cannot set up %s: %s\n", db_path,
                conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
    sqlite3_close(conn);
    return rc == SQLITE_OK ? 0 : -1;
}

static void todo_db_close(struct todo_db *db)
{
#define TODO_STMT_FINALIZE(name, sql) sqlite3_finalize(db->name);
    TODO_STATEMENTS(TODO_STMT_FINALIZE)
#undef TODO_STMT_FINALIZE
    sqlite3_close(db->conn);
    free(db);
}

/* Stops at the first failure: later statements stay NULL, which finalize accepts. */
static int prepare_all(struct todo_db *db)
{
    int rc = SQLITE_OK;
#define TODO_STMT_PREPARE(name, sql)                                                        \
    if (rc == SQLITE_OK)                                                                    \
        rc = sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->name, NULL);
    TODO_STATEMENTS(TODO_STMT_PREPARE)
#undef TODO_STMT_PREPARE
    return rc == SQLITE_OK ? 0 : -1;
}

/* No CREATE flag: the schema comes from todo_open_schema(), so a missing file is an
 * error here rather than an empty database without the table. */
void *todo_worker_init(int worker_id, void *arg)
{
    const char *path = arg;
    struct todo_db *db = calloc(1, sizeof *db);
    if (!db) {
        fprintf(stderr, "todo: worker %d: out of memory\n", worker_id);
        return NULL;
    }
    int rc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK && (configure_connection(db->conn) < 0 || prepare_all(db) < 0))
        rc = SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        fprintf(stderr, "todo: worker %d: cannot open %s: %s\n", worker_id, path ? path : "(null)",
                db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
        todo_db_close(db);
        return NULL;
    }
    return db;
}

void todo_worker_fini(int worker_id, void *worker_data, void *arg)
{
    if (worker_data)
        todo_db_close(worker_data);
}

/* The directory todo_default_db_path() created, "" when it created none. */
static char temp_dir[4096 - 16];

const char *todo_default_db_path(void)
{
    static char path[4096];
    const char *env = getenv("CHOPIN_TODO_DB");
    if (env && *env) {
        if (strlen(env) >= sizeof path) {
            fprintf(stderr, "todo: CHOPIN_TODO_DB is too long\n");
            return NULL;
        }
        return strcpy(path, env);
    }
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(temp_dir, sizeof temp_dir, "%s/chopin-todo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= sizeof temp_dir || !mkdtemp(temp_dir)) {
        fprintf(stderr, "todo: cannot create a temporary directory: %s\n", strerror(errno));
        temp_dir[0] = '\0';
        return NULL;
    }
    snprintf(path, sizeof path, "%s/todo.db", temp_dir);
    /* Said once, so that a user can find the data of a run without CHOPIN_TODO_DB. */
    fprintf(stderr, "todo: database %s\n", path);
    return path;
}

void todo_remove_temp_db(void)
{
    if (!temp_dir[0])
        return;
    /* The database and whatever SQLite put beside it (-wal, -shm, -journal). */
    DIR *d = opendir(temp_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    if (rmdir(temp_dir) < 0)
        fprintf(stderr, "todo: cannot remove %s: %s\n", temp_dir, strerror(errno));
    temp_dir[0] = '\0';
}

const char *todo_env_port(void)
{
    const char *port = getenv("PORT");
    if (!port || !*port)
        return "8080";
    size_t digits = strspn(port, "0123456789");
    if (digits != strlen(port) || digits > 5 || strtol(port, NULL, 10) > 65535) {
        fprintf(stderr, "PORT=\"%s\": expected a port number from 0 to 65535 (0: the kernel "
                        "chooses)\n", port);
        return NULL;
    }
    return port;
}

/* ---- answers ------------------------------------------------------------------------- */

/* BUSY and LOCKED mean another writer held the lock past the timeout: worth a retry. */
static void answer_db_error(chopin_res *res, sqlite3 *conn, int rc)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        todo_answer_error(res, 503, "database busy, retry later");
        chopin_res_header_add(res, "Retry-After", "1");
        return;
    }
    fprintf(stderr, "todo: database error: %s\n", sqlite3_errmsg(conn));
    todo_answer_error(res, 500, "database error");
}

static void write_todo(chopin_json *j, sqlite3_stmt *row)
{
    chopin_json_obj_begin(j);
    chopin_json_key(j, "id");
    chopin_json_int(j, sqlite3_column_int64(row, 0));
    chopin_json_key(j, "title");
    chopin_json_strn(j, (const char *)sqlite3_column_text(row, 1),
                     (size_t)sqlite3_column_bytes(row, 1));
    chopin_json_key(j, "done");
    chopin_json_bool(j, sqlite3_column_int(row, 2) != 0);
    chopin_json_key(j, "created_at");
    if (sqlite3_column_type(row, 3) == SQLITE_NULL)
        chopin_json_null(j);
    else
        chopin_json_int(j, sqlite3_column_int64(row, 3));
    chopin_json_obj_end(j);
}

static void statement_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* text bound SQLITE_STATIC must not outlive its JSON */
}

/* Runs `st`, which yields at most one todo, and answers it with `status`, or 404 when
 * there is none. Returns the todo's id, or 0 when the answer is an error. */
static sqlite3_int64 answer_one_todo(chopin_res *res, struct todo_db *db, sqlite3_stmt *st,
                                     int status)
{
    sqlite3_int64 id = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        chopin_json *j = chopin_res_json(res, status);
        write_todo(j, st);
        chopin_json_end(j);
        /* Run to the end: an autocommit write with RETURNING commits only here. */
        rc = sqlite3_step(st);
    } else if (rc == SQLITE_DONE) {
        todo_answer_error(res, 404, "todo not found");
    }
    if (rc != SQLITE_DONE) {
        answer_db_error(res, db->conn, rc);
        id = 0;
    }
    statement_done(st);
    return id;
}

/* ---- input: examples/todo_input.c ---------------------------------------------------- */

/* The worker's connection, or NULL after answering 503 (it failed to open). */
static struct todo_db *worker_db(chopin_req *req, chopin_res *res)
{
    struct todo_db *db = chopin_req_worker_data(req);
    if (!db)
        todo_answer_error(res, 503, "database unavailable");
    return db;
}

/* ---- handlers ------------------------------------------------------------------------ */

static void todo_create(chopin_req *req, chopin_res *res, void *data)
{
    struct todo_fields f;
    struct todo_db *db = worker_db(req, res);
    json_t *doc = db ? todo_body_fields(req, res, 1, &f) : NULL;
    if (!doc)
        return;
    sqlite3_bind_text(db->insert, 1, f.title, (int)f.title_len, SQLITE_STATIC);
    sqlite3_bind_int(db->insert, 2, f.done);
    sqlite3_bind_int64(db->insert, 3, (sqlite3_int64)time(NULL));
    sqlite3_int64 id = answer_one_todo(res, db, db->insert, 201);
    if (id > 0)
        todo_add_location(req, res, id);
    json_decref(doc);
}

/* Writes the items of one page; returns SQLITE_DONE or the error. */
static int write_page_items(chopin_json *j, sqlite3_stmt *page, int64_t limit, int64_t offset)
{
    sqlite3_bind_int64(page, 1, limit);
    sqlite3_bind_int64(page, 2, offset);
    int rc;
    chopin_json_key(j, "items");
    chopin_json_arr_begin(j);
    while ((rc = sqlite3_step(page)) == SQLITE_ROW)
        write_todo(j, page);
    chopin_json_arr_end(j);
    statement_done(page);
    return rc;
}

static int count_todos(sqlite3_stmt *count, int64_t *total)
{
    int rc = sqlite3_step(count);
    if (rc == SQLITE_ROW) {
        *total = sqlite3_column_int64(count, 0);
        rc = SQLITE_DONE;
    }
    statement_done(count);
    return rc;
}

static int run_simple(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

/* The page and the total come from one read transaction, so they agree even while other
 * workers write (WAL gives the transaction a snapshot). */
static void todo_list(chopin_req *req, chopin_res *res, void *data)
{
    struct todo_db *db = worker_db(req, res);
    int64_t limit =
        db ? todo_query_number(req, res, "limit", 1, TODO_LIMIT_MAX, TODO_LIMIT_DEFAULT) : -1;
    int64_t offset = limit >= 0 ? todo_query_number(req, res, "offset", 0, INT64_MAX, 0) : -1;
    if (offset < 0)
        return;
    int64_t total = 0;
    int rc = run_simple(db->begin);
    if (rc == SQLITE_DONE) {
        chopin_json *j = chopin_res_json(res, 200);
        chopin_json_obj_begin(j);
        rc = write_page_items(j, db->select_page, limit, offset);
        if (rc == SQLITE_DONE)
            rc = count_todos(db->count_all, &total);
        chopin_json_key(j, "limit");
        chopin_json_int(j, limit);
        chopin_json_key(j, "offset");
        chopin_json_int(j, offset);
        chopin_json_key(j, "total");
        chopin_json_int(j, total);
        chopin_json_obj_end(j);
        chopin_json_end(j);
    }
    if (rc != SQLITE_DONE)
        answer_db_error(res, db->conn, rc);
    if (!sqlite3_get_autocommit(db->conn))
        run_simple(rc == SQLITE_DONE ? db->commit : db->rollback);
}

static void todo_get(chopin_req *req, chopin_res *res, void *data)
{
    struct todo_db *db = worker_db(req, res);
    sqlite3_int64 id = db ? todo_id_param(req, res) : 0;
    if (!id)
        return;
    sqlite3_bind_int64(db->select_one, 1, id);
    answer_one_todo(res, db, db->select_one, 200);
}

/* PUT and PATCH: the same statement shape, PATCH binds NULL for what it keeps. */
static void todo_update(chopin_req *req, chopin_res *res, int full)
{
    struct todo_fields f;
    struct todo_db *db = worker_db(req, res);
    sqlite3_int64 id = db ? todo_id_param(req, res) : 0;
    json_t *doc = id ? todo_body_fields(req, res, full, &f) : NULL;
    if (!doc)
        return;
    sqlite3_stmt *st = full ? db->replace : db->patch;
    if (f.has_title)
        sqlite3_bind_text(st, 1, f.title, (int)f.title_len, SQLITE_STATIC);
    if (full || f.has_done)
        sqlite3_bind_int(st, 2, f.done); /* absent: false */
    sqlite3_bind_int64(st, 3, id);
    answer_one_todo(res, db, st, 200);
    json_decref(doc);
}

static void todo_replace(chopin_req *req, chopin_res *res, void *data)
{
    todo_update(req, res, 1);
}

static void todo_patch(chopin_req *req, chopin_res *res, void *data)
{
    todo_update(req, res, 0);
}

static void todo_delete(chopin_req *req, chopin_res *res, void *data)
{
    struct todo_db *db = worker_db(req, res);
    sqlite3_int64 id = db ? todo_id_param(req, res) : 0;
    if (!id)
        return;
    sqlite3_bind_int64(db->remove, 1, id);
    int rc = run_simple(db->remove);
    if (rc != SQLITE_DONE)
        answer_db_error(res, db->conn, rc);
    else if (sqlite3_changes(db->conn) == 0)
        todo_answer_error(res, 404, "todo not found");
    else
        chopin_res_empty(res, 204);
}

/* ---- routes -------------------------------------------------------------------------- */

/* "/todos", "/todos/" and "/api/todos" mount as given without the trailing '/'; "/" and
 * "" mount the collection at "/" and the items at "/:id". */
int todo_mount(chopin_router *r, const char *prefix)
{
    char collection[256], item[sizeof collection + 4];
    size_t len = prefix ? strlen(prefix) : 0;
    while (len > 0 && prefix[len - 1] == '/')
        len--;
    if (len >= sizeof collection)
        return -ENAMETOOLONG;
    snprintf(collection, sizeof collection, "%.*s", (int)len, prefix ? prefix : "");
    snprintf(item, sizeof item, "%s/:id", collection);
    if (len == 0)
        strcpy(collection, "/");

    int rc = chopin_router_post(r, collection, todo_create, NULL);
    if (!rc) rc = chopin_router_get(r, collection, todo_list, NULL);
    if (!rc) rc = chopin_router_get(r, item, todo_get, NULL);
    if (!rc) rc = chopin_router_put(r, item, todo_replace, NULL);
    if (!rc) rc = chopin_router_patch(r, item, todo_patch, NULL);
    if (!rc) rc = chopin_router_delete(r, item, todo_delete, NULL);
    return rc;
}
