/*
 * mcp_gate.h — the ONE place where the MCP gateway asks who may see and call
 * which tool, and where it records each tool call. Today every tool is listed
 * and every call admitted, and each call is logged; MCP access control and
 * audit (mcp_access.h) plug in here and nowhere else:
 *   tg_mcp_gate_open      → tg_mcp_access_load
 *   tg_mcp_gate_may_list  → tg_mcp_access_allows
 *   tg_mcp_gate_may_call  → tg_mcp_access_allows, _args_ok, _admit
 *   tg_mcp_gate_note_call → tg_mcp_access_record
 */
#ifndef TG_MCP_GATE_H
#define TG_MCP_GATE_H

#include "common.h"

struct tg_request;
struct json_t;

/* What a tool call came to, for the audit (the fields of mcp_access.h's struct tg_mcp_call). */
struct tg_mcp_gate_call {
    const char *server;
    const char *tool;
    const char *code;  /* "ok", "error", "refused", "rate_limited", "upstream_error", "timeout",
                          "cancelled" */
    int jsonrpc_error; /* 0 or the JSON-RPC error code answered */
    long long duration_us;
    long long bytes_in;
    long long bytes_out;
    /* borrowed, may be NULL; kept in the audit row only for a server with
     * mcp.servers.NAME.audit_payloads on (capped at mcp.audit_payload_bytes) */
    const struct json_t *arguments; /* as the server received them: after the guardrails */
    const struct json_t *result;    /* the response's result or error, as the client got it */
};

/*
 * After identification: the caller's MCP grants for r (kept for the request).
 * TG_OK; else TG_ERROR or TG_DECLINED with r's error recorded (403: no MCP access).
 */
int tg_mcp_gate_open(struct tg_request *r);

/* Whether tool `tool` of server `server` appears in the caller's tools/list. */
bool tg_mcp_gate_may_list(struct tg_request *r, const char *server, const char *tool);

/*
 * Whether the caller may call it with arguments (borrowed, may be NULL), and
 * the call is admitted by its limits. TG_OK; TG_DECLINED with *code the JSON-RPC
 * error code and message (a fixed text naming the tool, in r's arena) to answer.
 */
int tg_mcp_gate_may_call(struct tg_request *r, const char *server, const char *tool,
                         const struct json_t *arguments, int *code, const char **message);

/* One tools/call done or refused: its audit (with its payloads if the server opted in) and
 * metrics. */
void tg_mcp_gate_note_call(struct tg_request *r, const struct tg_mcp_gate_call *call);

#endif
