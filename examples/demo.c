/* SPDX-License-Identifier: MIT */
/*
 * The demo server: TechEmpower's /plaintext and /json, an echo, the todo REST API, and a
 * page listing them. `make run` starts it on port 8080 (PORT overrides).
 *
 * An invalid PORT or CHOPIN_* variable stops it before it creates anything; the
 * temporary directory of the database (without CHOPIN_TODO_DB) is removed at exit.
 */
#include <chopin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "todo.h"

static const char INDEX[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Chopin</title></head><body>\n"
    "<h1>Chopin demo</h1>\n<ul>\n"
    "<li><a href=\"/plaintext\">GET /plaintext</a>: Hello, World!</li>\n"
    "<li><a href=\"/json\">GET /json</a>: a JSON message, serialized per request</li>\n"
    "<li>POST /echo: the request body back, with its Content-Type</li>\n"
    "<li><a href=\"/todos\">/todos</a>: a todo REST API on SQLite "
    "(POST, GET, GET/PUT/PATCH/DELETE /todos/:id)</li>\n"
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
    return 0;
}

static int add_routes(chopin_router *r) {
    int rc = chopin_router_get(r, "/", index_page, NULL);
    if (!rc) rc = chopin_router_get(r, "/plaintext", plaintext, NULL);
    if (!rc) rc = chopin_router_get(r, "/json", json, NULL);
    if (!rc) rc = chopin_router_post(r, "/echo", echo, NULL);
    if (!rc) rc = todo_mount(r, "/todos");
    if (rc < 0)
        fprintf(stderr, "demo: %s: %s\n", chopin_strerror(rc), chopin_router_error(r));
    return rc;
}

int main(void) {
    chopin_options opt;
    char address[64];
    if (configure(&opt, address, sizeof address) < 0)
        return 1;
    const char *db = todo_default_db_path();
    if (!db || todo_open_schema(db) < 0) {
        todo_remove_temp_db();
        return 1;
    }
    opt.worker_arg = (void *)db;
    chopin_router *r = chopin_router_new();
    int rc = r ? add_routes(r) : -1;
    if (rc == 0)
        rc = chopin_serve(r, address, &opt);
    chopin_router_free(r);
    todo_remove_temp_db();
    return rc < 0 ? 1 : 0;
}
