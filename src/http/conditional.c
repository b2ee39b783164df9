/* SPDX-License-Identifier: MIT */
/* Conditional requests (see conditional.h). */
#include "http/conditional.h"

#include <string.h>

#include "http/chars.h"

/* ---- HTTP-date (RFC 9110 §5.6.7) ---------------------------------------------------- */

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const days_long[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};

/* n digits at s, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The month (1..12) named by the three bytes at s (case-sensitive, as the grammar), or 0. */
static int month_of(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, months[i], 3) == 0)
            return i + 1;
    return 0;
}

/* Nonzero when s[0..3) is a day-name (short form). */
static int is_day_short(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(s, days_long[i], 3) == 0)
            return 1;
    return 0;
}

/* Days from 1970-01-01 to year-month-day (proleptic Gregorian; March-based years put
 * the leap day last). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return dm[m - 1] + (m == 2 && leap);
}

/* "HH:MM:SS" at s into seconds of the day, or -1. */
static int64_t time_of_day(const char *s)
{
    if (s[2] != ':' || s[5] != ':')
        return -1;
    int h = digits(s, 2), mi = digits(s + 3, 2), se = digits(s + 6, 2);
    if (h < 0 || mi < 0 || se < 0 || h > 23 || mi > 59 || se > 60) /* 60: a leap second */
        return -1;
    return (int64_t)h * 3600 + mi * 60 + se;
}

