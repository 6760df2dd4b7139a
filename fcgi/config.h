/*
 * config.h — the gateway's JSON configuration, loaded and validated once at start.
 *
 * A bad config is refused with the JSON path of the bad field
 * ("config: providers.anthropic.base_url: must be an http(s) URL"). String values
 * written "$NAME" are read from the environment variable NAME (secrets stay out of
 * the file). Identity, quotas and prices live in PostgreSQL, not here.
 * The loaded config is immutable and shared by every thread of the process.
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include "bound_config.h"
#include "common.h"
#include "netaddr.h"
#include "config_enrich.h"
#include "config_otel.h"

struct json_t; /* jansson's json_t */
struct tg_guard_rules;

/* What a backend speaks (fcgi/providers/: one module each). */
enum tg_provider_type {
    TG_PROVIDER_ANTHROPIC,
    TG_PROVIDER_OPENAI, /* OpenAI, and any OpenAI-compatible base URL (vLLM, Ollama, ...) */
    TG_PROVIDER_AZURE_OPENAI,
    TG_PROVIDER_BEDROCK,
    TG_PROVIDER_GEMINI,
    TG_PROVIDER_VERTEX,
    TG_PROVIDER_HTTP, /* any JSON HTTP backend, forwarded as it is */
};

struct tg_provider {
    const char *name; /* the key under "providers" */
    enum tg_provider_type type;
    const char *base_url; /* no trailing slash; only ever from the config */
    const char *api_key;  /* secret: never logged; NULL when the type needs none */
    long connect_timeout_ms;
    long first_byte_timeout_ms;        /* from the request sent to the first byte of the reply */
    long idle_timeout_ms;              /* between two pieces of a stream */
    long timeout_ms;                   /* the whole call */
    const char *api_version;           /* azure_openai: the api-version query parameter */
    const char *region;                /* bedrock: the AWS region (SigV4's too) */
    const char *aws_access_key_id;     /* bedrock, SigV4: secret-bearing */
    const char *aws_secret_access_key; /* bedrock, SigV4: secret */
    const char *aws_session_token;     /* bedrock, SigV4: secret; NULL: none */
    const char *project;               /* vertex */
    const char *location;              /* vertex */
    const char *service_account_file;  /* vertex: the service-account key's path */
    const char *token_url; /* vertex: where the assertion is exchanged; NULL: the key's */
    const char *path;      /* http: appended to base_url; NULL: the client's path */
};

/* One backend of a model's pool: a provider and the model's name there. */
struct tg_backend {
    const struct tg_provider *provider;
    const char
        *upstream_model; /* the model (or deployment, or modelId) the provider is asked for */
    int priority;        /* 1 serves first; 2 only when every 1 is down or open */
    int weight;          /* share of traffic among backends of one priority */
    const char *id;      /* "provider/upstream_model": the circuit breaker's key */
};

#define TG_MAX_BACKENDS 16 /* a model's pool holds at most this many */

enum tg_model_kind { TG_MODEL_CHAT, TG_MODEL_EMBEDDINGS };

struct tg_model {
    const char *name; /* canonical name: prices and usage rows use it */
    enum tg_model_kind kind;
    const struct tg_provider *provider; /* the first backend's provider (before a choice is made) */
    struct tg_backend *backends;        /* the pool, in config order; owned */
    size_t n_backends;
    const char **aliases; /* names clients may use instead */
    size_t n_aliases;
    int64_t max_output_tokens; /* a larger max_tokens is refused (400) */
    int64_t max_input_tokens;  /* the context window: what one sampling step can read */
    bool max_input_tokens_set; /* given in the file, not the default */
};

/* A request token bucket (agentgateway's localRateLimit): 1 token per request. */
enum tg_rate_limit_per { TG_RL_PER_KEY, TG_RL_PER_USER, TG_RL_PER_GROUP, TG_RL_PER_ROUTE };
enum tg_rate_limit_mode { TG_RL_LOCAL, TG_RL_GLOBAL };

