/*
 * auth_key.h — identifying a client by its Tollgate API key.
 *
 * The key comes in x-api-key or "Authorization: Bearer"; only its SHA-256 is
 * looked up (keys are stored hashed). The key itself is never logged or copied
 * beyond this step. Not here: JWTs (auth_jwt), choosing between the two (auth).
 */
#ifndef TG_AUTH_KEY_H
#define TG_AUTH_KEY_H

#include "common.h"
#include "crypto.h"

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

/* A new key: "tg-" + base64url of TG_KEY_RANDOM_BYTES random bytes from the OS. */
#define TG_KEY_RANDOM_BYTES 32
#define TG_KEY_PREFIX_LEN 11 /* "tg-" + 8: what lists show and revoke takes */

struct tg_new_key {
    char key[3 + 48]; /* the secret: shown once, never stored */
    char prefix[TG_KEY_PREFIX_LEN + 1];
    char hash_bytea[2 + 2 * TG_SHA256_LEN + 1]; /* "\\x" + hex of its SHA-256 */
};

/* Makes a new key. TG_ERROR when the OS gave no random bytes. */
int tg_auth_key_generate(struct tg_new_key *out);

#endif
