/* SPDX-License-Identifier: MIT */
/*
 * The Chopin server of bench/compress.sh: one 10 KiB JSON answer (the file given, read once
 * and copied into each response, as a handler that builds its answer does), under
 * chopin_compress restricted to one coding per prefix, so that the client's Accept-Encoding
 * can stay the same for every run:
 *   /identity/json  no compression
 *   /gzip/json      gzip at GZIP_LEVEL (libdeflate)
 *   /br/json        brotli at BR_LEVEL
 *   /zstd/json      zstd at ZSTD_LEVEL
 * Usage: compress_server PORT FILE   (levels from the environment; CHOPIN_* as usual)
 */
#include <chopin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *body;
static size_t body_len;

static void json(chopin_req *req, chopin_res *res, void *data)
{
    chopin_res_copy(res, 200, "application/json", body, body_len);
}

static int env_level(const char *name, int fallback)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

static chopin_compress_options gzip_opts = {.prefer = "gzip"};
static chopin_compress_options br_opts = {.prefer = "br"};
static chopin_compress_options zstd_opts = {.prefer = "zstd"};

static int read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    body = malloc(n > 0 ? (size_t)n : 1);
    body_len = body ? fread(body, 1, (size_t)n, f) : 0;
    fclose(f);
    return body && body_len == (size_t)n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3 || read_file(argv[2]) < 0) {
        fprintf(stderr, "usage: compress_server PORT FILE\n");
        return 2;
    }
    gzip_opts.gzip_level = env_level("GZIP_LEVEL", 6);
    br_opts.br_level = env_level("BR_LEVEL", 4);
    zstd_opts.zstd_level = env_level("ZSTD_LEVEL", 3);
    chopin_router *r = chopin_router_new();
    chopin_router_use(r, "/gzip", chopin_compress, &gzip_opts);
    chopin_router_use(r, "/br", chopin_compress, &br_opts);
    chopin_router_use(r, "/zstd", chopin_compress, &zstd_opts);
    chopin_router_get(r, "/identity/json", json, NULL);
    chopin_router_get(r, "/gzip/json", json, NULL);
    chopin_router_get(r, "/br/json", json, NULL);
    chopin_router_get(r, "/zstd/json", json, NULL);
    char address[32];
    snprintf(address, sizeof address, "127.0.0.1:%s", argv[1]);
    int rc = chopin_serve(r, address, NULL);
    chopin_router_free(r);
    free(body);
    return rc < 0 ? 1 : 0;
}
