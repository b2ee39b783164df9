/* SPDX-License-Identifier: MIT */
/*
 * kTLS detection (docs/tls.md, "kTLS"). The kernel's record layer needs its "tls" upper
 * layer protocol on the socket (setsockopt TCP_ULP "tls", Linux 4.13+, module tls); where
 * the module is missing the call fails with ENOENT and the connection keeps OpenSSL's
 * records in user space. The first failure of the process is logged once, so an operator
 * learns why sendfile is not zero-copy under TLS.
 */
#include "tls/tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

static atomic_int ktls_said;

int chopin__ktls_attach(int fd) {
    if (fd < 0)
        return -EBADF;
    if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") == 0)
        return 0;
    int err = errno;
    if (!atomic_exchange(&ktls_said, 1))
        chopin_log(CHOPIN_LOG_INFO, "chopin: kTLS unavailable (setsockopt TCP_ULP \"tls\": %s%s); TLS records "
                        "are built in user space", strerror(err),
                err == ENOENT ? ": the kernel has no tls module" : "");
    return -err;
}
