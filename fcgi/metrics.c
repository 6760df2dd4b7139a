/*
 * metrics.c — the host's request metrics in shared memory, and GET /metrics.
 *
 * Writers (every request of every worker) and the reader (a scrape) share one
 * robust mutex: a request holds it for a table probe and a few additions, a
 * scrape only while it copies the table out, so a scrape is one consistent
 * snapshot and never a long pause for requests. Formatting happens after.
 *
 * Money and durations are integers inside (micro-dollars, microseconds) and
 * are printed as exact decimals with integer arithmetic, never through a
 * double: a counter that Prometheus sums must not drift by rounding.
 */
#include "metrics.h"
#include "metrics_backends.h"
#include "metrics_mcp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "capacity.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "netaddr.h"
#include "otel.h"
#include "preauth.h"
#include "prom.h"
#include "request.h"
#include "usage.h"
#include "textbuf.h"

#define OVERFLOW_LABEL "__overflow__"
#define OUTPUT_CAP (64u << 20) /* a full table prints well under this */

/* ---- the table ---- */

int tg_metrics_table_init(struct tg_shm_metrics *m)
{
    memset(m, 0, sizeof(*m));
    return tg_shm_mutex_init(&m->lock);
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static bool fits(const char *value, size_t field_size)
{
    return strlen(or_empty(value)) < field_size;
}

static uint64_t hash_labels(const struct tg_metrics_sample *s)
{
    const char *fields[] = {s->api_key_id, s->user_id, s->group_id, s->model, s->provider};
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, fields NUL-separated */
    for (size_t i = 0; i < TG_ARRAY_LEN(fields); i++) {
        for (const char *p = or_empty(fields[i]); *p != '\0'; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h *= 1099511628211ULL;
    }
    return (h ^ (uint32_t)s->code) * 1099511628211ULL;
}

static bool same_labels(const struct tg_shm_series *x, const struct tg_metrics_sample *s)
{
    return x->code == s->code && strcmp(x->api_key_id, or_empty(s->api_key_id)) == 0 &&
           strcmp(x->user_id, or_empty(s->user_id)) == 0 &&
           strcmp(x->group_id, or_empty(s->group_id)) == 0 &&
           strcmp(x->model, or_empty(s->model)) == 0 &&
           strcmp(x->provider, or_empty(s->provider)) == 0;
}

/* The series of s's label set, claimed if new; the overflow series when there is no room. */
static struct tg_shm_series *series_for(struct tg_shm_metrics *m, size_t max_series,
                                        const struct tg_metrics_sample *s)
{
    if (!fits(s->api_key_id, TG_SHM_LABEL_KEY) || !fits(s->user_id, TG_SHM_LABEL_ID) ||
        !fits(s->group_id, TG_SHM_LABEL_ID) || !fits(s->model, TG_SHM_LABEL_MODEL) ||
        !fits(s->provider, TG_SHM_LABEL_PROVIDER))
        return &m->overflow;
    uint64_t h = hash_labels(s);
    for (size_t probe = 0; probe < TG_SHM_SERIES_SLOTS; probe++) {
        uint16_t *slot = &m->index[(h + probe) % TG_SHM_SERIES_SLOTS];
        if (*slot == 0) {
            if (m->n_series >= max_series || m->n_series >= TG_SHM_SERIES)
                return &m->overflow;
            struct tg_shm_series *x = &m->series[m->n_series];
            memset(x, 0, sizeof(*x));
            snprintf(x->api_key_id, sizeof(x->api_key_id), "%s", or_empty(s->api_key_id));
            snprintf(x->user_id, sizeof(x->user_id), "%s", or_empty(s->user_id));
            snprintf(x->group_id, sizeof(x->group_id), "%s", or_empty(s->group_id));
            snprintf(x->model, sizeof(x->model), "%s", or_empty(s->model));
            snprintf(x->provider, sizeof(x->provider), "%s", or_empty(s->provider));
            x->code = s->code;
            /* claimed before it is indexed: a writer dying here leaves an unused row */
            m->n_series++;
            *slot = (uint16_t)m->n_series;
            return x;
        }
        if (*slot > m->n_series || *slot > TG_SHM_SERIES)
            return &m->overflow; /* torn by a writer that died: do not follow it */
        struct tg_shm_series *x = &m->series[*slot - 1];
        if (same_labels(x, s))
            return x;
    }
    return &m->overflow;
}

static void observe(struct tg_shm_histogram *h, int64_t micros)
{
    if (micros < 0)
        micros = 0;
    h->buckets[tg_prom_bucket(micros)]++;
    h->sum_micros += (uint64_t)micros;
}

int tg_metrics_add(struct tg_shm_metrics *m, size_t max_series, const struct tg_metrics_sample *s)
{
    if (tg_shm_mutex_lock(&m->lock) != TG_OK)
        return TG_ERROR;
    struct tg_shm_series *x = series_for(m, max_series, s);
    x->requests++;
    for (size_t t = 0; t < TG_TOKENS_TYPES; t++)
        x->tokens[t] += s->tokens[t];
    if (s->cost_micros > 0)
        x->cost_micros += (uint64_t)s->cost_micros;
    observe(&m->request_duration, s->duration_micros);
    if (s->upstream_micros >= 0)
        observe(&m->upstream_duration, s->upstream_micros);
    if (s->first_token_micros >= 0)
        observe(&m->time_to_first_token, s->first_token_micros);
    m->rejected_quota += s->rejected_quota;
    m->rejected_bucket += s->rejected_bucket;
    tg_shm_mutex_unlock(&m->lock);
    return TG_OK;
}

int tg_metrics_add_reservation_exceeded(struct tg_shm_metrics *m)
{
    if (tg_shm_mutex_lock(&m->lock) != TG_OK)
        return TG_ERROR;
    m->reservation_exceeded++;
    tg_shm_mutex_unlock(&m->lock);
    return TG_OK;
}

/* ---- the exposition ---- */

/* What a scrape copies out under the lock. */
struct snapshot {
    struct tg_shm_series *series; /* n of them, sorted by labels */
    size_t n;
    struct tg_shm_series overflow;
    struct tg_shm_histogram histograms[3];
    uint64_t rejected_quota, rejected_bucket;
    uint64_t reservation_exceeded;
};

static int compare_identity(const struct tg_shm_series *a, const struct tg_shm_series *b)
{
    int c = strcmp(a->api_key_id, b->api_key_id);
    if (c == 0)
        c = strcmp(a->user_id, b->user_id);
    if (c == 0)
        c = strcmp(a->group_id, b->group_id);
    if (c == 0)
        c = strcmp(a->model, b->model);
    if (c == 0)
        c = strcmp(a->provider, b->provider);
    return c;
}

static int compare_series(const void *pa, const void *pb)
{
    const struct tg_shm_series *a = pa, *b = pb;
    int c = compare_identity(a, b);
    return c != 0 ? c : (a->code > b->code) - (a->code < b->code);
}

/* A copy's strings end inside their fields, whatever a dead writer left. */
static void terminate(struct tg_shm_series *x)
{
    x->api_key_id[sizeof(x->api_key_id) - 1] = '\0';
    x->user_id[sizeof(x->user_id) - 1] = '\0';
    x->group_id[sizeof(x->group_id) - 1] = '\0';
    x->model[sizeof(x->model) - 1] = '\0';
    x->provider[sizeof(x->provider) - 1] = '\0';
}

static int take_snapshot(struct tg_shm_metrics *m, struct snapshot *snap)
{
    memset(snap, 0, sizeof(*snap));
    /* sized before locking: a scrape never allocates while writers wait */
    snap->series = malloc(TG_SHM_SERIES * sizeof(*snap->series));
    if (snap->series == NULL)
        return TG_ERROR;
    if (tg_shm_mutex_lock(&m->lock) != TG_OK) {
        free(snap->series);
        return TG_ERROR;
    }
    snap->n = m->n_series < TG_SHM_SERIES ? m->n_series : TG_SHM_SERIES;
    memcpy(snap->series, m->series, snap->n * sizeof(*snap->series));
    snap->overflow = m->overflow;
    snap->histograms[0] = m->request_duration;
    snap->histograms[1] = m->upstream_duration;
    snap->histograms[2] = m->time_to_first_token;
    snap->rejected_quota = m->rejected_quota;
    snap->rejected_bucket = m->rejected_bucket;
    snap->reservation_exceeded = m->reservation_exceeded;
    tg_shm_mutex_unlock(&m->lock);
    for (size_t i = 0; i < snap->n; i++)
        terminate(&snap->series[i]);
    qsort(snap->series, snap->n, sizeof(*snap->series), compare_series);
    return TG_OK;
}

static void put_label(struct tg_textbuf *t, const char *name, const char *value, bool first)
{
    char escaped[2 * TG_SHM_LABEL_ID + 1];
    tg_prom_escape_label(value, escaped, sizeof(escaped));
    tg_textbuf_put(t, "%s%s=\"%s\"", first ? "" : ",", name, escaped);
}

/* The identity, model and provider labels of x, without the closing brace. */
static void put_identity(struct tg_textbuf *t, const struct tg_shm_series *x, bool overflow)
{
    tg_textbuf_put(t, "{");
    put_label(t, "api_key_id", overflow ? OVERFLOW_LABEL : x->api_key_id, true);
    put_label(t, "user_id", overflow ? OVERFLOW_LABEL : x->user_id, false);
    put_label(t, "group_id", overflow ? OVERFLOW_LABEL : x->group_id, false);
    put_label(t, "model", overflow ? OVERFLOW_LABEL : x->model, false);
    put_label(t, "provider", overflow ? OVERFLOW_LABEL : x->provider, false);
}

static void put_family(struct tg_textbuf *t, const char *name, const char *type, const char *help)
{
    tg_textbuf_put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_requests(struct tg_textbuf *t, const struct tg_shm_series *x, bool overflow)
{
    tg_textbuf_put(t, "tollgate_requests_total");
    put_identity(t, x, overflow);
    if (overflow)
        tg_textbuf_put(t, ",code=\"" OVERFLOW_LABEL "\"} %" PRIu64 "\n", x->requests);
    else
        tg_textbuf_put(t, ",code=\"%d\"} %" PRIu64 "\n", (int)x->code, x->requests);
}

static const char *const token_types[TG_TOKENS_TYPES] = {"input", "output", "cache_read",
                                                         "cache_write"};

static bool has_usage(const struct tg_shm_series *x)
{
    for (size_t i = 0; i < TG_TOKENS_TYPES; i++)
        if (x->tokens[i] > 0)
            return true;
    return x->cost_micros > 0;
}

/*
 * Tokens and cost carry no code label: each run of series with the same
 * identity (adjacent once sorted) is summed into one. calls fn per sum.
 */
static void for_each_identity(const struct snapshot *snap, struct tg_textbuf *t,
                              void (*fn)(struct tg_textbuf *, const struct tg_shm_series *, bool))
{
    for (size_t i = 0; i < snap->n;) {
        struct tg_shm_series sum = snap->series[i];
        size_t j = i + 1;
        for (; j < snap->n && compare_identity(&snap->series[j], &sum) == 0; j++) {
            for (size_t k = 0; k < TG_TOKENS_TYPES; k++)
                sum.tokens[k] += snap->series[j].tokens[k];
            sum.cost_micros += snap->series[j].cost_micros;
        }
        if (has_usage(&sum))
            fn(t, &sum, false);
        i = j;
    }
    if (has_usage(&snap->overflow))
        fn(t, &snap->overflow, true);
}

static void put_tokens(struct tg_textbuf *t, const struct tg_shm_series *x, bool overflow)
{
    for (size_t k = 0; k < TG_TOKENS_TYPES; k++) {
        tg_textbuf_put(t, "tollgate_tokens_consumed_total");
        put_identity(t, x, overflow);
        tg_textbuf_put(t, ",type=\"%s\"} %" PRIu64 "\n", token_types[k], x->tokens[k]);
    }
}

static void put_cost(struct tg_textbuf *t, const struct tg_shm_series *x, bool overflow)
{
    char usd[32];
    tg_usage_format_usd((int64_t)x->cost_micros, usd, sizeof(usd));
    tg_textbuf_put(t, "tollgate_cost_usd_total");
    put_identity(t, x, overflow);
    tg_textbuf_put(t, "} %s\n", usd);
}

static void put_histogram(struct tg_textbuf *t, const char *name, const char *help,
                          const struct tg_shm_histogram *h)
{
    put_family(t, name, "histogram", help);
    tg_prom_histogram(t, name, h);
}

static void render(struct tg_textbuf *t, const struct snapshot *snap, uint64_t quota_alerts_total)
{
    put_family(t, "tollgate_requests_total", "counter",
               "Requests answered, by caller (api_key_id is the key's display prefix), model, "
               "provider and HTTP status.");
    for (size_t i = 0; i < snap->n; i++)
        put_requests(t, &snap->series[i], false);
    if (snap->overflow.requests > 0)
        put_requests(t, &snap->overflow, true);

    put_family(t, "tollgate_tokens_consumed_total", "counter",
               "Tokens the providers reported, by caller, model, provider and type.");
    for_each_identity(snap, t, put_tokens);

    put_family(t, "tollgate_cost_usd_total", "counter",
               "Cost of the settled requests in US dollars, by caller, model and provider.");
    for_each_identity(snap, t, put_cost);

    put_histogram(t, "tollgate_request_duration_seconds",
                  "Time from the request's arrival to the end of its answer.",
                  &snap->histograms[0]);
    put_histogram(t, "tollgate_upstream_duration_seconds",
                  "Duration of the provider call, for requests that made one.",
                  &snap->histograms[1]);
    put_histogram(t, "tollgate_time_to_first_token_seconds",
                  "Streams: time from the request's arrival to the first byte relayed from "
                  "the provider.",
                  &snap->histograms[2]);

    put_family(t, "tollgate_ratelimit_rejections_total", "counter",
               "Requests refused with 429: limit=\"quota\" by a PostgreSQL quota, "
               "limit=\"bucket\" by a token bucket.");
    tg_textbuf_put(t, "tollgate_ratelimit_rejections_total{limit=\"quota\"} %" PRIu64 "\n",
                   snap->rejected_quota);
    tg_textbuf_put(t, "tollgate_ratelimit_rejections_total{limit=\"bucket\"} %" PRIu64 "\n",
                   snap->rejected_bucket);

    put_family(t, "tollgate_quota_alerts_total", "counter",
               "Quota threshold crossings raised by this host's settlements.");
    tg_textbuf_put(t, "tollgate_quota_alerts_total %" PRIu64 "\n", quota_alerts_total);

    put_family(t, "tollgate_reservation_exceeded_total", "counter",
               "Requests whose provider-reported usage passed the upper bound reserved for "
               "them (the usage row records what was reported).");
    tg_textbuf_put(t, "tollgate_reservation_exceeded_total %" PRIu64 "\n",
                   snap->reservation_exceeded);

    put_family(t, "tollgate_metrics_series", "gauge",
               "Label sets of tollgate_requests_total in use; beyond metrics.max_series "
               "requests go to the series labelled \"__overflow__\".");
    tg_textbuf_put(t, "tollgate_metrics_series %zu\n", snap->n);
}

char *tg_metrics_render(struct tg_shm_metrics *m, uint64_t quota_alerts_total, size_t *len)
{
    struct snapshot snap;
    if (take_snapshot(m, &snap) != TG_OK)
        return NULL;
    struct tg_textbuf t;
    tg_textbuf_init(&t, 16384, OUTPUT_CAP);
    render(&t, &snap, quota_alerts_total);
    free(snap.series);
    return tg_textbuf_take(&t, len);
}

/* ---- the request side ---- */

static uint64_t count_of(int64_t tokens)
{
    return tokens > 0 ? (uint64_t)tokens : 0;
}

void tg_metrics_record(struct tg_request *r)
{
    struct tg_shm *shm = tg_shm_get();
    if (shm == NULL)
        return;
    const struct tg_usage *u = &r->usage;
    /* a provider that was never reached still took the time of trying */
    bool upstream = r->upstream_contacted || strncmp(r->outcome, "upstream_", 9) == 0;
    struct tg_metrics_sample s = {
        .api_key_id = r->identity.key_prefix,
        .user_id = r->identity.user_id,
        .group_id = r->identity.group_id,
        .model = r->model != NULL ? r->model->name : NULL,
        .provider = tg_request_provider(r),
        .code = r->status,
        .tokens = {count_of(u->input_tokens), count_of(u->output_tokens),
                   count_of(u->cache_read_tokens), count_of(u->cache_write_tokens)},
        .cost_micros = r->cost_micros,
        .duration_micros = (tg_now_ms() - r->t_start_ms) * 1000,
        .upstream_micros = upstream ? r->upstream_ms * 1000 : -1,
        .first_token_micros =
            r->stream && r->t_first_byte_ms > 0 ? (r->t_first_byte_ms - r->t_start_ms) * 1000 : -1,
        .rejected_quota = strcmp(r->outcome, "quota_exceeded") == 0,
        .rejected_bucket = strcmp(r->outcome, "rate_limited") == 0,
    };
    if (tg_metrics_add(&shm->metrics, r->config->metrics_max_series, &s) != TG_OK)
        tg_log_error(r->request_id, "could not lock the metrics table: request not counted");
}

bool tg_metrics_address_allowed(const struct tg_config *c, const char *text)
{
    return tg_netaddr_allowed(c->metrics_allow, c->n_metrics_allow, text);
}

/* "Authorization: Bearer <metrics.token>", compared by hash in constant time. */
static bool token_presented(struct tg_request *r)
{
    const char *auth = tg_request_header(r, "authorization");
    if (!r->config->metrics_token_set || auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    unsigned char hash[TG_METRICS_TOKEN_HASH_LEN];
    tg_crypto_sha256(auth + 7, strlen(auth + 7), hash);
    return tg_crypto_equal(hash, r->config->metrics_token_hash, sizeof(hash));
}

/*
 * tollgate_quota_used_ratio comes from PostgreSQL at scrape time, not from this
 * host's counters: quotas are shared by every host, and the database holds the
 * exact figure. The QUOTA_SERIES most used quotas are listed (bounded
 * cardinality); while the database is down the family has no samples.
 */
#define QUOTA_SERIES 500

static const char quota_ratio_sql[] =
    "SELECT subject_kind || ':' || subject, metric::text, \"window\"::text,"
    "       CASE WHEN limit_value = 0 THEN 1 ELSE round(used::numeric / limit_value, 6) END::text"
    "  FROM tollgate.quota_list"
    " ORDER BY CASE WHEN limit_value = 0 THEN 1 ELSE used::numeric / limit_value END DESC, id"
    " LIMIT $1::int";

static void put_quota_ratios(struct tg_request *r, struct tg_textbuf *t)
{
    put_family(t, "tollgate_quota_used_ratio", "gauge",
               "Share of each quota's limit used in its current window (all hosts).");
    struct tg_db_rows rows;
    char sqlstate[6], err[256];
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", QUOTA_SERIES);
    const char *params[] = {limit};
    if (tg_db_call(r, quota_ratio_sql, 1, params, true, &rows, sqlstate, err, sizeof(err)) !=
        TG_OK) {
        tg_log_warn(r->request_id, "metrics: quota ratios unavailable: %s",
                    err[0] != '\0' ? err : "database unavailable");
        return;
    }
    for (int i = 0; i < rows.n_rows; i++) {
        const char *const *c = rows.cells + i * rows.n_cols;
        if (c[0] == NULL || c[1] == NULL || c[2] == NULL || c[3] == NULL)
            continue;
        tg_textbuf_put(t, "tollgate_quota_used_ratio{");
        put_label(t, "subject", c[0], true);
        put_label(t, "metric", c[1], false);
        put_label(t, "window", c[2], false);
        tg_textbuf_put(t, "} %s\n", c[3]);
    }
}

/* The worker processes and their threads, from the slots in shared memory (capacity.h). */
static void put_workers(struct tg_textbuf *t)
{
    struct tg_capacity_counts c;
    tg_capacity_count(NULL, &c);
    static const struct {
        const char *name, *type, *help;
    } families[] = {
        {"tollgate_workers_configured", "gauge", "Worker processes the master keeps running."},
        {"tollgate_workers_alive", "gauge", "Worker processes up (forked, threads running)."},
        {"tollgate_worker_threads", "gauge",
         "Threads of the live workers: server.threads each, plus one spare."},
        {"tollgate_worker_threads_busy", "gauge", "Threads serving a request now."},
        {"tollgate_requests_admitted", "gauge",
         "Requests admitted now (all but /health and /metrics)."},
        {"tollgate_requests_capacity", "gauge", "Requests the host admits at most at once."},
        {"tollgate_overload_rejections_total", "counter",
         "Requests answered 503 because every request thread of the host was busy."},
        {"tollgate_workers_respawned_total", "counter", "Worker processes the master replaced."},
    };
    uint64_t values[] = {(uint64_t)c.configured,
                         (uint64_t)c.alive,
                         (uint64_t)c.threads_total,
                         (uint64_t)c.threads_busy,
                         (uint64_t)c.admitted,
                         (uint64_t)c.capacity,
                         c.refused,
                         c.respawned};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        put_family(t, families[i].name, families[i].type, families[i].help);
        tg_textbuf_put(t, "%s %" PRIu64 "\n", families[i].name, values[i]);
    }
}

int tg_metrics_handle(struct tg_request *r)
{
    const char *client = tg_request_param(r, "REMOTE_ADDR");
    if (!tg_metrics_address_allowed(r->config, client) && !token_presented(r)) {
        tg_request_fail(r, 403, "permission_error", "not allowed to read metrics",
                        "client \"%s\" is not in metrics.allow and sent no valid metrics token",
                        client != NULL ? client : "?");
        return TG_ERROR;
    }
    struct tg_shm *shm = tg_shm_get();
    if (shm == NULL) {
        tg_request_fail(r, 503, tg_request_error_type(r->dialect, 503), "metrics are unavailable",
                        "shared memory is not mapped");
        return TG_ERROR;
    }
    size_t len = 0;
    uint64_t alerts = __atomic_load_n(&shm->quota_alerts_total, __ATOMIC_RELAXED);
    char *text = tg_metrics_render(&shm->metrics, alerts, &len);
    if (text == NULL || tg_arena_cleanup_add(r->arena, free, text) != TG_OK) {
        tg_request_fail(r, 500, "api_error", "internal error",
                        "could not render the metrics (out of memory or locked)");
        return TG_ERROR;
    }
    struct tg_textbuf quota;
    tg_textbuf_init(&quota, 4096, OUTPUT_CAP);
    if (!quota.failed) {
        put_family(&quota, "tollgate_usage_dead_letters_total", "counter",
                   "Usage records this host put in the spool's dead letter "
                   "(refused by PostgreSQL or failing validation).");
        tg_textbuf_put(&quota, "tollgate_usage_dead_letters_total %" PRIu64 "\n",
                       __atomic_load_n(&shm->usage_dead_letters_total, __ATOMIC_RELAXED));
        char preauth[1024];
        tg_preauth_metrics_text(preauth, sizeof(preauth));
        tg_textbuf_put(&quota, "%s", preauth);
        char otel[1024];
        tg_otel_metrics_text(otel, sizeof(otel));
        tg_textbuf_put(&quota, "%s", otel);
        put_quota_ratios(r, &quota);
        put_workers(&quota);
        size_t backends_len = 0;
        char *backends = tg_metrics_backends_text(shm, r->config, &backends_len);
        if (backends == NULL)
            quota.failed = true;
        else if (backends_len > 0)
            tg_textbuf_put(&quota, "%.*s", (int)backends_len, backends);
        free(backends);
        size_t mcp_len = 0;
        char *mcp = tg_metrics_mcp_text(&shm->mcp, &mcp_len);
        if (mcp == NULL)
            quota.failed = true;
        else
            tg_textbuf_put(&quota, "%.*s", (int)mcp_len, mcp);
        free(mcp);
    }
    size_t extra_len = 0;
    char *extra = tg_textbuf_take(&quota, &extra_len);
    char *body = extra != NULL ? tg_arena_alloc(r->arena, len + extra_len) : NULL;
    if (body != NULL) {
        memcpy(body, text, len);
        memcpy(body + len, extra, extra_len);
    }
    free(extra);
    if (body == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "could not render quota ratios");
        return TG_ERROR;
    }
    tg_request_add_header(r, "Cache-Control", "no-store");
    return tg_request_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", body,
                              len + extra_len);
}
