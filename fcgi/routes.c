/*
 * routes.c — matching the operator's routing rules, and direct responses.
 */
#include "routes.h"

#include <string.h>
#include <strings.h>

#include "config.h"
#include "request.h"

static bool path_matches(const struct tg_config_route *route, const char *path)
{
    size_t len = strlen(route->path);
    if (route->path_prefix)
        return strncmp(path, route->path, len) == 0;
    size_t path_len = strlen(path);
    if (path_len == len + 1 && path[len] == '/') /* one trailing slash is tolerated */
        path_len--;
    return path_len == len && strncmp(path, route->path, len) == 0;
}

/* Does the query string hold name=value (as sent, not decoded)? */
static bool query_has(const char *query, const struct tg_route_pair *pair)
{
    size_t name_len = strlen(pair->name), value_len = strlen(pair->value);
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == name_len + 1 + value_len && strncmp(p, pair->name, name_len) == 0 &&
            p[name_len] == '=' && strncmp(p + name_len + 1, pair->value, value_len) == 0)
            return true;
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

static bool matches(struct tg_request *r, const struct tg_config_route *route, const char *model)
{
    if ((route->match_model == NULL) != (model == NULL))
        return false;
    if (model != NULL && strcmp(route->match_model, model) != 0)
        return false;
    if (!path_matches(route, r->path))
        return false;
    if (route->method != NULL && strcmp(route->method, r->method) != 0)
        return false;
    if (route->host != NULL) {
        const char *host = tg_request_param(r, "HTTP_HOST");
        if (host == NULL || strcasecmp(host, route->host) != 0)
            return false;
    }
    for (size_t i = 0; i < route->n_headers; i++) {
        const char *value = tg_request_header(r, route->headers[i].name);
        if (value == NULL || strcmp(value, route->headers[i].value) != 0)
            return false;
    }
    const char *query = tg_request_param(r, "QUERY_STRING");
    for (size_t i = 0; i < route->n_query; i++)
        if (query == NULL || !query_has(query, &route->query[i]))
            return false;
    return true;
}

const struct tg_config_route *tg_routes_match(struct tg_request *r, const char *model)
{
    for (size_t i = 0; i < r->config->n_routes; i++)
        if (matches(r, &r->config->routes[i], model))
            return &r->config->routes[i];
    return NULL;
}

int tg_routes_respond_direct(struct tg_request *r, const struct tg_config_route *route)
{
    const char *type = "application/json";
    for (size_t i = 0; i < route->n_direct_headers; i++) {
        if (strcasecmp(route->direct_headers[i].name, "content-type") == 0)
            type = route->direct_headers[i].value;
        else
            tg_request_add_header(r, route->direct_headers[i].name, route->direct_headers[i].value);
    }
    r->outcome = "direct_response";
    return tg_request_respond(r, route->direct_status, type, route->direct_body,
                              strlen(route->direct_body));
}
