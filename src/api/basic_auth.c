/* SPDX-License-Identifier: MIT */
/* HTTP Basic authentication (RFC 7617) as middleware. */
#include <string.h>
#include <strings.h>

#include "chopin.h"
#include "ops/observe.h"

/* Longer credentials are refused (a real user:password is far shorter). */
#define CREDENTIALS_MAX 512

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes padded base64 (RFC 4648 §4) into out; returns the length, or -1. */
static long b64_decode(const char *in, size_t n, char *out, size_t cap) {
    if (n == 0 || n % 4)
        return -1;
    size_t len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(c)) < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (len + 3 - (size_t)pad > cap)
            return -1;
        out[len++] = (char)(w >> 16);
        if (pad < 2)
            out[len++] = (char)(w >> 8);
        if (pad < 1)
            out[len++] = (char)w;
    }
    return (long)len;
}

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
        len = b64_decode(h.ptr + skip, h.len - skip, cred, sizeof cred);
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
