/*
 * mcp_access.h — who may call which MCP tool, how often, and the record of every
 * tool call (issue 13, items 4 and 5). The /mcp endpoint (mcp*.c) asks here at its
 * authorization and audit points; nothing here speaks MCP or JSON-RPC.
 *
 *   grants   tollgate.mcp_grants (sql/017_mcp.sql): the union of the caller's
 *            group's, role's and key's grants; servers and tools by name or glob
 *            ('*' any run, '?' one character), optional argument constraints
 *            ({"arg": {"enum": [...]}} or {"arg": {"pattern": "POSIX ERE"}}).
 *   limits   tollgate.mcp_admit: `requests` quotas and token buckets per key, user,
 *            group, server or tool, all or none, in one round trip.
 *   audit    mcp_audit.c: one row per call, on disk before PostgreSQL, batched.
 *   metrics  metrics_mcp.c: tollgate_mcp_calls_total and the duration histogram.
 *
 * Not here: the MCP transport, sessions and federation (mcp*.c), the usage of
 * LLM requests (settle.c).
 */
#ifndef TG_MCP_ACCESS_H
#define TG_MCP_ACCESS_H

#include <jansson.h>

#include "common.h"

struct tg_arena;
struct tg_request;
struct tg_mcp_grants; /* the caller's MCP grants; allocated in r->arena */

/*
 * The caller's identity and MCP grants in one round trip (tollgate.mcp_identify):
 * reads the credential if tg_auth_read was not called yet, so the endpoint may
 * call this instead of tg_auth_identify (one round trip, not two). Sets
 * r->identity. TG_OK with *out set; TG_DECLINED with a 403 recorded by
 * tg_request_fail when the caller has no MCP access at all (a consumer key or
 * principal without MCP grants); TG_ERROR with the error recorded (401, 403 from
 * RBAC, 503 when the database is unavailable).
 */
int tg_mcp_access_load(struct tg_request *r, struct tg_mcp_grants **out);

/* Whether g lets its caller see and call tool `tool` of server `server` (pure, no I/O). */
bool tg_mcp_access_allows(const struct tg_mcp_grants *g, const char *server, const char *tool);

/*
 * Whether the arguments (a JSON object, may be NULL) meet the argument constraints
 * of a grant that allows server/tool: true when one such grant has none, or when
 * the arguments meet every constraint of one of them (an absent argument meets
 * its constraint; a pattern applies to strings only: any other value fails it).
 * False when no grant allows the tool.
 */
bool tg_mcp_access_args_ok(const struct tg_mcp_grants *g, const char *server, const char *tool,
                           const json_t *arguments);

/*
 * Admits one tools/call: request buckets and `requests` quotas per key, user,
 * group, server, tool (tollgate.mcp_admit, one round trip). TG_OK; TG_DECLINED
 * with a 429 recorded (tg_request_fail, retry-after header set, r->outcome
 * "rate_limited"); TG_ERROR with the error recorded (503: database unavailable).
 */
int tg_mcp_access_admit(struct tg_request *r, const char *server, const char *tool);

/* One tools/call done (or refused). */
struct tg_mcp_call {
    const char *server;
    const char *tool;
    const char *code;  /* "ok", "error" (tool returned isError), "refused", "rate_limited",
                          "upstream_error", "timeout", "cancelled" */
    int jsonrpc_error; /* 0 or the JSON-RPC error code answered */
    long long duration_us;
    long long bytes_in;  /* the call's request bytes */
    long long bytes_out; /* the result bytes relayed */
    /* payloads: only for a server with mcp.servers.NAME.audit_payloads on; else false and
     * the row has neither (nor its columns) */
    bool payloads;
    const json_t *arguments; /* as the server received them (masked), or NULL (borrowed) */
    const json_t *result;    /* the response's result or error as the client got it, or NULL */
    size_t payload_cap; /* each, at most these bytes of compact JSON (mcp.audit_payload_bytes) */
};

/*
 * Records call: its audit row is appended to the host's audit file
 * (mcp_audit.c) before this returns, and the sweeper moves it to
 * tollgate.mcp_calls in batches; tollgate_mcp_calls_total and the duration
 * histogram are counted. The row holds arguments and result only when
 * call->payloads; they reach nothing else (no log, metric or error). Failures
 * are logged (server and tool only), never the caller's problem.
 */
void tg_mcp_access_record(struct tg_request *r, const struct tg_mcp_call *call);

/* ---- pure helpers, exported for the unit tests ---- */

/* Whether name matches glob ('*' any run, '?' one character, the rest literal). */
bool tg_mcp_access_glob(const char *glob, const char *name);

/*
 * Parses mcp_identify's grants (a JSON array of {server, tools, args}) into *out
 * (in arena; the parsed JSON is released by an arena cleanup). TG_ERROR when it
 * is not that shape or a pattern does not compile.
 */
int tg_mcp_access_parse(struct tg_arena *arena, const char *grants_json,
                        struct tg_mcp_grants **out);

/* The caller's identity and the call's ids, as an audit row carries them. */
struct tg_mcp_audit_who {
    const char *call_id;    /* uuid */
    const char *request_id; /* uuid */
    const char *ts;         /* ISO 8601 UTC */
    long long api_key_id;   /* 0: none (a JWT caller) */
    const char *key_prefix, *user_id, *group_id, *role;
};

/*
 * The audit row of call as mcp_calls_add takes it: a compact JSON object
 * (malloc'd), or NULL when memory ran out. With call->payloads it has
 * "arguments" and "result": each the value itself when its compact JSON is at
 * most call->payload_cap bytes, else {"truncated": true, "bytes": N} (N: its
 * size); null when absent. A row that would still exceed
 * TG_MCP_ACCESS_ROW_MAX has both as markers.
 */
#define TG_MCP_ACCESS_ROW_MAX (64 * 1024) /* one audit-file record (frame.h) */
char *tg_mcp_access_encode(const struct tg_mcp_audit_who *who, const struct tg_mcp_call *call);

#endif
