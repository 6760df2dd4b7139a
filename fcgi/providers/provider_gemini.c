/*
 * provider_gemini.c — Gemini and Vertex AI as backends.
 */
#include "provider_gemini.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exchange.h"
#include "log.h"
#include "relay.h"
#include "translate_gemini.h"
#include "translate_gemini_stream.h"
#include "upstream.h"
#include "vertex_token.h"

#define MAX_TOKEN_REPLY (64 * 1024)
#define MAX_VERTEX_PROVIDERS 16

/* ---- Vertex's access token ---- */

struct vertex_account {
    const struct tg_provider *provider; /* NULL: free slot */
    struct tg_vertex_key *key;
    struct tg_vertex_token_cache cache;
};

static struct vertex_account accounts[MAX_VERTEX_PROVIDERS];
static pthread_mutex_t accounts_lock = PTHREAD_MUTEX_INITIALIZER;

/* The account of provider p, its key loaded on first use; NULL with err set. */
static struct vertex_account *account_for(const struct tg_provider *p, char *err, size_t size)
{
    struct vertex_account *found = NULL;
    pthread_mutex_lock(&accounts_lock);
    for (size_t i = 0; i < MAX_VERTEX_PROVIDERS && found == NULL; i++) {
        if (accounts[i].provider == p) {
            found = &accounts[i];
        } else if (accounts[i].provider == NULL) {
            struct tg_vertex_key *key = NULL;
            if (tg_vertex_key_load(p->service_account_file, &key, err, size) == TG_OK) {
                accounts[i].provider = p;
                accounts[i].key = key;
                tg_vertex_token_cache_init(&accounts[i].cache, TG_VERTEX_REFRESH_MARGIN_S);
                found = &accounts[i];
            }
            break;
        }
    }
    pthread_mutex_unlock(&accounts_lock);
    if (found == NULL && err[0] == '\0')
        snprintf(err, size, "too many vertex providers (at most %d)", MAX_VERTEX_PROVIDERS);
    return found;
}

struct token_reply {
    char *body;
    size_t len;
};

static int token_body(void *ctx, long status, const char *data, size_t len)
{
    (void)status;
    struct token_reply *t = ctx;
    if (t->len + len > MAX_TOKEN_REPLY)
        return TG_ERROR;
    memcpy(t->body + t->len, data, len);
    t->len += len;
    return TG_OK;
}

/* A fresh token from the token endpoint, into the account's cache. */
static int fetch_token(struct tg_request *r, struct vertex_account *a, char *err, size_t size)
{
    const struct tg_provider *p = a->provider;
    int64_t now = (int64_t)time(NULL);
    char *form = tg_arena_alloc(r->arena, 8192);
    struct token_reply reply = {.body = tg_arena_alloc(r->arena, MAX_TOKEN_REPLY + 1)};
    if (form == NULL || reply.body == NULL ||
        tg_vertex_token_request_body(a->key, now, form, 8192, err, size) != TG_OK)
        return TG_ERROR;
    const char *headers[] = {"content-type: application/x-www-form-urlencoded",
                             "accept: application/json", "expect:"};
    struct tg_upstream_call call = {
        .url = p->token_url != NULL ? p->token_url : tg_vertex_key_token_uri(a->key),
        .headers = headers,
        .n_headers = TG_ARRAY_LEN(headers),
        .body = form,
        .body_len = strlen(form),
        .connect_timeout_ms = p->connect_timeout_ms,
        .timeout_ms = p->connect_timeout_ms + 10000,
        .on_body = token_body,
        .ctx = &reply,
    };
    if (tg_upstream_perform(r->upstream, &call) != TG_UPSTREAM_OK) {
        snprintf(err, size, "token endpoint: %s", call.error);
        return TG_ERROR;
    }
    struct tg_vertex_token token;
    if (tg_vertex_token_parse(reply.body, reply.len, call.status, now, &token, err, size) != TG_OK)
        return TG_ERROR;
    tg_vertex_token_cache_put(&a->cache, &token);
    return TG_OK;
}

