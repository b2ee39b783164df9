/* SPDX-License-Identifier: MIT */
/*
 * Trusted networks: the proxies whose word about a client is believed (a PROXY protocol
 * header, Forwarded, X-Forwarded-For/-Proto). A list of CIDR blocks, parsed once at start
 * ("10.0.0.0/8, 192.168.1.5, ::1, fd00::/8"), matched against an address.
 */
#ifndef CHOPIN_TRUST_H
#define CHOPIN_TRUST_H

#include <stddef.h>
#include <stdint.h>

#define CHOPIN__TRUST_MAX 32

struct chopin__cidr {
    uint8_t family;  /* AF_INET or AF_INET6 */
    uint8_t bits;    /* prefix length */
    uint8_t addr[16];
};

struct chopin__trust {
    int n;
    struct chopin__cidr net[CHOPIN__TRUST_MAX];
};

/** Parses a comma- or space-separated list of address[/bits] into `t` (NULL or "": an
 *  empty list). 0, or -EINVAL with the offending item copied to why[0..cap). IPv4-mapped
 *  IPv6 addresses match their IPv4 blocks. */
int chopin__trust_parse(struct chopin__trust *t, const char *list, char *why, size_t cap);

/** Nonzero when the address of `family` (AF_INET: 4 bytes, AF_INET6: 16, network order)
 *  lies in one of the blocks. */
int chopin__trust_match(const struct chopin__trust *t, int family, const uint8_t *addr);

/** The same for a textual address ("10.0.0.1", "::1", "[::1]"; a port after it is not
 *  allowed); 0 when it is not an address. */
int chopin__trust_match_text(const struct chopin__trust *t, const char *s, size_t len);

#endif
