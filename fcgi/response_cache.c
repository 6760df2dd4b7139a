/*
 * response_cache.c — the cache step of the pipeline: which requests are
 * cacheable, their key, a hit's answer, a miss's reply stored.
 */
#include "response_cache.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cache_stream.h"
#include "config.h"
#include "crypto.h"
#include "jsafe.h"
#include "log.h"
#include "request.h"
#include "usage.h"

/* What an entry carries besides the reply: its usage, its type, its scope (for purges). */
struct meta {
    struct tg_usage usage;
    char content_type[64];
    char scope[128];
};

_Static_assert(sizeof(struct meta) <= TG_CACHE_META_BYTES, "the entry's metadata must fit");

static struct tg_cache *store;

int tg_response_cache_init(const struct tg_config *c, const char *scope)
{
    if (!c->cache.enabled)
        return TG_OK;
    return tg_cache_attach(scope, c->cache.max_bytes, &store); /* its own segment name */
}

/* The scope a request's entries belong to: "key:7", "user:u", "group:g" or "". */
static void scope_of(const struct tg_request *r, char *out, size_t size)
{
    const struct tg_identity *id = &r->identity;
    switch (r->config->cache.scope) {
    case TG_CACHE_SCOPE_KEY:
        if (id->api_key_id != 0) {
            snprintf(out, size, "key:%" PRId64, id->api_key_id);
            break;
        }
        /* a JWT caller has no key: its user is the narrowest scope */
        /* fall through */
    case TG_CACHE_SCOPE_USER: snprintf(out, size, "user:%s", id->user_id ? id->user_id : ""); break;
    case TG_CACHE_SCOPE_GROUP:
        snprintf(out, size, "group:%s", id->group_id ? id->group_id : "");
        break;
    case TG_CACHE_SCOPE_GLOBAL: snprintf(out, size, "%s", ""); break;
    }
}

/*
 * Whether the answer to r can be reused: embeddings; a chat request at
 * temperature 0. A stream request is looked up too (its key ignores stream):
 * a hit is replayed as a stream (cache_stream.c).
 */
static bool cacheable(const struct tg_request *r)
{
    if (store == NULL || r->doc == NULL)
        return false;
    if (r->endpoint == TG_EP_EMBEDDINGS)
        return !r->stream;
    if (r->endpoint != TG_EP_MESSAGES && r->endpoint != TG_EP_CHAT_COMPLETIONS)
        return false;
    if (r->config->cache.nonzero_temperature)
        return true;
    json_t *t = json_object_get(r->doc, "temperature");
    return json_is_number(t) && json_number_value(t) == 0.0;
}

