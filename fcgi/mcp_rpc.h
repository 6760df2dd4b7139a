/*
 * mcp_rpc.h — the pure parts of the MCP gateway (mcp.c): JSON-RPC 2.0 message
 * checks, JSON-RPC error texts, and the federation's names — a tool or prompt
 * "name" of server S is "S__name" on /mcp, a resource URI "u" of S is
 * "tollgate://S/u", and a list's cursor is an opaque token naming the server
 * its page comes from and that server's own cursor.
 *
 * No I/O, no request: each function takes what it needs (unit-tested in
 * tests/unit/test_mcp_rpc.c).
 */
#ifndef TG_MCP_RPC_H
#define TG_MCP_RPC_H

#include "common.h"

struct json_t;
struct tg_arena;

/* JSON-RPC 2.0's error codes, and MCP's */
#define TG_MCP_PARSE_ERROR -32700
#define TG_MCP_INVALID_REQUEST -32600
#define TG_MCP_METHOD_NOT_FOUND -32601
#define TG_MCP_INVALID_PARAMS -32602
#define TG_MCP_INTERNAL_ERROR -32603
#define TG_MCP_SERVER_ERROR -32000    /* the gateway's own refusals */
#define TG_MCP_REQUEST_TIMEOUT -32001 /* as the MCP SDKs name it */
#define TG_MCP_RESOURCE_NOT_FOUND -32002
#define TG_MCP_FORBIDDEN -32003 /* a tool the caller may not call (so, with these arguments) */

#define TG_MCP_MAX_CURSOR 2048 /* a cursor's text, at most */
#define TG_MCP_URI_SCHEME "tollgate://"

enum tg_mcp_rpc_kind {
    TG_MCP_RPC_INVALID,
    TG_MCP_RPC_REQUEST,      /* method and id */
    TG_MCP_RPC_NOTIFICATION, /* method, no id */
    TG_MCP_RPC_RESPONSE,     /* id and one of result or error */
};

/*
 * What msg (borrowed) is, by JSON-RPC 2.0 as MCP restricts it: "jsonrpc" is
 * "2.0"; an id is a string or an integer (never null); params, when present,
 * an object; a response has exactly one of result and error (an object with an
 * integer code and a string message). TG_MCP_RPC_INVALID with *why a fixed
 * phrase saying what is wrong.
 */
enum tg_mcp_rpc_kind tg_mcp_rpc_classify(const struct json_t *msg, const char **why);

/* Whether id (borrowed, may be NULL) is a valid JSON-RPC id (string or integer). */
bool tg_mcp_rpc_id_ok(const struct json_t *id);

/*
 * A new reference to {"jsonrpc":"2.0","id":id,"error":{"code":code,"message":message}};
 * id borrowed, NULL or invalid: null. message is cut to 512 bytes. NULL when out of memory.
 */
struct json_t *tg_mcp_rpc_error(const struct json_t *id, int code, const char *message);

/* A new reference to {"jsonrpc":"2.0","id":id,"result":result}; result stolen. */
struct json_t *tg_mcp_rpc_result(const struct json_t *id, struct json_t *result);

/* "server__name" in a (NULL when out of memory). */
char *tg_mcp_rpc_join(struct tg_arena *a, const char *server, const char *name);

/*
 * Splits "server__name" at its first "__" (a server name holds none, nor ends
 * in "_"): server into server_out (size TG_MCP_MAX_NAME + 1), *name points into
 * prefixed. TG_ERROR when there is no "__", the server part is empty or too
 * long, or the name part is empty.
 */
int tg_mcp_rpc_split(const char *prefixed, char *server_out, const char **name);

/* "tollgate://server/uri" in a (NULL when out of memory). */
char *tg_mcp_rpc_uri_wrap(struct tg_arena *a, const char *server, const char *uri);

/* The inverse: server into server_out (size TG_MCP_MAX_NAME + 1), *uri into wrapped. */
int tg_mcp_rpc_uri_unwrap(const char *wrapped, char *server_out, const char **uri);

/*
 * A list cursor (base64url of ["server", "upstream cursor" or null]) in a.
 * NULL when out of memory or longer than TG_MCP_MAX_CURSOR.
 */
char *tg_mcp_rpc_cursor_encode(struct tg_arena *a, const char *server, const char *upstream);

/*
 * The inverse: server into server_out (size TG_MCP_MAX_NAME + 1), *upstream
 * (in a) NULL when the page is the server's first. TG_ERROR when cursor is not
 * one of ours.
 */
int tg_mcp_rpc_cursor_decode(struct tg_arena *a, const char *cursor, char *server_out,
                             const char **upstream);

/* Whether version is a protocol revision the gateway speaks (2025-06-18, 2025-03-26). */
bool tg_mcp_rpc_version_ok(const char *version);

#endif
