/*
 * bound_config.c — the config's "bounds" section: read, checked, released.
 */
#include "bound_config.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_field.h"

#define BETA_NAME_MAX 100
#define ALLOWED_BETAS_MAX 256

bool tg_bound_config_is_beta_name(const char *s, size_t len)
{
    if (len == 0 || len > BETA_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

static int bad(char *err, size_t size, const char *field, const char *problem)
{
    snprintf(err, size, "config: bounds.%s: %s", field, problem);
    return TG_ERROR;
}

static int get_tokens(json_t *section, const char *key, int64_t min, int64_t max, int64_t fallback,
                      int64_t *out, char *err, size_t size)
{
    json_t *v = json_object_get(section, key);
    *out = fallback;
    if (v == NULL)
        return TG_OK;
    if (!json_is_integer(v))
        return bad(err, size, key, "must be an integer");
    if (json_integer_value(v) < min || json_integer_value(v) > max) {
        char problem[96];
        snprintf(problem, sizeof(problem), "must be between %" PRId64 " and %" PRId64, min, max);
        return bad(err, size, key, problem);
    }
    *out = (int64_t)json_integer_value(v);
    return TG_OK;
}

static int load_betas(json_t *list, struct tg_bounds_config *out, char *err, size_t size)
{
    if (list == NULL)
        return TG_OK;
    if (!json_is_array(list) || json_array_size(list) > ALLOWED_BETAS_MAX)
        return bad(err, size, "allowed_betas", "must be an array of at most 256 beta names");
    out->allowed_betas = calloc(json_array_size(list) + 1, sizeof(*out->allowed_betas));
    if (out->allowed_betas == NULL)
        return bad(err, size, "allowed_betas", "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        char field[64];
        snprintf(field, sizeof(field), "allowed_betas[%zu]", i);
        const char *name = json_string_value(v);
        if (name == NULL)
            return bad(err, size, field, "must be a string");
        if (!tg_bound_config_is_beta_name(name, strlen(name))) {
            char problem[200];
            snprintf(problem, sizeof(problem),
                     "\"%.100s\" is not a beta name (1 to 100 letters, digits, '.', '_', '-')",
                     name);
            return bad(err, size, field, problem);
        }
        out->allowed_betas[out->n_allowed_betas] = strdup(name);
        if (out->allowed_betas[out->n_allowed_betas] == NULL)
            return bad(err, size, field, "out of memory");
        out->n_allowed_betas++;
    }
    return TG_OK;
}

int tg_bound_config_load(json_t *section, struct tg_bounds_config *out, char *err, size_t err_size)
{
    static const char *const known[] = {"allowed_betas",
                                        "image_max_tokens",
                                        "document_max_tokens",
                                        "tool_system_tokens",
                                        "builtin_tool_tokens",
                                        "server_tool_default_uses",
                                        "server_tool_use_max_tokens",
                                        NULL};
    memset(out, 0, sizeof(*out));
    if (section != NULL && !json_is_object(section)) {
        snprintf(err, err_size, "config: bounds: must be an object");
        return TG_ERROR;
    }
    int rc = section != NULL ? tg_config_field_check_known(section, "bounds", known, err, err_size)
                             : TG_OK;
    /* defaults: see README (Configuration) for where each comes from */
    if (rc == TG_OK)
        rc = get_tokens(section, "image_max_tokens", 1, 10000000, 2000, &out->image_max_tokens, err,
                        err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "document_max_tokens", 1, 100000000, 0, &out->document_max_tokens,
                        err, err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "tool_system_tokens", 0, 1000000, 1000, &out->tool_system_tokens,
                        err, err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "builtin_tool_tokens", 0, 1000000, 2000, &out->builtin_tool_tokens,
                        err, err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "server_tool_default_uses", 1, 1000, 10,
                        &out->server_tool_default_uses, err, err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "server_tool_use_max_tokens", 1, 100000000, 0,
                        &out->server_tool_use_max_tokens, err, err_size);
    if (rc == TG_OK)
        rc = load_betas(json_object_get(section, "allowed_betas"), out, err, err_size);
    if (rc != TG_OK)
        tg_bound_config_release(out);
    return rc;
}

void tg_bound_config_release(struct tg_bounds_config *bounds)
{
    for (size_t i = 0; i < bounds->n_allowed_betas; i++)
        free(bounds->allowed_betas[i]);
    free(bounds->allowed_betas);
    bounds->allowed_betas = NULL;
    bounds->n_allowed_betas = 0;
}

const char *tg_bound_config_context_beta(const struct tg_bounds_config *bounds)
{
    for (size_t i = 0; i < bounds->n_allowed_betas; i++)
        if (strncmp(bounds->allowed_betas[i], "context-1m", sizeof("context-1m") - 1) == 0)
            return bounds->allowed_betas[i];
    return NULL;
}
