/*
 * request.h — one client request: what was read from FastCGI, who sent it, what
 * the pipeline learned on the way, the single error record, and the response.
 *
 * request.c is the only file that talks to libfcgi. Each worker thread owns one
 * struct tg_request and reuses it: tg_request_accept() fills it, the pipeline
 * runs, tg_request_finish() ends it and resets the arena. Everything a handler
 * allocates for a request comes from r->arena.
 */
#ifndef TG_REQUEST_H
#define TG_REQUEST_H

#include "arena.h"
#include "common.h"
#include "trace.h"
#include "config.h"
#include "usage.h"

struct tg_upstream;
struct tg_db_reservation;
struct tg_credential;
struct tg_otel_notes;
struct json_t; /* jansson's json_t */

/* Which API dialect the client speaks: its errors and replies are shaped so. */
enum tg_dialect {
    TG_DIALECT_ANTHROPIC, /* Messages: {"type":"error","error":{"type","message"}} */
    TG_DIALECT_OPENAI,    /* Chat Completions, Embeddings: {"error":{"message","type",...}} */
    TG_DIALECT_HTTP,      /* an http route: the backend's own API; errors as OpenAI's */
    TG_DIALECT_MCP,       /* /mcp: JSON-RPC {"jsonrpc":"2.0","id":…,"error":{"code","message"}} */
};

enum tg_endpoint {
    TG_EP_NONE,
    TG_EP_MESSAGES,
    TG_EP_CHAT_COMPLETIONS,
    TG_EP_EMBEDDINGS,
    TG_EP_COUNT_TOKENS, /* POST /v1/messages/count_tokens: Anthropic backends only */
    TG_EP_HTTP,         /* a route to an http provider: the body goes as it is */
    TG_EP_DIRECT,       /* a route's direct response */
    TG_EP_MODELS,
    TG_EP_USAGE,
    TG_EP_HEALTH,
    TG_EP_ADMIN, /* everything under /admin/, when the config enables it */
    TG_EP_METRICS,
    TG_EP_MCP,          /* /mcp and /mcp/{server} (mcp.c) */
    TG_EP_MCP_METADATA, /* GET /.well-known/oauth-protected-resource (RFC 9728) */
};

/* Who sent the request, as established by authentication. */
struct tg_identity {
    int64_t api_key_id;     /* 0 when not authenticated by a key */
    const char *key_prefix; /* display prefix ("tg-AbCdEfGh"), never the key */
    const char *user_id;
    const char *group_id;
    const char *role;
};

/*
 * The one error record of a request, set once where the failure is found: what
 * the client is told (status, stable type, message) and what only the log sees.
 */
struct tg_mcp_grants;

struct tg_error {
    int status;        /* 0: no error */
    const char *type;  /* the dialect's error type, e.g. "authentication_error" */
    char message[256]; /* client-safe */
    char detail[256];  /* log-only; never secrets or prompt text */
};

/* The guardrails' outcome for an MCP tools/call (mcp_guard.c), for its audit: the latest call's. */
struct tg_mcp_guard_note {
    const char *server, *tool; /* the call (borrowed) */
    const char *rule; /* the rule of the strongest action taken; "unchecked"; NULL: none matched */
    const char *action; /* "block", "mask" or "warn" (static) */
    const char *where;  /* "arguments" or "result" (static) */
};

struct tg_request {
    struct tg_arena *arena;
    const struct tg_config *config;
    struct tg_upstream *upstream; /* the thread's reusable provider connection */
    void *fcgx;                   /* FCGX_Request *, private to request.c */

    char request_id[37];   /* uuid, the usage row's primary key */
    struct tg_trace trace; /* W3C trace context (trace.c) */
    int64_t t_start_ms;
    char started_at[40];   /* wall clock at accept, ISO 8601 UTC, for the usage row */
    int64_t started_at_ms; /* the same, in Unix milliseconds (prices in force then) */
    const char *method;
    const char *path; /* without the query string */
    char *body;
    size_t body_len;

    enum tg_endpoint endpoint;
    const char *endpoint_path; /* the route's path ("/v1/messages"), as RBAC names it */
    enum tg_dialect dialect;
    const struct tg_config_route *route; /* the operator's routing rule it matched, or NULL */
    struct tg_credential *credential;    /* what the client presented (auth.c), or NULL */
    struct tg_identity identity;
    bool authenticated;

    const struct tg_model *model;
    const struct tg_backend *backend; /* the pool member serving it (config.h) */
    struct json_t *doc;               /* the parsed body (a cleanup of the arena owns it) */
    const char *client_model;         /* the model name as the client wrote it */
    struct json_t *pivot; /* the body as the pivot, once translated (the arena owns it) */
    bool stream;
    int64_t max_tokens;              /* the request's output bound, all choices together */
    int64_t input_bound_tokens;      /* its input bound (bound.c): input + cache tokens; 0: none */
    int64_t max_web_searches;        /* web searches it may make at most (bound.c) */
    const char *anthropic_beta;      /* the beta values to forward, all allowed; NULL: none */
    bool reserved;                   /* a reservation is held: settle or release it */
    struct tg_db_reservation *quota; /* what reserve answered (headers), or NULL */
    bool upstream_contacted;         /* a usage row is owed from here on */
    struct tg_usage usage;
    const char *usage_source; /* NULL: the provider's own figures; "estimated", "reserved_bound" */
    int journal_slot;         /* the journal file holding this request's records; -1: none */
    int64_t upstream_ms;
    int attempts;                /* backends tried (failover); the last one served */
    int64_t t_first_byte_ms;     /* streams: when the first upstream byte was relayed; 0: not yet */
    int64_t cost_micros;         /* -1 until settled */
    const char *outcome;         /* "ok", "upstream_error", ... for logs and usage */
    const char *guard_rule;      /* the guardrail that blocked it, or NULL (borrowed: config) */
    unsigned char cache_key[32]; /* response_cache.c: the request's key (SHA-256) */
    bool cache_miss;             /* a cacheable miss: its reply is stored */
    const struct tg_enrich_entry **enrich; /* the config's enrich entries that apply (enrich.c) */
    size_t n_enrich;

