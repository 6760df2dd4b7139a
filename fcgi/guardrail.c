/*
 * guardrail.c — the guard step of the pipeline.
 */
#include "guardrail.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "guard.h"
#include "guard_texts.h"
#include "log.h"
#include "request.h"
#include "shm.h"

#define MAX_FINDINGS 64

struct walk {
    struct tg_request *r;
    enum tg_guard_level level;
    bool masked;       /* a text was rewritten: the body must be written again */
    bool failed;       /* a text could not be checked */
    const char *block; /* the rule that blocked, or NULL */
    enum tg_guard_category block_category;
};

static void warn(struct walk *w, const struct tg_guard_finding *f, const char *where)
{
    struct tg_request *r = w->r;
    tg_log_warn(
        r->request_id,
        "guardrail \"%s\" (%s, %s) matched %s of a request by key %s user \"%s\" at level %s",
        f->name, tg_guard_category_name(f->category), tg_guard_severity_name(f->severity), where,
        r->identity.key_prefix != NULL ? r->identity.key_prefix : "-",
        r->identity.user_id != NULL ? r->identity.user_id : "-", tg_guard_level_name(w->level));
}

static int on_text(void *ctx, const struct tg_guard_text *t)
{
    struct walk *w = ctx;
    const struct tg_guard_rules *rules = w->r->config->guard;
    struct tg_guard_finding found[MAX_FINDINGS];
    size_t n = 0;
    int rc = tg_guard_scan(rules, w->level, t->text, t->len, found, MAX_FINDINGS, &n);
    if (rc == TG_ERROR) {
        w->failed = true;
        return TG_ERROR;
    }
    bool mask = false;
    size_t shown = n < MAX_FINDINGS ? n : MAX_FINDINGS;
    for (size_t i = 0; i < shown; i++) {
        tg_shm_count_guard_action(found[i].rule, (int)found[i].action);
        if (found[i].action == TG_GUARD_BLOCK) {
            w->block = found[i].name;
            w->block_category = found[i].category;
            return TG_DECLINED; /* nothing more to see */
        }
        if (found[i].action == TG_GUARD_WARN)
            warn(w, &found[i], t->where);
        mask = mask || found[i].action == TG_GUARD_MASK;
    }
    if (!mask)
        return TG_OK;
    size_t len = 0;
    char *masked = tg_guard_mask(rules, w->level, t->text, t->len, &len);
    rc = masked != NULL ? tg_guard_texts_replace(t, masked, len) : TG_ERROR;
    free(masked);
    if (rc != TG_OK) {
        w->failed = true;
        return TG_ERROR;
    }
    w->masked = true;
    return TG_OK;
}

static enum tg_guard_dialect dialect_of(const struct tg_request *r)
{
    switch (r->endpoint) {
    case TG_EP_CHAT_COMPLETIONS: return TG_GUARD_OPENAI_CHAT;
    case TG_EP_EMBEDDINGS: return TG_GUARD_OPENAI_EMBEDDINGS;
    case TG_EP_HTTP: return TG_GUARD_HTTP;
    default: return TG_GUARD_ANTHROPIC;
    }
}

static void free_text(void *text)
{
    free(text);
}

/* The masked body, written again from r->doc, becomes what is forwarded. */
static int rewrite_body(struct tg_request *r)
{
    char *text = json_dumps(r->doc, JSON_COMPACT);
    if (text == NULL || tg_arena_cleanup_add(r->arena, free_text, text) != TG_OK) {
        free(text);
        return TG_ERROR;
    }
    r->body = text;
    r->body_len = strlen(text);
    return TG_OK;
}

static void free_json(void *doc)
{
    json_decref(doc);
}

/*
 * An http route's body, parsed for its configured fields; NULL when it is not
 * JSON. One with a duplicate key is refused (*refused): the guard would see
 * one value and the backend, which gets the body verbatim, perhaps the other.
 */
static json_t *http_doc(struct tg_request *r, bool *refused)
{
    json_error_t jerr;
    json_t *doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL && json_error_code(&jerr) == json_error_duplicate_key) {
        *refused = true;
        tg_request_fail(r, 400, "invalid_request_error",
                        "request body is not valid JSON: duplicate object key", NULL);
        return NULL;
    }
    if (doc != NULL && tg_arena_cleanup_add(r->arena, free_json, doc) != TG_OK) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int tg_guardrail_check(struct tg_request *r)
{
    const struct tg_config *c = r->config;
    if (c->guard == NULL)
        return TG_OK;
    if (r->endpoint == TG_EP_HTTP && r->doc == NULL) {
        if (c->n_guard_http_paths == 0)
            return TG_OK; /* nothing configured to look at */
        bool refused = false;
        r->doc = http_doc(r, &refused);
        if (refused)
            return TG_ERROR;
        if (r->doc == NULL)
            return TG_OK; /* not JSON: no configured field to look at */
    }
    struct walk w = {.r = r, .level = tg_guard_level_for_role(c->guard, r->identity.role)};
    int rc = tg_guard_texts_each(r->doc, dialect_of(r), (const char *const *)c->guard_http_paths,
                                 c->n_guard_http_paths, on_text, &w);
    if (w.block != NULL) {
        char message[200];
        snprintf(message, sizeof(message), "request blocked by guardrail \"%s\" (%s)", w.block,
                 tg_guard_category_name(w.block_category));
        r->outcome = "blocked";
        r->guard_rule = w.block;
        tg_request_fail(r, 400, "invalid_request_error", message, "guardrail %s at level %s",
                        w.block, tg_guard_level_name(w.level));
        return TG_DECLINED;
    }
    if (rc != TG_OK || w.failed) {
        tg_request_fail(r, 500, "api_error", "the request could not be checked",
                        "guardrail scan failed (invalid UTF-8, a cap, or memory)");
        return TG_ERROR;
    }
    if (w.masked && rewrite_body(r) != TG_OK) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory masking");
        return TG_ERROR;
    }
    return TG_OK;
}
