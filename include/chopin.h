/* SPDX-License-Identifier: MIT */
/*
 * chopin.h: the public API of Chopin, an HTTP/1.1 server library.
 *
 * One header, opaque handles, small value types. It includes only standard C headers.
 *
 * Threading: a server runs one worker thread per core. Handlers and middleware run on
 * the worker that owns the connection; a router is read-only once chopin_serve() starts,
 * so the same handler may run on several workers at once. Request and response handles
 * are valid only inside the handler call that received them.
 *
 * Errors: functions that can fail return 0 (or a count) or a negative CHOPIN_E* code,
 * equal to -errno on Linux; chopin_strerror() turns one into text. Nothing here aborts
 * or exits.
 */
#ifndef CHOPIN_H
#define CHOPIN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CHOPIN_API __attribute__((visibility("default")))
#else
#define CHOPIN_API
#endif

#define CHOPIN_VERSION "0.1.0"

/* ---------------------------------------------------------------------------------------
 * Value types
 * ------------------------------------------------------------------------------------- */

/** A borrowed byte range. Not NUL-terminated unless a function says so. */
typedef struct chopin_str {
    const char *ptr;
    size_t len;
} chopin_str;

#define CHOPIN_METHOD_MAP(X) \
    X(GET, "GET")            \
    X(HEAD, "HEAD")          \
    X(POST, "POST")          \
    X(PUT, "PUT")            \
    X(DELETE, "DELETE")      \
    X(PATCH, "PATCH")        \
    X(OPTIONS, "OPTIONS")    \
    X(CONNECT, "CONNECT")    \
    X(TRACE, "TRACE")

/** Request methods. CHOPIN_METHOD_OTHER is any other valid token (see chopin_req_method_str). */
typedef enum chopin_method {
#define CHOPIN_METHOD_ENUM(name, str) CHOPIN_METHOD_##name,
    CHOPIN_METHOD_MAP(CHOPIN_METHOD_ENUM)
#undef CHOPIN_METHOD_ENUM
    CHOPIN_METHOD_OTHER,
    CHOPIN_METHOD_COUNT
} chopin_method;

/** Registration wildcard: a route that answers every method. */
#define CHOPIN_METHOD_ANY ((chopin_method)-1)

/* ---------------------------------------------------------------------------------------
 * Handles
 * ------------------------------------------------------------------------------------- */

typedef struct chopin_router chopin_router;
typedef struct chopin_req chopin_req;
typedef struct chopin_res chopin_res;
typedef struct chopin_next chopin_next;
typedef struct chopin_server chopin_server;
typedef struct chopin_worker chopin_worker;

/** A request handler. It must set a response before it returns (if it does not, the
 *  client gets a 500). `data` is the pointer given at registration. */
typedef void (*chopin_handler)(chopin_req *req, chopin_res *res, void *data);

/** A middleware. Call chopin_next_run(next) to run the rest of the chain (later
 *  middleware, then the handler); return without calling it to answer early. Code after
 *  chopin_next_run() sees the handler's response and may add headers to it. */
typedef void (*chopin_middleware)(chopin_req *req, chopin_res *res, chopin_next *next,
                                  void *data);

/** Runs the rest of the middleware chain and the handler. Call it at most once. */
CHOPIN_API void chopin_next_run(chopin_next *next);

/* ---------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------- */

/* Every failure is one of these negative codes. Each equals the negated errno value of
 * the same name (CHOPIN_EINVAL == -EINVAL), so code that already compares with -EINVAL
 * keeps working, and a system call's failure passes through unchanged. */
#define CHOPIN_EPERM (-EPERM)           /* not allowed */
#define CHOPIN_ENOENT (-ENOENT)         /* no such file, route or header */
#define CHOPIN_EIO (-EIO)               /* an I/O error */
#define CHOPIN_EBADF (-EBADF)           /* not an open descriptor */
#define CHOPIN_EAGAIN (-EAGAIN)         /* try again later */
#define CHOPIN_ENOMEM (-ENOMEM)         /* out of memory (heap or request arena) */
#define CHOPIN_EACCES (-EACCES)         /* permission denied */
#define CHOPIN_EBUSY (-EBUSY)           /* the router is frozen: the server is running */
#define CHOPIN_EEXIST (-EEXIST)         /* already registered / already set */
#define CHOPIN_EXDEV (-EXDEV)           /* a path tried to leave its root directory */
#define CHOPIN_ENOTDIR (-ENOTDIR)       /* a path component is not a directory */
#define CHOPIN_EISDIR (-EISDIR)         /* a directory where a file was wanted */
#define CHOPIN_EINVAL (-EINVAL)         /* an invalid argument */
#define CHOPIN_EMFILE (-EMFILE)         /* out of file descriptors */
#define CHOPIN_EFBIG (-EFBIG)           /* larger than a documented limit */
#define CHOPIN_ENOSPC (-ENOSPC)         /* a fixed-size space is full (headers, output) */
#define CHOPIN_ERANGE (-ERANGE)         /* an index or value out of range */
#define CHOPIN_ENAMETOOLONG (-ENAMETOOLONG) /* a path or name too long */
#define CHOPIN_ELOOP (-ELOOP)           /* a symbolic link where none is allowed */
#define CHOPIN_ENOTSUP (-ENOTSUP)       /* not supported on this system or build */
#define CHOPIN_EADDRINUSE (-EADDRINUSE) /* the address is in use by another socket */
#define CHOPIN_EADDRNOTAVAIL (-EADDRNOTAVAIL) /* no such local address */
#define CHOPIN_ESHUTDOWN (-ESHUTDOWN)   /* the worker or server has stopped */
#define CHOPIN_ESTALE (-ESTALE)         /* a handle whose exchange is finished or cancelled */

/** Text for a negative error code returned by this library (never NULL). */
CHOPIN_API const char *chopin_strerror(int err);

/* ---------------------------------------------------------------------------------------
 * Router: build it before chopin_serve(); read-only afterwards.
 * ------------------------------------------------------------------------------------- */

/** A new empty router, or NULL when out of memory. Free it with chopin_router_free()
 *  after chopin_serve() has returned. */
CHOPIN_API chopin_router *chopin_router_new(void);
CHOPIN_API void chopin_router_free(chopin_router *r);

/**
 * Registers `handler` for `method` (or CHOPIN_METHOD_ANY) on `pattern`.
 *
 * Pattern segments: static text, `:name` (one segment), `*name` (the rest of the path,
 * possibly several segments; last segment only). Precedence: static, then param, then
 * wildcard, with backtracking. The pattern is copied.
 *
 * Request paths are matched exactly ("/a/" is not "/a") after percent-decoding each
 * segment ("%2F" stays inside its segment) and resolving dot segments (RFC 3986 §5.2.4:
 * "/a/./b" and "/a/x/../b" are "/a/b", also when spelled "%2e"). Answered 400 instead: a
 * broken escape or "%00", a ".." above the root, and a segment whose decoded text holds
 * a "." or ".." part ("..%2F"). chopin_req_path() gives handlers the normalised path.
 *
 * Returns 0, -EINVAL (malformed pattern, or one with a "." or ".." segment, which no
 * normalised path could match), -EEXIST (duplicate route, or a different param name at
 * a position that already has one), -EBUSY (router already serving), -ENOMEM.
 * chopin_router_error() then describes the problem.
 */
CHOPIN_API int chopin_router_route(chopin_router *r, chopin_method method, const char *pattern,
                            chopin_handler handler, void *data);

CHOPIN_API int chopin_router_get(chopin_router *r, const char *pattern, chopin_handler h, void *data);
CHOPIN_API int chopin_router_post(chopin_router *r, const char *pattern, chopin_handler h, void *data);
CHOPIN_API int chopin_router_put(chopin_router *r, const char *pattern, chopin_handler h, void *data);
CHOPIN_API int chopin_router_delete(chopin_router *r, const char *pattern, chopin_handler h, void *data);
CHOPIN_API int chopin_router_patch(chopin_router *r, const char *pattern, chopin_handler h, void *data);

/**
 * Adds middleware. `prefix` NULL or "/" means every request (global middleware).
 * Otherwise it runs for every request whose path, decoded and normalised as above, is the
 * prefix or lies under it on a segment boundary ("/api" covers "/api", "/api/" and
 * "/api/x", not "/apix"), whichever route serves it, and for the 404 and 405 answers
 * under it: the route patterns play no part, so no other spelling of a path gets around
 * it. Global middleware also sees the 400 of a path the router refuses, and the answers to
 * requests refused before routing (malformed: 400, 413, 414, 431, 501, 505; too slow:
 * 408). Those carry an empty request (method, target and path "", no headers, query or
 * body), may be restyled but stay an error (an answer below 400 becomes the refusal
 * again), and the connection closes after them. Middleware runs in registration order,
 * outermost first. The prefix is copied.
 *
 *     static void auth(chopin_req *req, chopin_res *res, chopin_next *next, void *data) {
 *         if (!chopin_req_header(req, "authorization").ptr) {
 *             chopin_res_text(res, 401, "login first");
 *             return;                      // answered: the handler does not run
 *         }
 *         chopin_next_run(next);
 *     }
 *     ...
 *     chopin_router_get(r, "/" "*path", serve_file, NULL);  // serves every path...
 *     chopin_router_use(r, "/api", auth, NULL);  // ...but GET /api/secret.txt, /%61pi/x,
 *                                                // /x/../api/y and DELETE /api/y get 401
 *
 * Returns 0, -EBUSY, -ENOMEM, -EINVAL (no middleware; a prefix not starting with '/' or
 * with a "." or ".." segment).
 */
CHOPIN_API int chopin_router_use(chopin_router *r, const char *prefix, chopin_middleware mw,
                          void *data);

/** Copies every route and middleware of `sub` into `r` under `prefix` ("/api"). `sub`
 *  stays owned by the caller. Same errors as chopin_router_route(). */
CHOPIN_API int chopin_router_nest(chopin_router *r, const char *prefix, const chopin_router *sub);

/** Copies every route and middleware of `other` into `r`. Same errors as chopin_router_route(). */
CHOPIN_API int chopin_router_merge(chopin_router *r, const chopin_router *other);

/** The last registration error of `r` as text ("" when none). */
CHOPIN_API const char *chopin_router_error(const chopin_router *r);

/* File-scope route registration: the C counterpart of #[get("/path")].
 *
 *     CHOPIN_GET("/hello/:name", hello) { chopin_res_text(res, 200, "hi"); }
 *     ...
 *     chopin_router_mount_all(router);
 *
 * defines `static void hello(chopin_req *req, chopin_res *res, void *data)` and records it
 * in a linker section that chopin_router_mount_all() walks. */
typedef struct chopin_route_def {
    chopin_method method;
    const char *pattern;
    chopin_handler handler;
} chopin_route_def;

#define CHOPIN__ROUTE(m, pattern, fn)                                                       \
    static void fn(chopin_req *req, chopin_res *res, void *data);                          \
    static const chopin_route_def chopin__def_##fn                                         \
        __attribute__((used, section("chopin_routes"), aligned(sizeof(void *)))) = {      \
            (m), (pattern), fn};                                                           \
    static void fn(chopin_req *req __attribute__((unused)),                                \
                   chopin_res *res __attribute__((unused)),                                \
                   void *data __attribute__((unused)))
#define CHOPIN_GET(p, fn) CHOPIN__ROUTE(CHOPIN_METHOD_GET, p, fn)
#define CHOPIN_POST(p, fn) CHOPIN__ROUTE(CHOPIN_METHOD_POST, p, fn)
#define CHOPIN_PUT(p, fn) CHOPIN__ROUTE(CHOPIN_METHOD_PUT, p, fn)
#define CHOPIN_DELETE(p, fn) CHOPIN__ROUTE(CHOPIN_METHOD_DELETE, p, fn)
#define CHOPIN_PATCH(p, fn) CHOPIN__ROUTE(CHOPIN_METHOD_PATCH, p, fn)
#define CHOPIN_ANY(p, fn) CHOPIN__ROUTE(CHOPIN_METHOD_ANY, p, fn)

/** Registers every route defined with CHOPIN_GET() etc. in the program (all linked
 *  objects). Returns the first error of chopin_router_route(), or 0. */
CHOPIN_API int chopin_router_mount_all(chopin_router *r);

/* ---------------------------------------------------------------------------------------
 * Request (valid only during the handler call; every chopin_str borrows request memory:
 * the read buffer or the request arena, until the response has been serialized. Names
 * passed in are read during the call only.)
 *
 * The request arena holds a request's scratch: decoded path, query values, route
 * parameters, chopin_req_alloc memory, response headers and cookies, copied content
 * types, copied bodies and JSON documents. Its limit is CHOPIN_MAX_BODY_BYTES + 1 MiB
 * (17 MiB with the default 16 MiB); past it, allocations fail with CHOPIN_EFBIG (or
 * NULL) and the handler sees it. Send larger answers with chopin_res_owned, chopin_res_fd
 * or chopin_res_stream, which use no arena.
 * ------------------------------------------------------------------------------------- */

CHOPIN_API chopin_method chopin_req_method(const chopin_req *req);
/** The method token as sent ("GET", "PROPFIND"). */
CHOPIN_API chopin_str chopin_req_method_str(const chopin_req *req);
/** The request target exactly as sent (origin, absolute or asterisk form). */
CHOPIN_API chopin_str chopin_req_target(const chopin_req *req);
/** The path, percent-decoded (an encoded "/" stays in its segment for routing) and with
 *  dot segments resolved (see chopin_router_route). */
CHOPIN_API chopin_str chopin_req_path(const chopin_req *req);
/** The path as sent, not decoded, without the query ("/a%20b"): for logs, where the
 *  decoded form could hide what the client really asked for. */
