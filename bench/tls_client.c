/* SPDX-License-Identifier: MIT */
/*
 * Handshakes per second for bench/tls.sh: one thread that, for SECONDS, connects to
 * 127.0.0.1:PORT, handshakes, sends GET /plaintext, reads the answer and closes, over and
 * over; `full` makes every handshake a new session, `resumed` offers the ticket of the
 * first one each time (and fails if the server does not resume it). Prints
 * "handshakes N resumed M failed F seconds S".
 * Usage: tls_client full|resumed PORT SECONDS [TLS1.2|TLS1.3]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One connection: handshake, one request, its answer. Returns 1 (resumed), 0, or -1. */
static int once(SSL_CTX *ctx, int port, SSL_SESSION **keep, int resume) {
    static const char req[] = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = dial(port);
    if (fd < 0)
        return -1;
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (resume && *keep)
        SSL_set_session(ssl, *keep);
    int rc = -1;
    char buf[512];
    if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, sizeof req - 1) == sizeof req - 1) {
        int n = SSL_read(ssl, buf, sizeof buf); /* the answer fits one read */
        if (n > 0 && strstr(buf, "Hello, World!") == NULL)
            n = SSL_read(ssl, buf, sizeof buf);
        if (n > 0) {
            rc = SSL_session_reused(ssl);
            if (resume && !*keep)
                *keep = SSL_get1_session(ssl); /* after a read: TLS 1.3 tickets are in */
        }
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: tls_client full|resumed PORT SECONDS [TLS1.2|TLS1.3]\n");
        return 2;
    }
    int resume = strcmp(argv[1], "resumed") == 0, port = atoi(argv[2]);
    double seconds = atof(argv[3]);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (argc > 4 && strcmp(argv[4], "TLS1.2") == 0)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    else
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_SESSION *keep = NULL;
    long handshakes = 0, resumed = 0, failed = 0;
    if (resume && once(ctx, port, &keep, 1) < 0)
        failed++;
    double start = now(), end = start + seconds;
    while (now() < end) {
        int r = once(ctx, port, &keep, resume);
        if (r < 0 || (resume && r == 0))
            failed++;
        else
            handshakes++, resumed += r;
    }
    printf("handshakes %ld resumed %ld failed %ld seconds %.2f\n", handshakes, resumed, failed,
           now() - start);
    SSL_SESSION_free(keep);
    SSL_CTX_free(ctx);
    return failed ? 1 : 0;
}
