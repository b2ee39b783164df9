/* SPDX-License-Identifier: MIT */
/* nghttp2's allocator for HTTP/2 sessions: size classes on per-thread free lists (mem.c). */
#ifndef CHOPIN_H2_MEM_H
#define CHOPIN_H2_MEM_H

#ifdef CHOPIN_HAVE_NGHTTP2
#include <nghttp2/nghttp2.h>

/** The allocator to give nghttp2_session_server_new3, for a session of this thread that
 *  calls chopin__h2_mem_done once it is deleted. */
nghttp2_mem *chopin__h2_mem(void);
/** A session of this thread was deleted: the last one's end gives the cached blocks back. */
void chopin__h2_mem_done(void);
#endif

#endif
