/*
 * config_mcp.c — the config's "mcp" section: the MCP servers behind /mcp
 * (mcp.c). Their URLs come only from here (a client names a server, never a
 * URL); header values are secrets ("$ENV"), masked by `config show` and never
 * logged; session_secret signs the session tokens (mcp_session.c).
 *
 *   "mcp": {"servers": {"github": {"url": "http://127.0.0.1:9100/mcp",
 *                                  "headers": {"Authorization": "Bearer $GITHUB_MCP_TOKEN"},
 *                                  "timeout_ms": 30000, "connect_timeout_ms": 2000,
 *                                  "audit_payloads": false}},
 *           "session_secret": "$TOLLGATE_MCP_SECRET", "max_message_bytes": 1048576,
 *           "audit_payload_bytes": 16384}
 *
 * audit_payloads (off unless set) makes the audit rows of a server's tools/calls
 * keep the arguments and the result as they went through the guardrails, each
 * at most audit_payload_bytes (mcp_access.c).
 *
 * Not here: what the servers are called for (mcp.c).
 */
#include "config_load.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_field.h"

#define MIN_SECRET_BYTES 32

/* [a-z0-9_-]{1,32}, no "__", not starting or ending with "_": "a__b" splits once */
static bool server_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TG_MCP_MAX_NAME || name[0] == '_' || name[len - 1] == '_' ||
        strstr(name, "__") != NULL)
        return false;
    for (const char *p = name; *p != '\0'; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_' && *p != '-')
            return false;
    return true;
}

/* the headers the gateway sets itself on an MCP call */
static const char *const own_headers[] = {"accept", "mcp-session-id", "last-event-id",
                                          "mcp-protocol-version", NULL};

static void load_headers(struct tg_config_loader *ld, json_t *obj, const char *path,
                         struct tg_mcp_server *s)
{
    tg_config_load_headers(ld, obj, path, own_headers, 0, &s->headers, &s->n_headers);
}

static void load_server(struct tg_config_loader *ld, const char *name, json_t *obj,
                        struct tg_mcp_server *s)
{
    char path[96], field[160];
    snprintf(path, sizeof(path), "mcp.servers.%s", name);
    if (!server_name_ok(name)) {
        tg_config_load_fail(ld, path,
                            "a server name is 1 to %d of [a-z0-9_-], without \"__\" and not "
                            "starting or ending with \"_\"",
                            TG_MCP_MAX_NAME);
        return;
    }
    if (!json_is_object(obj)) {
        tg_config_load_fail(ld, path, "must be an object");
        return;
    }
    static const char *const known[] = {
        "url", "headers", "timeout_ms", "connect_timeout_ms", "stream_timeout_ms", "audit_payloads",
        NULL};
    tg_config_load_keys(ld, obj, path, known);
    s->name = tg_config_load_strdup(ld, name);
    s->url = (char *)tg_config_load_string(ld, obj, "url", path, NULL, true);
    if (s->url != NULL && !tg_config_load_is_http_url(s->url)) {
        snprintf(field, sizeof(field), "%s.url", path);
        tg_config_load_fail(ld, field, "must be an http(s) URL");
    }
    s->timeout_ms = tg_config_load_integer(ld, obj, "timeout_ms", path, 60000, 1, 3600000);
    s->connect_timeout_ms = tg_config_load_integer(
        ld, obj, "connect_timeout_ms", path, s->timeout_ms < 2000 ? s->timeout_ms : 2000, 1, 60000);
    s->stream_timeout_ms =
        tg_config_load_integer(ld, obj, "stream_timeout_ms", path, 300000, 1, 86400000);
    json_t *payloads = json_object_get(obj, "audit_payloads");
    if (payloads != NULL && !json_is_boolean(payloads)) {
        snprintf(field, sizeof(field), "%s.audit_payloads", path);
        tg_config_load_fail(ld, field, "must be true or false");
        return;
    }
    s->audit_payloads = json_is_true(payloads);
    load_headers(ld, obj, path, s);
}

void tg_config_load_mcp(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    struct tg_mcp_config *m = &c->mcp;
    json_t *obj = tg_config_load_object(ld, root, "mcp", "", false);
    if (obj == NULL || ld->failed)
        return;
    static const char *const known[] = {"servers",
                                        "session_secret",
                                        "max_message_bytes",
                                        "session_ttl_s",
                                        "max_upstream_bytes",
                                        "resource",
                                        "audit_payload_bytes",
                                        NULL};
    tg_config_load_keys(ld, obj, "mcp", known);
    json_t *servers = tg_config_load_object(ld, obj, "servers", "mcp", true);
    if (servers == NULL || ld->failed)
        return;
    size_t n = json_object_size(servers);
    if (n == 0 || n > TG_MCP_MAX_SERVERS) {
        tg_config_load_fail(ld, "mcp.servers", "must name 1 to %d servers", TG_MCP_MAX_SERVERS);
        return;
    }
    m->servers = calloc(n, sizeof(*m->servers));
    if (m->servers == NULL) {
        tg_config_load_fail(ld, "mcp.servers", "out of memory");
        return;
    }
    const char *name;
    json_t *server;
    json_object_foreach(servers, name, server) {
        load_server(ld, name, server, &m->servers[m->n_servers++]);
        if (ld->failed)
            return;
    }
    m->session_secret = (char *)tg_config_load_string(ld, obj, "session_secret", "mcp", NULL, true);
    if (m->session_secret != NULL && strlen(m->session_secret) < MIN_SECRET_BYTES)
        tg_config_load_fail(ld, "mcp.session_secret", "must be at least %d bytes",
                            MIN_SECRET_BYTES);
    m->max_message_bytes = (size_t)tg_config_load_integer(ld, obj, "max_message_bytes", "mcp",
                                                          1048576, 1024, 67108864);
    m->max_upstream_bytes = (size_t)tg_config_load_integer(ld, obj, "max_upstream_bytes", "mcp",
                                                           4194304, 4096, 67108864);
    m->session_ttl_s = tg_config_load_integer(ld, obj, "session_ttl_s", "mcp", 86400, 60, 2592000);
    /* two of them and the row's other fields fit one audit-file record (64 KiB) */
    m->audit_payload_bytes =
        (size_t)tg_config_load_integer(ld, obj, "audit_payload_bytes", "mcp", 16384, 256, 24576);
    m->resource = (char *)tg_config_load_string(ld, obj, "resource", "mcp", NULL, false);
    if (m->resource != NULL && !tg_config_load_is_http_url(m->resource))
        tg_config_load_fail(ld, "mcp.resource", "must be an http(s) URL");
}

void tg_config_mcp_release(struct tg_config *c)
{
    struct tg_mcp_config *m = &c->mcp;
    for (size_t i = 0; i < m->n_servers; i++) {
        struct tg_mcp_server *s = &m->servers[i];
        free(s->name);
        free(s->url);
        for (size_t h = 0; h < s->n_headers; h++)
            free(s->headers[h]);
        free(s->headers);
    }
    free(m->servers);
    free(m->session_secret);
    free(m->resource);
    memset(m, 0, sizeof(*m));
}
