/*
 * admin_mcp.c — /admin/mcp/grants and /admin/mcp/limits (admin_mcp.h): the
 * checks of each body field, then one parameterised call of a SQL function of
 * sql/017_mcp.sql. No SQL text is ever built from request data.
 */
#include "admin_mcp.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_body.h"
#include "admin_sql.h"
#include "request.h"

#define GLOB_MAX 128 /* mcp_grant_set's longest server or tool glob */

// clang-format off
#define TOOLS_ARRAY(param)                                                                     \
    "ARRAY(SELECT e FROM jsonb_array_elements_text(" param "::jsonb) WITH ORDINALITY"          \
    " AS t(e, i) ORDER BY i)"
// clang-format on

/*
 * Runs a statement answering one row of one column into *cell. A refusal by the
 * database is the client's 400 with its own message, naming unknown_field for
 * no_data_found (an unknown key prefix) and bad_field for the rest.
 */
static int run(struct tg_request *r, const char *sql, int n, const char *const *params,
               const char *unknown_field, const char *bad_field, const char **cell)
{
    char sqlstate[6], message[200];
    int rc = tg_admin_sql_cell(r, sql, n, params, cell, sqlstate, message, sizeof(message));
    if (rc != TG_DECLINED)
        return rc;
    if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
        strcmp(sqlstate, "P0001") == 0 || strcmp(sqlstate, "P0002") == 0)
        return tg_admin_body_bad_field(
            r, strcmp(sqlstate, "P0002") == 0 ? unknown_field : bad_field, message);
    tg_request_fail(r, 500, "api_error", "internal error",
                    "admin statement failed: SQLSTATE %s: %s", sqlstate, message);
    return TG_ERROR;
}

/* GET of a list view as {"<name>": [rows]}. */
static int list(struct tg_request *r, const char *name, const char *sql)
{
    const char *rows;
    if (run(r, sql, 0, NULL, "body", "body", &rows) != TG_OK)
        return TG_ERROR;
    const char *doc = tg_arena_printf(r->arena, "{\"%s\":%s}", name, rows != NULL ? rows : "[]");
    return doc != NULL ? tg_admin_body_respond_json(r, 200, doc) : TG_ERROR;
}

/* ---- grants ----------------------------------------------------------------------- */

/* subject_kind and subject: a group or role id, or a key prefix. */
static int grant_subject(struct tg_request *r, json_t *body, const char **kind,
                         const char **subject)
{
    static const char *const kinds[] = {"group", "role", "key", NULL};
    if (tg_admin_body_choice(r, body, "subject_kind", kinds,
                             "must be \"group\", \"role\" or \"key\"", kind) != TG_OK)
        return TG_ERROR;
    if (strcmp(*kind, "key") != 0)
        return tg_admin_body_id(r, body, "subject", true, subject);
    if (tg_admin_body_string(r, body, "subject", true, subject) != TG_OK)
        return TG_ERROR;
    return (*subject)[0] != '\0' && strlen(*subject) <= GLOB_MAX
               ? TG_OK
               : tg_admin_body_bad_field(r, "subject", "must be a key prefix");
}

/* server: a name or glob of 1 to GLOB_MAX characters. */
static int grant_server(struct tg_request *r, json_t *body, const char **server)
{
    if (tg_admin_body_string(r, body, "server", true, server) != TG_OK)
        return TG_ERROR;
    return (*server)[0] != '\0' && strlen(*server) <= GLOB_MAX
               ? TG_OK
               : tg_admin_body_bad_field(r, "server",
                                         "must be a name or glob of 1 to 128 characters");
}

/* tools: a non-empty array of names or globs of 1 to GLOB_MAX characters (JSON text). */
static int grant_tools(struct tg_request *r, json_t *body, bool required, const char **tools)
{
    json_t *value = json_object_get(body, "tools");
    *tools = NULL;
    if (value == NULL || json_is_null(value))
        return required ? tg_admin_body_bad_field(r, "tools", "is required") : TG_OK;
    bool ok = json_is_array(value) && json_array_size(value) > 0;
    size_t i;
    json_t *entry;
    json_array_foreach(value, i, entry) {
        ok = ok && json_is_string(entry) && json_string_length(entry) > 0 &&
             json_string_length(entry) <= GLOB_MAX;
    }
    if (!ok)
        return tg_admin_body_bad_field(
            r, "tools", "must be a non-empty array of names or globs of 1 to 128 characters");
    *tools = tg_admin_body_dump(r, value);
    return *tools != NULL ? TG_OK : TG_ERROR;
}

