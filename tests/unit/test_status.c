/* SPDX-License-Identifier: MIT */
/* Reason phrases: registered codes, class phrases, bounds, and valid characters. */
#include "http/status.h"

#include <string.h>

#include "test.h"

struct named {
    int code;
    const char *phrase;
};

/* Written out independently of the table in status.c, from RFC 9110 §15 and friends. */
static const struct named expected[] = {
    {100, "Continue"}, {101, "Switching Protocols"}, {102, "Processing"},
    {103, "Early Hints"}, {200, "OK"}, {201, "Created"}, {202, "Accepted"},
    {203, "Non-Authoritative Information"}, {204, "No Content"}, {205, "Reset Content"},
    {206, "Partial Content"}, {207, "Multi-Status"}, {208, "Already Reported"},
    {226, "IM Used"}, {300, "Multiple Choices"}, {301, "Moved Permanently"},
    {302, "Found"}, {303, "See Other"}, {304, "Not Modified"}, {305, "Use Proxy"},
    {306, "Unused"}, {307, "Temporary Redirect"}, {308, "Permanent Redirect"},
    {400, "Bad Request"}, {401, "Unauthorized"}, {402, "Payment Required"},
    {403, "Forbidden"}, {404, "Not Found"}, {405, "Method Not Allowed"},
    {406, "Not Acceptable"}, {407, "Proxy Authentication Required"},
    {408, "Request Timeout"}, {409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
    {412, "Precondition Failed"}, {413, "Content Too Large"}, {414, "URI Too Long"},
    {415, "Unsupported Media Type"}, {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"}, {418, "I'm a teapot"}, {421, "Misdirected Request"},
    {422, "Unprocessable Content"}, {423, "Locked"}, {424, "Failed Dependency"},
    {425, "Too Early"}, {426, "Upgrade Required"}, {428, "Precondition Required"},
    {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"}, {500, "Internal Server Error"},
    {501, "Not Implemented"}, {502, "Bad Gateway"}, {503, "Service Unavailable"},
    {504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"}, {507, "Insufficient Storage"},
    {508, "Loop Detected"}, {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

static void test_registered_codes(void)
{
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const char *got = chopin__status_reason(expected[i].code);
        CHECK(got != NULL);
        if (got != NULL && strcmp(got, expected[i].phrase) != 0) {
            fprintf(stderr, "  %d: got \"%s\", expected \"%s\"\n", expected[i].code, got,
                    expected[i].phrase);
            CHECK(0);
        }
    }
}

static void test_unregistered_codes_get_class_phrase(void)
{
    CHECK_MEM(chopin__status_reason(199), 13, "Informational");
    CHECK_MEM(chopin__status_reason(299), 7, "Success");
    CHECK_MEM(chopin__status_reason(399), 11, "Redirection");
    CHECK_MEM(chopin__status_reason(419), 12, "Client Error");
    CHECK_MEM(chopin__status_reason(499), 12, "Client Error");
    CHECK_MEM(chopin__status_reason(509), 12, "Server Error");
    CHECK_MEM(chopin__status_reason(599), 12, "Server Error");
}

static void test_out_of_range_is_null(void)
{
    static const int bad[] = {-1, 0, 1, 42, 99, 600, 999, 1000, -200, 2147483647};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(chopin__status_reason(bad[i]) == NULL);
}

/* Every code in range has a non-empty phrase of reason-phrase characters (RFC 9112 §4:
 * HTAB / SP / VCHAR / obs-text), and none is a placeholder. */
static void test_every_code_has_valid_phrase(void)
{
    int bad = 0;
    for (int code = 100; code <= 599; code++) {
        const char *p = chopin__status_reason(code);
        if (p == NULL || p[0] == '\0' || strstr(p, "Unknown") != NULL) {
            bad++;
            continue;
        }
        for (const unsigned char *c = (const unsigned char *)p; *c; c++)
            if (!(*c == '\t' || *c == ' ' || (*c >= 0x21 && *c != 0x7f)))
                bad++;
    }
    CHECK_INT(bad, 0);
}

int main(void)
{
    RUN(test_registered_codes);
    RUN(test_unregistered_codes_get_class_phrase);
    RUN(test_out_of_range_is_null);
    RUN(test_every_code_has_valid_phrase);
    TEST_END();
}