    int status;         /* the status sent (or to send) to the client */
    char *resp_headers; /* "Name: value\r\n" lines not yet sent */
    size_t resp_headers_len;
    bool headers_sent;
    bool client_gone;
    bool peer_seen_open;     /* the client's connection was seen open (peer.h) */
    int64_t peer_checked_ms; /* when it was last looked at (tg_now_ms), 0: never */
    /* called once just before the headers go (enrich.c's response headers), or NULL */
    void (*before_headers)(struct tg_request *r);

    struct tg_error error;
    struct tg_otel_notes *otel; /* otel_span.c's notes (arena), NULL when export is off */
    /* TG_DIALECT_MCP: the JSON-RPC id its error answers (borrowed; NULL: null) and its
     * code (0: the one for the status) */
    struct json_t *jsonrpc_id;
    int jsonrpc_code;
    /* TG_DIALECT_MCP: what the guardrails did to the latest tools/call (mcp_guard.h) */
    struct tg_mcp_guard_note mcp_guard;
    struct tg_mcp_grants *mcp_grants; /* the MCP caller's grants (mcp_access.h), arena */
};

/* Prepares r for the thread's lifetime (arena, FastCGI request on listen_fd). */
int tg_request_init(struct tg_request *r, const struct tg_config *config, int listen_fd);
void tg_request_release(struct tg_request *r);

/*
 * Waits for the next request. Returns TG_OK with r filled (method, path, request
 * id), or TG_ERROR when accepting failed or was interrupted (shutdown).
 */
int tg_request_accept(struct tg_request *r);

/* Ends the response, closes the FastCGI request and resets the arena. */
void tg_request_finish(struct tg_request *r);

/*
 * Reads the body, capped at config->max_body_bytes (413 beyond). Returns TG_OK, or
 * TG_ERROR with r->error set.
 */
int tg_request_read_body(struct tg_request *r);

/*
 * r->body becomes r->doc written again as compact JSON (the arena owns it), so
 * that what is forwarded byte for byte and what the cache keys say the same as
 * r->doc after a step changed it (a mask, an enrichment). TG_OK, or TG_ERROR
 * (out of memory; r->body is unchanged).
 */
int tg_request_body_from_doc(struct tg_request *r);

/* The value of request header name (lower case, e.g. "x-api-key"), or NULL. */
const char *tg_request_header(struct tg_request *r, const char *name);

/*
 * The name of the provider serving r: its backend's, else its model's first;
 * NULL before a model is known.
 */
const char *tg_request_provider(const struct tg_request *r);

/* The value of a FastCGI parameter (e.g. "REMOTE_ADDR"), or NULL. */
const char *tg_request_param(struct tg_request *r, const char *name);

/*
 * Sets the error record — only the first call per request counts, so the place
 * that found the failure names it. detail_fmt may be NULL.
 */
void tg_request_fail(struct tg_request *r, int status, const char *type, const char *message,
                     const char *detail_fmt, ...) TG_PRINTF(5, 6);

/* Queues a response header; dropped if the headers were sent already. */
void tg_request_add_header(struct tg_request *r, const char *name, const char *value);
void tg_request_add_headerf(struct tg_request *r, const char *name, const char *fmt, ...)
    TG_PRINTF(3, 4);

/* Sends "Status:" and the queued headers (once). TG_ERROR when the client is gone. */
int tg_request_send_headers(struct tg_request *r);

/* Writes body bytes (sending headers first). TG_ERROR when the client is gone. */
int tg_request_write(struct tg_request *r, const char *data, size_t len);

/*
 * True when the client is known to be gone: a write failed, or (checked without
 * waiting) the web server closed or aborted the request's connection (once the
 * body was read), or the web server's TCP connection from the client is closed
 * (peer.h: when the web server runs on this host). For a request that waited,
 * and for a long silence upstream, when no write would tell.
 */
bool tg_request_client_left(struct tg_request *r);

/* Pushes what was written to the web server now (streaming). */
int tg_request_flush(struct tg_request *r);

/* Sends a complete response with status, content type and body. */
int tg_request_respond(struct tg_request *r, int status, const char *content_type, const char *body,
                       size_t len);

/*
 * Answers r->error in the request's dialect: a JSON error body when nothing was
 * sent yet, or a final SSE "error" event when a stream had already begun.
 */
void tg_request_send_error(struct tg_request *r);

/*
 * The error type for an HTTP status, in Anthropic's vocabulary (429 →
 * "rate_limit_error"), which the error record keeps whatever the dialect; an
 * OpenAI client is answered with OpenAI's type and code for it.
 */
const char *tg_request_error_type(enum tg_dialect dialect, int status);

#endif
