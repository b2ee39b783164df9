/* SPDX-License-Identifier: MIT */
/* Listeners: the address list, TCP and Unix listening sockets, inherited ones (listen.h). */
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "chopin.h"
#include "platform.h"

/* Pending TCP Fast Open requests per listener. */
#define FASTOPEN_QUEUE 256
/* The first inherited descriptor (sd_listen_fds(3)). */
#define LISTEN_FDS_START 3

static void bad_address(const char *address, const char *why) {
    chopin_log(CHOPIN_LOG_ERROR, "chopin: bad address '%s': %s", address, why);
}

/* ----- parsing ------------------------------------------------------------------------ */

/* Splits "host:port", "[v6]:port", ":port" or "port" into host ("": any) and port,
 * after printing what is wrong when it cannot. */
static int split_host_port(const char *address, char *host, size_t host_cap, char *port,
                           size_t port_cap) {
    static const char form[] = "expected host:port, [ipv6]:port or :port";
    const char *colon;
    host[0] = '\0';
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (!close || close[1] != ':' || (size_t)(close - address - 1) >= host_cap) {
            bad_address(address, form);
            return -EINVAL;
        }
        memcpy(host, address + 1, (size_t)(close - address - 1));
        host[close - address - 1] = '\0';
        colon = close + 1;
    } else if ((colon = strrchr(address, ':'))) {
        if ((size_t)(colon - address) >= host_cap) {
            bad_address(address, "host name too long");
            return -EINVAL;
        }
        memcpy(host, address, (size_t)(colon - address));
        host[colon - address] = '\0';
    } else {
        colon = address - 1; /* just a port */
    }
    const char *p = colon + 1;
    if (!*p || strspn(p, "0123456789") != strlen(p)) {
        bad_address(address, form);
        return -EINVAL;
    }
    p += strspn(p, "0") == strlen(p) ? strlen(p) - 1 : strspn(p, "0"); /* "08080" is 8080 */
    if (strlen(p) >= port_cap || strtoul(p, NULL, 10) > 65535) {
        bad_address(address, "the port is out of range (0 to 65535)");
        return -EINVAL;
    }
    strcpy(port, p);
    return 0;
}

/* One option of an item's query ("proxy", "mode=0660"). */
static int parse_option(struct chopin__listen_spec *sp, const char *opt) {
    if (strcmp(opt, "proxy") == 0) {
        sp->flags |= CHOPIN__LISTEN_PROXY;
        return 0;
    }
    if (strncmp(opt, "mode=", 5) == 0 && (sp->flags & CHOPIN__LISTEN_UNIX)) {
        const char *v = opt + 5;
        char *end;
        unsigned long mode = strtoul(v, &end, 8);
        if (*v && !*end && strspn(v, "01234567") == strlen(v) && mode <= 0777 && mode != 0) {
            sp->mode = (uint32_t)mode;
            return 0;
        }
        bad_address(sp->text, "mode= takes octal permission bits, 0001 to 0777");
        return -EINVAL;
    }
    bad_address(sp->text, (sp->flags & CHOPIN__LISTEN_UNIX)
                              ? "unknown option (a unix socket takes proxy and mode=0NNN)"
                              : "unknown option (a TCP address takes proxy)");
    return -EINVAL;
}

static int parse_options(struct chopin__listen_spec *sp, char *query) {
    for (char *opt = strtok(query, "&"); opt; opt = strtok(NULL, "&"))
        if (parse_option(sp, opt) < 0)
            return -EINVAL;
    return 0;
}

/* One item, trimmed: scheme, then the address, then the options after '?'. */
static int parse_item(const char *item, size_t len, struct chopin__listen_spec *sp) {
    memset(sp, 0, sizeof *sp);
    if (len >= sizeof sp->text) {
        bad_address(item, "too long");
        return -EINVAL;
    }
    memcpy(sp->text, item, len);
    char buf[sizeof sp->text];
    memcpy(buf, item, len);
    buf[len] = '\0';
    char *query = strchr(buf, '?');
    if (query)
        *query++ = '\0';
    char *rest = buf;
    if (strncmp(rest, "unix:", 5) == 0) {
        sp->flags |= CHOPIN__LISTEN_UNIX;
        rest += 5;
        if (!rest[0] || strlen(rest) >= sizeof sp->path) {
            bad_address(sp->text, "a unix socket path must be 1 to 107 bytes long");
            return -EINVAL;
        }
        strcpy(sp->path, rest);
    } else {
        if (strncmp(rest, "https://", 8) == 0) {
            sp->flags |= CHOPIN__LISTEN_TLS;
            rest += 8;
        } else if (strncmp(rest, "http://", 7) == 0) {
            rest += 7;
        } else if (strstr(rest, "://")) {
            bad_address(sp->text, "unknown scheme (http:// or https://)");
            return -EINVAL;
        }
        if (split_host_port(rest, sp->host, sizeof sp->host, sp->port, sizeof sp->port) < 0)
            return -EINVAL;
    }
    return query ? parse_options(sp, query) : 0;
}

