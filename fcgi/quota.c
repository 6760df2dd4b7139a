/*
 * quota.c — estimate, reserve, deny, and the response headers.
 */
#include "quota.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "crypto.h"
#include "db.h"
#include "holder.h"
#include "log.h"
#include "metrics.h"
#include "otel.h"
#include "otel_span.h"
#include "ratelimit.h"
#include "request.h"
#include "shm.h"
#include "usage.h"

/*
 * Identities of keys that reserved successfully, for quotas.on_database_down =
 * "local_only" only: then a key seen before is trusted while PostgreSQL is down.
 */
#define KNOWN_KEYS 1024
struct known_key {
    unsigned char hash[TG_SHA256_LEN];
    int64_t api_key_id;
    char prefix[16], user_id[132], group_id[132], role[132];
    bool used;
};
static struct known_key known_keys[KNOWN_KEYS];
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;

int tg_quota_init(void)
{
    return tg_holder_init();
}

int64_t tg_quota_estimate_input(const struct tg_request *r)
{
    /* bound.c's bound, set with the body's checks; a body not bounded: its bytes */
    int64_t bound = r->input_bound_tokens > 0 ? r->input_bound_tokens : (int64_t)r->body_len;
    return r->config->estimator == TG_ESTIMATE_UPPER_BOUND ? bound : bound / 4 + 1;
}

