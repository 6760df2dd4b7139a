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

#define MAX_CATEGORIES 32

/* h's headers, with room for the moderation key's (load_moderation_key). */
static void load_headers(struct tg_config_loader *ld, json_t *obj, const char *path,
                         struct tg_guard_hook *h)
{
    tg_config_load_headers(ld, obj, path, NULL, 1, &h->headers, &h->n_headers);
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
    if (key == NULL || key[0] == '\0' || !tg_config_load_printable(key)) {
        tg_config_load_fail(ld, field, "environment variable \"%s\" is not set",
                            json_string_value(name));
        return;
    }
    if (h->headers == NULL)
        return; /* load_headers failed */
    size_t size = strlen(key) + sizeof("authorization: Bearer ");
    char *line = size <= 4096 ? malloc(size) : NULL;
    if (line == NULL) {
        tg_config_load_fail(ld, field, "the key is too long (at most 4096 bytes with its name)");
        return;
    }
    snprintf(line, size, "authorization: Bearer %s", key);
    h->headers[h->n_headers++] = line; /* load_headers left room for it */
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