int chopin__listen_parse(const char *address, struct chopin__listen_spec *specs, int cap) {
    int n = 0;
    const char *p = address;
    for (;;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ",");
        size_t item_len = len;
        while (item_len && (p[item_len - 1] == ' ' || p[item_len - 1] == '\t'))
            item_len--;
        if (item_len == 0) {
            bad_address(address, "an empty item in the list");
            return -EINVAL;
        }
        if (n == cap) {
            bad_address(address, "too many listeners (at most 16)");
            return -EINVAL;
        }
        if (parse_item(p, item_len, &specs[n]) < 0)
            return -EINVAL;
        n++;
        if (!p[len])
            return n;
        p += len + 1;
    }
}

/* ----- TCP ------------------------------------------------------------------------------ */

static int somaxconn(void) {
    int v = 4096;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    if (f) {
        if (fscanf(f, "%d", &v) != 1 || v <= 0)
            v = 4096;
        fclose(f);
    }
    return v;
}

static void set_opt(int fd, int level, int name, int value) {
    /* Best effort: an option the kernel lacks costs performance, not correctness. */
    (void)setsockopt(fd, level, name, &value, sizeof value);
}

/* One SO_REUSEPORT listener; returns the fd or -errno. */
static int open_tcp(const struct sockaddr *sa, socklen_t len) {
    int fd = chopin__socket_stream(sa->sa_family);
    if (fd < 0)
        return fd;
    set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (setsockopt(fd, SOL_SOCKET, CHOPIN__SO_REUSEPORT, &(int){1}, sizeof(int)) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    /* Accepted sockets inherit TCP_NODELAY: no setsockopt per connection. */
    set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    /* TCP_DEFER_ACCEPT (Linux), TCP_FASTOPEN, SO_NOSIGPIPE where the platform has them. */
    chopin__listener_options(fd, FASTOPEN_QUEUE);
    if (bind(fd, sa, len) < 0 || listen(fd, somaxconn()) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    chopin__listener_listening(fd); /* FreeBSD's accept filter needs a listening socket */
    return fd;
}

static int sockaddr_port(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return 0;
}

static int bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return sockaddr_port(&ss);
}

static void set_port(struct sockaddr *sa, int port) {
    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
}

/* SO_REUSEPORT gives every worker its own listener, but it would also let this server
 * join the listeners another process (another chopin server of the same user) has on the
 * address and silently split its traffic. A socket bound without SO_REUSEPORT conflicts
 * with every other socket bound to the address, listening or not, SO_REUSEPORT or not
 * (Linux inet_bind_conflict; the BSDs alike): binding one first tells whether anything
 * else holds it. SO_REUSEADDR keeps an earlier run's connections in TIME_WAIT from
 * counting, as for any server. Returns 0 or -errno (-EADDRINUSE). */
static int address_free(const struct sockaddr *sa, socklen_t len) {
    int fd = chopin__socket_stream(sa->sa_family);
    if (fd < 0)
        return fd;
    set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    int rc = bind(fd, sa, len) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Port 0 needs no check: the kernel picks a port nothing holds, SO_REUSEPORT or not. */
static int wants_own_port(int share_port, const struct sockaddr *sa) {
    in_port_t port = sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                               : ((const struct sockaddr_in *)sa)->sin_port;
    return !share_port && port != 0;
}

static void listen_failed(const char *address, int err) {
    if (err == -EADDRINUSE)
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot listen on %s: address in use by another socket (to "
                        "join SO_REUSEPORT listeners there on purpose: share_port, "
                        "CHOPIN_SHARE_PORT=1)", address);
    else
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot listen on %s: %s", address, strerror(-err));
}

static void close_fds(struct chopin__listener *ln) {
    for (int i = 0; i < ln->nfds; i++)
        if (ln->fds[i] >= 0)
            close(ln->fds[i]);
    ln->nfds = 0;
}

/* `nfds` sockets on the first address `sp` resolves to that binds. */
static int open_tcp_listener(struct chopin__listener *ln, const struct chopin__listen_spec *sp,
                             int nfds, int share_port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int gai = getaddrinfo(sp->host[0] ? sp->host : NULL, sp->port, &hints, &res);
    if (gai != 0) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot resolve '%s': %s", sp->text, gai_strerror(gai));
        return -EINVAL;
    }
    int err = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (wants_own_port(share_port, ai->ai_addr) &&
            (err = address_free(ai->ai_addr, ai->ai_addrlen)) < 0)
            continue;
        for (ln->nfds = 0; ln->nfds < nfds; ln->nfds++) {
            int fd = open_tcp(ai->ai_addr, ai->ai_addrlen);
            if (fd < 0) {
                err = fd;
                break;
            }
            ln->fds[ln->nfds] = fd;
            if (ln->nfds == 0) { /* port 0: the others share the port the kernel chose */
                ln->port = bound_port(fd);
                set_port(ai->ai_addr, ln->port);
            }
        }
        if (ln->nfds == nfds) {
            const char *host = sp->host[0] ? sp->host
                                           : (ai->ai_family == AF_INET6 ? "::" : "0.0.0.0");
            snprintf(ln->name, sizeof ln->name,
                     ai->ai_family == AF_INET6 ? "%s[%s]:%d" : "%s%s:%d",
                     ln->flags & CHOPIN__LISTEN_TLS ? "https://" : "", host, ln->port);
            freeaddrinfo(res);
            return 0;
        }
        close_fds(ln);
    }
    freeaddrinfo(res);
    listen_failed(sp->text, err);
    return err;
}

