/*
 * mcp_access.c — MCP grants, argument constraints, tool-call admission and the
 * call record (mcp_access.h). Patterns of argument constraints are POSIX extended
 * regular expressions (libc's regex.h), compiled once per request when the grants
 * are parsed; PostgreSQL checks them when a grant is stored.
 */
#include "mcp_access.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "auth.h"
#include "crypto.h"
#include "db.h"
#include "frame.h"
#include "jsafe.h"
#include "log.h"
#include "mcp_audit.h"
#include "metrics_mcp.h"
#include "request.h"
#include "shm.h"

#define MCP_MAX_GRANTS 256 /* a caller's grants: more is a misconfiguration */
#define MCP_MAX_TOOLS 64   /* globs per grant */
#define MCP_MAX_ARGS 32    /* constrained arguments per grant */

struct arg_rule {
    const char *name;
    const json_t *allowed; /* the "enum" array (borrowed from the grants' JSON), or NULL */
    regex_t *pattern;      /* or this (freed by an arena cleanup) */
};

struct grant {
    const char *server;
    const char **tools;
    size_t n_tools;
    struct arg_rule *args; /* NULL: no constraints */
    size_t n_args;
};

struct tg_mcp_grants {
    struct grant *grants;
    size_t n;
};

/* ---- globs and grants ---- */

bool tg_mcp_access_glob(const char *glob, const char *name)
{
    const char *star = NULL, *resume = NULL;
    while (*name != '\0') {
        if (*glob == '*') {
            star = glob++;
            resume = name;
        } else if (*glob == '?' || *glob == *name) {
            glob++;
            name++;
        } else if (star != NULL) {
            glob = star + 1;
            name = ++resume;
        } else {
            return false;
        }
    }
    while (*glob == '*')
        glob++;
    return *glob == '\0';
}

static bool grant_allows(const struct grant *g, const char *server, const char *tool)
{
    if (!tg_mcp_access_glob(g->server, server))
        return false;
    for (size_t i = 0; i < g->n_tools; i++)
        if (tg_mcp_access_glob(g->tools[i], tool))
            return true;
    return false;
}

bool tg_mcp_access_allows(const struct tg_mcp_grants *g, const char *server, const char *tool)
{
    if (g == NULL || server == NULL || tool == NULL)
        return false;
    for (size_t i = 0; i < g->n; i++)
        if (grant_allows(&g->grants[i], server, tool))
            return true;
    return false;
}

static bool rule_holds(const struct arg_rule *rule, const json_t *value)
{
    if (value == NULL)
        return true; /* absent: not checked */
    if (rule->allowed != NULL) {
        size_t i;
        const json_t *v;
        json_array_foreach(rule->allowed, i, v)
            if (json_equal(v, value))
                return true;
        return false;
    }
    return json_is_string(value) &&
           regexec(rule->pattern, json_string_value(value), 0, NULL, 0) == 0;
}

bool tg_mcp_access_args_ok(const struct tg_mcp_grants *g, const char *server, const char *tool,
                           const json_t *arguments)
{
    if (g == NULL || server == NULL || tool == NULL)
        return false;
    for (size_t i = 0; i < g->n; i++) {
        const struct grant *gr = &g->grants[i];
        if (!grant_allows(gr, server, tool))
            continue;
        bool held = true;
        for (size_t a = 0; held && a < gr->n_args; a++)
            held = rule_holds(&gr->args[a], json_is_object(arguments)
                                                ? json_object_get(arguments, gr->args[a].name)
                                                : NULL);
        if (held)
            return true;
    }
    return false;
}

static void release_json(void *p)
{
    json_decref(p);
}

static void release_regex(void *p)
{
    regfree(p);
}

