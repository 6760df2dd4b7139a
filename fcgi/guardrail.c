/*
 * guardrail.c — the guard step of the pipeline (the local rules, then the
 * remote checks — webhook, moderation — over the texts as masked), and the
 * guard of replies.
 */
#include "guardrail.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "guard_mask.h"
#include "guard_reply.h"
#include "guard_texts.h"
#include "guard_webhook.h"
#include "jsafe.h"
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

/* The local rules: TG_OK (w->masked says whether a text changed), else r->error is set. */
static int local_rules(struct tg_request *r, enum tg_guard_dialect dialect, bool *rewrite)
{
    const struct tg_config *c = r->config;
    struct walk w = {.r = r, .level = tg_guard_level_for_role(c->guard, r->identity.role)};
    int rc = tg_guard_texts_each(r->doc, dialect, (const char *const *)c->guard_http_paths,
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
    *rewrite = w.masked;
    return TG_OK;
}

/* The texts the remote checks are asked about, and their places (to replace them). */
struct collected {
    struct tg_request *r;
    struct tg_guard_text *places; /* NULL: only count */
    struct tg_guard_webhook_text *texts;
    size_t n;
    bool failed;
};

static int collect(void *ctx, const struct tg_guard_text *t)
{
    struct collected *k = ctx;
    if (k->places != NULL) {
        k->places[k->n] = *t;
        k->places[k->n].where = NULL; /* the walk's, valid during the callback only */
        k->texts[k->n].where = tg_arena_strdup(k->r->arena, t->where);
        k->texts[k->n].text = t->text;
        k->texts[k->n].len = t->len;
        k->failed = k->failed || k->texts[k->n].where == NULL;
    }
    k->n++;
    return TG_OK;
}

static int collect_texts(struct tg_request *r, enum tg_guard_dialect dialect, struct collected *k)
{
    const struct tg_config *c = r->config;
    const char *const *paths = (const char *const *)c->guard_http_paths;
    *k = (struct collected){.r = r};
    if (tg_guard_texts_each(r->doc, dialect, paths, c->n_guard_http_paths, collect, k) != TG_OK)
        return TG_ERROR;
    size_t n = k->n;
    k->n = 0;
    k->places = tg_arena_calloc(r->arena, (n + 1) * sizeof(*k->places));
    k->texts = tg_arena_calloc(r->arena, (n + 1) * sizeof(*k->texts));
    if (k->places == NULL || k->texts == NULL)
        return TG_ERROR;
    int rc = tg_guard_texts_each(r->doc, dialect, paths, c->n_guard_http_paths, collect, k);
    return rc == TG_OK && !k->failed && k->n == n ? TG_OK : TG_ERROR;
}

static const char *hook_name(const struct tg_guard_hook *hook)
{
    return hook->kind == TG_GUARD_HOOK_MODERATION ? "moderation" : "webhook";
}

/* A check that got no answer: refused (503) unless the hook fails open. */
static int hook_unanswered(struct tg_request *r, const struct tg_guard_hook *hook, const char *why)
{
    if (hook->fail_open) {
        tg_log_warn(r->request_id,
                    "guardrail \"%s\" could not be asked, the request passes (on_error open): %s",
                    hook_name(hook), why);
        return TG_OK;
    }
    tg_request_fail(r, 503, "api_error", "the guardrail service is unavailable",
                    "guardrail \"%s\" could not be asked: %s", hook_name(hook), why);
    return TG_ERROR;
}

/* One remote check over k's texts: TG_OK (texts may have been replaced), else r->error. */
static int ask_hook(struct tg_request *r, const struct tg_guard_hook *hook, struct collected *k,
                    bool *rewrite)
{
    struct tg_guard_webhook_verdict v;
    if (tg_guard_webhook_ask(r, hook, k->texts, k->n, &v) != TG_OK)
        return hook_unanswered(r, hook, v.error);
    if (v.action == TG_GUARD_WEBHOOK_DENY) {
        char message[256];
        if (hook->kind == TG_GUARD_HOOK_MODERATION)
            snprintf(message, sizeof(message), "request blocked by guardrail \"moderation\" (%s)",
                     v.reason);
        else
            snprintf(message, sizeof(message), "request blocked by guardrail \"webhook\": %s",
                     v.reason);
        tg_shm_count_guard_hook((int)hook->kind, TG_GUARD_BLOCK);
        r->outcome = "blocked";
        r->guard_rule = hook_name(hook);
        tg_request_fail(r, 400, "invalid_request_error", message, "guardrail %s", hook_name(hook));
        return TG_DECLINED;
    }
    if (v.action != TG_GUARD_WEBHOOK_REPLACE)
        return TG_OK;
    for (size_t i = 0; i < k->n; i++) {
        if (tg_guard_texts_replace(&k->places[i], v.texts[i], v.lens[i]) != TG_OK) {
            tg_request_fail(r, 500, "api_error", "the request could not be checked",
                            "guardrail \"%s\": a replacement could not be made", hook_name(hook));
            return TG_ERROR;
        }
        k->texts[i].text = v.texts[i]; /* what a later check is asked about */
        k->texts[i].len = v.lens[i];
    }
    tg_shm_count_guard_hook((int)hook->kind, TG_GUARD_MASK);
    *rewrite = true;
    return TG_OK;
}

/* The webhook, then moderation over the texts as they will be sent. */
static int remote_checks(struct tg_request *r, enum tg_guard_dialect dialect, bool *rewrite)
{
    const struct tg_config *c = r->config;
    struct collected k;
    if (collect_texts(r, dialect, &k) != TG_OK) {
        tg_request_fail(r, 500, "api_error", "the request could not be checked",
                        "guardrail texts could not be collected (a cap, or memory)");
        return TG_ERROR;
    }
    if (k.n == 0)
        return TG_OK; /* nothing to ask about */
    const struct tg_guard_hook *hooks[] = {&c->guard_webhook, &c->guard_moderation};
    for (size_t i = 0; i < TG_ARRAY_LEN(hooks); i++) {
        if (hooks[i]->url == NULL)
            continue;
        int rc = ask_hook(r, hooks[i], &k, rewrite);
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

int tg_guardrail_check(struct tg_request *r)
{
    const struct tg_config *c = r->config;
    bool remote = c->guard_webhook.url != NULL || c->guard_moderation.url != NULL;
    if (c->guard == NULL && !remote)
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
    enum tg_guard_dialect dialect = dialect_of(r);
    bool rewrite = false;
    int rc = c->guard != NULL ? local_rules(r, dialect, &rewrite) : TG_OK;
    if (rc == TG_OK && remote)
        rc = remote_checks(r, dialect, &rewrite);
    if (rc != TG_OK)
        return rc;
    if (rewrite && tg_request_body_from_doc(r) != TG_OK) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory masking");
        return TG_ERROR;
    }
    return TG_OK;
}

/* ---- replies ---- */

struct reply_guard {
    struct tg_request *r;
    enum tg_guard_level level;
    tg_guard_stream_emit_fn emit;
    void *ctx;
};

/* A finding in a reply: counted as what was done (a block rule masks), a warn logged. */
static void on_reply_finding(void *ctx, const struct tg_guard_finding *f)
{
    struct reply_guard *g = ctx;
    struct tg_request *r = g->r;
    bool warned = f->action == TG_GUARD_WARN;
    tg_shm_count_guard_action(f->rule, warned ? TG_GUARD_WARN : TG_GUARD_MASK);
    if (warned)
        tg_log_warn(
            r->request_id,
            "guardrail \"%s\" (%s, %s) matched the reply to key %s user \"%s\" at level %s",
            f->name, tg_guard_category_name(f->category), tg_guard_severity_name(f->severity),
            r->identity.key_prefix != NULL ? r->identity.key_prefix : "-",
            r->identity.user_id != NULL ? r->identity.user_id : "-", tg_guard_level_name(g->level));
}

bool tg_guardrail_replies(const struct tg_request *r)
{
    return r->config->guard != NULL && r->config->guard_responses &&
           (r->endpoint == TG_EP_MESSAGES || r->endpoint == TG_EP_CHAT_COMPLETIONS);
}

int tg_guardrail_reply(struct tg_request *r, char **reply, size_t *len)
{
    struct reply_guard g = {r, tg_guard_level_for_role(r->config->guard, r->identity.role), NULL,
                            NULL};
    char *masked = NULL;
    size_t masked_len = 0;
    int rc = tg_guard_reply_mask(
        r->config->guard, g.level,
        r->dialect == TG_DIALECT_OPENAI ? TG_GUARD_STREAM_OPENAI : TG_GUARD_STREAM_ANTHROPIC,
        *reply != NULL ? *reply : "", *len, on_reply_finding, &g, &masked, &masked_len);
    if (rc == TG_DECLINED)
        return TG_OK;
    if (rc != TG_OK || tg_arena_cleanup_add(r->arena, free_text, masked) != TG_OK) {
        free(masked);
        r->outcome = "upstream_error";
        tg_request_fail(r, 502, "api_error", "the provider's reply could not be checked",
                        "reply guardrail failed (not JSON, invalid UTF-8, a cap, or memory)");
        return TG_ERROR;
    }
    *reply = masked;
    *len = masked_len;
    return TG_OK;
}

static int forward_emit(void *ctx, const char *event, const char *data, size_t len, json_t *doc)
{
    struct reply_guard *g = ctx;
    return g->emit(g->ctx, event, data, len, doc);
}

static void free_stream(void *s)
{
    tg_guard_stream_free(s);
}

struct tg_guard_stream *tg_guardrail_stream(struct tg_request *r, bool pivot,
                                            tg_guard_stream_emit_fn emit, void *ctx)
{
    struct reply_guard *g = tg_arena_calloc(r->arena, sizeof(*g));
    if (g == NULL)
        return NULL;
    *g = (struct reply_guard){r, tg_guard_level_for_role(r->config->guard, r->identity.role), emit,
                              ctx};
    enum tg_guard_stream_dialect dialect = !pivot && r->dialect == TG_DIALECT_OPENAI
                                               ? TG_GUARD_STREAM_OPENAI
                                               : TG_GUARD_STREAM_ANTHROPIC;
    struct tg_guard_stream *s = tg_guard_stream_new(r->config->guard, g->level, dialect,
                                                    r->config->guard_response_window_bytes,
                                                    forward_emit, on_reply_finding, g);
    if (s != NULL && tg_arena_cleanup_add(r->arena, free_stream, s) != TG_OK) {
        tg_guard_stream_free(s);
        return NULL;
    }
    return s;
}
