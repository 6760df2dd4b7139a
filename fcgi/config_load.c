/*
 * config_load.c — what every part of the config loader shares: the first error
 * kept with the JSON path of its field, typed field readers ("$NAME" resolved
 * from the environment), unknown-field checks.
 */
#include "config_load.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_field.h"

void tg_config_load_fail(struct tg_config_loader *ld, const char *path, const char *fmt, ...)
{
    if (ld->failed)
        return; /* keep the first error */
    ld->failed = true;
    int n = snprintf(ld->err, ld->err_size, "config: %s: ", path);
    if (n < 0 || (size_t)n >= ld->err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err + n, ld->err_size - (size_t)n, fmt, ap);
    va_end(ap);
}

char *tg_config_load_strdup(struct tg_config_loader *ld, const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        tg_config_load_fail(ld, "(memory)", "out of memory");
    return copy;
}

/* A string field; "$NAME" is replaced by the environment variable NAME. */
const char *tg_config_load_string(struct tg_config_loader *ld, json_t *obj, const char *key,
                                  const char *path, const char *fallback, bool required)
{
    char field[256];
    snprintf(field, sizeof(field), "%s.%s", path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required)
            tg_config_load_fail(ld, field, "is required");
        return fallback != NULL ? tg_config_load_strdup(ld, fallback) : NULL;
    }
    if (!json_is_string(v)) {
        tg_config_load_fail(ld, field, "must be a string");
        return NULL;
    }
    char later[256]; /* the first error is the one reported: keep it */
    const char *s =
        tg_config_field_resolve_env(json_string_value(v), field, ld->failed ? later : ld->err,
                                    ld->failed ? sizeof(later) : ld->err_size);
    if (s == NULL) {
        ld->failed = true;
        return NULL;
    }
    return tg_config_load_strdup(ld, s);
}

long tg_config_load_integer(struct tg_config_loader *ld, json_t *obj, const char *key,
                            const char *path, long fallback, long min, long max)
{
    char field[256];
    snprintf(field, sizeof(field), "%s.%s", path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return fallback;
    if (!json_is_integer(v)) {
        tg_config_load_fail(ld, field, "must be an integer");
        return fallback;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        tg_config_load_fail(ld, field, "must be between %ld and %ld", min, max);
        return fallback;
    }
    return (long)n;
}

json_t *tg_config_load_object(struct tg_config_loader *ld, json_t *obj, const char *key,
                              const char *path, bool required)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) {
            char field[256];
            snprintf(field, sizeof(field), "%s%s%s", path, path[0] ? "." : "", key);
            tg_config_load_fail(ld, field, "is required");
        }
        return NULL;
    }
    if (!json_is_object(v)) {
        char field[256];
        snprintf(field, sizeof(field), "%s%s%s", path, path[0] ? "." : "", key);
        tg_config_load_fail(ld, field, "must be an object");
        return NULL;
    }
    return v;
}

/* Refuses keys the config does not know: a typo must not be silently ignored. */
void tg_config_load_keys(struct tg_config_loader *ld, json_t *obj, const char *path,
                         const char *const *known)
{
    if (!ld->failed &&
        tg_config_field_check_known(obj, path, known, ld->err, ld->err_size) != TG_OK)
        ld->failed = true;
}

bool tg_config_load_is_http_url(const char *s)
{
    return (strncmp(s, "http://", 7) == 0 && s[7] != '\0') ||
           (strncmp(s, "https://", 8) == 0 && s[8] != '\0');
}
