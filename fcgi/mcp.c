/*
 * mcp.c — the MCP gateway's transport: /mcp and /mcp/{server} speak MCP's
 * Streamable HTTP (revisions 2025-06-18 and 2025-03-26). It checks what the
 * specification asks of a message and its headers, identifies the caller with
 * the LLM endpoints' credentials, finds the session in its signed token
 * (mcp_session.h) and hands each message to mcp_federate.c. Also the OAuth
 * protected-resource metadata (RFC 9728) MCP's authorization asks for.
 *
 * Every error is a JSON-RPC error object (id null when unknown) with its HTTP
 * status: 400 malformed (-32700) or invalid (-32600) messages, a batch under
 * 2025-06-18, an unsupported MCP-Protocol-Version, a missing session; 401 with
 * WWW-Authenticate; 404 an unknown, expired or foreign session (the client
 * initializes again); 405 GET on /mcp; 406 an Accept without JSON and event
 * streams; 413 a message over mcp.max_message_bytes; 415 not JSON.
 */
#include "mcp.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "auth_jwt.h"
#include "jsafe.h"
#include "log.h"
#include "mcp_federate.h"
#include "mcp_gate.h"
#include "mcp_rpc.h"
#include "mcp_upstream.h"
#include "request.h"

#define MAX_BATCH 32
#define METADATA_PATH "/.well-known/oauth-protected-resource"

static void drop_json(void *doc)
{
    json_decref(doc);
}

/* The gateway's public base URL: mcp.resource, else the request's scheme and Host. */
static const char *base_url(struct tg_request *r)
{
    if (r->config->mcp.resource != NULL)
        return r->config->mcp.resource;
    const char *host = tg_request_header(r, "host");
    if (host == NULL || host[0] == '\0' || strlen(host) > 255 ||
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
            strlen(host))
        host = "localhost";
    const char *https = tg_request_param(r, "HTTPS");
    bool secure = https != NULL && strcmp(https, "on") == 0;
    return tg_arena_printf(r->arena, "%s://%s", secure ? "https" : "http", host);
}

/* An HTTP-level error: r's record, answered as a JSON-RPC error by request.c. */
static int refuse(struct tg_request *r, int status, int code, const char *message,
                  const char *detail)
{
    r->jsonrpc_code = code;
    tg_request_fail(r, status, status == 404 ? "not_found_error" : "invalid_request_error", message,
                    "%s", detail != NULL ? detail : message);
    return TG_ERROR;
}

static bool accepts(const char *accept, const char *type, const char *family)
{
    return accept != NULL && (strstr(accept, type) != NULL || strstr(accept, family) != NULL ||
                              strstr(accept, "*/*") != NULL);
}

/* The endpoint's servers into x: all of them on /mcp, the one of /mcp/{server}. */
static int endpoint_servers(struct tg_request *r, struct tg_mcp_ctx *x)
{
    const struct tg_mcp_config *m = &r->config->mcp;
    const char *rest = r->path + strlen("/mcp");
    if (rest[0] == '/')
        rest++;
    size_t len = strlen(rest);
    if (len > 0 && rest[len - 1] == '/')
        len--;
    x->federated = len == 0;
    for (size_t i = 0; i < m->n_servers; i++)
        if (x->federated ||
            (strlen(m->servers[i].name) == len && strncmp(m->servers[i].name, rest, len) == 0))
            x->servers[x->n_servers++] = &m->servers[i];
    if (x->n_servers == 0)
        return refuse(r, 404, TG_MCP_INVALID_REQUEST, "no such MCP server", NULL);
    snprintf(x->session.scope, sizeof(x->session.scope), "%s",
             x->federated ? "" : x->servers[0]->name);
    return TG_OK;
}

/* The caller, as keys and JWTs identify it: a session belongs to it. */
static int identify(struct tg_request *r, struct tg_mcp_ctx *x)
{
    /* the caller and its MCP grants, one round trip (403: no MCP access at all) */
    if (tg_auth_read(r) != TG_OK || tg_mcp_gate_open(r) != TG_OK) {
        if (r->error.status == 401)
            tg_request_add_headerf(r, "WWW-Authenticate", "Bearer resource_metadata=\"%s%s\"",
                                   base_url(r), METADATA_PATH);
        r->jsonrpc_code =
            r->error.status == 401 || r->error.status == 403 ? TG_MCP_SERVER_ERROR : 0;
        return TG_ERROR;
    }
    char caller[200];
    if (r->identity.api_key_id > 0)
        snprintf(caller, sizeof(caller), "key:%" PRId64, r->identity.api_key_id);
    else
        snprintf(caller, sizeof(caller), "user:%s",
                 r->identity.user_id != NULL ? r->identity.user_id : "");
    tg_mcp_session_caller(caller, x->session.caller);
    return TG_OK;
}