/* ----- Unix ----------------------------------------------------------------------------- */

static socklen_t unix_address(struct sockaddr_un *sun, const char *path) {
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, path); /* the parser bounded it */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

/* A socket file left by a server that died without removing it refuses connections
 * (ECONNREFUSED): it is removed. One another server listens on is in use, and a file that
 * is not a socket is not ours to remove. */
static int clear_stale_socket(const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot listen on unix:%s: the file exists and is not a "
                        "socket", path);
        return -EADDRINUSE;
    }
    struct sockaddr_un sun;
    socklen_t len = unix_address(&sun, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (struct sockaddr *)&sun, len) == 0 ? -EADDRINUSE : -errno;
    close(fd);
    if (rc == -EADDRINUSE) {
        chopin_log(CHOPIN_LOG_ERROR, "chopin: cannot listen on unix:%s: another server listens there",
                path);
        return rc;
    }
    if (rc != -ECONNREFUSED)
        return 0; /* let bind say what is wrong */
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* The mode is set between bind and listen: no client can connect before listen(), so
 * none gets in through the umask's looser bits meanwhile. */
static int open_unix_listener(struct chopin__listener *ln, const struct chopin__listen_spec *sp) {
    int rc = clear_stale_socket(sp->path);
    if (rc < 0)
        return rc;
    struct sockaddr_un sun;
    socklen_t len = unix_address(&sun, sp->path);
    int fd = chopin__socket_stream(AF_UNIX);
    if (fd < 0)
        return fd;
    if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
        rc = -errno;
        close(fd);
        listen_failed(sp->text, rc);
        return rc;
    }
    if ((sp->mode && chmod(sp->path, sp->mode) < 0) || listen(fd, somaxconn()) < 0) {
        rc = -errno;
        close(fd);
        unlink(sp->path);
        listen_failed(sp->text, rc);
        return rc;
    }
    ln->fds[0] = fd;
    ln->nfds = 1;
    snprintf(ln->name, sizeof ln->name, "unix:%s", sp->path);
    strcpy(ln->unlink_path, sp->path);
    return 0;
}

int chopin__listener_open(struct chopin__listener *ln, const struct chopin__listen_spec *spec,
                          int nfds, int share_port) {
    memset(ln, 0, sizeof *ln);
    ln->flags = spec->flags;
    if (spec->flags & CHOPIN__LISTEN_UNIX)
        return open_unix_listener(ln, spec);
    if (nfds > CHOPIN__MAX_WORKER_FDS)
        nfds = CHOPIN__MAX_WORKER_FDS;
    return open_tcp_listener(ln, spec, nfds, share_port);
}

void chopin__listener_close(struct chopin__listener *ln) {
    close_fds(ln);
    if (ln->unlink_path[0])
        unlink(ln->unlink_path);
    ln->unlink_path[0] = '\0';
}

/* ----- inherited sockets ------------------------------------------------------------------ */

static int env_number(const char *name, long *out) {
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return 0;
    errno = 0;
    *out = strtol(v, &end, 10);
    return !*end && errno == 0 && *out >= 0;
}

/* The listener index of the i-th name of LISTEN_FDNAMES ("chopin-2:web:chopin-0"), or -1. */
static int name_listener(const char *names, long i) {
    const char *p = names;
    for (; p && i > 0; i--)
        if ((p = strchr(p, ':')))
            p++;
    if (!p || strncmp(p, "chopin-", 7) != 0)
        return -1;
    char *end;
    long v = strtol(p + 7, &end, 10);
    return (*end == ':' || *end == '\0') && end != p + 7 && v >= 0 && v < CHOPIN__MAX_LISTENERS
               ? (int)v
               : -1;
}

