/*
 * auth_key.c — key extraction, hashing and lookup.
 */
#include "auth_key.h"

#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "request.h"

const char *tg_auth_key_presented(const char *x_api_key, const char *authorization)
{
    if (x_api_key != NULL && x_api_key[0] != '\0')
        return x_api_key;
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    return token[0] != '\0' ? token : NULL;
}

int tg_auth_key_hash(struct tg_request *r, unsigned char *hash)
{
    const char *key = tg_auth_key_presented(tg_request_header(r, "x-api-key"),
                                            tg_request_header(r, "authorization"));
    if (key == NULL) {
        tg_request_fail(r, 401, "authentication_error",
                        "missing API key: send it in the x-api-key header", NULL);
        return TG_ERROR;
    }
    if (strlen(key) > TG_KEY_MAX_LEN) {
        tg_request_fail(r, 401, "authentication_error", "invalid x-api-key", "key too long");
        return TG_ERROR;
    }
    tg_crypto_sha256(key, strlen(key), hash);
    return TG_OK;
}

int tg_auth_key_generate(struct tg_new_key *out)
{
    unsigned char raw[TG_KEY_RANDOM_BYTES];
    unsigned char hash[TG_SHA256_LEN];
    memset(out, 0, sizeof(*out));
    if (tg_crypto_random(raw, sizeof(raw)) != TG_OK)
        return TG_ERROR;
    memcpy(out->key, "tg-", 3);
    tg_crypto_base64url(raw, sizeof(raw), out->key + 3, sizeof(out->key) - 3);
    tg_crypto_sha256(out->key, strlen(out->key), hash);
    memcpy(out->hash_bytea, "\\x", 2);
    tg_crypto_hex(hash, sizeof(hash), out->hash_bytea + 2);
    memcpy(out->prefix, out->key, TG_KEY_PREFIX_LEN);
    out->prefix[TG_KEY_PREFIX_LEN] = '\0';
    return TG_OK;
}