/* The session the client's Mcp-Session-Id stands for, into x->session. */
static int load_session(struct tg_request *r, struct tg_mcp_ctx *x)
{
    const char *token = tg_request_header(r, "mcp-session-id");
    if (token == NULL)
        return refuse(r, 400, TG_MCP_INVALID_REQUEST,
                      "bad request: the Mcp-Session-Id header is required (initialize first)",
                      NULL);
    struct tg_mcp_session s;
    const char *why = NULL;
    if (tg_mcp_session_decode(token, x->cfg->session_secret, (int64_t)time(NULL), &s, &why) !=
        TG_OK)
        return refuse(r, 404, 0, "session not found: initialize a new session", why);
    if (strcmp(s.caller, x->session.caller) != 0)
        return refuse(r, 404, 0, "session not found: initialize a new session",
                      "the session belongs to another caller");
    if (strcmp(s.scope, x->session.scope) != 0)
        return refuse(r, 404, 0, "session not found: initialize a new session",
                      "the session belongs to another endpoint");
    const char *version = tg_request_header(r, "mcp-protocol-version");
    if (version != NULL && strcmp(version, s.version) != 0)
        return refuse(r, 400, TG_MCP_INVALID_REQUEST,
                      "bad request: MCP-Protocol-Version differs from the session's", NULL);
    x->session = s;
    return TG_OK;
}

