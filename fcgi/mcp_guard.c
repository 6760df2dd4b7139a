/*
 * mcp_guard.c — the guardrails on MCP tool calls' arguments and results (see
 * mcp_guard.h): a walk over a JSON value's strings through guard.c's rules,
 * deciding each finding's action here (an injection rule on a result at most
 * guardrails.mcp.result_injection) and masking exactly the spans decided, and
 * the request's side: metrics, warn lines, the call's outcome, the refusal or
 * the withheld result.
 */
#include "mcp_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jsafe.h"
#include "log.h"
#include "mcp_rpc.h"
#include "request.h"
#include "shm.h"

#define LOCAL_FINDINGS 32
#define MAX_WARN_LINES 16 /* warn lines per message: the metric counts them all */

struct walk {
    const struct tg_mcp_guard_policy *p;
    struct tg_mcp_guard_verdict *v;
    size_t strings, bytes;
};

static enum tg_guard_action decide(const struct tg_mcp_guard_policy *p,
                                   const struct tg_guard_finding *f)
{
    enum tg_guard_action a = f->action;
    if (f->category == TG_GUARD_INJECTION && a > p->injection_max)
        a = p->injection_max;
    if (a == TG_GUARD_BLOCK && p->block_masks)
        a = TG_GUARD_MASK;
    return a;
}

static void record(struct tg_mcp_guard_verdict *v, enum tg_guard_action a,
                   const struct tg_guard_finding *f)
{
    if (v->rule == NULL || a > v->action) {
        v->rule = f->name;
        v->action = a;
        v->category = f->category;
    }
}

/*
 * The findings of one text: found[0..*n) (local, or malloc'd into *owned when
 * there are more than LOCAL_FINDINGS). TG_OK or TG_ERROR.
 */
static int scan(const struct tg_mcp_guard_policy *p, const char *text, size_t len,
                struct tg_guard_finding *local, struct tg_guard_finding **found,
                struct tg_guard_finding **owned, size_t *n)
{
    *found = local;
    *owned = NULL;
    int rc = tg_guard_scan(p->rules, p->level, text, len, local, LOCAL_FINDINGS, n);
    if (rc != TG_DECLINED)
        return rc;
    if (*n > TG_GUARD_MAX_FINDINGS)
        return TG_ERROR;
    size_t want = *n;
    *owned = malloc(want * sizeof(**owned));
    if (*owned == NULL)
        return TG_ERROR;
    *found = *owned;
    rc = tg_guard_scan(p->rules, p->level, text, len, *owned, want, n);
    return rc == TG_OK && *n == want ? TG_OK : TG_ERROR;
}

static int check_string(struct walk *w, json_t *s)
{
    const struct tg_mcp_guard_policy *p = w->p;
    const char *text = json_string_value(s);
    size_t len = json_string_length(s);
    if (++w->strings > TG_MCP_GUARD_MAX_STRINGS || len > TG_MCP_GUARD_MAX_BYTES - w->bytes)
        return TG_ERROR;
    w->bytes += len;
    if (len == 0)
        return TG_OK;
    struct tg_guard_finding local[LOCAL_FINDINGS], *found, *owned;
    size_t n = 0;
    int rc = scan(p, text, len, local, &found, &owned, &n);
    size_t masks = 0;
    for (size_t i = 0; rc == TG_OK && i < n; i++) {
        struct tg_guard_finding f = found[i];
        f.action = decide(p, &found[i]);
        if (f.limit) {
            /* a blocking rule that could not finish: it blocks; where it would mask, nothing
             * can be masked (unchecked); where it only warns, it is let be */
            if (f.action == TG_GUARD_BLOCK) {
                record(w->v, f.action, &f);
                rc = TG_DECLINED;
            } else if (f.action == TG_GUARD_MASK) {
                rc = TG_ERROR;
            }
            continue;
        }
        if (p->on_finding != NULL)
            p->on_finding(p->ctx, &f);
        record(w->v, f.action, &f);
        if (f.action == TG_GUARD_BLOCK)
            rc = TG_DECLINED; /* nothing more to see */
        else if (f.action == TG_GUARD_MASK)
            found[masks++] = found[i];
    }
    if (rc == TG_OK && masks > 0) {
        size_t masked_len = 0;
        char *masked = tg_guard_mask_findings(p->rules, text, len, found, masks, &masked_len);
        if (masked == NULL || json_string_setn(s, masked, masked_len) != 0)
            rc = TG_ERROR;
        else
            w->v->masked++;
        free(masked);
    }
    free(owned);
    return rc;
}

