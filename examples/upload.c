/* SPDX-License-Identifier: MIT */
/*
 * The demo's /upload (issue 18). GET: a form with several files and text fields. POST:
 * the multipart/form-data body streamed as it arrives: each file goes to an unnamed file
 * in the upload directory (O_TMPFILE), hashed with SHA-256 on the way, and gets its name
 * ("upload-N", never the client's filename) only once its part is whole, so an upload cut
 * short leaves nothing behind; text fields are kept in memory (64 KiB each at most). The
 * answer is JSON: each file's field, filename, size, SHA-256 and stored name, and the
 * fields. Its own limit is 4 GiB, whatever CHOPIN_MAX_BODY_BYTES says.
 *
 * The writes are plain write(2) on the worker: the page cache takes them at memory speed.
 * A slow disk would be the place for chopin_body_pause and the offload pool.
 */
#include "upload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sha256.h"

#define UPLOAD_MAX (4ull << 30)
#define FIELD_MAX (64u << 10)
#define MAX_PARTS 64

static char dir_path[4096];
static int dir_temporary;
static atomic_uint stored_count;

static const char FORM[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Upload</title></head><body>\n"
    "<h1>Upload</h1>\n"
    "<form method=\"post\" action=\"/upload\" enctype=\"multipart/form-data\">\n"
    "<p><label>Title <input name=\"title\"></label></p>\n"
    "<p><label>Notes <textarea name=\"notes\"></textarea></label></p>\n"
    "<p><label>Files <input type=\"file\" name=\"files\" multiple></label></p>\n"
    "<p><label>One more <input type=\"file\" name=\"extra\"></label></p>\n"
    "<p><button>Send</button></p>\n</form>\n"
    "<p>The answer lists each file's size and SHA-256. Up to 4 GiB per upload.</p>\n"
    "</body></html>\n";

struct stored {
    char *field, *filename, name[32];
    uint64_t size;
    char sha[65];
};

struct text_field {
    char *name, *value;
    size_t len;
};

struct upload {
    chopin_multipart *mp;
    int dirfd;
    /* the part being read */
    int fd;            /* a file part's unnamed file, else -1 */
    struct sha256 sha;
    struct stored *file;
    struct text_field *text;
    /* what was read */
    struct stored files[MAX_PARTS];
    struct text_field texts[MAX_PARTS];
    int nfiles, ntexts;
    int status; /* nonzero: the answer is this error */
};

int upload_dir_open(void) {
    const char *env = getenv("CHOPIN_UPLOAD_DIR");
    if (env && *env) {
        snprintf(dir_path, sizeof dir_path, "%s", env);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir_path, sizeof dir_path, "%s/chopin-uploads-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir_path)) {
        fprintf(stderr, "demo: cannot create the upload directory %s: %s\n", dir_path,
                strerror(errno));
        return -1;
    }
    dir_temporary = 1;
    return 0;
}

void upload_dir_remove(void) {
    if (!dir_temporary)
        return;
    DIR *d = opendir(dir_path);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    rmdir(dir_path);
}

static char *copy_str(chopin_str s) {
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.ptr ? s.ptr : "", s.len);
        p[s.len] = '\0';
    }
    return p;
}

/* An unnamed file in the directory; named by link_file once its part is whole. Where the
 * file system has no O_TMPFILE, a named file that upload_free removes if it stays
 * unfinished. */
