/*
 * enrich.c — the operator's system text and headers over a request (the rules
 * are in enrich.h; the section is config_enrich.c's).
 */
#include "enrich.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "jsafe.h"
#include "request.h"

/* ---- which entries ---- */

static bool matches(const struct tg_enrich_entry *e, const struct tg_request *r, bool identity)
{
    if (e->model != NULL && (r->model == NULL || !tg_config_enrich_glob(e->model, r->model->name)))
        return false;
    if (e->route != NULL &&
        (r->route == NULL || r->route->name == NULL || strcmp(e->route, r->route->name) != 0))
        return false;
    if (!identity)
        return true; /* the bound: group and role come with the reserve */
    if (e->group != NULL &&
        (r->identity.group_id == NULL || strcmp(e->group, r->identity.group_id) != 0))
        return false;
    return e->role == NULL || (r->identity.role != NULL && strcmp(e->role, r->identity.role) == 0);
}

static bool gets_system_text(const struct tg_request *r)
{
    return r->endpoint == TG_EP_MESSAGES || r->endpoint == TG_EP_CHAT_COMPLETIONS;
}

int64_t tg_enrich_bound_bytes(const struct tg_request *r)
{
    const struct tg_enrich_config *ec = &r->config->enrich;
    int64_t bytes = 0;
    if (!gets_system_text(r))
        return 0;
    for (size_t i = 0; i < ec->n_entries; i++) {
        const struct tg_enrich_entry *e = &ec->entries[i];
        if (!matches(e, r, false))
            continue;
        if (e->system_prepend != NULL)
            bytes += (int64_t)strlen(e->system_prepend) + TG_ENRICH_TEXT_OVERHEAD;
        if (e->system_append != NULL)
            bytes += (int64_t)strlen(e->system_append) + TG_ENRICH_TEXT_OVERHEAD;
    }
    return bytes; /* at most 64 entries of 2 x 64 KiB: no overflow */
}

/* ---- the system text ---- */

/* The entries' prepended (or appended) texts in config order, a blank line apart; NULL: none. */
static char *joined(struct tg_request *r, bool prepend)
{
    size_t len = 0;
    for (size_t i = 0; i < r->n_enrich; i++) {
        const char *t = prepend ? r->enrich[i]->system_prepend : r->enrich[i]->system_append;
        if (t != NULL)
            len += strlen(t) + 2;
    }
    if (len == 0)
        return NULL;
    char *out = tg_arena_alloc(r->arena, len + 1);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < r->n_enrich; i++) {
        const char *t = prepend ? r->enrich[i]->system_prepend : r->enrich[i]->system_append;
        if (t == NULL)
            continue;
        if (used > 0) {
            memcpy(out + used, "\n\n", 2);
            used += 2;
        }
        memcpy(out + used, t, strlen(t));
        used += strlen(t);
    }
    out[used] = '\0';
    return out;
}

/* pre, text and post (each may be NULL or empty) a blank line apart, as a new JSON string. */
static json_t *join3(const char *pre, const char *text, const char *post)
{
    const char *parts[3] = {pre, text, post};
    size_t len = 0;
    for (size_t i = 0; i < 3; i++)
        len += parts[i] != NULL ? strlen(parts[i]) + 2 : 0;
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < 3; i++) {
        if (parts[i] == NULL || parts[i][0] == '\0')
            continue;
        if (used > 0) {
            memcpy(buf + used, "\n\n", 2);
            used += 2;
        }
        memcpy(buf + used, parts[i], strlen(parts[i]));
        used += strlen(parts[i]);
    }
    json_t *s = json_stringn(buf, used);
    free(buf);
    return s;
}

static json_t *text_block(const char *text)
{
    return json_pack("{s:s, s:s}", "type", "text", "text", text);
}

/* Anthropic's "system": a string, an array of blocks, or absent. */
static int anthropic_system(json_t *doc, const char *pre, const char *post)
{
    json_t *system = json_object_get(doc, "system");
    if (system == NULL || json_is_string(system)) {
        json_t *s = join3(pre, json_string_value(system), post);
        return s != NULL && json_object_set_new(doc, "system", s) == 0 ? TG_OK : TG_ERROR;
    }
    if (!json_is_array(system))
        return TG_OK; /* not a system prompt: the provider refuses it as it is */
    if (pre != NULL && json_array_insert_new(system, 0, text_block(pre)) != 0)
        return TG_ERROR;
    if (post != NULL && json_array_append_new(system, text_block(post)) != 0)
        return TG_ERROR;
    return TG_OK;
}

static bool is_system_role(json_t *message)
{
    const char *role = json_string_value(json_object_get(message, "role"));
    return role != NULL && (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0);
}

static json_t *system_message(const char *text)
{
    return json_pack("{s:s, s:s}", "role", "system", "content", text);
}

/* OpenAI's messages: the prepended text first, the appended after the leading system ones. */
static int openai_system(json_t *doc, const char *pre, const char *post)
{
    json_t *messages = json_object_get(doc, "messages");
    if (!json_is_array(messages))
        return TG_OK; /* the dialect checked it already */
    size_t lead = 0;
    while (lead < json_array_size(messages) && is_system_role(json_array_get(messages, lead)))
        lead++;
    if (post != NULL && json_array_insert_new(messages, lead, system_message(post)) != 0)
        return TG_ERROR;
    if (pre != NULL && json_array_insert_new(messages, 0, system_message(pre)) != 0)
        return TG_ERROR;
    return TG_OK;
}

static void free_text(void *text)
{
    free(text);
}