static int walk(struct walk *w, json_t *value, int depth)
{
    if (depth > TG_MCP_GUARD_MAX_DEPTH)
        return TG_ERROR;
    int rc = TG_OK;
    if (json_is_string(value))
        return check_string(w, value);
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach(value, key, member) {
            if ((rc = walk(w, member, depth + 1)) != TG_OK)
                return rc;
        }
    } else if (json_is_array(value)) {
        size_t i;
        json_t *member;
        json_array_foreach(value, i, member) {
            if ((rc = walk(w, member, depth + 1)) != TG_OK)
                return rc;
        }
    }
    return TG_OK;
}

int tg_mcp_guard_value(const struct tg_mcp_guard_policy *p, json_t *value,
                       struct tg_mcp_guard_verdict *v)
{
    *v = (struct tg_mcp_guard_verdict){0};
    struct walk w = {.p = p, .v = v};
    return value != NULL ? walk(&w, value, 0) : TG_OK;
}

/* A string member of holder, checked when it is one. */
static int check_member(struct walk *w, json_t *holder, const char *key)
{
    json_t *s = json_object_get(holder, key);
    return json_is_string(s) ? check_string(w, s) : TG_OK;
}

int tg_mcp_guard_response(const struct tg_mcp_guard_policy *p, json_t *msg,
                          struct tg_mcp_guard_verdict *v)
{
    *v = (struct tg_mcp_guard_verdict){0};
    struct walk w = {.p = p, .v = v};
    json_t *result = json_object_get(msg, "result");
    json_t *content = json_object_get(result, "content");
    size_t i;
    json_t *item;
    int rc = TG_OK;
    json_array_foreach(content, i, item) {
        const char *type = json_string_value(json_object_get(item, "type"));
        if (type != NULL && strcmp(type, "text") == 0)
            rc = check_member(&w, item, "text");
        else if (type != NULL && strcmp(type, "resource") == 0)
            rc = check_member(&w, json_object_get(item, "resource"), "text");
        if (rc != TG_OK)
            return rc;
    }
    json_t *structured = json_object_get(result, "structuredContent");
    if (structured != NULL && (rc = walk(&w, structured, 1)) != TG_OK)
        return rc;
    return check_member(&w, json_object_get(msg, "error"), "message");
}

int tg_mcp_guard_withhold(json_t *msg, const char *why)
{
    json_t *result =
        json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", why, "isError", 1);
    if (result == NULL)
        return TG_ERROR;
    json_object_del(msg, "error");
    return json_object_set_new(msg, "result", result) == 0 ? TG_OK : TG_ERROR;
}

/* ---- the request's side ---------------------------------------------------------------- */

struct call {
    struct tg_request *r;
    enum tg_guard_level level;
    const char *where; /* "arguments", "result", "message" */
    int warned;
};

static void on_finding(void *ctx, const struct tg_guard_finding *f)
{
    struct call *k = ctx;
    struct tg_request *r = k->r;
    tg_shm_count_guard_action(f->rule, (int)f->action);
    if (f->action != TG_GUARD_WARN || k->warned++ >= MAX_WARN_LINES)
        return;
    tg_log_warn(r->request_id,
                "guardrail \"%s\" (%s, %s) matched the %s of MCP tool \"%s\" of server \"%s\" "
                "called by key %s user \"%s\" at level %s",
                f->name, tg_guard_category_name(f->category), tg_guard_severity_name(f->severity),
                k->where, r->mcp_guard.tool != NULL ? r->mcp_guard.tool : "-",
                r->mcp_guard.server != NULL ? r->mcp_guard.server : "-",
                r->identity.key_prefix != NULL ? r->identity.key_prefix : "-",
                r->identity.user_id != NULL ? r->identity.user_id : "-",
                tg_guard_level_name(k->level));
}

static int rank(const char *action)
{
    for (int a = TG_GUARD_BLOCK; a >= TG_GUARD_WARN; a--)
        if (action != NULL && strcmp(action, tg_guard_action_name(a)) == 0)
            return a;
    return -1;
}

/* The call's outcome keeps its strongest action (the first of equals). */
static void note(struct tg_request *r, const char *rule, enum tg_guard_action action,
                 const char *where)
{
    if (rule == NULL || (int)action <= rank(r->mcp_guard.action))
        return;
    r->mcp_guard.rule = rule;
    r->mcp_guard.action = tg_guard_action_name(action);
    r->mcp_guard.where = where;
}