static int to_epoch(int64_t y, int m, int d, int64_t tod, int64_t *out)
{
    if (m < 1 || d < 1 || d > days_in_month(y, m) || tod < 0)
        return -1;
    *out = days_from_civil(y, m, d) * 86400 + tod;
    return 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int parse_imf(const char *s, size_t len, int64_t *out)
{
    if (len != 29 || !is_day_short(s) || memcmp(s + 3, ", ", 2) || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || memcmp(s + 25, " GMT", 4))
        return -1;
    int d = digits(s + 5, 2), m = month_of(s + 8), y = digits(s + 12, 4);
    if (d < 0 || y < 0)
        return -1;
    return to_epoch(y, m, d, time_of_day(s + 17), out);
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" */
static int parse_rfc850(const char *s, size_t len, int64_t now, int64_t *out)
{
    const char *comma = memchr(s, ',', len);
    if (!comma)
        return -1;
    size_t dl = (size_t)(comma - s);
    int day_ok = 0;
    for (int i = 0; i < 7; i++)
        day_ok |= strlen(days_long[i]) == dl && memcmp(s, days_long[i], dl) == 0;
    const char *p = comma + 1;
    if (!day_ok || len - dl != 24 || p[0] != ' ' || p[3] != '-' || p[7] != '-' || p[10] != ' ' ||
        memcmp(p + 19, " GMT", 4))
        return -1;
    int d = digits(p + 1, 2), m = month_of(p + 4), yy = digits(p + 8, 2);
    if (d < 0 || yy < 0)
        return -1;
    /* §5.6.7: a two-digit year that looks more than 50 years ahead is in the past. */
    int64_t this_year = 1970 + now / 31556952;
    int64_t y = this_year - this_year % 100 + yy;
    if (y > this_year + 50)
        y -= 100;
    return to_epoch(y, m, d, time_of_day(p + 11), out);
}

/* "Sun Nov  6 08:49:37 1994" */
static int parse_asctime(const char *s, size_t len, int64_t *out)
{
    if (len != 24 || !is_day_short(s) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' ||
        s[19] != ' ')
        return -1;
    int m = month_of(s + 4);
    int d = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
    int y = digits(s + 20, 4);
    if (d < 0 || y < 0)
        return -1;
    return to_epoch(y, m, d, time_of_day(s + 11), out);
}

int chopin__http_date_parse(const char *s, size_t len, int64_t now, int64_t *out)
{
    if (!s || len < 24)
        return -1;
    if (s[3] == ',')
        return parse_imf(s, len, out);
    if (memchr(s, ',', len))
        return parse_rfc850(s, len, now, out);
    return parse_asctime(s, len, out);
}

/* ---- entity-tags (RFC 9110 §8.8.3) -------------------------------------------------- */

static int is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* The entity-tag starting at s[*i] (OWS skipped by the caller): its opaque-tag (quotes
 * included) in [*tag, *tag + *tag_len), *weak set for "W/". Returns 0 when none. */
static int next_etag(const char *s, size_t len, size_t *i, const char **tag, size_t *tag_len,
                     int *weak)
{
    size_t p = *i;
    *weak = 0;
    if (len - p >= 2 && s[p] == 'W' && s[p + 1] == '/') {
        *weak = 1;
        p += 2;
    }
    if (p >= len || s[p] != '"')
        return 0;
    size_t q = p + 1;
    while (q < len && is_etagc((unsigned char)s[q]))
        q++;
    if (q >= len || s[q] != '"')
        return 0;
    *tag = s + p;
    *tag_len = q + 1 - p;
    *i = q + 1;
    return 1;
}

static size_t skip_ows(const char *s, size_t len, size_t i)
{
    while (i < len && chopin__is_ows((unsigned char)s[i]))
        i++;
    return i;
}

int chopin__etag_list_match(const char *s, size_t len, const char *etag, size_t etag_len,
                            int weak)
{
    size_t i = skip_ows(s, len, 0);
    if (i < len && s[i] == '*')
        return skip_ows(s, len, i + 1) == len;
    int found = 0;
    while (i < len) {
        if (s[i] == ',') {
            i = skip_ows(s, len, i + 1);
            continue;
        }
        const char *tag;
        size_t tag_len;
        int tag_weak;
        if (!next_etag(s, len, &i, &tag, &tag_len, &tag_weak))
            return 0;
        if ((weak || !tag_weak) && tag_len == etag_len && memcmp(tag, etag, etag_len) == 0)
            found = 1;
        i = skip_ows(s, len, i);
        if (i < len && s[i] != ',')
            return 0;
    }
    return found;
}

/* ---- precedence (RFC 9110 §13.2.2) -------------------------------------------------- */

/* A date field that is a valid HTTP-date; -1 when absent or invalid (then ignored). */
static int date_field(chopin_str f, int64_t now, int64_t *out)
{
    return f.ptr ? chopin__http_date_parse(f.ptr, f.len, now, out) : -1;
}

enum chopin__cond_result chopin__cond_eval(const struct chopin__cond_fields *f, int get_or_head,
                                           const struct chopin__validators *v, int64_t now)
{
    int64_t date;
    /* Step 1, else step 2: If-Unmodified-Since counts only without If-Match. */
    if (f->if_match.ptr) {
        if (!chopin__etag_list_match(f->if_match.ptr, f->if_match.len, v->etag, v->etag_len, 0))
            return CHOPIN__COND_FAILED;
    } else if (date_field(f->if_unmodified_since, now, &date) == 0) {
        if (v->last_modified > date)
            return CHOPIN__COND_FAILED;
    }
    /* Step 3, else step 4: If-Modified-Since counts only without If-None-Match. */
    if (f->if_none_match.ptr) {
        if (chopin__etag_list_match(f->if_none_match.ptr, f->if_none_match.len, v->etag,
                                    v->etag_len, 1))
            return get_or_head ? CHOPIN__COND_NOT_MODIFIED : CHOPIN__COND_FAILED;
    } else if (get_or_head && date_field(f->if_modified_since, now, &date) == 0) {
        if (v->last_modified <= date)
            return CHOPIN__COND_NOT_MODIFIED;
    }
    return CHOPIN__COND_PROCEED;
}

int chopin__if_range_holds(chopin_str if_range, const struct chopin__validators *v, int64_t now)
{
    if (!if_range.ptr)
        return 1;
    const char *s = if_range.ptr;
    size_t len = if_range.len;
    size_t i = skip_ows(s, len, 0);
    if (i < len && (s[i] == '"' || s[i] == 'W')) {
        const char *tag;
        size_t tag_len;
        int weak;
        if (!next_etag(s, len, &i, &tag, &tag_len, &weak) || skip_ows(s, len, i) != len)
            return 0;
        return !weak && tag_len == v->etag_len && memcmp(tag, v->etag, tag_len) == 0;
    }
    int64_t date;
    return chopin__http_date_parse(s + i, len - i, now, &date) == 0 && date == v->last_modified;
}
