/* SPDX-License-Identifier: MIT */
/*
 * Listeners: the server's address list ("http://host:port?proxy, unix:/path?mode=0660"),
 * parsed, and opened as sockets: one SO_REUSEPORT socket per worker for a TCP address, one
 * socket for a Unix one (the workers share it: Linux has no SO_REUSEPORT for AF_UNIX), or
 * sockets inherited from systemd or from the process this one replaced (LISTEN_FDS).
 *
 * Every accepted connection carries its listener's CHOPIN__LISTEN_* flags
 * (conn->listen_flags): the PROXY protocol step and the TLS transport act on them.
 */
#ifndef CHOPIN_LISTEN_H
#define CHOPIN_LISTEN_H

#include <stdint.h>

#define CHOPIN__LISTEN_TLS 0x01u   /* https://: the connection speaks TLS first */
#define CHOPIN__LISTEN_PROXY 0x02u /* ?proxy: a PROXY protocol header precedes everything */
#define CHOPIN__LISTEN_UNIX 0x04u  /* unix:/path */

/* Listeners per server, and sockets per listener (one per worker), at most. */
#define CHOPIN__MAX_LISTENERS 16
#define CHOPIN__MAX_WORKER_FDS 64

/* One item of the address list, as written. */
struct chopin__listen_spec {
    uint8_t flags;   /* CHOPIN__LISTEN_* */
    uint32_t mode;   /* unix: permission bits (mode=0660); 0: as the umask leaves them */
    char host[256];  /* TCP: "" for any address */
    char port[8];
    char path[108];  /* unix: the socket's path (sun_path's size on Linux) */
    char text[300];  /* the item as written, for messages */
};

/* An opened listener: its sockets, before they are handed to the workers. */
struct chopin__listener {
    uint8_t flags;
    int port;        /* TCP: the bound port; unix: 0 */
    int nfds;        /* TCP: one per worker (fewer when inherited); unix: 1 */
    int fds[CHOPIN__MAX_WORKER_FDS];
    char name[160];  /* "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock" */
    char unlink_path[108]; /* a Unix socket this server created: removed at the end */
};

/**
 * Parses `address`: comma-separated items, each `[http://|https://]host:port[?opt&opt]`
 * (host:port, [v6]:port, :port or port) or `unix:/path[?opt]`; options `proxy` (any
 * item) and `mode=0NNN` (unix). Fills up to `cap` specs; returns how many, or -EINVAL
 * after printing what is wrong on stderr.
 */
int chopin__listen_parse(const char *address, struct chopin__listen_spec *specs, int cap);

/**
 * Opens the listener of `spec` with `nfds` SO_REUSEPORT sockets (TCP) or one socket
 * (unix: a stale socket file no one listens on is replaced; a live one, or a file that
 * is not a socket, is refused with -EADDRINUSE). `share_port`: join SO_REUSEPORT
 * listeners already on the address rather than refuse. 0 or -errno, after printing why.
 */
int chopin__listener_open(struct chopin__listener *ln, const struct chopin__listen_spec *spec,
                          int nfds, int share_port);

/* A listening socket this process inherited. */
struct chopin__inherited {
    int fd;       /* -1 once taken */
    int listener; /* its name was "chopin-N" (a restart of this program): the Nth item of
                     the address; -1: another name (systemd's FileDescriptorName) */
};

/**
 * Sockets inherited from a service manager or the process this one replaced (LISTEN_FDS,
 * LISTEN_PID naming this process, LISTEN_FDNAMES): the stream sockets from descriptor 3
 * on, made close-on-exec and non-blocking. Returns how many (0: none); the variables are
 * removed from the environment, so a child of this process does not take them too.
 */
int chopin__listen_inherited(struct chopin__inherited *in, int cap);

/**
 * Takes into `ln` (at most `max` of them) the inherited sockets of item `index`, `spec`:
 * those named for it by a restart, else those listening on its address (a systemd
 * socket). 1 when it took any, 0 when none is left for it.
 */
int chopin__listener_adopt(struct chopin__listener *ln, const struct chopin__listen_spec *spec,
                           int index, struct chopin__inherited *in, int n, int max);

/** Makes `ln` of an inherited listening socket no item claimed: plain HTTP. 0 or -errno. */
int chopin__listener_adopt_any(struct chopin__listener *ln, int fd);

/** Closes the sockets `ln` still holds (fds not -1) and removes its Unix socket file. */
void chopin__listener_close(struct chopin__listener *ln);

#endif
