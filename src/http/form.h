/* SPDX-License-Identifier: MIT */
/*
 * application/x-www-form-urlencoded bodies (WHATWG URL §5.1): fields separated by '&',
 * each "name=value" (or "name" alone: an empty value), '+' a space and %XX escapes
 * decoded; a '%' without two hex digits stays as it is, as browsers read it. Pure: the
 * caller owns the bytes, which are decoded in place.
 */
#ifndef CHOPIN_HTTP_FORM_H
#define CHOPIN_HTTP_FORM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Returns 0 to go on or a negative code, which stops the parse and is returned. */
typedef int (*chopin__form_field_fn)(void *arg, const char *name, size_t name_len,
                                     const char *value, size_t value_len);

/**
 * Splits buf[0..len) into fields, decodes each name and value in place and calls `field`
 * with each, in order; empty pieces ("a=1&&b=2") are skipped. Returns the number of
 * fields, -EFBIG when there are more than max_fields or one field ("name=value" as sent)
 * is longer than max_field_bytes (checked before any decoding of that field), or the
 * callback's error.
 */
ssize_t chopin__form_parse(char *buf, size_t len, uint32_t max_fields, size_t max_field_bytes,
                           chopin__form_field_fn field, void *arg);

#endif
