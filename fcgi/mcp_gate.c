/*
 * mcp_gate.c — who may list and call which MCP tool, and the record of each
 * call (see mcp_gate.h). Until MCP access control lands, everything is allowed
 * and each call is logged.
 */
#include "mcp_gate.h"

#include "log.h"
#include "request.h"

int tg_mcp_gate_open(struct tg_request *r)
{
    (void)r;
    return TG_OK;
}

bool tg_mcp_gate_may_list(struct tg_request *r, const char *server, const char *tool)
{
    (void)r, (void)server, (void)tool;
    return true;
}

int tg_mcp_gate_may_call(struct tg_request *r, const char *server, const char *tool,
                         const struct json_t *arguments, int *code, const char **message)
{
    (void)r, (void)server, (void)tool, (void)arguments;
    *code = 0;
    *message = NULL;
    return TG_OK;
}

void tg_mcp_gate_note_call(struct tg_request *r, const struct tg_mcp_gate_call *call)
{
    tg_log_info(
        r->request_id,
        "mcp tool call: server \"%s\" tool \"%s\" code %s jsonrpc_error %d duration_us %lld "
        "bytes_in %lld bytes_out %lld",
        call->server, call->tool, call->code, call->jsonrpc_error, call->duration_us,
        call->bytes_in, call->bytes_out);
}
