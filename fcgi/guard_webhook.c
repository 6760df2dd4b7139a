/*
 * guard_webhook.c — the webhook and moderation checks: body, call, answer.
 */
#include "guard_webhook.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "jsafe.h"
#include "request.h"
#include "upstream.h"

#define MAX_CALL_HEADERS 20

static json_t *string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *webhook_body(const struct tg_request *r, const struct tg_guard_webhook_text *texts,
                            size_t n)
{
    const struct tg_identity *id = &r->identity;
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_t *one = json_pack("{s:s?, s:o}", "where", texts[i].where, "text",
                                json_stringn(texts[i].text, texts[i].len));
        if (one == NULL || json_array_append_new(list, one) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list == NULL)
        return NULL;
    return json_pack("{s:s, s:o, s:o, s:{s:o, s:o, s:o, s:o}, s:o}", "request_id", r->request_id,
                     "endpoint", string_or_null(r->endpoint_path), "model",
                     string_or_null(r->model != NULL ? r->model->name : r->client_model), "caller",
                     "key_prefix", string_or_null(id->key_prefix), "user_id",
                     string_or_null(id->user_id), "group_id", string_or_null(id->group_id), "role",
                     string_or_null(id->role), "texts", list);
}

static json_t *moderation_body(const struct tg_guard_hook *hook,
                               const struct tg_guard_webhook_text *texts, size_t n)
{
    json_t *input = json_array();
    for (size_t i = 0; input != NULL && i < n; i++)
        if (json_array_append_new(input, json_stringn(texts[i].text, texts[i].len)) != 0) {
            json_decref(input);
            input = NULL;
        }
    if (input == NULL)
        return NULL;
    return json_pack("{s:s, s:o}", "model", hook->model != NULL ? hook->model : "", "input", input);
}

char *tg_guard_webhook_body(const struct tg_request *r, const struct tg_guard_hook *hook,
                            const struct tg_guard_webhook_text *texts, size_t n, size_t *len)
{
    json_t *doc = hook->kind == TG_GUARD_HOOK_MODERATION ? moderation_body(hook, texts, n)
                                                         : webhook_body(r, texts, n);
    char *text = doc != NULL ? tg_jsafe_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text != NULL)
        *len = strlen(text);
    return text;
}

/* reason, shortened at a character's boundary, its control characters dropped. */
static const char *clean_reason(struct tg_arena *arena, const char *reason)
{
    char out[TG_GUARD_WEBHOOK_MAX_REASON + 1];
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)reason; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            continue;
        if (j == TG_GUARD_WEBHOOK_MAX_REASON) {
            if ((*p & 0xc0) == 0x80) { /* the last character goes on: drop all of it */
                while (j > 0 && ((unsigned char)out[j - 1] & 0xc0) == 0x80)
                    j--;
                j -= j > 0;
            }
            break;
        }
        out[j++] = (char)*p;
    }
    out[j] = '\0';
    return tg_arena_strdup(arena, j > 0 ? out : "no reason given");
}

static int fail(struct tg_guard_webhook_verdict *out, const char *why)
{
    snprintf(out->error, sizeof(out->error), "%s", why);
    return TG_ERROR;
}

static int parse_webhook(json_t *doc, size_t n, struct tg_arena *arena,
                         struct tg_guard_webhook_verdict *out)
{
    const char *action = json_string_value(json_object_get(doc, "action"));
    if (action == NULL)
        return fail(out, "the answer has no \"action\"");
    if (strcmp(action, "allow") == 0) {
        out->action = TG_GUARD_WEBHOOK_ALLOW;
        return TG_OK;
    }
    if (strcmp(action, "deny") == 0) {
        const char *reason = json_string_value(json_object_get(doc, "reason"));
        out->action = TG_GUARD_WEBHOOK_DENY;
        out->reason = clean_reason(arena, reason != NULL ? reason : "");
        return out->reason != NULL ? TG_OK : fail(out, "out of memory");
    }
    if (strcmp(action, "replace") != 0)
        return fail(out, "the answer's \"action\" is not allow, deny or replace");
    json_t *texts = json_object_get(doc, "texts");
    if (!json_is_array(texts) || json_array_size(texts) != n)
        return fail(out, "a replace answer must hold one text per text asked about");
    out->texts = tg_arena_calloc(arena, (n + 1) * sizeof(*out->texts));
    out->lens = tg_arena_calloc(arena, (n + 1) * sizeof(*out->lens));
    if (out->texts == NULL || out->lens == NULL)
        return fail(out, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(texts, i);
        if (!json_is_string(t))
            return fail(out, "a replace answer's texts must be strings");
        out->lens[i] = json_string_length(t);
        out->texts[i] = tg_arena_strndup(arena, json_string_value(t), out->lens[i]);
        if (out->texts[i] == NULL)
            return fail(out, "out of memory");
    }
    out->action = TG_GUARD_WEBHOOK_REPLACE;
    return TG_OK;
}

