/*
 * The todo REST API alone (see todo.c for the routes and rules), under /todos.
 *
 *   PORT=8080 HOST=0.0.0.0 CHOPIN_TODO_DB=todo.db build/examples/todo_app
 *
 * PORT defaults to 8080 (0 lets the kernel choose; the start banner says which), HOST to
 * every IPv4 address, and the database to a file in a fresh temporary directory. The
 * CHOPIN_* variables of chopin_options apply too. SIGINT or SIGTERM drain and exit 0.
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
    const char *port = env_or("PORT", "8080");
    /* An IPv6 literal needs brackets before its port. */
    int v6 = host[0] != '[' && strchr(host, ':') != NULL;
    snprintf(address, sizeof address, v6 ? "[%s]:%s" : "%s:%s", host, port);

    const char *db = todo_default_db_path();
    if (todo_open_schema(db) < 0)
        return 1;

    chopin_router *r = chopin_router_new();
    if (!r)
        return 1;
    int rc = todo_mount(r, "/todos");
    if (rc < 0) {
        fprintf(stderr, "todo_app: %s: %s\n", chopin_strerror(rc), chopin_router_error(r));
        chopin_router_free(r);
        return 1;
    }

    chopin_options opt = chopin_options_default();
    opt.worker_init = todo_worker_init;
    opt.worker_fini = todo_worker_fini;
    opt.worker_arg = (void *)db;
    rc = chopin_serve(r, address, &opt);
    chopin_router_free(r);
    return rc < 0 ? 1 : 0;
}
