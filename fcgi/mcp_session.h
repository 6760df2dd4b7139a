/*
 * mcp_session.h — an MCP session of the gateway as a signed token: the value of
 * its Mcp-Session-Id header. No row per session anywhere: the token itself
 * carries what a worker needs to serve the session's next message, so any
 * worker process of any host with the same mcp.session_secret serves it.
 *
 * It holds the protocol revision negotiated with the client, the endpoint it
 * belongs to ("" for /mcp, else the server of /mcp/{server}), a digest of the
 * caller it was made for, its expiry, and per server its upstream session id
 * and revision. Written "tg1.<base64url JSON>.<base64url HMAC-SHA256>"; the
 * MAC covers everything before the last dot. Signed, not encrypted: the
 * client may read the upstream session ids, which only the gateway can use.
 *
 * Not here: revocation (DELETE ends the upstream sessions, so a deleted
 * session's token fails at the first server that forgot it).
 */
#ifndef TG_MCP_SESSION_H
#define TG_MCP_SESSION_H

#include "common.h"
#include "config.h"

#define TG_MCP_MAX_SESSION_ID 128 /* an upstream's Mcp-Session-Id, at most */
#define TG_MCP_MAX_TOKEN 8192     /* a token's text, at most */
#define TG_MCP_CALLER_LEN 32      /* hex digits of the caller digest */

struct tg_mcp_upstream_session {
    char server[TG_MCP_MAX_NAME + 1];
    char session_id[TG_MCP_MAX_SESSION_ID + 1]; /* "": the server gave none */
    char version[16];                           /* the revision that server answered */
};

struct tg_mcp_session {
    char version[16];                   /* negotiated with the client */
    char scope[TG_MCP_MAX_NAME + 1];    /* "" for /mcp, the server of /mcp/{server} */
    char caller[TG_MCP_CALLER_LEN + 1]; /* tg_mcp_session_caller's digest */
    int64_t expires_s;                  /* Unix seconds */
    size_t n;
    struct tg_mcp_upstream_session up[TG_MCP_MAX_SERVERS];
};

/* caller's digest (hex of SHA-256's first 16 bytes) into out: who a session belongs to. */
void tg_mcp_session_caller(const char *caller, char out[TG_MCP_CALLER_LEN + 1]);

/*
 * s as a token signed with secret into out (out_size bytes, NUL-terminated).
 * Returns its length, or TG_ERROR when it does not fit or memory ran out.
 */
int tg_mcp_session_encode(const struct tg_mcp_session *s, const char *secret, char *out,
                          size_t out_size);

/*
 * The session token stands for, into out. TG_OK; TG_DECLINED when it is not a
 * token signed with secret, malformed, or expired at now_s (*why: a fixed
 * phrase, for the log).
 */
int tg_mcp_session_decode(const char *token, const char *secret, int64_t now_s,
                          struct tg_mcp_session *out, const char **why);

/* The upstream session of server in s, or NULL. */
const struct tg_mcp_upstream_session *tg_mcp_session_find(const struct tg_mcp_session *s,
                                                          const char *server);

#endif