static int send_json(struct tg_request *r, int status, json_t *doc)
{
    char *text = doc != NULL ? tg_jsafe_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory");
        return TG_ERROR;
    }
    int rc = tg_request_respond(r, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

static int accepted(struct tg_request *r)
{
    return tg_request_respond(r, 202, "application/json", "", 0);
}

static int initialize(struct tg_request *r, struct tg_mcp_ctx *x, json_t *msg)
{
    json_t *reply = NULL;
    x->session.expires_s = (int64_t)time(NULL) + x->cfg->session_ttl_s;
    if (tg_mcp_federate_initialize(x, msg, &reply) != TG_OK)
        return TG_ERROR;
    if (x->session.n > 0) {
        char *token = tg_arena_alloc(r->arena, TG_MCP_MAX_TOKEN + 1);
        if (token == NULL || tg_mcp_session_encode(&x->session, x->cfg->session_secret, token,
                                                   TG_MCP_MAX_TOKEN + 1) < 0) {
            json_decref(reply);
            tg_request_fail(r, 500, "api_error", "internal error", "session token too large");
            return TG_ERROR;
        }
        tg_request_add_header(r, "Mcp-Session-Id", token);
    }
    return send_json(r, x->reply_status, reply);
}

/* One message of a batch (2025-03-26): its response, or NULL for none. */
static int batch_member(struct tg_mcp_ctx *x, json_t *msg, json_t **reply)
{
    const char *why;
    *reply = NULL;
    switch (tg_mcp_rpc_classify(msg, &why)) {
    case TG_MCP_RPC_INVALID:
        *reply = tg_mcp_rpc_error(json_object_get(msg, "id"), TG_MCP_INVALID_REQUEST, why);
        return TG_OK;
    case TG_MCP_RPC_NOTIFICATION:
    case TG_MCP_RPC_RESPONSE: tg_mcp_federate_forward(x, msg); return TG_OK;
    case TG_MCP_RPC_REQUEST: break;
    }
    if (strcmp(json_string_value(json_object_get(msg, "method")), "initialize") == 0) {
        *reply = tg_mcp_rpc_error(json_object_get(msg, "id"), TG_MCP_INVALID_REQUEST,
                                  "initialize must not be part of a batch");
        return TG_OK;
    }
    return tg_mcp_federate_request(x, msg, reply);
}

static int batch(struct tg_request *r, struct tg_mcp_ctx *x, json_t *doc)
{
    if (json_array_size(doc) == 0 || json_array_size(doc) > MAX_BATCH)
        return refuse(r, 400, TG_MCP_INVALID_REQUEST, "a batch holds 1 to 32 messages", NULL);
    if (load_session(r, x) != TG_OK)
        return TG_ERROR;
    if (strcmp(x->session.version, "2025-03-26") != 0)
        return refuse(r, 400, TG_MCP_INVALID_REQUEST,
                      "batches are not supported in protocol revision 2025-06-18", NULL);
    x->may_stream = false;
    json_t *replies = json_array();
    if (replies == NULL || tg_arena_cleanup_add(r->arena, drop_json, replies) != TG_OK)
        return TG_ERROR;
    size_t i;
    json_t *msg;
    json_array_foreach(doc, i, msg) {
        json_t *reply;
        if (batch_member(x, msg, &reply) != TG_OK)
            return TG_ERROR;
        if (reply != NULL)
            json_array_append_new(replies, reply);
    }
    if (json_array_size(replies) == 0)
        return accepted(r);
    return send_json(r, 200, json_incref(replies));
}

static int post(struct tg_request *r, struct tg_mcp_ctx *x)
{
    if (!accepts(tg_request_header(r, "accept"), "application/json", "application/*") ||
        !accepts(tg_request_header(r, "accept"), "text/event-stream", "text/*"))
        return refuse(r, 406, TG_MCP_INVALID_REQUEST,
                      "not acceptable: Accept must allow application/json and text/event-stream",
                      NULL);
    const char *type = tg_request_param(r, "CONTENT_TYPE");
    if (type == NULL || strncmp(type, "application/json", 16) != 0)
        return refuse(r, 415, TG_MCP_INVALID_REQUEST,
                      "unsupported media type: the body must be application/json", NULL);
    if (r->body_len > x->cfg->max_message_bytes) {
        char message[120];
        snprintf(message, sizeof(message), "message too large: at most %zu bytes",
                 x->cfg->max_message_bytes);
        return refuse(r, 413, TG_MCP_INVALID_REQUEST, message, NULL);
    }
    json_error_t jerr;
    json_t *doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return refuse(r, 400, TG_MCP_PARSE_ERROR, "parse error: the body is not JSON", jerr.text);
    if (tg_arena_cleanup_add(r->arena, drop_json, doc) != TG_OK)
        return TG_ERROR;
    if (json_is_array(doc))
        return batch(r, x, doc);
    const char *why;
    enum tg_mcp_rpc_kind kind = tg_mcp_rpc_classify(doc, &why);
    if (kind == TG_MCP_RPC_INVALID) {
        const json_t *id = json_object_get(doc, "id");
        r->jsonrpc_id = tg_mcp_rpc_id_ok(id) ? (json_t *)id : NULL;
        return refuse(r, 400, TG_MCP_INVALID_REQUEST, why, NULL);
    }
    const char *method = json_string_value(json_object_get(doc, "method"));
    if (kind == TG_MCP_RPC_REQUEST && strcmp(method, "initialize") == 0)
        return initialize(r, x, doc);
    if (kind == TG_MCP_RPC_REQUEST)
        r->jsonrpc_id = json_object_get(doc, "id");
    if (load_session(r, x) != TG_OK)
        return TG_ERROR;
    if (kind != TG_MCP_RPC_REQUEST) {
        tg_mcp_federate_forward(x, doc);
        return accepted(r);
    }
    json_t *reply;
    if (tg_mcp_federate_request(x, doc, &reply) != TG_OK)
        return TG_ERROR;
    if (x->streamed) {
        json_decref(reply);
        return TG_OK;
    }
    return send_json(r, x->reply_status, reply);
}

/* The bytes of the server's own stream, as they come (headers with the first). */
static int relay_bytes(void *ctx, const char *data, size_t len)
{
    struct tg_mcp_ctx *x = ctx;
    struct tg_request *r = x->r;
    if (!x->streamed) {
        x->streamed = true;
        r->status = 200;
        tg_request_add_header(r, "Content-Type", "text/event-stream");
        tg_request_add_header(r, "Cache-Control", "no-cache");
        tg_request_add_header(r, "X-Accel-Buffering", "no");
    }
    return tg_request_write(r, data, len) == TG_OK && tg_request_flush(r) == TG_OK ? TG_OK
                                                                                   : TG_ERROR;
}

/* GET /mcp/{server}: the server's stream to the client, relayed; /mcp has none. */
static int get(struct tg_request *r, struct tg_mcp_ctx *x)
{
    if (x->federated) {
        tg_request_add_header(r, "Allow", "POST, DELETE");
        return refuse(r, 405, TG_MCP_INVALID_REQUEST,
                      "method not allowed: /mcp offers no server-to-client stream", NULL);
    }
    if (!accepts(tg_request_header(r, "accept"), "text/event-stream", "text/*"))
        return refuse(r, 406, TG_MCP_INVALID_REQUEST,
                      "not acceptable: Accept must allow text/event-stream", NULL);
    if (load_session(r, x) != TG_OK)
        return TG_ERROR;
    const struct tg_mcp_upstream_session *up = &x->session.up[0];
    struct tg_mcp_upstream_call c = {
        .server = x->servers[0],
        .method = "GET",
        .session_id = up->session_id,
        .protocol_version = up->version,
        .last_event_id = tg_request_header(r, "last-event-id"),
        .on_bytes = relay_bytes,
        .ctx = x,
    };
    int rc = tg_mcp_upstream_perform(r, &c);
    if (x->streamed)
        return TG_OK; /* the stream ended, or its deadline passed: the client reconnects */
    if (rc == TG_OK && c.status == 405) {
        tg_request_add_header(r, "Allow", "POST, DELETE");
        return refuse(r, 405, TG_MCP_INVALID_REQUEST,
                      "method not allowed: the server offers no stream", NULL);
    }
    if (rc == TG_OK && c.status == 404)
        return refuse(r, 404, 0, "session not found: initialize a new session",
                      "the server no longer knows the session");
    tg_request_fail(r, rc == TG_OK || c.result != TG_UPSTREAM_TIMEOUT ? 502 : 504, "api_error",
                    "the MCP server's stream could not be opened", "MCP server \"%s\": %s %ld",
                    x->servers[0]->name, c.error, c.status);
    return TG_ERROR;
}

/* DELETE: the session ends at every server that gave one. */
static int delete (struct tg_request *r, struct tg_mcp_ctx *x)
{
    if (load_session(r, x) != TG_OK)
        return TG_ERROR;
    for (size_t i = 0; i < x->session.n; i++) {
        const struct tg_mcp_upstream_session *up = &x->session.up[i];
        const struct tg_mcp_server *s = NULL;
        for (size_t k = 0; k < x->n_servers; k++)
            if (strcmp(x->servers[k]->name, up->server) == 0)
                s = x->servers[k];
        if (s == NULL || up->session_id[0] == '\0')
            continue;
        struct tg_mcp_upstream_call c = {.server = s,
                                         .method = "DELETE",
                                         .session_id = up->session_id,
                                         .protocol_version = up->version};
        if (tg_mcp_upstream_perform(r, &c) != TG_OK || c.status < 200 || c.status > 299)
            tg_log_warn(r->request_id, "MCP server \"%s\" did not end its session: %s %ld", s->name,
                        c.error, c.status);
    }
    return tg_request_respond(r, 200, "application/json", "", 0);
}

int tg_mcp_handle(struct tg_request *r)
{
    struct tg_mcp_ctx *x = tg_arena_calloc(r->arena, sizeof(*x));
    if (x == NULL)
        return TG_ERROR;
    x->r = r;
    x->cfg = &r->config->mcp;
    x->may_stream = true;
    x->reply_status = 200;
    if (endpoint_servers(r, x) != TG_OK)
        return TG_ERROR;
    bool is_post = strcmp(r->method, "POST") == 0;
    if (is_post && tg_request_read_body(r) != TG_OK) {
        if (r->error.status == 413)
            r->jsonrpc_code = TG_MCP_INVALID_REQUEST;
        return TG_ERROR;
    }
    if (identify(r, x) != TG_OK)
        return TG_ERROR;
    const char *version = tg_request_header(r, "mcp-protocol-version");
    if (version != NULL && !tg_mcp_rpc_version_ok(version))
        return refuse(r, 400, TG_MCP_INVALID_REQUEST,
                      "bad request: unsupported MCP-Protocol-Version (2025-06-18 and 2025-03-26 "
                      "are supported)",
                      NULL);
    if (is_post)
        return post(r, x);
    if (strcmp(r->method, "GET") == 0)
        return get(r, x);
    return delete (r, x);
}

int tg_mcp_metadata(struct tg_request *r)
{
    const struct tg_config *c = r->config;
    const char *suffix = r->path + strlen(METADATA_PATH);
    json_t *servers = json_array();
    for (size_t i = 0; servers != NULL && i < c->n_jwt_issuers; i++)
        json_array_append_new(servers, json_string(tg_jwt_issuer_name(c->jwt_issuers[i])));
    const char *resource =
        tg_arena_printf(r->arena, "%s%s", base_url(r), suffix[0] != '\0' ? suffix : "/mcp");
    json_t *doc = resource != NULL
                      ? json_pack("{s:s, s:o*, s:[s], s:s}", "resource", resource,
                                  "authorization_servers", servers, "bearer_methods_supported",
                                  "header", "resource_name", "Tollgate MCP gateway")
                      : NULL;
    return send_json(r, 200, doc);
}
