/*
 * mcp_upstream.c — one exchange with an MCP server (see mcp_upstream.h).
 */
#include "mcp_upstream.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "balancer.h"
#include "crypto.h"
#include "request.h"
#include "shm.h"
#include "sse.h"

#define MAX_LINES (TG_MCP_MAX_SERVERS + 8)

struct exchange {
    struct tg_request *r;
    struct tg_mcp_upstream_call *c;
    struct tg_sse_parser sse;
    size_t cap;
    char *json; /* an application/json reply, collected */
    size_t json_len;
    bool too_large;
    int64_t abort_at_ms;
};

static int on_header(void *ctx, const char *name, const char *value)
{
    struct exchange *x = ctx;
    if (strcmp(name, "content-type") == 0)
        x->c->event_stream = strncasecmp(value, "text/event-stream", 17) == 0;
    else if (strcmp(name, "mcp-session-id") == 0 && strlen(value) <= TG_MCP_MAX_SESSION_ID)
        snprintf(x->c->session_id_out, sizeof(x->c->session_id_out), "%s", value);
    return TG_OK;
}

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct exchange *x = ctx;
    /* "message" carries JSON-RPC; an event without data is a keep-alive or a priming event */
    if (strcmp(event, "message") != 0 || len == 0 || x->c->on_message == NULL)
        return TG_OK;
    return x->c->on_message(x->c->ctx, data, len);
}

static int on_body(void *ctx, long status, const char *data, size_t len)
{
    struct exchange *x = ctx;
    struct tg_mcp_upstream_call *c = x->c;
    if (status < 200 || status > 299)
        return TG_OK; /* an error's body is not relayed: its status says it */
    if (c->on_bytes != NULL)
        return c->on_bytes(c->ctx, data, len);
    if (c->event_stream)
        return tg_sse_feed(&x->sse, data, len) == TG_OK ? TG_OK : TG_ERROR;
    if (x->json_len + len > x->cap) {
        x->too_large = true;
        return TG_ERROR;
    }
    if (x->json == NULL && (x->json = tg_arena_alloc(x->r->arena, x->cap + 1)) == NULL)
        return TG_ERROR;
    memcpy(x->json + x->json_len, data, len);
    x->json_len += len;
    return TG_OK;
}

static void on_wait(void *ctx)
{
    struct exchange *x = ctx;
    if (x->abort_at_ms == 0 && tg_request_client_left(x->r))
        x->abort_at_ms = 1; /* nobody waits for it any more */
}

static int breaker_pick(const char *id, uint64_t *probe)
{
    struct tg_shm *shm = tg_shm_get();
    struct tg_balancer_member member = {id, 0, 1};
    return tg_balancer_pick(shm != NULL ? &shm->circuits : NULL, &member, 1, NULL, NULL,
                            tg_now_ms(), tg_crypto_fast_random(), probe);
}

int tg_mcp_upstream_perform(struct tg_request *r, struct tg_mcp_upstream_call *c)
{
    const struct tg_mcp_server *s = c->server;
    bool post = strcmp(c->method, "POST") == 0, get = strcmp(c->method, "GET") == 0;
    const char *lines[MAX_LINES];
    size_t n = 0;
    if (post)
        lines[n++] = "Content-Type: application/json";
    lines[n++] = get ? "Accept: text/event-stream" : "Accept: application/json, text/event-stream";
    lines[n++] = "Expect:";
    if (c->session_id != NULL && c->session_id[0] != '\0')
        lines[n++] = tg_arena_printf(r->arena, "Mcp-Session-Id: %s", c->session_id);
    if (c->protocol_version != NULL && c->protocol_version[0] != '\0')
        lines[n++] = tg_arena_printf(r->arena, "MCP-Protocol-Version: %s", c->protocol_version);
    if (c->last_event_id != NULL)
        lines[n++] = tg_arena_printf(r->arena, "Last-Event-ID: %s", c->last_event_id);
    for (size_t i = 0; i < s->n_headers && n < MAX_LINES; i++)
        lines[n++] = s->headers[i];
    for (size_t i = 0; i < n; i++)
        if (lines[i] == NULL) {
            snprintf(c->error, sizeof(c->error), "out of memory");
            c->result = TG_UPSTREAM_FAILED;
            return TG_ERROR;
        }

    char circuit[64];
    snprintf(circuit, sizeof(circuit), "mcp:%s", s->name);
    uint64_t probe = 0;
    if (post && breaker_pick(circuit, &probe) < 0) {
        snprintf(c->error, sizeof(c->error), "its circuit is open");
        c->result = TG_UPSTREAM_UNREACHABLE;
        return TG_ERROR;
    }
    struct exchange x = {.r = r, .c = c, .cap = r->config->mcp.max_upstream_bytes};
    tg_sse_parser_init(&x.sse, x.cap, on_event, &x);
    struct tg_upstream_call call = {
        .method = c->method,
        .url = s->url,
        .headers = lines,
        .n_headers = n,
        .body = c->body,
        .body_len = c->body_len,
        .connect_timeout_ms = s->connect_timeout_ms,
        .timeout_ms = get ? s->stream_timeout_ms : s->timeout_ms,
        .on_header = on_header,
        .on_body = on_body,
        .ctx = &x,
        .abort_at_ms = &x.abort_at_ms,
        .on_wait = on_wait,
    };
    c->result = tg_upstream_perform(r->upstream, &call);
    c->status = call.status;
    if (c->result == TG_UPSTREAM_OK && x.json_len > 0 && c->on_message != NULL &&
        c->status >= 200 && c->status <= 299) {
        x.json[x.json_len] = '\0';
        if (c->on_message(c->ctx, x.json, x.json_len) != TG_OK)
            c->result = TG_UPSTREAM_ABORTED;
    }
    tg_sse_parser_release(&x.sse);
    if (x.too_large)
        snprintf(c->error, sizeof(c->error), "a message was larger than %zu bytes", x.cap);
    else if (x.abort_at_ms != 0)
        snprintf(c->error, sizeof(c->error), "the client left");
    else if (c->result != TG_UPSTREAM_OK)
        snprintf(c->error, sizeof(c->error), "%s", call.error);
    if (post) {
        struct tg_shm *shm = tg_shm_get();
        bool failed = c->result == TG_UPSTREAM_UNREACHABLE || c->result == TG_UPSTREAM_TIMEOUT ||
                      c->result == TG_UPSTREAM_FAILED || c->status >= 500;
        tg_balancer_report(shm != NULL ? &shm->circuits : NULL, circuit, !failed, probe, NULL,
                           tg_now_ms());
    }
    if (x.too_large)
        c->result = TG_UPSTREAM_FAILED;
    return c->result == TG_UPSTREAM_OK ? TG_OK : TG_ERROR;
}
