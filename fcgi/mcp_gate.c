/*
 * mcp_gate.c — who may list and call which MCP tool, and the record of each
 * call (see mcp_gate.h), on mcp_access.c: the caller's grants (loaded with its
 * identity in one round trip), the argument constraints, the tool-call limits,
 * and the audit row and metrics of every tools/call.
 */
#include "mcp_gate.h"

#include <stdio.h>
#include <string.h>

#include "mcp_access.h"
#include "mcp_rpc.h"
#include "request.h"

int tg_mcp_gate_open(struct tg_request *r)
{
    return tg_mcp_access_load(r, &r->mcp_grants);
}

bool tg_mcp_gate_may_list(struct tg_request *r, const char *server, const char *tool)
{
    return r->mcp_grants != NULL && tg_mcp_access_allows(r->mcp_grants, server, tool);
}

/* message, in r's arena: "<what> tool "server/tool"<why>". */
static const char *refusal(struct tg_request *r, const char *server, const char *tool,
                           const char *why)
{
    char text[320];
    snprintf(text, sizeof(text), "tool \"%.64s\" of MCP server \"%.32s\" %s", tool, server, why);
    return tg_arena_strdup(r->arena, text);
}

int tg_mcp_gate_may_call(struct tg_request *r, const char *server, const char *tool,
                         const struct json_t *arguments, int *code, const char **message)
{
    *code = TG_MCP_FORBIDDEN;
    if (!tg_mcp_gate_may_list(r, server, tool)) {
        *message = refusal(r, server, tool, "is not allowed for this caller");
        return TG_DECLINED;
    }
    if (!tg_mcp_access_args_ok(r->mcp_grants, server, tool, arguments)) {
        *message = refusal(r, server, tool, "is not allowed with these arguments");
        return TG_DECLINED;
    }
    const char *outcome = r->outcome;
    int admitted = tg_mcp_access_admit(r, server, tool);
    if (admitted == TG_OK) {
        *code = 0;
        *message = NULL;
        return TG_OK;
    }
    /* a refusal of the call, not of the HTTP request: it answers in JSON-RPC, and the
     * request goes on (a batch may hold other calls) */
    *code = admitted == TG_DECLINED ? TG_MCP_SERVER_ERROR : TG_MCP_INTERNAL_ERROR;
    *message = tg_arena_strdup(r->arena, r->error.message[0] != '\0'
                                             ? r->error.message
                                             : "the tool call could not be admitted");
    r->error = (struct tg_error){0};
    r->outcome = outcome;
    return TG_DECLINED;
}

void tg_mcp_gate_note_call(struct tg_request *r, const struct tg_mcp_gate_call *call)
{
    struct tg_mcp_call row = {
        .server = call->server,
        .tool = call->tool,
        .code = call->code,
        .jsonrpc_error = call->jsonrpc_error,
        .duration_us = call->duration_us,
        .bytes_in = call->bytes_in,
        .bytes_out = call->bytes_out,
    };
    const struct tg_mcp_config *m = &r->config->mcp;
    for (size_t i = 0; i < m->n_servers && call->server != NULL; i++)
        if (m->servers[i].audit_payloads && strcmp(m->servers[i].name, call->server) == 0) {
            row.payloads = true;
            row.arguments = call->arguments;
            row.result = call->result;
            row.payload_cap = m->audit_payload_bytes;
        }
    tg_mcp_access_record(r, &row);
}
