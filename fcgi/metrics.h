/*
 * metrics.h — GET /metrics: the host's counters and histograms in Prometheus'
 * text exposition format (version 0.0.4).
 *
 * Every worker process adds each request it answered, once, at the end of the
 * pipeline, to tables in the host's shared memory segment (shm.h) under its
 * robust mutex; /metrics, served by whichever worker gets it, reads them all,
 * so one scrape sees the whole host. Prometheus scrapes every host; nothing
 * here is global (quotas are: they live in PostgreSQL, not here).
 *
 * Label cardinality is bounded by metrics.max_series: once that many label
 * sets exist, requests with a new one are counted in one overflow series
 * whose labels are all "__overflow__" (so are requests whose label values do
 * not fit the table's fields). Counts stay exact in total.
 *
 * Never reported: a key's secret or hash (api_key_id is the display prefix), a
 * JWT, prompt or completion text.
 *
 * Not here: the per-request JSON log line (access_log.c), usage rows (usage.c).
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include "common.h"
#include "shm.h"

struct tg_config;
struct tg_request;

/*
 * Adds r — its identity, model, status, usage, cost and timings — to the host's
 * metrics. Call once per request, after it was answered (rejected ones too).
 * A no-op when shared memory is not mapped.
 */
void tg_metrics_record(struct tg_request *r);

/*
 * GET /metrics. Refuses (403 permission_error, r->error set, TG_ERROR) a client
 * whose address (REMOTE_ADDR) is not in metrics.allow and that does not present
 * metrics.token as "Authorization: Bearer <token>"; otherwise answers the
 * exposition and returns what the write returned. 503 when shared memory is
 * not mapped.
 */
int tg_metrics_handle(struct tg_request *r);

/* ---- the parts below are pure, for tests ---- */

/* What one request adds. Strings are borrowed; NULL counts as "". */
struct tg_metrics_sample {
    const char *api_key_id;
    const char *user_id;
    const char *group_id;
    const char *model;
    const char *provider;
    int code;
    uint64_t tokens[TG_TOKENS_TYPES];
    int64_t cost_micros;        /* -1: not priced (not settled, or spooled) */
    int64_t duration_micros;    /* request start to end */
    int64_t upstream_micros;    /* -1: no upstream call */
    int64_t first_token_micros; /* -1: not a stream, or nothing was relayed */
    bool rejected_quota;        /* 429 from a PostgreSQL quota */
    bool rejected_bucket;       /* 429 from a token bucket */
};

/*
 * Adds one to m's count of requests whose reported usage passed their
 * reservation (tollgate_reservation_exceeded_total). TG_ERROR only when the
 * lock cannot be taken.
 */
int tg_metrics_add_reservation_exceeded(struct tg_shm_metrics *m);

/* Prepares m (zeroed, its robust mutex initialised). TG_OK or TG_ERROR. */
int tg_metrics_table_init(struct tg_shm_metrics *m);

/*
 * Adds sample s to m under m's lock: to its label set's series, or to the
 * overflow series when m already has max_series label sets (or a value does
 * not fit). TG_ERROR only when the lock cannot be taken.
 */
int tg_metrics_add(struct tg_shm_metrics *m, size_t max_series, const struct tg_metrics_sample *s);

/*
 * The exposition of m (snapshotted under its lock) and of the host's quota
 * alert count: a malloc'd NUL-terminated text the caller frees, *len its
 * length. NULL when out of memory or past the output cap.
 */
char *tg_metrics_render(struct tg_shm_metrics *m, uint64_t quota_alerts_total, size_t *len);

/*
 * Is the client address text (REMOTE_ADDR) in config's metrics.allow? An
 * IPv4-mapped IPv6 address ("::ffff:127.0.0.1") counts as its IPv4 address;
 * NULL or anything unparsable is not allowed.
 */
bool tg_metrics_address_allowed(const struct tg_config *config, const char *text);

#endif
