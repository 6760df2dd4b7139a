/*
 * admin.c — the admin API: who the admin caller is, which operation a path
 * and method name, the checks of each body field, and one parameterised call
 * of a SQL admin function per operation. Lists leave PostgreSQL as JSON
 * (json_agg over the list views) and pass through; changes answer what the
 * SQL function returned. No SQL text is ever built from request data.
 */
#include "admin.h"
#include "admin_body.h"
#include "admin_cache.h"
#include "admin_mcp.h"
#include "admin_reports.h"
#include "admin_sql.h"
#include "admin_ui.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_jwt.h"
#include "auth.h"
#include "auth_key.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "jsafe.h"
#include "netaddr.h"
#include "request.h"
#include "usage.h"

#define ADMIN_PREFIX "/admin/"
#define ADMIN_MAX_SEGMENT 256
#define AUDIT_DEFAULT_LIMIT 100
#define AUDIT_MAX_LIMIT 1000
#define GRACE_DEFAULT_S 3600
#define GRACE_MAX_S 2592000 /* 30 days */

struct call;
typedef int handler_fn(struct tg_request *r, const struct call *call);

/* One operation: a path shape and a method, and what answers it. */
struct op {
    const char *resource; /* the segment after /admin/ */
    bool has_id;          /* a second segment: the subject's id or key prefix */
    const char *action;   /* a third segment ("rotate"), or NULL */
    const char *method;
    bool takes_body; /* a JSON object (an empty body counts as {}) */
    handler_fn *handler;
    const char *sql;  /* for handlers shared by several resources */
    const char *noun; /* the subject in "not found" messages */
};

/* One admin request as a handler sees it. */
struct call {
    const struct op *op;
    const char *id;    /* the decoded id segment, or NULL */
    const char *actor; /* "admin-key:<8 hex>" or "jwt:<user>", for the audit log */
    json_t *body;      /* the body object (owned by the arena's cleanup), or NULL */
};

/* ---- credential ---------------------------------------------------------------- */

static bool is_admin_key(const struct tg_config *c, const unsigned char *hash)
{
    bool match = false;
    /* every hash is compared, so the time taken does not tell which one matched */
    for (size_t i = 0; i < c->n_admin_keys; i++)
        match |= tg_crypto_equal(c->admin_key_hashes[i], hash, TG_ADMIN_KEY_HASH_LEN);
    return match;
}

static const char *jwt_actor(struct tg_request *r, const char *token)
{
    const struct tg_config *c = r->config;
    struct tg_jwt_identity who;
    const struct tg_jwt_issuer *issuer;
    char reason[96];
    if (tg_jwt_verify_any(c->jwt_issuers, c->n_jwt_issuers, token, time(NULL), &who, &issuer,
                          reason, sizeof(reason)) != TG_OK) {
        tg_request_fail(r, 401, "authentication_error", "invalid admin credential",
                        "admin bearer token refused: %s", reason);
        return NULL;
    }
    bool trusted = false;
    for (size_t i = 0; i < c->n_admin_jwt_issuers; i++)
        trusted = trusted || strcmp(tg_jwt_issuer_name(issuer), c->admin_jwt_issuers[i]) == 0;
    if (!trusted) {
        tg_request_fail(r, 403, "permission_error",
                        "the token's issuer does not give access to the admin API",
                        "issuer \"%s\" is not in admin.jwt_issuers", tg_jwt_issuer_name(issuer));
        return NULL;
    }
    if (strcmp(who.role, c->admin_jwt_role) != 0) {
        tg_request_fail(r, 403, "permission_error",
                        "the token's role does not give access to the admin API", NULL);
        return NULL;
    }
    return tg_arena_printf(r->arena, "jwt:%s", who.user_id);
}

/* The actor for the audit log, or NULL with r->error set (401, 403). */
static const char *authenticate(struct tg_request *r)
{
    const char *x_api_key = tg_request_header(r, "x-api-key");
    const char *token = tg_auth_key_presented(x_api_key, tg_request_header(r, "authorization"));
    if (token == NULL) {
        tg_request_fail(r, 401, "authentication_error",
                        "missing admin credential: send the admin key in x-api-key", NULL);
        return NULL;
    }
    unsigned char hash[TG_SHA256_LEN];
    tg_crypto_sha256(token, strlen(token), hash);
    if (is_admin_key(r->config, hash)) {
        char hex[2 * TG_SHA256_LEN + 1];
        tg_crypto_hex(hash, sizeof(hash), hex);
        return tg_arena_printf(r->arena, "admin-key:%.8s", hex);
    }
    bool bearer = x_api_key == NULL || x_api_key[0] == '\0';
    if (bearer && r->config->admin_jwt_role != NULL && tg_auth_is_jwt(token))
        return jwt_actor(r, token);
    /* anything else, consumer keys included, is refused without a lookup */
    tg_request_fail(r, 401, "authentication_error", "invalid admin credential", NULL);
    return NULL;
}

