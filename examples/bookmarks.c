/* SPDX-License-Identifier: MIT */
/*
 * Bookmarks: a small multi-user service on the public API alone (chopin.h and
 * chopin_jansson.h): a session cookie, one auth middleware guarding everything under /api
 * whatever route serves the path, files from a directory, CORS and an access log as
 * global middleware, SQLite through one connection per worker.
 *
 *   POST /login  {"user": "alice", "password": "wonderland"}  200 {"user","token"} + cookie
 *   POST /logout                                              204, the cookie expired
 *   GET  /api/bookmarks  ?tag=x  ?starred (or ?starred=true|false)     200 [bookmark, ...]
 *   POST /api/bookmarks  {"url", "title"?, "tag"?, "starred"?}          201 + Location
 *   GET | PUT | DELETE /api/bookmarks/:id                    200 | 200 (full replace) | 204
 *   GET  /stats                                               the server's counters
 *   GET  /static/<path> and any other GET path                files from BOOKMARKS_STATIC
 *
 * A bookmark is {"id": 1, "url": "https://...", "title": "...", "tag": "x" or null,
 * "starred": false}; each user sees only their own. /api answers 401 unless the request
 * has the session cookie or "Authorization: Bearer <token>" (the token /login gave).
 *
 *   BOOKMARKS_DB=b.db BOOKMARKS_STATIC=public PORT=8080 build/examples/bookmarks
 *
 * BOOKMARKS_DB defaults to a file in a fresh temporary directory, removed at exit; without
 * BOOKMARKS_STATIC no file is served. HOST (127.0.0.1) and BOOKMARKS_ORIGIN (the origin
 * CORS allows, http://localhost:8080) may be set too. SIGINT or SIGTERM drain and exit 0.
 */
#include <chopin.h>
#include <chopin_jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define COLUMNS "id, url, title, tag, starred"

/* Demo accounts. A real service stores password hashes, not passwords. */
static const struct user {
    const char *name, *password;
} USERS[] = {{"alice", "wonderland"}, {"bob", "builder"}};

/* Its address keys the logged-in user in chopin_req_set_data: no name to collide. */
static const char user_key;

/* Sessions live in the database, not in memory: a client's next request may reach any
 * worker. WAL lets the workers read beside the one writer. */