int tg_mcp_guard_arguments(struct tg_request *r, const char *server, const char *tool,
                           json_t *arguments, int *code, const char **message)
{
    const struct tg_config *c = r->config;
    r->mcp_guard = (struct tg_mcp_guard_note){.server = server, .tool = tool};
    if (c->guard == NULL || !c->guard_mcp_arguments || arguments == NULL)
        return TG_OK;
    struct call k = {r, tg_guard_level_for_role(c->guard, r->identity.role), "arguments", 0};
    struct tg_mcp_guard_policy p = {c->guard, k.level, TG_GUARD_BLOCK, false, on_finding, &k};
    struct tg_mcp_guard_verdict v;
    int rc = tg_mcp_guard_value(&p, arguments, &v);
    note(r, v.rule, v.action, "arguments");
    if (rc == TG_OK)
        return TG_OK;
    if (rc == TG_DECLINED) {
        *code = TG_MCP_SERVER_ERROR;
        *message = tg_arena_printf(r->arena, "tool call blocked by guardrail \"%s\" (%s)", v.rule,
                                   tg_guard_category_name(v.category));
    } else {
        note(r, "unchecked", TG_GUARD_BLOCK, "arguments");
        *code = TG_MCP_INTERNAL_ERROR;
        *message = "the tool call's arguments could not be checked";
    }
    tg_log_warn(r->request_id,
                "MCP tool \"%s\" of server \"%s\" not called: %s (guardrail %s at level %s)", tool,
                server, rc == TG_DECLINED ? "blocked" : "arguments could not be checked",
                r->mcp_guard.rule, tg_guard_level_name(k.level));
    if (*message == NULL)
        *message = "tool call blocked by a guardrail";
    return TG_DECLINED;
}

/* msg written again into r's arena; NULL when memory ran out. */
static const char *rewrite(struct tg_request *r, json_t *msg, size_t *len)
{
    char *text = tg_jsafe_dumps(msg, JSON_COMPACT);
    char *kept = text != NULL ? tg_arena_strdup(r->arena, text) : NULL;
    free(text);
    if (kept != NULL)
        *len = strlen(kept);
    return kept;
}

const char *tg_mcp_guard_relay(struct tg_request *r, json_t *msg, bool final, const char *data,
                               size_t *len)
{
    const struct tg_config *c = r->config;
    if (c->guard == NULL || !c->guard_mcp_results)
        return data;
    struct call k = {r, tg_guard_level_for_role(c->guard, r->identity.role),
                     final ? "result" : "message", 0};
    struct tg_mcp_guard_policy p = {
        c->guard, k.level,    (enum tg_guard_action)c->guard_mcp_result_injection,
        !final,   on_finding, &k};
    struct tg_mcp_guard_verdict v;
    int rc = final ? tg_mcp_guard_response(&p, msg, &v)
                   : tg_mcp_guard_value(&p, json_object_get(msg, "params"), &v);
    note(r, v.rule, v.action, "result");
    if (rc == TG_OK)
        return v.masked > 0 ? rewrite(r, msg, len) : data;
    if (rc == TG_ERROR)
        note(r, "unchecked", TG_GUARD_BLOCK, "result");
    const char *tool = r->mcp_guard.tool != NULL ? r->mcp_guard.tool : "-";
    const char *server = r->mcp_guard.server != NULL ? r->mcp_guard.server : "-";
    if (!final) {
        /* only an unchecked message gets here (a block masks): it is not relayed */
        tg_log_warn(r->request_id,
                    "a message of MCP server \"%s\" during tool \"%s\" was dropped: it could not "
                    "be checked",
                    server, tool);
        *len = 0;
        return data;
    }
    char why[200];
    if (rc == TG_DECLINED)
        snprintf(why, sizeof(why), "the tool's result was withheld by guardrail \"%s\" (%s)",
                 v.rule, tg_guard_category_name(v.category));
    else
        snprintf(why, sizeof(why), "the tool's result was withheld: it could not be checked");
    tg_log_warn(r->request_id,
                "the result of MCP tool \"%s\" of server \"%s\" was withheld (guardrail %s at "
                "level %s)",
                tool, server, r->mcp_guard.rule, tg_guard_level_name(k.level));
    if (tg_mcp_guard_withhold(msg, why) != TG_OK)
        return NULL;
    return rewrite(r, msg, len);
}