/* ---- path and body --------------------------------------------------------------- */

/* The 1 to 3 segments after /admin/ (one trailing slash tolerated, as route.c does). */
static bool split_path(struct tg_request *r, const char *segments[3], size_t *n)
{
    const char *p = r->path + strlen(ADMIN_PREFIX);
    size_t len = strlen(p);
    if (len > 0 && p[len - 1] == '/')
        len--;
    *n = 0;
    size_t start = 0;
    for (size_t i = 0; len > 0 && i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        if (i == start || *n == 3 || i - start > ADMIN_MAX_SEGMENT)
            return false;
        segments[*n] = tg_admin_body_decode(r->arena, p + start, i - start);
        if (segments[(*n)++] == NULL)
            return false;
        start = i + 1;
    }
    return *n > 0;
}

/* ---- database and responses ------------------------------------------------------- */

/* A refusal by the server, in the client's terms: its primary message for bad input. */
static void refuse(struct tg_request *r, const char *sqlstate, const char *message)
{
    if (strcmp(sqlstate, "23505") == 0 || strcmp(sqlstate, "2BP01") == 0)
        tg_request_fail(r, 409, "invalid_request_error", message, "SQLSTATE %s", sqlstate);
    else if (strcmp(sqlstate, "P0002") == 0)
        tg_request_fail(r, 404, "not_found_error", message, "SQLSTATE %s", sqlstate);
    else if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
             strcmp(sqlstate, "P0001") == 0)
        tg_request_fail(r, 400, "invalid_request_error", message, "SQLSTATE %s", sqlstate);
    else
        tg_request_fail(r, 500, "api_error", "internal error",
                        "admin statement failed: SQLSTATE %s: %s", sqlstate, message);
}

/* Runs a statement that answers one row of one column into *cell (NULL: SQL null). */
static int run(struct tg_request *r, const char *sql, int n_params, const char *const *params,
               const char **cell)
{
    char sqlstate[6], message[200];
    int rc = tg_admin_sql_cell(r, sql, n_params, params, cell, sqlstate, message, sizeof(message));
    if (rc == TG_DECLINED) {
        refuse(r, sqlstate, message);
        return TG_ERROR;
    }
    return rc;
}

static int not_found(struct tg_request *r, const char *noun, const char *id)
{
    char message[256];
    snprintf(message, sizeof(message), "no %s \"%s\"", noun, id);
    tg_request_fail(r, 404, "not_found_error", message, NULL);
    return TG_ERROR;
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

/* Answers a key row (key_public's JSON) with the new secret in "key", the one time it is shown. */
static int respond_new_key(struct tg_request *r, int status, const char *row,
                           const struct tg_new_key *nk)
{
    json_t *key_row = json_loads(row, 0, NULL);
    json_t *doc = json_pack("{s:s}", "key", nk->key);
    char *text = NULL;
    if (json_is_object(key_row) && doc != NULL && json_object_update(doc, key_row) == 0)
        text = tg_jsafe_dumps(doc, JSON_COMPACT);
    json_decref(key_row);
    json_decref(doc);
    if (text == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "could not build a key response");
        return TG_ERROR;
    }
    if (status == 201)
        tg_request_add_headerf(r, "Location", "/admin/keys/%s", nk->prefix);
    tg_admin_body_respond_json(r, status, text);
    wipe(text, strlen(text));
    free(text);
    return TG_OK;
}

/* ---- operations ----------------------------------------------------------------- */

/* GET of a list view: {"<resource>": [rows]}. */
static int list(struct tg_request *r, const struct call *call)
{
    const char *rows;
    if (run(r, call->op->sql, 0, NULL, &rows) != TG_OK)
        return TG_ERROR;
    const char *doc =
        tg_arena_printf(r->arena, "{\"%s\":%s}", call->op->resource, rows != NULL ? rows : "[]");
    return doc != NULL ? tg_admin_body_respond_json(r, 200, doc) : TG_ERROR;
}

