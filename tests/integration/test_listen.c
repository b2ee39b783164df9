/* SPDX-License-Identifier: MIT */
/*
 * Several listeners per server (issue 19): two TCP listeners and a Unix socket served at
 * once by every worker, the Unix socket's permissions, a stale socket file replaced, a
 * live one and a file that is not a socket refused, the file removed at the end,
 * CHOPIN_LISTEN over the code's address, and malformed address lists refused. Runs once
 * per backend (CHOPIN_BACKEND).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static char dir[64];

static void hello(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_text(res, 200, "hello");
}

static chopin_router *router(void) {
    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/", hello, NULL);
    return r;
}

static chopin_options options(int workers) {
    chopin_options o = chopin_options_default();
    o.quiet = 1;
    o.workers = workers;
    o.shutdown_timeout_ms = 500;
    return o;
}

static void path_in_dir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static int unix_connect(const char *path) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%.100s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One GET / over a Unix socket: 1 when it was answered 200 "hello". */
static int unix_get(const char *path) {
    int fd = unix_connect(path);
    if (fd < 0)
        return 0;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char buf[1024];
    size_t got = 0;
    ssize_t n = 0;
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return 0;
    }
    while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "\r\n\r\nhello") != NULL;
}

static chopin_server *start(chopin_router *r, const char *address, int workers, int *rc) {
    chopin_options o = options(workers);
    chopin_server *s = NULL;
    *rc = chopin_server_start(r, address, &o, &s);
    return s;
}

/* ----- several listeners at once -------------------------------------------------------- */

static void two_tcp_and_a_unix_socket(void) {
    char sock[128], address[256];
    path_in_dir(sock, sizeof sock, "a.sock");
    snprintf(address, sizeof address, "127.0.0.1:0, http://127.0.0.1:0 ,unix:%s?mode=0600", sock);
    chopin_router *r = router();
    int rc;
    chopin_server *s = start(r, address, 2, &rc);
    CHECK_INT(rc, 0);
    if (s) {
        CHECK_INT(chopin_server_listeners(s), 3);
        int p0 = chopin_server_listener_port(s, 0), p1 = chopin_server_listener_port(s, 1);
        CHECK(p0 > 0 && p1 > 0 && p0 != p1);
        CHECK_INT(chopin_server_port(s), p0);
        CHECK_INT(chopin_server_listener_port(s, 2), 0);
        CHECK_INT(chopin_server_listener_port(s, 3), CHOPIN_EINVAL);
        /* Several rounds: with two workers, each listener's connections reach both. */
        for (int i = 0; i < 8; i++) {
            CHECK_INT(cl_get(p0, "/", NULL), 200);
            CHECK_INT(cl_get(p1, "/", NULL), 200);
            CHECK(unix_get(sock));
        }
        struct stat st;
        CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode));
        CHECK_INT(st.st_mode & 0777, 0600);
        cl_stop(s);
        CHECK(access(sock, F_OK) < 0 && errno == ENOENT); /* removed at the end */
    }
    chopin_router_free(r);
}

