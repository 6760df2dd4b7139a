/*
 * otel_span.h — a request's OpenTelemetry spans: the few times the pipeline
 * notes on the way (reserve, each upstream attempt, settle), the sampling
 * decision at the end, and the spans built from the request and handed to the
 * exporter (otel.h).
 *
 * One SERVER span per model call (its id is the one trace.c made and sent
 * upstream; its parent the client's traceparent span, if any), with children:
 * "tollgate.reserve", one CLIENT span per upstream attempt (backend, status,
 * retry number) and "tollgate.settle" (ending when the usage row is committed,
 * spooled or queued: tg_settle_request's return). Attributes follow the
 * OpenTelemetry GenAI semantic conventions (gen_ai.*) plus tollgate.* — never
 * prompt or completion text, keys, JWTs or provider credentials.
 *
 * Sampling: a client's traceparent decides by its sampled flag; without one,
 * otel.sample_ratio decides, deterministically on the trace id; with
 * otel.always_sample_errors a request that ended in an error is exported
 * whatever the first two said. Decided at the end of the request.
 *
 * Every function is a no-op when export is off (r->otel is NULL).
 */
#ifndef TG_OTEL_SPAN_H
#define TG_OTEL_SPAN_H

#include "common.h"

struct tg_request;
struct tg_trace;

/* Sets r->otel (arena) when the exporter runs, else NULL; notes the start time. */
void tg_otel_span_begin(struct tg_request *r);

/* Notes the reserve step that began at start_ns (tg_otel_now_ns) and returned rc. */
void tg_otel_span_reserve(struct tg_request *r, int64_t start_ns, int rc);

/*
 * Notes one upstream attempt on r->backend that began at start_ns: the HTTP
 * status it answered (0: none) and result (enum tg_upstream_result).
 */
void tg_otel_span_attempt(struct tg_request *r, int64_t start_ns, long status, int result);

/*
 * Notes the settle step that began at start_ns and what became of the row:
 * result is "settled", "spooled", "pending", "refused" or "lost" (a string
 * literal; "lost" marks the span an error).
 */
void tg_otel_span_settle(struct tg_request *r, int64_t start_ns, const char *result);

/*
 * Notes what a buffered reply (borrowed, the client's dialect) says of the
 * response: its model and finish reasons (read, never kept: the text is not).
 */
void tg_otel_span_reply(struct tg_request *r, const char *reply, size_t len);

/*
 * Notes what a stream (or a translated reply) said of the response, as the
 * exchange's meter took it while relaying (pivot.h): model ("" none) and
 * finish_reasons ('\n'-separated, "" none), both borrowed and copied.
 */
void tg_otel_span_response(struct tg_request *r, const char *model, const char *finish_reasons);

/* Ends r's spans: decides sampling and, if kept, queues them (never waits). */
void tg_otel_span_end(struct tg_request *r);

/* ---- pure, for tests ---- */

/*
 * The decision before the outcome is known: a client's traceparent (parent
 * given) by its sampled flag, else the trace id's last 56 bits (random in a
 * W3C id) below threshold (ratio * 2^56).
 */
bool tg_otel_span_head_sampled(const struct tg_trace *trace, uint64_t threshold);

#endif
