/* SPDX-License-Identifier: MIT */
/* IMF-fixdate formatting and the once-a-second cache. */
#include "http/date.h"

#include <stdint.h>
#include <string.h>

#include "test.h"

struct known {
    int64_t t;
    const char *text;
};

static const struct known known_dates[] = {
    {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
    {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"}, /* RFC 9110's example */
    {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"}, /* leap year divisible by 400 */
    {951868799, "Tue, 29 Feb 2000 23:59:59 GMT"},
    {951868800, "Wed, 01 Mar 2000 00:00:00 GMT"},
    {1078012800, "Sun, 29 Feb 2004 00:00:00 GMT"},
    {1709164800, "Thu, 29 Feb 2024 00:00:00 GMT"},
    {1709251199, "Thu, 29 Feb 2024 23:59:59 GMT"},
    {1704067199, "Sun, 31 Dec 2023 23:59:59 GMT"},
    {1704067200, "Mon, 01 Jan 2024 00:00:00 GMT"},
    {2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"}, /* last 32-bit second */
    {2147483648, "Tue, 19 Jan 2038 03:14:08 GMT"},
    {4102444800, "Fri, 01 Jan 2100 00:00:00 GMT"}, /* 2100 is not a leap year */
    {4107542399, "Sun, 28 Feb 2100 23:59:59 GMT"},
    {4107542400, "Mon, 01 Mar 2100 00:00:00 GMT"}, /* no 29 Feb in 2100 */
    {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
    {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
    {-2208988800, "Mon, 01 Jan 1900 00:00:00 GMT"},
    {-62135596800, "Mon, 01 Jan 0001 00:00:00 GMT"},
};

static void test_known_timestamps(void)
{
    for (size_t i = 0; i < sizeof known_dates / sizeof known_dates[0]; i++) {
        char out[CHOPIN__DATE_LEN + 1];
        memset(out, 'x', sizeof out);
        chopin__date_format((time_t)known_dates[i].t, out);
        CHECK_MEM(out, strlen(out), known_dates[i].text);
        CHECK_INT(strlen(out), CHOPIN__DATE_LEN);
    }
}

static void test_out_of_range_is_clamped(void)
{
    char out[CHOPIN__DATE_LEN + 1];
    chopin__date_format((time_t)INT64_MAX, out);
    CHECK_MEM(out, strlen(out), "Fri, 31 Dec 9999 23:59:59 GMT");
    chopin__date_format((time_t)INT64_MIN, out);
    CHECK_MEM(out, strlen(out), "Sat, 01 Jan 0000 00:00:00 GMT");
}

/* Every hour over 500 years plus a random second, compared with the C library (which is
 * fine as a reference here; the code under test avoids it for its lock and locale). */
static void test_matches_gmtime(void)
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int mismatches = 0;
    uint32_t x = 7;
    for (int64_t t = -2208988800; t < 13569465600; t += 3600) {
        x = x * 1103515245u + 12345u;
        time_t tt = (time_t)(t + (x >> 16) % 3600);
        struct tm tm;
        char expected[64], got[CHOPIN__DATE_LEN + 1];
        gmtime_r(&tt, &tm);
        snprintf(expected, sizeof expected, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        chopin__date_format(tt, got);
        if (strcmp(expected, got) != 0 && mismatches++ < 5)
            fprintf(stderr, "  %lld: got %s, expected %s\n", (long long)tt, got, expected);
    }
    CHECK_INT(mismatches, 0);
}

static void test_update_only_when_second_changes(void)
{
    struct chopin__date d;
    memset(&d, 0, sizeof d);
    CHECK_INT(chopin__date_update(&d, 0), 1); /* first call formats even at second 0 */
    CHECK_MEM(d.text, strlen(d.text), "Thu, 01 Jan 1970 00:00:00 GMT");
    CHECK_INT(chopin__date_update(&d, 0), 0);
    CHECK_INT(chopin__date_update(&d, 784111777), 1);
    CHECK_MEM(d.text, strlen(d.text), "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK_INT(chopin__date_update(&d, 784111777), 0);
    CHECK_INT(chopin__date_update(&d, 784111778), 1);
    CHECK_MEM(d.text, strlen(d.text), "Sun, 06 Nov 1994 08:49:38 GMT");
    CHECK_INT(chopin__date_update(&d, 784111777), 1); /* back in time is a change too */
    CHECK_INT(d.second, 784111777);
}

int main(void)
{
    RUN(test_known_timestamps);
    RUN(test_out_of_range_is_clamped);
    RUN(test_matches_gmtime);
    RUN(test_update_only_when_second_changes);
    TEST_END();
}
