/*
 * config_mask.c — a config with its secrets masked, for `tollgatectl config show`.
 */
#include "config_mask.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MASK "********"

/* A "$NAME" value names an environment variable (config.h): not itself a secret. */
static bool env_reference(json_t *value)
{
    const char *text = json_string_value(value);
    return text != NULL && text[0] == '$' && text[1] != '\0';
}

static void mask_member(json_t *object, const char *field)
{
    json_t *value = json_object_get(object, field);
    if (value != NULL && !env_reference(value))
        json_object_set_new(object, field, json_string(MASK));
}

/* *text with [start, end) replaced by MASK (the old text freed); *text NULL when out of memory. */
static size_t mask_span(char **text, size_t start, size_t end)
{
    size_t len = strlen(*text), size = len - (end - start) + strlen(MASK) + 1;
    char *masked = malloc(size);
    if (masked != NULL)
        snprintf(masked, size, "%.*s%s%s", (int)start, *text, MASK, *text + end);
    free(*text);
    *text = masked;
    return start + strlen(MASK);
}

/*
 * A libpq connection string with its passwords masked: the one in a URL's
 * userinfo (postgresql://user:PASSWORD@host) and every password= keyword or
 * URL parameter (sslpassword too), quoted or not. Caller frees; NULL when out
 * of memory.
 */
static char *mask_db_url(const char *url)
{
    char *text = strdup(url);
    const char *scheme = text != NULL ? strstr(text, "://") : NULL;
    if (scheme != NULL) {
        size_t host = (size_t)(scheme - text) + 3;
        size_t authority = strcspn(text + host, "/?#");
        char *at = memrchr(text + host, '@', authority);
        char *colon = at != NULL ? memchr(text + host, ':', (size_t)(at - text) - host) : NULL;
        if (colon != NULL)
            mask_span(&text, (size_t)(colon + 1 - text), (size_t)(at - text));
    }
    for (size_t i = 0; text != NULL && strstr(text + i, "password") != NULL;) {
        size_t value = (size_t)(strstr(text + i, "password") - text) + strlen("password");
        while (text[value] == ' ')
            value++;
        if (text[value] != '=') {
            i = value;
            continue;
        }
        for (value++; text[value] == ' ';)
            value++;
        size_t end = value;
        if (text[end] == '\'') {
            for (end++; text[end] != '\0' && text[end] != '\''; end++)
                end += text[end] == '\\' && text[end + 1] != '\0';
            end += text[end] == '\'';
        } else {
            while (text[end] != '\0' && text[end] != '&' && !isspace((unsigned char)text[end]))
                end++;
        }
        i = mask_span(&text, value, end);
    }
    return text;
}

int tg_config_mask(json_t *root)
{
    const char *name;
    json_t *value, *issuer, *key;
    size_t i, j;
    static const char *const provider_secrets[] = {"api_key", "aws_access_key_id",
                                                   "aws_secret_access_key", "aws_session_token"};
    json_object_foreach(json_object_get(root, "providers"), name, value)
        for (i = 0; i < TG_ARRAY_LEN(provider_secrets); i++)
            mask_member(value, provider_secrets[i]);
    json_array_foreach(json_object_get(json_object_get(root, "auth"), "jwt"), i, issuer)
        json_array_foreach(json_object_get(issuer, "keys"), j, key)
            mask_member(key, "secret");
    json_t *admin_keys = json_object_get(json_object_get(root, "admin"), "keys");
    json_array_foreach(admin_keys, i, key)
        if (!env_reference(key))
            json_array_set_new(admin_keys, i, json_string(MASK));
    json_t *hook_headers =
        json_object_get(json_object_get(json_object_get(root, "guardrails"), "webhook"), "headers");
    json_object_foreach(hook_headers, name, value)
        mask_member(hook_headers, name);
    json_t *otel_headers = json_object_get(json_object_get(root, "otel"), "headers");
    json_object_foreach(otel_headers, name, value)
        mask_member(otel_headers, name);
    json_t *mcp = json_object_get(root, "mcp"), *server;
    mask_member(mcp, "session_secret");
    json_object_foreach(json_object_get(mcp, "servers"), name, server) {
        json_t *headers = json_object_get(server, "headers");
        const char *header;
        json_object_foreach(headers, header, value)
            mask_member(headers, header);
    }
    json_t *db = json_object_get(root, "database");
    json_t *url = json_object_get(db, "url");
    if (url != NULL && !env_reference(url)) {
        char *masked = json_is_string(url) ? mask_db_url(json_string_value(url)) : NULL;
        if (json_is_string(url) && masked == NULL)
            return TG_ERROR;
        json_object_set_new(db, "url", json_string(masked != NULL ? masked : MASK));
        free(masked);
    }
    return TG_OK;
}