static const char SCHEMA_SQL[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, user TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS bookmarks (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user TEXT NOT NULL, url TEXT NOT NULL, title TEXT NOT NULL, tag TEXT,"
    " starred INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS bookmarks_by_user ON bookmarks (user, id);";

static const struct user *find_user(const char *name)
{
    for (size_t i = 0; name && i < COUNT(USERS); i++)
        if (strcmp(USERS[i].name, name) == 0)
            return &USERS[i];
    return NULL;
}

static int str_is(chopin_str s, const char *text)
{
    return s.ptr && s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

/* ---- answers and statements --------------------------------------------------------- */

/* {"error": message}. chopin_res_json will not start a second document, so a body begun
 * earlier (a list that failed half-way) is dropped first. */
static void answer_error(chopin_res *res, int status, const char *message)
{
    if (chopin_res_status(res) != 0)
        chopin_res_empty(res, status);
    chopin_json *j = chopin_res_json(res, status);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "error");
    chopin_json_str(j, message);
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

/* BUSY: another worker held the write lock past busy_timeout, so a retry may work. */
static void answer_db_error(chopin_req *req, chopin_res *res, int rc)
{
    fprintf(stderr, "bookmarks: %s\n", sqlite3_errmsg(chopin_req_worker_data(req)));
    answer_error(res, (rc & 0xff) == SQLITE_BUSY ? 503 : 500, "database error");
}

/* Prepared per request: plainer than a per-worker statement cache. A worker whose
 * connection did not open (no worker data) answers 503. */
static sqlite3_stmt *prepare(chopin_req *req, chopin_res *res, const char *sql)
{
    sqlite3 *db = chopin_req_worker_data(req);
    sqlite3_stmt *st = NULL;
    if (!db)
        answer_error(res, 503, "database unavailable");
    else if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        answer_db_error(req, res, SQLITE_ERROR);
    return st;
}

/* Request text stays valid until the answer is sent, so SQLite need not copy it. A NULL
 * ptr (an absent query parameter) binds SQL NULL. */
static void bind_str(sqlite3_stmt *st, int i, chopin_str s)
{
    sqlite3_bind_text(st, i, s.ptr, (int)s.len, SQLITE_STATIC);
}

static void write_bookmark(chopin_json *j, sqlite3_stmt *row)
{
    static const char *const keys[] = {"id", "url", "title", "tag", "starred"};
    chopin_json_obj_begin(j);
    for (int c = 0; c < (int)COUNT(keys); c++) {
        chopin_json_key(j, keys[c]);
        if (sqlite3_column_type(row, c) == SQLITE_NULL)
            chopin_json_null(j);
        else if (c == 0)
            chopin_json_int(j, sqlite3_column_int64(row, c));
        else if (c == 4)
            chopin_json_bool(j, sqlite3_column_int(row, c));
        else
            chopin_json_strn(j, (const char *)sqlite3_column_text(row, c),
                             (size_t)sqlite3_column_bytes(row, c));
    }
    chopin_json_obj_end(j);
}

/* Runs `st`, which yields at most one bookmark, answers it with `status` (404 when there
 * is none) and finalizes it. Returns the bookmark's id, 0 when the answer is an error. */
static sqlite3_int64 answer_row(chopin_req *req, chopin_res *res, sqlite3_stmt *st, int status)
{
    sqlite3_int64 id = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        chopin_json *j = chopin_res_json(res, status);
        write_bookmark(j, st);
        chopin_json_end(j);
        rc = sqlite3_step(st); /* a write with RETURNING commits only at its end */
    } else if (rc == SQLITE_DONE) {
        answer_error(res, 404, "no such bookmark");
    }
    if (rc != SQLITE_DONE) {
        answer_db_error(req, res, rc);
        id = 0;
    }
    sqlite3_finalize(st);
    return id;
}

/* ---- sessions ----------------------------------------------------------------------- */

/* A Bearer token (scripts) or else the session cookie (browsers): both are the token
 * /login made. The library reads the cookie, from every Cookie line. */
static chopin_str request_token(const chopin_req *req)
{
    chopin_str auth = chopin_req_header(req, "authorization");
    if (auth.ptr && auth.len > 7 && strncasecmp(auth.ptr, "Bearer ", 7) == 0)
        return (chopin_str){auth.ptr + 7, auth.len - 7};
    return chopin_req_cookie(req, "sid");
}

static const struct user *session_user(chopin_req *req)
{
    sqlite3 *db = chopin_req_worker_data(req);
    chopin_str token = request_token(req);
    sqlite3_stmt *st;
    if (!db || !token.ptr ||
        sqlite3_prepare_v2(db, "SELECT user FROM sessions WHERE token = ?1", -1, &st, NULL))
        return NULL;
    bind_str(st, 1, token);
    const struct user *u = NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        u = find_user((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return u;
}

/* On "/api": the library applies it by the normalised path, so /%61pi/x, /public/../api/x,
 * a 404 or 405 under /api and the catch-all route serving /api/x all come here first, and
 * the handlers under /api may count on a user. */
static void require_session(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    const struct user *u = session_user(req);
    if (!u || chopin_req_set_data(req, &user_key, (void *)u) < 0) {
        chopin_res_header_set(res, "WWW-Authenticate", "Bearer realm=\"bookmarks\"");
        answer_error(res, 401, "log in first: POST /login");
        return;
    }
    chopin_next_run(next);
    chopin_res_header_set(res, "Cache-Control", "private, no-store");
}

static void start_session(chopin_req *req, chopin_res *res, const struct user *u)
{
    unsigned char raw[16];
    char token[2 * sizeof raw + 1];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        answer_error(res, 503, "no randomness for a session yet");
        return;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    sqlite3_stmt *st = prepare(req, res, "INSERT INTO sessions (token, user) VALUES (?1, ?2)");
    if (!st)
        return;
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        answer_db_error(req, res, rc);
        return;
    }
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "user");
    chopin_json_str(j, u->name);
    chopin_json_key(j, "token");
    chopin_json_str(j, token);
    chopin_json_obj_end(j);
    chopin_json_end(j);
    /* HttpOnly: no page script reads it; Lax: not sent with cross-site POSTs. Secure is
     * left out only because the demo speaks plain HTTP. */
    chopin_cookie c = {.name = "sid", .value = token, .path = "/", .same_site = "Lax",
                       .http_only = 1};
    chopin_res_cookie_add(res, &c);
}

static void login(chopin_req *req, chopin_res *res, void *data)
{
    json_t *body = chopin_req_json_body(req, res); /* answers 400 itself */
    const char *name = json_string_value(json_object_get(body, "user"));
    const char *password = json_string_value(json_object_get(body, "password"));
    const struct user *u = find_user(name);
    if (body && (!name || !password))
        answer_error(res, 400, "expected {\"user\": \"...\", \"password\": \"...\"}");
    else if (body && (!u || strcmp(u->password, password) != 0))
        answer_error(res, 401, "wrong user or password");
    else if (body)
        start_session(req, res, u);
    json_decref(body);
}

static void logout(chopin_req *req, chopin_res *res, void *data)
{
    sqlite3_stmt *st = prepare(req, res, "DELETE FROM sessions WHERE token = ?1");
    if (!st)
        return;
    bind_str(st, 1, request_token(req));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        answer_db_error(req, res, rc);
        return;
    }
    chopin_res_empty(res, 204);
    chopin_cookie c = {.name = "sid", .value = "", .path = "/", .expire = 1};
    chopin_res_cookie_add(res, &c);
}

/* ---- bookmarks ---------------------------------------------------------------------- */

/* ":id" as a positive decimal integer; 0 (which no bookmark has) for anything else. */
static sqlite3_int64 param_id(const chopin_req *req)
{
    chopin_str s = chopin_req_param(req, "id");
    sqlite3_int64 id = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9' || id > (INT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (s.ptr[i] - '0');
    }
    return id;
}

