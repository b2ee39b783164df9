/* SPDX-License-Identifier: MIT */
/*
 * Benchmark server of bench/upload.sh: POST /upload takes a multipart/form-data body as it
 * arrives (chopin_router_stream, chopin_body_read, chopin_multipart_*), counts each part's
 * bytes and answers "<parts> <bytes>", as the Go peer (bench/peers/upload) does with
 * MultipartReader. Its own limit: 4 GiB.
 *
 * Usage: upload_server PORT   (CHOPIN_* variables apply; one worker unless CHOPIN_WORKERS)
 */
#include <chopin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct count {
    chopin_multipart *mp;
    uint64_t parts, bytes;
};

static int on_part(const chopin_part *p, void *arg) {
    ((struct count *)arg)->parts++;
    return 0;
}

static int on_data(const char *p, size_t n, void *arg) {
    ((struct count *)arg)->bytes += n;
    return 0;
}

static void done(struct count *c) {
    chopin_multipart_free(c->mp);
    free(c);
}

static void answer(chopin_exchange x, struct count *c, int err) {
    chopin_res *res = chopin_exchange_res(x);
    if (err) {
        chopin_res_error(res, chopin_multipart_status(err), NULL);
    } else {
        char text[64];
        snprintf(text, sizeof text, "%llu %llu", (unsigned long long)c->parts,
                 (unsigned long long)c->bytes);
        chopin_res_text(res, 200, text);
    }
    chopin_exchange_finish(x);
    done(c);
}

static void body_data(chopin_exchange x, const char *p, size_t n, void *arg) {
    int err = chopin_multipart_feed(((struct count *)arg)->mp, p, n);
    if (err)
        answer(x, arg, err);
}

static void body_end(chopin_exchange x, void *arg) {
    answer(x, arg, chopin_multipart_finish(((struct count *)arg)->mp));
}

static void body_error(chopin_exchange x, int err, void *arg) { done(arg); }

static void upload(chopin_req *req, chopin_res *res, void *data) {
    static const chopin_multipart_handler parts = {on_part, on_data, NULL};
    static const chopin_body_handler body = {body_data, body_end, body_error};
    struct count *c = calloc(1, sizeof *c);
    if (!c || chopin_multipart_new(chopin_req_header(req, "content-type"), 0, 0, &parts, c,
                                   &c->mp) < 0) {
        free(c);
        chopin_res_error(res, 415, NULL);
        return;
    }
    chopin_exchange x;
    if (chopin_body_read(req, res, &body, c, &x) < 0)
        done(c);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: upload_server PORT\n");
        return 2;
    }
    chopin_router *r = chopin_router_new();
    chopin_router_stream(r, CHOPIN_METHOD_POST, "/upload", upload, NULL, 4ull << 30);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    o.quiet = 1;
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%s", argv[1]);
    int rc = chopin_serve(r, address, &o);
    chopin_router_free(r);
    return rc < 0 ? 1 : 0;
}
