/* SPDX-License-Identifier: MIT */
/* Streams that wait (chopin.h, chopin_req_stream): a handle naming the connection by its
 * slab slot and generation, so a resume that comes after the connection closed (and its
 * slot was reused) is refused instead of waking another client's stream. */
#include "chopin.h"
#include "conn.h"
#include "engine.h"
#include "http/message.h"

chopin_stream chopin_req_stream(const chopin_req *req) {
    struct chopin__engine *e = req->engine;
    struct chopin__conn *c = req->conn;
    if (!e || !c)
        return (chopin_stream){0};
    return (chopin_stream){
        .worker = (chopin_worker *)e,
        .slot = chopin__slab_index(&e->slab, c),
        .gen = c->gen,
    };
}

/* The live connection `s` names, or NULL. The generation of a slot is bumped when its
 * connection is freed, so it equals the handle's only while that connection lives. */
static struct chopin__conn *lookup(chopin_stream s) {
    struct chopin__engine *e = (struct chopin__engine *)s.worker;
    if (!e || s.slot >= e->slab.capacity || e->gens[s.slot] != s.gen)
        return NULL;
    struct chopin__conn *c = chopin__slab_at(&e->slab, s.slot);
    return c->live && c->gen == s.gen ? c : NULL;
}

int chopin_stream_resume(chopin_stream s) {
    struct chopin__conn *c = lookup(s);
    if (!c)
        return CHOPIN_ESTALE;
    chopin__conn_stream_resume(c);
    return 0;
}
