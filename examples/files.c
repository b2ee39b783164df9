/* SPDX-License-Identifier: MIT */
/*
 * A static file server in a few lines: the directory DIR served at "/" by
 * chopin_router_static with its defaults (open-file cache, validators, ranges; no
 * listing, no precompressed siblings), on PORT (default 8080; CHOPIN_* variables as
 * usual; FILES_CACHE=0 turns the open-file cache off, to see what it saves).
 * bench/static.sh measures it against nginx, tests/integration/static_nginx.sh compares
 * its answers with nginx's.
 *
 *     build/examples/files ./examples/public        then  curl localhost:8080/index.html
 */
#include <chopin.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR   (PORT=8080)\n", argv[0]);
        return 2;
    }
    chopin_static_options so = CHOPIN_STATIC_OPTIONS_INIT;
    const char *cache = getenv("FILES_CACHE");
    if (cache && cache[0] == '0')
        so.cache_entries = CHOPIN_STATIC_NO_CACHE;
    chopin_static *st;
    int rc = chopin_static_new(argv[1], &so, &st);
    if (rc < 0) {
        fprintf(stderr, "files: %s: %s\n", argv[1], chopin_strerror(rc));
        return 1;
    }
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%s", getenv("PORT") ? getenv("PORT") : "8080");
    chopin_router *r = chopin_router_new();
    rc = r ? chopin_router_static(r, "/", st) : CHOPIN_ENOMEM;
    if (rc == 0)
        rc = chopin_serve(r, address, NULL);
    chopin_router_free(r);
    chopin_static_free(st);
    return rc < 0 ? 1 : 0;
}
