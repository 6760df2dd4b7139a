/*
 * otel.h — the OpenTelemetry span exporter of a worker process: a bounded
 * queue that request threads put finished spans in, and one background thread
 * that takes them in batches, encodes them as OTLP/HTTP JSON
 * (resourceSpans / scopeSpans / spans) and posts them to otel.endpoint through
 * upstream.c.
 *
 * A request never waits for the exporter: when the queue has no room for a
 * request's spans they are dropped (all of them) and counted; an export that
 * fails (unreachable, timed out, a non-2xx answer) is not retried, its spans
 * are counted as dropped and the failure is counted. The host's counts are in
 * shared memory (shm.h) for /metrics.
 *
 * Spans hold copies of everything (fixed-size fields): nothing points into a
 * request's arena. Attribute values are what otel_span.c puts there — never
 * prompt or completion text, keys or tokens.
 *
 * Not here: which spans a request makes and whether it is sampled (otel_span.c).
 */
#ifndef TG_OTEL_H
#define TG_OTEL_H

#include <pthread.h>

#include "common.h"

struct tg_otel_config;

#define TG_OTEL_MAX_ATTRS 24
#define TG_OTEL_VALUE_MAX 136 /* an attribute's string value, NUL included; longer ones are cut */

enum tg_otel_kind { /* OTLP's SpanKind numbers */
                    TG_OTEL_KIND_INTERNAL = 1,
                    TG_OTEL_KIND_SERVER = 2,
                    TG_OTEL_KIND_CLIENT = 3,
};

enum tg_otel_status { TG_OTEL_STATUS_UNSET = 0, TG_OTEL_STATUS_OK = 1, TG_OTEL_STATUS_ERROR = 2 };

enum tg_otel_value_type {
    TG_OTEL_STRING,
    TG_OTEL_INT,
    TG_OTEL_BOOL,
    TG_OTEL_STRINGS, /* an array of strings: s holds them separated by '\n' */
};

struct tg_otel_attr {
    const char *key; /* a string literal (static storage) */
    enum tg_otel_value_type type;
    int64_t i; /* TG_OTEL_INT, TG_OTEL_BOOL */
    char s[TG_OTEL_VALUE_MAX];
};

struct tg_otel_span {
    char trace_id[33]; /* lower-case hex */
    char span_id[17];
    char parent_id[17]; /* "" for a root span */
    char name[96];
    enum tg_otel_kind kind;
    int64_t start_ns; /* Unix nanoseconds */
    int64_t end_ns;
    enum tg_otel_status status;
    char status_message[96];
    size_t n_attrs;
    struct tg_otel_attr attrs[TG_OTEL_MAX_ATTRS];
};

/* Wall-clock Unix nanoseconds (span times). */
int64_t tg_otel_now_ns(void);

/* Appends a string / integer / boolean attribute to s (ignored past TG_OTEL_MAX_ATTRS). */
void tg_otel_attr_str(struct tg_otel_span *s, const char *key, const char *value);
void tg_otel_attr_int(struct tg_otel_span *s, const char *key, int64_t value);
void tg_otel_attr_bool(struct tg_otel_span *s, const char *key, bool value);

/*
 * Starts the process's exporter thread for config (borrowed for the process's
 * lifetime). TG_OK; TG_DECLINED when config->endpoint is NULL (nothing runs,
 * tg_otel_enabled() is false); TG_ERROR when out of memory or no thread.
 */
int tg_otel_start(const struct tg_otel_config *config);

/* True once tg_otel_start succeeded and until tg_otel_stop. */
bool tg_otel_enabled(void);

/*
 * Queues copies of spans[0..n) as one unit, without waiting for the exporter
 * (a lock held only for a copy). TG_OK, or TG_DECLINED when the queue has no
 * room for all of them: they are dropped and counted.
 */
int tg_otel_submit(const struct tg_otel_span *spans, size_t n);

/*
 * Whether spans are wanted now: the exporter runs and is not backing off after a
 * failed export (1, 2, 4 ... 30 s after each failure in a row). While it backs
 * off, a request's spans are not built, only counted as dropped.
 */
bool tg_otel_accepting(void);

/* Counts n spans dropped (tollgate_otel_spans_dropped_total). */
void tg_otel_count_dropped(size_t n);

/*
 * Stops the exporter: what is queued is exported within the config's
 * timeout_ms (what is left then is dropped and counted) and the thread joined.
 */
void tg_otel_stop(void);

/*
 * The /metrics text of the host's counts (tollgate_otel_spans_exported_total,
 * tollgate_otel_spans_dropped_total, tollgate_otel_export_failures_total) into
 * buf (always NUL-terminated). Returns the length written.
 */
size_t tg_otel_metrics_text(char *buf, size_t size);

/* ---- the parts below are pure, for tests ---- */

/* The bounded queue: a ring of spans, its own lock and its own counts. */
struct tg_otel_queue {
    pthread_mutex_t mu;
    pthread_cond_t ready;
    struct tg_otel_span *ring;
    size_t cap, head, n;
    size_t batch;     /* the waker: this many queued wakes the exporter */
    uint64_t dropped; /* spans refused for want of room */
};

/* A queue of capacity cap that wakes its taker once batch spans wait. TG_OK or TG_ERROR. */
int tg_otel_queue_init(struct tg_otel_queue *q, size_t cap, size_t batch);
void tg_otel_queue_release(struct tg_otel_queue *q);

/* All of spans[0..n) or none (then q->dropped grows by n): TG_OK or TG_DECLINED. */
int tg_otel_queue_push(struct tg_otel_queue *q, const struct tg_otel_span *spans, size_t n);

/*
 * Moves up to max spans, oldest first, into out; waits at most wait_ms for a
 * full batch (0: no wait). Returns how many were taken.
 */
size_t tg_otel_queue_take(struct tg_otel_queue *q, struct tg_otel_span *out, size_t max,
                          long wait_ms);

/*
 * The OTLP/HTTP JSON body (ExportTraceServiceRequest) of spans[0..n) under one
 * resource (service.name service_name): a malloc'd NUL-terminated text the
 * caller frees, *len its length; NULL when out of memory.
 */
char *tg_otel_encode(const char *service_name, const struct tg_otel_span *spans, size_t n,
                     size_t *len);

#endif
