/*
 * otel.c — the span exporter: the bounded queue, the background thread, the
 * OTLP/HTTP JSON encoding (otel.h).
 *
 * The exporter thread owns its own upstream.c handle (keep-alive to the
 * collector); request threads only ever take the queue's lock for a copy.
 */
#include "otel.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config_otel.h"
#include "jsafe.h"
#include "log.h"
#include "shm.h"
#include "upstream.h"

int64_t tg_otel_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- attributes ---- */

static struct tg_otel_attr *next_attr(struct tg_otel_span *s, const char *key,
                                      enum tg_otel_value_type type)
{
    if (s->n_attrs >= TG_OTEL_MAX_ATTRS)
        return NULL;
    struct tg_otel_attr *a = &s->attrs[s->n_attrs++];
    memset(a, 0, sizeof(*a));
    a->key = key;
    a->type = type;
    return a;
}

void tg_otel_attr_str(struct tg_otel_span *s, const char *key, const char *value)
{
    struct tg_otel_attr *a = value != NULL ? next_attr(s, key, TG_OTEL_STRING) : NULL;
    if (a == NULL)
        return;
    size_t n = strlen(value);
    if (n >= sizeof(a->s)) { /* cut, but not inside a UTF-8 sequence */
        n = sizeof(a->s) - 1;
        while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(a->s, value, n);
    a->s[n] = '\0';
}

void tg_otel_attr_int(struct tg_otel_span *s, const char *key, int64_t value)
{
    struct tg_otel_attr *a = next_attr(s, key, TG_OTEL_INT);
    if (a != NULL)
        a->i = value;
}

void tg_otel_attr_bool(struct tg_otel_span *s, const char *key, bool value)
{
    struct tg_otel_attr *a = next_attr(s, key, TG_OTEL_BOOL);
    if (a != NULL)
        a->i = value ? 1 : 0;
}

/* ---- the queue ---- */

int tg_otel_queue_init(struct tg_otel_queue *q, size_t cap, size_t batch)
{
    memset(q, 0, sizeof(*q));
    /* calloc: pages the queue never fills are never touched */
    q->ring = calloc(cap, sizeof(*q->ring));
    if (q->ring == NULL)
        return TG_ERROR;
    q->cap = cap;
    q->batch = batch > 0 ? batch : 1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->ready, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&q->mu, NULL);
    return TG_OK;
}

void tg_otel_queue_release(struct tg_otel_queue *q)
{
    if (q->ring == NULL)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->ready);
    free(q->ring);
    q->ring = NULL;
}

int tg_otel_queue_push(struct tg_otel_queue *q, const struct tg_otel_span *spans, size_t n)
{
    pthread_mutex_lock(&q->mu);
    if (q->cap - q->n < n) {
        q->dropped += n;
        pthread_mutex_unlock(&q->mu);
        return TG_DECLINED;
    }
    for (size_t i = 0; i < n; i++)
        q->ring[(q->head + q->n + i) % q->cap] = spans[i];
    q->n += n;
    if (q->n >= q->batch)
        pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->mu);
    return TG_OK;
}

static void deadline_after(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Wakes a taker that waits (shutdown). */
static void queue_wake(struct tg_otel_queue *q)
{
    pthread_mutex_lock(&q->mu);
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->mu);
}

size_t tg_otel_queue_take(struct tg_otel_queue *q, struct tg_otel_span *out, size_t max,
                          long wait_ms)
{
    pthread_mutex_lock(&q->mu);
    if (wait_ms > 0 && q->n < q->batch) {
        struct timespec deadline;
        deadline_after(&deadline, wait_ms);
        /* one wait: a push of a full batch, a shutdown or the flush interval ends it */
        pthread_cond_timedwait(&q->ready, &q->mu, &deadline);
    }
    size_t n = q->n < max ? q->n : max;
    for (size_t i = 0; i < n; i++)
        out[i] = q->ring[(q->head + i) % q->cap];
    q->head = (q->head + n) % q->cap;
    q->n -= n;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* ---- the encoding ---- */

/* A JSON string of s; U+FFFD when s is not valid UTF-8 (a header the client sent). */
static json_t *jstr(const char *s)
{
    json_t *v = json_string(s);
    return v != NULL ? v : json_string("\xEF\xBF\xBD");
}

static json_t *int_text(int64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRId64, v);
    return json_string(text);
}

