/*
 * auth_key.c — key extraction, hashing and lookup.
 */
#include "auth_key.h"

#include <string.h>
#include <strings.h>

#include "crypto.h"
#include "db.h"
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

int tg_auth_key_identify(struct tg_request *r)
{
    unsigned char hash[TG_SHA256_LEN];
    if (tg_auth_key_hash(r, hash) != TG_OK)
        return TG_ERROR;
    const char *status = NULL;
    int rc = tg_db_authenticate(r, hash, &r->identity, &status);
    if (rc == TG_ERROR) {
        tg_request_fail(r, 503, "api_error", "the gateway's database is unavailable",
                        "authentication lookup failed");
        return TG_ERROR;
    }
    if (rc == TG_DECLINED) {
        tg_request_fail(r, 401, "authentication_error", "invalid x-api-key", "unknown key");
        return TG_ERROR;
    }
    if (strcmp(status, "active") != 0) {
        tg_request_fail(r, 401, "authentication_error",
                        strcmp(status, "expired") == 0 ? "API key has expired"
                                                       : "API key has been revoked",
                        "key %s is %s", r->identity.key_prefix, status);
        return TG_ERROR;
    }
    r->authenticated = true;
    return TG_OK;
}