CHOPIN_API chopin_str chopin_req_path_raw(const chopin_req *req);
/** The raw query string after '?', without the '?' (len 0 when none). */
CHOPIN_API chopin_str chopin_req_query_string(const chopin_req *req);
/** 0 for HTTP/1.0, 1 for HTTP/1.1. */
CHOPIN_API int chopin_req_http_minor(const chopin_req *req);
/** Nonzero when the connection stays open after this response (RFC 9112 §9.3). */
CHOPIN_API int chopin_req_keep_alive(const chopin_req *req);
/** The peer address as text ("127.0.0.1:53211", "[::1]:40000"); "unknown" when it
 *  cannot be read (the text then is static). */
CHOPIN_API chopin_str chopin_req_remote_addr(chopin_req *req);

/** The first header named `name` (case-insensitive); ptr NULL when absent. */
CHOPIN_API chopin_str chopin_req_header(const chopin_req *req, const char *name);
/** Number of request headers, and the i-th one (0-based). Returns -ERANGE past the end. */
CHOPIN_API size_t chopin_req_header_count(const chopin_req *req);
CHOPIN_API int chopin_req_header_at(const chopin_req *req, size_t i, chopin_str *name,
                                    chopin_str *value);

/** The value of cookie `name` from the request's Cookie headers (every Cookie line is
 *  read, RFC 6265 §5.4: "a=1; b=2"); ptr NULL when absent. Names compare exactly (they
 *  are case-sensitive); the first match wins; the value is returned as sent, surrounding
 *  double quotes included, and is not decoded. Borrows the read buffer. */
CHOPIN_API chopin_str chopin_req_cookie(const chopin_req *req, const char *name);

/** A route parameter (":id" or "*path"), percent-decoded; ptr NULL when absent. A
 *  parameter is attacker-controlled text: to serve a file it names, use
 *  chopin_res_file_at, never chopin_res_file. */
CHOPIN_API chopin_str chopin_req_param(const chopin_req *req, const char *name);

/** A query parameter, percent- and plus-decoded; the first match wins. ptr is NULL only
 *  when the parameter is absent (or, exceptionally, when decoding found the request
 *  arena full); "?flag" and "?flag=" both give ptr != NULL with len 0, and
 *  chopin_req_query_kind() tells them apart. Decoded text lives in the request arena. */
CHOPIN_API chopin_str chopin_req_query(chopin_req *req, const char *name);

/** How the first query parameter `name` was written. */
typedef enum chopin_query_kind {
    CHOPIN_QUERY_ABSENT = 0, /* not in the query */
    CHOPIN_QUERY_BARE,       /* "?flag": the name alone, no '=' */
    CHOPIN_QUERY_VALUE,      /* "?flag=" or "?flag=x": with '=' (the value may be empty) */
} chopin_query_kind;
CHOPIN_API chopin_query_kind chopin_req_query_kind(const chopin_req *req, const char *name);

/** Iterates query parameters: *pos starts at 0; returns 1 with the next pair, 0 at the
 *  end (or when decoding found the request arena full). A bare "flag" gives an empty
 *  value, like "flag=". */
CHOPIN_API int chopin_req_query_next(chopin_req *req, size_t *pos, chopin_str *name,
                                     chopin_str *value);

/** The whole request body (Content-Length or decoded chunked); len 0 when none. */
CHOPIN_API chopin_str chopin_req_body(const chopin_req *req);

/** Scratch memory that lives until the response has been serialized; NULL when the
 *  request arena is exhausted (see its limit above). Aligned for any type. */
CHOPIN_API void *chopin_req_alloc(chopin_req *req, size_t size);

/** How many chopin_req_set_data entries one request holds. */
#define CHOPIN_REQ_DATA_MAX 8

/**
 * Stores `value` under `key` for the rest of this request: how a middleware hands what
 * it found (the authenticated user, a request id) to later middleware and the handler.
 * A key is the address of an object the caller owns, normally a static variable of its
 * module, so two modules never collide and no name is spelled twice:
 *
 *     static const char user_key;                       // in the auth module
 *     chopin_req_set_data(req, &user_key, user);        // in the middleware
 *     struct user *u = chopin_req_data(req, &user_key); // in the handler
 *
 * Setting a key again replaces its value. The pointer is stored, not what it points to:
 * `value` must stay valid until the response has been serialized (memory from
 * chopin_req_alloc does). Entries are dropped when the request ends; nothing is freed.
 * Returns 0, CHOPIN_EINVAL (NULL key), CHOPIN_ENOSPC (CHOPIN_REQ_DATA_MAX keys already
 * set; nothing stored).
 */
CHOPIN_API int chopin_req_set_data(chopin_req *req, const void *key, void *value);
/** The value stored under `key` in this request, or NULL when none was. */
CHOPIN_API void *chopin_req_data(const chopin_req *req, const void *key);

/** The value returned by the worker_init hook on this request's worker (NULL without). */
CHOPIN_API void *chopin_req_worker_data(const chopin_req *req);
/** The index of the worker thread serving this request (0-based). */
CHOPIN_API int chopin_req_worker_id(const chopin_req *req);

/* ---------------------------------------------------------------------------------------
 * Response (a handler sets exactly one body; headers may be added before and after)
 *
 * A later body setter replaces the earlier body and releases what it owned (an owned
 * body is freed, a descriptor given with close_fd closed, a stream's done() run). A
 * setter that fails changes nothing: the earlier body, status and headers stay, and what
 * the call was given stays the caller's.
 *
 * Statuses: a setter takes 200..599, and refuses anything else with CHOPIN_EINVAL. A 1xx
 * is never a final answer (the client would wait for the real one); 101 Switching
 * Protocols belongs to an upgrade, which no setter performs.
 *
 * Content types: every `content_type` is copied (into the request arena), so a string
 * built in a stack buffer is fine. A CR, LF or other control byte in it is refused
 * (CHOPIN_EINVAL). NULL keeps the Content-Type the response already has, set with
 * chopin_res_header_set/add or by an earlier setter (none if nothing set one); to send
 * none, chopin_res_header_remove(res, "Content-Type"). chopin_res_empty and
 * chopin_res_redirect answer without content and drop it.
 *
 * Arena failures: what a setter copies comes from the request arena (see its limit in
 * the Request section): CHOPIN_EFBIG past the limit, CHOPIN_ENOMEM when the heap is out.
 * The response is then unchanged, and the handler may answer something smaller
 * (chopin_res_error with a NULL message needs no arena at all).
 * ------------------------------------------------------------------------------------- */

/** Frees an owned body once it has been sent or dropped. */
typedef void (*chopin_free_fn)(void *ptr, void *arg);

/** Copies `len` bytes (into the request arena); they may be freed as soon as the call
 *  returns. CHOPIN_EINVAL (bad status or type, NULL body with len), CHOPIN_EFBIG,
 *  CHOPIN_ENOMEM; the response is unchanged then. */
CHOPIN_API int chopin_res_copy(chopin_res *res, int status, const char *content_type,
                               const void *body, size_t len);
/** Borrows `body`, which must outlive the server (string literals, static tables). */
CHOPIN_API int chopin_res_static(chopin_res *res, int status, const char *content_type,
                                 const void *body, size_t len);
/** Takes `body`; `free_fn(body, arg)` runs once it has been sent, replaced, or the
 *  connection died. On failure nothing is taken: `body` stays the caller's to free. */
CHOPIN_API int chopin_res_owned(chopin_res *res, int status, const char *content_type,
                                void *body, size_t len, chopin_free_fn free_fn, void *arg);
/** Sends `len` bytes of `fd` from `offset` with sendfile. With `close_fd` the server closes
 *  the descriptor when done (or when replaced). On failure the descriptor stays the
 *  caller's, open. */
CHOPIN_API int chopin_res_fd(chopin_res *res, int status, const char *content_type, int fd,
                             uint64_t offset, uint64_t len, int close_fd);
/** Opens `path`, sends it with a Content-Type from its extension: 404 when it does not
 *  exist, 403 when it is not a regular file or cannot be read (the answer is set and the
 *  negative errno returned). NOT safe for a path built from a request (a parameter, the
 *  path, a header): "..", "%2e%2e" or a symbolic link reach any file the process can
 *  read. Use chopin_res_file_at for those. */
CHOPIN_API int chopin_res_file(chopin_res *res, const char *path);
/**
 * Serves the file `relpath[0..len)` inside directory `dirfd` (from chopin_dir_open): the
 * function to use with a request-derived path, such as a "*path" parameter. The kernel
 * resolves the path with escapes refused (Linux openat2 RESOLVE_BENEATH, no symbolic or
 * "magic" links; elsewhere, or where openat2 is missing or filtered, one openat with
 * O_NOFOLLOW per component). Refused without opening anything: a NUL byte, a leading
 * '/', a backslash, a ".." component. Every symbolic link is refused, even one that
 * stays inside the directory.
 *
 * A refused path answers 404, like a missing file, and returns CHOPIN_EXDEV (or
 * CHOPIN_ELOOP for a link); a missing file 404 and CHOPIN_ENOENT; a directory or
 * unreadable file 403 and CHOPIN_EACCES (or the open's error). Content-Type from the
 * extension. `dirfd` is borrowed: it stays open and the caller's; the opened file is
 * closed by the server. 0 on success.
 */
CHOPIN_API int chopin_res_file_at(chopin_res *res, int dirfd, const char *relpath, size_t len);
/** Opens directory `path` for chopin_res_file_at (close-on-exec, for lookups only).
 *  Returns the descriptor, which the caller owns and closes (after the server stopped),
 *  or a negative errno code (CHOPIN_ENOENT, CHOPIN_ENOTDIR, CHOPIN_EACCES...). */
CHOPIN_API int chopin_dir_open(const char *path);
/** Status only, empty body, no Content-Type. */
CHOPIN_API int chopin_res_empty(chopin_res *res, int status);

/** NUL-terminated text shorthands (body copied into the request arena; Content-Type
 *  text/plain or text/html with charset=utf-8, or application/json). */
CHOPIN_API int chopin_res_text(chopin_res *res, int status, const char *text);
CHOPIN_API int chopin_res_html(chopin_res *res, int status, const char *html);
CHOPIN_API int chopin_res_json_str(chopin_res *res, int status, const char *json);
/** A redirect (301, 302, 303, 307 or 308) with a Location header (copied; it replaces
 *  an earlier Location), empty body. CHOPIN_EINVAL for another status or a location
 *  with a space or control byte. */
CHOPIN_API int chopin_res_redirect(chopin_res *res, int status, const char *location);
/** `status` (200..599) with a short text body: its reason phrase (static, needs no
 *  arena), or a copy of `message` when not NULL. */
CHOPIN_API int chopin_res_error(chopin_res *res, int status, const char *message);

/* Headers. Names are tokens and compare case-insensitively; values hold no CR, LF, NUL
 * or other control byte but HTAB: CHOPIN_EINVAL otherwise (no header injection). Both
 * are copied. CHOPIN_ENOSPC when the response's header space (32 KiB) is full.
 * Content-Length and Transfer-Encoding belong to the server (CHOPIN_EINVAL). The
 * Content-Type header is the response's content type (the same one the body setters
 * take), and "Connection: close" closes the connection after the answer. */

/** Appends a header line (an earlier line of that name stays). Content-Type and
 *  Connection are single: add replaces them like chopin_res_header_set. */
CHOPIN_API int chopin_res_header_add(chopin_res *res, const char *name, const char *value);
/** Replaces every line named `name` with one line (appended at the end). On failure the
 *  old lines stay. */
CHOPIN_API int chopin_res_header_set(chopin_res *res, const char *name, const char *value);
/** Removes every line named `name`; returns how many there were (0 when none), or
 *  CHOPIN_EINVAL (not a token, or a framing header). */
CHOPIN_API int chopin_res_header_remove(chopin_res *res, const char *name);
/** The value of the first header named `name` set so far (Content-Type: the content
 *  type; Connection: "close" when set); ptr NULL when absent. Not NUL-terminated;
 *  valid until the response's headers change. */
CHOPIN_API chopin_str chopin_res_header(const chopin_res *res, const char *name);

/**
 * A Set-Cookie line. Zero-initialised fields mean "not set": `chopin_cookie c = {.name =
 * "sid", .value = v};` is a session cookie with no attributes. Every string is copied.
 */
typedef struct chopin_cookie {
    const char *name, *value;              /* required; RFC 6265 token and cookie-octets */
    const char *path, *domain, *same_site; /* NULL to omit; same_site Strict|Lax|None */
    int64_t max_age; /* seconds the cookie lives; 0 = not set (ends with the session) */
    int expire;      /* nonzero: Max-Age=0, the browser deletes the cookie now */
    int secure, http_only;
} chopin_cookie;
/** Adds a Set-Cookie header. CHOPIN_EINVAL for an invalid name, value, path or domain, a
 *  negative max_age, max_age with expire, or SameSite=None without secure. */
CHOPIN_API int chopin_res_cookie_add(chopin_res *res, const chopin_cookie *cookie);

/** A chunked streaming body. The server calls `produce` whenever the socket can take more
 *  (never buffering without bound): it writes at most `cap` bytes into `buf` and returns
 *  how many, 0 when finished, CHOPIN_EAGAIN when it has nothing yet (the stream waits
 *  until chopin_stream_resume), or another negative value to abort the connection. `done`
 *  (may be NULL) runs once at the end, whatever happened (also when replaced, and when
 *  the client leaves while the stream waits). `state` is the caller's and must stay valid
 *  until `done` runs. On failure neither is called. */
typedef long (*chopin_produce_fn)(void *state, char *buf, size_t cap);
CHOPIN_API int chopin_res_stream(chopin_res *res, int status, const char *content_type,
                                 chopin_produce_fn produce, void (*done)(void *state),
                                 void *state);

