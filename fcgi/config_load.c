/*
 * config_load.c — what every part of the config loader shares: the first error
 * kept with the JSON path of its field, typed field readers ("$NAME" resolved
 * from the environment), unknown-field checks.
 */
#include "config_load.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

#define MAX_HEADER_LINE 4096

bool tg_config_load_printable(const char *s)
{
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool header_name_ok(const char *name, const char *const *reserved)
{
    static const char *const always[] = {"content-type", "content-length", "host",
                                         "transfer-encoding", NULL};
    if (name[0] == '\0' || strlen(name) > 64)
        return false;
    for (const char *p = name; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    for (size_t i = 0; always[i] != NULL; i++)
        if (strcasecmp(name, always[i]) == 0)
            return false;
    for (size_t i = 0; reserved != NULL && reserved[i] != NULL; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return false;
    return true;
}

/*
 * "Name: value" of one header, a "$NAME" ending the value read from the
 * environment: a new string, or NULL with the load failed (field names it).
 */
static char *header_line(struct tg_config_loader *ld, const char *name, json_t *value,
                         const char *field)
{
    const char *text = json_string_value(value);
    if (text == NULL) {
        tg_config_load_fail(ld, field, "must be a string");
        return NULL;
    }
    const char *dollar = strrchr(text, '$'), *tail = "";
    size_t prefix = strlen(text);
    size_t name_len = dollar != NULL ? strlen(dollar + 1) : 0;
    if (name_len > 0 && !isdigit((unsigned char)dollar[1]) &&
        strspn(dollar + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
            name_len) {
        char err[256];
        tail = tg_config_field_resolve_env(dollar, field, err, sizeof(err));
        if (tail == NULL) {
            tg_config_load_fail(ld, field, "environment variable \"%s\" is not set", dollar + 1);
            return NULL;
        }
        prefix = (size_t)(dollar - text);
    }
    bool clean = tg_config_load_printable(tail);
    for (size_t i = 0; i < prefix; i++)
        clean = clean && (unsigned char)text[i] >= 0x20 && text[i] != 0x7f;
    size_t size = strlen(name) + 2 + prefix + strlen(tail) + 1;
    if (!clean || size > MAX_HEADER_LINE) {
        tg_config_load_fail(ld, field, "must be at most %d bytes without control characters",
                            MAX_HEADER_LINE);
        return NULL;
    }
    char *line = malloc(size);
    if (line == NULL) {
        tg_config_load_fail(ld, field, "out of memory");
        return NULL;
    }
    snprintf(line, size, "%s: %.*s%s", name, (int)prefix, text, tail);
    return line;
}

void tg_config_load_headers(struct tg_config_loader *ld, json_t *obj, const char *path,
                            const char *const *reserved, size_t spare, char ***lines, size_t *n)
{
    char field[192];
    snprintf(field, sizeof(field), "%s.headers", path);
    json_t *headers = json_object_get(obj, "headers");
    *lines = NULL;
    *n = 0;
    if (headers == NULL && spare == 0)
        return;
    if (headers != NULL &&
        (!json_is_object(headers) || json_object_size(headers) > TG_CONFIG_MAX_HEADERS)) {
        tg_config_load_fail(ld, field, "must be an object of at most %d headers",
                            TG_CONFIG_MAX_HEADERS);
        return;
    }
    *lines = calloc(TG_CONFIG_MAX_HEADERS + spare + 1, sizeof(char *));
    if (*lines == NULL) {
        tg_config_load_fail(ld, field, "out of memory");
        return;
    }
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value) {
        char member[256];
        snprintf(member, sizeof(member), "%s.%.64s", field, name);
        if (!header_name_ok(name, reserved)) {
            tg_config_load_fail(ld, member, "is not a header name the gateway may send");
            return;
        }
        char *line = header_line(ld, name, value, member);
        if (line == NULL)
            return;
        (*lines)[(*n)++] = line;
    }
}