/* The audit query's "limit" (1..AUDIT_MAX_LIMIT), AUDIT_DEFAULT_LIMIT when absent. */
static int audit_limit(struct tg_request *r, int64_t *limit)
{
    const char *query = tg_request_param(r, "QUERY_STRING");
    *limit = AUDIT_DEFAULT_LIMIT;
    for (const char *p = query; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len >= 6 && strncmp(p, "limit=", 6) == 0) {
            int64_t n = 0;
            bool ok = len > 6 && len <= 6 + 4;
            for (size_t i = 6; ok && i < len; i++) {
                ok = p[i] >= '0' && p[i] <= '9';
                n = n * 10 + (p[i] - '0');
            }
            if (!ok || n < 1 || n > AUDIT_MAX_LIMIT)
                return tg_admin_body_bad_field(r, "limit", "must be an integer from 1 to 1000");
            *limit = n;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return TG_OK;
}

static int list_audit(struct tg_request *r, const struct call *call)
{
    int64_t limit;
    char limit_text[24];
    const char *rows;
    if (audit_limit(r, &limit) != TG_OK)
        return TG_ERROR;
    snprintf(limit_text, sizeof(limit_text), "%lld", (long long)limit);
    const char *params[] = {limit_text};
    if (run(r, call->op->sql, 1, params, &rows) != TG_OK)
        return TG_ERROR;
    const char *doc = tg_arena_printf(r->arena, "{\"audit\":%s}", rows != NULL ? rows : "[]");
    return doc != NULL ? tg_admin_body_respond_json(r, 200, doc) : TG_ERROR;
}

/* The optional key fields key_update sets (key_create takes the others). */
static const char *const key_changes[] = {"allowed_models", "expires_at", "trusted_attribution",
                                          NULL};

/* POST /admin/keys */
static int create_key(struct tg_request *r, const struct call *call)
{
    static const char *const fields[] = {
        "name", "user", "group", "role", "allowed_models", "expires_at", "trusted_attribution",
        NULL};
    json_t *body = call->body;
    const char *name, *user, *group, *role;
    if (tg_admin_body_check_fields(r, body, fields) != TG_OK ||
        tg_admin_body_string(r, body, "name", true, &name) ||
        tg_admin_body_id(r, body, "user", true, &user) ||
        tg_admin_body_id(r, body, "group", true, &group) ||
        tg_admin_body_id(r, body, "role", false, &role))
        return TG_ERROR;
    json_t *changes = json_object();
    for (size_t i = 0; changes != NULL && key_changes[i] != NULL; i++) {
        json_t *value = json_object_get(body, key_changes[i]);
        if (value != NULL)
            json_object_set(changes, key_changes[i], value);
    }
    const char *changes_text = changes != NULL ? tg_admin_body_dump(r, changes) : NULL;
    json_decref(changes);
    if (changes_text == NULL)
        return TG_ERROR;
    struct tg_new_key nk;
    if (tg_auth_key_generate(&nk) != TG_OK) {
        tg_request_fail(r, 500, "api_error", "could not generate a key", "no random bytes");
        return TG_ERROR;
    }
    /*
     * key_create, then key_update with the optional fields (no audit row, no change
     * when there are none), in one statement: one transaction. The CTE runs first.
     */
    static const char sql[] =
        "WITH created AS MATERIALIZED ("
        " SELECT tollgate.key_create($1::bytea, $2, $3, $4, $5, $6, $7) AS id)"
        " SELECT tollgate.key_update($2, $8::jsonb, $7)::text FROM created";
    const char *params[] = {nk.hash_bytea, nk.prefix, name,        user,
                            group,         role,      call->actor, changes_text};
    const char *row;
    int rc = run(r, sql, 8, params, &row);
    if (rc == TG_OK && row == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "key_update missed a new key");
        rc = TG_ERROR;
    }
    if (rc == TG_OK)
        rc = respond_new_key(r, 201, row, &nk);
    wipe(&nk, sizeof(nk));
    return rc;
}

/* PATCH /admin/keys/{prefix}: key_update checks the fields. */
static int update_key(struct tg_request *r, const struct call *call)
{
    const char *changes = tg_admin_body_dump(r, call->body);
    if (changes == NULL)
        return TG_ERROR;
    const char *params[] = {call->id, changes, call->actor};
    const char *row;
    if (run(r, "SELECT tollgate.key_update($1, $2::jsonb, $3)::text", 3, params, &row) != TG_OK)
        return TG_ERROR;
    return row != NULL ? tg_admin_body_respond_json(r, 200, row)
                       : not_found(r, call->op->noun, call->id);
}

