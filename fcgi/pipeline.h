/*
 * pipeline.h — one request from read to report, in the order of DESIGN.md.
 */
#ifndef TG_PIPELINE_H
#define TG_PIPELINE_H

struct tg_request;

/*
 * Runs r (already accepted) to completion: route, identify, forward, settle,
 * respond, log. Always answers the client, in its dialect, and always writes
 * the access log line. Does not finish r (the caller does).
 */
void tg_pipeline_run(struct tg_request *r);

#endif