/* Prepares `sql` with ?1 the bookmark's id and ?2 its owner: every statement names the
 * owner, so a user never reaches another's bookmark. */
static sqlite3_stmt *prepare_own(chopin_req *req, chopin_res *res, const char *sql)
{
    const struct user *u = chopin_req_data(req, &user_key);
    sqlite3_stmt *st = prepare(req, res, sql);
    if (st) {
        sqlite3_bind_int64(st, 1, param_id(req));
        sqlite3_bind_text(st, 2, u->name, -1, SQLITE_STATIC);
    }
    return st;
}

/* Binds url, title, tag, starred of a request body to ?3..?6; returns NULL or why the
 * body is refused. Only http(s) URLs: a stored "javascript:" link would run in whatever
 * page shows it. Fields are checked, not ignored, so a typo does not pass silently. */
static const char *bind_body(sqlite3_stmt *st, json_t *body)
{
    const char *key, *url = NULL, *title = NULL, *tag = NULL;
    json_t *v;
    if (!json_is_object(body))
        return "the body must be a JSON object";
    json_object_foreach(body, key, v) {
        if (strcmp(key, "url") == 0 && json_is_string(v))
            url = json_string_value(v);
        else if (strcmp(key, "title") == 0 && json_is_string(v))
            title = json_string_value(v);
        else if (strcmp(key, "tag") == 0 && (json_is_string(v) || json_is_null(v)))
            tag = json_string_value(v); /* NULL for null */
        else if (strcmp(key, "starred") != 0 || !json_is_boolean(v))
            return "fields: url (string), title (string), tag (string or null), starred (boolean)";
    }
    if (!url || strlen(url) > 2048 || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
        return "url: an http:// or https:// address of at most 2048 bytes is required";
    if (title && strlen(title) > 256)
        return "title: at most 256 bytes";
    if (tag && (!*tag || strlen(tag) > 64))
        return "tag: 1 to 64 bytes, or null";
    sqlite3_bind_text(st, 3, url, -1, SQLITE_STATIC); /* body outlives the statement */
    sqlite3_bind_text(st, 4, title ? title : url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, tag, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, json_is_true(json_object_get(body, "starred")));
    return NULL;
}

/* Create and full replace: `sql` takes ?1 id, ?2 owner, ?3..?6 the fields. */
static sqlite3_int64 save_bookmark(chopin_req *req, chopin_res *res, const char *sql, int status)
{
    json_t *body = chopin_req_json_body(req, res); /* answers 400 itself */
    sqlite3_stmt *st = body ? prepare_own(req, res, sql) : NULL;
    const char *problem = st ? bind_body(st, body) : NULL;
    sqlite3_int64 id = 0;
    if (problem) {
        answer_error(res, 400, problem);
        sqlite3_finalize(st);
    } else if (st) {
        id = answer_row(req, res, st, status);
    }
    json_decref(body);
    return id;
}

static void create_bookmark(chopin_req *req, chopin_res *res, void *data)
{
    sqlite3_int64 id = save_bookmark(req, res, "INSERT INTO bookmarks (user, url, title, tag,"
                                     " starred) VALUES (?2, ?3, ?4, ?5, ?6) RETURNING " COLUMNS,
                                     201);
    char location[64];
    snprintf(location, sizeof location, "/api/bookmarks/%lld", (long long)id);
    if (id)
        chopin_res_header_set(res, "Location", location);
}

static void replace_bookmark(chopin_req *req, chopin_res *res, void *data)
{
    save_bookmark(req, res, "UPDATE bookmarks SET url = ?3, title = ?4, tag = ?5, starred = ?6"
                  " WHERE id = ?1 AND user = ?2 RETURNING " COLUMNS, 200);
}

static void get_bookmark(chopin_req *req, chopin_res *res, void *data)
{
    sqlite3_stmt *st =
        prepare_own(req, res, "SELECT " COLUMNS " FROM bookmarks WHERE id = ?1 AND user = ?2");
    if (st)
        answer_row(req, res, st, 200);
}

static void delete_bookmark(chopin_req *req, chopin_res *res, void *data)
{
    sqlite3_stmt *st = prepare_own(req, res, "DELETE FROM bookmarks WHERE id = ?1 AND user = ?2");
    if (!st)
        return;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        answer_db_error(req, res, rc);
    else if (sqlite3_changes(chopin_req_worker_data(req)) == 0)
        answer_error(res, 404, "no such bookmark");
    else
        chopin_res_empty(res, 204);
}

/* "?starred" alone asks for the starred ones and "?starred=true|false" for either:
 * chopin_req_query_kind tells "?starred" from "?starred=", which is refused. */
static void list_bookmarks(chopin_req *req, chopin_res *res, void *data)
{
    const struct user *u = chopin_req_data(req, &user_key);
    chopin_query_kind kind = chopin_req_query_kind(req, "starred");
    chopin_str starred = chopin_req_query(req, "starred");
    if (kind == CHOPIN_QUERY_VALUE && !str_is(starred, "true") && !str_is(starred, "false")) {
        answer_error(res, 400, "starred: true or false");
        return;
    }
    sqlite3_stmt *st = prepare(req, res, "SELECT " COLUMNS " FROM bookmarks WHERE user = ?1"
                               " AND (?2 IS NULL OR tag = ?2) AND (?3 IS NULL OR starred = ?3)"
                               " ORDER BY id");
    if (!st)
        return;
    sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
    bind_str(st, 2, chopin_req_query(req, "tag"));
    if (kind != CHOPIN_QUERY_ABSENT)
        sqlite3_bind_int(st, 3, !str_is(starred, "false"));
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_arr_begin(j);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        write_bookmark(j, st);
    chopin_json_arr_end(j);
    if (rc == SQLITE_DONE)
        chopin_json_end(j);
    else
        answer_db_error(req, res, rc);
    sqlite3_finalize(st);
}

/* ---- files, CORS, log, stats --------------------------------------------------------- */

/* The kernel resolves the path beneath the directory: "..", an absolute path and every
 * symbolic link are refused with a 404, however the request spelled them. */
static void serve_file(chopin_req *req, chopin_res *res, void *data)
{
    chopin_str path = chopin_req_param(req, "path");
    if (path.len == 0)
        path = (chopin_str){"index.html", 10};
    chopin_res_file_at(res, *(const int *)data, path.ptr, path.len);
}

/* Answers a preflight before the auth middleware runs (a preflight carries no cookie) and
 * names the allowed origin on every answer: with credentials it cannot be "*". */
static void cors(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    if (chopin_req_method(req) == CHOPIN_METHOD_OPTIONS &&
        chopin_req_header(req, "access-control-request-method").ptr) {
        chopin_res_empty(res, 204);
        chopin_res_header_set(res, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE");
        chopin_res_header_set(res, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        chopin_res_header_set(res, "Access-Control-Max-Age", "600");
    } else {
        chopin_next_run(next);
    }
    chopin_res_header_set(res, "Access-Control-Allow-Origin", data);
    chopin_res_header_set(res, "Access-Control-Allow-Credentials", "true");
}

static chopin_str or_dash(chopin_str s)
{
    return s.len ? s : (chopin_str){"-", 1};
}

/* Global, so it also sees the answers to requests refused before routing, whose method
 * and path are empty ("-"). The raw path shows what the client really sent. */
static void access_log(chopin_req *req, chopin_res *res, chopin_next *next, void *data)
{
    chopin_next_run(next);
    chopin_str m = or_dash(chopin_req_method_str(req)), p = or_dash(chopin_req_path_raw(req));
    fprintf(stderr, "access %.*s %.*s %d\n", (int)m.len, m.ptr, (int)p.len, p.ptr,
            chopin_res_status(res));
}

static void stats(chopin_req *req, chopin_res *res, void *data)
{
    chopin_stats s;
    chopin_server_stats(chopin_req_server(req), &s);
    const struct { const char *name; uint64_t value; } counters[] = {
        {"requests", s.requests}, {"connections_accepted", s.connections_accepted},
        {"connections_open", s.connections_open}, {"bytes_sent", s.bytes_sent},
        {"errors_4xx", s.errors_4xx}, {"errors_5xx", s.errors_5xx},
        {"slab_full", s.slab_full}, {"accept_errors", s.accept_errors}};
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j);
    for (size_t i = 0; i < COUNT(counters); i++) {
        chopin_json_key(j, counters[i].name);
        chopin_json_int(j, (int64_t)counters[i].value);
    }
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

/* ---- setup -------------------------------------------------------------------------- */

/* One connection per worker thread, so SQLite's own mutexes are not needed; busy_timeout
 * makes a writer wait for another worker's write lock instead of failing at once. */
static void *open_worker_db(int worker_id, void *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ||
        sqlite3_busy_timeout(db, 5000)) {
        fprintf(stderr, "bookmarks: worker %d: %s\n", worker_id, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static void close_worker_db(int worker_id, void *db, void *arg)
{
    sqlite3_close(db);
}

static int create_schema(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, SCHEMA_SQL, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "bookmarks: %s: %s\n", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static char temp_dir[256]; /* made by database_path; "" when BOOKMARKS_DB names the file */

static const char *database_path(char *path, size_t cap)
{
    const char *env = getenv("BOOKMARKS_DB"), *tmp = getenv("TMPDIR");
    if (env && *env)
        return env;
    snprintf(temp_dir, sizeof temp_dir, "%s/bookmarks-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(temp_dir)) {
        perror("bookmarks: mkdtemp");
        temp_dir[0] = '\0';
        return NULL;
    }
    snprintf(path, cap, "%s/bookmarks.db", temp_dir);
    return path;
}

/* The database and what SQLite keeps beside it, then the directory. */
static void remove_temp_db(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char file[300];
    for (size_t i = 0; temp_dir[0] && i < COUNT(suffixes); i++) {
        snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
        unlink(file);
    }
    if (temp_dir[0])
        rmdir(temp_dir);
}

static const struct { chopin_method method; const char *pattern; chopin_handler handler; }
    ROUTES[] = {
        {CHOPIN_METHOD_POST, "/login", login},
        {CHOPIN_METHOD_POST, "/logout", logout},
        {CHOPIN_METHOD_GET, "/stats", stats},
        {CHOPIN_METHOD_GET, "/api/bookmarks", list_bookmarks},
        {CHOPIN_METHOD_POST, "/api/bookmarks", create_bookmark},
        {CHOPIN_METHOD_GET, "/api/bookmarks/:id", get_bookmark},
        {CHOPIN_METHOD_PUT, "/api/bookmarks/:id", replace_bookmark},
        {CHOPIN_METHOD_DELETE, "/api/bookmarks/:id", delete_bookmark},
};

/* The access log outermost, so it sees every answer (a preflight's, a 401) as sent; CORS
 * before auth, so a preflight is answered. "/" "*path" serves /api/x too, and the auth
 * middleware still runs first. */
static int add_routes(chopin_router *r, int *static_dir, const char *origin)
{
    int rc = chopin_router_use(r, NULL, access_log, NULL);
    if (!rc)
        rc = chopin_router_use(r, NULL, cors, (void *)origin);
    if (!rc)
        rc = chopin_router_use(r, "/api", require_session, NULL);
    for (size_t i = 0; !rc && i < COUNT(ROUTES); i++)
        rc = chopin_router_route(r, ROUTES[i].method, ROUTES[i].pattern, ROUTES[i].handler, NULL);
    if (!rc && *static_dir >= 0)
        rc = chopin_router_get(r, "/static/*path", serve_file, static_dir);
    if (!rc && *static_dir >= 0)
        rc = chopin_router_get(r, "/*path", serve_file, static_dir);
    return rc;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int main(void)
{
    const char *port = env_or("PORT", "8080"), *static_path = getenv("BOOKMARKS_STATIC");
    chopin_options opt = chopin_options_default();
    opt.worker_init = open_worker_db;
    opt.worker_fini = close_worker_db;
    /* Every bad setting is reported before a file or directory is created. */
    int bad_port = strspn(port, "0123456789") != strlen(port) || strlen(port) > 5;
    if (bad_port)
        fprintf(stderr, "bookmarks: PORT=%s: expected a number from 0 to 65535\n", port);
    if (chopin_options_check(&opt) < 0 || bad_port)
        return 1;
    char address[300], path_buf[300];
    snprintf(address, sizeof address, "%s:%s", env_or("HOST", "127.0.0.1"), port);

    int static_dir = -1; /* borrowed by the file routes until chopin_serve returns */
    if (static_path && *static_path && (static_dir = chopin_dir_open(static_path)) < 0) {
        fprintf(stderr, "bookmarks: BOOKMARKS_STATIC=%s: %s\n", static_path,
                chopin_strerror(static_dir));
        return 1;
    }
    const char *db = database_path(path_buf, sizeof path_buf);
    chopin_router *r = chopin_router_new();
    int rc = db && r && create_schema(db) == 0 ? 0 : -1;
    if (rc == 0 && (rc = add_routes(r, &static_dir, env_or("BOOKMARKS_ORIGIN",
                                                             "http://localhost:8080"))) < 0)
        fprintf(stderr, "bookmarks: routes: %s\n", chopin_router_error(r));
    opt.worker_arg = (void *)db;
    if (rc == 0)
        rc = chopin_serve(r, address, &opt); /* prints why when it fails */
    chopin_router_free(r);
    if (static_dir >= 0)
        close(static_dir);
    if (db)
        remove_temp_db(db);
    return rc < 0;
}
