/*
 * What the readiness backends (epoll, kqueue) share: moving bytes between a non-blocking
 * socket and its connection once the loop has said the socket is ready. The loop keeps
 * per connection, in conn->backend_flags, whether the socket may still hold input or take
 * output; these functions read and write until the socket says EAGAIN (or the connection
 * stops wanting input) and clear the flag then.
 */
#ifndef CHOPIN_BACKEND_READINESS_H
#define CHOPIN_BACKEND_READINESS_H

#include <stddef.h>

struct chopin__conn;
struct chopin__worker;

/* Flags every readiness backend uses; a backend's own flags start at 0x8. */
#define CHOPIN__READABLE 0x1u /* the socket may hold input */
#define CHOPIN__WRITABLE 0x2u /* the socket may take output */
#define CHOPIN__HUNG_UP 0x4u  /* the peer hung up: read on until EOF */

/**
 * Reads into `scratch` and feeds the connection, at most `budget` reads (negative: no
 * limit). A short read is
 * taken to drain the socket (edge-triggered loops raise a new event for later input)
 * unless the peer hung up, whose event does not come again. Returns nonzero when the
 * budget ran out with input still waiting: the loop must come back to it.
 */
int chopin__read_ready(struct chopin__conn *c, char *scratch, size_t size, int budget);

/** Sends the connection's output plan until it is empty or the socket is full. */
void chopin__write_ready(struct chopin__conn *c);

/**
 * Accepts the next waiting socket into a connection slot, as the worker's accept policy
 * allows (an idle connection evicted when the slab is full, a back-off on EMFILE). NULL
 * when no socket waits or accepting must pause. The connection is marked readable and
 * writable: with a deferred accept (TCP_DEFER_ACCEPT, accf_data) its request is usually
 * there already, so the loop serves it at once instead of after another wait.
 */
struct chopin__conn *chopin__accept_next(struct chopin__worker *w);

#endif
