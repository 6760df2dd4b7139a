/*
 * route.c — the routing table.
 */
#include "route.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "request.h"
#include "routes.h"

struct route {
    const char *path;
    const char *method;
    enum tg_endpoint endpoint;
    enum tg_dialect dialect;
};

static const struct route routes[] = {
    {"/v1/messages", "POST", TG_EP_MESSAGES, TG_DIALECT_ANTHROPIC},
    {"/v1/messages/count_tokens", "POST", TG_EP_COUNT_TOKENS, TG_DIALECT_ANTHROPIC},
    {"/v1/chat/completions", "POST", TG_EP_CHAT_COMPLETIONS, TG_DIALECT_OPENAI},
    {"/v1/embeddings", "POST", TG_EP_EMBEDDINGS, TG_DIALECT_OPENAI},
    {"/v1/models", "GET", TG_EP_MODELS, TG_DIALECT_ANTHROPIC},
    {"/v1/usage", "GET", TG_EP_USAGE, TG_DIALECT_ANTHROPIC},
    {"/health", "GET", TG_EP_HEALTH, TG_DIALECT_ANTHROPIC},
    {"/metrics", "GET", TG_EP_METRICS, TG_DIALECT_ANTHROPIC},
};

#define ADMIN_PREFIX "/admin/"
#define MCP_METADATA "/.well-known/oauth-protected-resource"

/*
 * path as most servers would read it (RFC 3986: unreserved characters
 * percent-decoded, "." and ".." segments removed, empty segments and a trailing
 * slash dropped) into out. Only to tell a client which spelling is served: a
 * path is routed as sent. false when it does not fit.
 */
static bool canonical_path(const char *path, char *out, size_t size)
{
    char decoded[128];
    size_t n = 0;
    for (const char *p = path; *p != '\0'; p++) {
        char c = *p;
        int hi = c == '%' ? tg_crypto_hex_value(p[1]) : -1,
            lo = hi >= 0 ? tg_crypto_hex_value(p[2]) : -1;
        if (lo >= 0) {
            char d = (char)(hi * 16 + lo);
            if (strchr("-._~", d) != NULL || (d >= '0' && d <= '9') || (d >= 'a' && d <= 'z') ||
                (d >= 'A' && d <= 'Z')) {
                c = d;
                p += 2;
            }
        }
        if (n + 1 >= sizeof(decoded))
            return false;
        decoded[n++] = c;
    }
    decoded[n] = '\0';
    size_t len = 0;
    for (const char *seg = decoded; *seg != '\0';) {
        size_t seg_len = strcspn(seg, "/");
        if (seg_len == 2 && strncmp(seg, "..", 2) == 0) {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
        } else if (seg_len > 0 && !(seg_len == 1 && seg[0] == '.')) {
            if (len + 1 + seg_len + 1 > size)
                return false;
            out[len++] = '/';
            memcpy(out + len, seg, seg_len);
            len += seg_len;
        }
        seg += seg_len;
        if (*seg == '/')
            seg++;
    }
    if (len == 0 && size > 1)
        out[len++] = '/';
    out[len] = '\0';
    return true;
}

/*
 * /mcp, /mcp/{server} (one trailing slash tolerated; mcp.c tells an unknown
 * server) and the protected-resource metadata. TG_DECLINED: not an MCP path.
 */
static int mcp_route(struct tg_request *r)
{
    const char *p = r->path;
    bool mcp = strcmp(p, "/mcp") == 0 || strncmp(p, "/mcp/", 5) == 0;
    bool metadata =
        strcmp(p, MCP_METADATA) == 0 || strncmp(p, MCP_METADATA "/", strlen(MCP_METADATA) + 1) == 0;
    if (!mcp && !metadata)
        return TG_DECLINED;
    r->dialect = mcp ? TG_DIALECT_MCP : TG_DIALECT_OPENAI;
    r->endpoint = mcp ? TG_EP_MCP : TG_EP_MCP_METADATA;
    r->endpoint_path = mcp ? "/mcp" : MCP_METADATA;
    const char *m = r->method;
    bool allowed = mcp ? strcmp(m, "POST") == 0 || strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0
                       : strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    if (!allowed) {
        tg_request_add_header(r, "Allow", mcp ? "GET, POST, DELETE" : "GET");
        tg_request_fail(r, 405, "invalid_request_error", "method not allowed", "%s %s", m, p);
        return TG_ERROR;
    }
    return TG_OK;
}

int tg_route_resolve(struct tg_request *r)
{
    /* the admin API routes its own paths and methods (admin.c) */
    if (r->config->admin_enabled && strncmp(r->path, ADMIN_PREFIX, strlen(ADMIN_PREFIX)) == 0) {
        r->endpoint = TG_EP_ADMIN;
        r->endpoint_path = ADMIN_PREFIX;
        r->dialect = TG_DIALECT_ANTHROPIC;
        return TG_OK;
    }
    /* the operator's rules first: a direct response, an http backend, another model */
    const struct tg_config_route *rule = tg_routes_match(r, NULL);
    if (rule != NULL && (rule->direct_status != 0 || rule->http != NULL)) {
        r->route = rule;
        r->endpoint = rule->direct_status != 0 ? TG_EP_DIRECT : TG_EP_HTTP;
        r->endpoint_path = rule->path;
        r->dialect = TG_DIALECT_HTTP;
        return TG_OK;
    }
    if (r->config->mcp.n_servers > 0 && mcp_route(r) != TG_DECLINED)
        return r->error.status != 0 ? TG_ERROR : TG_OK;
    r->route = rule; /* a model rule: the dialect applies it once it knows the model */
    size_t len = strlen(r->path);
    /* one trailing slash is tolerated: "/v1/messages/" is "/v1/messages" */
    if (len > 1 && r->path[len - 1] == '/')
        len--;
    for (size_t i = 0; i < TG_ARRAY_LEN(routes); i++) {
        const struct route *route = &routes[i];
        if (strlen(route->path) != len || strncmp(route->path, r->path, len) != 0)
            continue;
        r->dialect = route->dialect;
        bool head_ok = strcmp(route->method, "GET") == 0 && strcmp(r->method, "HEAD") == 0;
        if (strcmp(route->method, r->method) != 0 && !head_ok) {
            tg_request_add_header(r, "Allow", route->method);
            tg_request_fail(r, 405, "invalid_request_error", "method not allowed", "%s %s",
                            r->method, route->path);
            return TG_ERROR;
        }
        r->endpoint = route->endpoint;
        r->endpoint_path = route->path;
        return TG_OK;
    }
    /* another spelling of an endpoint is not served, but answered in its dialect */
    char canonical[128];
    if (canonical_path(r->path, canonical, sizeof(canonical)))
        for (size_t i = 0; i < TG_ARRAY_LEN(routes); i++) {
            if (strcmp(routes[i].path, canonical) != 0)
                continue;
            r->dialect = routes[i].dialect;
            char message[200];
            snprintf(message, sizeof(message), "not found: the path of this endpoint is \"%s\"",
                     routes[i].path);
            tg_request_fail(r, 404, "not_found_error", message, "path spelled otherwise");
            return TG_ERROR;
        }
    tg_request_fail(r, 404, "not_found_error", "not found", NULL);
    return TG_ERROR;
}
