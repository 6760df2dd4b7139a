/*
 * mcp_federate.c — initialize, lists, routed calls and relays across the
 * endpoint's MCP servers (see mcp_federate.h).
 *
 * A request goes to its server with the client's own id (each server has its
 * own session, and a session has one client), so its reply and its progress
 * notifications need no rewriting. Lists are paged one server at a time: a
 * page holds one server's page, and its cursor says which server comes next.
 */
#include "mcp_federate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsafe.h"
#include "log.h"
#include "mcp_gate.h"
#include "mcp_guard.h"
#include "mcp_rpc.h"
#include "mcp_upstream.h"
#include "request.h"

/* What came back from one server for one request. */
struct relay {
    struct tg_mcp_ctx *x;
    const json_t *id;
    json_t *final;       /* the response to id, once it came (new reference) */
    bool stream;         /* the server's other messages go to the client as events */
    long long bytes_out; /* bytes relayed or kept */
};

static void drop_json(void *doc)
{
    json_decref(doc);
}

/* A new reference kept alive by r's arena (released at its reset). */
static json_t *keep(struct tg_request *r, json_t *doc)
{
    if (doc != NULL && tg_arena_cleanup_add(r->arena, drop_json, doc) != TG_OK) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static bool same_id(const json_t *a, const json_t *b)
{
    return a != NULL && b != NULL && json_equal((json_t *)a, (json_t *)b);
}

/* Opens the client's event stream once: the reply to this request goes event by event. */
static int stream_event(struct tg_mcp_ctx *x, const char *data, size_t len)
{
    struct tg_request *r = x->r;
    if (!x->streamed) {
        x->streamed = true;
        r->status = 200;
        tg_request_add_header(r, "Content-Type", "text/event-stream");
        tg_request_add_header(r, "Cache-Control", "no-cache");
        tg_request_add_header(r, "X-Accel-Buffering", "no");
    }
    if (tg_request_write(r, "event: message\ndata: ", 21) != TG_OK ||
        tg_request_write(r, data, len) != TG_OK || tg_request_write(r, "\n\n", 2) != TG_OK ||
        tg_request_flush(r) != TG_OK)
        return TG_ERROR;
    return TG_OK;
}

static int relay_message(void *ctx, const char *data, size_t len)
{
    struct relay *rl = ctx;
    json_t *msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    const char *why;
    enum tg_mcp_rpc_kind kind = msg != NULL ? tg_mcp_rpc_classify(msg, &why) : TG_MCP_RPC_INVALID;
    int rc = TG_OK;
    bool final = kind == TG_MCP_RPC_RESPONSE && same_id(json_object_get(msg, "id"), rl->id) &&
                 rl->final == NULL;
    size_t server_len = len;
    if (rl->x->guard_call && kind != TG_MCP_RPC_INVALID &&
        ((data = tg_mcp_guard_relay(rl->x->r, msg, final, data, &len)) == NULL || len == 0)) {
        json_decref(msg); /* out of memory (stop), or a message that could not be checked */
        return data == NULL ? TG_ERROR : TG_OK;
    }
    if (final) {
        rl->final = msg;
        rl->bytes_out += (long long)server_len;
        /* once the stream began, the reply is its last event */
        return rl->x->streamed ? stream_event(rl->x, data, len) : TG_OK;
    }
    if (kind != TG_MCP_RPC_INVALID && rl->stream && rl->x->may_stream) {
        rl->bytes_out += (long long)server_len;
        rc = stream_event(rl->x, data, len);
    }
    json_decref(msg);
    return rc;
}

/* Index of server name among x's servers and in its session, or -1. */
static int find_server(const struct tg_mcp_ctx *x, const char *name)
{
    for (size_t i = 0; i < x->n_servers; i++)
        if (strcmp(x->servers[i]->name, name) == 0)
            return tg_mcp_session_find(&x->session, name) != NULL ? (int)i : -1;
    return -1;
}

enum outcome { SENT, GONE, FAILED, TIMED_OUT };

/*
 * Sends msg (borrowed) to server i within the session (none for initialize:
 * session_out gets its id) and collects the reply to id into rl->final.
 */
static enum outcome call_server(struct tg_mcp_ctx *x, size_t i, const json_t *msg, struct relay *rl,
                                char *session_out, char *why, size_t why_size)
{
    struct tg_request *r = x->r;
    const struct tg_mcp_server *s = x->servers[i];
    const struct tg_mcp_upstream_session *up = tg_mcp_session_find(&x->session, s->name);
    char *body = tg_jsafe_dumps(msg, JSON_COMPACT);
    if (body == NULL) {
        snprintf(why, why_size, "out of memory");
        return FAILED;
    }
    struct tg_mcp_upstream_call c = {
        .server = s,
        .method = "POST",
        .session_id = up != NULL ? up->session_id : NULL,
        .protocol_version = up != NULL ? up->version : x->session.version,
        .body = body,
        .body_len = strlen(body),
        .on_message = relay_message,
        .ctx = rl,
    };
    int rc = tg_mcp_upstream_perform(r, &c);
    free(body);
    if (session_out != NULL)
        memcpy(session_out, c.session_id_out, sizeof(c.session_id_out));
    if (rc == TG_OK && c.status == 404 && up != NULL && up->session_id[0] != '\0') {
        snprintf(why, why_size, "MCP server \"%s\" no longer knows the session", s->name);
        return GONE;
    }
    if (rc == TG_OK && (c.status < 200 || c.status > 299))
        snprintf(why, why_size, "MCP server \"%s\" answered HTTP %ld", s->name, c.status);
    else if (rc == TG_OK && rl->final == NULL && rl->id != NULL)
        snprintf(why, why_size, "MCP server \"%s\" ended its reply without a response", s->name);
    else if (rc != TG_OK && c.result == TG_UPSTREAM_TIMEOUT) {
        snprintf(why, why_size, "MCP server \"%s\" did not answer within %ld ms", s->name,
                 s->timeout_ms);
        return TIMED_OUT;
    } else if (rc != TG_OK)
        snprintf(why, why_size, "could not get a reply from MCP server \"%s\": %s", s->name,
                 c.error);
    else
        return SENT;
    return FAILED;
}

/* The reply when a server failed: a JSON-RPC error (an event when the stream began). */
static json_t *failure_reply(struct tg_mcp_ctx *x, const json_t *id, enum outcome out,
                             const char *why)
{
    tg_log_warn(x->r->request_id, "%s", why);
    int code = out == TIMED_OUT ? TG_MCP_REQUEST_TIMEOUT : TG_MCP_INTERNAL_ERROR;
    json_t *err = tg_mcp_rpc_error(id, code, why);
    if (x->streamed) {
        char *text = err != NULL ? tg_jsafe_dumps(err, JSON_COMPACT) : NULL;
        if (text != NULL)
            stream_event(x, text, strlen(text));
        free(text);
        json_decref(err);
        return NULL;
    }
    if (x->reply_status == 200)
        x->reply_status = out == TIMED_OUT ? 504 : 502;
    return err;
}

static int gone(struct tg_mcp_ctx *x, const char *why)
{
    tg_request_fail(x->r, 404, "not_found_error", "session not found: initialize a new session",
                    "%s", why);
    return TG_ERROR;
}

/* Relays msg to server i; the reply (or NULL when streamed) into *reply. */
static int relay(struct tg_mcp_ctx *x, size_t i, json_t *msg, bool stream, json_t **reply,
                 struct relay *rl)
{
    const json_t *id = json_object_get(msg, "id");
    *rl = (struct relay){.x = x, .id = id, .stream = stream};
    char why[320];
    enum outcome out = call_server(x, i, msg, rl, NULL, why, sizeof(why));
    if (out == GONE) {
        json_decref(rl->final);
        return gone(x, why);
    }
    if (out != SENT) {
        json_decref(rl->final);
        rl->final = NULL;
        *reply = failure_reply(x, id, out, why);
        return TG_OK;
    }
    keep(x->r, rl->final);
    *reply = x->streamed ? NULL : json_incref(rl->final);
    return TG_OK;
}

static json_t *invalid_params(const json_t *id, const char *message)
{
    return tg_mcp_rpc_error(id, TG_MCP_INVALID_PARAMS, message);
}

/* ---- initialize ---------------------------------------------------------------------- */

int tg_mcp_federate_initialize(struct tg_mcp_ctx *x, json_t *msg, json_t **reply)
{
    struct tg_request *r = x->r;
    const json_t *id = json_object_get(msg, "id");
    json_t *params = json_object_get(msg, "params");
    const char *asked = json_string_value(json_object_get(params, "protocolVersion"));
    if (asked == NULL) {
        *reply = invalid_params(id, "initialize needs params.protocolVersion");
        return TG_OK;
    }
    /* a revision we do not speak: we answer the latest we do (the client decides) */
    snprintf(x->session.version, sizeof(x->session.version), "%s",
             tg_mcp_rpc_version_ok(asked) ? asked : "2025-06-18");
    json_t *upstream = keep(r, json_deep_copy(msg));
    json_t *caps = keep(r, json_object());
    if (upstream == NULL || caps == NULL)
        return TG_ERROR;
    json_object_set_new(json_object_get(upstream, "params"), "protocolVersion",
                        json_string(x->session.version));
    json_t *single = NULL;
    for (size_t i = 0; i < x->n_servers; i++) {
        struct relay rl = {.x = x, .id = id};
        struct tg_mcp_upstream_session *up = &x->session.up[x->session.n];
        char why[320];
        enum outcome out = call_server(x, i, upstream, &rl, up->session_id, why, sizeof(why));
        json_t *result = json_object_get(rl.final, "result");
        if (out != SENT || !json_is_object(result)) {
            tg_log_warn(r->request_id, "MCP server \"%s\" left out of the session: %s",
                        x->servers[i]->name, out != SENT ? why : "it refused to initialize");
            json_decref(rl.final);
            continue;
        }
        keep(r, rl.final);
        snprintf(up->server, sizeof(up->server), "%s", x->servers[i]->name);
        const char *version = json_string_value(json_object_get(result, "protocolVersion"));
        snprintf(up->version, sizeof(up->version), "%s",
                 version != NULL && strlen(version) < sizeof(up->version) ? version
                                                                          : x->session.version);
        x->session.n++;
        json_t *theirs = json_object_get(result, "capabilities");
        const char *key;
        json_t *value;
        json_object_foreach(theirs, key, value) {
            /* federated: lists and calls, no subscriptions or change notices (no GET) */
            static const char *const merged[] = {"tools", "prompts", "resources", "logging",
                                                 "completions"};
            for (size_t k = 0; k < TG_ARRAY_LEN(merged); k++)
                if (strcmp(key, merged[k]) == 0)
                    json_object_set_new(caps, key, json_object());
        }
        single = result;
    }
    if (x->session.n == 0) {
        x->reply_status = 502;
        *reply = tg_mcp_rpc_error(id, TG_MCP_INTERNAL_ERROR, "no MCP server could be initialized");
        return TG_OK;
    }
    json_t *result;
    if (!x->federated)
        result = json_pack("{s:s, s:O, s:O}", "protocolVersion", x->session.version, "capabilities",
                           json_object_get(single, "capabilities"), "serverInfo",
                           json_object_get(single, "serverInfo"));
    else
        result = json_pack("{s:s, s:O, s:{s:s, s:s}}", "protocolVersion", x->session.version,
                           "capabilities", caps, "serverInfo", "name", "tollgate", "version", "1");
    if (result != NULL && !x->federated && json_is_string(json_object_get(single, "instructions")))
        json_object_set(result, "instructions", json_object_get(single, "instructions"));
    *reply = result != NULL ? tg_mcp_rpc_result(id, result) : NULL;
    return *reply != NULL ? TG_OK : TG_ERROR;
}

/* ---- lists --------------------------------------------------------------------------- */

struct list_kind {
    const char *method, *key, *field; /* the list method, its array, the field named */
    bool uri;                         /* field is a URI (wrapped), else a name (prefixed) */
};

static const struct list_kind lists[] = {
    {"tools/list", "tools", "name", false},
    {"prompts/list", "prompts", "name", false},
    {"resources/list", "resources", "uri", true},
    {"resources/templates/list", "resourceTemplates", "uriTemplate", true},
};

/* Server i's items as the client sees them (tools: only those it may list). */
static json_t *rewrite_items(struct tg_mcp_ctx *x, const struct list_kind *k, size_t i,
                             json_t *items)
{
    const char *server = x->servers[i]->name;
    json_t *out = json_array();
    size_t n;
    json_t *item;
    json_array_foreach(items, n, item) {
        const char *value = json_string_value(json_object_get(item, k->field));
        if (!json_is_object(item) || value == NULL)
            continue;
        if (strcmp(k->key, "tools") == 0 && !tg_mcp_gate_may_list(x->r, server, value))
            continue;
        if (x->federated) {
            char *named = k->uri ? tg_mcp_rpc_uri_wrap(x->r->arena, server, value)
                                 : tg_mcp_rpc_join(x->r->arena, server, value);
            if (named == NULL)
                continue;
            json_object_set_new(item, k->field, json_string(named));
        }
        json_array_append(out, item);
    }
    return out;
}

static int list(struct tg_mcp_ctx *x, const struct list_kind *k, json_t *msg, json_t **reply)
{
    const json_t *id = json_object_get(msg, "id");
    json_t *params = json_object_get(msg, "params");
    const char *cursor = json_string_value(json_object_get(params, "cursor"));
    const char *upstream_cursor = NULL;
    size_t start = 0;
    if (cursor != NULL) {
        char server[TG_MCP_MAX_NAME + 1];
        if (tg_mcp_rpc_cursor_decode(x->r->arena, cursor, server, &upstream_cursor) != TG_OK ||
            find_server(x, server) < 0) {
            *reply = invalid_params(id, "invalid cursor");
            return TG_OK;
        }
        start = (size_t)find_server(x, server);
    }
    for (size_t i = start; i < x->n_servers; i++, upstream_cursor = NULL) {
        if (find_server(x, x->servers[i]->name) < 0)
            continue;
        json_t *ask = keep(x->r, json_pack("{s:s, s:O, s:s, s:{}}", "jsonrpc", "2.0", "id", id,
                                           "method", k->method, "params"));
        if (ask == NULL)
            return TG_ERROR;
        json_t *ask_params = json_object_get(ask, "params");
        if (json_is_object(json_object_get(params, "_meta")))
            json_object_set(ask_params, "_meta", json_object_get(params, "_meta"));
        if (upstream_cursor != NULL)
            json_object_set_new(ask_params, "cursor", json_string(upstream_cursor));
        struct relay rl;
        json_t *got = NULL;
        if (relay(x, i, ask, false, &got, &rl) != TG_OK)
            return TG_ERROR;
        json_t *result = json_object_get(got, "result");
        json_t *items = json_object_get(result, k->key);
        if (!json_is_array(items)) {
            /* a server without this list, or one that failed: its part is left out */
            tg_log_warn(x->r->request_id, "%s of MCP server \"%s\" left out: %s", k->method,
                        x->servers[i]->name,
                        json_object_get(got, "error") != NULL ? "it answered an error"
                                                              : "no list in its reply");
            json_decref(got);
            x->reply_status = 200;
            continue;
        }
        json_t *page = json_pack("{s:o}", k->key, rewrite_items(x, k, i, items));
        const char *next = json_string_value(json_object_get(result, "nextCursor"));
        char *next_cursor = NULL;
        if (next != NULL)
            next_cursor = tg_mcp_rpc_cursor_encode(x->r->arena, x->servers[i]->name, next);
        else
            for (size_t j = i + 1; j < x->n_servers && next_cursor == NULL; j++)
                if (find_server(x, x->servers[j]->name) >= 0)
                    next_cursor = tg_mcp_rpc_cursor_encode(x->r->arena, x->servers[j]->name, NULL);
        if (page != NULL && next_cursor != NULL)
            json_object_set_new(page, "nextCursor", json_string(next_cursor));
        json_decref(got);
        *reply = page != NULL ? tg_mcp_rpc_result(id, page) : NULL;
        return *reply != NULL ? TG_OK : TG_ERROR;
    }
    *reply = tg_mcp_rpc_result(id, json_pack("{s:[]}", k->key));
    return *reply != NULL ? TG_OK : TG_ERROR;
}

/* ---- routed calls -------------------------------------------------------------------- */

/*
 * The server a prefixed name (or wrapped URI) names, and the name it has
 * there. -1 when it names none of the session's.
 */
static int route_name(struct tg_mcp_ctx *x, const char *value, bool uri, const char **inner)
{
    if (!x->federated) {
        *inner = value;
        return find_server(x, x->servers[0]->name);
    }
    char server[TG_MCP_MAX_NAME + 1];
    int rc =
        uri ? tg_mcp_rpc_uri_unwrap(value, server, inner) : tg_mcp_rpc_split(value, server, inner);
    return rc == TG_OK ? find_server(x, server) : -1;
}

static const char *call_code(const json_t *final, int *jsonrpc_error)
{
    const json_t *error = json_object_get(final, "error");
    *jsonrpc_error = error != NULL ? (int)json_integer_value(json_object_get(error, "code")) : 0;
    if (final == NULL)
        return "upstream_error";
    if (error != NULL || json_is_true(json_object_get(json_object_get(final, "result"), "isError")))
        return "error";
    return "ok";
}

static int tools_call(struct tg_mcp_ctx *x, json_t *msg, json_t **reply)
{
    struct tg_request *r = x->r;
    const json_t *id = json_object_get(msg, "id");
    json_t *params = json_object_get(msg, "params");
    const char *name = json_string_value(json_object_get(params, "name"));
    json_t *arguments = json_object_get(params, "arguments");
    if (name == NULL || (arguments != NULL && !json_is_object(arguments))) {
        *reply = invalid_params(id, "tools/call needs params.name and an object of arguments");
        return TG_OK;
    }
    const char *tool;
    int i = route_name(x, name, false, &tool);
    if (i < 0) {
        char message[200];
        snprintf(message, sizeof(message), "unknown tool \"%.120s\"", name);
        *reply = invalid_params(id, message);
        return TG_OK;
    }
    const char *server = x->servers[i]->name;
    int64_t started = tg_now_ms();
    struct tg_mcp_gate_call note = {
        .server = server, .tool = tool, .bytes_in = (long long)r->body_len};
    int code;
    const char *refusal;
    if (tg_mcp_gate_may_call(r, server, tool, arguments, &code, &refusal) != TG_OK) {
        note.code = code == TG_MCP_SERVER_ERROR ? "rate_limited" : "refused";
        note.jsonrpc_error = code;
        *reply = tg_mcp_rpc_error(id, code, refusal);
        note.result = json_object_get(*reply, "error");
        tg_mcp_gate_note_call(r, &note);
        return TG_OK;
    }
    json_t *ask = keep(r, json_deep_copy(msg));
    if (ask == NULL)
        return TG_ERROR;
    json_object_set_new(json_object_get(ask, "params"), "name", json_string(tool));
    if (tg_mcp_guard_arguments(r, server, tool,
                               json_object_get(json_object_get(ask, "params"), "arguments"), &code,
                               &refusal) != TG_OK) {
        note.code = "refused"; /* its arguments are not kept: a rule blocked them */
        note.jsonrpc_error = code;
        *reply = tg_mcp_rpc_error(id, code, refusal);
        note.result = json_object_get(*reply, "error");
        tg_mcp_gate_note_call(r, &note);
        return TG_OK;
    }
    note.arguments = json_object_get(json_object_get(ask, "params"), "arguments");
    struct relay rl;
    x->guard_call = true;
    int rc = relay(x, (size_t)i, ask, true, reply, &rl);
    x->guard_call = false;
    note.code = rc != TG_OK ? "upstream_error"
                : rl.final == NULL && x->reply_status == 504
                    ? "timeout"
                    : call_code(rl.final, &note.jsonrpc_error);
    if (rl.final == NULL && x->reply_status == 504)
        note.jsonrpc_error = TG_MCP_REQUEST_TIMEOUT;
    note.duration_us = (tg_now_ms() - started) * 1000;
    note.bytes_out = rl.bytes_out;
    /* as the guardrails left it (masked or withheld), or the gateway's own error */
    const json_t *answer = rc != TG_OK ? NULL : rl.final != NULL ? rl.final : *reply;
    note.result = json_object_get(answer, "result") != NULL ? json_object_get(answer, "result")
                                                            : json_object_get(answer, "error");
    tg_mcp_gate_note_call(r, &note);
    return rc;
}

/* prompts/get, completion/complete (ref/prompt), resources/read: routed by params[field]. */
static int routed(struct tg_mcp_ctx *x, json_t *msg, json_t *holder, const char *field, bool uri,
                  bool rewrite_contents, json_t **reply)
{
    const json_t *id = json_object_get(msg, "id");
    const char *value = json_string_value(json_object_get(holder, field));
    const char *inner;
    int i = value != NULL ? route_name(x, value, uri, &inner) : -1;
    if (i < 0) {
        char message[200];
        snprintf(message, sizeof(message), "unknown %s \"%.120s\"", uri ? "resource" : "name",
                 value != NULL ? value : "");
        *reply =
            tg_mcp_rpc_error(id, uri ? TG_MCP_RESOURCE_NOT_FOUND : TG_MCP_INVALID_PARAMS, message);
        return TG_OK;
    }
    json_object_set_new(holder, field, json_string(inner));
    struct relay rl;
    if (relay(x, (size_t)i, msg, !rewrite_contents, reply, &rl) != TG_OK)
        return TG_ERROR;
    json_t *contents = json_object_get(json_object_get(*reply, "result"), "contents");
    size_t n;
    json_t *item;
    if (rewrite_contents && x->federated)
        json_array_foreach(contents, n, item) {
            const char *u = json_string_value(json_object_get(item, "uri"));
            char *wrapped =
                u != NULL ? tg_mcp_rpc_uri_wrap(x->r->arena, x->servers[i]->name, u) : NULL;
            if (wrapped != NULL)
                json_object_set_new(item, "uri", json_string(wrapped));
        }
    return TG_OK;
}

/* logging/setLevel: to every server of the session; an empty result. */
static int to_all(struct tg_mcp_ctx *x, json_t *msg, json_t **reply)
{
    for (size_t i = 0; i < x->n_servers; i++) {
        if (find_server(x, x->servers[i]->name) < 0)
            continue;
        struct relay rl;
        json_t *got = NULL;
        if (relay(x, i, msg, false, &got, &rl) != TG_OK)
            return TG_ERROR;
        json_decref(got);
    }
    x->reply_status = 200;
    *reply = tg_mcp_rpc_result(json_object_get(msg, "id"), json_object());
    return TG_OK;
}

int tg_mcp_federate_request(struct tg_mcp_ctx *x, json_t *msg, json_t **reply)
{
    *reply = NULL;
    const char *method = json_string_value(json_object_get(msg, "method"));
    const json_t *id = json_object_get(msg, "id");
    json_t *params = json_object_get(msg, "params");
    if (strcmp(method, "ping") == 0) {
        *reply = tg_mcp_rpc_result(id, json_object());
        return TG_OK;
    }
    for (size_t k = 0; k < TG_ARRAY_LEN(lists); k++)
        if (strcmp(method, lists[k].method) == 0)
            return list(x, &lists[k], msg, reply);
    if (strcmp(method, "tools/call") == 0)
        return tools_call(x, msg, reply);
    if (strcmp(method, "prompts/get") == 0)
        return routed(x, msg, params, "name", false, false, reply);
    if (strcmp(method, "resources/read") == 0)
        return routed(x, msg, params, "uri", true, true, reply);
    if (strcmp(method, "completion/complete") == 0) {
        json_t *ref = json_object_get(params, "ref");
        bool uri = json_is_string(json_object_get(ref, "uri"));
        return routed(x, msg, ref, uri ? "uri" : "name", uri, false, reply);
    }
    if (strcmp(method, "logging/setLevel") == 0)
        return to_all(x, msg, reply);
    if (!x->federated) {
        /* one server: what the gateway does not know goes to it as it is */
        struct relay rl;
        return relay(x, 0, msg, true, reply, &rl);
    }
    char message[200];
    snprintf(message, sizeof(message), "method not found: \"%.128s\"", method);
    *reply = tg_mcp_rpc_error(id, TG_MCP_METHOD_NOT_FOUND, message);
    return TG_OK;
}

void tg_mcp_federate_forward(struct tg_mcp_ctx *x, json_t *msg)
{
    for (size_t i = 0; i < x->n_servers; i++) {
        if (find_server(x, x->servers[i]->name) < 0)
            continue;
        struct relay rl = {.x = x};
        char why[320];
        enum outcome out = call_server(x, i, msg, &rl, NULL, why, sizeof(why));
        json_decref(rl.final);
        /* a notification gets no response: 202 from the server is the success */
        if (out != SENT)
            tg_log_warn(x->r->request_id, "a notification was not delivered: %s", why);
    }
}
