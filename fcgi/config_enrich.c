/*
 * config_enrich.c — the config's "enrich" section: read, checked, released;
 * and the templates of its header values, checked here and expanded for
 * enrich.c.
 *
 *   "enrich": [ {"match": {"group": "research", "model": "claude-*"},
 *                "system_prepend": "Answer in English.",
 *                "request_headers": {"set": {"x-user-id": "{user_id}"}},
 *                "response_headers": {"set": {"x-tollgate-model": "{model}"},
 *                                     "remove": ["x-ratelimit-limit-requests"]}} ]
 */
#include "config_enrich.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_field.h"

#define MAX_ENTRIES 64
#define MAX_SYSTEM_BYTES 65536
#define MAX_TEMPLATE_BYTES 1024
#define MAX_NAME_BYTES 64

static const char *const var_names[TG_ENRICH_N_VARS] = {
    "user_id", "group_id", "key_prefix", "role",       "model",
    "backend", "provider", "route",      "request_id",
};

/* ---- templates ---- */

static int find_var(const char *name, size_t len)
{
    for (int i = 0; i < TG_ENRICH_N_VARS; i++)
        if (strlen(var_names[i]) == len && memcmp(var_names[i], name, len) == 0)
            return i;
    return -1;
}

int tg_config_enrich_check_template(const char *t, char *problem, size_t size)
{
    for (const char *p = t; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) {
            snprintf(problem, size, "must not hold control characters (CR, LF, ...)");
            return TG_ERROR;
        }
        if (c == '}' && p[1] == '}') {
            p++;
            continue;
        }
        if (c != '{')
            continue;
        if (p[1] == '{') {
            p++;
            continue;
        }
        const char *end = strchr(p + 1, '}');
        if (end == NULL) {
            snprintf(problem, size, "\"{\" without \"}\" (write \"{{\" for a brace)");
            return TG_ERROR;
        }
        size_t len = (size_t)(end - p - 1);
        if (find_var(p + 1, len) < 0) {
            snprintf(problem, size,
                     "unknown variable \"{%.*s}\" (user_id, group_id, key_prefix, role, model, "
                     "backend, provider, route, request_id)",
                     (int)(len > 40 ? 40 : len), p + 1);
            return TG_ERROR;
        }
        p = end;
    }
    return TG_OK;
}

/* Appends src[0..len) to out, control bytes dropped, within size - 1; false when full. */
static bool put(char *out, size_t size, size_t *used, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c == 0x7f)
            continue;
        if (*used + 1 >= size)
            return false;
        out[(*used)++] = (char)c;
    }
    return true;
}

size_t tg_config_enrich_expand(const char *t, const char *const *values, char *out, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return 0;
    bool room = true;
    for (const char *p = t; *p != '\0' && room; p++) {
        if ((*p == '{' && p[1] == '{') || (*p == '}' && p[1] == '}')) {
            room = put(out, size, &used, p, 1);
            p++;
            continue;
        }
        const char *end = *p == '{' ? strchr(p + 1, '}') : NULL;
        int var = end != NULL ? find_var(p + 1, (size_t)(end - p - 1)) : -1;
        if (var < 0) {
            room = put(out, size, &used, p, 1);
            continue;
        }
        const char *v = values[var] != NULL ? values[var] : "";
        room = put(out, size, &used, v, strlen(v));
        p = end;
    }
    if (!room) /* cut: never inside a UTF-8 sequence */
        while (used > 0 && ((unsigned char)out[used - 1] & 0xC0) == 0x80)
            used--;
    if (!room && used > 0 && ((unsigned char)out[used - 1] & 0xC0) == 0xC0)
        used--; /* a lead byte whose continuation was cut */
    out[used] = '\0';
    return used;
}

