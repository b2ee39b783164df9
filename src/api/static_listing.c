/* SPDX-License-Identifier: MIT */
/*
 * Directory listings (CHOPIN_STATIC_LISTING): the names of a directory, sorted bytewise
 * (a stable order for caches and tests, whatever readdir returns), each HTML-escaped for
 * the text and percent-encoded for the link, so a file named "<script>" or "a b" is
 * shown, and linked, as itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/open_beneath.h"
#include "api/static_internal.h"

/* A listing stops at this many names (a directory of millions must not cost a worker a
 * gigabyte); the page then says it is cut. */
#define MAX_NAMES 10000

struct buf {
    char *p;
    size_t len, cap;
    int failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_html(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '<': puts_(b, "&lt;"); break;
        case '>': puts_(b, "&gt;"); break;
        case '&': puts_(b, "&amp;"); break;
        case '"': puts_(b, "&quot;"); break;
        case '\'': puts_(b, "&#39;"); break;
        default: put(b, s + i, 1);
        }
    }
}

static void put_href(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c)) {
            put(b, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(b, e, 3);
        }
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
    char **v;
    size_t n;
    int cut;
};

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

/* The names in `dir` (dot-files only when served), a directory's with a '/' added. */
static int read_names(const chopin_static *st, DIR *dir, struct names *ns)
{
    size_t cap = 0;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL) {
        if (d->d_name[0] == '.' && !(st->flags & CHOPIN_STATIC_DOTFILES))
            continue;
        if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
            continue;
        if (ns->n == MAX_NAMES) {
            ns->cut = 1;
            break;
        }
        struct stat s;
        int is_dir = d->d_type == DT_DIR ||
                     (d->d_type == DT_UNKNOWN &&
                      fstatat(dirfd(dir), d->d_name, &s, AT_SYMLINK_NOFOLLOW) == 0 &&
                      S_ISDIR(s.st_mode));
        size_t len = strlen(d->d_name);
        char *name = malloc(len + 2);
        if (!name)
            return -ENOMEM;
        memcpy(name, d->d_name, len);
        name[len] = is_dir ? '/' : '\0';
        name[len + 1] = '\0';
        if (ns->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(ns->v, cap * sizeof *grown);
            if (!grown) {
                free(name);
                return -ENOMEM;
            }
            ns->v = grown;
        }
        ns->v[ns->n++] = name;
    }
    qsort(ns->v, ns->n, sizeof *ns->v, name_cmp);
    return 0;
}

static void render(struct buf *b, chopin_str title, const struct names *ns)
{
    puts_(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    put_html(b, title.ptr, title.len);
    puts_(b, "</title></head>\n<body><h1>Index of ");
    put_html(b, title.ptr, title.len);
    puts_(b, "</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n");
    for (size_t i = 0; i < ns->n; i++) {
        const char *name = ns->v[i];
        size_t len = strlen(name);
        int is_dir = name[len - 1] == '/';
        puts_(b, "<li><a href=\"");
        char *bare = ns->v[i];
        if (is_dir)
            bare[len - 1] = '\0';
        put_href(b, bare);
        if (is_dir) {
            bare[len - 1] = '/';
            puts_(b, "/");
        }
        puts_(b, "\">");
        put_html(b, name, len);
        puts_(b, "</a></li>\n");
    }
    if (ns->cut)
        puts_(b, "<li>(more names not shown)</li>\n");
    puts_(b, "</ul></body></html>\n");
}

static void free_buf(void *p, void *arg)
{
    (void)arg;
    free(p);
}

void chopin__static_listing(const chopin_static *st, chopin_req *req, chopin_res *res,
                            const char *rel, size_t len)
{
    char path[4096];
    if (len >= sizeof path) {
        chopin_res_error(res, 404, NULL);
        return;
    }
    memcpy(path, rel, len);
    path[len] = '\0';
    int fd = chopin__open_beneath(st->root, len ? path : ".", st->cache_cfg.open_flags);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        chopin_res_error(res, 404, NULL);
        return;
    }
    struct names ns = {0};
    int err = read_names(st, dir, &ns);
    closedir(dir);
    struct buf b = {0};
    if (!err)
        render(&b, chopin_req_path(req), &ns);
    names_free(&ns);
    if (err || b.failed || chopin_res_owned(res, 200, "text/html; charset=utf-8", b.p, b.len,
                                            free_buf, NULL) < 0) {
        free(b.p);
        chopin_res_error(res, 503, NULL);
        return;
    }
    if (!(st->flags & CHOPIN_STATIC_NO_NOSNIFF))
        chopin_res_header_add(res, "X-Content-Type-Options", "nosniff");
}