/**
 * Streams that wait. A producer that returns CHOPIN_EAGAIN is not called again (no busy
 * loop, no write interest) until the application resumes its stream, e.g. when an event
 * happens: from a timer, a watched descriptor, a posted function or another handler.
 * While it waits with everything sent, no deadline guards it (write_timeout_ms is for a
 * peer that stops reading, and this one owes nothing): it lasts until the producer returns
 * 0, the client leaves (its EOF or a reset: `done` runs), or the server's drain bound.
 * A peer that vanished without a word is found by the next bytes sent (a reset, or the
 * write deadline once they stay unsent): send something now and then (a heartbeat).
 *
 * A chopin_stream names the connection (worker, slot, generation), like
 * chopin_exchange: a connection has at most one stream at a time. A copy may be kept
 * anywhere; it is used on its worker's thread (from another thread, chopin_worker_post
 * to stream.worker and resume there).
 */
typedef struct chopin_stream {
    chopin_worker *worker; /* the connection's worker; NULL: none */
    uint32_t slot, gen;    /* (private) */
} chopin_stream;
/** The handle of the stream that answers `req` (set with chopin_res_stream, now or after
 *  a deferral: chopin_exchange_req gives the request). */
CHOPIN_API chopin_stream chopin_req_stream(const chopin_req *req);
/** On the stream's worker: its producer is called again soon, once the current callback
 *  (handler, timer, posted function, producer) has returned: never inside this call, so
 *  nothing of the stream (its done()) runs under the caller's feet. Returns 0, or CHOPIN_ESTALE when the connection is gone (the stream
 *  ended with it). Harmless when the stream is not waiting, not queued yet (a deferred
 *  answer not finished yet) or already ended on a connection that stays open: nothing
 *  happens then, so a producer must expect to be called only when the socket can take
 *  more, and to find nothing new (it returns CHOPIN_EAGAIN again). */
CHOPIN_API int chopin_stream_resume(chopin_stream s);

/** The status set so far (0 when no response has been set yet). */
CHOPIN_API int chopin_res_status(const chopin_res *res);

/* ---------------------------------------------------------------------------------------
 * JSON writer: serializes straight into the response body, in the request arena.
 *
 * Keys and strings are copied as they are written (invalid UTF-8 becomes U+FFFD). The
 * first misuse or failure sticks: later calls do nothing and chopin_json_end() reports
 * it. The document is limited by the request arena (Request section): past it the
 * error is CHOPIN_EFBIG.
 * ------------------------------------------------------------------------------------- */

typedef struct chopin_json chopin_json;

/** Starts a JSON body for `res` with `status` (200..599) and Content-Type
 *  application/json, replacing the body set so far like every other setter: a document
 *  started earlier, ended or not, is dropped, and its writer ignores further calls
 *  (its chopin_json_end returns CHOPIN_EINVAL and leaves the new body alone). Returns
 *  NULL for an invalid status or when the arena is full (the response is unchanged
 *  then). Finish with chopin_json_end(). */
CHOPIN_API chopin_json *chopin_res_json(chopin_res *res, int status);
CHOPIN_API void chopin_json_obj_begin(chopin_json *j);
CHOPIN_API void chopin_json_obj_end(chopin_json *j);
CHOPIN_API void chopin_json_arr_begin(chopin_json *j);
CHOPIN_API void chopin_json_arr_end(chopin_json *j);
/** Writes an object key; the next value call writes its value. */
CHOPIN_API void chopin_json_key(chopin_json *j, const char *key);
/** A string value; NULL writes null. */
CHOPIN_API void chopin_json_str(chopin_json *j, const char *s);
CHOPIN_API void chopin_json_strn(chopin_json *j, const char *s, size_t len);
CHOPIN_API void chopin_json_int(chopin_json *j, int64_t v);
/** A finite double (NaN and infinities are an error: JSON has none). */
CHOPIN_API void chopin_json_double(chopin_json *j, double v);
CHOPIN_API void chopin_json_bool(chopin_json *j, int v);
CHOPIN_API void chopin_json_null(chopin_json *j);
/** Writes `len` bytes of `text` as one value, unchanged: JSON made elsewhere (a cached
 *  fragment, a database's JSON column). The caller vouches that it is exactly one valid
 *  JSON value; nothing checks it, and invalid text makes the whole document invalid.
 *  Empty or NULL text is an error (CHOPIN_EINVAL at chopin_json_end). */
CHOPIN_API void chopin_json_raw(chopin_json *j, const char *text, size_t len);
/** Ends the document. Returns 0, or the first error: CHOPIN_EFBIG (past the request
 *  arena's limit), CHOPIN_ENOMEM (heap), CHOPIN_EINVAL (unbalanced, a value without its
 *  key, NaN, raw text missing). After an error the document's memory is given back and
 *  the response is a 500, which the handler may still replace with any other answer. */
CHOPIN_API int chopin_json_end(chopin_json *j);

/* ---------------------------------------------------------------------------------------
 * Answers that come later: deferred exchanges
 *
 * A handler (or middleware) that cannot answer before it returns defers: the exchange
 * (its request and response) stays open until it is finished, on the worker's thread,
 * from a timer, a descriptor's readiness, a posted function or the offload pool.
 * HTTP/1.1 keeps answers in request order: a later pipelined request on the same
 * connection may run meanwhile, its answer waits behind the deferred one.
 *
 * A chopin_exchange is a small value (copy it freely, to any thread): it names the
 * worker, a slot and that slot's generation, so a finish that comes after the exchange
 * was cancelled (the client left, the deadline passed, the server stopped) finds the
 * generation changed and does nothing: it never reaches another request.
 * ------------------------------------------------------------------------------------- */

typedef struct chopin_exchange {
    chopin_worker *worker; /* (private) the owning worker; NULL: no exchange */
    uint32_t slot, gen;    /* (private) */
} chopin_exchange;

/**
 * Keeps the exchange open after the handler returns; on the worker's thread, from a
 * handler or middleware. Middleware code after chopin_next_run() still edits the same
 * response (its headers are sent with the later answer). Returns 0 with *out set, or
 * CHOPIN_EBUSY when the worker already holds max_deferred open exchanges
 * (CHOPIN_MAX_DEFERRED): `res` then holds a 503 and the handler just returns.
 *
 * The deferred response is sent by chopin_exchange_finish. If it is not finished within
 * handler_timeout_ms (CHOPIN_HANDLER_TIMEOUT_MS) the client gets a 504 and the exchange
 * is cancelled. The request stays readable (method, path, headers, params, query, body,
 * data) until the exchange ends: its bytes are copied out of the connection's buffer
 * when it defers.
 */
CHOPIN_API int chopin_defer(chopin_req *req, chopin_res *res, chopin_exchange *out);
/** On the exchange's worker: its request and response, valid until it is finished or
 *  cancelled; NULL for a stale handle. */
CHOPIN_API chopin_req *chopin_exchange_req(chopin_exchange x);
CHOPIN_API chopin_res *chopin_exchange_res(chopin_exchange x);
/** On the exchange's worker: sends the response set on chopin_exchange_res (a 500 when
 *  none was). Returns 0, or CHOPIN_ESTALE when the exchange had already ended (nothing
 *  happens). A streamed response is finished when its head leaves; its stream then
 *  runs as usual (chopin_stream_resume wakes a producer that waits). */
CHOPIN_API int chopin_exchange_finish(chopin_exchange x);
/** fn(x, arg) runs once, on the exchange's worker, if the exchange is cancelled before it
 *  is finished: the client closed the connection (or sent EOF), handler_timeout_ms passed
 *  (the client got a 504), or the server stopped past its drain bound. The handle is stale
 *  from then on; fn frees what the application tied to it. Replaces an earlier callback.
 *  Returns 0 or CHOPIN_ESTALE. */
typedef void (*chopin_exchange_fn)(chopin_exchange x, void *arg);
CHOPIN_API int chopin_exchange_on_cancel(chopin_exchange x, chopin_exchange_fn fn, void *arg);
/** From any thread: runs fn(x, arg) on the exchange's worker (there it typically fills
 *  chopin_exchange_res and finishes). fn always runs, also when the exchange was
 *  cancelled meanwhile (chopin_exchange_res then returns NULL: fn only frees arg). Returns
 *  0, CHOPIN_ENOMEM, or CHOPIN_ESHUTDOWN when the worker has ended: then fn never runs
 *  and arg stays the caller's. */
CHOPIN_API int chopin_exchange_post(chopin_exchange x, chopin_exchange_fn fn, void *arg);
/** Nonzero while the exchange is open (deferred, not finished, not cancelled). On its
 *  worker's thread. */
CHOPIN_API int chopin_exchange_open(chopin_exchange x);

/* ---------------------------------------------------------------------------------------
 * The worker's loop, for the application: posted functions, timers, descriptors
 *
 * Each worker is a thread with its own event loop. The application may run its own work
 * inside it: functions posted from any thread, timers, and the readiness of its own
 * non-blocking descriptors (a database client's socket, an upstream). Everything here
 * runs on the worker's thread, between connections' events, and must not block.
 * ------------------------------------------------------------------------------------- */

/** The worker running this request. */
CHOPIN_API chopin_worker *chopin_req_worker(const chopin_req *req);
/** Worker `i` (0-based) of a started server, NULL when out of range. Valid until
 *  chopin_server_wait returns. */
CHOPIN_API chopin_worker *chopin_server_worker(chopin_server *s, int i);
/** How many workers the server runs. */
CHOPIN_API int chopin_server_workers(const chopin_server *s);
/** The worker's index (0-based), as chopin_req_worker_id. */
CHOPIN_API int chopin_worker_id(const chopin_worker *w);
/** The worker whose thread calls this (in worker_init and worker_fini too, so a client
 *  library's connections can be opened and watched before the first request), NULL on any
 *  other thread. */
CHOPIN_API chopin_worker *chopin_worker_current(void);

typedef void (*chopin_task_fn)(chopin_worker *w, void *arg);
/** From any thread: runs fn(w, arg) on w's thread soon (functions posted by one thread run
 *  in the order posted). Many posts between two turns of the loop cost one wake. Returns
 *  0, CHOPIN_ENOMEM, or CHOPIN_ESHUTDOWN when the worker has ended (fn never runs, arg
 *  stays the caller's). A function posted before the worker ends runs before it ends. */
CHOPIN_API int chopin_worker_post(chopin_worker *w, chopin_task_fn fn, void *arg);
/** Posts fn(w, arg) to every worker of `s`; returns how many took it (each runs it once). */
CHOPIN_API int chopin_server_post_all(chopin_server *s, chopin_task_fn fn, void *arg);

/** A timer's handle: 0 is none. */
typedef uint64_t chopin_timer;
typedef void (*chopin_timer_fn)(chopin_worker *w, chopin_timer t, void *arg);
/** On w's thread: fn(w, t, arg) after `after_ms`, then every `every_ms` when nonzero,
 *  until chopin_timer_stop. Returns the handle, 0 when out of memory. Timers still
 *  pending when the worker ends never fire (free their arg in worker_fini, or stop them). */
CHOPIN_API chopin_timer chopin_timer_start(chopin_worker *w, uint64_t after_ms, uint64_t every_ms,
                                           chopin_timer_fn fn, void *arg);
/** On w's thread: stops `t` (also from its own callback). 0, or CHOPIN_ENOENT when it had
 *  already fired (one-shot) or been stopped. */
CHOPIN_API int chopin_timer_stop(chopin_worker *w, chopin_timer t);

#define CHOPIN_READABLE 0x1u
#define CHOPIN_WRITABLE 0x2u
typedef void (*chopin_watch_fn)(chopin_worker *w, int fd, unsigned events, void *arg);
/** On w's thread: calls fn(w, fd, ready, arg) while `fd` is ready for any of `events`
 *  (level-triggered: again every turn while it stays ready; an error or hang-up is
 *  reported as every event watched). Watching an fd again replaces its events, fn and
 *  arg. The descriptor stays the caller's: unwatch it before closing it. Returns 0,
 *  CHOPIN_EINVAL (no events), CHOPIN_EBADF, CHOPIN_ENOMEM, or the kernel's refusal
 *  (CHOPIN_EPERM from epoll for a regular file, which is always ready). */
CHOPIN_API int chopin_worker_watch(chopin_worker *w, int fd, unsigned events, chopin_watch_fn fn,
                                   void *arg);
/** Stops watching `fd` (fn is not called again, also not later in the same turn). 0 or
 *  CHOPIN_ENOENT. */
CHOPIN_API int chopin_worker_unwatch(chopin_worker *w, int fd);

/* ---------------------------------------------------------------------------------------
 * Blocking work: the offload pool
 *
 * Work that blocks (SQLite, a blocking client library, long computation) must not run on
 * a worker: every connection of that worker would wait. Each server has a pool of
 * offload_threads threads (CHOPIN_OFFLOAD_THREADS; 0: one per worker) with a queue of at
 * most offload_queue jobs waiting for a thread (CHOPIN_OFFLOAD_QUEUE; 0: 1024). They
 * start with the server. A job's `work` runs on a pool thread, then its `done` runs back
 * on the worker that asked, through that worker's post queue (one wake per batch of
 * results).
 *
 * At the end, chopin_server_wait (and chopin_serve) stops the pool after every worker has
 * ended: a job's work already running is waited for; a job still queued then never runs
 * its work. Every done runs exactly once, also then: on the worker while it runs, else
 * on the thread of chopin_server_wait, after the worker ended (the exchange is stale
 * then, and a chopin_worker_offload's `w` has ended: done only frees arg).
 * ------------------------------------------------------------------------------------- */

