/*
 * config_field.c — "$NAME" from the environment, and unknown fields refused.
 */
#include "config_field.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tg_config_field_resolve_env(const char *value, const char *field, char *err,
                                        size_t err_size)
{
    if (value[0] != '$' || value[1] == '\0')
        return value;
    const char *env = getenv(value + 1);
    if (env == NULL || env[0] == '\0') {
        snprintf(err, err_size, "config: %s: environment variable \"%s\" is not set", field,
                 value + 1);
        return NULL;
    }
    return env;
}

int tg_config_field_check_known(json_t *obj, const char *path, const char *const *known, char *err,
                                size_t err_size)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        bool found = false;
        for (size_t i = 0; known[i] != NULL && !found; i++)
            found = strcmp(known[i], key) == 0;
        if (!found) {
            snprintf(err, err_size, "config: %s%s%s: unknown field", path, path[0] ? "." : "", key);
            return TG_ERROR;
        }
    }
    return TG_OK;
}