struct tg_rate_limit {
    const char *name;
    enum tg_rate_limit_per per;   /* one bucket per key, user, group or route */
    enum tg_rate_limit_mode mode; /* local: shared memory of this host; global: PostgreSQL */
    const char *match_key;        /* only this key prefix / user / group; NULL: any */
    const char *match_user;
    const char *match_group;
    int64_t max_tokens;
    int64_t tokens_per_fill;
    int64_t fill_interval_ms;
};

struct tg_jwt_issuer; /* auth_jwt.h */

#define TG_ADMIN_KEY_HASH_LEN 32 /* SHA-256 */

#define TG_METRICS_TOKEN_HASH_LEN 32 /* SHA-256 */

/* failover: retries on another backend of the pool, and the circuit breaker. */
#define TG_MAX_RETRY_STATUSES 16
struct tg_failover_config {
    int max_attempts;       /* backends tried per request at most (1: no retry) */
    long backoff_base_ms;   /* exponential backoff with full jitter from here */
    long backoff_max_ms;    /* ... up to here (retry-after honoured within it) */
    long total_deadline_ms; /* no new attempt starts after this, from the first */
    int retry_statuses[TG_MAX_RETRY_STATUSES]; /* a backend answering one of these failed */
    size_t n_retry_statuses;
    int failure_threshold; /* circuit: failures within window_ms open it ... */
    long window_ms;
    long cooldown_ms; /* ... for this long; then one half-open probe */
};

/*
 * routes: the operator's routing rules, tried in order before the built-in
 * paths (routes.c matches them). A rule matches on path (exact, or a prefix
 * ending in "*"), method, Host, header and query values, and the request's
 * model (the name the client wrote); it answers with a direct response, sends
 * the request to another model (a pool), or passes it to an http provider.
 */
#define TG_ROUTE_MAX_PAIRS 8
struct tg_route_pair {
    const char *name; /* lower case for headers */
    const char *value;
};

struct tg_config_route {
    const char *name;
    /* match: every given criterion must hold */
    const char *path;
    bool path_prefix; /* path ended in "*" */
    const char *method;
    const char *host;
    struct tg_route_pair headers[TG_ROUTE_MAX_PAIRS];
    size_t n_headers;
    struct tg_route_pair query[TG_ROUTE_MAX_PAIRS];
    size_t n_query;
    const char *match_model;
    /* action: exactly one */
    int direct_status; /* 0: no direct response */
    struct tg_route_pair direct_headers[TG_ROUTE_MAX_PAIRS];
    size_t n_direct_headers;
    const char *direct_body;
    const struct tg_model *model; /* "model": served by this model instead */
    const struct tg_model *http;  /* "http": passed as it is to this model's http provider */
};

/* cache: the response cache (response_cache.c); off unless the section says enabled. */
enum tg_cache_scope {
    TG_CACHE_SCOPE_KEY,
    TG_CACHE_SCOPE_USER,
    TG_CACHE_SCOPE_GROUP,
    TG_CACHE_SCOPE_GLOBAL
};
struct tg_cache_config {
    bool enabled;
    enum tg_cache_scope scope; /* whose entries a request may see */
    long ttl_ms;
    size_t max_bytes;         /* the host's shared-memory segment */
    bool nonzero_temperature; /* also cache chat requests without temperature 0 */
};

/*
 * guardrails.webhook and guardrails.moderation: a remote check of the request's
 * texts after the local rules (guard_webhook.c). url NULL: not configured.
 */
enum tg_guard_hook_kind { TG_GUARD_HOOK_WEBHOOK, TG_GUARD_HOOK_MODERATION };
struct tg_guard_hook {
    enum tg_guard_hook_kind kind;
    char *url; /* http(s), only ever from the config */
    long timeout_ms;
    long connect_timeout_ms;
    bool fail_open; /* on_error "open": an unanswered check lets the request pass */
    char **headers; /* "Name: value" lines sent with the call: secret, never logged */
    size_t n_headers;
    char *model;       /* moderation: the moderation model asked for */
    char **categories; /* moderation: the categories that block; none: any flagged */
    size_t n_categories;
};