/* POST /admin/keys/{prefix}/rotate */
static int rotate_key(struct tg_request *r, const struct call *call)
{
    static const char *const fields[] = {"grace_s", NULL};
    int64_t grace_s = GRACE_DEFAULT_S;
    if (tg_admin_body_check_fields(r, call->body, fields) != TG_OK ||
        tg_admin_body_integer(r, call->body, "grace_s", false, 0, GRACE_MAX_S, &grace_s) != TG_OK)
        return TG_ERROR;
    struct tg_new_key nk;
    if (tg_auth_key_generate(&nk) != TG_OK) {
        tg_request_fail(r, 500, "api_error", "could not generate a key", "no random bytes");
        return TG_ERROR;
    }
    char grace[24];
    snprintf(grace, sizeof(grace), "%lld", (long long)grace_s);
    const char *params[] = {call->id, nk.hash_bytea, nk.prefix, grace, call->actor};
    const char *row;
    int rc = run(r, "SELECT tollgate.key_rotate($1, $2::bytea, $3, $4::integer, $5)::text", 5,
                 params, &row);
    if (rc == TG_OK)
        rc = row != NULL ? respond_new_key(r, 200, row, &nk)
                         : not_found(r, call->op->noun, call->id);
    wipe(&nk, sizeof(nk));
    return rc;
}

/* DELETE /admin/keys/{prefix}: revokes it (the row stays, for its usage and audit). */
static int revoke_key(struct tg_request *r, const struct call *call)
{
    const char *params[] = {call->id, call->actor};
    const char *done;
    if (run(r, "SELECT tollgate.key_revoke($1, $2)::text", 2, params, &done) != TG_OK)
        return TG_ERROR;
    if (done == NULL || strcmp(done, "true") != 0)
        return not_found(r, call->op->noun, call->id);
    return tg_admin_body_respond_doc(r, 200,
                                     json_pack("{s:s, s:b}", "prefix", call->id, "revoked", 1));
}

/* PUT /admin/users/{id} */
static int put_user(struct tg_request *r, const struct call *call)
{
    static const char *const fields[] = {"group", NULL};
    const char *group;
    if (tg_admin_body_check_fields(r, call->body, fields) != TG_OK ||
        tg_admin_body_id(r, call->body, "group", true, &group) != TG_OK)
        return TG_ERROR;
    const char *params[] = {call->id, group, call->actor};
    const char *row;
    if (run(r, "SELECT tollgate.user_upsert($1, $2, $3)::text", 3, params, &row) != TG_OK)
        return TG_ERROR;
    return tg_admin_body_respond_json(r, 200, row != NULL ? row : "null");
}

/* PUT /admin/groups/{id}, /admin/roles/{id}: the RBAC lists, replaced (absent = null). */
static int put_rbac(struct tg_request *r, const struct call *call)
{
    static const char *const fields[] = {"allowed_models", "allowed_endpoints", NULL};
    const char *models, *endpoints;
    if (tg_admin_body_check_fields(r, call->body, fields) != TG_OK ||
        tg_admin_body_string_array(r, call->body, "allowed_models", &models) != TG_OK ||
        tg_admin_body_string_array(r, call->body, "allowed_endpoints", &endpoints) != TG_OK)
        return TG_ERROR;
    const char *params[] = {call->id, models, endpoints, call->actor};
    const char *row;
    if (run(r, call->op->sql, 4, params, &row) != TG_OK)
        return TG_ERROR;
    return tg_admin_body_respond_json(r, 200, row != NULL ? row : "null");
}

/* DELETE /admin/users/{id}, groups, roles: a boolean SQL function (false: none). */
static int delete_by_id(struct tg_request *r, const struct call *call)
{
    const char *params[] = {call->id, call->actor};
    const char *done;
    if (run(r, call->op->sql, 2, params, &done) != TG_OK)
        return TG_ERROR;
    if (done == NULL || strcmp(done, "true") != 0)
        return not_found(r, call->op->noun, call->id);
    return tg_admin_body_respond_doc(r, 200, json_pack("{s:s, s:b}", "id", call->id, "deleted", 1));
}

/* What names one quota. */
struct quota_key {
    const char *kind, *subject, *metric, *window;
};

