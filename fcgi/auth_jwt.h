/*
 * auth_jwt.h — local verification of JWTs (RFC 7519, compact JWS) from the
 * organization's identity provider, with OpenSSL's libcrypto.
 *
 * An issuer is loaded once from the config ("auth.jwt[i]") and is then shared by
 * every thread. Its keys come from the config (an HMAC secret or a PEM public
 * key) and from an optional JWKS file (RFC 7517), re-read when its mtime or size
 * changes. The algorithm a token is checked with is always the one configured
 * for the key its kid names, never the one the token asks for: "alg: none", HMAC
 * signed with a public key, and keys embedded in the header all fail.
 *
 * Not here: fetching JWKS over the network, looking users up in the database
 * (just-in-time creation), or anything about the HTTP request.
 */
#ifndef TG_AUTH_JWT_H
#define TG_AUTH_JWT_H

#include "common.h"

struct json_t; /* jansson's json_t */

#define TG_JWT_MAX_TOKEN 8192  /* bytes of the compact form */
#define TG_JWT_MAX_HEADER 1024 /* bytes of the decoded header JSON */
#define TG_JWT_MAX_LEEWAY_S 60

struct tg_jwt_issuer; /* opaque: keys, claim names, the JWKS cache and its lock */

/* Who a verified token says the caller is. Every field is NUL-terminated ("" if absent). */
struct tg_jwt_identity {
    char user_id[256];
    char group_id[256];
    char role[128];
};

/*
 * Loads one issuer from its config object (borrowed), whose JSON path is path
 * ("auth.jwt[0]"):
 *   {"issuer": "https://idp.example", "audience": "tollgate", "leeway_s": 30,
 *    "keys": [{"kid": "k1", "alg": "HS256", "secret": "$ENV"},
 *             {"kid": "k2", "alg": "RS256", "pem_file": "/path/pub.pem"}],
 *    "jwks_file": "/path/jwks.json",
 *    "claims": {"user": "sub", "group": "group_id", "groups": "groups", "role": "role"},
 *    "create_unknown": false}
 * Algorithms: HS256/384/512, RS256/384/512, ES256, ES384. A secret written "$NAME"
 * is read from the environment. On success returns TG_OK and an issuer the caller
 * owns (tg_jwt_issuer_free). On failure returns TG_ERROR and writes
 * "config: <path>: <problem>" into err (always NUL-terminated).
 */
int tg_jwt_issuer_load(struct json_t *obj, const char *path, struct tg_jwt_issuer **out, char *err,
                       size_t err_size);

void tg_jwt_issuer_free(struct tg_jwt_issuer *iss);

/* The configured "iss" value (borrowed), to pick an issuer for a token. */
const char *tg_jwt_issuer_name(const struct tg_jwt_issuer *iss);

/*
 * Verifies token (NUL-terminated, borrowed) against iss at time now_s (seconds
 * since the epoch). Safe to call from many threads at once; it may re-read the
 * JWKS file. Returns TG_OK and fills *out (caller-owned storage, no allocation).
 * Otherwise returns TG_DECLINED, clears *out, and writes a short reason into reason
 * ("token expired"): a fixed phrase, safe to log, never holding the token or a claim.
 */
int tg_jwt_verify(const struct tg_jwt_issuer *iss, const char *token, int64_t now_s,
                  struct tg_jwt_identity *out, char *reason, size_t reason_size);

/* Whether users and groups a token names but the database lacks are created. */
bool tg_jwt_issuer_creates_unknown(const struct tg_jwt_issuer *iss);

/*
 * tg_jwt_verify with the issuer among issuers[0..n) whose "iss" the token's
 * payload names (the only one when n == 1; the claim is verified after). Sets
 * *issuer to the issuer used, NULL when none fits. Same returns as tg_jwt_verify.
 */
int tg_jwt_verify_any(struct tg_jwt_issuer *const *issuers, size_t n, const char *token,
                      int64_t now_s, struct tg_jwt_identity *out,
                      const struct tg_jwt_issuer **issuer, char *reason, size_t reason_size);

#endif
