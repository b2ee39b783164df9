/* SPDX-License-Identifier: MIT */
/* The features a worker's connections may switch to (stack.h), from the options. */
#include "stack.h"

#include <string.h>

#include "h2/h2.h"
#include "tls/transport.h"

void chopin__stack_choose(struct chopin__stack *s, const chopin_options *o,
                          struct chopin__tls_ctx *tls) {
    memset(s, 0, sizeof *s);
    if (chopin__h2_available() && o->h2c) {
        s->preface = CHOPIN__H2_PREFACE;
        s->preface_len = CHOPIN__H2_PREFACE_LEN;
        s->start = chopin__h2_start;
    }
    if (chopin__h2_available() && o->h2c_upgrade)
        s->upgrade = chopin__h2_upgrade;
#ifdef CHOPIN_HAVE_TLS
    if (tls) {
        s->secure = chopin__tls_transport_install;
        s->secure_ctx = tls;
    }
#else
    (void)tls;
#endif
}
