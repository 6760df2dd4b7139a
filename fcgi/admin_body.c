/*
 * admin_body.c — the admin API's request and response bodies: %XX decoding,
 * the JSON body object, typed field readers that name the bad field (400), and
 * JSON answers. Shared by admin.c's operations and admin_cache.c.
 */
#include "admin_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "jsafe.h"
#include "request.h"

/* One path segment with its %XX escapes decoded, in the arena; NULL when malformed. */
char *tg_admin_body_decode(struct tg_arena *arena, const char *s, size_t len)
{
    char *out = tg_arena_alloc(arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; out != NULL && i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        int hi = i + 2 < len ? tg_crypto_hex_value(s[i + 1]) : -1;
        int lo = hi >= 0 ? tg_crypto_hex_value(s[i + 2]) : -1;
        if (lo < 0 || hi * 16 + lo == 0)
            return NULL;
        out[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    if (out != NULL)
        out[n] = '\0';
    return out;
}

static void release_json(void *json)
{
    json_decref(json);
}

/* The body as a JSON object (an empty body is {}); NULL with r->error set. */
json_t *tg_admin_body_read(struct tg_request *r)
{
    if (tg_request_read_body(r) != TG_OK)
        return NULL;
    if (r->body_len > TG_ADMIN_MAX_BODY) {
        tg_request_fail(r, 413, "request_too_large", "request body is too large",
                        "admin body over %d bytes", TG_ADMIN_MAX_BODY);
        return NULL;
    }
    json_error_t err;
    json_t *body = r->body_len == 0
                       ? json_object()
                       : json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);
    if (body == NULL) {
        char message[128];
        snprintf(message, sizeof(message), "request body is not valid JSON (line %d, column %d)",
                 err.line, err.column);
        tg_request_fail(r, 400, "invalid_request_error", message, NULL);
        return NULL;
    }
    if (tg_arena_cleanup_add(r->arena, release_json, body) != TG_OK)
        return NULL;
    if (!json_is_object(body)) {
        tg_request_fail(r, 400, "invalid_request_error", "request body must be a JSON object",
                        NULL);
        return NULL;
    }
    return body;
}

/* ---- body fields ------------------------------------------------------------------ */

int tg_admin_body_bad_field(struct tg_request *r, const char *field, const char *problem)
{
    char message[256];
    snprintf(message, sizeof(message), "\"%s\": %s", field, problem);
    tg_request_fail(r, 400, "invalid_request_error", message, NULL);
    return TG_ERROR;
}

/* TG_ERROR naming the first field of body that known (NULL-terminated) lacks. */
int tg_admin_body_check_fields(struct tg_request *r, json_t *body, const char *const *known)
{
    for (void *it = json_object_iter(body); it != NULL; it = json_object_iter_next(body, it)) {
        const char *name = json_object_iter_key(it);
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], name) != 0)
            i++;
        if (known[i] == NULL)
            return tg_admin_body_bad_field(r, name, "unknown field");
    }
    return TG_OK;
}

/* A string field into *out, NULL when absent or null. */
int tg_admin_body_string(struct tg_request *r, json_t *body, const char *name, bool required,
                         const char **out)
{
    json_t *value = json_object_get(body, name);
    *out = NULL;
    if (value == NULL || json_is_null(value))
        return required ? tg_admin_body_bad_field(r, name, "is required") : TG_OK;
    if (!json_is_string(value))
        return tg_admin_body_bad_field(r, name, "must be a string");
    *out = json_string_value(value);
    return TG_OK;
}

/* 001's identifier: a letter or digit, then up to 127 of letters, digits, ._@:- */
static bool is_identifier(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && (i == 0 || strchr("._@:-", c) == NULL))
            return false;
    }
    return len > 0 && len <= 128;
}

int tg_admin_body_id(struct tg_request *r, json_t *body, const char *name, bool required,
                     const char **out)
{
    if (tg_admin_body_string(r, body, name, required, out) != TG_OK)
        return TG_ERROR;
    if (*out != NULL && !is_identifier(*out))
        return tg_admin_body_bad_field(
            r, name,
            "must be an identifier (letters, digits, '.', '_', '@', ':', '-'; "
            "at most 128)");
    return TG_OK;
}

/* A required string that is one of choices (NULL-terminated); spelled says which. */
int tg_admin_body_choice(struct tg_request *r, json_t *body, const char *name,
                         const char *const *choices, const char *spelled, const char **out)
{
    if (tg_admin_body_string(r, body, name, true, out) != TG_OK)
        return TG_ERROR;
    for (size_t i = 0; choices[i] != NULL; i++)
        if (strcmp(choices[i], *out) == 0)
            return TG_OK;
    return tg_admin_body_bad_field(r, name, spelled);
}

/* An integer field in [min, max] into *out, left as is when absent and not required. */
int tg_admin_body_integer(struct tg_request *r, json_t *body, const char *name, bool required,
                          int64_t min, int64_t max, int64_t *out)
{
    json_t *value = json_object_get(body, name);
    if (value == NULL || json_is_null(value))
        return required ? tg_admin_body_bad_field(r, name, "is required") : TG_OK;
    json_int_t n = json_is_integer(value) ? json_integer_value(value) : 0;
    if (!json_is_integer(value) || n < min || n > max) {
        char problem[96];
        snprintf(problem, sizeof(problem), "must be an integer from %lld to %lld", (long long)min,
                 (long long)max);
        return tg_admin_body_bad_field(r, name, problem);
    }
    *out = n;
    return TG_OK;
}

/* json as compact text in the arena; NULL with r->error set. */
const char *tg_admin_body_dump(struct tg_request *r, const json_t *json)
{
    char *text = tg_jsafe_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
    char *copy = text != NULL ? tg_arena_strdup(r->arena, text) : NULL;
    free(text);
    if (copy == NULL)
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory");
    return copy;
}

/* An array of non-empty strings as JSON text for a ::jsonb parameter; NULL for null. */
int tg_admin_body_string_array(struct tg_request *r, json_t *body, const char *name,
                               const char **json_text)
{
    json_t *value = json_object_get(body, name);
    *json_text = NULL;
    if (value == NULL || json_is_null(value))
        return TG_OK;
    size_t i;
    json_t *entry;
    bool ok = json_is_array(value);
    json_array_foreach(value, i, entry) {
        ok = ok && json_is_string(entry) && json_string_length(entry) > 0;
    }
    if (!ok)
        return tg_admin_body_bad_field(r, name, "must be an array of non-empty strings or null");
    *json_text = tg_admin_body_dump(r, value);
    return *json_text != NULL ? TG_OK : TG_ERROR;
}

int tg_admin_body_respond_json(struct tg_request *r, int status, const char *json)
{
    tg_request_respond(r, status, "application/json", json, strlen(json));
    return TG_OK;
}

/* Answers doc (a new reference, stolen) with status. */
int tg_admin_body_respond_doc(struct tg_request *r, int status, json_t *doc)
{
    const char *text = doc != NULL ? tg_admin_body_dump(r, doc) : NULL;
    json_decref(doc);
    if (text == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "could not build a response");
        return TG_ERROR;
    }
    return tg_admin_body_respond_json(r, status, text);
}