/* SHA-256 of the endpoint, the scope and the normalized body. TG_ERROR: out of memory. */
static int key_of(struct tg_request *r, const char *scope, unsigned char key[TG_SHA256_LEN])
{
    json_t *norm = json_deep_copy(r->doc);
    static const char *const ignored[] = {"stream", "stream_options", "metadata", "user"};
    for (size_t i = 0; norm != NULL && i < TG_ARRAY_LEN(ignored); i++)
        json_object_del(norm, ignored[i]);
    if (norm == NULL || json_object_set_new(norm, "model", json_string(r->model->name)) != 0) {
        json_decref(norm);
        return TG_ERROR;
    }
    char *canon = tg_jsafe_dumps(norm, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(norm);
    char *text = canon != NULL ? tg_arena_printf(r->arena, "tollgate-cache-v1\n%s\n%s\n%s",
                                                 r->endpoint_path, scope, canon)
                               : NULL;
    free(canon);
    if (text == NULL)
        return TG_ERROR;
    tg_crypto_sha256(text, strlen(text), key);
    return TG_OK;
}

/* The synthesized stream's bytes, growing up to cap. */
struct replay {
    char *buf;
    size_t len, size, cap;
};

static int replay_write(void *ctx, const char *bytes, size_t len)
{
    struct replay *out = ctx;
    if (out->len + len > out->cap)
        return TG_ERROR;
    if (out->len + len > out->size) {
        size_t size = out->size == 0 ? 16384 : out->size;
        while (size < out->len + len)
            size *= 2;
        char *grown = realloc(out->buf, size);
        if (grown == NULL)
            return TG_ERROR;
        out->buf = grown;
        out->size = size;
    }
    memcpy(out->buf + out->len, bytes, len);
    out->len += len;
    return TG_OK;
}

/*
 * A hit's stored reply (*value, *len) replaced by the stream the client asked
 * for, in r->arena. The stream is larger than the reply (frames, escaped tool
 * input): capped at twice max_response_bytes and 64 KiB. TG_OK, or not.
 */
static int replay_as_stream(struct tg_request *r, char **value, size_t *len)
{
    struct tg_cache_stream_opts opts = {
        .openai = r->dialect == TG_DIALECT_OPENAI,
        .include_usage = json_is_true(
            json_object_get(json_object_get(r->doc, "stream_options"), "include_usage")),
    };
    struct replay out = {.cap = 2 * r->config->max_response_bytes + 65536};
    int rc = tg_cache_stream_write(*value, *len, &opts, replay_write, &out);
    char *copy = rc == TG_OK ? tg_arena_alloc(r->arena, out.len + 1) : NULL;
    if (copy != NULL) {
        memcpy(copy, out.buf, out.len);
        copy[out.len] = '\0';
        *value = copy;
        *len = out.len;
    }
    free(out.buf);
    return copy != NULL ? TG_OK : TG_ERROR;
}

int tg_response_cache_lookup(struct tg_request *r, const char **body, size_t *len,
                             const char **type)
{
    if (!cacheable(r))
        return TG_DECLINED;
    char scope[128];
    scope_of(r, scope, sizeof(scope));
    if (key_of(r, scope, r->cache_key) != TG_OK)
        return TG_DECLINED;
    size_t cap = r->config->max_response_bytes;
    char *value = tg_arena_alloc(r->arena, cap + 1);
    struct meta m;
    size_t got = 0;
    if (value == NULL ||
        tg_cache_get(store, r->cache_key, tg_now_ms(), value, cap, &got, &m, sizeof(m)) != TG_OK) {
        r->cache_miss = true;
        tg_request_add_header(r, "x-tollgate-cache", "miss");
        return TG_DECLINED;
    }
    value[got] = '\0';
    m.content_type[sizeof(m.content_type) - 1] = '\0';
    if (r->stream) {
        if (replay_as_stream(r, &value, &got) != TG_OK) {
            tg_log_warn(r->request_id, "could not replay a cached reply as a stream");
            r->cache_miss = true; /* forwarded; a stream's reply is not stored */
            tg_request_add_header(r, "x-tollgate-cache", "miss");
            return TG_DECLINED;
        }
        snprintf(m.content_type, sizeof(m.content_type), "%s", "text/event-stream; charset=utf-8");
        tg_request_add_header(r, "Cache-Control", "no-cache");
    }
    r->usage = m.usage;
    r->outcome = "cache_hit";
    r->cost_micros = 0;
    tg_request_add_header(r, "x-tollgate-cache", "hit");
    *body = value;
    *len = got;
    *type = tg_arena_strdup(r->arena, m.content_type[0] ? m.content_type : "application/json");
    return *type != NULL ? TG_OK : TG_DECLINED;
}

void tg_response_cache_store(struct tg_request *r, const char *body, size_t len,
                             const char *content_type)
{
    if (!r->cache_miss || store == NULL || r->stream)
        return; /* entries come from non-stream replies only */
    struct meta m;
    memset(&m, 0, sizeof(m));
    m.usage = r->usage;
    snprintf(m.content_type, sizeof(m.content_type), "%s",
             content_type != NULL ? content_type : "application/json");
    scope_of(r, m.scope, sizeof(m.scope));
    if (tg_cache_put(store, r->cache_key, body, len, &m, sizeof(m), tg_now_ms(),
                     r->config->cache.ttl_ms) == TG_ERROR)
        tg_log_warn(r->request_id, "could not store a reply in the response cache");
}

int tg_response_cache_stats(struct tg_cache_stats *out)
{
    if (store == NULL)
        return TG_DECLINED;
    tg_cache_stats(store, out);
    return TG_OK;
}

static bool scope_matches(void *ctx, const void *meta, size_t meta_len)
{
    const struct meta *m = meta;
    return meta_len >= sizeof(*m) && strncmp(m->scope, ctx, sizeof(m->scope)) == 0;
}

int tg_response_cache_purge(const char *scope, size_t *purged)
{
    if (store == NULL)
        return TG_DECLINED;
    return tg_cache_purge(store, scope != NULL ? scope_matches : NULL, (void *)scope, purged);
}