static json_t *any_value(const struct tg_otel_attr *a)
{
    switch (a->type) {
    case TG_OTEL_INT: return json_pack("{s:o}", "intValue", int_text(a->i));
    case TG_OTEL_BOOL: return json_pack("{s:b}", "boolValue", a->i != 0);
    case TG_OTEL_STRINGS: {
        json_t *values = json_array();
        char copy[TG_OTEL_VALUE_MAX];
        snprintf(copy, sizeof(copy), "%s", a->s);
        char *p = copy;
        while (values != NULL && *p != '\0') {
            char *nl = strchr(p, '\n');
            if (nl != NULL)
                *nl = '\0';
            json_array_append_new(values, json_pack("{s:o}", "stringValue", jstr(p)));
            if (nl == NULL)
                break;
            p = nl + 1;
        }
        return json_pack("{s:{s:o}}", "arrayValue", "values", values);
    }
    case TG_OTEL_STRING:
    default: return json_pack("{s:o}", "stringValue", jstr(a->s));
    }
}

static json_t *attributes(const struct tg_otel_attr *attrs, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        if (json_array_append_new(list, json_pack("{s:s,s:o}", "key", attrs[i].key, "value",
                                                  any_value(&attrs[i]))) != 0) {
            json_decref(list);
            return NULL;
        }
    return list;
}

static json_t *span_json(const struct tg_otel_span *s)
{
    json_t *status = json_pack("{s:i}", "code", (int)s->status);
    if (status != NULL && s->status_message[0] != '\0')
        json_object_set_new(status, "message", jstr(s->status_message));
    json_t *span =
        json_pack("{s:s,s:s,s:o,s:i,s:o,s:o,s:o,s:o}", "traceId", s->trace_id, "spanId", s->span_id,
                  "name", jstr(s->name), "kind", (int)s->kind, "startTimeUnixNano",
                  int_text(s->start_ns), "endTimeUnixNano", int_text(s->end_ns), "attributes",
                  attributes(s->attrs, s->n_attrs), "status", status);
    if (span != NULL && s->parent_id[0] != '\0')
        json_object_set_new(span, "parentSpanId", json_string(s->parent_id));
    return span;
}