/**
 * On the worker's thread, from a handler or middleware: defers the exchange
 * (chopin_defer), runs work(arg) on a pool thread, then done(x, arg) on this worker,
 * which fills chopin_exchange_res(x) and calls chopin_exchange_finish(x). done always
 * runs once, also when the exchange was cancelled meanwhile (the client left, the
 * handler_timeout_ms deadline answered 504, the server stopped): chopin_exchange_res(x)
 * is NULL then and done only frees arg. work runs even when the exchange was cancelled
 * while it waited in the queue; it must not touch the request or response (other
 * thread): copy what it needs into arg before.
 *
 * Returns 0; CHOPIN_EBUSY when the pool's queue is full (`res` then holds a 503, neither
 * function runs, arg stays the caller's); CHOPIN_ENOMEM (a 503 too); chopin_defer's
 * errors (its 503); CHOPIN_EINVAL (NULL work or done); CHOPIN_ENOTSUP outside a server.
 */
CHOPIN_API int chopin_offload(chopin_req *req, chopin_res *res, void (*work)(void *arg),
                              chopin_exchange_fn done, void *arg);
/** The same without an exchange, on w's thread: work(arg) on a pool thread, then
 *  done(w, arg) on w (see the section's head for a server that ends first). Returns 0,
 *  CHOPIN_EBUSY (queue full: neither runs), CHOPIN_ENOMEM, CHOPIN_EINVAL, CHOPIN_ENOTSUP
 *  (a worker without a server). */
CHOPIN_API int chopin_worker_offload(chopin_worker *w, void (*work)(void *arg),
                                     chopin_task_fn done, void *arg);

/* ---------------------------------------------------------------------------------------
 * Server-sent events (text/event-stream, WHATWG HTML §9.2)
 *
 * A handler opens an event stream on its response; the application then sends events to
 * it as they happen, on the stream's worker, from anything that runs there: a timer, a
 * watched descriptor, a posted function, another request's handler. Another thread posts
 * to the worker (chopin_worker_post(chopin_sse_worker(s), ...)) and sends there; since
 * the stream may have closed meanwhile, the posted function looks it up in the
 * application's own table, from which on_close removed it.
 *
 * A reconnecting browser sends the id of the last event it saw: chopin_sse_last_id.
 * The client leaving (its EOF or a reset, or a send failing) closes the stream and runs
 * on_close once. Idle streams carry a comment line every sse_heartbeat_ms
 * (CHOPIN_SSE_HEARTBEAT_MS, 15 s by default), which keeps proxies from timing them out
 * and finds a peer that vanished without a word. Memory is bounded: events not yet taken
 * by the socket are kept up to CHOPIN_SSE_MAX_QUEUED bytes per stream, beyond which a
 * send is refused (CHOPIN_ENOSPC: the application drops the event or closes the stream;
 * a reader that stopped reading is cut by write_timeout_ms).
 *
 * To answer with events after a deferral, open the stream on the deferred exchange's
 * request and response (chopin_exchange_req/res), then chopin_exchange_finish.
 * ------------------------------------------------------------------------------------- */

typedef struct chopin_sse chopin_sse;
typedef void (*chopin_sse_fn)(chopin_sse *s, void *arg);

/** Bytes of events a stream keeps queued for a slow reader before refusing more. */
#define CHOPIN_SSE_MAX_QUEUED (1u << 20)

/**
 * Makes `res` a 200 text/event-stream (Cache-Control: no-cache, X-Accel-Buffering: no,
 * chunked) and returns its stream, or NULL (CHOPIN_ENOMEM, an invalid request: the
 * response then is unchanged). On the worker's thread, from a handler or a deferred
 * exchange. on_close(s, arg) (may be NULL) runs once when the stream ends, whatever ends
 * it (the client leaving, chopin_sse_close, the server stopping, the response replaced
 * or never sent); `s` is valid until on_close returns, and not after.
 */
CHOPIN_API chopin_sse *chopin_sse_open(chopin_req *req, chopin_res *res, chopin_sse_fn on_close,
                                       void *arg);
/**
 * Queues one event: an optional `event` type and `id` (NULL: none; neither may hold a
 * line break: CHOPIN_EINVAL), and `len` bytes of `data`, one "data:" line per line (a CR,
 * LF or CRLF ends a line, so "a\nb" arrives as "a\nb"; the data may be empty). The bytes
 * are copied. On the stream's worker. Returns 0, CHOPIN_ENOSPC (over
 * CHOPIN_SSE_MAX_QUEUED: nothing queued), CHOPIN_ENOMEM, or CHOPIN_ESTALE (the stream is
 * closing: chopin_sse_close was called, or its client left and on_close runs).
 */
CHOPIN_API int chopin_sse_send(chopin_sse *s, const char *event, const char *id, const char *data,
                               size_t len);
/** Tells the client to wait `ms` before reconnecting ("retry:"). Returns as chopin_sse_send. */
CHOPIN_API int chopin_sse_retry(chopin_sse *s, uint32_t ms);
/** A comment line (": text"), which clients ignore; `text` may not hold a line break
 *  (CHOPIN_EINVAL). Returns as chopin_sse_send. */
CHOPIN_API int chopin_sse_comment(chopin_sse *s, const char *text);
/** Ends the stream once what is queued has been sent (the connection then serves its
 *  next request); on_close runs then. Later calls on `s` return CHOPIN_ESTALE until
 *  on_close returns. */
CHOPIN_API void chopin_sse_close(chopin_sse *s);
/** The stream's worker, for chopin_worker_post from another thread. */
CHOPIN_API chopin_worker *chopin_sse_worker(const chopin_sse *s);
/** The Last-Event-ID header of a reconnecting client (ptr NULL when absent): the id of
 *  the last event it received, as chopin_req_header(req, "Last-Event-ID"). */
CHOPIN_API chopin_str chopin_sse_last_id(const chopin_req *req);

/* ---------------------------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------------------------- */

typedef enum chopin_backend {
    CHOPIN_BACKEND_AUTO = 0, /* io_uring where the kernel allows it, else epoll (kqueue on BSD) */
    CHOPIN_BACKEND_EPOLL,
    CHOPIN_BACKEND_IO_URING,
    CHOPIN_BACKEND_KQUEUE,
} chopin_backend;

/** shutdown_timeout_ms: close every connection at once instead of draining. */
#define CHOPIN_SHUTDOWN_NOW UINT32_MAX
/** max_body_bytes: refuse every request body (413). */
#define CHOPIN_NO_BODY UINT64_MAX

/**
 * Server options. Sizes are bytes, times milliseconds.
 *
 * Zero means "the default" for every field (the default is named beside each), so a
 * zero-initialised struct with its size set is the defaults:
 *
 *     chopin_options o = CHOPIN_OPTIONS_INIT;       (or chopin_options_default())
 *     o.max_body_bytes = 1 << 20;
 *
 * Where zero is also a real setting, a named value asks for it: pin = -1,
 * CHOPIN_SHUTDOWN_NOW, CHOPIN_NO_BODY, server_name = "". The environment (CHOPIN_*, see
 * the README's Configuration table) overrides the code when the server starts. A value
 * out of range stops the start with a message naming the field and its variable.
 *
 * Growing without breaking programs: `size` holds sizeof(chopin_options) as the program
 * was compiled (CHOPIN_OPTIONS_INIT, chopin_options_init and chopin_options_default set
 * it). The library reads only the fields that lie wholly within `size` and takes the
 * default for the others, so a program built against an older chopin.h keeps working.
 * New fields are only ever appended. A `size` of 0 (never set), or a larger one than the
 * library knows with any of the unknown bytes set, stops the start with -EINVAL.
 */
typedef struct chopin_options {
    size_t size;                  /* sizeof(chopin_options), as compiled */
    int workers;                  /* CHOPIN_WORKERS; 0: one per CPU the process may use */
    int pin;                      /* CHOPIN_PIN; 0: default (on), 1: pin each worker to one
                                     CPU, -1: off (the scheduler moves workers) */
    chopin_backend backend;       /* CHOPIN_BACKEND=auto|epoll|io_uring|kqueue; 0: AUTO, the
                                     only one that falls back: an explicit backend that is not
                                     compiled in or that the kernel refuses stops the start */
    uint32_t slab_capacity;       /* CHOPIN_SLAB_CAPACITY; connections per worker; 0: from
                                     the descriptor limit (README, Configuration) */
    uint32_t keepalive_timeout_ms;/* CHOPIN_KEEPALIVE_TIMEOUT_MS; 0: 30000; idle keep-alive */
    uint32_t header_timeout_ms;   /* CHOPIN_HEADER_TIMEOUT_MS; 0: 10000; whole request head */
    uint32_t body_timeout_ms;     /* CHOPIN_BODY_TIMEOUT_MS; 0: 30000; whole request body */
    uint32_t write_timeout_ms;    /* CHOPIN_WRITE_TIMEOUT_MS; 0: 30000; since the last send
                                     the kernel accepted (a steady but slow reader is cut) */
    uint32_t shutdown_timeout_ms; /* CHOPIN_SHUTDOWN_TIMEOUT_MS; 0: 10000; bound on the
                                     graceful drain; CHOPIN_SHUTDOWN_NOW: no drain */
    uint32_t max_request_line;    /* CHOPIN_MAX_REQUEST_LINE; 0: 8192 (414) */
    uint32_t max_header_bytes;    /* CHOPIN_MAX_HEADER_BYTES; 0: 32768 (431), request line
                                     included, so at least max_request_line */
    uint32_t max_headers;         /* CHOPIN_MAX_HEADERS; 0: 64 (431) */
    uint64_t max_body_bytes;      /* CHOPIN_MAX_BODY_BYTES; 0: 16 MiB (413); CHOPIN_NO_BODY:
                                     refuse every body */
    uint32_t buffer_size;         /* CHOPIN_BUFFER_SIZE; 0: 16384; pooled read/write buffer */
    int sqpoll;                   /* CHOPIN_SQPOLL; 0: off, 1: io_uring kernel polling thread */
    uint32_t sqpoll_idle_ms;      /* CHOPIN_SQPOLL_IDLE_MS; 0: 1000 */
    uint32_t ring_entries;        /* CHOPIN_RING_ENTRIES; 0: 4096 (io_uring SQ size) */
    const char *server_name;      /* NULL: "chopin"; "": no Server header. Copied at start */
    /** Runs on each worker thread before it serves; its result is chopin_req_worker_data.
     *  NULL: none. worker_fini runs on the same thread after the worker's last request. */
    void *(*worker_init)(int worker_id, void *arg);
    void (*worker_fini)(int worker_id, void *worker_data, void *arg);
    void *worker_arg;             /* passed to both hooks; kept until chopin_server_wait */
    int quiet;                    /* CHOPIN_QUIET; 0: a start banner on stderr, 1: none */
    int share_port;               /* CHOPIN_SHARE_PORT; 0: fail with CHOPIN_EADDRINUSE when any
                                     other socket holds the address; 1: join the SO_REUSEPORT
                                     listeners of this user already there (a restart hand-off):
                                     the kernel then splits new connections between them */
    uint32_t handler_timeout_ms;  /* CHOPIN_HANDLER_TIMEOUT_MS; 0: 30000; a deferred exchange
                                     not finished by then is answered 504 and cancelled */
    uint32_t max_deferred;        /* CHOPIN_MAX_DEFERRED; 0: 16384; open deferred exchanges
                                     per worker, beyond them chopin_defer answers 503 */
    uint32_t max_pending;         /* CHOPIN_MAX_PENDING; 0: 16; requests of one connection
                                     in progress (deferred, or answered behind one that is);
                                     beyond them its further requests are not read yet */
    uint32_t offload_threads;     /* CHOPIN_OFFLOAD_THREADS; 0: one per worker; the blocking
                                     pool of chopin_offload */
    uint32_t offload_queue;       /* CHOPIN_OFFLOAD_QUEUE; 0: 1024; jobs waiting for the pool,
                                     beyond them chopin_offload answers 503 */
    uint32_t sse_heartbeat_ms;    /* CHOPIN_SSE_HEARTBEAT_MS; 0: 15000; the comment line an
                                     idle server-sent event stream sends to stay open */
    /* HTTP/2 (issue 20, docs/http2.md; only in a library built with nghttp2) */
    uint32_t h2c;                 /* CHOPIN_H2C; 0: off, 1: a plain connection that starts with
                                     the HTTP/2 preface speaks h2c (prior knowledge) */
    uint32_t h2c_upgrade;         /* CHOPIN_H2C_UPGRADE; 0: off, 1: a request with
                                     "Upgrade: h2c" switches its connection to h2c (RFC 7540
                                     §3.2) and is answered as stream 1 */
    /* Logs (issue 19, docs/operations.md) */
    uint32_t log_level;           /* CHOPIN_LOG_LEVEL=error|warn|info|debug (chopin_log_level
                                     1..4); 0: info. What
                                     the library prints (chopin_log) below it is dropped */
    uint32_t access_log_format;   /* CHOPIN_ACCESS_LOG_FORMAT=combined|json; 0: combined
                                     (CHOPIN_ACCESS_LOG_COMBINED 1, CHOPIN_ACCESS_LOG_JSON 2) */
    const char *access_log;       /* CHOPIN_ACCESS_LOG; NULL or "": off; "-": stderr; else a
                                     file, appended to, reopened by chopin_server_reopen_logs
                                     (SIGUSR1 under chopin_serve). Copied at start */
    /* Behind a load balancer, restarts (issue 19; docs/operations.md) */
    const char *trusted_proxies;  /* CHOPIN_TRUSTED_PROXIES; NULL: none; the proxies whose
                                     word about the client is believed: addresses and CIDR
                                     blocks ("10.0.0.0/8, 127.0.0.1, ::1"), for the PROXY
                                     protocol (a ?proxy listener needs them) and Forwarded /
                                     X-Forwarded-*. Parsed at start */
    uint32_t proxy_timeout_ms;    /* CHOPIN_PROXY_TIMEOUT_MS; 0: 5000; a ?proxy listener's
                                     connection is closed when its PROXY header is not whole
                                     by then */
    int restart;                  /* CHOPIN_RESTART; 0: default (on), 1: on, -1: off;
                                     chopin_serve re-executes the program on SIGUSR2, handing
                                     it the listening sockets, and drains ("Restarts") */
    /* TLS (issue 16, docs/tls.md): used by the https:// listeners. Strings are copied at
       start; the environment variable of each overrides it. */
    uint32_t tls_handshake_timeout_ms; /* CHOPIN_TLS_HANDSHAKE_TIMEOUT_MS; 0: 10000; from the
                                     first byte to the end of the handshake */
    uint32_t tls_client_verify;   /* CHOPIN_TLS_CLIENT_VERIFY; 0: CHOPIN_TLS_VERIFY_OFF */
    const char *tls_cert;         /* CHOPIN_TLS_CERT; PEM certificate chain files, comma-
                                     separated: the first is the default, the others are
                                     chosen by SNI from the names they hold */
    const char *tls_key;          /* CHOPIN_TLS_KEY; PEM private keys, in tls_cert's order */
    const char *tls_ciphers;      /* CHOPIN_TLS_CIPHERS; NULL: ECDHE with AES-GCM or
                                     ChaCha20-Poly1305 (TLS 1.2; forward secrecy only) */
    const char *tls_ciphersuites; /* CHOPIN_TLS_CIPHERSUITES; NULL: OpenSSL's TLS 1.3 suites */
    const char *tls_groups;       /* CHOPIN_TLS_GROUPS; NULL: X25519:P-256:P-384 */
    const char *tls_client_ca;    /* CHOPIN_TLS_CLIENT_CA; PEM CAs that sign client certificates */
    const char *tls_ocsp;         /* CHOPIN_TLS_OCSP; DER OCSP responses stapled, comma-
                                     separated in tls_cert's order ("" for none) */
} chopin_options;

