/*
 * metrics_mcp.c — tollgate_mcp_calls_total and tollgate_mcp_call_duration_seconds
 * (metrics_mcp.h), kept in the host's shared memory and rendered by GET /metrics.
 */
#include "metrics_mcp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "textbuf.h"

#define OTHER "_other"
#define TEXT_CAP (4 * 1024 * 1024)

static const char *const codes[TG_SHM_MCP_CODES] = {
    "ok", "error", "refused", "rate_limited", "upstream_error", "timeout", "cancelled"};

static int code_index(const char *code)
{
    for (int i = 0; code != NULL && i < TG_SHM_MCP_CODES; i++)
        if (strcmp(codes[i], code) == 0)
            return i;
    return 1; /* "error" */
}

static struct tg_shm_mcp_series *find(struct tg_shm_mcp *m, const char *server, const char *tool,
                                      int code, uint32_t capacity)
{
    for (uint32_t i = 0; i < m->n_series; i++) {
        struct tg_shm_mcp_series *x = &m->series[i];
        if (x->code == code && strcmp(x->server, server) == 0 && strcmp(x->tool, tool) == 0)
            return x;
    }
    if (m->n_series >= capacity)
        return NULL;
    struct tg_shm_mcp_series *x = &m->series[m->n_series++];
    snprintf(x->server, sizeof(x->server), "%s", server);
    snprintf(x->tool, sizeof(x->tool), "%s", tool);
    x->code = code;
    x->calls = 0;
    return x;
}

int tg_metrics_mcp_add(struct tg_shm_mcp *m, const char *server, const char *tool, const char *code,
                       long long duration_us)
{
    if (server == NULL)
        server = "";
    if (tool == NULL)
        tool = "";
    int c = code_index(code);
    if (tg_shm_mutex_lock(&m->lock) != TG_OK)
        return TG_ERROR;
    struct tg_shm_mcp_series *x = NULL;
    bool server_fits = strlen(server) < TG_SHM_MCP_SERVER;
    if (server_fits && strlen(tool) < TG_SHM_MCP_TOOL)
        x = find(m, server, tool, c, TG_SHM_MCP_SERIES - TG_SHM_MCP_RESERVED);
    if (x == NULL && server_fits)
        x = find(m, server, OTHER, c, TG_SHM_MCP_SERIES);
    if (x != NULL)
        x->calls++;
    else
        m->overflow[c]++;
    m->duration.buckets[tg_prom_bucket(duration_us)]++;
    m->duration.sum_micros += duration_us > 0 ? (uint64_t)duration_us : 0;
    tg_shm_mutex_unlock(&m->lock);
    return TG_OK;
}

static void put_series(struct tg_textbuf *t, const char *server, const char *tool, int code,
                       uint64_t calls)
{
    char s[2 * TG_SHM_MCP_SERVER + 8], to[2 * TG_SHM_MCP_TOOL + 8];
    tg_prom_escape_label(server, s, sizeof(s));
    tg_prom_escape_label(tool, to, sizeof(to));
    tg_textbuf_put(t,
                   "tollgate_mcp_calls_total{server=\"%s\",tool=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                   s, to, codes[code], calls);
}

char *tg_metrics_mcp_text(struct tg_shm_mcp *m, size_t *len)
{
    struct tg_shm_mcp_series *copy = malloc(sizeof(m->series));
    struct tg_textbuf t;
    tg_textbuf_init(&t, 8192, TEXT_CAP);
    if (copy == NULL || t.buf == NULL || tg_shm_mutex_lock(&m->lock) != TG_OK) {
        free(copy);
        free(t.buf);
        return NULL;
    }
    uint32_t n = m->n_series;
    memcpy(copy, m->series, n * sizeof(*copy));
    uint64_t overflow[TG_SHM_MCP_CODES];
    memcpy(overflow, m->overflow, sizeof(overflow));
    struct tg_shm_histogram h = m->duration;
    tg_shm_mutex_unlock(&m->lock);

    tg_textbuf_put(&t,
                   "# HELP tollgate_mcp_calls_total MCP tools/call requests by server, tool and "
                   "outcome (tools beyond the table's capacity under tool=\"_other\").\n"
                   "# TYPE tollgate_mcp_calls_total counter\n");
    for (uint32_t i = 0; i < n; i++)
        put_series(&t, copy[i].server, copy[i].tool, copy[i].code, copy[i].calls);
    for (int c = 0; c < TG_SHM_MCP_CODES; c++)
        if (overflow[c] > 0)
            put_series(&t, OTHER, OTHER, c, overflow[c]);
    tg_textbuf_put(
        &t, "# HELP tollgate_mcp_call_duration_seconds Time from a tools/call's admission to "
            "its answer.\n# TYPE tollgate_mcp_call_duration_seconds histogram\n");
    tg_prom_histogram(&t, "tollgate_mcp_call_duration_seconds", &h);
    free(copy);
    return tg_textbuf_take(&t, len);
}
