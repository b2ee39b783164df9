/* SPDX-License-Identifier: MIT */
/*
 * Request smuggling and malformed framing over a real socket (RFC 9112 §2-§7, §11.2;
 * RFC 9110 §5, §8.6, §10.1.1). Each case is one byte sequence with the outcome the RFC
 * asks of an origin server, and most carry a hidden second request (GET /hidden) where an
 * ambiguous framing would let it through: in the body, after a body the server might
 * misjudge, or behind a header it might not see. /hidden counts its hits; it must stay at
 * 0, and no response may follow the one expected.
 *
 * Every case is sent twice: in one write, and one byte per write (a request that ends on
 * a segment boundary must not be judged early: the Rust engine's P1 desync). Rejected
 * requests must get their status with Connection: close, then a clean close (FIN, not a
 * reset that would lose the answer). Accepted ones are followed by GET /sentinel, whose
 * answer must come next: proof that the connection is still in sync. Runs per backend.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "http/message.h"
#include "test.h"

/* The request that must never be answered: 33 bytes. */
#define HIDDEN "GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n"
#define HIDDEN_LEN "33"
#define HIDDEN_HEX "21"
_Static_assert(sizeof HIDDEN - 1 == 33, "HIDDEN_LEN and HIDDEN_HEX describe HIDDEN");

#define POST "POST /echo HTTP/1.1\r\nHost: x\r\n"
#define CHUNKED_HIDDEN HIDDEN_HEX "\r\n" HIDDEN "\r\n0\r\n\r\n"

/* Server limits for this suite: small, so limit cases stay short. */
#define MAX_LINE 1024
#define MAX_HEAD 4096
#define MAX_HEADERS 32
#define MAX_BODY 65536

static int port;          /* default deadlines: a slow byte-by-byte send never trips them */
static int deadline_port; /* header and body deadlines of 1 s, for the 408 cases */
static int hidden_hits;

static void echo(chopin_req *req, chopin_res *res, void *data) {
    chopin_str b = chopin_req_body(req);
    chopin_res_copy(res, 200, "application/octet-stream", b.ptr, b.len);
}

static void hidden(chopin_req *req, chopin_res *res, void *data) {
    __atomic_add_fetch(&hidden_hits, 1, __ATOMIC_SEQ_CST);
    chopin_res_text(res, 200, "HIDDEN");
}

static void sentinel(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_text(res, 200, "sentinel");
}

/* The authority the server took, and the path: for absolute-form targets. */
static void host(chopin_req *req, chopin_res *res, void *data) {
    char buf[256];
    chopin_str path = chopin_req_path(req);
    int n = snprintf(buf, sizeof buf, "%.*s %.*s", (int)req->head.host_len,
                     req->head.host ? req->head.host : "", (int)path.len, path.ptr);
    chopin_res_copy(res, 200, "text/plain", buf, (size_t)n);
}

/* How a case ends. */
enum {
    KEEP = 0,   /* answered, connection stays open: /sentinel must be answered next */
    CLOSE = 1,  /* answered with Connection: close, then closed */
    SHUT = 2,   /* the client half-closes after sending */
    SILENT = 4, /* no response at all, just a close (incomplete request at EOF) */
    DEADLINE = 8, /* answered by a deadline: sent to the server with short ones */
};

struct smuggle_case {
    const char *name;
    const char *req;
    size_t len;
    int status;       /* expected status (0 with SILENT) */
    const char *body; /* expected body of a 2xx, NULL: not checked */
    int flags;
};

#define R(s) s, sizeof(s) - 1

static char long_line[MAX_LINE + 64], long_header[MAX_HEAD + 64], many_headers[4096],
    long_ext[8192], line_at_limit[MAX_LINE + 64], head_at_limit[MAX_HEAD + 64],
    headers_at_limit[4096], body_at_limit[MAX_BODY + 256];

