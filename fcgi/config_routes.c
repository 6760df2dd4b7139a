/*
 * config_routes.c — the config's "routes": each rule's match and its one
 * action, checked with the JSON path of a bad field.
 *
 *   {"name": "retired", "match": {"path": "/v1/messages", "model": "claude-2.1"},
 *    "direct_response": {"status": 410, "headers": {...}, "body": "..."}}
 *   {"name": "eu", "match": {"path": "/v1/chat/completions", "header": {"x-tenant": "eu"}},
 *    "model": "gpt-4o-eu"}
 *   {"name": "agent", "match": {"path": "/agent/chat", "method": "POST"}, "http": "agent"}
 */
#include "config_load.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {name: value} strings into pairs (names lower-cased when lower). */
static size_t load_pairs(struct tg_config_loader *ld, json_t *obj, const char *field,
                         struct tg_route_pair *out, bool lower)
{
    if (obj == NULL)
        return 0;
    if (!json_is_object(obj) || json_object_size(obj) > TG_ROUTE_MAX_PAIRS) {
        tg_config_load_fail(ld, field, "must be an object of at most %d strings",
                            TG_ROUTE_MAX_PAIRS);
        return 0;
    }
    size_t n = 0;
    const char *name;
    json_t *value;
    json_object_foreach(obj, name, value) {
        if (!json_is_string(value) || name[0] == '\0' || strpbrk(name, "\r\n:") != NULL ||
            strpbrk(json_string_value(value), "\r\n") != NULL) {
            tg_config_load_fail(ld, field, "\"%s\" must name a string value, without CR or LF",
                                name);
            return n;
        }
        char *copy = tg_config_load_strdup(ld, name);
        for (char *c = copy; lower && c != NULL && *c != '\0'; c++)
            *c = (char)tolower((unsigned char)*c);
        out[n].name = copy;
        out[n++].value = tg_config_load_strdup(ld, json_string_value(value));
    }
    return n;
}

static void load_match(struct tg_config_loader *ld, json_t *match, const char *path,
                       struct tg_config_route *route)
{
    char field[192];
    snprintf(field, sizeof(field), "%s.match", path);
    if (!json_is_object(match)) {
        tg_config_load_fail(ld, field, "is required (an object)");
        return;
    }
    static const char *const known[] = {"path", "method", "host", "header", "query", "model", NULL};
    tg_config_load_keys(ld, match, field, known);
    char *route_path = (char *)tg_config_load_string(ld, match, "path", field, NULL, true);
    if (route_path != NULL) {
        size_t len = strlen(route_path);
        if (route_path[0] != '/') {
            char f[224];
            snprintf(f, sizeof(f), "%s.path", field);
            tg_config_load_fail(ld, f, "must begin with \"/\"");
        }
        if (len > 0 && route_path[len - 1] == '*') {
            route_path[len - 1] = '\0';
            route->path_prefix = true;
        }
    }
    route->path = route_path;
    route->method = tg_config_load_string(ld, match, "method", field, NULL, false);
    route->host = tg_config_load_string(ld, match, "host", field, NULL, false);
    route->match_model = tg_config_load_string(ld, match, "model", field, NULL, false);
    char f[224];
    snprintf(f, sizeof(f), "%s.header", field);
    route->n_headers = load_pairs(ld, json_object_get(match, "header"), f, route->headers, true);
    snprintf(f, sizeof(f), "%s.query", field);
    route->n_query = load_pairs(ld, json_object_get(match, "query"), f, route->query, false);
}