static int get_quota_key(struct tg_request *r, json_t *body, struct quota_key *q)
{
    static const char *const kinds[] = {"key", "user", "group", NULL};
    static const char *const metrics[] = {"tokens", "requests", "usd", NULL};
    static const char *const windows[] = {"minute", "hour", "day", "month", "total", NULL};
    if (tg_admin_body_choice(r, body, "kind", kinds, "must be \"key\", \"user\" or \"group\"",
                             &q->kind) ||
        tg_admin_body_string(r, body, "subject", true, &q->subject) ||
        tg_admin_body_choice(r, body, "metric", metrics,
                             "must be \"tokens\", \"requests\" or \"usd\"", &q->metric) ||
        tg_admin_body_choice(r, body, "window", windows,
                             "must be \"minute\", \"hour\", \"day\", \"month\" or \"total\"",
                             &q->window))
        return TG_ERROR;
    return TG_OK;
}

/* "limit" in the metric's unit: a whole number, or for usd dollars ("500.00" or 500) as micros. */
static int get_limit(struct tg_request *r, json_t *body, const char *metric, int64_t *limit)
{
    json_t *value = json_object_get(body, "limit");
    bool usd = strcmp(metric, "usd") == 0;
    char dollars[32] = "";
    const char *text = NULL;
    if (value == NULL || json_is_null(value))
        return tg_admin_body_bad_field(r, "limit", "is required");
    if (json_is_integer(value) && !usd)
        *limit = json_integer_value(value);
    else if (json_is_integer(value))
        snprintf(dollars, sizeof(dollars), "%lld", (long long)json_integer_value(value));
    else if (json_is_string(value) && usd)
        text = json_string_value(value);
    else
        return tg_admin_body_bad_field(
            r, "limit", usd ? "must be an integer or a dollar string" : "must be an integer");
    if (usd && tg_usage_parse_usd(text != NULL ? text : dollars, limit) != TG_OK)
        return tg_admin_body_bad_field(r, "limit",
                                       "must be dollars such as \"500.00\" (at most 6 decimals)");
    return *limit >= 0 ? TG_OK : tg_admin_body_bad_field(r, "limit", "must not be negative");
}

static int respond_quota(struct tg_request *r, const char *id);

/* PUT /admin/quotas: quota_set, then the quota as quota_list shows it. */
static int put_quota(struct tg_request *r, const struct call *call)
{
    static const char *const fields[] = {"kind",  "subject",  "metric", "window",
                                         "limit", "warn_pct", NULL};
    struct quota_key q;
    int64_t limit = 0, warn_pct = -1;
    if (tg_admin_body_check_fields(r, call->body, fields) != TG_OK ||
        get_quota_key(r, call->body, &q) || get_limit(r, call->body, q.metric, &limit) ||
        tg_admin_body_integer(r, call->body, "warn_pct", false, 1, 100, &warn_pct))
        return TG_ERROR;
    char limit_text[24], warn_text[8];
    snprintf(limit_text, sizeof(limit_text), "%lld", (long long)limit);
    snprintf(warn_text, sizeof(warn_text), "%lld", (long long)warn_pct);
    const char *params[] = {q.kind,
                            q.subject,
                            q.metric,
                            q.window,
                            limit_text,
                            call->actor,
                            warn_pct >= 0 ? warn_text : NULL};
    const char *id;
    if (run(r, "SELECT tollgate.quota_set($1, $2, $3, $4, $5::bigint, $6, $7::integer)::text", 7,
            params, &id) != TG_OK)
        return TG_ERROR;
    return respond_quota(r, id);
}

/* Answers the quota id as quota_list shows it (the change is committed already). */
static int respond_quota(struct tg_request *r, const char *id)
{
    /*
     * A second statement: the row quota_set wrote is not visible to the statement that
     * called it. The change is committed already, so a failure here still answers 200.
     */
    char sqlstate[6], message[200];
    struct tg_db_rows rows;
    const char *read_params[] = {id};
    if (id != NULL &&
        tg_db_call(r, "SELECT row_to_json(q)::text FROM tollgate.quota_list q WHERE q.id = $1", 1,
                   read_params, true, &rows, sqlstate, message, sizeof(message)) == TG_OK &&
        rows.n_rows == 1 && rows.cells[0] != NULL)
        return tg_admin_body_respond_json(r, 200, rows.cells[0]);
    const char *doc = tg_arena_printf(r->arena, "{\"id\":%s}", id != NULL ? id : "null");
    return doc != NULL ? tg_admin_body_respond_json(r, 200, doc) : TG_ERROR;
}

