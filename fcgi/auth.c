/*
 * auth.c — reading the credential, and what an identify status means for the client.
 */
#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth_key.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "preauth.h"
#include "request.h"

bool tg_auth_is_jwt(const char *token)
{
    if (strncmp(token, "eyJ", 3) != 0)
        return false;
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    return dot2 != NULL && strchr(dot2 + 1, '.') == NULL;
}

static int read_jwt(struct tg_request *r, struct tg_credential *c, const char *token)
{
    const struct tg_config *config = r->config;
    if (config->n_jwt_issuers == 0) {
        tg_request_fail(r, 401, "authentication_error",
                        "bearer tokens (JWT) are not accepted here: send an API key",
                        "no auth.jwt issuer configured");
        return TG_ERROR;
    }
    char reason[96];
    const struct tg_jwt_issuer *issuer = NULL;
    if (tg_jwt_verify_any(config->jwt_issuers, config->n_jwt_issuers, token, time(NULL), &c->jwt,
                          &issuer, reason, sizeof(reason)) != TG_OK) {
        char message[160];
        snprintf(message, sizeof(message), "invalid bearer token: %s", reason);
        tg_request_fail(r, 401, "authentication_error", message, NULL);
        return TG_ERROR;
    }
    c->kind = TG_CRED_JWT;
    c->create_unknown = tg_jwt_issuer_creates_unknown(issuer);
    return TG_OK;
}