int chopin__listen_inherited(struct chopin__inherited *in, int cap) {
    long pid, n;
    if (!env_number("LISTEN_PID", &pid) || pid != (long)getpid() || !env_number("LISTEN_FDS", &n))
        return 0;
    const char *names = getenv("LISTEN_FDNAMES");
    int got = 0;
    for (long i = 0; i < n && got < cap; i++) {
        int fd = LISTEN_FDS_START + (int)i;
        int type, listening = 0;
        socklen_t tl = sizeof type, ll = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 || !listening)
            continue; /* not a listening stream socket: not for us */
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        in[got++] = (struct chopin__inherited){fd, names ? name_listener(names, i) : -1};
    }
    /* Removed: a child this process starts must not take them too. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return got;
}

/* Whether `fd` listens where `sp` says: the same Unix path, or the same port on the
 * address `sp` resolves to (any address when it names no host). */
static int listens_on(int fd, const struct chopin__listen_spec *sp) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (sp->flags & CHOPIN__LISTEN_UNIX)
        return ss.ss_family == AF_UNIX &&
               strcmp(((struct sockaddr_un *)&ss)->sun_path, sp->path) == 0;
    if ((ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
        sockaddr_port(&ss) != atoi(sp->port))
        return 0;
    if (!sp->host[0])
        return 1;
    struct addrinfo hints = {.ai_family = ss.ss_family, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(sp->host, sp->port, &hints, &res) != 0)
        return 0;
    int same = 0;
    for (struct addrinfo *ai = res; ai && !same; ai = ai->ai_next)
        same = ai->ai_addrlen <= len && memcmp(ai->ai_addr, &ss, ai->ai_addrlen) == 0;
    freeaddrinfo(res);
    return same;
}

/* Names an inherited socket after its address. */
static void name_inherited(struct chopin__listener *ln, int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_UNIX) {
        snprintf(ln->name, sizeof ln->name, "unix:%s", ((struct sockaddr_un *)&ss)->sun_path);
        ln->flags |= CHOPIN__LISTEN_UNIX;
        return;
    }
    getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    ln->port = sockaddr_port(&ss);
    snprintf(ln->name, sizeof ln->name, ss.ss_family == AF_INET6 ? "%s[%s]:%s" : "%s%s:%s",
             ln->flags & CHOPIN__LISTEN_TLS ? "https://" : "", host, serv);
}

/* Whether inherited socket `in` is the family `spec` asks for (a restart names sockets by
 * index: the address list may have changed meanwhile). */
static int same_kind(const struct chopin__inherited *in, const struct chopin__listen_spec *spec) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(in->fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    return (ss.ss_family == AF_UNIX) == ((spec->flags & CHOPIN__LISTEN_UNIX) != 0);
}

int chopin__listener_adopt(struct chopin__listener *ln, const struct chopin__listen_spec *spec,
                           int index, struct chopin__inherited *in, int n, int max) {
    memset(ln, 0, sizeof *ln);
    ln->flags = spec->flags;
    if (max > CHOPIN__MAX_WORKER_FDS)
        max = CHOPIN__MAX_WORKER_FDS;
    int by_name = 0;
    for (int i = 0; i < n && ln->nfds < max; i++) {
        if (in[i].fd < 0 || in[i].listener != index || !same_kind(&in[i], spec))
            continue;
        ln->fds[ln->nfds++] = in[i].fd;
        in[i].fd = -1;
        by_name = 1;
    }
    for (int i = 0; i < n && ln->nfds < max && !by_name; i++) {
        if (in[i].fd < 0 || in[i].listener >= 0 || !listens_on(in[i].fd, spec))
            continue;
        ln->fds[ln->nfds++] = in[i].fd;
        in[i].fd = -1;
    }
    if (ln->nfds == 0)
        return 0;
    name_inherited(ln, ln->fds[0]);
    /* A Unix socket file this program made (handed over by a restart) is removed by the
     * last process to serve it; a service manager's is the manager's. */
    if (by_name && (spec->flags & CHOPIN__LISTEN_UNIX))
        strcpy(ln->unlink_path, spec->path);
    return 1;
}

int chopin__listener_adopt_any(struct chopin__listener *ln, int fd) {
    memset(ln, 0, sizeof *ln);
    ln->fds[0] = fd;
    ln->nfds = 1;
    name_inherited(ln, fd);
    return 0;
}