static int system_text(struct tg_request *r)
{
    if (!gets_system_text(r) || r->doc == NULL)
        return TG_OK;
    const char *pre = joined(r, true);
    const char *post = joined(r, false);
    if (pre == NULL && post == NULL)
        return TG_OK;
    int rc = r->endpoint == TG_EP_MESSAGES ? anthropic_system(r->doc, pre, post)
                                           : openai_system(r->doc, pre, post);
    if (rc != TG_OK)
        return TG_ERROR;
    /* what is forwarded byte for byte, and what the cache keys, say the same as r->doc */
    char *text = tg_jsafe_dumps(r->doc, JSON_COMPACT);
    if (text == NULL || tg_arena_cleanup_add(r->arena, free_text, text) != TG_OK) {
        free(text);
        return TG_ERROR;
    }
    r->body = text;
    r->body_len = strlen(text);
    return TG_OK;
}

/* ---- headers ---- */

static void values_of(const struct tg_request *r, const char *v[TG_ENRICH_N_VARS])
{
    v[TG_ENRICH_USER_ID] = r->identity.user_id;
    v[TG_ENRICH_GROUP_ID] = r->identity.group_id;
    v[TG_ENRICH_KEY_PREFIX] = r->identity.key_prefix;
    v[TG_ENRICH_ROLE] = r->identity.role;
    v[TG_ENRICH_MODEL] = r->model != NULL ? r->model->name : NULL;
    v[TG_ENRICH_BACKEND] = r->backend != NULL ? r->backend->id : NULL;
    v[TG_ENRICH_PROVIDER] = r->backend != NULL ? r->backend->provider->name : NULL;
    v[TG_ENRICH_ROUTE] = r->route != NULL ? r->route->name : NULL;
    v[TG_ENRICH_REQUEST_ID] = r->request_id;
}

/* Whether line ("Name: value...") is a header called name (lower case). */
static bool named(const char *line, size_t line_len, const char *name)
{
    size_t n = strlen(name);
    return line_len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* Takes every queued response header called name out of r->resp_headers. */
static void drop_response(struct tg_request *r, const char *name)
{
    size_t at = 0, kept = 0;
    while (at < r->resp_headers_len) {
        const char *line = r->resp_headers + at;
        const char *end = memchr(line, '\n', r->resp_headers_len - at);
        size_t len = end != NULL ? (size_t)(end - line) + 1 : r->resp_headers_len - at;
        if (!named(line, len, name)) {
            memmove(r->resp_headers + kept, line, len);
            kept += len;
        }
        at += len;
    }
    r->resp_headers_len = kept;
    if (r->resp_headers != NULL)
        r->resp_headers[kept] = '\0';
}

/* r->before_headers: the response headers of r->enrich, just before they are sent. */
static void response_headers(struct tg_request *r)
{
    const char *values[TG_ENRICH_N_VARS];
    values_of(r, values);
    for (size_t i = 0; i < r->n_enrich; i++) {
        const struct tg_enrich_headers *h = &r->enrich[i]->response_headers;
        for (size_t j = 0; j < h->n_remove; j++)
            drop_response(r, h->remove[j]);
        for (size_t j = 0; j < h->n_set; j++) {
            char value[TG_ENRICH_VALUE_MAX + 1];
            drop_response(r, h->set[j].name);
            if (tg_config_enrich_expand(h->set[j].template, values, value, sizeof(value)) > 0)
                tg_request_add_header(r, h->set[j].name, value);
        }
    }
}

static size_t drop_call(const char **headers, size_t n, const char *name)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!named(headers[i], strlen(headers[i]), name))
            headers[kept++] = headers[i];
    return kept;
}

int tg_enrich_call_headers(struct tg_request *r, const char **headers, size_t *n, size_t cap)
{
    const char *values[TG_ENRICH_N_VARS];
    values_of(r, values);
    for (size_t i = 0; i < r->n_enrich; i++) {
        const struct tg_enrich_headers *h = &r->enrich[i]->request_headers;
        for (size_t j = 0; j < h->n_remove; j++)
            *n = drop_call(headers, *n, h->remove[j]);
        for (size_t j = 0; j < h->n_set; j++) {
            char value[TG_ENRICH_VALUE_MAX + 1];
            *n = drop_call(headers, *n, h->set[j].name);
            if (tg_config_enrich_expand(h->set[j].template, values, value, sizeof(value)) == 0)
                continue;
            if (*n >= cap)
                return TG_ERROR;
            headers[*n] = tg_arena_printf(r->arena, "%s: %s", h->set[j].name, value);
            if (headers[*n] == NULL)
                return TG_ERROR;
            (*n)++;
        }
    }
    return TG_OK;
}

/* ---- the step ---- */

int tg_enrich_apply(struct tg_request *r)
{
    const struct tg_enrich_config *ec = &r->config->enrich;
    if (ec->n_entries == 0)
        return TG_OK;
    r->enrich = tg_arena_calloc(r->arena, ec->n_entries * sizeof(*r->enrich));
    if (r->enrich == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory enriching");
        return TG_ERROR;
    }
    bool response = false;
    for (size_t i = 0; i < ec->n_entries; i++) {
        const struct tg_enrich_entry *e = &ec->entries[i];
        if (!matches(e, r, true))
            continue;
        r->enrich[r->n_enrich++] = e;
        response = response || e->response_headers.n_set > 0 || e->response_headers.n_remove > 0;
    }
    if (system_text(r) != TG_OK) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory enriching");
        return TG_ERROR;
    }
    if (response)
        r->before_headers = response_headers;
    return TG_OK;
}
