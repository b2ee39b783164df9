/* SPDX-License-Identifier: MIT */
/*
 * The server of bench/ops.sh: TechEmpower's /plaintext with the operations features of
 * issue 19 switched on one by one, so their cost is what differs:
 *   the access log   CHOPIN_ACCESS_LOG=FILE (and CHOPIN_ACCESS_LOG_FORMAT), as any server
 *   OPS_METRICS=1    chopin_metrics_route(r, "/metrics"): the latency histograms on
 *   OPS_REQUEST_ID=1 chopin_request_id as global middleware
 * Usage: ops_server PORT   (CHOPIN_* variables as usual)
 */
#include <chopin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void plaintext(chopin_req *req, chopin_res *res, void *data) {
    chopin_res_static(res, 200, "text/plain", "Hello, World!", 13);
}

static int on(const char *name) {
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%s", argv[1]);
    chopin_router *r = chopin_router_new();
    int rc = chopin_router_get(r, "/plaintext", plaintext, NULL);
    if (!rc && on("OPS_METRICS"))
        rc = chopin_metrics_route(r, "/metrics");
    if (!rc && on("OPS_REQUEST_ID"))
        rc = chopin_router_use(r, NULL, chopin_request_id, NULL);
    if (!rc)
        rc = chopin_serve(r, address, NULL);
    chopin_router_free(r);
    return rc < 0 ? 1 : 0;
}
