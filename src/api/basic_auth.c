/* SPDX-License-Identifier: MIT */
/* HTTP Basic authentication (RFC 7617) as middleware. */
#include <string.h>
#include <strings.h>

#include "chopin.h"
#include "http/base64.h"
#include "ops/observe.h"

/* Longer credentials are refused (a real user:password is far shorter). */
#define CREDENTIALS_MAX 512

/* Whether got[0..n) equals want[0..m), in a time that depends on m only: every byte of
 * `want` is looked at whatever the input, and a length mismatch joins the same flag. */
static int equal_constant_time(const char *got, size_t n, const char *want, size_t m) {
    unsigned diff = n != m;
    for (size_t i = 0; i < m; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < n ? got[i] : 0);
    return diff == 0;
}

static int accepted(const chopin_basic_auth_options *o, const char *cred, size_t len,
                    size_t colon) {
    const char *user = cred, *pass = cred + colon + 1;
    size_t ulen = colon, plen = len - colon - 1;
    if (o->check)
        return o->check(user, ulen, pass, plen, o->arg) != 0;
    if (!o->user || !o->password)
        return 0;
    /* Both compared, always: a wrong user costs as long as a wrong password. */
    int u = equal_constant_time(user, ulen, o->user, strlen(o->user));
    int p = equal_constant_time(pass, plen, o->password, strlen(o->password));
    return u & p;
}

static void challenge(chopin_res *res, const chopin_basic_auth_options *o) {
    char value[256];
    const char *realm = o->realm ? o->realm : "chopin";
    size_t n = strlen(realm);
    if (n > sizeof value - 48 || strpbrk(realm, "\"\\"))
        realm = "chopin", n = 6;
    memcpy(value, "Basic realm=\"", 13);
    memcpy(value + 13, realm, n);
    memcpy(value + 13 + n, "\", charset=\"UTF-8\"", 19);
    chopin_res_text(res, 401, "authentication required\n");
    chopin_res_header_set(res, "WWW-Authenticate", value);
}

/* Keeps the user name for the handler and the access log (in the request arena). */
static void remember_user(chopin_req *req, const char *user, size_t len) {
    chopin_str *s = chopin_req_alloc(req, sizeof *s + len);
    if (!s)
        return;
    char *text = (char *)(s + 1);
    memcpy(text, user, len);
    *s = (chopin_str){text, len};
    chopin_req_set_data(req, &chopin__user_key, s);
}

void chopin_basic_auth(chopin_req *req, chopin_res *res, chopin_next *next, void *opts) {
    const chopin_basic_auth_options *o = opts;
    chopin_str h = chopin_req_header(req, "authorization");
    char cred[CREDENTIALS_MAX];
    long len = -1;
    if (h.ptr && h.len > 6 && strncasecmp(h.ptr, "basic ", 6) == 0) {
        size_t skip = 6;
        while (skip < h.len && h.ptr[skip] == ' ')
            skip++;
        len = chopin__base64_decode(h.ptr + skip, h.len - skip, (uint8_t *)cred, sizeof cred,
                                    CHOPIN__B64_PADDED);
    }
    const char *colon = len > 0 ? memchr(cred, ':', (size_t)len) : NULL;
    if (!colon || !accepted(o, cred, (size_t)len, (size_t)(colon - cred))) {
        challenge(res, o);
        return;
    }
    remember_user(req, cred, (size_t)(colon - cred));
    chopin_next_run(next);
}

chopin_str chopin_req_user(const chopin_req *req) {
    const chopin_str *s = chopin_req_data(req, &chopin__user_key);
    return s ? *s : (chopin_str){NULL, 0};
}