/** Options with every field zero (the defaults) and `size` set: `chopin_options o =
 *  CHOPIN_OPTIONS_INIT;`. */
#define CHOPIN_OPTIONS_INIT {.size = sizeof(chopin_options)}

/**
 * Sets `o->size` to `size` and every field within it to its default value (the values
 * the comments above name, so a program can read them; pin 1, server_name "chopin").
 * Pass sizeof *o. Writes nothing when `o` is NULL or `size` cannot be a chopin_options
 * size (0, or absurdly large): the server then refuses the options.
 */
CHOPIN_API void chopin_options_init(chopin_options *o, size_t size);

/** The defaults, by value. Inline, so the struct's size is the one this program was
 *  compiled with, whatever library it runs against. */
static inline chopin_options chopin_options_default(void) {
    chopin_options o = CHOPIN_OPTIONS_INIT;
    chopin_options_init(&o, sizeof o);
    return o;
}

/**
 * Checks `opt` (NULL: the defaults) with the environment applied over it, as the start
 * would, without opening or starting anything: every field, every CHOPIN_* variable, and
 * that an explicit backend is compiled in and allowed by the kernel. Call it before
 * creating anything the server needs (files, directories) to fail early. `opt` is only
 * read. Returns 0; -EINVAL after printing one line on stderr for every invalid value
 * (naming its field and CHOPIN_* variable, all of them, not only the first); -ENOTSUP
 * after printing why an explicit backend is not available.
 */
CHOPIN_API int chopin_options_check(const chopin_options *opt);

/**
 * Serves `router` on `address` ("0.0.0.0:8080", "localhost:8080", "[::1]:8080", ":8080";
 * port 0 lets the kernel choose) until SIGINT or SIGTERM, or chopin_server_stop() from a
 * worker (chopin_req_server), then drains gracefully. Blocks.
 *
 * Signals: chopin_serve blocks SIGINT and SIGTERM in the calling thread and in every
 * worker and waits for them itself; a handler the program installed for them does not
 * run meanwhile. The first one starts the drain. The caller's signal mask is restored
 * before it returns. SIGPIPE is set to SIG_IGN when its disposition is the default (a
 * vanished peer must be an EPIPE, not the end of the process); a handler of the program
 * is left alone.
 *
 * `router` stays the caller's: it is frozen (no more routes can be added) from the start
 * on, even when the start fails; it may be served again, and is freed with
 * chopin_router_free() after chopin_serve has returned. `opt` (NULL: the defaults) is read
 * during the call and copied; worker_arg is passed to the hooks until the return.
 *
 * Returns 0 after a clean shutdown. On failure nothing is left running and it returns,
 * after printing the reason on stderr: -EINVAL (NULL router or address, malformed
 * address, port above 65535, invalid options: every invalid value printed), -ENOTSUP (an
 * explicit backend that is not available), CHOPIN_EADDRINUSE (another socket holds the
 * address; see share_port), -EADDRNOTAVAIL, -EACCES (a port below 1024 without the
 * privilege), -ENOMEM, or a worker's error.
 */
CHOPIN_API int chopin_serve(chopin_router *router, const char *address,
                            const chopin_options *opt);

/**
 * Starts serving in the background and returns once every worker listens: the
 * application keeps its own threads and its own loop.
 *
 * Signals: unlike chopin_serve, it waits for no signal and installs no handler; it leaves
 * the caller's signal mask as it was. The workers run with SIGINT and SIGTERM blocked, so
 * a process-directed signal reaches one of the application's threads. Only SIGPIPE is
 * changed, as for chopin_serve. To stop, the application calls chopin_server_stop(),
 * which is async-signal-safe (it may be called from the application's signal handler),
 * then chopin_server_wait().
 *
 * On success *out receives the handle and 0 is returned. On failure *out is NULL, nothing
 * is running, and the return is one of chopin_serve's codes (the reason printed on
 * stderr). `router` and `opt` as for chopin_serve: the router must outlive
 * chopin_server_wait().
 */
CHOPIN_API int chopin_server_start(chopin_router *router, const char *address,
                                   const chopin_options *opt, chopin_server **out);
/** The bound port of the first TCP listener (useful with port 0), 0 when every listener
 *  is a Unix socket. `s` is a started, not yet waited-for server. */
CHOPIN_API int chopin_server_port(const chopin_server *s);
/** The name of the backend the workers run ("epoll", "io_uring", "kqueue"). */
CHOPIN_API const char *chopin_server_backend(const chopin_server *s);
/** Asks the workers to drain and stop, and returns at once. Async-signal-safe; callable
 *  from any thread, a handler included, and more than once. */
CHOPIN_API void chopin_server_stop(chopin_server *s);
/** Waits for every worker to end (after chopin_server_stop, or when all of them failed),
 *  then frees the server: `s` is invalid afterwards. Call it once per started server, and
 *  never from a handler (a worker would wait for itself). Returns 0 or the first worker's
 *  error (which that worker printed). */
CHOPIN_API int chopin_server_wait(chopin_server *s);

/** Totals of every worker's counters (read without locks; approximate while serving).
 *  `requests` counts answered requests: a handler's own request is not yet among them. */
typedef struct chopin_stats {
    uint64_t requests, connections_accepted, connections_open, bytes_sent, errors_4xx,
        errors_5xx, slab_full, accept_errors;
} chopin_stats;
/** Fills *out. Callable from any thread while `s` runs, a handler included. */
CHOPIN_API void chopin_server_stats(const chopin_server *s, chopin_stats *out);

/** The server whose worker runs this request, for chopin_server_stats or
 *  chopin_server_stop from a handler. Valid for the server's lifetime. */
CHOPIN_API chopin_server *chopin_req_server(const chopin_req *req);

/* ===== Listeners and load balancers (issue 19) =====
 *
 * The `address` of chopin_serve and chopin_server_start (or CHOPIN_LISTEN, which replaces
 * it) is a comma-separated list of listeners, served at once by every worker:
 *
 *     "0.0.0.0:8080, unix:/run/app/http.sock?mode=0660, 127.0.0.1:8081?proxy"
 *
 * Each item is `[http://|https://]host:port[?options]` (a TCP listener: one SO_REUSEPORT
 * socket per worker) or `unix:/path[?options]` (one Unix socket the workers share; a
 * stale socket file nobody listens on is replaced, a live one or a file that is not a
 * socket refused with CHOPIN_EADDRINUSE; the file is removed when the server ends).
 * Options, joined by '&': `proxy` (every connection starts with a PROXY protocol header,
 * v1 or v2) and, for a Unix socket, `mode=0NNN` (its permission bits, set before it
 * listens). `https://` marks a TLS listener. At most 16 listeners.
 *
 * Sockets inherited through LISTEN_FDS (systemd socket activation, or the process this
 * one replaced) are taken over by the item with their address, with its options; those no
 * item names are served as given, plain HTTP (docs/operations.md, "systemd").
 */
/**
 * The client's address as the trusted proxies (options.trusted_proxies) report it: from
 * Forwarded (RFC 7239), else X-Forwarded-For, read from the right, past every hop that is
 * a trusted proxy, to the first that is not ("192.0.2.60", "2001:db8::17"; no port; as the
 * proxy wrote it, which may be "unknown" or an obfuscated "_name"). When the connection's
 * peer is not a trusted proxy, or the headers are absent or malformed: the peer's own
 * address without its port (the client a PROXY header relayed, or the socket's; "unix"
 * for a Unix socket's peer). Borrows the request (valid until the response is sent).
 */
CHOPIN_API chopin_str chopin_req_client_addr(chopin_req *req);
/**
 * "https" or "http": the scheme the client used, as the trusted proxies report it
 * (Forwarded proto= of the client's hop, else X-Forwarded-Proto), else https when the
 * connection came through TLS (an https:// listener, or a PROXY v2 header saying the
 * client spoke TLS to the proxy). Static text.
 */
CHOPIN_API chopin_str chopin_req_client_scheme(chopin_req *req);

/**
 * Restarts without a dropped request (docs/operations.md, "Restarts"): starts the
 * program again from its file (a new build installed over it is what runs) with the same
 * arguments and environment, hands it every listening socket (LISTEN_FDS, as systemd
 * does; each address item takes its own sockets back, so ports, modes and ?proxy stay),
 * waits up to 30 s for it to listen, then drains this server as chopin_server_stop does:
 * connections it accepted are answered, new ones go to the new process, and no socket
 * ever stops listening. chopin_serve calls it on SIGUSR2 (options.restart, CHOPIN_RESTART;
 * on by default). Callable from any thread but a worker. Returns 0 once the new process
 * listens (this server then stops: wait for it as usual); CHOPIN_EBUSY when stopping or
 * already restarting; else -errno after printing why, and this server goes on serving
 * (the new process, if any, is killed). Linux only (CHOPIN_ENOTSUP elsewhere).
 */
CHOPIN_API int chopin_server_restart(chopin_server *s);

/** How many listeners `s` serves (inherited ones included), in the order of `address`
 *  first, then the inherited sockets no item named. */
CHOPIN_API int chopin_server_listeners(const chopin_server *s);
/** The bound port of listener `i` (0 for a Unix socket), or CHOPIN_EINVAL when there is
 *  no listener `i`. */
CHOPIN_API int chopin_server_listener_port(const chopin_server *s, int i);

/* ===== TLS (issue 16) ===== */
/*
 * A listener written "https://host:port" speaks TLS (OpenSSL 3, TLS 1.2 and 1.3) with the
 * certificates of chopin_options.tls_cert / tls_key (docs/tls.md). A build without OpenSSL
 * refuses such a listener with CHOPIN_ENOTSUP.
 */
#define CHOPIN_TLS_VERIFY_OFF 0u      /* no client certificate asked for */
#define CHOPIN_TLS_VERIFY_OPTIONAL 1u /* asked for; a client without one is served, one
                                         that fails verification is refused */
#define CHOPIN_TLS_VERIFY_REQUIRE 2u  /* a client without a valid certificate is refused */

/** Nonzero when this library was built with TLS (OpenSSL 3), so https:// listeners work. */
CHOPIN_API int chopin_tls_available(void);

/** Counts since start, all workers. */
typedef struct chopin_tls_stats {
    uint64_t handshakes;      /* completed */
    uint64_t resumed;         /* of those, resumed from a ticket */
    uint64_t failed;          /* refused by OpenSSL (bad version, cipher, certificate, ...) */
    uint64_t malformed_hello; /* first bytes neither a ClientHello nor an HTTP request */
    uint64_t plain_http;      /* plain HTTP on a TLS port (answered 400) */
    uint64_t timeouts;        /* handshakes cut by tls_handshake_timeout_ms */
    uint64_t reloads;         /* certificate reloads that took effect */
    uint64_t ktls;            /* connections whose records the kernel builds (their
                                 sending keys handed over: docs/tls.md, kTLS); 0 where
                                 the kernel has no tls module */
} chopin_tls_stats;

/** Fills the first `size` bytes of *out (pass sizeof *out): zero everywhere when `s` has no
 *  TLS listener. Callable from any thread while `s` runs. */
CHOPIN_API void chopin_server_tls_stats(const chopin_server *s, chopin_tls_stats *out,
                                        size_t size);
/** Rereads the certificates, keys and OCSP responses from the files named at start. New
 *  handshakes use them; connections already open keep theirs. When any of them fails to
 *  load, nothing changes: the old ones stay and one line on stderr says why. Returns 0,
 *  CHOPIN_ENOTSUP (no TLS listener), or CHOPIN_EINVAL (a file did not load). Callable from
 *  any thread, a handler included; not async-signal-safe (a signal handler should post it
 *  to a thread). */
