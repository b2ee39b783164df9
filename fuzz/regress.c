/* SPDX-License-Identifier: MIT */
/*
 * Runs a libFuzzer target over files (its seed corpus and the crashes it once found), as
 * an ordinary test: `regress_X fuzz/corpus/X/...` prints "RESULT <files> 0". A crash
 * fails the test the way the fuzzer would.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                break;
            buf = bigger;
        }
    }
    fclose(f);
    if (!buf)
        return -1;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        if (run_file(argv[i]) == 0)
            passed++;
        else
            failed++, fprintf(stderr, "cannot read %s\n", argv[i]);
    }
    printf("RESULT %d %d\n", passed, failed);
    return failed != 0;
}
