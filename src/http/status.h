/* SPDX-License-Identifier: MIT */
/* Status codes and reason phrases (RFC 9110 §15). */
#ifndef CHOPIN_HTTP_STATUS_H
#define CHOPIN_HTTP_STATUS_H

/** The reason phrase of `status`, or a class phrase for unregistered codes ("Client
 *  Error" for 4xx without a name). NULL only outside 100..599. */
const char *chopin__status_reason(int status);

#endif
