/* SPDX-License-Identifier: MIT */
/* The todo API's input rules (todo_input.h). */
#include "todo_input.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* It may replace a body the handler had begun (a list whose rows failed half-way): the
 * last body set is the one sent. */
void todo_answer_error(chopin_res *res, int status, const char *message)
{
    if (chopin_res_status(res) != 0)
        chopin_res_empty(res, status);
    chopin_json *j = chopin_res_json(res, status);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "error");
    chopin_json_str(j, message);
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

/* A decimal number of ASCII digits only (no sign, no space) in [0, max]. */
static int parse_decimal(chopin_str s, int64_t max, int64_t *out)
{
    if (!s.ptr || s.len == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        int d = s.ptr[i] - '0';
        if (d < 0 || d > 9 || v > max / 10 || (v == max / 10 && d > max % 10))
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int64_t todo_id_param(chopin_req *req, chopin_res *res)
{
    int64_t id;
    if (parse_decimal(chopin_req_param(req, "id"), INT64_MAX, &id) < 0 || id == 0) {
        todo_answer_error(res, 400, "id must be a positive integer");
        return 0;
    }
    return id;
}

/* Whether the raw query string has a parameter `name` (chopin_req_query() also says
 * "absent" for a value it cannot decode, like "limit=%zz", which must be a 400). */
static int query_has_raw(chopin_req *req, const char *name)
{
    chopin_str q = chopin_req_query_string(req);
    size_t len = strlen(name);
    for (const char *p = q.ptr, *end = q.ptr + q.len; p && p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) >= len && memcmp(p, name, len) == 0 &&
            (p + len == stop || p[len] == '='))
            return 1;
        p = amp ? amp + 1 : end;
    }
    return 0;
}

int64_t todo_query_number(chopin_req *req, chopin_res *res, const char *name, int64_t min,
                          int64_t max, int64_t fallback)
{
    chopin_str s = chopin_req_query(req, name);
    if (!s.ptr && !query_has_raw(req, name))
        return fallback;
    int64_t v;
    if (parse_decimal(s, max, &v) < 0 || v < min) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be an integer from %lld to %lld", name,
                 (long long)min, (long long)max);
        todo_answer_error(res, 400, msg);
        return -1;
    }
    return v;
}

static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Reads "title" and "done" from `obj` into `f`. Returns NULL, or what is wrong (written
 * into `msg` when it names a field). */
static const char *read_fields(json_t *obj, struct todo_fields *f, char *msg, size_t cap)
{
    const char *key;
    json_t *value;
    memset(f, 0, sizeof *f);
    json_object_foreach(obj, key, value) {
        if (strcmp(key, "title") == 0) {
            if (!json_is_string(value))
                return "title must be a string";
            f->title = json_string_value(value);
            f->title_len = json_string_length(value);
            if (is_blank(f->title, f->title_len))
                return "title must not be empty";
            if (f->title_len > TODO_TITLE_MAX)
                return "title is longer than " STRINGIFY(TODO_TITLE_MAX) " bytes";
            f->has_title = 1;
        } else if (strcmp(key, "done") == 0) {
            if (!json_is_boolean(value))
                return "done must be a boolean";
            f->done = json_is_true(value);
            f->has_done = 1;
        } else {
            snprintf(msg, cap, "unknown field \"%.64s\" (allowed: title, done)", key);
            return msg;
        }
    }
    return NULL;
}

json_t *todo_body_fields(chopin_req *req, chopin_res *res, int need_title,
                         struct todo_fields *f)
{
    json_t *doc = chopin_req_json_body(req, res);
    if (!doc)
        return NULL;
    char msg[128];
    const char *problem = json_is_object(doc) ? read_fields(doc, f, msg, sizeof msg)
                                              : "the body must be a JSON object";
    if (!problem && need_title && !f->has_title)
        problem = "title is required";
    if (problem) {
        todo_answer_error(res, 400, problem);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

void todo_add_location(chopin_req *req, chopin_res *res, int64_t id)
{
    chopin_str path = chopin_req_path(req);
    size_t cap = path.len + 24;
    char *loc = chopin_req_alloc(req, cap);
    if (!loc)
        return;
    int slash = path.len > 0 && path.ptr[path.len - 1] == '/';
    snprintf(loc, cap, "%.*s%s%lld", (int)path.len, path.ptr, slash ? "" : "/", (long long)id);
    chopin_res_header_add(res, "Location", loc);
}