static int parse_args(struct tg_arena *arena, json_t *args, struct grant *g)
{
    if (args == NULL || json_is_null(args))
        return TG_OK;
    if (!json_is_object(args) || json_object_size(args) > MCP_MAX_ARGS)
        return TG_ERROR;
    g->args = tg_arena_calloc(arena, json_object_size(args) * sizeof(*g->args) + 1);
    if (g->args == NULL)
        return TG_ERROR;
    const char *name;
    json_t *rule;
    json_object_foreach(args, name, rule) {
        struct arg_rule *ar = &g->args[g->n_args++];
        ar->name = name;
        json_t *allowed = json_object_get(rule, "enum");
        const char *pattern = json_string_value(json_object_get(rule, "pattern"));
        if (json_is_array(allowed)) {
            ar->allowed = allowed;
        } else if (pattern != NULL) {
            ar->pattern = tg_arena_alloc(arena, sizeof(*ar->pattern));
            if (ar->pattern == NULL || regcomp(ar->pattern, pattern, REG_EXTENDED | REG_NOSUB) != 0)
                return TG_ERROR;
            if (tg_arena_cleanup_add(arena, release_regex, ar->pattern) != TG_OK) {
                regfree(ar->pattern);
                return TG_ERROR;
            }
        } else {
            return TG_ERROR;
        }
    }
    return TG_OK;
}

int tg_mcp_access_parse(struct tg_arena *arena, const char *grants_json, struct tg_mcp_grants **out)
{
    json_t *doc = grants_json != NULL ? json_loads(grants_json, 0, NULL) : NULL;
    if (doc == NULL)
        return TG_ERROR;
    if (tg_arena_cleanup_add(arena, release_json, doc) != TG_OK) {
        json_decref(doc);
        return TG_ERROR;
    }
    size_t n = json_is_array(doc) ? json_array_size(doc) : 0;
    struct tg_mcp_grants *g = tg_arena_calloc(arena, sizeof(*g));
    if (!json_is_array(doc) || n > MCP_MAX_GRANTS || g == NULL)
        return TG_ERROR;
    g->grants = tg_arena_calloc(arena, n * sizeof(*g->grants) + 1);
    if (g->grants == NULL)
        return TG_ERROR;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(doc, i);
        json_t *tools = json_object_get(item, "tools");
        struct grant *gr = &g->grants[g->n++];
        gr->server = json_string_value(json_object_get(item, "server"));
        size_t nt = json_is_array(tools) ? json_array_size(tools) : 0;
        if (gr->server == NULL || nt == 0 || nt > MCP_MAX_TOOLS)
            return TG_ERROR;
        gr->tools = tg_arena_calloc(arena, nt * sizeof(*gr->tools));
        if (gr->tools == NULL)
            return TG_ERROR;
        for (size_t t = 0; t < nt; t++)
            if ((gr->tools[gr->n_tools++] = json_string_value(json_array_get(tools, t))) == NULL)
                return TG_ERROR;
        if (parse_args(arena, json_object_get(item, "args"), gr) != TG_OK)
            return TG_ERROR;
    }
    *out = g;
    return TG_OK;
}

/* ---- load and admit ---- */

static const char identify_sql[] =
    "SELECT status, api_key_id, key_prefix, user_id, group_id, role, denied_subject,"
    " attribution, grants::text FROM tollgate.mcp_identify($1::bytea, $2, $3, $4,"
    " $5::boolean, $6, $7, $8)";

static int database_failed(struct tg_request *r, int rc, const char *what)
{
    if (rc == TG_DECLINED) {
        tg_request_fail(r, 500, "api_error", "internal error", "%s was refused", what);
    } else {
        tg_request_fail(r, 503, "api_error", "the gateway's database is unavailable", "%s failed",
                        what);
        r->outcome = "database_unavailable";
    }
    return TG_ERROR;
}

static const char *or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

