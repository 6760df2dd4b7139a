/*
 * auth.h — who is calling. A request presents one credential: a Tollgate key
 * (x-api-key, or "Authorization: Bearer tg-…") or a JWT from a configured
 * identity provider ("Authorization: Bearer eyJ…", verified here, locally).
 * A key trusted for it may also name the end user and team it acts for
 * (auth.attribution). Turning the credential into an identity — and checking
 * RBAC — is one database round trip: the reserve (quota.c) for requests that
 * reserve, tg_auth_identify for the others. One identity model for both:
 * r->identity holds api_key_id (0 for a JWT), user, group and role.
 *
 * Never logged or sent anywhere: the key, the token, the key's hash.
 */
#ifndef TG_AUTH_H
#define TG_AUTH_H

#include "auth_jwt.h"
#include "common.h"
#include "crypto.h"

struct tg_request;
struct tg_db_who;

enum tg_credential_kind { TG_CRED_KEY, TG_CRED_JWT };

/* What the client presented (in the request's arena). */
struct tg_credential {
    enum tg_credential_kind kind;
    unsigned char key_hash[TG_SHA256_LEN]; /* TG_CRED_KEY */
    struct tg_jwt_identity jwt;            /* TG_CRED_JWT: the verified claims */
    bool create_unknown;                   /* TG_CRED_JWT: its issuer creates users */
    const char *end_user, *end_group;      /* attribution asked for, or NULL */
};

/* Whether a bearer token is a compact JWS ("eyJ" — base64url of '{"' — and two dots). */
bool tg_auth_is_jwt(const char *token);

/*
 * Reads r's credential into r->credential: hashes a key, or verifies a JWT
 * (the issuer its "iss" names). TG_ERROR with r->error set: 401 when there is
 * none, or the key is malformed, or the token fails verification (the reason,
 * a fixed phrase, is in the message).
 */
int tg_auth_read(struct tg_request *r);

/* The SHA-256 of the key r presented (borrowed from r), or NULL: none read, or a JWT. */
const unsigned char *tg_auth_key_hash_of(const struct tg_request *r);

/* The identify parameters for r's credential (borrowed from r), model may be NULL. */
void tg_auth_who(const struct tg_request *r, const char *model, struct tg_db_who *who);

/*
 * For endpoints that reserve nothing (GET /v1/models): tg_auth_read, then one
 * round trip to identify r and check RBAC for its endpoint. TG_OK with
 * r->identity set; else TG_ERROR with r->error set (401, 403, 503).
 */
int tg_auth_identify(struct tg_request *r);

/* tg_auth_identify that also checks RBAC for model (may be NULL): 403 naming who refuses it. */
int tg_auth_identify_model(struct tg_request *r, const char *model);

/*
 * Turns an identify status other than "ok" (from tollgate.identify or
 * tollgate.reserve) into r's error: 401 for keys the database refuses, 403
 * for unknown users and groups and RBAC denials (naming the model or
 * endpoint and who refused), 400 for a malformed attribution. Always TG_ERROR.
 */
int tg_auth_refuse(struct tg_request *r, const char *status, const char *denied_subject);

/* Logs an attribution the database ignored (the key is not trusted for it). */
void tg_auth_note_attribution(struct tg_request *r, const char *attribution);

#endif
