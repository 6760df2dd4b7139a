/*
 * mcp_upstream.h — one HTTP exchange with one configured MCP server over the
 * Streamable HTTP transport, through upstream.c: POST a JSON-RPC message (the
 * reply is application/json or a text/event-stream, each message handed over
 * as it arrives), GET the server-to-client stream (bytes relayed as they come),
 * DELETE a session. The URL and credentials are the config's; each call has
 * its deadline; the server's circuit (balancer.c, shared by the host's
 * processes) refuses calls while it is open.
 *
 * Not here: what the messages mean (mcp.c, mcp_federate.c).
 */
#ifndef TG_MCP_UPSTREAM_H
#define TG_MCP_UPSTREAM_H

#include "common.h"
#include "config.h"
#include "mcp_session.h"
#include "upstream.h"

struct tg_request;

struct tg_mcp_upstream_call {
    /* in */
    const struct tg_mcp_server *server;
    const char *method;           /* "POST", "GET" or "DELETE" */
    const char *session_id;       /* the server's Mcp-Session-Id, or NULL */
    const char *protocol_version; /* MCP-Protocol-Version to send, or NULL */
    const char *last_event_id;    /* GET: Last-Event-ID to send, or NULL */
    const char *body;             /* POST: one JSON-RPC message or a batch */
    size_t body_len;
    /* POST: each JSON-RPC message the server sends (NUL-terminated); non-TG_OK stops */
    int (*on_message)(void *ctx, const char *data, size_t len);
    /* GET: the stream's bytes as they come; non-TG_OK stops */
    int (*on_bytes)(void *ctx, const char *data, size_t len);
    void *ctx;
    /* out */
    enum tg_upstream_result result;
    long status;
    bool event_stream;                              /* the reply was text/event-stream */
    char session_id_out[TG_MCP_MAX_SESSION_ID + 1]; /* Mcp-Session-Id the server answered */
    char error[256];                                /* why it failed, for the log */
};

/*
 * Performs c for r (r's thread's handle, r's arena). TG_OK when a complete HTTP
 * reply came (any status: c->status); TG_ERROR with c->result and c->error
 * saying why not (unreachable, deadline, dropped mid-stream, a message over
 * mcp.max_upstream_bytes, circuit open, the client left).
 */
int tg_mcp_upstream_perform(struct tg_request *r, struct tg_mcp_upstream_call *c);

#endif
