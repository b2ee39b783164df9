/* SPDX-License-Identifier: MIT */
/*
 * ws_server: Chopin's side of bench/ws.sh (issue 17). Routes: /echo (every message back,
 * no compression), /echo_deflate (the same with permessage-deflate accepted, for the
 * idle-memory figure with it on), /sub (subscribes to the topic "b", then says "ok"), /pub
 * (publishes every message it gets to "b": the broadcast). PORT (default 8080) and the
 * usual CHOPIN_* variables.
 *
 * Build: cc -O2 -Iinclude -o build/bench/ws_server bench/ws_server.c build/libchopin.a \
 *           -pthread -luring -lz
 */
#include <chopin.h>
#include <stdio.h>
#include <stdlib.h>

static void echo(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    chopin_ws_send(ws, kind, data, len);
}

static void echo_route(chopin_req *req, chopin_res *res, void *deflate) {
    chopin_ws_config cfg = {.on_message = echo, .max_message = 16u << 20,
                            .max_queued = 64u << 20, .deflate = deflate != NULL};
    chopin_ws_upgrade(req, res, &cfg, NULL);
}

static void sub_open(chopin_ws *ws) {
    chopin_ws_subscribe(ws, "b");
    chopin_ws_send(ws, CHOPIN_WS_TEXT, "ok", 2);
}

static void sub_route(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_ws_config cfg = {.on_open = sub_open, .max_queued = 64u << 20};
    chopin_ws_upgrade(req, res, &cfg, NULL);
}

static void publish(chopin_ws *ws, chopin_ws_kind kind, const void *data, size_t len) {
    chopin_ws_publish(chopin_ws_server(ws), "b", kind, data, len);
}

static void pub_route(chopin_req *req, chopin_res *res, void *data) {
    (void)data;
    chopin_ws_config cfg = {.on_message = publish, .max_message = 16u << 20};
    chopin_ws_upgrade(req, res, &cfg, NULL);
}

int main(void) {
    chopin_router *r = chopin_router_new();
    static int on = 1;
    if (!r || chopin_router_get(r, "/echo", echo_route, NULL) ||
        chopin_router_get(r, "/echo_deflate", echo_route, &on) ||
        chopin_router_get(r, "/sub", sub_route, NULL) || chopin_router_get(r, "/pub", pub_route, NULL))
        return 1;
    const char *port = getenv("PORT");
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%s", port ? port : "8080");
    int rc = chopin_serve(r, address, NULL);
    chopin_router_free(r);
    return rc < 0;
}