/* args: null, or {"ARG": {"enum": [values]}} / {"ARG": {"pattern": "regex"}} (JSON text). */
static int grant_args(struct tg_request *r, json_t *body, const char **args)
{
    json_t *value = json_object_get(body, "args");
    *args = NULL;
    if (value == NULL || json_is_null(value))
        return TG_OK;
    if (!json_is_object(value))
        return tg_admin_body_bad_field(r, "args", "must be an object or null");
    const char *name;
    json_t *rule;
    json_object_foreach(value, name, rule) {
        json_t *choices = json_object_get(rule, "enum");
        json_t *pattern = json_object_get(rule, "pattern");
        bool ok =
            json_is_object(rule) && json_object_size(rule) == 1 &&
            ((json_is_array(choices) && json_array_size(choices) > 0) || json_is_string(pattern));
        if (!ok) {
            char problem[200];
            snprintf(problem, sizeof(problem),
                     "argument \"%.64s\": expected {\"enum\": [values]} or "
                     "{\"pattern\": \"regex\"}",
                     name);
            return tg_admin_body_bad_field(r, "args", problem);
        }
    }
    *args = tg_admin_body_dump(r, value);
    return *args != NULL ? TG_OK : TG_ERROR;
}

static int put_grant(struct tg_request *r, const char *actor, json_t *body)
{
    static const char *const fields[] = {"subject_kind", "subject", "server",
                                         "tools",        "args",    NULL};
    const char *kind, *subject, *server, *tools, *args;
    if (tg_admin_body_check_fields(r, body, fields) != TG_OK ||
        grant_subject(r, body, &kind, &subject) || grant_server(r, body, &server) ||
        grant_tools(r, body, true, &tools) || grant_args(r, body, &args))
        return TG_ERROR;
    const char *params[] = {kind, subject, server, tools, args, actor};
    const char *row;
    /* the regex of a pattern is PostgreSQL's to judge; an unknown key is the subject's fault */
    if (run(r,
            "SELECT tollgate.mcp_grant_set($1, $2, $3, " TOOLS_ARRAY("$4") ", $5::jsonb,"
                                                                           " $6)::text",
            6, params, "subject", "args", &row) != TG_OK)
        return TG_ERROR;
    return tg_admin_body_respond_json(r, 200, row != NULL ? row : "null");
}

static int delete_grant(struct tg_request *r, const char *actor, json_t *body)
{
    static const char *const fields[] = {"subject_kind", "subject", "server", "tools", NULL};
    const char *kind, *subject, *server, *tools;
    if (tg_admin_body_check_fields(r, body, fields) != TG_OK ||
        grant_subject(r, body, &kind, &subject) || grant_server(r, body, &server) ||
        grant_tools(r, body, false, &tools))
        return TG_ERROR;
    const char *params[] = {kind, subject, server, tools, actor};
    const char *revoked;
    if (run(r,
            "SELECT tollgate.mcp_grant_revoke($1, $2, $3, CASE WHEN $4::jsonb IS NULL THEN NULL"
            " ELSE " TOOLS_ARRAY("$4") " END, $5)::text",
            5, params, "subject", "subject", &revoked) != TG_OK)
        return TG_ERROR;
    if (revoked == NULL || strcmp(revoked, "0") == 0) {
        char message[400];
        snprintf(message, sizeof(message), "no MCP grant of %s \"%.128s\" on server \"%.128s\"",
                 kind, subject, server);
        tg_request_fail(r, 404, "not_found_error", message, NULL);
        return TG_ERROR;
    }
    const char *doc = tg_arena_printf(r->arena, "{\"revoked\":%s}", revoked);
    return doc != NULL ? tg_admin_body_respond_json(r, 200, doc) : TG_ERROR;
}

/* ---- limits ----------------------------------------------------------------------- */

