/* SPDX-License-Identifier: MIT */
/*
 * Reason phrases: every code registered by RFC 9110 §15, plus the ones in common use from
 * other RFCs (WebDAV RFC 4918/5842, RFC 6585, RFC 7725, RFC 8297, RFC 8470, RFC 2295/2774,
 * RFC 2324's 418 as RFC 9110 §15.5.19 reserves it). A code in 100..599 without a name
 * gets the phrase of its class, never a placeholder: the status line must stay valid.
 */
#include "http/status.h"

#include <stddef.h>

#define CHOPIN__STATUS_MAP(X)                          \
    X(100, "Continue")                                 \
    X(101, "Switching Protocols")                      \
    X(102, "Processing")                               \
    X(103, "Early Hints")                              \
    X(200, "OK")                                       \
    X(201, "Created")                                  \
    X(202, "Accepted")                                 \
    X(203, "Non-Authoritative Information")            \
    X(204, "No Content")                               \
    X(205, "Reset Content")                            \
    X(206, "Partial Content")                          \
    X(207, "Multi-Status")                             \
    X(208, "Already Reported")                         \
    X(226, "IM Used")                                  \
    X(300, "Multiple Choices")                         \
    X(301, "Moved Permanently")                        \
    X(302, "Found")                                    \
    X(303, "See Other")                                \
    X(304, "Not Modified")                             \
    X(305, "Use Proxy")                                \
    X(306, "Unused")                                   \
    X(307, "Temporary Redirect")                       \
    X(308, "Permanent Redirect")                       \
    X(400, "Bad Request")                              \
    X(401, "Unauthorized")                             \
    X(402, "Payment Required")                         \
    X(403, "Forbidden")                                \
    X(404, "Not Found")                                \
    X(405, "Method Not Allowed")                       \
    X(406, "Not Acceptable")                           \
    X(407, "Proxy Authentication Required")            \
    X(408, "Request Timeout")                          \
    X(409, "Conflict")                                 \
    X(410, "Gone")                                     \
    X(411, "Length Required")                          \
    X(412, "Precondition Failed")                      \
    X(413, "Content Too Large")                        \
    X(414, "URI Too Long")                             \
    X(415, "Unsupported Media Type")                   \
    X(416, "Range Not Satisfiable")                    \
    X(417, "Expectation Failed")                       \
    X(418, "I'm a teapot")                             \
    X(421, "Misdirected Request")                      \
    X(422, "Unprocessable Content")                    \
    X(423, "Locked")                                   \
    X(424, "Failed Dependency")                        \
    X(425, "Too Early")                                \
    X(426, "Upgrade Required")                         \
    X(428, "Precondition Required")                    \
    X(429, "Too Many Requests")                        \
    X(431, "Request Header Fields Too Large")          \
    X(451, "Unavailable For Legal Reasons")            \
    X(500, "Internal Server Error")                    \
    X(501, "Not Implemented")                          \
    X(502, "Bad Gateway")                              \
    X(503, "Service Unavailable")                      \
    X(504, "Gateway Timeout")                          \
    X(505, "HTTP Version Not Supported")               \
    X(506, "Variant Also Negotiates")                  \
    X(507, "Insufficient Storage")                     \
    X(508, "Loop Detected")                            \
    X(510, "Not Extended")                             \
    X(511, "Network Authentication Required")

/* Indexed by status - 100: one load per lookup, 4 KB of pointers. */
static const char *const named[500] = {
#define CHOPIN__STATUS_ENTRY(code, phrase) [(code) - 100] = (phrase),
    CHOPIN__STATUS_MAP(CHOPIN__STATUS_ENTRY)
#undef CHOPIN__STATUS_ENTRY
};

static const char *const class_phrase[5] = {
    "Informational", "Success", "Redirection", "Client Error", "Server Error",
};

const char *chopin__status_reason(int status)
{
    if (status < 100 || status > 599)
        return NULL;
    const char *phrase = named[status - 100];
    return phrase != NULL ? phrase : class_phrase[status / 100 - 1];
}