char *tg_otel_encode(const char *service_name, const struct tg_otel_span *spans, size_t n,
                     size_t *len)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        if (json_array_append_new(list, span_json(&spans[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    struct tg_otel_attr service = {.key = "service.name", .type = TG_OTEL_STRING};
    snprintf(service.s, sizeof(service.s), "%s", service_name != NULL ? service_name : "tollgate");
    json_t *body = json_pack("{s:[{s:{s:o},s:[{s:{s:s},s:o}]}]}", "resourceSpans", "resource",
                             "attributes", attributes(&service, 1), "scopeSpans", "scope", "name",
                             "tollgate", "spans", list);
    if (body == NULL)
        return NULL;
    char *text = tg_jsafe_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text != NULL)
        *len = strlen(text);
    return text;
}

/* ---- the exporter thread ---- */

static struct {
    const struct tg_otel_config *config;
    struct tg_otel_queue queue;
    pthread_t thread;
    bool running;
    volatile int stopping; /* atomic */
    int64_t stop_deadline_ms;
    /* after a failed export, until when spans are dropped at once (atomic; 0: none) */
    int64_t backoff_until_ms;
    int failures; /* exports failed in a row (the exporter thread's) */
} ex;

/* A collector that failed is tried again after 1, 2, 4 ... s, at most this long. */
#define BACKOFF_MAX_MS 30000

bool tg_otel_enabled(void)
{
    return ex.running;
}

static void count(uint64_t *counter, uint64_t n)
{
    if (n > 0)
        __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* Whether the exporter is backing off after a failed export. */
static bool backing_off(void)
{
    int64_t until = __atomic_load_n(&ex.backoff_until_ms, __ATOMIC_RELAXED);
    return until != 0 && tg_now_ms() < until;
}

bool tg_otel_accepting(void)
{
    return ex.running && !backing_off();
}

void tg_otel_count_dropped(size_t n)
{
    struct tg_shm *shm = tg_shm_get();
    if (shm != NULL)
        count(&shm->otel_spans_dropped, n);
}

int tg_otel_submit(const struct tg_otel_span *spans, size_t n)
{
    if (!ex.running || n == 0)
        return TG_DECLINED;
    int rc = tg_otel_queue_push(&ex.queue, spans, n);
    struct tg_shm *shm = tg_shm_get();
    if (rc != TG_OK && shm != NULL)
        count(&shm->otel_spans_dropped, n);
    return rc;
}

static int discard_body(void *ctx, long status, const char *data, size_t len)
{
    (void)ctx, (void)status, (void)data, (void)len;
    return TG_OK;
}

static void export_batch(struct tg_upstream *u, const struct tg_otel_span *spans, size_t n)
{
    const struct tg_otel_config *c = ex.config;
    struct tg_shm *shm = tg_shm_get();
    size_t len = 0;
    char *body = tg_otel_encode(c->service_name, spans, n, &len);
    const char *headers[TG_OTEL_MAX_HEADERS + 3] = {"Content-Type: application/json",
                                                    "Expect:", "User-Agent: tollgate-otel"};
    size_t n_headers = 3;
    for (size_t i = 0; i < c->n_headers && n_headers < TG_ARRAY_LEN(headers); i++)
        headers[n_headers++] = c->headers[i];
    int64_t abort_at = ex.stopping ? ex.stop_deadline_ms : 0;
    struct tg_upstream_call call = {
        .url = c->endpoint,
        .headers = headers,
        .n_headers = n_headers,
        .body = body,
        .body_len = len,
        .connect_timeout_ms = c->timeout_ms < 1000 ? c->timeout_ms : 1000,
        .timeout_ms = c->timeout_ms,
        .on_body = discard_body,
        .abort_at_ms = &abort_at,
    };
    enum tg_upstream_result result =
        body != NULL ? tg_upstream_perform(u, &call) : TG_UPSTREAM_FAILED;
    free(body);
    bool ok = result == TG_UPSTREAM_OK && call.status >= 200 && call.status < 300;
    if (shm != NULL) {
        count(ok ? &shm->otel_spans_exported : &shm->otel_spans_dropped, n);
        count(&shm->otel_export_failures, ok ? 0 : 1);
    }
    if (ok) {
        if (ex.failures > 0)
            tg_log_info(NULL, "span export to \"%s\" works again after %d failed exports",
                        c->endpoint, ex.failures);
        ex.failures = 0;
        __atomic_store_n(&ex.backoff_until_ms, 0, __ATOMIC_RELAXED);
        return;
    }
    /* back off (1, 2, 4 ... 30 s): meanwhile spans are dropped before they are built, so
     * a dead collector costs the requests nothing; logged once per run of failures.
     * The URL is the operator's and carries no secret; headers are never logged. */
    if (ex.failures++ == 0)
        tg_log_warn(NULL, "could not export %zu spans to \"%s\": %s; retrying with backoff", n,
                    c->endpoint,
                    body == NULL               ? "out of memory"
                    : result == TG_UPSTREAM_OK ? "the collector answered an error status"
                                               : call.error);
    int64_t wait = ex.failures >= 6 ? BACKOFF_MAX_MS : 1000LL << (ex.failures - 1);
    __atomic_store_n(&ex.backoff_until_ms,
                     tg_now_ms() + (wait < BACKOFF_MAX_MS ? wait : BACKOFF_MAX_MS),
                     __ATOMIC_RELAXED);
}

static void *exporter_main(void *arg)
{
    (void)arg;
    struct tg_upstream *u = tg_upstream_new();
    size_t max = (size_t)ex.config->batch_spans;
    struct tg_otel_span *batch = calloc(max, sizeof(*batch));
    for (;;) {
        bool stopping = __atomic_load_n(&ex.stopping, __ATOMIC_ACQUIRE);
        size_t n = tg_otel_queue_take(&ex.queue, batch != NULL ? batch : NULL,
                                      batch != NULL ? max : 0, stopping ? 0 : ex.config->flush_ms);
        if (n > 0 && (u == NULL || (stopping && tg_now_ms() >= ex.stop_deadline_ms))) {
            struct tg_shm *shm = tg_shm_get(); /* no handle, or shutdown's deadline passed */
            if (shm != NULL)
                count(&shm->otel_spans_dropped, n);
            continue;
        }
        if (n > 0 && !stopping && backing_off())
            tg_otel_count_dropped(n); /* queued before the backoff began: not sent */
        else if (n > 0)
            export_batch(u, batch, n);
        else if (stopping || batch == NULL)
            break;
    }
    free(batch);
    tg_upstream_free(u);
    return NULL;
}

int tg_otel_start(const struct tg_otel_config *config)
{
    if (config->endpoint == NULL)
        return TG_DECLINED;
    ex.config = config;
    ex.stopping = 0;
    if (tg_otel_queue_init(&ex.queue, (size_t)config->queue_spans, (size_t)config->batch_spans) !=
        TG_OK)
        return TG_ERROR;
    if (pthread_create(&ex.thread, NULL, exporter_main, NULL) != 0) {
        tg_otel_queue_release(&ex.queue);
        return TG_ERROR;
    }
    ex.running = true;
    return TG_OK;
}

void tg_otel_stop(void)
{
    if (!ex.running)
        return;
    ex.running = false; /* requests are over: nothing is submitted any more */
    ex.stop_deadline_ms = tg_now_ms() + ex.config->timeout_ms;
    __atomic_store_n(&ex.stopping, 1, __ATOMIC_RELEASE);
    queue_wake(&ex.queue);
    pthread_join(ex.thread, NULL);
    tg_otel_queue_release(&ex.queue);
}

size_t tg_otel_metrics_text(char *buf, size_t size)
{
    struct tg_shm *shm = tg_shm_get();
    uint64_t exported = 0, dropped = 0, failures = 0;
    if (shm != NULL) {
        exported = __atomic_load_n(&shm->otel_spans_exported, __ATOMIC_RELAXED);
        dropped = __atomic_load_n(&shm->otel_spans_dropped, __ATOMIC_RELAXED);
        failures = __atomic_load_n(&shm->otel_export_failures, __ATOMIC_RELAXED);
    }
    int n = snprintf(
        buf, size,
        "# HELP tollgate_otel_spans_exported_total Spans a trace collector accepted (otel).\n"
        "# TYPE tollgate_otel_spans_exported_total counter\n"
        "tollgate_otel_spans_exported_total %" PRIu64 "\n"
        "# HELP tollgate_otel_spans_dropped_total Spans never delivered: the export queue was "
        "full, or their export failed.\n"
        "# TYPE tollgate_otel_spans_dropped_total counter\n"
        "tollgate_otel_spans_dropped_total %" PRIu64 "\n"
        "# HELP tollgate_otel_export_failures_total Span exports that failed (unreachable, "
        "timed out, or an error status).\n"
        "# TYPE tollgate_otel_export_failures_total counter\n"
        "tollgate_otel_export_failures_total %" PRIu64 "\n",
        exported, dropped, failures);
    if (n < 0)
        n = 0;
    if (size > 0 && (size_t)n >= size)
        n = (int)size - 1;
    return (size_t)n;
}
