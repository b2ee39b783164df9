/* SPDX-License-Identifier: MIT */
/*
 * The todo API's input rules and error answers, shared by the services that implement it
 * (examples/todo.c on SQLite, which documents the rules at its top, and
 * examples/todo_pg.c): every function that refuses its input answers 400 with
 * {"error": "..."} itself.
 */
#ifndef CHOPIN_EXAMPLE_TODO_INPUT_H
#define CHOPIN_EXAMPLE_TODO_INPUT_H

#include <chopin.h>
#include <chopin_jansson.h>
#include <stdint.h>

#define TODO_TITLE_MAX 1024
#define TODO_LIMIT_DEFAULT 20
#define TODO_LIMIT_MAX 100

/* The fields a request body may carry; has_* says which were present. */
struct todo_fields {
    const char *title;
    size_t title_len;
    int done;
    int has_title, has_done;
};

/** {"error": message} with `status`, replacing whatever answer `res` held. */
void todo_answer_error(chopin_res *res, int status, const char *message);

/** The ":id" parameter (a decimal positive integer that fits in 64 bits), or 0 after
 *  answering 400. */
int64_t todo_id_param(chopin_req *req, chopin_res *res);

/** A query number in [min, max], `fallback` when absent; -1 after answering 400. */
int64_t todo_query_number(chopin_req *req, chopin_res *res, const char *name, int64_t min,
                          int64_t max, int64_t fallback);

/** The body's "title" and "done" (a title required when `need_title`); NULL after
 *  answering 400. On success the caller owns the returned document, which `f` borrows
 *  its title from. */
json_t *todo_body_fields(chopin_req *req, chopin_res *res, int need_title,
                         struct todo_fields *f);

/** Location: the request's path plus "/id" (right under any prefix the routes have). */
void todo_add_location(chopin_req *req, chopin_res *res, int64_t id);

#endif