static int put_limit(struct tg_request *r, const char *actor, json_t *body)
{
    static const char *const fields[] = {
        "per",        "subject",         "window",           "limit",
        "max_tokens", "tokens_per_fill", "fill_interval_ms", NULL};
    static const char *const pers[] = {"key", "user", "group", "server", "tool", NULL};
    static const char *const windows[] = {"minute", "hour", "day", "month", "total", NULL};
    const char *per, *subject, *window = NULL;
    int64_t limit = -1, max_tokens = -1, per_fill = -1, fill_ms = -1;
    if (tg_admin_body_check_fields(r, body, fields) != TG_OK ||
        tg_admin_body_choice(r, body, "per", pers,
                             "must be \"key\", \"user\", \"group\", \"server\" or \"tool\"",
                             &per) ||
        tg_admin_body_string(r, body, "subject", false, &subject) ||
        tg_admin_body_integer(r, body, "limit", false, 0, INT64_MAX, &limit) ||
        tg_admin_body_integer(r, body, "max_tokens", false, 1, INT64_MAX, &max_tokens) ||
        tg_admin_body_integer(r, body, "tokens_per_fill", false, 1, INT64_MAX, &per_fill) ||
        tg_admin_body_integer(r, body, "fill_interval_ms", false, 1, INT64_MAX, &fill_ms))
        return TG_ERROR;
    if (subject != NULL && (subject[0] == '\0' || strlen(subject) > 2 * GLOB_MAX + 1))
        return tg_admin_body_bad_field(r, "subject", "must be 1 to 257 characters, or null");
    bool quota = limit >= 0, bucket = max_tokens >= 1;
    if (quota == bucket)
        return tg_admin_body_bad_field(r, quota ? "max_tokens" : "limit",
                                       quota ? "goes with a bucket, not with \"limit\""
                                             : "is required (or \"max_tokens\" for a bucket)");
    if (quota && (per_fill >= 0 || fill_ms >= 0))
        return tg_admin_body_bad_field(r, per_fill >= 0 ? "tokens_per_fill" : "fill_interval_ms",
                                       "goes with \"max_tokens\", not with \"limit\"");
    if (quota && tg_admin_body_choice(r, body, "window", windows,
                                      "must be \"minute\", \"hour\", \"day\", \"month\" or "
                                      "\"total\"",
                                      &window) != TG_OK)
        return TG_ERROR;
    if (bucket && json_object_get(body, "window") != NULL &&
        !json_is_null(json_object_get(body, "window")))
        return tg_admin_body_bad_field(r, "window", "goes with \"limit\", not with a bucket");
    char text[4][24];
    const int64_t values[4] = {limit, max_tokens, per_fill, fill_ms};
    const char *params[8] = {per, subject, window};
    for (int i = 0; i < 4; i++) {
        snprintf(text[i], sizeof(text[i]), "%lld", (long long)values[i]);
        params[3 + i] = values[i] >= 0 ? text[i] : NULL;
    }
    params[7] = actor;
    const char *row;
    if (run(r,
            "SELECT tollgate.mcp_limit_set($1, $2, $3, $4::bigint, $5::bigint, $6::bigint,"
            " $7::bigint, $8)::text",
            8, params, "subject", "subject", &row) != TG_OK)
        return TG_ERROR;
    return tg_admin_body_respond_json(r, 200, row != NULL ? row : "null");
}

static int delete_limit(struct tg_request *r, const char *actor, const char *id)
{
    char *end;
    long long n = strtoll(id, &end, 10);
    const char *done = NULL;
    if (*end == '\0' && end != id && n >= 1) {
        const char *params[] = {id, actor};
        if (run(r, "SELECT tollgate.mcp_limit_delete($1::bigint, $2)::text", 2, params, "id", "id",
                &done) != TG_OK)
            return TG_ERROR;
    }
    if (done == NULL || strcmp(done, "true") != 0) {
        char message[200];
        snprintf(message, sizeof(message), "no MCP limit \"%.64s\"", id);
        tg_request_fail(r, 404, "not_found_error", message, NULL);
        return TG_ERROR;
    }
    const char *doc = tg_arena_printf(r->arena, "{\"id\":%lld,\"deleted\":true}", n);
    return doc != NULL ? tg_admin_body_respond_json(r, 200, doc) : TG_ERROR;
}

/* ---- dispatch --------------------------------------------------------------------- */

static int method_not_allowed(struct tg_request *r, const char *allow)
{
    tg_request_add_header(r, "Allow", allow);
    tg_request_fail(r, 405, "invalid_request_error", "method not allowed", "%s %s", r->method,
                    r->path);
    return TG_ERROR;
}

int tg_admin_mcp_handle(struct tg_request *r, const char *actor, const char *const *segments,
                        size_t n)
{
    const char *m = r->method;
    bool get = strcmp(m, "GET") == 0, put = strcmp(m, "PUT") == 0, del = strcmp(m, "DELETE") == 0;
    json_t *body = NULL;
    if (n == 1 && strcmp(segments[0], "grants") == 0) {
        if (get)
            return list(r, "grants",
                        "SELECT coalesce(json_agg(v ORDER BY v.id), '[]')::text"
                        " FROM tollgate.mcp_grant_list v");
        if (!put && !del)
            return method_not_allowed(r, "GET, PUT, DELETE");
        if ((body = tg_admin_body_read(r)) == NULL)
            return TG_ERROR;
        return put ? put_grant(r, actor, body) : delete_grant(r, actor, body);
    }
    if (n == 1 && strcmp(segments[0], "limits") == 0) {
        if (get)
            return list(r, "limits",
                        "SELECT coalesce(json_agg(v ORDER BY v.id), '[]')::text"
                        " FROM tollgate.mcp_limit_list v");
        if (!put)
            return method_not_allowed(r, "GET, PUT");
        if ((body = tg_admin_body_read(r)) == NULL)
            return TG_ERROR;
        return put_limit(r, actor, body);
    }
    if (n == 2 && strcmp(segments[0], "limits") == 0)
        return del ? delete_limit(r, actor, segments[1]) : method_not_allowed(r, "DELETE");
    tg_request_fail(r, 404, "not_found_error", "not found", "no admin operation at %s", r->path);
    return TG_ERROR;
}
