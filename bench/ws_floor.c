/* SPDX-License-Identifier: MIT */
/*
 * ws_floor: the least a WebSocket echo server can do on this machine with epoll, for
 * bench/ws.sh's echo (issue 17): what the kernel costs per message (one read, one send)
 * with next to nothing in user space, so the CPU per message of a real server can be read
 * against it.
 *
 * It checks nothing. The upgrade request gets a bare 101 (ws_load checks no accept key);
 * then every read is taken as whole client frames (the load generator has one message in
 * flight per connection), each answered by an unmasked frame with its payload unmasked,
 * the answers to one read leaving in one send. Frames up to 64 KiB.
 *
 * Usage: ws_floor     ($PORT, else 8080; binds 127.0.0.1)
 * Build: cc -O2 -o build/bench/ws_floor bench/ws_floor.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536

static const char SWITCH[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Accept: floor\r\n\r\n";
static uint8_t upgraded[MAX_FDS];
static uint8_t in[1 << 17], out[1 << 17];

/* Turns the client frames in in[0..n) into server frames in out; returns their size. */
static size_t echo_frames(size_t n) {
    size_t i = 0, o = 0;
    while (i + 6 <= n) {
        size_t len = in[i + 1] & 0x7f, h = 2;
        if (len == 126) {
            len = (size_t)in[i + 2] << 8 | in[i + 3];
            h = 4;
        }
        const uint8_t *mask = in + i + h, *p = mask + 4;
        if (p + len > in + n || o + h + len > sizeof out)
            break;
        out[o++] = in[i];
        if (h == 4) {
            out[o++] = 126;
            out[o++] = (uint8_t)(len >> 8);
            out[o++] = (uint8_t)len;
        } else {
            out[o++] = (uint8_t)len;
        }
        for (size_t k = 0; k < len; k++)
            out[o + k] = p[k] ^ mask[k & 3];
        o += len;
        i = (size_t)(p - in) + len;
    }
    return o;
}

static void serve(int fd) {
    ssize_t n = read(fd, in, sizeof in);
    if (n <= 0 || fd >= MAX_FDS) {
        close(fd);
        return;
    }
    if (!upgraded[fd]) { /* the request comes in one read on loopback */
        upgraded[fd] = 1;
        send(fd, SWITCH, sizeof SWITCH - 1, MSG_NOSIGNAL);
        return;
    }
    size_t o = echo_frames((size_t)n);
    if (o)
        send(fd, out, o, MSG_NOSIGNAL);
}

int main(void) {
    const char *port = getenv("PORT");
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port ? atoi(port) : 8080),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4096)) {
        perror("ws_floor: listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd != l) {
                serve(fd);
                continue;
            }
            int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
            if (c < 0)
                continue;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (c < MAX_FDS)
                upgraded[c] = 0;
            struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
    }
}
