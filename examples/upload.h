/* SPDX-License-Identifier: MIT */
/* The demo's /upload: an HTML form, and multipart uploads streamed to disk (issue 18). */
#ifndef CHOPIN_EXAMPLES_UPLOAD_H
#define CHOPIN_EXAMPLES_UPLOAD_H

#include <chopin.h>

/** The directory uploads are stored in: CHOPIN_UPLOAD_DIR, else a new temporary one
 *  (removed by upload_dir_remove). Returns 0, or -1 after printing why. */
int upload_dir_open(void);
/** Removes the temporary directory and what was stored in it (not CHOPIN_UPLOAD_DIR). */
void upload_dir_remove(void);
/** GET and POST `path`. Returns chopin_router_stream's code. */
int upload_mount(chopin_router *r, const char *path);

#endif
