/* SPDX-License-Identifier: MIT */
/*
 * systemd notifications from a server in the background (issue 19, docs/operations.md
 * "systemd"), to a notify socket of the test's own: READY=1 with MAINPID once it listens,
 * WATCHDOG=1 while its worker answers, none while the worker is held in a handler (a stuck
 * worker must let systemd's watchdog fire), pings again once it is free, STOPPING=1 at the
 * stop. Runs once per backend (CHOPIN_BACKEND).
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "test.h"

static atomic_int held, release;

/* Holds its worker until the test lets go. */
static void hold(chopin_req *req, chopin_res *res, void *data) {
    atomic_store(&held, 1);
    while (!atomic_load(&release))
        usleep(1000);
    chopin_res_text(res, 200, "released");
}

static int port;
static void *ask_hold(void *arg) {
    (void)arg;
    cl_get(port, "/hold", NULL);
    return NULL;
}

/* Datagrams received within `ms`, or until `pings` WATCHDOG=1 or the text `until` came
 * (0 / NULL: no early end), as one text ("|" after each). Returns the WATCHDOG=1 count. The
 * bounds are generous: a busy machine may starve the notifying thread for a while. */
static int receive(int fd, int ms, int pings_wanted, const char *until, char *out, size_t cap) {
    int pings = 0;
    size_t used = 0;
    out[0] = '\0';
    for (int waited = 0; waited < ms; waited += 10) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) <= 0)
            continue;
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        pings += strcmp(buf, "WATCHDOG=1") == 0;
        used += (size_t)snprintf(out + used, cap - used, "%s|", buf);
        if (used >= cap)
            used = cap - 1;
        if ((pings_wanted && pings >= pings_wanted) || (until && strstr(out, until)))
            break;
    }
    return pings;
}

static void notifications(void) {
    char path[] = "/tmp/chopin-notify-XXXXXX";
    CHECK(mkdtemp(path) != NULL);
    char sock[128];
    snprintf(sock, sizeof sock, "%s/n.sock", path);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%.100s", sock);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
    setenv("NOTIFY_SOCKET", sock, 1);
    setenv("WATCHDOG_USEC", "100000", 1); /* a ping every 50 ms */

    chopin_router *r = chopin_router_new();
    chopin_router_get(r, "/hold", hold, NULL);
    chopin_options o = chopin_options_default();
    o.workers = 1;
    chopin_server *s = cl_start(r, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    port = chopin_server_port(s);
    char got[4096], want[64];
    snprintf(want, sizeof want, "READY=1\nMAINPID=%ld\nSTATUS=", (long)getpid());
    receive(fd, 5000, 0, want, got, sizeof got);
    CHECK(strncmp(got, want, strlen(want)) == 0); /* the first datagram */
    CHECK(receive(fd, 5000, 3, NULL, got, sizeof got) >= 3); /* about 10 a second */

    pthread_t t;
    pthread_create(&t, NULL, ask_hold, NULL);
    while (!atomic_load(&held))
        usleep(1000);
    /* Ten rounds with the worker held: the heartbeat of the round before it was taken may
     * still be answered, none after. */
    int stuck = receive(fd, 500, 0, NULL, got, sizeof got);
    CHECK(stuck <= 1);
    atomic_store(&release, 1);
    pthread_join(t, NULL);
    CHECK(receive(fd, 5000, 3, NULL, got, sizeof got) >= 3);

    chopin_server_stop(s);
    receive(fd, 5000, 0, "STOPPING=1|", got, sizeof got);
    CHECK(strstr(got, "STOPPING=1|") != NULL);
    chopin_server_wait(s);
    chopin_router_free(r);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    close(fd);
    unlink(sock);
    rmdir(path);
}

int main(void) {
    RUN(notifications);
    TEST_END();
}