/* Whether the reply's category blocks: one configured, or one under it ("violence/graphic"). */
static bool category_blocks(const struct tg_guard_hook *hook, const char *category)
{
    if (hook->n_categories == 0)
        return true;
    for (size_t i = 0; i < hook->n_categories; i++) {
        size_t len = strlen(hook->categories[i]);
        if (strncmp(category, hook->categories[i], len) == 0 &&
            (category[len] == '\0' || category[len] == '/'))
            return true;
    }
    return false;
}

static int parse_moderation(const struct tg_guard_hook *hook, json_t *doc, size_t n,
                            struct tg_arena *arena, struct tg_guard_webhook_verdict *out)
{
    json_t *results = json_object_get(doc, "results");
    if (!json_is_array(results) || json_array_size(results) != n)
        return fail(out, "the answer must hold one result per text asked about");
    out->action = TG_GUARD_WEBHOOK_ALLOW;
    size_t i;
    json_t *result;
    json_array_foreach(results, i, result) {
        json_t *categories = json_object_get(result, "categories");
        if (!json_is_object(categories))
            return fail(out, "a result has no \"categories\" object");
        const char *name;
        json_t *flagged;
        json_object_foreach(categories, name, flagged) {
            if (!json_is_true(flagged) || !category_blocks(hook, name) ||
                out->action == TG_GUARD_WEBHOOK_DENY)
                continue;
            out->action = TG_GUARD_WEBHOOK_DENY;
            out->reason = clean_reason(arena, name);
            if (out->reason == NULL)
                return fail(out, "out of memory");
        }
    }
    return TG_OK;
}

int tg_guard_webhook_parse(const struct tg_guard_hook *hook, size_t n, const char *body, size_t len,
                           struct tg_arena *arena, struct tg_guard_webhook_verdict *out)
{
    out->action = TG_GUARD_WEBHOOK_ALLOW;
    out->reason = NULL;
    out->texts = NULL;
    out->lens = NULL;
    out->error[0] = '\0';
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return fail(out, "the answer is not a JSON object");
    }
    int rc = hook->kind == TG_GUARD_HOOK_MODERATION ? parse_moderation(hook, doc, n, arena, out)
                                                    : parse_webhook(doc, n, arena, out);
    json_decref(doc);
    return rc;
}

/* The reply as it arrives, capped. */
struct reply {
    char *data;
    size_t len, cap;
    bool too_big;
};

static int on_body(void *ctx, long status, const char *data, size_t len)
{
    (void)status;
    struct reply *rep = ctx;
    if (len > TG_GUARD_WEBHOOK_MAX_REPLY - rep->len) {
        rep->too_big = true;
        return TG_ERROR;
    }
    if (rep->len + len > rep->cap) {
        size_t cap = rep->cap != 0 ? rep->cap : 4096;
        while (cap < rep->len + len)
            cap *= 2;
        char *grown = realloc(rep->data, cap);
        if (grown == NULL)
            return TG_ERROR;
        rep->data = grown;
        rep->cap = cap;
    }
    memcpy(rep->data + rep->len, data, len);
    rep->len += len;
    return TG_OK;
}

int tg_guard_webhook_ask(struct tg_request *r, const struct tg_guard_hook *hook,
                         const struct tg_guard_webhook_text *texts, size_t n,
                         struct tg_guard_webhook_verdict *out)
{
    out->error[0] = '\0';
    size_t body_len = 0;
    char *body = tg_guard_webhook_body(r, hook, texts, n, &body_len);
    if (body == NULL)
        return fail(out, "out of memory");
    const char *headers[MAX_CALL_HEADERS];
    size_t n_headers = 0;
    headers[n_headers++] = "content-type: application/json";
    headers[n_headers++] = "accept: application/json";
    headers[n_headers++] = "expect:"; /* no 100-continue wait inside the deadline */
    for (size_t i = 0; i < hook->n_headers && n_headers < MAX_CALL_HEADERS; i++)
        headers[n_headers++] = hook->headers[i];
    struct reply rep = {0};
    struct tg_upstream_call call = {
        .url = hook->url,
        .headers = headers,
        .n_headers = n_headers,
        .body = body,
        .body_len = body_len,
        .connect_timeout_ms = hook->connect_timeout_ms,
        .timeout_ms = hook->timeout_ms,
        .on_body = on_body,
        .ctx = &rep,
    };
    enum tg_upstream_result result = tg_upstream_perform(r->upstream, &call);
    free(body);
    int rc;
    if (rep.too_big)
        rc = fail(out, "the answer is over 1 MiB");
    else if (result == TG_UPSTREAM_TIMEOUT) {
        snprintf(out->error, sizeof(out->error), "no answer within %ld ms", hook->timeout_ms);
        rc = TG_ERROR;
    } else if (result != TG_UPSTREAM_OK) {
        snprintf(out->error, sizeof(out->error), "could not be asked: %s", call.error);
        rc = TG_ERROR;
    } else if (call.status < 200 || call.status > 299) {
        snprintf(out->error, sizeof(out->error), "answered status %ld", call.status);
        rc = TG_ERROR;
    } else
        rc = tg_guard_webhook_parse(hook, n, rep.data != NULL ? rep.data : "", rep.len, r->arena,
                                    out);
    free(rep.data);
    return rc;
}
