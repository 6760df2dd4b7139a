/*
 * mcp.h — the MCP gateway's endpoints: /mcp (every configured MCP server,
 * federated) and /mcp/{server} (one), over MCP's Streamable HTTP transport,
 * and GET /.well-known/oauth-protected-resource (RFC 9728). See mcp.c.
 */
#ifndef TG_MCP_H
#define TG_MCP_H

struct tg_request;

/*
 * Serves one POST, GET or DELETE of /mcp or /mcp/{server} (route.c sent it
 * here). TG_OK when answered; TG_ERROR with r's error recorded (answered by
 * the pipeline as a JSON-RPC error object).
 */
int tg_mcp_handle(struct tg_request *r);

/* GET /.well-known/oauth-protected-resource[/path]: the metadata document. TG_OK or TG_ERROR. */
int tg_mcp_metadata(struct tg_request *r);

#endif
