/*
 * trace.h — W3C Trace Context (traceparent) so a request can be followed from
 * the client through Tollgate to the provider and in the logs.
 *
 * A valid traceparent from the client keeps its trace id and flags; Tollgate is
 * a new span in it. Without one (or with an invalid one) Tollgate starts a
 * trace. The provider gets "traceparent: 00-<trace>-<our span>-<flags>" (and the
 * client's tracestate, if short enough); the access log gets trace_id and span_id.
 */
#ifndef TG_TRACE_H
#define TG_TRACE_H

#include "common.h"

#define TG_TRACEPARENT_LEN 55 /* "00-" + 32 + "-" + 16 + "-" + 2 */
#define TG_TRACESTATE_MAX 512 /* longer tracestate values are dropped, not cut */

struct tg_trace {
    char trace_id[33];  /* 32 lower-case hex digits */
    char parent_id[17]; /* the client's span, "" when Tollgate started the trace */
    char span_id[17];   /* Tollgate's own span */
    char flags[3];      /* 2 hex digits */
    char traceparent[TG_TRACEPARENT_LEN + 1]; /* what goes upstream */
};

/*
 * Parses a traceparent header value (NULL allowed) into trace: TG_OK when it is
 * a valid version-00-compatible header (trace and parent ids not all zero, lower-
 * case hex), else TG_DECLINED and trace untouched.
 */
int tg_trace_parse(const char *header, struct tg_trace *trace);

/*
 * Fills trace (the request's, caller-owned) from traceparent, the client's header
 * value (borrowed; NULL: none), or starts a new trace when it is missing or not
 * valid; then picks Tollgate's span id and writes the traceparent sent upstream.
 * Never fails.
 */
void tg_trace_begin(struct tg_trace *trace, const char *traceparent);

/*
 * Sets or clears the sampled flag (bit 0 of flags, the others kept) of a trace
 * Tollgate started, and rewrites the traceparent sent upstream to say so.
 */
void tg_trace_set_sampled(struct tg_trace *trace, bool sampled);

#endif
