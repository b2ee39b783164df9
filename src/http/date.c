/* SPDX-License-Identifier: MIT */
/*
 * IMF-fixdate (RFC 9110 §5.6.7) without the C library's time formatting: strftime depends
 * on the locale (day and month names), and glibc's gmtime_r takes the global timezone lock.
 * The calendar arithmetic below is pure and covers every 4-digit year.
 */
#include "http/date.h"

#include <stdint.h>

#define SECONDS_PER_DAY 86400
/* The format has room for four year digits: times outside years 0000..9999 are clamped. */
#define MIN_TIME (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define MAX_TIME 253402300799LL   /* 9999-12-31T23:59:59Z */

struct civil {
    int64_t year;
    unsigned month; /* 1..12 */
    unsigned day;   /* 1..31 */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * Proleptic Gregorian date of a day count from 1970-01-01. Years are counted from March 1st
 * so that February, with its leap day, comes last: then a year's day number maps to a
 * month by a linear formula (months from March alternate 31/30 days in a 153-day, 5-month
 * pattern), and leap years only decide the length of the year, not where months start.
 */
static struct civil civil_from_days(int64_t days)
{
    const int64_t days_per_400y = 146097;
    /* 719468 days from 0000-03-01 to 1970-01-01. */
    int64_t shifted = days + 719468;
    int64_t cycle = floor_div(shifted, days_per_400y);
    int64_t day_of_cycle = shifted - cycle * days_per_400y; /* 0..146096 */
    /* Every 4th year has one day more, except every 100th, except every 400th. */
    int64_t year_of_cycle = (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36524 -
                             day_of_cycle / 146096) / 365;
    int64_t day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    int64_t month_from_march = (5 * day_of_year + 2) / 153; /* 0 = March .. 11 = February */
    struct civil c;
    c.day = (unsigned)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    c.month = (unsigned)(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
    c.year = cycle * 400 + year_of_cycle + (c.month <= 2);
    return c;
}

static char *put_2digits(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

static char *put_text(char *p, const char *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = s[i];
    return p + n;
}

void chopin__date_format(time_t t, char out[CHOPIN__DATE_LEN + 1])
{
    static const char weekdays[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01 was a Thursday */
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t secs = (int64_t)t;
    if (secs < MIN_TIME)
        secs = MIN_TIME;
    if (secs > MAX_TIME)
        secs = MAX_TIME;

    int64_t days = floor_div(secs, SECONDS_PER_DAY);
    unsigned second_of_day = (unsigned)(secs - days * SECONDS_PER_DAY);
    unsigned weekday = (unsigned)(days - floor_div(days, 7) * 7);
    struct civil c = civil_from_days(days);
    unsigned year = (unsigned)c.year;

    char *p = put_text(out, weekdays + 3 * weekday, 3);
    p = put_text(p, ", ", 2);
    p = put_2digits(p, c.day);
    *p++ = ' ';
    p = put_text(p, months + 3 * (c.month - 1), 3);
    *p++ = ' ';
    p = put_2digits(p, year / 100);
    p = put_2digits(p, year % 100);
    *p++ = ' ';
    p = put_2digits(p, second_of_day / 3600);
    *p++ = ':';
    p = put_2digits(p, second_of_day / 60 % 60);
    *p++ = ':';
    p = put_2digits(p, second_of_day % 60);
    p = put_text(p, " GMT", 4);
    *p = '\0';
}

int chopin__date_update(struct chopin__date *d, time_t now)
{
    /* text[0] is NUL only before the first update, whatever `second` holds then. */
    if (now == d->second && d->text[0] != '\0')
        return 0;
    chopin__date_format(now, d->text);
    d->second = now;
    return 1;
}
