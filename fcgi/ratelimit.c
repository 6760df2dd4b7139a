/*
 * ratelimit.c — local token buckets in shared memory; global ones as JSON for
 * the reserve call.
 */
#include "ratelimit.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsafe.h"
#include "log.h"
#include "request.h"
#include "shm.h"

static struct tg_shm *shm;

int tg_ratelimit_init(const char *scope)
{
    return tg_shm_attach(scope, &shm);
}

void tg_ratelimit_use(struct tg_shm *table)
{
    shm = table;
}

static bool matches(const struct tg_rate_limit *rl, const struct tg_identity *id)
{
    if (rl->match_key != NULL &&
        (id->key_prefix == NULL || strcmp(rl->match_key, id->key_prefix) != 0))
        return false;
    if (rl->match_user != NULL && (id->user_id == NULL || strcmp(rl->match_user, id->user_id) != 0))
        return false;
    if (rl->match_group != NULL &&
        (id->group_id == NULL || strcmp(rl->match_group, id->group_id) != 0))
        return false;
    return true;
}

/* The route a per-route bucket counts: the endpoint's canonical path (route.c). */
static const char *route_of(const struct tg_request *r)
{
    return r->endpoint_path != NULL ? r->endpoint_path : r->path;
}

/* The bucket's subject for r, or NULL when the identity lacks it. */
static const char *subject(const struct tg_rate_limit *rl, struct tg_request *r)
{
    switch (rl->per) {
    case TG_RL_PER_KEY: return r->identity.key_prefix;
    case TG_RL_PER_USER: return r->identity.user_id;
    case TG_RL_PER_GROUP: return r->identity.group_id;
    /* the endpoint resolved, never the path as spelled: "/v1/messages/" is "/v1/messages" */
    case TG_RL_PER_ROUTE: return route_of(r);
    }
    return NULL;
}

int64_t tg_ratelimit_refill(struct tg_shm_bucket *b, const struct tg_rate_limit *rl, int64_t now_ms)
{
    if (b->last_fill_ms == 0) {
        b->tokens = rl->max_tokens;
        b->last_fill_ms = now_ms;
    }
    int64_t fills = (now_ms - b->last_fill_ms) / rl->fill_interval_ms;
    if (fills > 0) {
        int64_t room = rl->max_tokens - b->tokens;
        int64_t added = fills > room / rl->tokens_per_fill + 1 ? room : fills * rl->tokens_per_fill;
        b->tokens = b->tokens + added > rl->max_tokens ? rl->max_tokens : b->tokens + added;
        b->last_fill_ms += fills * rl->fill_interval_ms;
    }
    return b->last_fill_ms + rl->fill_interval_ms - now_ms;
}

/* The configured local rule a bucket's key ("rule:subject") belongs to, or NULL. */
static const struct tg_rate_limit *rule_of(const struct tg_config *c, const char *key)
{
    size_t rule_len = strcspn(key, ":");
    for (size_t i = 0; i < c->n_rate_limits; i++) {
        const struct tg_rate_limit *rl = &c->rate_limits[i];
        if (rl->mode == TG_RL_LOCAL && strlen(rl->name) == rule_len &&
            strncmp(rl->name, key, rule_len) == 0)
            return rl;
    }
    return NULL;
}

/*
 * May b's slot be given to another key? A bucket that, refilled to now, is full
 * carries no state (a new bucket starts full), and one of a rule no longer
 * configured is never read again. When it may not, *full_in_ms is lowered to
 * when it will be full.
 */
static bool reusable(const struct tg_config *c, struct tg_shm_bucket *b, int64_t now_ms,
                     int64_t *full_in_ms)
{
    const struct tg_rate_limit *rl = rule_of(c, b->key);
    if (rl == NULL)
        return true;
    tg_ratelimit_refill(b, rl, now_ms);
    if (b->tokens >= rl->max_tokens)
        return true;
    int64_t fills = (rl->max_tokens - b->tokens + rl->tokens_per_fill - 1) / rl->tokens_per_fill;
    int64_t full_in = b->last_fill_ms + fills * rl->fill_interval_ms - now_ms;
    if (full_in < *full_in_ms)
        *full_in_ms = full_in;
    return false;
}

/*
 * Finds or claims the slot for key (open addressing, bounded by the table).
 * A key not found is given the first reusable slot on its probe path, or else
 * the empty slot that ends it. A reused slot stays non-empty, so no other key's
 * probe path is cut and no key is ever held twice. NULL when the path holds
 * neither: *full_in_ms then says when the first bucket on it will be idle.
 */
static struct tg_shm_bucket *find_slot(const struct tg_config *c, const char *key, int64_t now_ms,
                                       int64_t *full_in_ms)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = key; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    struct tg_shm_bucket *claim = NULL;
    for (size_t probe = 0; probe < TG_SHM_BUCKETS; probe++) {
        struct tg_shm_bucket *b = &shm->buckets[(h + probe) % TG_SHM_BUCKETS];
        if (b->key[0] == '\0') {
            if (claim == NULL)
                claim = b;
            break;
        }
        if (strcmp(b->key, key) == 0)
            return b;
        if (claim == NULL && reusable(c, b, now_ms, full_in_ms))
            claim = b;
    }
    if (claim != NULL) {
        snprintf(claim->key, sizeof(claim->key), "%s", key);
        claim->tokens = 0;
        claim->last_fill_ms = 0;
    }
    return claim;
}