/* Whether s is an identifier as the database defines them (users.id, groups.id). */
static bool is_identifier(const char *s)
{
    static const char more[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@:-";
    size_t len = strlen(s);
    return len >= 1 && len <= 128 && strchr(more, s[0]) != NULL && strchr("._@:-", s[0]) == NULL &&
           strspn(s, more) == len;
}

/*
 * An attribution header's value, or NULL when absent or empty. A value that is
 * not an identifier (bytes that are not even UTF-8, say) is replaced by one
 * that is valid text but no identifier: the database then ignores it for an
 * untrusted key and refuses it (400) for a trusted one, as any bad name.
 */
static const char *attribution_header(struct tg_request *r, const char *name)
{
    const char *value = tg_request_header(r, name);
    if (value == NULL || value[0] == '\0')
        return NULL;
    return is_identifier(value) ? value : "(invalid)";
}

int tg_auth_read(struct tg_request *r)
{
    struct tg_credential *c = tg_arena_calloc(r->arena, sizeof(*c));
    if (c == NULL)
        return TG_ERROR;
    const char *x_api_key = tg_request_header(r, "x-api-key");
    const char *token = tg_auth_key_presented(x_api_key, tg_request_header(r, "authorization"));
    bool bearer = x_api_key == NULL || x_api_key[0] == '\0';
    /* no credential that could be good: an address over its failure budget gets 429 */
    if (token != NULL && bearer && tg_auth_is_jwt(token)) {
        if (read_jwt(r, c, token) != TG_OK) {
            tg_preauth_gate(r, NULL);
            return TG_ERROR;
        }
    } else {
        if (tg_auth_key_hash(r, c->key_hash) != TG_OK) {
            tg_preauth_gate(r, NULL);
            return TG_ERROR;
        }
        if (tg_preauth_gate(r, c->key_hash) != TG_OK) /* before any database work */
            return TG_ERROR;
        c->kind = TG_CRED_KEY;
        c->end_user = attribution_header(r, r->config->attribution_user_header);
        c->end_group = attribution_header(r, r->config->attribution_group_header);
    }
    r->credential = c;
    return TG_OK;
}

const unsigned char *tg_auth_key_hash_of(const struct tg_request *r)
{
    const struct tg_credential *c = r->credential;
    return c != NULL && c->kind == TG_CRED_KEY ? c->key_hash : NULL;
}

static const char *or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

void tg_auth_who(const struct tg_request *r, const char *model, struct tg_db_who *who)
{
    const struct tg_credential *c = r->credential;
    memset(who, 0, sizeof(*who));
    who->endpoint = r->endpoint_path;
    who->model = model;
    if (c->kind == TG_CRED_KEY) {
        who->key_hash = c->key_hash;
        who->end_user = c->end_user;
        who->end_group = c->end_group;
    } else {
        who->user = or_null(c->jwt.user_id);
        who->group = or_null(c->jwt.group_id);
        who->role = or_null(c->jwt.role);
        who->create = c->create_unknown;
    }
}

int tg_auth_identify(struct tg_request *r)
{
    return tg_auth_identify_model(r, NULL);
}

int tg_auth_identify_model(struct tg_request *r, const char *model)
{
    if (tg_auth_read(r) != TG_OK)
        return TG_ERROR;
    struct tg_db_who who;
    struct tg_db_identified out;
    tg_auth_who(r, model, &who);
    int rc = tg_db_identify(r, &who, &out);
    if (rc == TG_DECLINED) {
        tg_request_fail(r, 500, "api_error", "internal error", "identify was refused");
        return TG_ERROR;
    }
    if (rc != TG_OK) {
        tg_request_fail(r, 503, "api_error", "the gateway's database is unavailable",
                        "identify failed");
        r->outcome = "database_unavailable";
        return TG_ERROR;
    }
    tg_auth_note_attribution(r, out.attribution);
    if (strcmp(out.status, "ok") != 0)
        return tg_auth_refuse(r, out.status, out.denied_subject);
    r->authenticated = true;
    return TG_OK;
}

static void refuse_key(struct tg_request *r, const char *status)
{
    if (strcmp(status, "unknown_key") == 0) {
        if (r->credential != NULL && r->credential->kind == TG_CRED_KEY)
            tg_preauth_note_unknown(r, r->credential->key_hash); /* only "no such key" */
        tg_request_fail(r, 401, "authentication_error", "invalid x-api-key", "unknown key");
    } else
        tg_request_fail(r, 401, "authentication_error",
                        strcmp(status, "expired") == 0 ? "API key has expired"
                                                       : "API key has been revoked",
                        "key %s is %s", r->identity.key_prefix, status);
}

static void refuse_principal(struct tg_request *r, const char *status)
{
    char message[400];
    if (strcmp(status, "unknown_user") == 0)
        snprintf(message, sizeof(message), "user \"%s\" is not known to this gateway",
                 r->identity.user_id != NULL ? r->identity.user_id : "");
    else
        snprintf(message, sizeof(message), "group \"%s\" is not known to this gateway",
                 r->identity.group_id != NULL ? r->identity.group_id : "");
    tg_request_fail(r, 403, "permission_error", message, NULL);
}

static void refuse_access(struct tg_request *r, const char *status, const char *subject)
{
    char message[400];
    bool model = strcmp(status, "model_not_allowed") == 0;
    const char *what = model ? (r->model != NULL ? r->model->name : "") : r->endpoint_path;
    if (subject == NULL || strcmp(subject, "key") == 0)
        snprintf(message, sizeof(message), "%s \"%s\" is not allowed for this API key",
                 model ? "model" : "endpoint", what);
    else
        snprintf(message, sizeof(message), "%s \"%s\" is not allowed for %s",
                 model ? "model" : "endpoint", what, subject);
    tg_request_fail(r, 403, "permission_error", message, NULL);
}

int tg_auth_refuse(struct tg_request *r, const char *status, const char *denied_subject)
{
    if (strcmp(status, "unknown_key") == 0 || strcmp(status, "revoked") == 0 ||
        strcmp(status, "expired") == 0) {
        refuse_key(r, status);
    } else if (strcmp(status, "unknown_user") == 0 || strcmp(status, "unknown_group") == 0) {
        refuse_principal(r, status);
    } else if (strcmp(status, "invalid_principal") == 0) {
        if (r->credential != NULL && r->credential->kind == TG_CRED_KEY)
            tg_request_fail(r, 400, "invalid_request_error",
                            "the end user and group headers must be identifiers "
                            "(letters, digits, '.', '_', '@', ':', '-'; at most 128)",
                            NULL);
        else
            tg_request_fail(r, 403, "permission_error",
                            "the token's user, group or role is not a valid identifier", NULL);
    } else if (strcmp(status, "model_not_allowed") == 0 ||
               strcmp(status, "endpoint_not_allowed") == 0) {
        refuse_access(r, status, denied_subject);
    } else {
        tg_request_fail(r, 500, "api_error", "internal error", "identify answered \"%s\"", status);
    }
    r->outcome = "rejected";
    return TG_ERROR;
}

void tg_auth_note_attribution(struct tg_request *r, const char *attribution)
{
    if (attribution != NULL && strcmp(attribution, "ignored") == 0)
        tg_log_warn(r->request_id,
                    "end-user attribution ignored: key %s is not trusted to name end users",
                    r->identity.key_prefix != NULL ? r->identity.key_prefix : "?");
}