enum tg_estimator { TG_ESTIMATE_UPPER_BOUND, TG_ESTIMATE_APPROXIMATE };
enum tg_db_down_policy { TG_DB_DOWN_DENY, TG_DB_DOWN_LOCAL_ONLY };

/* mcp.servers.NAME (config_mcp.c): one MCP server behind /mcp, reached over Streamable HTTP */
#define TG_MCP_MAX_SERVERS 16
#define TG_MCP_MAX_NAME 32
struct tg_mcp_server {
    char *name;     /* [a-z0-9_-], no "__", no leading or trailing "_" */
    char *url;      /* http(s), only ever from the config */
    char **headers; /* "Name: value" lines sent on every call (secrets: never logged) */
    size_t n_headers;
    long timeout_ms; /* one call, or the wait for the next event of its stream */
    long connect_timeout_ms;
    long stream_timeout_ms; /* GET: the server-to-client stream is relayed so long at most */
    bool audit_payloads;    /* the audit rows of its tools/calls keep arguments and result */
};

/* mcp: the MCP gateway (mcp.c); n_servers 0: /mcp is not served */
struct tg_mcp_config {
    struct tg_mcp_server *servers;
    size_t n_servers;
    char *session_secret;      /* HMAC key of the session tokens (mcp_session.c); secret */
    size_t max_message_bytes;  /* a client's POST body, at most (413 beyond) */
    size_t max_upstream_bytes; /* one message from a server, at most */
    long session_ttl_s;        /* a session token's lifetime */
    char *resource;            /* the public base URL ("https://gw.example"), or NULL: from Host */
    /* an audited argument or result, at most (over it: a marker; mcp_access.c) */
    size_t audit_payload_bytes;
};

struct tg_config {
    int processes; /* server.processes: worker processes the master keeps running */
    int threads;   /* server.threads: request threads per worker (plus one spare) */
    long thread_stack_kib;
    long queue_timeout_ms;
    /* server.queue_timeout_ms: a request beyond capacity waits so long */ /* server.thread_stack_kib:
                                                                              each worker
                                                                              thread's stack */
    size_t max_body_bytes;
    size_t max_response_bytes;
    long drain_timeout_ms;  /* server.drain_timeout_ms: reading on after the client left */
    size_t drain_max_bytes; /* server.drain_max_bytes: at most this much of it */
    long queue_deadline_ms; /* server.queue_deadline_ms: older requests are not forwarded; 0: off */

    const char *db_url; /* secret-bearing: never logged */
    int db_pool_size;
    long db_connect_timeout_ms;
    long db_statement_timeout_ms;

    struct tg_provider *providers;
    size_t n_providers;
    struct tg_model *models;
    size_t n_models;

    enum tg_estimator estimator;       /* quotas.estimator */
    enum tg_db_down_policy on_db_down; /* quotas.on_database_down */
    long sweep_interval_ms;            /* quotas.sweep_interval_ms */
    long reservation_ttl_ms;           /* quotas.reservation_ttl_ms */
    struct tg_bounds_config bounds;    /* bounds (bound_config.c; bound.c applies it) */
    struct tg_failover_config failover;
    struct tg_config_route *routes; /* routes (routes.c), in order */
    struct tg_guard_rules *guard;   /* guardrails (guard.c); NULL: none */
    char **guard_http_paths;        /* guardrails.http_paths: an http route's fields looked at */
    size_t n_guard_http_paths;
    struct tg_guard_hook guard_webhook;    /* guardrails.webhook (url NULL: none) */
    struct tg_guard_hook guard_moderation; /* guardrails.moderation (url NULL: none) */
    bool guard_responses;                  /* guardrails.responses: replies are masked too */
    size_t guard_response_window_bytes;    /* guardrails.response_window_bytes: a stream's carry */
    /* guardrails.mcp (mcp_guard.c): tools/call arguments and tool results checked, and the most
     * an injection rule does to a result (enum tg_guard_action) */
    bool guard_mcp_arguments, guard_mcp_results;
    int guard_mcp_result_injection;
    struct tg_cache_config cache;
    size_t n_routes;
    struct tg_enrich_config enrich; /* enrich (config_enrich.c; enrich.c applies it) */
    struct tg_otel_config otel;     /* otel (config_otel.c; otel.c exports); endpoint NULL: off */
    struct tg_mcp_config mcp;       /* mcp (config_mcp.c; mcp.c serves it) */

