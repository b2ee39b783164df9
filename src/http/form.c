/* SPDX-License-Identifier: MIT */
/* application/x-www-form-urlencoded bodies (see form.h). */
#include "http/form.h"

#include <errno.h>
#include <string.h>

#include "http/url.h"

ssize_t chopin__form_parse(char *buf, size_t len, uint32_t max_fields, size_t max_field_bytes,
                           chopin__form_field_fn field, void *arg) {
    size_t count = 0;
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *amp = memchr(p, '&', (size_t)(end - p));
        char *stop = amp ? amp : end;
        size_t flen = (size_t)(stop - p);
        if (flen) {
            if (count == max_fields || flen > max_field_bytes)
                return -EFBIG;
            char *eq = memchr(p, '=', flen);
            char *value = eq ? eq + 1 : stop;
            size_t nraw = (size_t)((eq ? eq : stop) - p), vraw = (size_t)(stop - value);
            /* Lenient decoding never fails and never lengthens. */
            size_t nlen = (size_t)chopin__pct_decode(p, p, nraw, CHOPIN__PCT_PLUS);
            size_t vlen = (size_t)chopin__pct_decode(value, value, vraw, CHOPIN__PCT_PLUS);
            int rc = field(arg, p, nlen, value, vlen);
            if (rc < 0)
                return rc;
            count++;
        }
        p = stop + 1;
    }
    return (ssize_t)count;
}
