/* SPDX-License-Identifier: MIT */
/*
 * The static directories' open-file cache (src/api/static_cache.c) on a set clock: a hot
 * path is not opened again within its second, is after it, keeps a changed file's new
 * bytes and validators, remembers misses, and stays within its bound (least recently used
 * out first).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "api/static_cache.h"
#include "test.h"

static char dir[64];
static int root = -1;

static void put(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        exit(2);
    close(fd);
}

static void rm(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

static struct chopin__static_cache *cache_of(uint32_t capacity, uint64_t memory_max)
{
    struct chopin__static_cache_cfg cfg = {
        .root = root, .capacity = capacity, .valid_ms = 1000, .memory_max = memory_max};
    return chopin__static_cache_new(&cfg);
}

static const struct chopin__static_entry *get(struct chopin__static_cache *c, const char *path,
                                              uint64_t now)
{
    return chopin__static_cache_get(c, path, strlen(path), now);
}

static void test_hot_path_not_reopened_within_its_second(void)
{
    struct chopin__static_cache *c = cache_of(16, 1024);
    put("a.txt", "first");
    const struct chopin__static_entry *e = get(c, "a.txt", 10000);
    CHECK(e && e->kind == CHOPIN__STATIC_FILE && e->bytes && e->bytes->len == 5);
    CHECK(e && memcmp(e->bytes->data, "first", 5) == 0);
    rm("a.txt");
    e = get(c, "a.txt", 10999); /* 999 ms later: from the cache, no open */
    CHECK(e && e->kind == CHOPIN__STATIC_FILE);
    e = get(c, "a.txt", 11000); /* its second is over: resolved again */
    CHECK(e && e->kind == CHOPIN__STATIC_ERROR && e->err == -ENOENT);
    chopin__static_cache_free(c);
}

static void test_changed_file_gets_new_bytes_and_validators(void)
{
    struct chopin__static_cache *c = cache_of(16, 1024);
    put("b.txt", "one");
    const struct chopin__static_entry *e = get(c, "b.txt", 10000);
    char etag[CHOPIN__ETAG_MAX];
    snprintf(etag, sizeof etag, "%.*s", (int)e->etag_len, e->etag);
    struct chopin__static_bytes *old = e->bytes;
    old->refs++; /* an answer still sending the old bytes */
    put("b.txt", "two, longer");
    e = get(c, "b.txt", 11000);
    CHECK(e->kind == CHOPIN__STATIC_FILE && e->size == 11 && e->bytes != old);
    CHECK(memcmp(e->bytes->data, "two, longer", 11) == 0);
    CHECK(strncmp(etag, e->etag, e->etag_len) != 0);
    CHECK(memcmp(old->data, "one", 3) == 0); /* untouched for the answer that holds it */
    chopin__static_bytes_unref(NULL, old);
    rm("b.txt");
    chopin__static_cache_free(c);
}

static void test_misses_and_kinds_are_remembered(void)
{
    struct chopin__static_cache *c = cache_of(16, 1024);
    const struct chopin__static_entry *e = get(c, "missing.br", 10000);
    CHECK(e && e->kind == CHOPIN__STATIC_ERROR && e->err == -ENOENT);
    put("missing.br", "now here");
    e = get(c, "missing.br", 10500); /* the miss stands for its second */
    CHECK(e && e->kind == CHOPIN__STATIC_ERROR);
    e = get(c, "missing.br", 11000);
    CHECK(e && e->kind == CHOPIN__STATIC_FILE);
    rm("missing.br");
    e = get(c, "", 11000);
    CHECK(e && e->kind == CHOPIN__STATIC_DIR);
    e = get(c, "../x", 11000); /* the kernel refuses the way out */
    CHECK(e && e->kind == CHOPIN__STATIC_ERROR && e->err == -EXDEV);
    chopin__static_cache_free(c);
}

static void test_large_file_keeps_a_descriptor(void)
{
    struct chopin__static_cache *c = cache_of(16, 4);
    put("big.txt", "more than four bytes");
    const struct chopin__static_entry *e = get(c, "big.txt", 10000);
    CHECK(e && e->kind == CHOPIN__STATIC_FILE && !e->bytes && e->file && e->file->fd >= 0 &&
          e->file->refs == 1 && e->size == 20);
    rm("big.txt");
    chopin__static_cache_free(c);
}

static void test_bounded_least_recently_used_out(void)
{
    struct chopin__static_cache *c = cache_of(2, 1024);
    put("1", "1");
    put("2", "2");
    put("3", "3");
    get(c, "1", 10000);
    get(c, "2", 10000);
    get(c, "1", 10000); /* 1 is now the most recently used */
    get(c, "3", 10000); /* evicts 2 */
    rm("1");
    rm("2");
    rm("3");
    const struct chopin__static_entry *e = get(c, "1", 10000); /* still cached */
    CHECK(e && e->kind == CHOPIN__STATIC_FILE);
    e = get(c, "2", 10000); /* was evicted: opened again, now missing */
    CHECK(e && e->kind == CHOPIN__STATIC_ERROR);
    chopin__static_cache_free(c);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/chopin-cache-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    RUN(test_hot_path_not_reopened_within_its_second);
    RUN(test_changed_file_gets_new_bytes_and_validators);
    RUN(test_misses_and_kinds_are_remembered);
    RUN(test_large_file_keeps_a_descriptor);
    RUN(test_bounded_least_recently_used_out);
    close(root);
    rmdir(dir);
    TEST_END();
}
