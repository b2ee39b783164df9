/* SPDX-License-Identifier: MIT */
#include "ws/frame.h"

#include <stdlib.h>
#include <string.h>

void chopin__ws_reader_init(struct chopin__ws_reader *r, uint64_t max_message,
                            const struct chopin__ws_pmd *pmd) {
    memset(r, 0, sizeof *r);
    r->max_message = max_message;
    r->pmd = pmd;
}

static void msg_drop(struct chopin__ws_reader *r) {
    free(r->msg.ptr);
    r->msg = (struct chopin__ws_buf){0};
}

void chopin__ws_reader_free(struct chopin__ws_reader *r) {
    msg_drop(r);
    chopin__ws_zin_free(r->zin);
    r->zin = NULL;
}

int chopin__ws_close_code_valid(unsigned code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static int is_control(unsigned opcode) { return opcode & 0x8; }

/* XORs n payload bytes with the mask, where *pos is the mask byte the first falls on.
 * Eight bytes at a time: the mask repeats every four, so an 8-byte copy of it rotated to
 * *pos lines up with every aligned group. */
static void unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint8_t *pos) {
    uint8_t m8[8];
    for (int j = 0; j < 8; j++)
        m8[j] = mask[(*pos + j) & 3];
    uint64_t m;
    memcpy(&m, m8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= m;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= m8[i & 7];
    *pos = (uint8_t)((*pos + n) & 3);
}

/* The head's length once its first two bytes are known (RFC 6455 §5.2). */
static unsigned head_size(const uint8_t *h) {
    unsigned len7 = h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

/* The rules the first two bytes decide: 0 or the negated close code. */
static int check_start(const struct chopin__ws_reader *r, const uint8_t *h) {
    unsigned fin = h[0] >> 7, rsv = (h[0] >> 4) & 7, opcode = h[0] & 0xf, len7 = h[1] & 0x7f;
    if (!(h[1] & 0x80))
        return -CHOPIN__WS_PROTOCOL_ERROR; /* §5.1: a client masks every frame */
    if (rsv & 3)
        return -CHOPIN__WS_PROTOCOL_ERROR; /* RSV2, RSV3: no extension defines them */
    /* RSV1 is permessage-deflate's "compressed" bit, on a message's first frame only
     * (RFC 7692 §6). */
    if ((rsv & 4) && (!r->pmd || (opcode != CHOPIN__WS_TEXT && opcode != CHOPIN__WS_BINARY)))
        return -CHOPIN__WS_PROTOCOL_ERROR;
    if (is_control(opcode)) {
        if (opcode > CHOPIN__WS_PONG || !fin || len7 > 125)
            return -CHOPIN__WS_PROTOCOL_ERROR; /* §5.5: whole, and at most 125 bytes */
        return 0;
    }
    if (opcode > CHOPIN__WS_BINARY)
        return -CHOPIN__WS_PROTOCOL_ERROR;
    if ((opcode == CHOPIN__WS_CONT) != (r->msg_opcode != 0))
        return -CHOPIN__WS_PROTOCOL_ERROR; /* §5.4: fragments of one message at a time */
    return 0;
}

static uint64_t load_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The whole head is read: the payload's length and mask, the message it belongs to. */
static int head_done(struct chopin__ws_reader *r) {
    const uint8_t *h = r->head;
    unsigned len7 = h[1] & 0x7f;
    uint64_t len = len7;
    const uint8_t *mask = h + 2;
    if (len7 == 126) {
        len = load_be(h + 2, 2);
        mask = h + 4;
        if (len < 126)
            return -CHOPIN__WS_PROTOCOL_ERROR; /* §5.2: the minimal length encoding */
    } else if (len7 == 127) {
        len = load_be(h + 2, 8);
        mask = h + 10;
        if (len >> 63 || len <= 0xffff)
            return -CHOPIN__WS_PROTOCOL_ERROR;
    }
    r->opcode = h[0] & 0xf;
    r->fin = h[0] >> 7;
    memcpy(r->mask, mask, 4);
    r->mask_pos = 0;
    r->remaining = len;
    r->in_frame = 1;
    r->ctl_len = 0;
    if (is_control(r->opcode))
        return 0;
    if (r->opcode != CHOPIN__WS_CONT) {
        r->msg_opcode = r->opcode;
        r->msg_deflated = (h[0] & 0x40) != 0;
        r->utf8 = (struct chopin__utf8){0};
    }
    /* Compressed messages are measured as they inflate; others can be refused now. */
    if (!r->msg_deflated && len > r->max_message - r->msg.len)
        return -CHOPIN__WS_TOO_BIG;
    return 0;
}

static int text_check(struct chopin__ws_reader *r, const char *p, size_t n) {
    if (r->msg_opcode == CHOPIN__WS_TEXT && chopin__utf8_feed(&r->utf8, (const uint8_t *)p, n))
        return -CHOPIN__WS_INVALID_DATA;
    return 0;
}

/* Payload bytes of a data frame, unmasked, into the message being reassembled. */
static int data_append(struct chopin__ws_reader *r, const char *p, size_t n) {
    size_t before = r->msg.len;
    if (r->msg_deflated) {
        /* What inflated before a failure is checked first: the verdict must not depend on
         * how the input was split (a bad byte seen in one piece, or the limit reached in
         * one call over the whole). */
        int rc = chopin__ws_inflate(&r->zin, r->pmd, p, n, 0, &r->msg, r->max_message);
        int text = r->msg.len > before ? text_check(r, r->msg.ptr + before, r->msg.len - before) : 0;
        return text ? text : rc;
    } else if (n) {
        if (chopin__ws_buf_reserve(&r->msg, r->msg.len + n, r->max_message) != 0)
            return -CHOPIN__WS_INTERNAL;
        memcpy(r->msg.ptr + r->msg.len, p, n);
        r->msg.len += n;
    }
    return r->msg.len > before ? text_check(r, r->msg.ptr + before, r->msg.len - before) : 0;
}

/* A close frame's payload: a code and a UTF-8 reason, or nothing (RFC 6455 §5.5.1). */
static int close_read(struct chopin__ws_reader *r, struct chopin__ws_event *ev) {
    ev->code = CHOPIN__WS_NO_STATUS;
    ev->data = (const char *)r->ctl + 2;
    ev->len = 0;
    if (r->ctl_len == 1)
        return -CHOPIN__WS_PROTOCOL_ERROR;
    if (r->ctl_len >= 2) {
        ev->code = (uint16_t)load_be(r->ctl, 2);
        ev->len = r->ctl_len - 2u;
        struct chopin__utf8 u = {0};
        if (!chopin__ws_close_code_valid(ev->code))
            return -CHOPIN__WS_PROTOCOL_ERROR;
        if (chopin__utf8_feed(&u, (const uint8_t *)ev->data, ev->len) || !chopin__utf8_complete(&u))
            return -CHOPIN__WS_INVALID_DATA;
    }
    r->closed = 1;
    return 1;
}

/* The current frame's payload is all read: 1 with an event, 0 without, or an error. */
static int frame_end(struct chopin__ws_reader *r, struct chopin__ws_event *ev) {
    r->in_frame = 0;
    r->head_len = 0;
    *ev = (struct chopin__ws_event){.opcode = r->opcode, .data = (const char *)r->ctl,
                                    .len = r->ctl_len};
    if (r->opcode == CHOPIN__WS_CLOSE)
        return close_read(r, ev);
    if (is_control(r->opcode))
        return 1;
    if (!r->fin)
        return 0;
    if (r->msg_deflated) {
        size_t before = r->msg.len;
        int rc = chopin__ws_inflate(&r->zin, r->pmd, NULL, 0, 1, &r->msg, r->max_message);
        int text = r->msg.len > before ? text_check(r, r->msg.ptr + before, r->msg.len - before) : 0;
        if (text || rc)
            return text ? text : rc;
    }
    if (r->msg_opcode == CHOPIN__WS_TEXT && !chopin__utf8_complete(&r->utf8))
        return -CHOPIN__WS_INVALID_DATA;
    ev->opcode = r->msg_opcode;
    ev->data = r->msg.ptr;
    ev->len = r->msg.len;
    r->msg_opcode = 0;
    r->msg_deflated = 0;
    return 1;
}

/* Payload bytes p[0..n) of the current frame (n <= remaining), unmasked in place. */
static int payload(struct chopin__ws_reader *r, char *p, size_t n, struct chopin__ws_event *ev) {
    /* A whole message in one frame, all of it here: handed out where it lies. */
    if (r->opcode != CHOPIN__WS_CONT && !is_control(r->opcode) && r->fin &&
        !r->msg_deflated && n == r->remaining && r->msg.len == 0) {
        unmask((uint8_t *)p, n, r->mask, &r->mask_pos);
        r->remaining = 0;
        if (text_check(r, p, n) || (r->msg_opcode == CHOPIN__WS_TEXT &&
                                    !chopin__utf8_complete(&r->utf8)))
            return -CHOPIN__WS_INVALID_DATA;
        r->in_frame = 0;
        r->head_len = 0;
        r->msg_opcode = 0;
        *ev = (struct chopin__ws_event){.opcode = r->opcode, .data = p, .len = n};
        return 1;
    }
    unmask((uint8_t *)p, n, r->mask, &r->mask_pos);
    r->remaining -= n;
    if (is_control(r->opcode)) {
        memcpy(r->ctl + r->ctl_len, p, n);
        r->ctl_len = (uint8_t)(r->ctl_len + n);
    } else {
        int rc = data_append(r, p, n);
        if (rc)
            return rc;
    }
    return r->remaining ? 0 : frame_end(r, ev);
}

static int fail(struct chopin__ws_reader *r, int code) {
    r->closed = 1;
    return code;
}

int chopin__ws_read(struct chopin__ws_reader *r, char *data, size_t n, size_t *used,
                    struct chopin__ws_event *ev) {
    if (r->msg.ptr && r->msg_opcode == 0)
        msg_drop(r); /* the message handed out by the last call */
    while (!r->closed && *used < n) {
        if (!r->in_frame) {
            unsigned need = r->head_len < 2 ? 2 : head_size(r->head);
            size_t take = need - r->head_len;
            if (take > n - *used)
                take = n - *used;
            memcpy(r->head + r->head_len, data + *used, take);
            r->head_len = (uint8_t)(r->head_len + take);
            *used += take;
            if (r->head_len < need)
                continue;
            int rc = need == 2 ? check_start(r, r->head) : 0;
            if (rc)
                return fail(r, rc);
            if (r->head_len < head_size(r->head))
                continue;
            if ((rc = head_done(r)) != 0)
                return fail(r, rc);
            if (r->remaining == 0) {
                rc = frame_end(r, ev);
                if (rc < 0)
                    return fail(r, rc);
                if (rc)
                    return 1;
            }
            continue;
        }
        size_t take = n - *used;
        if (take > r->remaining)
            take = (size_t)r->remaining;
        char *p = data + *used;
        *used += take;
        int rc = payload(r, p, take, ev);
        if (rc < 0)
            return fail(r, rc);
        if (rc)
            return 1;
    }
    if (r->closed)
        *used = n;
    return 0;
}

size_t chopin__ws_frame_head(uint8_t out[10], unsigned opcode, int fin, int rsv1,
                             uint64_t len) {
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0xf));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    int bytes = len <= 0xffff ? 2 : 8;
    out[1] = bytes == 2 ? 126 : 127;
    for (int i = 0; i < bytes; i++)
        out[2 + i] = (uint8_t)(len >> (8 * (bytes - 1 - i)));
    return 2 + (size_t)bytes;
}
