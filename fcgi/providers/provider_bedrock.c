/*
 * provider_bedrock.c — Bedrock Converse as a backend.
 */
#include "provider_bedrock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventstream.h"
#include "exchange.h"
#include "log.h"
#include "relay.h"
#include "sigv4.h"
#include "translate_bedrock.h"

struct decoder {
    struct tg_eventstream_decoder frames;
    struct tg_translate_bedrock_stream stream;
};

static void release_decoder(void *d)
{
    tg_eventstream_decoder_release(&((struct decoder *)d)->frames);
}

/* The host of base_url ("https://host[:port]/..." -> "host[:port]"), in the arena. */
static const char *host_of(struct tg_request *r, const char *url)
{
    const char *start = strstr(url, "://");
    start = start != NULL ? start + 3 : url;
    size_t len = strcspn(start, "/");
    return tg_arena_printf(r->arena, "%.*s", (int)len, start);
}

/* SigV4 headers for the call (authorization, x-amz-date, the session token). */
static int sign(struct tg_request *r, struct tg_exchange *x, const char *path)
{
    const struct tg_provider *p = r->backend->provider;
    char amz_date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    const struct tg_sigv4_header signed_headers[] = {{"content-type", "application/json"}};
    struct tg_sigv4_request req = {
        .method = "POST",
        .host = host_of(r, p->base_url),
        .path = path,
        .query = "",
        .headers = signed_headers,
        .n_headers = TG_ARRAY_LEN(signed_headers),
        .payload = x->body,
        .payload_len = x->body_len,
        .region = p->region,
        .service = "bedrock",
        .access_key_id = p->aws_access_key_id,
        .secret_access_key = p->aws_secret_access_key,
        .session_token = p->aws_session_token,
        .amz_date = amz_date,
    };
    struct tg_sigv4_signed out = {0};
    char err[256];
    if (req.host == NULL || tg_sigv4_sign(&req, &out, err, sizeof(err)) != TG_OK) {
        tg_log_error(r->request_id, "provider \"%s\": could not sign the request: %s", p->name,
                     req.host == NULL ? "out of memory" : err);
        return TG_ERROR;
    }
    int rc = tg_exchange_add_header(x, "authorization: %s", out.authorization);
    rc |= tg_exchange_add_header(x, "x-amz-date: %s", out.amz_date);
    if (out.security_token != NULL && out.security_token[0] != '\0')
        rc |= tg_exchange_add_header(x, "x-amz-security-token: %s", out.security_token);
    tg_sigv4_signed_release(&out);
    return rc == TG_OK ? TG_OK : TG_ERROR;
}

static int encode_body(struct tg_request *r, struct tg_exchange *x, json_t *pivot)
{
    char message[256];
    json_t *body = NULL;
    int rc = tg_translate_bedrock_request(pivot, &body, message, sizeof(message));
    return tg_exchange_set_translated_body(x, rc, body, message);
}

static int encode(struct tg_request *r, struct tg_exchange *x, json_t *pivot)
{
    const struct tg_provider *p = r->backend->provider;
    int rc = encode_body(r, x, pivot);
    if (rc != TG_OK)
        return rc;
    char path[1024];
    struct decoder *d = tg_arena_calloc(r->arena, sizeof(*d));
    if (d == NULL ||
        tg_translate_bedrock_path(r->backend->upstream_model, r->stream, path, sizeof(path)) < 0)
        return TG_ERROR; /* it returns the path's length */
    x->url = tg_arena_printf(r->arena, "%s%s", p->base_url, path);
    tg_translate_bedrock_stream_init(&d->stream, r->request_id, r->model->name, tg_relay_emit, x);
    tg_eventstream_decoder_init(&d->frames, 0, tg_translate_bedrock_stream_on_message, &d->stream);
    if (x->url == NULL || tg_arena_cleanup_add(r->arena, release_decoder, d) != TG_OK)
        return TG_ERROR;
    x->decoder = d;
    x->relay_mode = TG_RELAY_EVENTS;
    if (p->api_key != NULL)
        rc = tg_exchange_add_header(x, "authorization: Bearer %s", p->api_key);
    else
        rc = sign(r, x, path);
    rc |= tg_exchange_add_header(
        x, "accept: %s", r->stream ? "application/vnd.amazon.eventstream" : "application/json");
    return rc == TG_OK ? tg_exchange_add_common_headers(x) : TG_ERROR;
}

static int decode_reply(struct tg_exchange *x, json_t **pivot_reply)
{
    char message[256];
    json_t *doc = json_loadb(x->reply, x->reply_len, 0, NULL);
    int rc = doc != NULL ? tg_translate_bedrock_reply(doc, x->r->request_id, x->r->model->name,
                                                      pivot_reply, message, sizeof(message))
                         : TG_ERROR;
    json_decref(doc);
    if (rc != TG_OK)
        tg_log_warn(x->r->request_id, "could not read the provider's reply: %s",
                    doc != NULL ? message : "not JSON");
    return rc == TG_OK ? TG_OK : TG_ERROR;
}

static int decode_bytes(struct tg_exchange *x, const char *data, size_t len)
{
    struct decoder *d = x->decoder;
    int rc = tg_eventstream_feed(&d->frames, data, len);
    if (rc != TG_OK && d->frames.error[0] != '\0')
        tg_log_warn(x->r->request_id, "provider's event stream: %s", d->frames.error);
    return rc;
}

static void decode_end(struct tg_exchange *x)
{
    struct decoder *d = x->decoder;
    if (tg_eventstream_finish(&d->frames) != TG_OK)
        tg_log_warn(x->r->request_id, "provider's event stream ended inside a frame");
    if (tg_translate_bedrock_stream_finish(&d->stream) != TG_OK)
        tg_log_warn(x->r->request_id, "provider's stream: %s", d->stream.error);
}

const struct tg_provider_ops tg_provider_bedrock = {
    .name = "bedrock",
    .native = -1,
    .encode = encode,
    .decode_reply = decode_reply,
    .decode_bytes = decode_bytes,
    .decode_end = decode_end,
};