/* The provider's current access token (cached, or fetched) into out. */
static int access_token(struct tg_request *r, char *out, size_t out_size)
{
    char err[256] = "";
    struct vertex_account *a = account_for(r->backend->provider, err, sizeof(err));
    if (a != NULL &&
        (tg_vertex_token_cache_get(&a->cache, (int64_t)time(NULL), out, out_size) == TG_OK ||
         (fetch_token(r, a, err, sizeof(err)) == TG_OK &&
          tg_vertex_token_cache_get(&a->cache, (int64_t)time(NULL), out, out_size) == TG_OK)))
        return TG_OK;
    tg_log_error(r->request_id, "provider \"%s\": could not obtain an access token: %s",
                 r->backend->provider->name, err);
    return TG_ERROR;
}

/* ---- the call ---- */

static const char *model_url(struct tg_request *r)
{
    const struct tg_provider *p = r->backend->provider;
    const char *method = r->stream ? "streamGenerateContent?alt=sse" : "generateContent";
    if (p->type == TG_PROVIDER_VERTEX)
        return tg_arena_printf(
            r->arena, "%s/v1/projects/%s/locations/%s/publishers/google/models/%s:%s", p->base_url,
            p->project, p->location, r->backend->upstream_model, method);
    return tg_arena_printf(r->arena, "%s/v1beta/models/%s:%s", p->base_url,
                           r->backend->upstream_model, method);
}

static int encode_body(struct tg_request *r, struct tg_exchange *x, json_t *pivot)
{
    char message[256];
    json_t *body = NULL;
    /* Gemini 3 refuses replayed function calls without their thought signature */
    unsigned flags =
        strncmp(r->backend->upstream_model, "gemini-3", 8) == 0 ? TG_GEMINI_SIGNATURE_SENTINEL : 0;
    int rc = tg_gemini_request_from_pivot(pivot, flags, &body, message, sizeof(message));
    return tg_exchange_set_translated_body(x, rc, body, message);
}

static int encode(struct tg_request *r, struct tg_exchange *x, json_t *pivot)
{
    const struct tg_provider *p = r->backend->provider;
    int rc = encode_body(r, x, pivot);
    if (rc != TG_OK)
        return rc;
    x->url = model_url(r);
    struct tg_gemini_stream *decoder = tg_arena_calloc(r->arena, sizeof(*decoder));
    if (x->url == NULL || decoder == NULL)
        return TG_ERROR;
    tg_gemini_stream_init(decoder, r->model->name, r->request_id, tg_relay_emit, x);
    x->decoder = decoder;
    x->relay_mode = TG_RELAY_EVENTS;
    if (p->type == TG_PROVIDER_VERTEX) {
        char token[TG_VERTEX_MAX_TOKEN];
        if (access_token(r, token, sizeof(token)) != TG_OK ||
            tg_exchange_add_header(x, "authorization: Bearer %s", token) != TG_OK)
            return TG_ERROR;
    } else if (tg_exchange_add_header(x, "x-goog-api-key: %s", p->api_key) != TG_OK) {
        return TG_ERROR;
    }
    return tg_exchange_add_common_headers(x);
}

static int decode_reply(struct tg_exchange *x, json_t **pivot_reply)
{
    char message[256];
    json_t *doc = json_loadb(x->reply, x->reply_len, 0, NULL);
    int rc = doc != NULL ? tg_gemini_reply_to_pivot(doc, x->r->model->name, x->r->request_id,
                                                    pivot_reply, message, sizeof(message))
                         : TG_ERROR;
    json_decref(doc);
    if (rc != TG_OK)
        tg_log_warn(x->r->request_id, "could not read the provider's reply: %s",
                    doc != NULL ? message : "not JSON");
    return rc == TG_OK ? TG_OK : TG_ERROR;
}

static int decode_event(struct tg_exchange *x, const char *event, const char *data, size_t len)
{
    (void)event; /* Gemini's SSE events are data lines only */
    return tg_gemini_stream_feed(x->decoder, data, len);
}

static void decode_end(struct tg_exchange *x)
{
    tg_gemini_stream_finish(x->decoder);
}

const struct tg_provider_ops tg_provider_gemini = {
    .name = "gemini",
    .native = -1,
    .encode = encode,
    .decode_reply = decode_reply,
    .decode_event = decode_event,
    .decode_end = decode_end,
};

const struct tg_provider_ops tg_provider_vertex = {
    .name = "vertex",
    .native = -1,
    .encode = encode,
    .decode_reply = decode_reply,
    .decode_event = decode_event,
    .decode_end = decode_end,
};