static int open_file(struct upload *u) {
    int fd = openat(u->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    fd = openat(u->dirfd, u->file->name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0)
        u->file->size = UINT64_MAX; /* (marks a named file not yet whole) */
    return fd;
}

static int link_file(struct upload *u) {
    if (u->file->size == UINT64_MAX)
        return 0; /* already named */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", u->fd);
    return linkat(AT_FDCWD, proc, u->dirfd, u->file->name, AT_SYMLINK_FOLLOW);
}

static int on_part(const chopin_part *part, void *arg) {
    struct upload *u = arg;
    if (u->nfiles + u->ntexts >= MAX_PARTS)
        return CHOPIN_EFBIG;
    if (part->filename.ptr) {
        struct stored *f = &u->files[u->nfiles++];
        *f = (struct stored){.field = copy_str(part->name), .filename = copy_str(part->filename)};
        snprintf(f->name, sizeof f->name, "upload-%u", atomic_fetch_add(&stored_count, 1) + 1);
        u->file = f;
        sha256_init(&u->sha);
        u->fd = open_file(u);
        return u->fd < 0 || !f->field || !f->filename ? CHOPIN_EIO : 0;
    }
    struct text_field *t = &u->texts[u->ntexts++];
    *t = (struct text_field){.name = copy_str(part->name), .value = malloc(FIELD_MAX)};
    u->text = t;
    return t->name && t->value ? 0 : CHOPIN_ENOMEM;
}

static int on_data(const char *p, size_t n, void *arg) {
    struct upload *u = arg;
    if (u->text) {
        if (u->text->len + n > FIELD_MAX)
            return CHOPIN_EFBIG;
        memcpy(u->text->value + u->text->len, p, n);
        u->text->len += n;
        return 0;
    }
    sha256_update(&u->sha, p, n);
    while (n) {
        ssize_t w = write(u->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CHOPIN_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int on_part_end(void *arg) {
    struct upload *u = arg;
    if (u->text) {
        u->text = NULL;
        return 0;
    }
    int named = u->file->size == UINT64_MAX;
    u->file->size = u->sha.len;
    sha256_hex(&u->sha, u->file->sha);
    int rc = named ? 0 : link_file(u);
    close(u->fd);
    u->fd = -1;
    u->file = NULL;
    return rc < 0 ? CHOPIN_EIO : 0;
}

static void upload_free(struct upload *u) {
    if (u->fd >= 0) {
        close(u->fd);
        if (u->file && u->file->size == UINT64_MAX)
            unlinkat(u->dirfd, u->file->name, 0);
    }
    for (int i = 0; i < u->nfiles; i++) {
        free(u->files[i].field);
        free(u->files[i].filename);
    }
    for (int i = 0; i < u->ntexts; i++) {
        free(u->texts[i].name);
        free(u->texts[i].value);
    }
    chopin_multipart_free(u->mp);
    if (u->dirfd >= 0)
        close(u->dirfd);
    free(u);
}

static void answer_json(struct upload *u, chopin_res *res) {
    chopin_json *j = chopin_res_json(res, 200);
    chopin_json_obj_begin(j);
    chopin_json_key(j, "files");
    chopin_json_arr_begin(j);
    for (int i = 0; i < u->nfiles; i++) {
        const struct stored *f = &u->files[i];
        chopin_json_obj_begin(j);
        chopin_json_key(j, "field");
        chopin_json_str(j, f->field);
        chopin_json_key(j, "filename");
        chopin_json_str(j, f->filename);
        chopin_json_key(j, "size");
        chopin_json_int(j, (int64_t)f->size);
        chopin_json_key(j, "sha256");
        chopin_json_str(j, f->sha);
        chopin_json_key(j, "stored");
        chopin_json_str(j, f->name);
        chopin_json_obj_end(j);
    }
    chopin_json_arr_end(j);
    chopin_json_key(j, "fields");
    chopin_json_obj_begin(j);
    for (int i = 0; i < u->ntexts; i++) {
        chopin_json_key(j, u->texts[i].name);
        chopin_json_strn(j, u->texts[i].value, u->texts[i].len);
    }
    chopin_json_obj_end(j);
    chopin_json_obj_end(j);
    chopin_json_end(j);
}

/* A parser error ends the upload at once: its answer leaves, the rest is not read. */
static void fail_upload(chopin_exchange x, struct upload *u, int err) {
    chopin_res *res = chopin_exchange_res(x);
    int status = err == CHOPIN_EIO || err == CHOPIN_ENOMEM ? 500 : chopin_multipart_status(err);
    chopin_res_error(res, status, err == CHOPIN_EFBIG ? "an upload limit was passed\n" : NULL);
    chopin_exchange_finish(x);
    upload_free(u);
}

static void body_data(chopin_exchange x, const char *p, size_t n, void *arg) {
    struct upload *u = arg;
    int rc = chopin_multipart_feed(u->mp, p, n);
    if (rc < 0)
        fail_upload(x, u, rc);
}

static void body_end(chopin_exchange x, void *arg) {
    struct upload *u = arg;
    int rc = chopin_multipart_finish(u->mp);
    if (rc < 0) {
        fail_upload(x, u, rc);
        return;
    }
    answer_json(u, chopin_exchange_res(x));
    chopin_exchange_finish(x);
    upload_free(u);
}

static void body_error(chopin_exchange x, int err, void *arg) { upload_free(arg); }

static void upload_post(chopin_req *req, chopin_res *res, void *data) {
    static const chopin_multipart_handler parts = {on_part, on_data, on_part_end};
    static const chopin_body_handler body = {body_data, body_end, body_error};
    struct upload *u = calloc(1, sizeof *u);
    if (!u) {
        chopin_res_error(res, 503, NULL);
        return;
    }
    u->fd = -1;
    u->dirfd = open(dir_path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    int rc = chopin_multipart_new(chopin_req_header(req, "content-type"), MAX_PARTS, 0, &parts, u,
                                  &u->mp);
    if (rc < 0 || u->dirfd < 0) {
        chopin_res_error(res, rc < 0 ? 415 : 500,
                         rc < 0 ? "expected multipart/form-data with a boundary\n" : NULL);
        upload_free(u);
        return;
    }
    chopin_exchange x;
    if (chopin_body_read(req, res, &body, u, &x) < 0)
        upload_free(u); /* (res holds a 503) */
}

static void upload_form(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/html; charset=utf-8", FORM, sizeof FORM - 1);
}

int upload_mount(chopin_router *r, const char *path) {
    int rc = chopin_router_get(r, path, upload_form, NULL);
    return rc ? rc : chopin_router_stream(r, CHOPIN_METHOD_POST, path, upload_post, NULL, UPLOAD_MAX);
}
