/* SPDX-License-Identifier: MIT */
/* What the rest of the library asks of the server (server.c) beyond the public API. */
#ifndef CHOPIN_SERVER_H
#define CHOPIN_SERVER_H

struct chopin_server;

/** The server's offload pool (loop/offload.h). */
struct chopin__offload *chopin__server_offload(const struct chopin_server *s);

#endif