int tg_mcp_access_load(struct tg_request *r, struct tg_mcp_grants **out)
{
    if (r->credential == NULL && tg_auth_read(r) != TG_OK)
        return TG_ERROR;
    struct tg_db_who who;
    tg_auth_who(r, NULL, &who);
    char hash_hex[2 * TG_SHA256_LEN + 3] = "";
    if (who.key_hash != NULL) {
        memcpy(hash_hex, "\\x", 2);
        tg_crypto_hex(who.key_hash, TG_SHA256_LEN, hash_hex + 2);
    }
    const char *params[] = {who.key_hash != NULL ? hash_hex : NULL,
                            who.user,
                            who.group,
                            who.role,
                            who.create ? "true" : "false",
                            who.end_user,
                            who.end_group,
                            who.endpoint != NULL ? who.endpoint : "/mcp"};
    struct tg_db_rows rows;
    char sqlstate[6], message[200];
    int rc =
        tg_db_call(r, identify_sql, 8, params, false, &rows, sqlstate, message, sizeof(message));
    if (rc != TG_OK || rows.n_rows != 1 || rows.n_cols != 9)
        return database_failed(r, rc == TG_OK ? TG_DECLINED : rc, "mcp_identify");
    const char *const *c = rows.cells;
    r->identity.api_key_id = c[1] != NULL ? strtoll(c[1], NULL, 10) : 0;
    r->identity.key_prefix = or_null(c[2]);
    r->identity.user_id = c[3];
    r->identity.group_id = c[4];
    r->identity.role = c[5];
    tg_auth_note_attribution(r, c[7]);
    if (strcmp(c[0], "no_mcp_access") == 0) {
        tg_request_fail(r, 403, "permission_error", "this credential has no access to MCP tools",
                        "no MCP grant for key %s, user %s, group %s, role %s",
                        c[2] != NULL ? c[2] : "-", c[3] != NULL ? c[3] : "-",
                        c[4] != NULL ? c[4] : "-", c[5] != NULL ? c[5] : "-");
        r->outcome = "rejected";
        return TG_DECLINED;
    }
    if (strcmp(c[0], "ok") != 0)
        return tg_auth_refuse(r, c[0], c[6]);
    if (tg_mcp_access_parse(r->arena, c[8], out) != TG_OK) {
        tg_request_fail(r, 500, "api_error", "internal error", "could not parse the MCP grants");
        return TG_ERROR;
    }
    r->authenticated = true;
    return TG_OK;
}

static const char admit_sql[] =
    "SELECT status, denied_subject, denied_window, denied_limit, retry_after_s"
    " FROM tollgate.mcp_admit($1::bigint, $2, $3, $4, $5)";

int tg_mcp_access_admit(struct tg_request *r, const char *server, const char *tool)
{
    char key_id[24];
    snprintf(key_id, sizeof(key_id), "%lld", (long long)r->identity.api_key_id);
    const char *params[] = {r->identity.api_key_id > 0 ? key_id : NULL, r->identity.user_id,
                            r->identity.group_id, server, tool};
    struct tg_db_rows rows;
    char sqlstate[6], message[200];
    int rc = tg_db_call(r, admit_sql, 5, params, false, &rows, sqlstate, message, sizeof(message));
    if (rc != TG_OK || rows.n_rows != 1 || rows.n_cols != 5)
        return database_failed(r, rc == TG_OK ? TG_DECLINED : rc, "mcp_admit");
    const char *const *c = rows.cells;
    if (strcmp(c[0], "ok") == 0)
        return TG_OK;
    bool bucket = strcmp(c[0], "rate_limited") == 0;
    if (c[4] != NULL)
        tg_request_add_header(r, "retry-after", c[4]);
    char text[400];
    snprintf(text, sizeof(text), "%s for tool \"%s\" of server \"%s\": %s %s of %s calls",
             bucket ? "rate limit reached" : "tool call quota exceeded", tool, server,
             c[1] != NULL ? c[1] : "?", bucket ? "bucket" : (c[2] != NULL ? c[2] : "?"),
             c[3] != NULL ? c[3] : "?");
    tg_request_fail(r, 429, "rate_limit_error", text, NULL);
    r->outcome = "rate_limited";
    return TG_DECLINED;
}

