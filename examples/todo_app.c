/* SPDX-License-Identifier: MIT */
/*
 * The todo REST API alone (see todo.c for the routes and rules), under /todos.
 *
 *   PORT=8080 HOST=0.0.0.0 CHOPIN_TODO_DB=todo.db build/examples/todo_app
 *
 * PORT defaults to 8080 (0 lets the kernel choose; the start banner says which), HOST to
 * every IPv4 address, and the database to a file in a fresh temporary directory, removed
 * at exit. The CHOPIN_* variables of chopin_options apply too; an invalid one (or PORT)
 * stops the start before anything is created. SIGINT or SIGTERM drain and exit 0.
 */
#include <chopin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "todo.h"

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int main(void)
{
    char address[300];
    const char *host = env_or("HOST", "0.0.0.0");
    const char *port = todo_env_port();
    chopin_options opt = chopin_options_default();
    opt.worker_init = todo_worker_init;
    opt.worker_fini = todo_worker_fini;
    /* Every problem printed (PORT and each CHOPIN_* variable) before anything is created. */
    int options_ok = chopin_options_check(&opt) == 0;
    if (!port || !options_ok)
        return 1;
    /* An IPv6 literal needs brackets before its port. */
    int v6 = host[0] != '[' && strchr(host, ':') != NULL;
    snprintf(address, sizeof address, v6 ? "[%s]:%s" : "%s:%s", host, port);

    const char *db = todo_default_db_path();
    if (!db || todo_open_schema(db) < 0) {
        todo_remove_temp_db();
        return 1;
    }
    opt.worker_arg = (void *)db;
    chopin_router *r = chopin_router_new();
    int rc = r ? todo_mount(r, "/todos") : -1;
    if (rc < 0 && r)
        fprintf(stderr, "todo_app: %s: %s\n", chopin_strerror(rc), chopin_router_error(r));
    if (rc == 0)
        rc = chopin_serve(r, address, &opt);
    chopin_router_free(r);
    todo_remove_temp_db();
    return rc < 0 ? 1 : 0;
}