/* DELETE /admin/quotas */
static int delete_quota(struct tg_request *r, const struct call *call)
{
    static const char *const fields[] = {"kind", "subject", "metric", "window", NULL};
    struct quota_key q;
    if (tg_admin_body_check_fields(r, call->body, fields) != TG_OK ||
        get_quota_key(r, call->body, &q))
        return TG_ERROR;
    const char *params[] = {q.kind, q.subject, q.metric, q.window, call->actor};
    const char *done;
    if (run(r, "SELECT tollgate.quota_delete($1, $2, $3, $4, $5)::text", 5, params, &done) != TG_OK)
        return TG_ERROR;
    if (done == NULL || strcmp(done, "true") != 0) {
        tg_request_fail(r, 404, "not_found_error", "no such quota", NULL);
        return TG_ERROR;
    }
    return tg_admin_body_respond_doc(r, 200,
                                     json_pack("{s:s, s:s, s:s, s:s, s:b}", "kind", q.kind,
                                               "subject", q.subject, "metric", q.metric, "window",
                                               q.window, "deleted", 1));
}

/*
 * POST /admin/quotas/adjust (the limit changed "by" a signed amount: a whole
 * number, for usd dollars such as "-12.50") and POST /admin/quotas/reset (used
 * back to 0): quota_adjust and quota_reset, audited, then the quota.
 */
static int change_quota(struct tg_request *r, const struct call *call)
{
    static const char *const adjust_fields[] = {"kind", "subject", "metric", "window", "by", NULL};
    static const char *const reset_fields[] = {"kind", "subject", "metric", "window", NULL};
    bool adjust = strcmp(call->id, "adjust") == 0;
    if (!adjust && strcmp(call->id, "reset") != 0)
        return not_found(r, "quota operation", call->id);
    struct quota_key q;
    if (tg_admin_body_check_fields(r, call->body, adjust ? adjust_fields : reset_fields) != TG_OK ||
        get_quota_key(r, call->body, &q))
        return TG_ERROR;
    const char *id;
    if (!adjust) {
        const char *params[] = {q.kind, q.subject, q.metric, q.window, call->actor};
        if (run(r, "SELECT tollgate.quota_reset($1, $2, $3, $4, $5)::text", 5, params, &id) !=
            TG_OK)
            return TG_ERROR;
        return respond_quota(r, id);
    }
    json_t *by = json_object_get(call->body, "by");
    const char *text = json_is_string(by) ? json_string_value(by) : "";
    bool negative = text[0] == '-';
    int64_t amount = 0;
    if (json_is_integer(by) && strcmp(q.metric, "usd") != 0)
        amount = json_integer_value(by);
    else if (json_is_integer(by) && json_integer_value(by) > -1000000000 &&
             json_integer_value(by) < 1000000000)
        amount = json_integer_value(by) * 1000000;
    else if (!json_is_string(by) || strcmp(q.metric, "usd") != 0 ||
             tg_usage_parse_usd(text + (text[0] == '-' || text[0] == '+'), &amount) != TG_OK)
        return tg_admin_body_bad_field(r, "by",
                                       strcmp(q.metric, "usd") == 0
                                           ? "must be dollars such as \"-12.50\" or an integer"
                                           : "must be an integer");
    char by_text[24];
    snprintf(by_text, sizeof(by_text), "%lld", (long long)(negative ? -amount : amount));
    const char *params[] = {q.kind, q.subject, q.metric, q.window, by_text, call->actor};
    if (run(r, "SELECT tollgate.quota_adjust($1, $2, $3, $4, $5::bigint, $6)::text", 6, params,
            &id) != TG_OK)
        return TG_ERROR;
    return respond_quota(r, id);
}

/*
 * PUT /admin/prices: micro-dollars per million tokens; web_search per search.
 * The fields after the four base rates are optional (price_set's named
 * arguments, in this order): a field left out is SQL null.
 */