bool tg_config_enrich_glob(const char *pattern, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s != '\0') {
        if (*pattern == '*') {
            star = pattern++;
            resume = s;
        } else if (*pattern == '?' || *pattern == *s) {
            pattern++;
            s++;
        } else if (star != NULL) {
            pattern = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

/* ---- header names ---- */

/* Credentials and the message's framing: neither direction may touch them. */
static const char *const never[] = {"authorization",
                                    "proxy-authorization",
                                    "x-api-key",
                                    "api-key",
                                    "x-goog-api-key",
                                    "cookie",
                                    "set-cookie",
                                    "host",
                                    "content-length",
                                    "content-type",
                                    "content-encoding",
                                    "transfer-encoding",
                                    "connection",
                                    "keep-alive",
                                    "upgrade",
                                    "te",
                                    "trailer",
                                    "expect",
                                    NULL};
/* The provider's API version and betas decide the body's meaning and its bound (bound.c). */
static const char *const never_request[] = {"anthropic-version", "anthropic-beta", NULL};
/* What the gateway itself tells the client. */
static const char *const never_response[] = {"status", "x-request-id", "x-tollgate-cost-usd",
                                             "x-tollgate-cache", NULL};

static bool listed(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static bool is_token(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > MAX_NAME_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("!#$%&'*+-.^_`|~", c) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

static int bad(char *err, size_t size, const char *field, const char *problem)
{
    snprintf(err, size, "config: %s: %s", field, problem);
    return TG_ERROR;
}

/* name, lower-cased into a new string, if a direction may touch it; NULL with err set. */
static char *header_name(const char *name, bool request, const char *field, char *err, size_t size)
{
    if (!is_token(name)) {
        bad(err, size, field, "is not a header name (1 to 64 token characters)");
        return NULL;
    }
    char *lower = strdup(name);
    if (lower == NULL) {
        bad(err, size, field, "out of memory");
        return NULL;
    }
    for (char *p = lower; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (listed(never, lower) || strncmp(lower, "x-amz-", 6) == 0 ||
        listed(request ? never_request : never_response, lower)) {
        bad(err, size, field,
            "carries a credential or the message's framing, or is the gateway's own: it cannot "
            "be set or removed");
        free(lower);
        return NULL;
    }
    return lower;
}

/* ---- the section ---- */

struct loader {
    char *err;
    size_t size;
    size_t n_set[2]; /* headers set so far: [0] request, [1] response */
};

static int load_set(struct loader *ld, json_t *set, bool request, const char *path,
                    struct tg_enrich_headers *out)
{
    char field[200];
    snprintf(field, sizeof(field), "%s.set", path);
    if (set == NULL)
        return TG_OK;
    if (!json_is_object(set))
        return bad(ld->err, ld->size, field, "must be an object of header name to template");
    size_t *count = &ld->n_set[request ? 0 : 1];
    if (*count + json_object_size(set) > TG_ENRICH_MAX_SET)
        return bad(ld->err, ld->size, field, "at most 16 headers are set, all entries together");
    *count += json_object_size(set);
    out->set = calloc(json_object_size(set) + 1, sizeof(*out->set));
    if (out->set == NULL)
        return bad(ld->err, ld->size, field, "out of memory");
    const char *name;
    json_t *v;
    json_object_foreach(set, name, v) {
        snprintf(field, sizeof(field), "%s.set.%.64s", path, name);
        char problem[200];
        const char *t = json_string_value(v);
        if (t == NULL || strlen(t) > MAX_TEMPLATE_BYTES)
            return bad(ld->err, ld->size, field, "must be a template of at most 1024 bytes");
        if (tg_config_enrich_check_template(t, problem, sizeof(problem)) != TG_OK)
            return bad(ld->err, ld->size, field, problem);
        struct tg_enrich_header *h = &out->set[out->n_set];
        h->name = header_name(name, request, field, ld->err, ld->size);
        if (h->name == NULL)
            return TG_ERROR;
        out->n_set++;
        h->template = strdup(t);
        if (h->template == NULL)
            return bad(ld->err, ld->size, field, "out of memory");
    }
    return TG_OK;
}

static int load_remove(struct loader *ld, json_t *remove, bool request, const char *path,
                       struct tg_enrich_headers *out)
{
    char field[200];
    snprintf(field, sizeof(field), "%s.remove", path);
    if (remove == NULL)
        return TG_OK;
    if (!json_is_array(remove) || json_array_size(remove) > TG_ENRICH_MAX_REMOVE)
        return bad(ld->err, ld->size, field, "must be an array of at most 16 header names");
    out->remove = calloc(json_array_size(remove) + 1, sizeof(char *));
    if (out->remove == NULL)
        return bad(ld->err, ld->size, field, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(remove, i, v) {
        snprintf(field, sizeof(field), "%s.remove[%zu]", path, i);
        if (!json_is_string(v))
            return bad(ld->err, ld->size, field, "must be a header name");
        out->remove[out->n_remove] =
            header_name(json_string_value(v), request, field, ld->err, ld->size);
        if (out->remove[out->n_remove] == NULL)
            return TG_ERROR;
        out->n_remove++;
    }
    return TG_OK;
}

static int load_headers(struct loader *ld, json_t *entry, const char *key, const char *path,
                        struct tg_enrich_headers *out)
{
    static const char *const known[] = {"set", "remove", NULL};
    json_t *h = json_object_get(entry, key);
    char field[160];
    snprintf(field, sizeof(field), "%s.%s", path, key);
    if (h == NULL)
        return TG_OK;
    if (!json_is_object(h))
        return bad(ld->err, ld->size, field, "must be an object with \"set\" and \"remove\"");
    if (tg_config_field_check_known(h, field, known, ld->err, ld->size) != TG_OK)
        return TG_ERROR;
    bool request = strcmp(key, "request_headers") == 0;
    if (load_set(ld, json_object_get(h, "set"), request, field, out) != TG_OK)
        return TG_ERROR;
    return load_remove(ld, json_object_get(h, "remove"), request, field, out);
}

/* entry.key (a string of 1 to max bytes) into *out, or NULL when absent. */
static int load_text(struct loader *ld, json_t *obj, const char *key, const char *path, size_t max,
                     char **out)
{
    json_t *v = json_object_get(obj, key);
    char field[160];
    snprintf(field, sizeof(field), "%s.%s", path, key);
    if (v == NULL)
        return TG_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        char problem[80];
        snprintf(problem, sizeof(problem), "must be a non-empty string of at most %zu bytes", max);
        return bad(ld->err, ld->size, field, problem);
    }
    *out = strdup(json_string_value(v));
    return *out != NULL ? TG_OK : bad(ld->err, ld->size, field, "out of memory");
}

static int load_match(struct loader *ld, json_t *entry, const char *path, struct tg_enrich_entry *e)
{
    static const char *const known[] = {"group", "role", "model", "route", NULL};
    json_t *m = json_object_get(entry, "match");
    char field[160];
    snprintf(field, sizeof(field), "%s.match", path);
    if (m == NULL)
        return TG_OK;
    if (!json_is_object(m))
        return bad(ld->err, ld->size, field, "must be an object (group, role, model, route)");
    if (tg_config_field_check_known(m, field, known, ld->err, ld->size) != TG_OK)
        return TG_ERROR;
    if (load_text(ld, m, "group", field, 200, &e->group) != TG_OK ||
        load_text(ld, m, "role", field, 200, &e->role) != TG_OK ||
        load_text(ld, m, "model", field, 200, &e->model) != TG_OK)
        return TG_ERROR;
    return load_text(ld, m, "route", field, 200, &e->route);
}

static int load_entry(struct loader *ld, json_t *entry, size_t i, struct tg_enrich_entry *e)
{
    static const char *const known[] = {"match",           "system_prepend",   "system_append",
                                        "request_headers", "response_headers", NULL};
    char path[32];
    snprintf(path, sizeof(path), "enrich[%zu]", i);
    if (!json_is_object(entry))
        return bad(ld->err, ld->size, path, "must be an object");
    if (tg_config_field_check_known(entry, path, known, ld->err, ld->size) != TG_OK)
        return TG_ERROR;
    if (load_match(ld, entry, path, e) != TG_OK ||
        load_text(ld, entry, "system_prepend", path, MAX_SYSTEM_BYTES, &e->system_prepend) !=
            TG_OK ||
        load_text(ld, entry, "system_append", path, MAX_SYSTEM_BYTES, &e->system_append) != TG_OK)
        return TG_ERROR;
    if (load_headers(ld, entry, "request_headers", path, &e->request_headers) != TG_OK)
        return TG_ERROR;
    return load_headers(ld, entry, "response_headers", path, &e->response_headers);
}

int tg_config_enrich_load(json_t *section, struct tg_enrich_config *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    if (section == NULL)
        return TG_OK;
    if (!json_is_array(section) || json_array_size(section) > MAX_ENTRIES)
        return bad(err, err_size, "enrich", "must be an array of at most 64 entries");
    out->entries = calloc(json_array_size(section) + 1, sizeof(*out->entries));
    if (out->entries == NULL)
        return bad(err, err_size, "enrich", "out of memory");
    struct loader ld = {err, err_size, {0, 0}};
    size_t i;
    json_t *entry;
    json_array_foreach(section, i, entry) {
        out->n_entries++; /* released whatever it holds when it fails half way */
        if (load_entry(&ld, entry, i, &out->entries[i]) != TG_OK) {
            tg_config_enrich_release(out);
            return TG_ERROR;
        }
    }
    return TG_OK;
}

static void release_headers(struct tg_enrich_headers *h)
{
    for (size_t i = 0; h->set != NULL && h->set[i].name != NULL; i++) {
        free(h->set[i].name);
        free(h->set[i].template);
    }
    free(h->set);
    for (size_t i = 0; i < h->n_remove; i++)
        free(h->remove[i]);
    free(h->remove);
}

void tg_config_enrich_release(struct tg_enrich_config *enrich)
{
    for (size_t i = 0; i < enrich->n_entries; i++) {
        struct tg_enrich_entry *e = &enrich->entries[i];
        free(e->group);
        free(e->role);
        free(e->model);
        free(e->route);
        free(e->system_prepend);
        free(e->system_append);
        release_headers(&e->request_headers);
        release_headers(&e->response_headers);
    }
    free(enrich->entries);
    enrich->entries = NULL;
    enrich->n_entries = 0;
}
