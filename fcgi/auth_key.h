/*
 * auth_key.h — identifying a client by its Tollgate API key.
 *
 * The key comes in x-api-key or "Authorization: Bearer"; only its SHA-256 is
 * looked up (keys are stored hashed). The key itself is never logged or copied
 * beyond this step. Not here: JWTs (auth_jwt), quotas.
 */
#ifndef TG_AUTH_KEY_H
#define TG_AUTH_KEY_H

#include "common.h"

struct tg_request;

#define TG_KEY_MAX_LEN 256

/*
 * The key presented by the client, or NULL when there is none: x-api-key wins,
 * else the token of a "Bearer" Authorization header. Borrowed from the inputs.
 */
const char *tg_auth_key_presented(const char *x_api_key, const char *authorization);

/*
 * Hashes the key r presents into hash (SHA-256), without any lookup: the lookup
 * happens in the reserve round trip. TG_ERROR with r->error set (401) when there
 * is no key or it is too long to be one.
 */
int tg_auth_key_hash(struct tg_request *r, unsigned char *hash);

/*
 * Authenticates r on its own (one lookup, no reservation): fills r->identity and sets r->authenticated. TG_ERROR with
 * r->error set: 401 (missing, unknown, revoked, expired key) or 503 (database).
 */
int tg_auth_key_identify(struct tg_request *r);

#endif