static int put_price(struct tg_request *r, const struct call *call)
{
    // clang-format off
    static const char *const fields[] = {
        "model", "effective_from",
        "input", "output", "cache_read", "cache_write",  /* required */
        "cache_write_1h", "web_search", "long_context_threshold", "long_input", "long_output",
        "long_cache_read", "long_cache_write", "long_cache_write_1h", NULL};
    // clang-format on
    enum { N_BASE = 4, N_RATES = 12, FIRST_RATE = 2 };
    json_t *body = call->body;
    const char *model, *from;
    char rate_text[N_RATES][24];
    const char *params[N_RATES + 3] = {NULL};
    if (tg_admin_body_check_fields(r, body, fields) != TG_OK ||
        tg_admin_body_string(r, body, "model", true, &model) ||
        tg_admin_body_string(r, body, "effective_from", false, &from))
        return TG_ERROR;
    if (model[0] == '\0')
        return tg_admin_body_bad_field(r, "model", "must not be empty");
    for (int i = 0; i < N_RATES; i++) {
        const char *name = fields[FIRST_RATE + i];
        int64_t rate = -1; /* stays -1 when an optional field is left out */
        int64_t min = strcmp(name, "long_context_threshold") == 0 ? 1 : 0;
        if (tg_admin_body_integer(r, body, name, i < N_BASE, min, INT64_MAX, &rate) != TG_OK)
            return TG_ERROR;
        snprintf(rate_text[i], sizeof(rate_text[i]), "%lld", (long long)rate);
        /* $3..$6 the base rates, $7 the actor, $8.. the optional ones */
        params[i < N_BASE ? 2 + i : 3 + i] = rate >= 0 ? rate_text[i] : NULL;
    }
    params[0] = model;
    params[1] = from;
    params[6] = call->actor;
    const char *row;
    if (run(r,
            "SELECT tollgate.price_set($1, $2::timestamptz, $3::bigint, $4::bigint, $5::bigint,"
            " $6::bigint, $7, p_cache_write_1h => $8::bigint, p_web_search => $9::bigint,"
            " p_long_context_threshold => $10::bigint, p_long_input => $11::bigint,"
            " p_long_output => $12::bigint, p_long_cache_read => $13::bigint,"
            " p_long_cache_write => $14::bigint, p_long_cache_write_1h => $15::bigint)::text",
            N_RATES + 3, params, &row) != TG_OK)
        return TG_ERROR;
    return tg_admin_body_respond_json(r, 200, row != NULL ? row : "null");
}

/* ---- the table ------------------------------------------------------------------ */

#define LIST(view, order)                                                                          \
    "SELECT coalesce(json_agg(v ORDER BY " order "), '[]')::text FROM " view " v"

/* A JSON array parameter (or null) as text[], in order. */
#define TEXT_ARRAY(param)                                                                          \
    "CASE WHEN " param "::jsonb IS NULL THEN NULL ELSE ARRAY(SELECT e FROM"                        \
    " jsonb_array_elements_text(" param "::jsonb) WITH ORDINALITY AS t(e, i) ORDER BY i) END"

#define RBAC_UPSERT(fn)                                                                            \
    "SELECT tollgate." fn "($1, " TEXT_ARRAY("$2") ", " TEXT_ARRAY("$3") ", $4)::text"

/* Audit rows, newest first; key hashes never leave, even from an older row's jsonb. */
#define AUDIT_LIST                                                                                 \
    "SELECT coalesce(json_agg(a ORDER BY a.id DESC), '[]')::text FROM ("                           \
    " SELECT l.id, l.ts, l.actor, l.action, l.subject,"                                            \
    " l.before - 'key_hash' - 'previous_key_hash' AS before,"                                      \
    " l.after - 'key_hash' - 'previous_key_hash' AS after"                                         \
    " FROM tollgate.audit_log l ORDER BY l.id DESC LIMIT $1::integer) a"

/* /admin/cache: the response cache (admin_cache.c). */
static int cache_show(struct tg_request *r, const struct call *call)
{
    (void)call;
    return tg_admin_cache_show(r);
}

static int cache_purge(struct tg_request *r, const struct call *call)
{
    (void)call;
    return tg_admin_cache_purge(r);
}