void tg_ratelimit_describe(const struct tg_config *config, const char *name, char *out, size_t size)
{
    size_t rule_len = strcspn(name, ":");
    for (size_t i = 0; i < config->n_rate_limits; i++) {
        const struct tg_rate_limit *rl = &config->rate_limits[i];
        if (strlen(rl->name) == rule_len && strncmp(rl->name, name, rule_len) == 0) {
            snprintf(out, size,
                     "rate limit \"%s\" exceeded (bucket of %lld requests, %lld more every "
                     "%lld ms)",
                     rl->name, (long long)rl->max_tokens, (long long)rl->tokens_per_fill,
                     (long long)rl->fill_interval_ms);
            return;
        }
    }
    snprintf(out, size, "rate limit \"%.*s\" exceeded", (int)rule_len, name);
}

static int deny(struct tg_request *r, const struct tg_rate_limit *rl, int64_t wait_ms)
{
    char message[200];
    tg_ratelimit_describe(r->config, rl->name, message, sizeof(message));
    tg_request_add_headerf(r, "retry-after", "%lld", (long long)((wait_ms + 999) / 1000));
    tg_request_fail(r, 429, "rate_limit_error", message, "local bucket %s empty", rl->name);
    r->outcome = "rate_limited";
    return TG_DECLINED;
}

/* No slot for rl's bucket: refused, never admitted unlimited. */
static int deny_table_full(struct tg_request *r, const struct tg_rate_limit *rl, int64_t full_in_ms)
{
    if (full_in_ms <= 0 || full_in_ms == INT64_MAX)
        full_in_ms = rl->fill_interval_ms;
    tg_log_error(r->request_id, "rate-limit table is full: rule \"%s\" refused the request",
                 rl->name);
    tg_request_add_headerf(r, "retry-after", "%lld", (long long)((full_in_ms + 999) / 1000));
    tg_request_fail(r, 429, "rate_limit_error",
                    "this host's rate-limit table is full: try again later",
                    "no slot for a bucket of rule %s", rl->name);
    r->outcome = "rate_limited";
    return TG_DECLINED;
}

int tg_ratelimit_take_local(struct tg_request *r)
{
    const struct tg_config *c = r->config;
    if (shm == NULL || c->n_rate_limits == 0)
        return TG_OK;
    struct tg_shm_bucket **taken = tg_arena_alloc(r->arena, c->n_rate_limits * sizeof(*taken));
    if (taken == NULL)
        return TG_ERROR;
    size_t n = 0;
    if (tg_shm_lock(shm) != TG_OK) {
        tg_log_error(r->request_id, "could not lock the rate-limit table");
        return TG_ERROR;
    }
    int64_t now = tg_now_ms();
    int rc = TG_OK;
    for (size_t i = 0; i < c->n_rate_limits; i++) {
        const struct tg_rate_limit *rl = &c->rate_limits[i];
        const char *who = subject(rl, r);
        if (rl->mode != TG_RL_LOCAL || who == NULL || !matches(rl, &r->identity))
            continue;
        char key[TG_SHM_BUCKET_KEY];
        snprintf(key, sizeof(key), "%s:%s", rl->name, who);
        int64_t full_in_ms = INT64_MAX;
        struct tg_shm_bucket *b = find_slot(c, key, now, &full_in_ms);
        if (b == NULL) {
            rc = deny_table_full(r, rl, full_in_ms);
            break;
        }
        int64_t wait_ms = tg_ratelimit_refill(b, rl, now);
        if (b->tokens < 1) {
            rc = deny(r, rl, wait_ms);
            break;
        }
        /* taken at once: a bucket no longer full is not reusable by the next rule's key */
        b->tokens--;
        taken[n++] = b;
    }
    if (rc != TG_OK) /* all or none */
        for (size_t i = 0; i < n; i++)
            taken[i]->tokens++;
    tg_shm_unlock(shm);
    return rc;
}

const char *tg_ratelimit_global_json(struct tg_request *r)
{
    static const char *const pers[] = {"key", "user", "group", "route"};
    const struct tg_config *c = r->config;
    json_t *list = NULL;
    for (size_t i = 0; i < c->n_rate_limits; i++) {
        const struct tg_rate_limit *rl = &c->rate_limits[i];
        if (rl->mode != TG_RL_GLOBAL)
            continue;
        if (list == NULL)
            list = json_array();
        json_t *b = json_pack(
            "{s:s, s:s, s:s, s:I, s:I, s:I}", "bucket", rl->name, "per", pers[rl->per], "route",
            route_of(r), "max_tokens", (json_int_t)rl->max_tokens, "tokens_per_fill",
            (json_int_t)rl->tokens_per_fill, "fill_interval_ms", (json_int_t)rl->fill_interval_ms);
        if (rl->match_key != NULL)
            json_object_set_new(b, "match_key", json_string(rl->match_key));
        if (rl->match_user != NULL)
            json_object_set_new(b, "match_user", json_string(rl->match_user));
        if (rl->match_group != NULL)
            json_object_set_new(b, "match_group", json_string(rl->match_group));
        json_array_append_new(list, b);
    }
    if (list == NULL)
        return NULL;
    char *text = tg_jsafe_dumps(list, JSON_COMPACT);
    json_decref(list);
    const char *copy = text != NULL ? tg_arena_strdup(r->arena, text) : NULL;
    free(text);
    return copy;
}