static int64_t sum_capped(int64_t a, int64_t b)
{
    a = a > 0 ? a : 0;
    b = b > 0 ? b : 0;
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

void tg_quota_check_bound(struct tg_request *r)
{
    if (r->input_bound_tokens <= 0 || r->model == NULL)
        return; /* nothing was bounded */
    const struct tg_usage *u = &r->usage;
    int64_t input =
        sum_capped(sum_capped(u->input_tokens, u->cache_read_tokens), u->cache_write_tokens);
    if (input <= r->input_bound_tokens && u->output_tokens <= r->max_tokens &&
        u->web_search_requests <= r->max_web_searches)
        return;
    tg_log_warn(r->request_id,
                "reservation exceeded: provider \"%s\" reported %" PRId64
                " input tokens (bound %" PRId64 "), %" PRId64 " output tokens (max_tokens %" PRId64
                "), %" PRId64 " web searches (bound %" PRId64
                ") for model \"%s\", key %s, group %s; the usage row records what was reported",
                tg_request_provider(r), input, r->input_bound_tokens, u->output_tokens,
                r->max_tokens, u->web_search_requests, r->max_web_searches, r->model->name,
                r->identity.key_prefix != NULL ? r->identity.key_prefix : "-",
                r->identity.group_id != NULL ? r->identity.group_id : "-");
    struct tg_shm *shm = tg_shm_get();
    if (shm != NULL)
        tg_metrics_add_reservation_exceeded(&shm->metrics);
}

static size_t known_slot(const unsigned char *hash)
{
    size_t h;
    memcpy(&h, hash, sizeof(h));
    return h % KNOWN_KEYS;
}

static void remember_key(const struct tg_request *r, const unsigned char *hash)
{
    if (r->config->on_db_down != TG_DB_DOWN_LOCAL_ONLY)
        return;
    const struct tg_identity *id = &r->identity;
    pthread_mutex_lock(&known_lock);
    struct known_key *k = &known_keys[known_slot(hash)];
    memcpy(k->hash, hash, TG_SHA256_LEN);
    k->api_key_id = id->api_key_id;
    snprintf(k->prefix, sizeof(k->prefix), "%s", id->key_prefix ? id->key_prefix : "");
    snprintf(k->user_id, sizeof(k->user_id), "%s", id->user_id ? id->user_id : "");
    snprintf(k->group_id, sizeof(k->group_id), "%s", id->group_id ? id->group_id : "");
    snprintf(k->role, sizeof(k->role), "%s", id->role ? id->role : "");
    k->used = true;
    pthread_mutex_unlock(&known_lock);
}

/* A key the database refused (revoked, expired, unknown) must not be recalled. */
static void forget_key(const unsigned char *hash)
{
    pthread_mutex_lock(&known_lock);
    struct known_key *k = &known_keys[known_slot(hash)];
    if (k->used && tg_crypto_equal(k->hash, hash, TG_SHA256_LEN))
        k->used = false;
    pthread_mutex_unlock(&known_lock);
}

static bool recall_key(struct tg_request *r, const unsigned char *hash)
{
    bool found = false;
    pthread_mutex_lock(&known_lock);
    struct known_key *k = &known_keys[known_slot(hash)];
    if (k->used && tg_crypto_equal(k->hash, hash, TG_SHA256_LEN)) {
        r->identity.api_key_id = k->api_key_id;
        r->identity.key_prefix = tg_arena_strdup(r->arena, k->prefix);
        r->identity.user_id = tg_arena_strdup(r->arena, k->user_id);
        r->identity.group_id = tg_arena_strdup(r->arena, k->group_id);
        r->identity.role = tg_arena_strdup(r->arena, k->role);
        found = true;
    }
    pthread_mutex_unlock(&known_lock);
    return found;
}

static void describe_limit(const struct tg_db_reservation *q, char *out, size_t size)
{
    const char *metric = q->denied_metric != NULL ? q->denied_metric : "?";
    if (strcmp(metric, "usd") == 0) {
        char usd[32];
        tg_usage_format_usd(q->denied_limit, usd, sizeof(usd));
        snprintf(out, size, "%s USD", usd);
    } else {
        snprintf(out, size, "%" PRId64 " %s", q->denied_limit, metric);
    }
}

static int deny_quota(struct tg_request *r, const struct tg_db_reservation *q)
{
    char limit[64], message[256];
    describe_limit(q, limit, sizeof(limit));
    const char *window = q->denied_window != NULL ? q->denied_window : "?";
    if (strcmp(q->status, "rate_limited") == 0)
        tg_ratelimit_describe(r->config, q->denied_subject != NULL ? q->denied_subject : "?",
                              message, sizeof(message));
    else
        snprintf(message, sizeof(message), "quota exceeded: %s %s %s%s (limit %s)",
                 q->denied_subject != NULL ? q->denied_subject : "?",
                 q->denied_metric != NULL ? q->denied_metric : "?",
                 strcmp(window, "total") == 0 ? "in " : "per ", window, limit);
    if (q->retry_after_s >= 0)
        tg_request_add_headerf(r, "retry-after", "%" PRId64,
                               q->retry_after_s > 0 ? q->retry_after_s : 1);
    tg_request_fail(r, 429, "rate_limit_error", message, NULL);
    r->outcome = strcmp(q->status, "rate_limited") == 0 ? "rate_limited" : "quota_exceeded";
    return TG_ERROR;
}

/* The model has no price in force: its cost could not be reserved nor recorded. */
static int deny_unpriced(struct tg_request *r)
{
    char message[320];
    snprintf(message, sizeof(message),
             "model \"%s\" has no price: an operator must set one before it is served",
             r->model->name);
    tg_request_fail(r, 400, "invalid_request_error", message, "no price for model %s",
                    r->model->name);
    r->outcome = "rejected";
    return TG_ERROR;
}

static int deny_status(struct tg_request *r, const struct tg_db_reservation *q)
{
    if (strcmp(q->status, "quota_exceeded") == 0 || strcmp(q->status, "rate_limited") == 0)
        return deny_quota(r, q);
    if (strcmp(q->status, "unpriced_model") == 0)
        return deny_unpriced(r);
    return tg_auth_refuse(r, q->status, q->denied_subject);
}

/* A verified JWT stands on its own: while the database is down it names the caller. */
static bool recall_principal(struct tg_request *r)
{
    const struct tg_credential *c = r->credential;
    if (c->kind != TG_CRED_JWT || c->jwt.group_id[0] == '\0')
        return false;
    r->identity.user_id = tg_arena_strdup(r->arena, c->jwt.user_id);
    r->identity.group_id = tg_arena_strdup(r->arena, c->jwt.group_id);
    r->identity.role = tg_arena_strdup(r->arena, c->jwt.role[0] ? c->jwt.role : "user");
    return true;
}

/* The database is down: fail closed, or admit a key seen before on local buckets. */
static int database_down(struct tg_request *r)
{
    const struct tg_credential *c = r->credential;
    if (r->config->on_db_down == TG_DB_DOWN_LOCAL_ONLY &&
        (c->kind == TG_CRED_KEY ? recall_key(r, c->key_hash) : recall_principal(r))) {
        r->authenticated = true;
        tg_log_warn(r->request_id, "database unavailable: %s %s admitted on local rate limits only",
                    c->kind == TG_CRED_KEY ? "key" : "user",
                    c->kind == TG_CRED_KEY ? r->identity.key_prefix : r->identity.user_id);
        return TG_OK;
    }
    tg_request_fail(r, 503, "api_error", "the gateway's database is unavailable", "reserve failed");
    r->outcome = "database_unavailable";
    return TG_ERROR;
}

static int reserve(struct tg_request *r)
{
    struct tg_db_reservation *q = tg_arena_calloc(r->arena, sizeof(*q));
    if (q == NULL)
        return TG_ERROR;
    const struct tg_credential *c = r->credential;
    struct tg_db_who who;
    tg_auth_who(r, r->model->name, &who);
    int rc = tg_db_reserve(r, &who, tg_quota_estimate_input(r), r->max_tokens, tg_holder_name(),
                           r->config->reservation_ttl_ms, tg_ratelimit_global_json(r),
                           r->max_web_searches, q);
    if (rc == TG_DECLINED) { /* the database answered: an error, not an outage */
        tg_request_fail(r, 500, "api_error", "internal error", "reserve was refused");
        return TG_ERROR;
    }
    if (rc != TG_OK)
        return database_down(r);
    r->quota = q;
    tg_auth_note_attribution(r, q->who.attribution);
    bool key_refused = strcmp(q->status, "unknown_key") == 0 || strcmp(q->status, "revoked") == 0 ||
                       strcmp(q->status, "expired") == 0;
    if (c->kind == TG_CRED_KEY && key_refused)
        forget_key(c->key_hash);
    if (strcmp(q->status, "ok") != 0)
        return deny_status(r, q);
    r->authenticated = true;
    r->reserved = true;
    if (c->kind == TG_CRED_KEY && c->end_user == NULL && c->end_group == NULL)
        remember_key(r, c->key_hash);
    return TG_OK;
}

int tg_quota_reserve(struct tg_request *r)
{
    int64_t started_ns = tg_otel_now_ns();
    int rc = reserve(r);
    tg_otel_span_reserve(r, started_ns, rc); /* the trace's "tollgate.reserve" */
    return rc;
}

void tg_quota_release(struct tg_request *r)
{
    if (!r->reserved)
        return;
    if (tg_db_release(r) != TG_OK) {
        tg_log_warn(r->request_id, "could not release a reservation now: the sweeper will");
    } else if (r->quota != NULL) {
        /* the headers still to be sent should count what was just given back */
        if (r->quota->requests_remaining >= 0)
            r->quota->requests_remaining += 1;
        if (r->quota->tokens_remaining >= 0)
            r->quota->tokens_remaining += tg_quota_estimate_input(r) + r->max_tokens;
    }
    r->reserved = false;
}

void tg_quota_add_headers(struct tg_request *r)
{
    struct tg_db_reservation *q = r->quota;
    if (q == NULL || q->headers_added)
        return;
    q->headers_added = true;
    if (q->tokens_limit >= 0) {
        tg_request_add_headerf(r, "x-ratelimit-limit-tokens", "%" PRId64, q->tokens_limit);
        tg_request_add_headerf(r, "x-ratelimit-remaining-tokens", "%" PRId64, q->tokens_remaining);
        if (q->tokens_reset_s >= 0)
            tg_request_add_headerf(r, "x-ratelimit-reset-tokens", "%" PRId64, q->tokens_reset_s);
    }
    if (q->requests_limit >= 0) {
        tg_request_add_headerf(r, "x-ratelimit-limit-requests", "%" PRId64, q->requests_limit);
        tg_request_add_headerf(r, "x-ratelimit-remaining-requests", "%" PRId64,
                               q->requests_remaining);
        if (q->requests_reset_s >= 0)
            tg_request_add_headerf(r, "x-ratelimit-reset-requests", "%" PRId64,
                                   q->requests_reset_s);
    }
    if (q->warn_used_pct >= 0 && q->warn_metric != NULL) {
        char limit[32];
        if (strcmp(q->warn_metric, "usd") == 0)
            tg_usage_format_usd(q->warn_limit, limit, sizeof(limit));
        else
            snprintf(limit, sizeof(limit), "%" PRId64, q->warn_limit);
        tg_request_add_headerf(r, "x-tollgate-budget-warning",
                               "%" PRId64 "%% of %s %s used; resets %s", q->warn_used_pct, limit,
                               q->warn_metric, q->warn_reset != NULL ? q->warn_reset : "never");
    }
}