static struct smuggle_case cases[] = {
    /* --- Content-Length and Transfer-Encoding together (RFC 9112 §6.1, §6.3 item 3) --- */
    {"cl_then_te", R(POST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"te_then_cl", R(POST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_with_unknown_te", R(POST "Content-Length: 38\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_zero_with_te", R(POST "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_in_http10", R("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},

    /* --- Content-Length values (RFC 9110 §8.6: 1*DIGIT; a list must repeat one value) - */
    {"cl_duplicate_same", R(POST "Content-Length: 33\r\nContent-Length: 33\r\n\r\n" HIDDEN), 200, HIDDEN, KEEP},
    {"cl_duplicate_conflict", R(POST "Content-Length: 0\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_duplicate_conflict_rev", R(POST "Content-Length: 33\r\nContent-Length: 0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_list_same", R(POST "Content-Length: 33, 33\r\n\r\n" HIDDEN), 200, HIDDEN, KEEP},
    {"cl_list_conflict", R(POST "Content-Length: 0, 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_list_trailing_comma", R(POST "Content-Length: 33,\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_plus_sign", R(POST "Content-Length: +33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_minus_sign", R(POST "Content-Length: -1\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_hex", R(POST "Content-Length: 0x21\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_space_inside", R(POST "Content-Length: 3 3\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_trailing_letter", R(POST "Content-Length: 33a\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_decimal_point", R(POST "Content-Length: 33.0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_empty", R(POST "Content-Length: \r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_overflow", R(POST "Content-Length: 18446744073709551649\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_ows_around", R(POST "Content-Length: \t 33 \t\r\n\r\n" HIDDEN), 200, HIDDEN, KEEP},
    {"cl_leading_zeros", R(POST "Content-Length: 00033\r\n\r\n" HIDDEN), 200, HIDDEN, KEEP},
    {"cl_space_before_colon", R(POST "Content-Length : 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_tab_before_colon", R(POST "Content-Length\t: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_vertical_tab", R(POST "Content-Length: 33\x0b\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cl_body_on_get", R("GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n" HIDDEN), 200, HIDDEN, KEEP},

    /* --- Transfer-Encoding obfuscations (RFC 9112 §6.1, §6.3 item 4, §7) ---------------- */
    {"te_upper_case", R(POST "Transfer-Encoding: CHUNKED\r\n\r\n" CHUNKED_HIDDEN), 200, HIDDEN, KEEP},
    {"te_mixed_case", R(POST "transfer-encoding: ChUnKeD\r\n\r\n" CHUNKED_HIDDEN), 200, HIDDEN, KEEP},
    {"te_no_space", R(POST "Transfer-Encoding:chunked\r\n\r\n" CHUNKED_HIDDEN), 200, HIDDEN, KEEP},
    {"te_ows_around", R(POST "Transfer-Encoding: \t chunked \t\r\n\r\n" CHUNKED_HIDDEN), 200, HIDDEN, KEEP},
    {"te_gzip_then_chunked", R(POST "Transfer-Encoding: gzip, chunked\r\n\r\n" CHUNKED_HIDDEN), 501, NULL, CLOSE},
    {"te_two_fields_gzip_chunked", R(POST "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" CHUNKED_HIDDEN), 501, NULL, CLOSE},
    {"te_chunked_not_last", R(POST "Transfer-Encoding: chunked, gzip\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_two_fields_not_last", R(POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_chunked_twice", R(POST "Transfer-Encoding: chunked, chunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_chunked_two_fields", R(POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_identity", R(POST "Transfer-Encoding: identity\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"te_unknown", R(POST "Transfer-Encoding: foo\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"te_prefix_x", R(POST "Transfer-Encoding: xchunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_suffix_x", R(POST "Transfer-Encoding: chunkedx\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_quoted", R(POST "Transfer-Encoding: \"chunked\"\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_parameter", R(POST "Transfer-Encoding: chunked;q=1\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_empty_element", R(POST "Transfer-Encoding: , chunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_empty", R(POST "Transfer-Encoding: \r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"te_space_before_colon", R(POST "Transfer-Encoding : chunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_obs_fold_value", R(POST "Transfer-Encoding:\r\n chunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_split_over_lines", R(POST "Transfer-Encoding: chunk\r\n ed\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_vertical_tab", R(POST "Transfer-Encoding: chunked\x0b\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_form_feed", R(POST "Transfer-Encoding: \x0c" "chunked\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_nul", R(POST "Transfer-Encoding: chunked\0\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},
    {"te_bare_cr_in_value", R(POST "Transfer-Encoding: chunked\rX: y\r\n\r\n" CHUNKED_HIDDEN), 400, NULL, CLOSE},

    /* --- chunked framing (RFC 9112 §7.1) ------------------------------------------------ */
    {"chunk_size_overflow", R(POST "Transfer-Encoding: chunked\r\n\r\n10000000000000021\r\n" HIDDEN "\r\n0\r\n\r\n"), 400, NULL, CLOSE},
    {"chunk_size_leading_zeros", R(POST "Transfer-Encoding: chunked\r\n\r\n00000000000000000000" HIDDEN_HEX "\r\n" HIDDEN "\r\n0\r\n\r\n"), 200, HIDDEN, KEEP},
    {"chunk_size_garbage", R(POST "Transfer-Encoding: chunked\r\n\r\nzz\r\n" HIDDEN "\r\n0\r\n\r\n"), 400, NULL, CLOSE},
    {"chunk_size_plus", R(POST "Transfer-Encoding: chunked\r\n\r\n+21\r\n" HIDDEN "\r\n0\r\n\r\n"), 400, NULL, CLOSE},
    {"chunk_size_minus", R(POST "Transfer-Encoding: chunked\r\n\r\n-1\r\n" HIDDEN "\r\n0\r\n\r\n"), 400, NULL, CLOSE},
    {"chunk_size_0x", R(POST "Transfer-Encoding: chunked\r\n\r\n0x21\r\n" HIDDEN "\r\n0\r\n\r\n"), 400, NULL, CLOSE},
    {"chunk_size_leading_space", R(POST "Transfer-Encoding: chunked\r\n\r\n 21\r\n" HIDDEN "\r\n0\r\n\r\n"), 400, NULL, CLOSE},
    {"chunk_size_trailing_space", R(POST "Transfer-Encoding: chunked\r\n\r\n21 \r\n" HIDDEN "\r\n0\r\n\r\n"), 400, NULL, CLOSE},
    {"chunk_size_empty", R(POST "Transfer-Encoding: chunked\r\n\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_data_too_long", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_data_too_short", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhel\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_missing_final_crlf", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_missing_last_chunk", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_bare_lf_after_size", R(POST "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_bare_lf_after_data", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_bare_cr_after_data", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_bare_lf_last", R(POST "Transfer-Encoding: chunked\r\n\r\n0\n\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_ext", R(POST "Transfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0;last\r\n\r\n"), 200, "hello", KEEP},
    {"chunk_ext_quoted", R(POST "Transfer-Encoding: chunked\r\n\r\n5;a=\"x;\\\"y\\r\\n\"\r\nhello\r\n0\r\n\r\n"), 200, "hello", KEEP},
    {"chunk_ext_bws", R(POST "Transfer-Encoding: chunked\r\n\r\n5 ; a = b\r\nhello\r\n0\r\n\r\n"), 200, "hello", KEEP},
    {"chunk_ext_empty_name", R(POST "Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_ext_bare_lf", R(POST "Transfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_ext_ctl", R(POST "Transfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_ext_unterminated_quote", R(POST "Transfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunk_ext_too_long", NULL, 0, 400, NULL, CLOSE}, /* built in main */
    {"trailers", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: y\r\nX-U: z\r\n\r\n"), 200, "hello", KEEP},
    {"trailer_framing_ignored", R(POST "Transfer-Encoding: chunked\r\n\r\n" HIDDEN_HEX "\r\n" HIDDEN "\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 200, HIDDEN, KEEP},
    {"trailer_cl_dropped", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 33\r\n\r\n"), 200, "hello", KEEP},
    {"trailer_obs_fold", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"trailer_no_colon", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nGarbage\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"trailer_bare_lf", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: y\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"chunked_over_body_limit", R(POST "Transfer-Encoding: chunked\r\n\r\n10001\r\n" HIDDEN), 413, NULL, CLOSE},
    {"chunked_sum_over_body_limit", NULL, 0, 413, NULL, CLOSE}, /* built in main */

    /* --- line endings, CR, LF, folding (RFC 9112 §2.2, §5.2) ---------------------------- */
    {"bare_lf_everywhere", R("GET /sentinel HTTP/1.1\nHost: x\n\n" HIDDEN), 400, NULL, CLOSE},
    {"bare_lf_request_line", R("GET /sentinel HTTP/1.1\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"bare_lf_between_headers", R(POST "X: a\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"bare_lf_end_of_head", R(POST "Content-Length: 33\r\n\n" HIDDEN), 400, NULL, CLOSE},
    {"bare_cr_in_value", R(POST "X: a\rContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"bare_cr_in_request_line", R("GET /sentinel\r HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"cr_cr_lf", R(POST "Content-Length: 33\r\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"obs_fold_space", R(POST "X: a\r\n Content-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"obs_fold_tab", R(POST "X: a\r\n\tb\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"leading_space_first_header", R("POST /echo HTTP/1.1\r\n Content-Length: 33\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"leading_empty_lines", R("\r\n\r\nGET /sentinel HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "sentinel", KEEP},
    {"too_many_leading_empty_lines", R("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET /sentinel HTTP/1.1\r\nHost: x\r\n\r\n"), 400, NULL, CLOSE},

    /* --- NUL, control bytes, token characters (RFC 9110 §5.1, §5.5, §5.6.2) ------------- */
    {"nul_in_value", R(POST "X: a\0b\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"nul_in_target", R("GET /sent\0inel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"nul_in_method", R("GE\0T /sentinel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"nul_in_name", R(POST "Content\0-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"ctl_in_value", R(POST "X: a\x01\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"esc_in_value", R(POST "X: \x1b[0m\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"del_in_value", R(POST "X: a\x7f\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"del_in_target", R("GET /sent\x7finel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"ctl_in_target", R("GET /sent\x01inel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"obs_text_in_value", R("GET /sentinel HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n"), 200, "sentinel", KEEP},
    {"paren_in_name", R(POST "X(a): b\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"at_in_name", R(POST "X@a: b\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"slash_in_name", R(POST "X/a: b\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"brace_in_name", R(POST "{X}: b\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"high_byte_in_name", R(POST "X\xff: b\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"empty_name", R(POST ": b\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"no_colon", R(POST "Content-Length 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"bad_method_char", R("G(T /sentinel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"tab_after_method", R("GET\t/sentinel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"double_space_after_method", R("GET  /sentinel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"space_in_target", R("GET /sent inel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"leading_space_request_line", R(" GET /sentinel HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"http09", R("GET /sentinel\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"version_lower_case", R("GET /sentinel http/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"version_two_digits", R("GET /sentinel HTTP/1.10\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"version_1_2", R("GET /sentinel HTTP/1.2\r\nHost: x\r\n\r\n" HIDDEN), 505, NULL, CLOSE},
    {"version_2_0", R("GET /sentinel HTTP/2.0\r\nHost: x\r\n\r\n" HIDDEN), 505, NULL, CLOSE},
    {"version_trailing_space", R("GET /sentinel HTTP/1.1 \r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},

    /* --- Host (RFC 9112 §3.2, §3.2.2) ---------------------------------------------------- */
    {"host_missing_http11", R("POST /echo HTTP/1.1\r\nContent-Length: 33\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_missing_http10", R("GET /sentinel HTTP/1.0\r\n\r\n" HIDDEN), 200, "sentinel", CLOSE},
    {"host_twice_same", R("GET /sentinel HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_twice_different", R("GET /sentinel HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_with_space", R("GET /sentinel HTTP/1.1\r\nHost: a b\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_with_slash", R("GET /sentinel HTTP/1.1\r\nHost: a/b\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_with_userinfo", R("GET /sentinel HTTP/1.1\r\nHost: user@a\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_with_query", R("GET /sentinel HTTP/1.1\r\nHost: a?b\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_with_fragment", R("GET /sentinel HTTP/1.1\r\nHost: a#b\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    /* RFC 9112 §3.2: a conforming client never sends a fragment; refused by the parser */
    {"target_with_fragment", R("GET /sentinel#x HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"query_with_fragment", R("GET /sentinel?a#x HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_non_ascii", R("GET /sentinel HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_port_not_digits", R("GET /sentinel HTTP/1.1\r\nHost: a:b\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_two_ports", R("GET /sentinel HTTP/1.1\r\nHost: a:1:2\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_unclosed_ip_literal", R("GET /sentinel HTTP/1.1\r\nHost: [::1\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"host_with_port", R("GET /host HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"), 200, "a.example:8080 /host", KEEP},
    {"host_ip_literal", R("GET /host HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 200, "[::1]:8080 /host", KEEP},
    {"host_sub_delims", R("GET /host HTTP/1.1\r\nHost: a-b_c~d!$&'()*+,;=%41\r\n\r\n"), 200, "a-b_c~d!$&'()*+,;=%41 /host", KEEP},
    {"host_empty", R("GET /host HTTP/1.1\r\nHost:\r\n\r\n"), 200, " /host", KEEP},
    {"absolute_form_authority_wins", R("GET http://target.example/host HTTP/1.1\r\nHost: header.example\r\n\r\n"), 200, "target.example /host", KEEP},
    {"absolute_form_empty_path", R("GET http://target.example HTTP/1.1\r\nHost: h\r\n\r\n"), 404, NULL, KEEP},
    {"absolute_form_ip_literal", R("GET http://[::1]:80/host HTTP/1.1\r\nHost: h\r\n\r\n"), 200, "[::1]:80 /host", KEEP},
    {"absolute_form_bad_port", R("GET http://target.example:x/host HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"absolute_form_bad_authority_char", R("GET http://tar\"get/host HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"absolute_form_userinfo", R("GET http://user@target.example/host HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"absolute_form_other_scheme", R("GET ftp://target.example/host HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"absolute_form_no_authority", R("GET http:///host HTTP/1.1\r\nHost: x\r\n\r\n" HIDDEN), 400, NULL, CLOSE},
    {"absolute_form_http10_no_host", R("GET http://target.example/host HTTP/1.0\r\n\r\n" HIDDEN), 200, "target.example /host", CLOSE},
    {"absolute_form_still_needs_host", R("GET http://target.example/host HTTP/1.1\r\n\r\n" HIDDEN), 400, NULL, CLOSE},

    /* --- limits and expectations (RFC 9112 §3, RFC 6585 §5, RFC 9110 §15.5.14, §10.1.1) - */
    {"request_line_at_limit", NULL, 0, 404, NULL, KEEP},
    {"request_line_too_long", NULL, 0, 414, NULL, CLOSE},
    {"head_at_limit", NULL, 0, 200, "sentinel", KEEP},
    {"header_too_long", NULL, 0, 431, NULL, CLOSE},
    {"headers_at_limit", NULL, 0, 200, "sentinel", KEEP},
    {"too_many_headers", NULL, 0, 431, NULL, CLOSE},
    {"body_at_limit", NULL, 0, 200, NULL, KEEP},
    {"body_over_limit", R(POST "Content-Length: 65537\r\n\r\n" HIDDEN), 413, NULL, CLOSE},
    {"expect_unknown", R(POST "Expect: teapot\r\nContent-Length: 33\r\n\r\n" HIDDEN), 417, NULL, CLOSE},
    {"expect_continue_in_list", R(POST "Expect: 100-continue, x\r\nContent-Length: 33\r\n\r\n" HIDDEN), 417, NULL, CLOSE},

    /* --- the connection after the request ------------------------------------------------ */
    {"connection_close_then_hidden", R("GET /sentinel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" HIDDEN), 200, "sentinel", CLOSE},
    {"connection_close_in_list", R("GET /sentinel HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n" HIDDEN), 200, "sentinel", CLOSE},
    {"incomplete_body_then_eof", R(POST "Content-Length: 100\r\n\r\n" HIDDEN), 0, NULL, SHUT | SILENT},
    {"incomplete_chunked_then_eof", R(POST "Transfer-Encoding: chunked\r\n\r\n" HIDDEN_HEX "\r\n" HIDDEN "\r\n0\r\n"), 0, NULL, SHUT | SILENT},
    {"expect_continue_body_is_request", R(POST "Expect: 100-continue\r\nContent-Length: 33\r\n\r\n" HIDDEN), 200, HIDDEN, KEEP},
    {"missing_final_crlf_body_deadline", R(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"), 408, NULL, CLOSE | DEADLINE},
    {"incomplete_head_deadline", R("GET /sentinel HTTP/1.1\r\nHost: x\r\n"), 408, NULL, CLOSE | DEADLINE},
};

#define NCASES (sizeof cases / sizeof cases[0])

static struct smuggle_case *find_case(const char *name) {
    for (size_t i = 0; i < NCASES; i++)
        if (strcmp(cases[i].name, name) == 0)
            return &cases[i];
    return NULL;
}

/* The cases too long to write as literals. */
static void build_cases(void) {
    size_t n = (size_t)snprintf(long_line, sizeof long_line, "GET /");
    memset(long_line + n, 'a', MAX_LINE);
    n += MAX_LINE;
    n += (size_t)snprintf(long_line + n, sizeof long_line - n, " HTTP/1.1\r\n");
    struct smuggle_case *c = find_case("request_line_too_long");
    c->req = long_line;
    c->len = n;

    n = (size_t)snprintf(long_header, sizeof long_header, "GET /sentinel HTTP/1.1\r\nHost: x\r\nX: ");
    memset(long_header + n, 'b', MAX_HEAD);
    n += MAX_HEAD;
    n += (size_t)snprintf(long_header + n, sizeof long_header - n, "\r\n\r\n");
    c = find_case("header_too_long");
    c->req = long_header;
    c->len = n;

    n = (size_t)snprintf(many_headers, sizeof many_headers, "GET /sentinel HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < MAX_HEADERS + 1; i++)
        n += (size_t)snprintf(many_headers + n, sizeof many_headers - n, "X-%d: y\r\n", i);
    n += (size_t)snprintf(many_headers + n, sizeof many_headers - n, "\r\n" HIDDEN);
    c = find_case("too_many_headers");
    c->req = many_headers;
    c->len = n;

    /* The same three limits met exactly: accepted (no off-by-one). The request line is
     * counted without its CRLF, the head with its final blank line. */
    n = (size_t)snprintf(line_at_limit, sizeof line_at_limit, "GET /");
    memset(line_at_limit + n, 'a', MAX_LINE - n - 9);
    n = MAX_LINE - 9;
    n += (size_t)snprintf(line_at_limit + n, sizeof line_at_limit - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    c = find_case("request_line_at_limit");
    c->req = line_at_limit;
    c->len = n;

    n = (size_t)snprintf(head_at_limit, sizeof head_at_limit, "GET /sentinel HTTP/1.1\r\nHost: x\r\nX: ");
    memset(head_at_limit + n, 'b', MAX_HEAD - n - 4);
    n = MAX_HEAD - 4;
    n += (size_t)snprintf(head_at_limit + n, sizeof head_at_limit - n, "\r\n\r\n");
    c = find_case("head_at_limit");
    c->req = head_at_limit;
    c->len = n;

    n = (size_t)snprintf(headers_at_limit, sizeof headers_at_limit, "GET /sentinel HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < MAX_HEADERS - 1; i++)
        n += (size_t)snprintf(headers_at_limit + n, sizeof headers_at_limit - n, "X-%d: y\r\n", i);
    n += (size_t)snprintf(headers_at_limit + n, sizeof headers_at_limit - n, "\r\n");
    c = find_case("headers_at_limit");
    c->req = headers_at_limit;
    c->len = n;

    n = (size_t)snprintf(body_at_limit, sizeof body_at_limit, POST "Content-Length: %d\r\n\r\n", MAX_BODY);
    memset(body_at_limit + n, 'd', MAX_BODY);
    n += MAX_BODY;
    c = find_case("body_at_limit");
    c->req = body_at_limit;
    c->len = n;

    /* A chunk extension longer than the decoder takes for a size line (4 KiB). */
    n = (size_t)snprintf(long_ext, sizeof long_ext, POST "Transfer-Encoding: chunked\r\n\r\n5;a=");
    memset(long_ext + n, 'e', 5000);
    n += 5000;
    n += (size_t)snprintf(long_ext + n, sizeof long_ext - n, "\r\nhello\r\n0\r\n\r\n" HIDDEN);
    c = find_case("chunk_ext_too_long");
    c->req = long_ext;
    c->len = n;

    /* Chunks each under the limit whose sum is over it: the limit is on the decoded total.
     * The server answers 413 when the third size line arrives, before its data. */
    static char chunk_body[0x8000];
    memset(chunk_body, 'c', sizeof chunk_body);
    static char chunks[3 * (sizeof chunk_body + 16) + 256];
    n = (size_t)snprintf(chunks, sizeof chunks, POST "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += (size_t)snprintf(chunks + n, sizeof chunks - n, "8000\r\n");
        memcpy(chunks + n, chunk_body, sizeof chunk_body);
        n += sizeof chunk_body;
        n += (size_t)snprintf(chunks + n, sizeof chunks - n, "\r\n");
    }
    n += (size_t)snprintf(chunks + n, sizeof chunks - n, "0\r\n\r\n" HIDDEN);
    c = find_case("chunked_sum_over_body_limit");
    c->req = chunks;
    c->len = n;
}

/* Sends the case whole, or one byte per write (a few bytes for the long ones, which test
 * limits, not splits). Send errors after the server has answered and closed are expected:
 * the rest is discarded anyway. */
static void send_case(struct cl_conn *c, const struct smuggle_case *k, int bytewise) {
    size_t piece = !bytewise ? k->len : k->len > 8192 ? 61 : 1;
    for (size_t i = 0; i < k->len; i += piece)
        if (cl_send(c, k->req + i, k->len - i < piece ? k->len - i : piece) < 0)
            return;
}

static int failures;

/* Reads the next final response, skipping interim ones (100 Continue). */
static int read_final(struct cl_conn *c, struct cl_resp *r) {
    for (;;) {
        if (cl_read(c, r, 0) < 0)
            return -1;
        if (r->status >= 200)
            return 0;
        cl_resp_free(r);
    }
}

/* SMUGGLING_DUMP=dir writes each case's bytes (up to 16 KiB) to dir/<name>, to seed the
 * fuzz corpora (fuzz/corpus/parser, and fuzz/corpus/conn behind two split-shape bytes). */
static void dump_cases(const char *dir) {
    char path[512];
    for (size_t i = 0; i < NCASES; i++) {
        if (cases[i].len > 16384)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        FILE *f = fopen(path, "wb");
        if (!f)
            continue;
        fwrite(cases[i].req, 1, cases[i].len, f);
        fclose(f);
    }
}

/* Runs one case; returns 0 when every expectation held (the caller reports failures). */
static int run_case(const struct smuggle_case *k, int bytewise) {
    int before = __atomic_load_n(&hidden_hits, __ATOMIC_SEQ_CST);
    struct cl_conn *c = cl_open(k->flags & DEADLINE ? deadline_port : port);
    if (!c)
        return -1;
    send_case(c, k, bytewise);
    if (k->flags & SHUT)
        shutdown(c->fd, SHUT_WR);
    int ok = 1;
    char why[160] = "";
    struct cl_resp r;
    if (k->flags & SILENT) {
        if (!cl_closed(c)) {
            ok = 0;
            snprintf(why, sizeof why, "expected a close without a response");
        }
    } else if (read_final(c, &r) < 0) {
        ok = 0;
        snprintf(why, sizeof why, "no response");
    } else {
        char v[64] = "";
        int has_close = cl_header(&r, "Connection", v, sizeof v) == 0 && strcmp(v, "close") == 0;
        if (r.status != k->status) {
            ok = 0;
            snprintf(why, sizeof why, "status %d, expected %d", r.status, k->status);
        } else if (k->body && (r.body_len != strlen(k->body) || memcmp(r.body, k->body, r.body_len))) {
            ok = 0;
            snprintf(why, sizeof why, "body \"%.*s\"", (int)(r.body_len > 60 ? 60 : r.body_len), r.body);
        } else if ((k->flags & CLOSE) && !has_close) {
            ok = 0;
            snprintf(why, sizeof why, "no Connection: close");
        } else if (!(k->flags & CLOSE) && has_close) {
            ok = 0;
            snprintf(why, sizeof why, "unexpected Connection: close");
        }
        cl_resp_free(&r);
        if (ok && (k->flags & CLOSE) && !cl_closed(c)) {
            ok = 0;
            snprintf(why, sizeof why, "not closed after the response (or a second response)");
        }
        if (ok && !(k->flags & CLOSE)) {
            /* Still in sync: the next response is the sentinel's. */
            if (cl_send(c, "GET /sentinel HTTP/1.1\r\nHost: x\r\n\r\n", 0) < 0 ||
                cl_read(c, &r, 0) < 0) {
                ok = 0;
                snprintf(why, sizeof why, "sentinel not answered");
            } else {
                if (r.status != 200 || r.body_len != 8 || memcmp(r.body, "sentinel", 8)) {
                    ok = 0;
                    snprintf(why, sizeof why, "out of sync: next response %d \"%.*s\"", r.status,
                             (int)(r.body_len > 40 ? 40 : r.body_len), r.body);
                }
                cl_resp_free(&r);
            }
        }
    }
    cl_close(c);
    if (__atomic_load_n(&hidden_hits, __ATOMIC_SEQ_CST) != before) {
        ok = 0;
        snprintf(why, sizeof why, "the hidden request was served");
    }
    if (!ok)
        fprintf(stderr, "  case %s (%s): %s\n", k->name, bytewise ? "bytewise" : "whole", why);
    return ok ? 0 : -1;
}

/* Each case in each mode counts as one test in the RESULT line. */
static void run_table(int bytewise) {
    for (size_t i = 0; i < NCASES; i++) {
        if (run_case(&cases[i], bytewise) == 0) {
            test_passed++;
        } else {
            test_failed++;
            failures++;
            fprintf(stderr, "not ok %s (%s)\n", cases[i].name, bytewise ? "bytewise" : "whole");
        }
    }
}

/* A pipeline of good requests with one smuggling attempt in the middle: everything before
 * it is answered in order, it gets its 400, nothing after it is read. */
static void test_pipeline_stops_at_attempt(void) {
    struct cl_conn *c = cl_open(port);
    CHECK(cl_send(c, "GET /sentinel HTTP/1.1\r\nHost: x\r\n\r\n"
                     POST "Content-Length: 33\r\n\r\n" HIDDEN
                     POST "Content-Length: 33\r\nTransfer-Encoding: chunked\r\n\r\n" CHUNKED_HIDDEN
                     HIDDEN HIDDEN, 0) == 0);
    struct cl_resp r;
    CHECK(cl_read(c, &r, 0) == 0 && r.status == 200);
    CHECK_MEM(r.body, r.body_len, "sentinel");
    cl_resp_free(&r);
    CHECK(cl_read(c, &r, 0) == 0 && r.status == 200);
    CHECK_MEM(r.body, r.body_len, HIDDEN); /* the first hidden request was a body */
    cl_resp_free(&r);
    CHECK(cl_read(c, &r, 0) == 0);
    CHECK_INT(r.status, 400);
    cl_resp_free(&r);
    CHECK(cl_closed(c));
    cl_close(c);
    CHECK_INT(__atomic_load_n(&hidden_hits, __ATOMIC_SEQ_CST), 0);
}

/* The hidden route works when asked for openly: the counter does count. */
static void test_hidden_route_counts(void) {
    struct cl_resp r;
    CHECK_INT(cl_get(port, "/hidden", &r), 200);
    cl_resp_free(&r);
    CHECK_INT(__atomic_exchange_n(&hidden_hits, 0, __ATOMIC_SEQ_CST), 1);
}

int main(void) {
    build_cases();
    if (getenv("SMUGGLING_DUMP")) {
        dump_cases(getenv("SMUGGLING_DUMP"));
        return 0;
    }
    chopin_router *rt = chopin_router_new();
    chopin_router_route(rt, CHOPIN_METHOD_ANY, "/echo", echo, NULL);
    chopin_router_get(rt, "/hidden", hidden, NULL);
    chopin_router_get(rt, "/sentinel", sentinel, NULL);
    chopin_router_get(rt, "/host", host, NULL);
    chopin_options o = chopin_options_default();
    o.max_request_line = MAX_LINE;
    o.max_header_bytes = MAX_HEAD;
    o.max_headers = MAX_HEADERS;
    o.max_body_bytes = MAX_BODY;
    chopin_server *s = cl_start(rt, &o);
    o.header_timeout_ms = 1000;
    o.body_timeout_ms = 1000;
    chopin_server *sd = cl_start(rt, &o);
    if (!s || !sd)
        return 1;
    port = chopin_server_port(s);
    deadline_port = chopin_server_port(sd);

    RUN(test_hidden_route_counts);
    run_table(0);
    run_table(1);
    RUN(test_pipeline_stops_at_attempt);
    cl_stop(s);
    cl_stop(sd);
    chopin_router_free(rt);
    printf("%zu cases, each whole and byte by byte: %d failed\n", NCASES, failures);
    TEST_END();
}