    struct tg_rate_limit *rate_limits;
    size_t n_rate_limits;

    struct tg_jwt_issuer **jwt_issuers; /* auth.jwt, in config order; owned */
    size_t n_jwt_issuers;

    /* auth.attribution: how a key trusted with it names the end user and team */
    const char *attribution_user_header;  /* "x-tollgate-user" by default */
    const char *attribution_group_header; /* "x-tollgate-group" by default */

    /* auth.failure_limit and auth.unknown_key_cache_ms: pre-authentication (preauth.h) */
    long auth_failure_max;        /* failed authentications per address per period; 0 = off */
    long auth_failure_per_ms;     /* the period */
    long auth_unknown_key_ttl_ms; /* how long "no such key" is remembered; 0 = off */

    /* admin: the /admin/ API, off unless the section is present */
    bool admin_enabled;
    unsigned char (*admin_key_hashes)[TG_ADMIN_KEY_HASH_LEN]; /* SHA-256 of each admin key */
    size_t n_admin_keys;
    const char *admin_jwt_role;     /* a JWT carrying this role is an admin; NULL: none */
    const char **admin_jwt_issuers; /* the "iss" values that may grant it; owned */
    size_t n_admin_jwt_issuers;
    struct tg_netaddr *admin_allow; /* who may reach /admin/ (REMOTE_ADDR); owned */
    size_t n_admin_allow;
    const char *admin_ui_dir; /* the dashboard's files (admin.ui_dir, else TG_UI_DIR); owned */

    /* metrics: who may read GET /metrics, and how many label sets it keeps */
    size_t metrics_max_series;
    struct tg_netaddr *metrics_allow; /* addresses and networks; owned */
    size_t n_metrics_allow;
    bool metrics_token_set;
    unsigned char metrics_token_hash[TG_METRICS_TOKEN_HASH_LEN]; /* SHA-256 of the token */

    const char *log_file;  /* NULL: stderr */
    const char *spool_dir; /* where unsettled usage waits for the database */
    bool journal_fsync;    /* spool.journal_fsync: usage on disk before the reply */
};

/*
 * Loads and validates the config at path. On success returns TG_OK and a config
 * the caller owns (free with tg_config_free). On failure returns TG_ERROR and
 * writes "config: <path>: <problem>" into err (always NUL-terminated).
 */
int tg_config_load(const char *path, struct tg_config **out, char *err, size_t err_size);

/* Same as tg_config_load, from a JSON text (for tests). */
int tg_config_parse(const char *text, struct tg_config **out, char *err, size_t err_size);

void tg_config_free(struct tg_config *config);

/*
 * Reads only database.url from the config at path (TOLLGATE_DATABASE_URL wins),
 * for tools that need no provider secrets (tollgatectl under cron). On success
 * *url is a string the caller frees.
 */
int tg_config_load_db_url(const char *path, char **url, char *err, size_t err_size);

/* The model whose name or alias is name, or NULL. Borrowed from config. */
const struct tg_model *tg_config_find_model(const struct tg_config *config, const char *name);

#endif
