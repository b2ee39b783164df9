/* SPDX-License-Identifier: MIT */
/*
 * The static file server of bench/static.sh: directory DIR served at "/" with the
 * defaults of chopin_static_options (open-file cache on, no precompressed siblings, no
 * Cache-Control), as nginx serves its root in bench/static_nginx.conf.
 * Usage: static_server PORT DIR   (CHOPIN_* variables as usual)
 */
#include <chopin.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT DIR\n", argv[0]);
        return 2;
    }
    chopin_static *st;
    int rc = chopin_static_new(argv[2], NULL, &st);
    if (rc < 0) {
        fprintf(stderr, "static_server: %s: %s\n", argv[2], chopin_strerror(rc));
        return 1;
    }
    chopin_router *r = chopin_router_new();
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%s", argv[1]);
    rc = r ? chopin_router_static(r, "/", st) : CHOPIN_ENOMEM;
    if (rc == 0)
        rc = chopin_serve(r, address, NULL);
    chopin_router_free(r);
    chopin_static_free(st);
    return rc < 0 ? 1 : 0;
}