/* Only Unix sockets: chopin_server_port says there is no TCP port. */
static void unix_only_group_mode(void) {
    char sock[128], address[256];
    path_in_dir(sock, sizeof sock, "b.sock");
    snprintf(address, sizeof address, "unix:%s?mode=0660", sock);
    chopin_router *r = router();
    int rc;
    chopin_server *s = start(r, address, 2, &rc);
    CHECK_INT(rc, 0);
    if (s) {
        CHECK_INT(chopin_server_port(s), 0);
        struct stat st;
        CHECK(stat(sock, &st) == 0);
        CHECK_INT(st.st_mode & 0777, 0660);
        for (int i = 0; i < 4; i++)
            CHECK(unix_get(sock));
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* ----- the socket file -------------------------------------------------------------------- */

/* A server that died leaves its socket file: nobody listens there, so it is replaced. */
static void stale_socket_file_is_replaced(void) {
    char sock[128], address[256];
    path_in_dir(sock, sizeof sock, "stale.sock");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%.100s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
    close(fd); /* the file stays */
    CHECK(access(sock, F_OK) == 0);
    snprintf(address, sizeof address, "unix:%s", sock);
    chopin_router *r = router();
    int rc;
    chopin_server *s = start(r, address, 1, &rc);
    CHECK_INT(rc, 0);
    if (s) {
        CHECK(unix_get(sock));
        cl_stop(s);
    }
    chopin_router_free(r);
}

/* Another server listening there keeps its socket, and its file. */
static void live_socket_is_refused(void) {
    char sock[128], address[256];
    path_in_dir(sock, sizeof sock, "live.sock");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%.100s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0 && listen(fd, 4) == 0);
    snprintf(address, sizeof address, "unix:%s", sock);
    chopin_router *r = router();
    int rc;
    capture_begin();
    chopin_server *s = start(r, address, 1, &rc);
    const char *err = capture_end();
    CHECK(s == NULL);
    CHECK_INT(rc, CHOPIN_EADDRINUSE);
    CHECK(strstr(err, "another server listens there") != NULL);
    int c = unix_connect(sock); /* still the other server's */
    CHECK(c >= 0);
    if (c >= 0)
        close(c);
    close(fd);
    unlink(sock);
    chopin_router_free(r);
}

static void file_that_is_not_a_socket_is_kept(void) {
    char file[128], address[256];
    path_in_dir(file, sizeof file, "notes.txt");
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("keep me\n", f);
        fclose(f);
    }
    snprintf(address, sizeof address, "unix:%s", file);
    chopin_router *r = router();
    int rc;
    capture_begin();
    chopin_server *s = start(r, address, 1, &rc);
    const char *err = capture_end();
    CHECK(s == NULL);
    CHECK_INT(rc, CHOPIN_EADDRINUSE);
    CHECK(strstr(err, "is not a socket") != NULL);
    struct stat st;
    CHECK(stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 8);
    unlink(file);
    chopin_router_free(r);
}

/* ----- the address list ------------------------------------------------------------------- */

static void chopin_listen_replaces_the_address(void) {
    char sock[128], env[256];
    path_in_dir(sock, sizeof sock, "env.sock");
    snprintf(env, sizeof env, "unix:%s", sock);
    setenv("CHOPIN_LISTEN", env, 1);
    chopin_router *r = router();
    int rc;
    chopin_server *s = start(r, "127.0.0.1:0", 1, &rc);
    unsetenv("CHOPIN_LISTEN");
    CHECK_INT(rc, 0);
    if (s) {
        CHECK_INT(chopin_server_listeners(s), 1);
        CHECK(unix_get(sock));
        cl_stop(s);
    }
    chopin_router_free(r);
}

static void malformed_lists_are_refused(void) {
    static const struct {
        const char *address, *why;
    } bad[] = {
        {"127.0.0.1:0,", "an empty item"},
        {"127.0.0.1:0,,127.0.0.1:0", "an empty item"},
        {"unix:", "unix socket path"},
        {"ftp://127.0.0.1:0", "unknown scheme"},
        {"127.0.0.1:0?bogus", "unknown option"},
        {"127.0.0.1:0?mode=0600", "unknown option"},
        {"unix:/tmp/x.sock?mode=0999", "octal"},
        {"unix:/tmp/x.sock?mode=", "octal"},
        {"127.0.0.1:99999", "out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        chopin_router *r = router();
        int rc;
        capture_begin();
        chopin_server *s = start(r, bad[i].address, 1, &rc);
        const char *err = capture_end();
        CHECK(s == NULL);
        CHECK_INT(rc, CHOPIN_EINVAL);
        if (!strstr(err, bad[i].why))
            fprintf(stderr, "  '%s': %s", bad[i].address, err);
        CHECK(strstr(err, bad[i].why) != NULL);
        chopin_router_free(r);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/chopin-listen-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(two_tcp_and_a_unix_socket);
    RUN(unix_only_group_mode);
    RUN(stale_socket_file_is_replaced);
    RUN(live_socket_is_refused);
    RUN(file_that_is_not_a_socket_is_kept);
    RUN(chopin_listen_replaces_the_address);
    RUN(malformed_lists_are_refused);
    rmdir(dir);
    TEST_END();
}
