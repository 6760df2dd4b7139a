/*
 * fuzz_jwt.c — the JWT parser and verifier (fcgi/auth_jwt.c, fcgi/jwk.c) with
 * one issuer holding an HS256 secret, RS256 and ES256 PEM keys and a JWKS file,
 * all from tests/unit/data/jwt/keys. The first byte picks how the rest is used:
 * even, as the token itself; odd, as "header JSON\npayload JSON", which the
 * harness encodes and signs with the HS256 secret, so that the claims' parsing
 * is reached past the signature check.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "auth_jwt.h"
#include "common.h"
#include "fuzz.h"

#define NOW 1900000000

static struct tg_jwt_issuer *issuer;
static char secret[256];

static void read_secret(const char *keys)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/hs256.secret", keys);
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(secret, sizeof(secret), f) == NULL)
        abort();
    fclose(f);
    secret[strcspn(secret, "\r\n")] = '\0';
    setenv("TG_FUZZ_JWT_HS256", secret, 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char keys[4100];
    snprintf(keys, sizeof(keys), "%s/unit/data/jwt/keys", fuzz_tests_dir());
    read_secret(keys);
    char text[16384];
    snprintf(text, sizeof(text),
             "{\"issuer\": \"https://idp.example\", \"audience\": \"tollgate\", \"leeway_s\": 30,"
             " \"keys\": ["
             "  {\"kid\": \"hs256\", \"alg\": \"HS256\", \"secret\": \"$TG_FUZZ_JWT_HS256\"},"
             "  {\"kid\": \"rs256\", \"alg\": \"RS256\", \"pem_file\": \"%s/rs256.pem\"},"
             "  {\"kid\": \"es256\", \"alg\": \"ES256\", \"pem_file\": \"%s/es256.pem\"}],"
             " \"jwks_file\": \"%s/jwks.json\","
             " \"claims\": {\"user\": \"sub\", \"group\": \"group_id\", \"groups\": \"groups\","
             "              \"role\": \"role\"}}",
             keys, keys, keys);
    json_t *obj = json_loads(text, 0, NULL);
    char err[512];
    if (obj == NULL || tg_jwt_issuer_load(obj, "auth.jwt[0]", &issuer, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "fuzz_jwt: %s\n", obj == NULL ? "issuer JSON" : err);
        abort();
    }
    json_decref(obj);
    return 0;
}

static size_t b64url(const unsigned char *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        if (i + 1 < len)
            out[o++] = abc[v >> 6 & 63];
        if (i + 2 < len)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
    return o;
}

/* "header\npayload" as a token signed with the HS256 secret, malloc'd; NULL: no newline. */
static char *signed_token(const char *in, size_t len)
{
    const char *nl = memchr(in, '\n', len);
    if (nl == NULL)
        return NULL;
    size_t hlen = (size_t)(nl - in), plen = len - hlen - 1;
    char *tok = malloc(len / 3 * 4 + 8 + 64);
    if (tok == NULL)
        return NULL;
    size_t o = b64url((const unsigned char *)in, hlen, tok);
    tok[o++] = '.';
    o += b64url((const unsigned char *)nl + 1, plen, tok + o);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, o, mac,
             &mac_len) == NULL) {
        free(tok);
        return NULL;
    }
    tok[o++] = '.';
    b64url(mac, mac_len, tok + o);
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *token;
    if (data[0] & 1) {
        token = signed_token((const char *)data + 1, size - 1);
    } else {
        token = malloc(size);
        if (token != NULL) {
            memcpy(token, data + 1, size - 1);
            token[size - 1] = '\0';
        }
    }
    if (token == NULL)
        return 0;
    struct tg_jwt_identity id;
    char reason[128];
    if (tg_jwt_verify(issuer, token, NOW, &id, reason, sizeof(reason)) == TG_OK &&
        (memchr(id.user_id, '\0', sizeof(id.user_id)) == NULL ||
         memchr(id.group_id, '\0', sizeof(id.group_id)) == NULL))
        abort();
    const struct tg_jwt_issuer *used;
    tg_jwt_verify_any(&issuer, 1, token, NOW, &id, &used, reason, sizeof(reason));
    free(token);
    return 0;
}
