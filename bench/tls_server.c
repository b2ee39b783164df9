/* SPDX-License-Identifier: MIT */
/*
 * The Chopin server of bench/tls.sh: /plaintext ("Hello, World!", as the demo's) and
 * /file (a file of the bench, sent with chopin_res_fd: sendfile in the clear, pread and
 * records under TLS), on an https:// and a plain listener at once, so the same process
 * gives the cost of TLS over plain.
 * Usage: tls_server TLS_PORT PLAIN_PORT FILE   (certificate: CHOPIN_TLS_CERT/KEY)
 */
#include <chopin.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file_path;

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static void file(chopin_req *req, chopin_res *res, void *data) {
    (void)req, (void)data;
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        chopin_res_static(res, 404, "text/plain", "no file", 7);
        return;
    }
    chopin_res_fd(res, 200, "application/octet-stream", fd, 0, (uint64_t)st.st_size, 1);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: tls_server TLS_PORT PLAIN_PORT FILE\n");
        return 2;
    }
    file_path = argv[3];
    char address[128];
    snprintf(address, sizeof address, "https://127.0.0.1:%s, 127.0.0.1:%s", argv[1], argv[2]);
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/plaintext", plaintext, NULL);
    chopin_router_get(r, "/file", file, NULL);
    chopin_options o = chopin_options_default();
    int rc = chopin_serve(r, address, &o);
    chopin_router_free(r);
    return rc < 0 ? 1 : 0;
}
