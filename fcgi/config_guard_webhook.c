/*
 * config_guard_webhook.c — the config's "guardrails.webhook" and
 * "guardrails.moderation": the remote checks guard_webhook.c makes after the
 * local rules. Their URLs come only from here; header values (and the
 * moderation key, read from the environment variable api_key_env) are
 * secrets, masked by `config show` and never logged.
 *
 *   "webhook":    {"url": "http://127.0.0.1:9000/check", "timeout_ms": 500,
 *                  "on_error": "closed", "headers": {"authorization": "$GUARD_AUTH"}}
 *   "moderation": {"url": "https://api.openai.com/v1/moderations",
 *                  "api_key_env": "OPENAI_API_KEY", "model": "omni-moderation-latest",
 *                  "categories": ["violence", "self-harm"], "timeout_ms": 1000}
 */
#include "config_load.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADERS 16
#define MAX_CATEGORIES 32
#define MAX_HEADER_LINE 4096

static bool header_name_ok(const char *name)
{
    if (name[0] == '\0' || strlen(name) > 64)
        return false;
    for (const char *p = name; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    /* these the gateway sets itself */
    return strcasecmp(name, "content-type") != 0 && strcasecmp(name, "content-length") != 0 &&
           strcasecmp(name, "host") != 0 && strcasecmp(name, "transfer-encoding") != 0;
}

static bool header_value_ok(const char *value)
{
    for (const char *p = value; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* Appends "name: value" to h's headers (h->headers has room for MAX_HEADERS + 1). */
static void add_header(struct tg_config_loader *ld, struct tg_guard_hook *h, const char *field,
                       const char *name, const char *value)
{
    size_t size = strlen(name) + strlen(value) + 3;
    char *line = size <= MAX_HEADER_LINE ? malloc(size) : NULL;
    if (line == NULL) {
        tg_config_load_fail(ld, field, "is too long (at most %d bytes)", MAX_HEADER_LINE);
        return;
    }
    snprintf(line, size, "%s: %s", name, value);

    h->headers[h->n_headers++] = line;
}

static void load_headers(struct tg_config_loader *ld, json_t *obj, const char *path,
                         struct tg_guard_hook *h)
{
    char field[192];
    snprintf(field, sizeof(field), "%s.headers", path);
    json_t *headers = json_object_get(obj, "headers");
    if (headers != NULL && (!json_is_object(headers) || json_object_size(headers) > MAX_HEADERS)) {
        tg_config_load_fail(ld, field, "must be an object of at most %d headers", MAX_HEADERS);
        return;
    }
    h->headers = calloc(MAX_HEADERS + 2, sizeof(char *));
    if (h->headers == NULL) {
        tg_config_load_fail(ld, field, "out of memory");
        return;
    }
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value) {
        char member[256];
        snprintf(member, sizeof(member), "%s.%s", field, name);
        if (!header_name_ok(name)) {
            tg_config_load_fail(ld, member, "is not a header name the gateway may send");
            return;
        }
        char *resolved = (char *)tg_config_load_string(ld, headers, name, field, NULL, true);
        if (resolved == NULL)
            return;
        if (!header_value_ok(resolved))
            tg_config_load_fail(ld, member, "must not hold control characters");
        else
            add_header(ld, h, member, name, resolved);
        free(resolved);
    }
}

/* moderation: the key in the environment variable api_key_env, sent as a bearer token. */
static void load_moderation_key(struct tg_config_loader *ld, json_t *obj, const char *path,
                                struct tg_guard_hook *h)
{
    char field[192];
    snprintf(field, sizeof(field), "%s.api_key_env", path);
    json_t *name = json_object_get(obj, "api_key_env");
    if (name == NULL)
        return;
    if (!json_is_string(name) || json_string_length(name) == 0) {
        tg_config_load_fail(ld, field, "must be the name of an environment variable");
        return;
    }
    const char *key = getenv(json_string_value(name));
    if (key == NULL || key[0] == '\0' || !header_value_ok(key)) {
        tg_config_load_fail(ld, field, "environment variable \"%s\" is not set",
                            json_string_value(name));
        return;
    }
    char *bearer = malloc(strlen(key) + sizeof("Bearer "));
    if (bearer == NULL) {
        tg_config_load_fail(ld, field, "out of memory");
        return;
    }
    snprintf(bearer, strlen(key) + sizeof("Bearer "), "Bearer %s", key);
    add_header(ld, h, field, "authorization", bearer);
    free(bearer);
}

static void load_categories(struct tg_config_loader *ld, json_t *obj, const char *path,
                            struct tg_guard_hook *h)
{
    char field[192];
    snprintf(field, sizeof(field), "%s.categories", path);
    json_t *list = json_object_get(obj, "categories");
    if (list == NULL)
        return;
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > MAX_CATEGORIES) {
        tg_config_load_fail(ld, field, "must be an array of 1 to %d category names",
                            MAX_CATEGORIES);
        return;
    }
    h->categories = calloc(json_array_size(list), sizeof(char *));
    if (h->categories == NULL) {
        tg_config_load_fail(ld, field, "out of memory");
        return;
    }
    size_t i;
    json_t *name;
    json_array_foreach(list, i, name) {
        const char *s = json_string_value(name);
        bool ok = s != NULL && s[0] != '\0' && strlen(s) <= 64;
        for (const char *p = s; ok && *p != '\0'; p++)
            ok = islower((unsigned char)*p) || *p == '-' || *p == '_' || *p == '/';
        if (!ok) {
            snprintf(field, sizeof(field), "%s.categories[%zu]", path, i);
            tg_config_load_fail(ld, field,
                                "must be a moderation category such as \"violence\" or "
                                "\"self-harm\"");
            return;
        }
        h->categories[h->n_categories++] = tg_config_load_strdup(ld, s);
    }
}

static void load_hook(struct tg_config_loader *ld, json_t *g, const char *key,
                      enum tg_guard_hook_kind kind, struct tg_guard_hook *h)
{
    char path[64];
    snprintf(path, sizeof(path), "guardrails.%s", key);
    json_t *obj = tg_config_load_object(ld, g, key, "guardrails", false);
    if (obj == NULL || ld->failed)
        return;
    static const char *const webhook_keys[] = {"url",      "timeout_ms", "connect_timeout_ms",
                                               "on_error", "headers",    NULL};
    static const char *const moderation_keys[] = {"url",        "timeout_ms",  "connect_timeout_ms",
                                                  "on_error",   "api_key_env", "model",
                                                  "categories", NULL};
    tg_config_load_keys(ld, obj, path,
                        kind == TG_GUARD_HOOK_WEBHOOK ? webhook_keys : moderation_keys);
    h->kind = kind;
    h->url = (char *)tg_config_load_string(ld, obj, "url", path, NULL, true);
    char field[192];
    if (h->url != NULL && !tg_config_load_is_http_url(h->url)) {
        snprintf(field, sizeof(field), "%s.url", path);
        tg_config_load_fail(ld, field, "must be an http(s) URL");
    }
    h->timeout_ms = tg_config_load_integer(ld, obj, "timeout_ms", path,
                                           kind == TG_GUARD_HOOK_WEBHOOK ? 500 : 1000, 1, 60000);
    h->connect_timeout_ms = tg_config_load_integer(
        ld, obj, "connect_timeout_ms", path, h->timeout_ms < 1000 ? h->timeout_ms : 1000, 1, 60000);
    char *on_error = (char *)tg_config_load_string(ld, obj, "on_error", path, "closed", false);
    if (on_error != NULL && strcmp(on_error, "open") != 0 && strcmp(on_error, "closed") != 0) {
        snprintf(field, sizeof(field), "%s.on_error", path);
        tg_config_load_fail(ld, field, "must be \"closed\" or \"open\"");
    }
    h->fail_open = on_error != NULL && strcmp(on_error, "open") == 0;
    free(on_error);
    load_headers(ld, kind == TG_GUARD_HOOK_WEBHOOK ? obj : NULL, path, h);
    if (kind == TG_GUARD_HOOK_MODERATION) {
        h->model =
            (char *)tg_config_load_string(ld, obj, "model", path, "omni-moderation-latest", false);
        load_moderation_key(ld, obj, path, h);
        load_categories(ld, obj, path, h);
    }
}

void tg_config_load_guard_hooks(struct tg_config_loader *ld, json_t *g, struct tg_config *c)
{
    load_hook(ld, g, "webhook", TG_GUARD_HOOK_WEBHOOK, &c->guard_webhook);
    load_hook(ld, g, "moderation", TG_GUARD_HOOK_MODERATION, &c->guard_moderation);
}

static void release_hook(struct tg_guard_hook *h)
{
    free(h->url);
    free(h->model);
    for (size_t i = 0; i < h->n_headers; i++)
        free(h->headers[i]);
    free(h->headers);
    for (size_t i = 0; i < h->n_categories; i++)
        free(h->categories[i]);
    free(h->categories);
    memset(h, 0, sizeof(*h));
}

void tg_config_guard_hooks_release(struct tg_config *c)
{
    release_hook(&c->guard_webhook);
    release_hook(&c->guard_moderation);
}