static const struct op ops[] = {
    {"keys", false, NULL, "GET", false, list, LIST("tollgate.key_list", "v.id"), NULL},
    {"keys", false, NULL, "POST", true, create_key, NULL, "key"},
    {"keys", true, NULL, "PATCH", true, update_key, NULL, "key"},
    {"keys", true, NULL, "DELETE", false, revoke_key, NULL, "key"},
    {"keys", true, "rotate", "POST", true, rotate_key, NULL, "active key"},
    {"users", false, NULL, "GET", false, list, LIST("tollgate.user_list", "v.id"), NULL},
    {"users", true, NULL, "PUT", true, put_user, NULL, "user"},
    {"users", true, NULL, "DELETE", false, delete_by_id,
     "SELECT tollgate.user_delete($1, $2)::text", "user"},
    {"groups", false, NULL, "GET", false, list, LIST("tollgate.group_list", "v.id"), NULL},
    {"groups", true, NULL, "PUT", true, put_rbac, RBAC_UPSERT("group_upsert"), "group"},
    {"groups", true, NULL, "DELETE", false, delete_by_id,
     "SELECT tollgate.group_delete($1, $2)::text", "group"},
    {"roles", false, NULL, "GET", false, list, LIST("tollgate.role_list", "v.id"), NULL},
    {"roles", true, NULL, "PUT", true, put_rbac, RBAC_UPSERT("role_upsert"), "role"},
    {"roles", true, NULL, "DELETE", false, delete_by_id,
     "SELECT tollgate.role_delete($1, $2)::text", "role"},
    {"quotas", false, NULL, "GET", false, list, LIST("tollgate.quota_list", "v.id"), NULL},
    {"quotas", false, NULL, "PUT", true, put_quota, NULL, NULL},
    {"quotas", false, NULL, "DELETE", true, delete_quota, NULL, NULL},
    {"quotas", true, NULL, "POST", true, change_quota, NULL, NULL},
    {"prices", false, NULL, "GET", false, list,
     LIST("tollgate.price_list", "v.model, v.effective_from"), NULL},
    {"prices", false, NULL, "PUT", true, put_price, NULL, NULL},
    {"audit", false, NULL, "GET", false, list_audit, AUDIT_LIST, NULL},
    {"cache", false, NULL, "GET", false, cache_show, NULL, NULL},
    {"cache", false, NULL, "DELETE", false, cache_purge, NULL, NULL},
};
static const size_t n_ops = TG_ARRAY_LEN(ops);

/* The operation for r's path and method; NULL with r->error set (404, 405 with Allow). */
static const struct op *find_op(struct tg_request *r, const char *const *segments, size_t n)
{
    char allow[64] = "";
    for (size_t i = 0; i < n_ops; i++) {
        const struct op *op = &ops[i];
        if (strcmp(op->resource, segments[0]) != 0 || op->has_id != (n >= 2) ||
            (op->action != NULL) != (n == 3) ||
            (op->action != NULL && strcmp(op->action, segments[2]) != 0))
            continue;
        if (strcmp(op->method, r->method) == 0)
            return op;
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof(allow) - used, "%s%s", used > 0 ? ", " : "", op->method);
    }
    if (allow[0] == '\0') {
        tg_request_fail(r, 404, "not_found_error", "not found", "no admin operation at %s",
                        r->path);
        return NULL;
    }
    tg_request_add_header(r, "Allow", allow);
    tg_request_fail(r, 405, "invalid_request_error", "method not allowed", "%s %s", r->method,
                    r->path);
    return NULL;
}

int tg_admin_handle(struct tg_request *r)
{
    struct call call = {0};
    const char *segments[3];
    size_t n;
    const char *client = tg_request_param(r, "REMOTE_ADDR");
    if (!tg_netaddr_allowed(r->config->admin_allow, r->config->n_admin_allow, client)) {
        tg_request_fail(r, 403, "permission_error", "the admin API is not open to this address",
                        "client \"%s\" is not in admin.allow", client != NULL ? client : "?");
        return TG_ERROR;
    }
    /* the dashboard's files: the page is a login form, its data calls come back here */
    if (tg_admin_ui_owns(r->path))
        return tg_admin_ui_handle(r);
    call.actor = authenticate(r); /* first: without it, not even a 404 */
    if (call.actor == NULL)
        return TG_ERROR;
    r->authenticated = true;
    r->identity.user_id = call.actor; /* the access line names who acted */
    if (strncmp(r->path, TG_ADMIN_REPORTS_PREFIX, strlen(TG_ADMIN_REPORTS_PREFIX)) == 0)
        return tg_admin_reports_handle(r); /* read only: no audit row, as every GET */
    if (!split_path(r, segments, &n)) {
        tg_request_fail(r, 404, "not_found_error", "not found", "no admin operation at %s",
                        r->path);
        return TG_ERROR;
    }
    if (strcmp(segments[0], "mcp") == 0) /* /admin/mcp/: admin_mcp.c */
        return tg_admin_mcp_handle(r, call.actor, segments + 1, n - 1);
    call.op = find_op(r, segments, n);
    if (call.op == NULL)
        return TG_ERROR;
    call.id = n >= 2 ? segments[1] : NULL;
    if (call.op->takes_body && (call.body = tg_admin_body_read(r)) == NULL)
        return TG_ERROR;
    return call.op->handler(r, &call);
}