static void load_direct(struct tg_config_loader *ld, json_t *direct, const char *path,
                        struct tg_config_route *route)
{
    char field[192];
    snprintf(field, sizeof(field), "%s.direct_response", path);
    if (!json_is_object(direct)) {
        tg_config_load_fail(ld, field, "must be an object");
        return;
    }
    static const char *const known[] = {"status", "headers", "body", NULL};
    tg_config_load_keys(ld, direct, field, known);
    route->direct_status = (int)tg_config_load_integer(ld, direct, "status", field, 200, 200, 599);
    route->direct_body = tg_config_load_string(ld, direct, "body", field, "", false);
    char f[224];
    snprintf(f, sizeof(f), "%s.headers", field);
    route->n_direct_headers =
        load_pairs(ld, json_object_get(direct, "headers"), f, route->direct_headers, false);
}

/* "model" or "http": a served model's name (http: of an http provider). */
static const struct tg_model *load_target(struct tg_config_loader *ld, const struct tg_config *c,
                                          json_t *obj, const char *key, const char *path)
{
    char field[192];
    snprintf(field, sizeof(field), "%s.%s", path, key);
    const char *name = tg_config_load_string(ld, obj, key, path, NULL, false);
    if (name == NULL)
        return NULL;
    const struct tg_model *m = tg_config_find_model(c, name);
    if (m == NULL)
        tg_config_load_fail(ld, field, "no model named \"%s\" in models", name);
    else if (strcmp(key, "http") == 0 && m->provider->type != TG_PROVIDER_HTTP)
        tg_config_load_fail(ld, field, "model \"%s\" is not served by an http provider", name);
    free((char *)name);
    return m;
}

static void load_route(struct tg_config_loader *ld, const struct tg_config *c, json_t *obj,
                       size_t index, struct tg_config_route *route)
{
    char path[64];
    snprintf(path, sizeof(path), "routes[%zu]", index);
    if (!json_is_object(obj)) {
        tg_config_load_fail(ld, path, "must be an object");
        return;
    }
    static const char *const known[] = {"name", "match", "direct_response", "model", "http", NULL};
    tg_config_load_keys(ld, obj, path, known);
    route->name = tg_config_load_string(ld, obj, "name", path, path, false);
    load_match(ld, json_object_get(obj, "match"), path, route);
    json_t *direct = json_object_get(obj, "direct_response");
    if (direct != NULL)
        load_direct(ld, direct, path, route);
    route->model = load_target(ld, c, obj, "model", path);
    route->http = load_target(ld, c, obj, "http", path);
    int actions = (direct != NULL) + (json_object_get(obj, "model") != NULL) +
                  (json_object_get(obj, "http") != NULL);
    if (actions != 1)
        tg_config_load_fail(ld, path, "needs exactly one of direct_response, model and http");
    if (route->http != NULL && route->match_model != NULL)
        tg_config_load_fail(ld, path, "an http route cannot match on a model");
}

void tg_config_load_routes(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *routes = json_object_get(root, "routes");
    if (routes == NULL || ld->failed)
        return;
    if (!json_is_array(routes) || json_array_size(routes) > 256) {
        tg_config_load_fail(ld, "routes", "must be an array of at most 256 routes");
        return;
    }
    c->routes = calloc(json_array_size(routes) + 1, sizeof(*c->routes));
    if (c->routes == NULL) {
        tg_config_load_fail(ld, "routes", "out of memory");
        return;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(routes, i, obj) {
        load_route(ld, c, obj, i, &c->routes[c->n_routes++]);
    }
}

static void release_pairs(struct tg_route_pair *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)pairs[i].name);
        free((char *)pairs[i].value);
    }
}

void tg_config_routes_release(struct tg_config *c)
{
    for (size_t i = 0; i < c->n_routes; i++) {
        struct tg_config_route *r = &c->routes[i];
        free((char *)r->name);
        free((char *)r->path);
        free((char *)r->method);
        free((char *)r->host);
        free((char *)r->match_model);
        free((char *)r->direct_body);
        release_pairs(r->headers, r->n_headers);
        release_pairs(r->query, r->n_query);
        release_pairs(r->direct_headers, r->n_direct_headers);
    }
    free(c->routes);
    c->routes = NULL;
}
