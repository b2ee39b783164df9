/* SPDX-License-Identifier: MIT */
/*
 * The offload pool (chopin.h, "Blocking work: the offload pool"): a server's bounded set
 * of threads that run the application's blocking work, each result handed back to the
 * worker that asked through its post queue (loop/loop.h, chopin__engine_post), so one
 * wake carries a batch of results.
 *
 * The queue holds at most `queue` jobs not yet taken by a thread; a job asked for beyond
 * that is refused (-EBUSY) before anything happens. A result whose worker has ended is
 * kept, and its done function runs when the pool is destroyed, after every worker ended.
 */
#ifndef CHOPIN_LOOP_OFFLOAD_H
#define CHOPIN_LOOP_OFFLOAD_H

struct chopin__offload;

/** Starts `threads` pool threads (they inherit the caller's signal mask) with a queue of
 *  `queue` jobs. 0 with *out set, or a negative errno (nothing left running). */
int chopin__offload_create(struct chopin__offload **out, unsigned threads, unsigned queue);
/** After every worker of the server ended: stops the threads (a job running finishes
 *  its work; a job still queued never runs its work), joins them, and runs on this thread
 *  the done function of every job not delivered to its worker. NULL does nothing. */
void chopin__offload_destroy(struct chopin__offload *p);

#endif