CHOPIN_API int chopin_server_tls_reload(chopin_server *s);
/** The subject of the client certificate the handshake verified ("CN=alice,O=Example"),
 *  or an empty string (plain connection, no certificate asked for or none given). Borrows
 *  request memory. */
CHOPIN_API chopin_str chopin_req_tls_subject(chopin_req *req);
/** Nonzero when the request came over TLS. */
CHOPIN_API int chopin_req_is_tls(const chopin_req *req);
/** A middleware for a plain listener that should send everyone to HTTPS: a request that
 *  did not come over TLS is answered 308 with Location https://<its Host, without the
 *  port>[:<data>]<its target>; a TLS request goes on. `data` is the HTTPS port as a
 *  string ("8443"; NULL or "443": none written), and must outlive the server.
 *      chopin_router_use(r, "/", chopin_tls_redirect, "8443");
 *  A request without a Host header is answered 400. */
CHOPIN_API void chopin_tls_redirect(chopin_req *req, chopin_res *res, chopin_next *next,
                                    void *data);


/* ===== Compression (issue 15) ===== */

/**
 * On-the-fly compression of answers (docs/compression.md). A middleware:
 *
 *     static const chopin_compress_options zip = {.min_size = 512};
 *     chopin_router_use(r, NULL, chopin_compress, (void *)&zip);  // or NULL: the defaults
 *
 * It compresses the answers of every request it covers (a prefix limits it like any
 * middleware) once they are final, deferred answers included, when all of these hold:
 *   - the client accepts a coding this build has (Accept-Encoding, RFC 9110 §12.5.3, with
 *     q-values, "*" and "identity;q=0"), ties going to the order of `prefer`;
 *   - the request is not HEAD and the status is not 1xx, 204, 206 or 304;
 *   - the answer has no Content-Encoding and no Content-Range yet;
 *   - its Content-Type is in `types`;
 *   - a body in memory (copied, static, owned, JSON) has at least `min_size` bytes and
 *     shrinks; so does a file body (chopin_res_fd, chopin_res_file*) of at most 1 MiB,
 *     read with pread on the worker (a larger file keeps sendfile and goes out as it is);
 *     a stream (chopin_res_stream, server-sent events) is compressed as it goes, each
 *     piece the producer returns flushed, so it can be decoded on arrival.
 * Every answer that qualifies but for the coding the client accepts gets "Vary:
 * Accept-Encoding" (added to a Vary already there), compressed or not, HEAD included; a
 * body under min_size is identity for every client and gets none. A compressed answer gets
 * Content-Encoding, and its ETag, if it has one, becomes that coding's own: "x" turns into
 * "x-gzip" (W/"x" into W/"x-gzip"), and a GET whose If-None-Match names that tag is
 * answered 304 without compressing.
 *
 * The options are read, never copied: they must stay valid while the router serves (a
 * static const, as above). When compressing fails (out of memory) the answer goes out
 * uncompressed. Thread-safe: each worker keeps its own compression contexts.
 */
typedef struct chopin_compress_options {
    /** Media types to compress, NULL-terminated: "text/html"; a whole top-level type as
     *  "text/" followed by a star; a structured suffix as "application/" followed by a star
     *  and "+json"; "*" (everything). Parameters (charset) of the answer's type are
     *  ignored; case does not matter. NULL: text/html, text/plain, text/css,
     *  text/javascript, text/csv, text/xml, text/markdown, text/event-stream,
     *  application/json, application/javascript, application/xml, application/wasm,
     *  image/svg+xml, and the application types with a +json or +xml suffix. */
    const char *const *types;
    /** The codings offered, best first, comma-separated: "zstd,br,gzip" (NULL: that).
     *  Names this build lacks (chopin_compress_supported) are skipped. */
    const char *prefer;
    uint32_t min_size; /* bytes; 0: 256. Smaller bodies go out as they are */
    int gzip_level;    /* 0: 6; 1..9 */
    int br_level;      /* 0: 4; 1..11 */
    int zstd_level;    /* 0: 3; 1..19 */
    int no_streams;    /* nonzero: streams go out uncompressed */
    int no_files;      /* nonzero: file bodies go out uncompressed (with sendfile) */
} chopin_compress_options;

/** The middleware (see chopin_compress_options); `opts` is a const chopin_compress_options
 *  pointer or NULL for the defaults. */
CHOPIN_API void chopin_compress(chopin_req *req, chopin_res *res, chopin_next *next, void *opts);

/** Nonzero when this build can produce content coding `name` ("gzip", "br", "zstd"): each
 *  is built when its library was found (libdeflate and zlib, libbrotlienc, libzstd). */
CHOPIN_API int chopin_compress_supported(const char *name);

/* ===== Request bodies as streams, forms and multipart (issue 18) =====
 *
 * By default a body is read whole (up to max_body_bytes) before the handler runs. A route
 * registered with chopin_router_stream runs its middleware and handler as soon as the
 * request's head has arrived; the handler takes the body as it arrives with
 * chopin_body_read (which defers the exchange: the answer comes after the body, through
 * chopin_exchange_res and chopin_exchange_finish), or answers without it (401, 415...):
 * the body is then never read, no "100 Continue" is sent, and the connection closes
 * after the answer. Memory stays bounded whatever the body's size: one read's bytes at a
 * time, handed over in place. See docs/uploads.md.
 */

#define CHOPIN_ECANCELED (-ECANCELED) /* the exchange was cancelled (client left, server stopped) */
#define CHOPIN_ETIMEDOUT (-ETIMEDOUT) /* a deadline passed */

/**
 * Registers a route like chopin_router_route whose handler runs when the head arrives,
 * before the body (requests without a body run it as usual). `max_body` bounds its body
 * instead of max_body_bytes (0: max_body_bytes): a larger Content-Length is answered 413
 * before the handler runs, a chunked body is cut with 413 when it passes the bound.
 * Same errors as chopin_router_route.
 */
CHOPIN_API int chopin_router_stream(chopin_router *r, chopin_method method, const char *pattern,
                                    chopin_handler handler, void *data, uint64_t max_body);

/** What a streamed body is handed to. Every callback runs on the exchange's worker. */
typedef struct chopin_body_handler {
    /** A piece of the body (chunked framing removed), borrowed for the call only. */
    void (*on_data)(chopin_exchange x, const char *data, size_t len, void *arg);
    /** The body ended whole: answer now or later (chopin_exchange_res, then
     *  chopin_exchange_finish); handler_timeout_ms runs from here. */
    void (*on_end)(chopin_exchange x, void *arg);
    /** The body will not end (may be NULL): CHOPIN_EFBIG (past the route's bound: the
     *  client got 413), CHOPIN_EINVAL (malformed chunked framing: 400), CHOPIN_ETIMEDOUT
     *  (body_timeout_ms passed without a byte: 408), CHOPIN_ECANCELED (the client left, or
     *  the server stopped). The exchange is over and `x` stale: free what `arg` holds. The
     *  exchange's on_cancel callback, when set, runs too (after this one). */
    void (*on_error)(chopin_exchange x, int err, void *arg);
} chopin_body_handler;

/**
 * From a handler or middleware on the worker's thread: takes the request's body as it
 * arrives. Defers the exchange (chopin_defer; *out receives its handle), sends "100
 * Continue" when the client asked for it, then calls h->on_data per piece and h->on_end,
 * or h->on_error. `h` is copied; `arg` must stay valid until on_end or on_error. The
 * handler deadline (handler_timeout_ms) starts when the body ends; while it arrives,
 * body_timeout_ms bounds each wait for more bytes. An answer finished before the body
 * ended is sent at once, and the connection closes after it (the rest is not read).
 *
 * When the body is already whole (a route not registered with chopin_router_stream, or
 * a request without a body) on_data and on_end run before this returns.
 *
 * Returns 0; CHOPIN_EINVAL (NULL argument, on_data or on_end NULL, or not inside a
 * handler); chopin_defer's errors (then `res` holds a 503 and no callback ever runs).
 */
CHOPIN_API int chopin_body_read(chopin_req *req, chopin_res *res, const chopin_body_handler *h,
                                void *arg, chopin_exchange *out);
/**
 * Backpressure: on the exchange's worker, stops reading the body (no on_data after this
 * call returns, until resumed); the client is throttled by TCP (over HTTP/2 by the
 * stream's flow-control window, the connection's other streams going on), not by memory. Resume
 * with chopin_body_resume from anything on the worker (a timer, an offload's done, a
 * watched descriptor): the bytes already read are handed over once that caller returns.
 * body_timeout_ms still bounds a pause. Returns 0, or CHOPIN_ESTALE (the exchange ended,
 * or its body has: nothing happens).
 */
CHOPIN_API int chopin_body_pause(chopin_exchange x);
CHOPIN_API int chopin_body_resume(chopin_exchange x);

/** A spooled body: in memory (`data`, `fd` -1) or in an unnamed temporary file (`fd`,
 *  `data` NULL; read it with pread from offset 0). `len` bytes either way. */
typedef struct chopin_spooled {
    const char *data;
    int fd;
    uint64_t len;
} chopin_spooled;

/** Runs once: with the body (err 0) or without (body NULL, err as chopin_body_handler's
 *  on_error). The body, memory or descriptor, is the server's: valid during the call only
 *  (dup the descriptor to keep the file). After an error, `x` is stale. */
typedef void (*chopin_spool_fn)(chopin_exchange x, const chopin_spooled *body, int err,
                                void *arg);

/**
 * A ready-made body reader: keeps the body in memory up to `in_memory` bytes (0: 64 KiB)
 * and past that moves it to an unnamed temporary file in `dir` (NULL: $TMPDIR, else /tmp;
 * O_TMPFILE where the kernel has it, else a file unlinked at once), so memory stays
 * bounded whatever the upload's size. Then runs done(x, body, 0, arg), which answers as
 * on_end would. A write error on the file answers 500 and runs done with CHOPIN_EIO or the
 * write's error. Returns as chopin_body_read (CHOPIN_ENOMEM too: a 503).
 */
CHOPIN_API int chopin_body_spool(chopin_req *req, chopin_res *res, uint64_t in_memory,
                                 const char *dir, chopin_spool_fn done, void *arg,
                                 chopin_exchange *out);

/** One field of an application/x-www-form-urlencoded body, decoded. */
typedef struct chopin_form_field {
    chopin_str name, value;
} chopin_form_field;

/**
 * Parses `data[0..len)` as application/x-www-form-urlencoded ('&'-separated
 * "name=value", '+' a space, %XX decoded; a bad escape is kept as text, as browsers do;
 * a field without '=' has an empty value): a copy is decoded in the request arena and
 * *out receives an array of the fields in order (NULL when none). `data` is usually
 * chopin_req_body(req) or a spooled body; it is only read. At most `max_fields` fields
 * (0: 1000) of at most `max_field_bytes` each as sent (0: 64 KiB). Returns the number of
 * fields, CHOPIN_EFBIG past a limit (answer 413), CHOPIN_EFBIG/CHOPIN_ENOMEM when the
 * arena is full.
 */
CHOPIN_API int chopin_form_parse(chopin_req *req, const char *data, size_t len,
                                 uint32_t max_fields, size_t max_field_bytes,
                                 const chopin_form_field **out);
/** The value of the first field named `name` among fields[0..n) (ptr NULL when absent). */
CHOPIN_API chopin_str chopin_form_value(const chopin_form_field *fields, size_t n,
                                        const char *name);

/** A streaming multipart/form-data parser (RFC 7578): feed it the body in pieces of any
 *  size; it hands each part's headers, then the part's data in pieces. */
typedef struct chopin_multipart chopin_multipart;

/** One part's headers, borrowed for the on_part call. name is the field name (always
 *  there); filename is NULL for a plain field, set (possibly empty) for a file: it is the
 *  client's text (filename* per RFC 8187 wins), NEVER a safe path: do not open it.
 *  content_type is NULL when the part has none (text/plain by RFC 7578). headers is the
 *  raw block ("Name: value\r\n" lines). */
typedef struct chopin_part {
    chopin_str name, filename, content_type, headers;
} chopin_part;

/** Each returns 0 to go on, or a negative code that stops the parser and is returned by
 *  chopin_multipart_feed. Data pieces are borrowed for the call. */
typedef struct chopin_multipart_handler {
    int (*on_part)(const chopin_part *part, void *arg);
    int (*on_data)(const char *data, size_t len, void *arg);
    int (*on_part_end)(void *arg); /* may be NULL */
} chopin_multipart_handler;

/**
 * A parser for the body whose Content-Type value is `content_type` (its boundary
 * parameter is read from it). At most `max_parts` parts (0: 1000) and `max_header_bytes`
 * of headers per part (0: 8 KiB). `h` is copied, `arg` kept. Returns 0 with *out set
 * (free it with chopin_multipart_free), CHOPIN_EINVAL (not multipart/form-data or a bad
 * boundary: answer 400 or 415), CHOPIN_ENOMEM.
 */
CHOPIN_API int chopin_multipart_new(chopin_str content_type, uint32_t max_parts,
                                    uint32_t max_header_bytes, const chopin_multipart_handler *h,
                                    void *arg, chopin_multipart **out);
/** Parses the next `len` bytes. Returns 0, CHOPIN_EINVAL (malformed), CHOPIN_EFBIG (a
 *  limit), or a callback's code; errors stick. */
CHOPIN_API int chopin_multipart_feed(chopin_multipart *mp, const char *data, size_t len);
/** The body ended: 0 when its closing boundary was seen, else CHOPIN_EINVAL (cut short)
 *  or the sticky error. */
