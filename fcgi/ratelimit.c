/*
 * ratelimit.c — local token buckets in shared memory; global ones as JSON for
 * the reserve call.
 */
#include "ratelimit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "request.h"
#include "shm.h"

static struct tg_shm *shm;

int tg_ratelimit_init(const char *scope)
{
    return tg_shm_attach(scope, &shm);
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

/* The bucket's subject for r, or NULL when the identity lacks it. */
static const char *subject(const struct tg_rate_limit *rl, struct tg_request *r)
{
    switch (rl->per) {
    case TG_RL_PER_KEY: return r->identity.key_prefix;
    case TG_RL_PER_USER: return r->identity.user_id;
    case TG_RL_PER_GROUP: return r->identity.group_id;
    case TG_RL_PER_ROUTE: return r->path;
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

/* Finds or claims the slot for key (open addressing). NULL when the table is full. */
static struct tg_shm_bucket *find_slot(const char *key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = key; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (size_t probe = 0; probe < TG_SHM_BUCKETS; probe++) {
        struct tg_shm_bucket *b = &shm->buckets[(h + probe) % TG_SHM_BUCKETS];
        if (b->key[0] == '\0') {
            snprintf(b->key, sizeof(b->key), "%s", key);
            b->tokens = 0;
            b->last_fill_ms = 0;
            return b;
        }
        if (strcmp(b->key, key) == 0)
            return b;
    }
    return NULL;
}

struct pending {
    const struct tg_rate_limit *rule;
    struct tg_shm_bucket *bucket;
};

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

int tg_ratelimit_take_local(struct tg_request *r)
{
    const struct tg_config *c = r->config;
    struct pending pending[16];
    size_t n = 0;
    if (shm == NULL)
        return TG_OK;
    if (tg_shm_lock(shm) != TG_OK) {
        tg_log_error(r->request_id, "could not lock the rate-limit table");
        return TG_ERROR;
    }
    int64_t now = tg_now_ms();
    int rc = TG_OK;
    for (size_t i = 0; i < c->n_rate_limits && n < TG_ARRAY_LEN(pending); i++) {
        const struct tg_rate_limit *rl = &c->rate_limits[i];
        const char *who = subject(rl, r);
        if (rl->mode != TG_RL_LOCAL || who == NULL || !matches(rl, &r->identity))
            continue;
        char key[TG_SHM_BUCKET_KEY];
        snprintf(key, sizeof(key), "%s:%s", rl->name, who);
        struct tg_shm_bucket *b = find_slot(key);
        if (b == NULL) {
            tg_log_error(r->request_id, "rate-limit table is full: rule \"%s\" not enforced",
                         rl->name);
            continue;
        }
        int64_t wait_ms = tg_ratelimit_refill(b, rl, now);
        if (b->tokens < 1) {
            rc = deny(r, rl, wait_ms);
            break;
        }
        pending[n++] = (struct pending){rl, b};
    }
    if (rc == TG_OK)
        for (size_t i = 0; i < n; i++)
            pending[i].bucket->tokens--;
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
            r->path, "max_tokens", (json_int_t)rl->max_tokens, "tokens_per_fill",
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
    char *text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    const char *copy = text != NULL ? tg_arena_strdup(r->arena, text) : NULL;
    free(text);
    return copy;
}