/* ---- record ---- */

_Static_assert(TG_MCP_ACCESS_ROW_MAX <= TG_FRAME_PAYLOAD_MAX, "a row is one audit-file record");

/* value (borrowed), or the marker saying how big it was when over cap: a new reference */
static json_t *capped(const json_t *value, size_t cap, bool force_marker)
{
    if (value == NULL)
        return json_null();
    size_t bytes = json_dumpb(value, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (bytes == 0 || bytes > cap || force_marker)
        return json_pack("{s:b, s:I}", "truncated", 1, "bytes", (json_int_t)bytes);
    return json_incref((json_t *)value);
}

/* adds the payloads to row o (or their markers) */
static int add_payloads(json_t *o, const struct tg_mcp_call *call, bool force_marker)
{
    if (json_object_set_new(o, "arguments",
                            capped(call->arguments, call->payload_cap, force_marker)) != 0 ||
        json_object_set_new(o, "result", capped(call->result, call->payload_cap, force_marker)) !=
            0)
        return TG_ERROR;
    return TG_OK;
}

char *tg_mcp_access_encode(const struct tg_mcp_audit_who *who, const struct tg_mcp_call *call)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:s, s:I, s:I, s:I}", "call_id",
        who->call_id, "request_id", who->request_id, "ts", who->ts, "key_prefix", who->key_prefix,
        "user_id", who->user_id, "group_id", who->group_id, "role", who->role, "server",
        call->server != NULL ? call->server : "", "tool", call->tool != NULL ? call->tool : "",
        "code", call->code != NULL ? call->code : "error", "duration_us",
        (json_int_t)call->duration_us, "bytes_in", (json_int_t)call->bytes_in, "bytes_out",
        (json_int_t)call->bytes_out);
    if (o == NULL)
        return NULL;
    if (who->api_key_id > 0)
        json_object_set_new(o, "api_key_id", json_integer(who->api_key_id));
    if (call->jsonrpc_error != 0)
        json_object_set_new(o, "jsonrpc_error", json_integer(call->jsonrpc_error));
    if (call->payloads && add_payloads(o, call, false) != TG_OK) {
        json_decref(o);
        return NULL;
    }
    char *text = tg_jsafe_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (text != NULL && call->payloads && strlen(text) > TG_MCP_ACCESS_ROW_MAX) {
        /* long names with two payloads at the cap: the row must still fit one record */
        free(text);
        text = add_payloads(o, call, true) == TG_OK
                   ? tg_jsafe_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)
                   : NULL;
    }
    json_decref(o);
    return text;
}

static void utc_now(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}

void tg_mcp_access_record(struct tg_request *r, const struct tg_mcp_call *call)
{
    char call_id[37], ts[40];
    tg_crypto_uuid7(call_id);
    utc_now(ts, sizeof(ts));
    struct tg_mcp_audit_who who = {call_id,
                                   r->request_id,
                                   ts,
                                   r->identity.api_key_id,
                                   r->identity.key_prefix,
                                   r->identity.user_id,
                                   r->identity.group_id,
                                   r->identity.role};
    char *row = tg_mcp_access_encode(&who, call);
    if (row == NULL || tg_mcp_audit_append(row) != TG_OK)
        tg_log_error(
            r->request_id, "could not record the audit row of tool \"%s\" of server \"%s\": %s",
            call->tool != NULL ? call->tool : "?", call->server != NULL ? call->server : "?",
            row == NULL ? "out of memory" : "the audit file refused it");
    free(row);
    struct tg_shm *shm = tg_shm_get();
    if (shm != NULL)
        tg_metrics_mcp_add(&shm->mcp, call->server, call->tool, call->code, call->duration_us);
}