CHOPIN_API int chopin_multipart_finish(const chopin_multipart *mp);
CHOPIN_API void chopin_multipart_free(chopin_multipart *mp);
/** The status that answers a parser error: 413 for CHOPIN_EFBIG, 400 otherwise. */
CHOPIN_API int chopin_multipart_status(int err);
/* ===== Static files (issue 15) =====
 *
 * Serves a directory tree under a route prefix, the way a dedicated static server does:
 *
 *     chopin_static_options so = CHOPIN_STATIC_OPTIONS_INIT;
 *     so.cache_control = "public, max-age=3600";
 *     chopin_static *st;
 *     if (chopin_static_new("./public", &so, &st) == 0)
 *         chopin_router_static(router, "/static", st);   // GET /static/app.js
 *     ...                                                 // after chopin_serve returns:
 *     chopin_static_free(st);
 *
 * What it does (docs/static.md has the whole story and the comparison with nginx):
 * - Confinement: the kernel resolves every path beneath the root (openat2 with
 *   RESOLVE_BENEATH and, unless CHOPIN_STATIC_SYMLINKS, RESOLVE_NO_SYMLINKS; else one
 *   O_NOFOLLOW openat per component, which refuses every link). The path is the route's
 *   percent-decoded path (decoded once); a backslash, a NUL or a ".." answers 404, and
 *   so does a name starting with '.' (unless CHOPIN_STATIC_DOTFILES).
 * - Directories: the index file; "/static/dir" redirects (301) to "/static/dir/";
 *   without an index, 403, or a sorted, HTML-escaped listing with CHOPIN_STATIC_LISTING.
 * - Files leave with sendfile (every backend); a file that shrinks while it is sent ends
 *   the connection. Small files are kept in memory by the cache below.
 * - Validators and conditionals (RFC 9110 §8.8, §13): a strong ETag from inode, size and
 *   modification time, Last-Modified; If-Match, If-Unmodified-Since (412), If-None-Match,
 *   If-Modified-Since (304) in the order of §13.2.2.
 * - Ranges (§14): Accept-Ranges: bytes; one range 206, several multipart/byteranges
 *   (more than max_ranges, or overlapping ones: 200 with the whole file), unsatisfiable
 *   416 (its Content-Range names the length); If-Range with an ETag or a date. GET only.
 * - Content types from the file's extension (text types with charset=utf-8), extended
 *   per directory with chopin_static_mime; X-Content-Type-Options: nosniff.
 * - With CHOPIN_STATIC_PRECOMPRESSED, "app.js.br", ".zst" or ".gz" beside "app.js" is
 *   sent instead when the request's Accept-Encoding takes that coding, with
 *   Content-Encoding, its own ETag and length, and Vary: Accept-Encoding.
 * - An open-file cache per worker thread: descriptor, stat and validators of up to
 *   cache_entries paths (and the bytes of files up to memory_max), each checked again at
 *   most once a second; a hot small file costs no open, fstat or read.
 */
typedef struct chopin_static chopin_static;

#define CHOPIN_STATIC_LISTING 0x1u        /* list directories without an index file */
#define CHOPIN_STATIC_DOTFILES 0x2u       /* serve names starting with '.' */
#define CHOPIN_STATIC_SYMLINKS 0x4u       /* follow links that stay beneath the root
                                             (openat2 only: the fallback refuses them) */
#define CHOPIN_STATIC_NO_NOSNIFF 0x8u     /* no X-Content-Type-Options: nosniff */
#define CHOPIN_STATIC_PRECOMPRESSED 0x10u /* serve .br, .zst, .gz siblings */

/** cache_entries: no cache (every request opens and stats its file). */
#define CHOPIN_STATIC_NO_CACHE UINT32_MAX

/** Options of a static directory; zero means the default for every field. */
typedef struct chopin_static_options {
    size_t size;               /* sizeof(chopin_static_options), as compiled */
    const char *index;         /* NULL: "index.html"; "": none */
    const char *cache_control; /* Cache-Control of every answer (200, 206, 304); NULL:
                                  none. E.g. "public, max-age=31536000, immutable" for
                                  hashed asset names */
    uint32_t flags;            /* CHOPIN_STATIC_* */
    uint32_t cache_entries;    /* 0: 1024 paths per worker; CHOPIN_STATIC_NO_CACHE */
    uint32_t max_ranges;       /* 0: 16; more ranges in one request: 200, whole file */
    uint32_t memory_max;       /* 0: 16384; files up to this many bytes are kept in
                                  memory by the cache */
} chopin_static_options;

#define CHOPIN_STATIC_OPTIONS_INIT {.size = sizeof(chopin_static_options)}

/**
 * Opens the directory `root` for serving. `opts` (NULL: the defaults) is read during the
 * call and copied. On success *out receives the handle (free it with chopin_static_free
 * after every server using it has stopped) and 0 is returned; else *out is NULL and the
 * return is CHOPIN_EINVAL (NULL argument, a size of 0 or larger than this library knows,
 * an index with '/' or a control byte, a cache_control that is not a field value), the
 * open's error (CHOPIN_ENOENT, CHOPIN_ENOTDIR, CHOPIN_EACCES...), or CHOPIN_ENOMEM.
 */
CHOPIN_API int chopin_static_new(const char *root, const chopin_static_options *opts,
                                 chopin_static **out);

/**
 * Maps extension `ext` ("webp", no dot; case-insensitive) to the content type `type`
 * for this directory, before the built-in table; a "text/" type without parameters
 * gets "; charset=utf-8". Both are copied. Before the server starts. Returns 0,
 * CHOPIN_EINVAL (an extension that is not a token, a type that is not a field value),
 * CHOPIN_ENOMEM.
 */
CHOPIN_API int chopin_static_mime(chopin_static *st, const char *ext, const char *type);

/**
 * Serves `st` under `prefix` ("/static"; "/" for the whole site): GET and HEAD of
 * prefix + "/" + path, and a redirect of prefix itself to prefix + "/". Other methods
 * get the router's 405. `st` is borrowed: it must outlive the router's serving. The
 * same handle may be mounted on several prefixes (they share its caches). Returns
 * chopin_router_route's codes (CHOPIN_EINVAL for a malformed prefix, CHOPIN_EEXIST...).
 */
CHOPIN_API int chopin_router_static(chopin_router *r, const char *prefix, chopin_static *st);

/** Closes the directory and frees `st` (NULL: nothing). Only after the servers that used
 *  it have stopped (chopin_serve returned, chopin_server_wait). */
CHOPIN_API void chopin_static_free(chopin_static *st);

/* ===== Operations: logs, metrics, health, ready-made middleware (issue 19) =====
 * docs/operations.md tells the whole story; the options are in chopin_options (log_level,
 * access_log_format, access_log). */

/** Levels of the error log, for chopin_options.log_level and chopin_log. */
typedef enum chopin_log_level {
    CHOPIN_LOG_ERROR = 1, /* the server cannot do what it was asked (start, listen, a worker) */
    CHOPIN_LOG_WARN,      /* it does something else than asked (a fallback, no pinning) */
    CHOPIN_LOG_INFO,      /* the start banner, a drain beginning (the default level) */
    CHOPIN_LOG_DEBUG,
} chopin_log_level;

/** Values of chopin_options.access_log_format. */
#define CHOPIN_ACCESS_LOG_COMBINED 1u /* Apache/nginx "combined", plus the request id */
#define CHOPIN_ACCESS_LOG_JSON 2u     /* one JSON object per line */

/**
 * Writes one line (a newline is added) to the error log, stderr, when `level` is at or
 * above the level in force: every message the library prints goes through here, each in
 * one write, so lines of several threads never mix. The level in force is the last
 * started server's log_level (CHOPIN_LOG_LEVEL), CHOPIN_LOG_INFO before any, or what
 * chopin_log_set_level set. Any thread; not async-signal-safe.
 */
