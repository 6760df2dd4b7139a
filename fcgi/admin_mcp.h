/*
 * admin_mcp.h — the admin API's MCP access control (issue 13, item 4): who may
 * call which MCP tool and the limits on tool calls, over the SQL functions of
 * sql/017_mcp.sql that tollgatectl's `mcp` commands call too (each change one
 * statement, its audit row written by the function with the admin as actor).
 *
 *   GET    /admin/mcp/grants       {"grants": [mcp_grant_list rows]}
 *   PUT    /admin/mcp/grants       {"subject_kind", "subject", "server", "tools", "args"?}
 *                                  → the grant (mcp_grant_set)
 *   DELETE /admin/mcp/grants       {"subject_kind", "subject", "server", "tools"?}
 *                                  → {"revoked": N}; 404 when none matched
 *   GET    /admin/mcp/limits       {"limits": [mcp_limit_list rows]}
 *   PUT    /admin/mcp/limits       {"per", "subject"?, "window" + "limit" | "max_tokens",
 *                                   "tokens_per_fill"?, "fill_interval_ms"?} → the limit
 *   DELETE /admin/mcp/limits/{id}  → {"id": N, "deleted": true}; 404 when there is none
 *
 * The caller (admin.c) has authenticated the admin. Not here: the /mcp endpoint.
 */
#ifndef TG_ADMIN_MCP_H
#define TG_ADMIN_MCP_H

#include <stddef.h>

struct tg_request;

/*
 * Answers /admin/mcp/<segments...> (the 0 to 2 decoded segments after "mcp") for
 * actor ("admin-key:<8 hex>" or "jwt:<user>"). TG_OK once a response was sent;
 * TG_ERROR with r->error set: 404 unknown path or subject, 405 with Allow, 400 a
 * bad body naming its field, 503 the database unavailable.
 */
int tg_admin_mcp_handle(struct tg_request *r, const char *actor, const char *const *segments,
                        size_t n);

#endif
