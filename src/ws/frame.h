/* SPDX-License-Identifier: MIT */
/*
 * WebSocket framing (RFC 6455 §5), server side, sans-I/O: a reader that turns a client's
 * bytes into messages and control frames, checking every rule of the protocol as it goes,
 * and the encoder of the server's frame heads.
 *
 * The reader is incremental and correct at any split of its input. It unmasks payloads
 * in place (the input is writable: the worker's scratch or a provided buffer). A whole
 * unfragmented, uncompressed message that lies in one input is handed out where it lies;
 * others are reassembled in a heap buffer that grows up to the message limit and is freed
 * when the message has been handed out, so an idle reader holds no buffer.
 */
#ifndef CHOPIN_WS_FRAME_H
#define CHOPIN_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ws/deflate.h"
#include "ws/utf8.h"

enum chopin__ws_opcode {
    CHOPIN__WS_CONT = 0x0,
    CHOPIN__WS_TEXT = 0x1,
    CHOPIN__WS_BINARY = 0x2,
    CHOPIN__WS_CLOSE = 0x8,
    CHOPIN__WS_PING = 0x9,
    CHOPIN__WS_PONG = 0xa,
};

/* Close codes (RFC 6455 §7.4.1) the reader fails a connection with. */
enum {
    CHOPIN__WS_NORMAL = 1000,
    CHOPIN__WS_GOING_AWAY = 1001,
    CHOPIN__WS_PROTOCOL_ERROR = 1002,
    CHOPIN__WS_NO_STATUS = 1005, /* a close frame without a code (never sent) */
    CHOPIN__WS_ABNORMAL = 1006,  /* no close frame at all (never sent) */
    CHOPIN__WS_INVALID_DATA = 1007,
    CHOPIN__WS_POLICY = 1008,
    CHOPIN__WS_TOO_BIG = 1009,
    CHOPIN__WS_INTERNAL = 1011,
    CHOPIN__WS_TRY_AGAIN = 1013,
};

/** What the reader found. The pointers borrow the reader's buffer or the caller's input
 *  until the next call. */
struct chopin__ws_event {
    uint8_t opcode;   /* TEXT or BINARY (a whole message), PING, PONG or CLOSE */
    uint16_t code;    /* CLOSE: the code, CHOPIN__WS_NO_STATUS when the frame had none */
    const char *data; /* the message, the ping or pong payload, the close reason */
    size_t len;
};

struct chopin__ws_reader {
    uint64_t remaining;  /* payload bytes of the current frame not yet read */
    uint64_t max_message;
    struct chopin__ws_buf msg;     /* a message being reassembled (or inflated) */
    const struct chopin__ws_pmd *pmd; /* NULL: no extension, RSV1 is an error */
    struct chopin__ws_zin *zin;    /* the inflater, while it has a context */
    struct chopin__utf8 utf8;      /* of the text message in progress */
    uint8_t head[14];    /* the frame head being read */
    uint8_t head_len;
    uint8_t opcode;      /* of the current frame */
    uint8_t fin;
    uint8_t mask[4];
    uint8_t mask_pos;    /* where the next payload byte falls in the mask */
    uint8_t in_frame;    /* the head is read, the payload follows */
    uint8_t msg_opcode;  /* TEXT or BINARY while a message is in progress, else 0 */
    uint8_t msg_deflated;/* the message in progress has RSV1 */
    uint8_t closed;      /* a close frame was read: nothing after it is */
    uint8_t ctl_len;
    uint8_t ctl[125];    /* a control frame's payload, which may come in pieces */
};

/** A fresh reader; `pmd` (NULL: no permessage-deflate) must outlive it. */
void chopin__ws_reader_init(struct chopin__ws_reader *r, uint64_t max_message,
                            const struct chopin__ws_pmd *pmd);
/** Frees its buffer and inflater. */
void chopin__ws_reader_free(struct chopin__ws_reader *r);

/**
 * Reads from data[*used..n), advancing *used. Returns 1 with *ev set when a message or a
 * control frame is complete (call again for the rest of the input), 0 when every byte is
 * consumed without one, or the negated close code the connection must fail with:
 * -1002 (protocol: unmasked frame, reserved bits or opcodes, a control frame fragmented
 * or over 125 bytes, a continuation without a message or a message inside another, a
 * non-minimal or over-2^63 length, a close frame of one byte or with an invalid code),
 * -1007 (text or a close reason that is not UTF-8, compressed data that does not
 * inflate), -1009 (a message over max_message, counted after inflating), -1011 (out of
 * memory). After a CLOSE event or an error it discards its input: every later call
 * consumes it all and returns 0.
 */
int chopin__ws_read(struct chopin__ws_reader *r, char *data, size_t n, size_t *used,
                    struct chopin__ws_event *ev);

/** Writes a server frame head (unmasked) into out: returns its length (2, 4 or 10). */
size_t chopin__ws_frame_head(uint8_t out[10], unsigned opcode, int fin, int rsv1,
                             uint64_t len);

/** Nonzero for a close code a peer may send (RFC 6455 §7.4: 1000-1003, 1007-1014 of the
 *  IANA registry, 3000-4999 for libraries and applications). */
int chopin__ws_close_code_valid(unsigned code);

#endif