CHOPIN_API void chopin_log(chopin_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Sets the level in force for the whole process (a server's start sets it too). */
CHOPIN_API void chopin_log_set_level(chopin_log_level level);

/**
 * Reopens the access log file (after logrotate renamed it): the next lines go to a new
 * file at the configured path, and no line is lost or split (each worker writes whole
 * lines, and the descriptor is switched in one step). chopin_serve calls it on SIGUSR1.
 * Async-signal-safe (open, dup3, close), so an application running chopin_server_start
 * may call it from its own SIGUSR1 handler. Returns 0 (also without a log file), or the
 * open's error (the old file is kept then).
 */
CHOPIN_API int chopin_server_reopen_logs(chopin_server *s);

/**
 * Serves Prometheus metrics (text format 0.0.4) on GET `path` of `r`: the sums of every
 * worker's counters, read without locks (approximate while serving): requests by method
 * and status class, bytes in and out, open, idle and evicted connections, requests
 * refused before routing by kind, timeouts by kind, accept errors, and two latency
 * histograms with log-linear buckets, handler time and time to last byte. Registering it
 * turns the histograms on (three clock reads per request); docs/operations.md lists every
 * series. The answers of /metrics itself are counted too. Returns as chopin_router_get.
 */
CHOPIN_API int chopin_metrics_route(chopin_router *r, const char *path);

/**
 * Liveness and readiness answers for load balancers and orchestrators, on GET
 * `h->live_path` and GET `h->ready_path` (either may be NULL). `h` is the caller's and
 * must live as long as the router. Liveness answers 200 "ok" while the worker runs, also
 * during a drain. Readiness answers 200 "ready"; 503 "draining" as soon as the server was
 * asked to stop (before the drain closes anything); 503 "not ready" when `h->check(arg)`
 * (may be NULL) returns 0: the application's own condition (a database reachable, a cache
 * warm), called on the worker's thread, where it must not block. Neither is cached
 * (Cache-Control: no-store). Returns CHOPIN_EINVAL (NULL, or no path), else as
 * chopin_router_get.
 */
typedef struct chopin_health_options {
    const char *live_path;  /* "/healthz" */
    const char *ready_path; /* "/readyz" */
    int (*check)(void *arg);
    void *arg;
} chopin_health_options;
CHOPIN_API int chopin_health_routes(chopin_router *r, const chopin_health_options *h);

/**
 * CORS (the Fetch standard's CORS protocol), as middleware: chopin_router_use(r, "/api",
 * chopin_cors, &opts) with `opts` living as long as the router. A request whose Origin is
 * allowed gets Access-Control-Allow-Origin (the origin itself, or "*" when every origin
 * is allowed and credentials are off), Vary: Origin, and the exposed headers; a preflight
 * (OPTIONS with Origin and Access-Control-Request-Method) is answered 204 at once with
 * the allowed methods, headers and max age, without running the handler. A request from
 * an origin not allowed runs unchanged, without CORS headers (the browser then refuses
 * the answer to the page); its preflight gets 204 without them.
 */
typedef struct chopin_cors_options {
    const char *origins;  /* "https://a.example, https://b.example" or "*"; NULL: "*" */
    const char *methods;  /* Access-Control-Allow-Methods; NULL: "GET, HEAD, POST, PUT,
                             PATCH, DELETE" */
    const char *headers;  /* Access-Control-Allow-Headers; NULL: the headers the
                             preflight asks for (Access-Control-Request-Headers) */
    const char *expose;   /* Access-Control-Expose-Headers; NULL: none */
    int credentials;      /* nonzero: Access-Control-Allow-Credentials: true */
    uint32_t max_age;     /* Access-Control-Max-Age in seconds; 0: not sent */
} chopin_cors_options;
CHOPIN_API void chopin_cors(chopin_req *req, chopin_res *res, chopin_next *next, void *opts);

/**
 * HTTP Basic authentication (RFC 7617), as middleware: chopin_router_use(r, "/admin",
 * chopin_basic_auth, &opts). A request without valid credentials gets 401 with
 * WWW-Authenticate: Basic realm="<realm>", charset="UTF-8", and the handler does not run.
 * With `user` and `password`, the credentials are compared in constant time (the time
 * does not depend on where they differ); with `check`, the application decides (it
 * should compare in constant time too). The user name of an accepted request is
 * chopin_req_user and goes to the access log. Send it over TLS only.
 */
typedef struct chopin_basic_auth_options {
    const char *realm;    /* NULL: "chopin"; no '"' or '\\' */
    const char *user, *password; /* the one account, when check is NULL */
    /** Nonzero to accept `user` (ulen bytes) with `password` (plen bytes); not
     *  NUL-terminated. On the worker's thread; must not block. */
    int (*check)(const char *user, size_t ulen, const char *password, size_t plen, void *arg);
    void *arg;
} chopin_basic_auth_options;
CHOPIN_API void chopin_basic_auth(chopin_req *req, chopin_res *res, chopin_next *next,
                                  void *opts);
/** The user chopin_basic_auth accepted for this request; ptr NULL when none. */
CHOPIN_API chopin_str chopin_req_user(const chopin_req *req);

/**
 * A rate limit per client address (chopin_req_remote_addr without its port), as
 * middleware: chopin_router_use(r, "/api", chopin_rate_limit_mw, limit). A token bucket
 * per client, `per_second` tokens a second up to `burst`, one token per request; a request
 * finding the bucket empty is answered 429 with Retry-After (whole seconds until a token),
 * and the handler does not run. Each worker keeps its own buckets (no lock on the request
 * path): a client whose connections land on several workers gets up to that many times
 * the rate. Each worker remembers up to 4096 clients; past that the one seen longest ago
 * is forgotten (starting full again).
 * Returns NULL for a rate or burst of 0 (or not finite), or out of memory. Free it with
 * chopin_rate_limit_free after the server using it has stopped.
 */
typedef struct chopin_rate_limit chopin_rate_limit;
CHOPIN_API chopin_rate_limit *chopin_rate_limit_new(double per_second, uint32_t burst);
CHOPIN_API void chopin_rate_limit_free(chopin_rate_limit *limit);
CHOPIN_API void chopin_rate_limit_mw(chopin_req *req, chopin_res *res, chopin_next *next,
                                     void *limit);

/**
 * Request ids, as middleware (global: chopin_router_use(r, NULL, chopin_request_id,
 * NULL)): a request's X-Request-Id is kept when it is 1 to 128 visible ASCII characters
 * without '"' or '\\', else a new one is made (32 hex digits: a random prefix per worker
 * thread and a scrambled counter, so unique within the process and not guessable). The
 * answer carries it in X-Request-Id, the access log writes it, and chopin_req_id gives it
 * to the handler.
 */
CHOPIN_API void chopin_request_id(chopin_req *req, chopin_res *res, chopin_next *next,
                                  void *unused);
/** This request's id (chopin_request_id); ptr NULL when the middleware did not run.
 *  Valid as the request's other views. */
CHOPIN_API chopin_str chopin_req_id(const chopin_req *req);

/* ===== WebSocket (issue 17) =====
 *
 * WebSocket (RFC 6455) as a protocol beside HTTP/1.1, with permessage-deflate (RFC 7692)
 * and publish/subscribe across workers. A route's handler upgrades its request:
 *
 *     static void on_message(chopin_ws *ws, chopin_ws_kind kind, const void *data,
 *                            size_t len) {
 *         chopin_ws_send(ws, kind, data, len);            // echo
 *     }
 *     static const chopin_ws_config echo = {.on_message = on_message};
 *     static void upgrade(chopin_req *req, chopin_res *res, void *data) {
 *         chopin_ws_upgrade(req, res, &echo, NULL);       // sets 101, or 400/426/403
 *     }
 *
 * Everything of a connection runs on its worker (callbacks, sends, subscriptions); other
 * threads send through a handle (chopin_ws_ref) and publish to topics. docs/websocket.md
 * has the whole picture: limits, the close handshake, memory, what a slow reader gets.
 * ------------------------------------------------------------------------------------- */

typedef struct chopin_ws chopin_ws;

typedef enum chopin_ws_kind {
    CHOPIN_WS_TEXT = 1,   /* UTF-8 text (received text is checked: invalid closes 1007) */
    CHOPIN_WS_BINARY = 2,
} chopin_ws_kind;

/** Close codes (RFC 6455 §7.4.1) the library sends; an application may send any code of
 *  1000-1003, 1007-1014 or 3000-4999. */
#define CHOPIN_WS_NORMAL 1000
#define CHOPIN_WS_GOING_AWAY 1001     /* the server stops */
#define CHOPIN_WS_PROTOCOL_ERROR 1002 /* the client broke a framing rule */
#define CHOPIN_WS_INVALID_DATA 1007   /* text that is not UTF-8 */
#define CHOPIN_WS_POLICY 1008         /* a slow reader past max_queued */
#define CHOPIN_WS_TOO_BIG 1009        /* a message over max_message */
#define CHOPIN_WS_NO_STATUS 1005      /* on_close: the peer's close frame had no code */
#define CHOPIN_WS_ABNORMAL 1006       /* on_close: the connection ended without a close frame */

/**
 * How an upgraded connection behaves. Zero means the default for every number. The
 * struct is copied by chopin_ws_upgrade: it may live on the stack.
 */
typedef struct chopin_ws_config {
    /** The connection is open (the 101 is queued); sends and subscriptions may start. */
    void (*on_open)(chopin_ws *ws);
    /** A whole message (reassembled from its fragments, inflated). `data` is valid during
     *  the call only. */
    void (*on_message)(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len);
    /** The send queue, which held more than max_queued / 2 bytes, is empty again. */
    void (*on_drain)(chopin_ws *ws);
    /** Runs once when the connection ends, whatever ended it: `code` is the peer's close
     *  code (CHOPIN_WS_NO_STATUS when it gave none), the code we failed or closed it with,
     *  or CHOPIN_WS_ABNORMAL when it vanished; `reason` borrows the peer's reason for the
     *  call. `ws` and its user data are valid until on_close returns; free the user data
     *  here. Sends from it return CHOPIN_ESTALE. When the switch never happened (the
     *  handler answered otherwise after upgrading, or the client left before the 101:
     *  code CHOPIN_WS_ABNORMAL, on_open never ran), only chopin_ws_user may be used. */
    void (*on_close)(chopin_ws *ws, int code, const char *reason, size_t len);
    /** Checked before the upgrade: nonzero lets the request's Origin in (its `ptr` NULL
     *  when the request has none, as non-browser clients send). NULL: every origin. A
     *  refusal answers 403. */
    int (*allow_origin)(chopin_str origin, void *user);
    /** The subprotocol to answer with (Sec-WebSocket-Protocol); NULL: none. It must be one
     *  the client offered (chopin_ws_offers). */
    const char *protocol;
    uint64_t max_message;  /* 0: 1 MiB; a larger message (after inflating) closes 1009 */
    uint32_t max_queued;   /* 0: 1 MiB; unsent bytes beyond it close the connection 1008 */
    uint32_t idle_ms;      /* 0: 30000; a ping after this long without input, and the
                              connection closes when nothing comes back within as long */
    uint32_t deflate;      /* 0: off; 1: accept permessage-deflate when the client offers it */
    uint32_t deflate_bits; /* 0: 12; our windows, 9..15: memory per connection (docs) */
} chopin_ws_config;

/**
 * Upgrades the request to a WebSocket, in a handler (or middleware) on the worker: checks
 * the handshake (GET, HTTP/1.1, Upgrade and Connection, version 13, the key), the origin
 * (cfg->allow_origin) and the subprotocol, then sets `res` to the 101 answer; once it is
 * queued, the connection speaks WebSocket and on_open runs. `user` is the connection's
 * data (chopin_ws_user), the application's; on_close is where it is freed.
 *
 * Returns 0, or, with `res` set to the refusal (which the handler may replace): -EINVAL
 * (400: a malformed handshake, or cfg->protocol not offered; 426 with
 * Sec-WebSocket-Version: 13: no WebSocket asked for, or another version), -EPERM (403:
 * origin refused), -ENOMEM (503). On failure no callback ever runs and `user` stays the
 * caller's. To refuse for reasons of its own, a handler answers as usual instead.
 */
CHOPIN_API int chopin_ws_upgrade(chopin_req *req, chopin_res *res, const chopin_ws_config *cfg,
                                 void *user);
/** Nonzero when the request offers subprotocol `name` (Sec-WebSocket-Protocol; names are
 *  case-sensitive). */
CHOPIN_API int chopin_ws_offers(const chopin_req *req, const char *name);

/** The user data given to chopin_ws_upgrade. */
CHOPIN_API void *chopin_ws_user(const chopin_ws *ws);
/** The subprotocol agreed ("" for none). */
CHOPIN_API const char *chopin_ws_protocol(const chopin_ws *ws);
/** The connection's worker, and its server (for chopin_ws_publish). */
CHOPIN_API chopin_worker *chopin_ws_worker(const chopin_ws *ws);
CHOPIN_API chopin_server *chopin_ws_server(const chopin_ws *ws);
/** Bytes queued and not yet taken by the socket. */
CHOPIN_API size_t chopin_ws_queued(const chopin_ws *ws);

/**
 * Sends a whole message (copied; compressed when permessage-deflate is agreed and it is
 * worth it), on the connection's worker. Returns 0; CHOPIN_EINVAL (a bad kind); CHOPIN_EBUSY
 * (a fragmented message is in progress); CHOPIN_ESTALE (the connection is closing: nothing
 * is sent any more); CHOPIN_ENOMEM; CHOPIN_ENOSPC when the message would take the queue
 * past max_queued: it is not sent and the connection is closed with 1008 (a reader that
 * far behind is not coming back; docs/websocket.md).
 */
CHOPIN_API int chopin_ws_send(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len);
/**
 * Sends one fragment of a message (never compressed): the first call gives the kind and
 * starts the message, later ones continue it (kind ignored), the one with `last` nonzero
 * ends it. Whole messages wait (CHOPIN_EBUSY) until it ends; one started while a posted
 * fragmented message (chopin_ws_post_begin) is in progress is refused with CHOPIN_EBUSY.
 * Returns as chopin_ws_send.
 */
CHOPIN_API int chopin_ws_send_fragment(chopin_ws *ws, chopin_ws_kind kind, const void *data,
                                       size_t len, int last);
/**
 * Starts the close handshake: sends a close frame with `code` (1000-1003, 1007-1014,
 * 3000-4999, else CHOPIN_EINVAL) and `reason` (NUL-terminated, at most 123 bytes, may be
 * NULL), reads and drops messages until the client's close comes back (or idle_ms), then
 * closes; on_close runs then with `code`. Returns 0, CHOPIN_ESTALE when already closing.
 */
CHOPIN_API int chopin_ws_close(chopin_ws *ws, int code, const char *reason);

/** A connection named from anywhere (worker, slot, generation): a handle that outlives
 *  the connection harmlessly. Copy it freely, to any thread. */
typedef struct chopin_ws_ref {
    chopin_worker *worker; /* NULL: none */
    uint32_t slot, gen;    /* (private) */
} chopin_ws_ref;
CHOPIN_API chopin_ws_ref chopin_ws_handle(const chopin_ws *ws);
/** On the connection's worker: the connection `r` names, or NULL when it has ended. */
CHOPIN_API chopin_ws *chopin_ws_lookup(chopin_ws_ref r);
/**
 * From any thread: sends a message (copied now) on the connection `r` names, on its worker
 * (messages posted by one thread arrive in the order posted). Returns 0 once posted (a
 * connection that has ended by then drops it; a full queue closes it as chopin_ws_send
 * does; while a fragmented message is in progress there, it waits for its end),
 * CHOPIN_EINVAL, CHOPIN_ENOMEM, CHOPIN_ESHUTDOWN (the worker has ended).
 */
CHOPIN_API int chopin_ws_post(chopin_ws_ref r, chopin_ws_kind kind, const void *data, size_t len);

/**
 * From any thread: a message sent in fragments, each copied and posted to the connection's
 * worker as it is written (a message produced piece by piece, too large to copy whole).
 * Its frames go out in order and no other data frame comes between them (RFC 6455 §5.4;
 * pings, pongs and the close may): while it is in progress, the worker's chopin_ws_send,
 * posts and publishes to the connection wait behind it, and chopin_ws_send_fragment
 * answers CHOPIN_EBUSY; it waits likewise for a fragmented message already in progress.
 * Never compressed. Everything waiting counts against max_queued (past it: 1008, as
 * chopin_ws_send), so a message never ended ends its connection once enough is waiting.
 *
 * chopin_ws_post_begin returns the message's handle, owned by the calling thread (one
 * thread at a time writes it), or NULL (CHOPIN_EINVAL: no worker or a bad kind; or no
 * memory); nothing is sent before the first fragment.
 * chopin_ws_post_fragment posts the next fragment (len 0 allowed); `last` nonzero ends the
 * message and releases the handle, whatever it returns except CHOPIN_EINVAL (NULL data with
 * a length) and CHOPIN_ENOMEM (nothing was posted: try again). Returns 0 once posted;
 * CHOPIN_ESTALE when the worker found the connection ended or closing (nothing more is
 * sent; end the message still, to release it); CHOPIN_ESHUTDOWN (the worker has ended).
 */
typedef struct chopin_ws_msg chopin_ws_msg;
CHOPIN_API chopin_ws_msg *chopin_ws_post_begin(chopin_ws_ref r, chopin_ws_kind kind);
CHOPIN_API int chopin_ws_post_fragment(chopin_ws_msg *m, const void *data, size_t len, int last);

/**
 * Publish/subscribe. A connection subscribes to topics (any bytes up to 255, NUL-
 * terminated here) on its worker; a publish from any thread (a worker included) reaches
 * every connection subscribed at the time it arrives on their workers, once, and the
 * messages of one publishing thread arrive in the order published. The message is copied
 * once and framed once for all workers; it is sent uncompressed. A subscriber whose queue
 * is full is closed as by chopin_ws_send. Subscriptions end with the connection.
 */
CHOPIN_API int chopin_ws_subscribe(chopin_ws *ws, const char *topic);   /* 0, CHOPIN_ENOMEM, CHOPIN_EINVAL */
CHOPIN_API int chopin_ws_unsubscribe(chopin_ws *ws, const char *topic); /* 0, CHOPIN_ENOENT */
/** Returns the number of workers the message was posted to (all of them, normally), or
 *  CHOPIN_EINVAL (bad kind or topic), CHOPIN_ENOMEM, CHOPIN_ESHUTDOWN. */
CHOPIN_API int chopin_ws_publish(chopin_server *s, const char *topic, chopin_ws_kind kind,
                                 const void *data, size_t len);

/* ===== Trailers (issue 20) =====
 *
 * Fields sent after a response's body (RFC 9110 §6.5): on HTTP/2 as a last HEADERS frame
 * that ends the stream, after any body that is not empty; on HTTP/1.1 as the trailer
 * section of a chunked body, so only with a streamed body (chopin_res_stream). Where they
 * cannot travel they are dropped, and the answer goes out without them: a body with a
 * Content-Length on HTTP/1.1, HTTP/1.0, HEAD, an empty body or a status without one.
 * They are set with the answer (in the handler, or before chopin_exchange_finish) and
 * are fixed once it is sent: a value known only when the body ends (a checksum of a
 * stream) is not supported yet.
 */
/** Adds a trailer field; copied into the request arena. Returns 0; CHOPIN_EINVAL (not a
 *  token or a field value, or a field a trailer may not carry: framing, routing,
 *  Content-Type/-Encoding/-Range, authentication, cookies, caching, Trailer itself);
 *  CHOPIN_ENOSPC (the trailers together past 1 KiB); CHOPIN_ENOMEM. */
CHOPIN_API int chopin_res_trailer(chopin_res *res, const char *name, const char *value);

#ifdef __cplusplus
}
#endif
#endif /* CHOPIN_H */
