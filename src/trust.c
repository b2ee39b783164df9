/* SPDX-License-Identifier: MIT */
/* Trusted networks (trust.h). */
#include "trust.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int parse_item(struct chopin__cidr *c, const char *item) {
    char buf[64];
    const char *slash = strchr(item, '/');
    size_t alen = slash ? (size_t)(slash - item) : strlen(item);
    if (alen == 0 || alen >= sizeof buf)
        return -1;
    memcpy(buf, item, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET, buf, c->addr) == 1)
        c->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, c->addr) == 1)
        c->family = AF_INET6;
    else
        return -1;
    unsigned max = c->family == AF_INET ? 32 : 128;
    c->bits = (uint8_t)max;
    if (slash) {
        char *end;
        unsigned long bits = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || bits > max || strspn(slash + 1, "0123456789") != strlen(slash + 1))
            return -1;
        c->bits = (uint8_t)bits;
    }
    return 0;
}

int chopin__trust_parse(struct chopin__trust *t, const char *list, char *why, size_t cap) {
    memset(t, 0, sizeof *t);
    if (!list)
        return 0;
    const char *p = list;
    for (;;) {
        p += strspn(p, ", \t");
        if (!*p)
            return 0;
        size_t len = strcspn(p, ", \t");
        char item[64];
        if (len >= sizeof item || t->n == CHOPIN__TRUST_MAX ||
            (memcpy(item, p, len), item[len] = '\0', parse_item(&t->net[t->n], item) < 0)) {
            snprintf(why, cap, "%.*s", (int)(len < 60 ? len : 60), p);
            return -EINVAL;
        }
        t->n++;
        p += len;
    }
}

static int in_block(const struct chopin__cidr *c, const uint8_t *addr) {
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

int chopin__trust_match(const struct chopin__trust *t, int family, const uint8_t *addr) {
    if (family == AF_INET6 && memcmp(addr, v4_mapped, sizeof v4_mapped) == 0) {
        family = AF_INET; /* ::ffff:10.0.0.1 is 10.0.0.1 (a dual-stack listener) */
        addr += sizeof v4_mapped;
    }
    for (int i = 0; i < t->n; i++)
        if (t->net[i].family == family && in_block(&t->net[i], addr))
            return 1;
    return 0;
}

int chopin__trust_match_text(const struct chopin__trust *t, const char *s, size_t len) {
    char buf[64];
    uint8_t addr[16];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, addr) == 1)
        return chopin__trust_match(t, AF_INET, addr);
    if (inet_pton(AF_INET6, buf, addr) == 1)
        return chopin__trust_match(t, AF_INET6, addr);
    return 0;
}
