/*
 * mcp_federate.h — what the gateway does with each MCP message once the
 * transport (mcp.c) has checked it: initialize every server of the endpoint
 * and merge their capabilities; merge and page their lists with names
 * prefixed "server__name" (resource URIs "tollgate://server/uri"); route
 * calls back by the prefix; relay a server's reply (its progress
 * notifications first, as an event stream); forward notifications and the
 * client's responses to every server of the session. On /mcp/{server} the
 * same with one server and names as the server gives them.
 *
 * Who may see and call a tool is asked of mcp_gate.h, and nothing else.
 */
#ifndef TG_MCP_FEDERATE_H
#define TG_MCP_FEDERATE_H

#include "common.h"
#include "config.h"
#include "mcp_session.h"

struct tg_request;
struct json_t;

/* One MCP request's context (in r's arena). */
struct tg_mcp_ctx {
    struct tg_request *r;
    const struct tg_mcp_config *cfg;
    const struct tg_mcp_server *servers[TG_MCP_MAX_SERVERS]; /* the endpoint's */
    size_t n_servers;
    bool federated;                /* /mcp: names prefixed */
    struct tg_mcp_session session; /* the session (being made, for initialize) */
    bool may_stream;               /* the reply may be an event stream (not in a batch) */
    bool streamed;                 /* the reply went as an event stream: nothing left to send */
    int reply_status; /* the HTTP status of a JSON reply (200 unless a server failed) */
    bool guard_call;  /* a tools/call is relayed: its messages pass mcp_guard.h first */
};

/*
 * initialize: initializes every server of the endpoint (each within its
 * deadline; one that fails is left out and logged) into x->session, and makes
 * the reply: TG_OK with *reply a new JSON-RPC response (an error one, status
 * 502 in x->reply_status, when no server could be initialized).
 */
int tg_mcp_federate_initialize(struct tg_mcp_ctx *x, struct json_t *msg, struct json_t **reply);

/*
 * Any other request msg (borrowed) of the session: TG_OK with *reply a new
 * JSON-RPC response, or NULL when it went as an event stream (x->streamed);
 * TG_ERROR with r's error recorded when the session is gone at a server (404:
 * the client initializes again).
 */
int tg_mcp_federate_request(struct tg_mcp_ctx *x, struct json_t *msg, struct json_t **reply);

/* A notification or a client's response: to every server of the session (failures logged). */
void tg_mcp_federate_forward(struct tg_mcp_ctx *x, struct json_t *msg);

#endif
