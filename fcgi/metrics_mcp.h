/*
 * metrics_mcp.h — the MCP gateway's metrics in the host's shared memory:
 * tollgate_mcp_calls_total{server,tool,code} and
 * tollgate_mcp_call_duration_seconds (one histogram, metrics.c's buckets).
 * The label set is bounded: TG_SHM_MCP_SERIES series; a tool that finds the
 * table full (or a name too long for its field) is counted under tool="_other"
 * of its server, and when even that has no slot, under server="_other".
 */
#ifndef TG_METRICS_MCP_H
#define TG_METRICS_MCP_H

#include "common.h"
#include "shm.h"

/* Counts one call (code one of mcp_access.h's; anything else counts as "error"). */
int tg_metrics_mcp_add(struct tg_shm_mcp *m, const char *server, const char *tool, const char *code,
                       long long duration_us);

/* The exposition text of m (malloc'd, *len set), or NULL when out of memory or locked. */
char *tg_metrics_mcp_text(struct tg_shm_mcp *m, size_t *len);

#endif
