/*
 * jwt_key.c — the keys a JWT is checked with (see jwt_key.h): the algorithm
 * table, what key each algorithm takes, a JWKS file's keys (RFC 7517) and the
 * signature check with OpenSSL 3 (EVP_DigestVerify for RSA and ECDSA, HMAC()
 * with CRYPTO_memcmp for the HS family).
 */
#include "jwt_key.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "jwk.h"

enum jwt_alg { HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384 };

static const struct {
    const char *name;
    enum jwt_alg alg;
    int bits; /* digest size, and for ES the curve's */
} algs[] = {
    {"HS256", HS256, 256}, {"HS384", HS384, 384}, {"HS512", HS512, 512}, {"RS256", RS256, 256},
    {"RS384", RS384, 384}, {"RS512", RS512, 512}, {"ES256", ES256, 256}, {"ES384", ES384, 384},
};

const char *tg_jwt_key_alg_name(int alg)
{
    return algs[alg].name;
}

int tg_jwt_key_alg_bits(int alg)
{
    return algs[alg].bits;
}

bool tg_jwt_key_alg_is_hmac(int alg)
{
    return algs[alg].alg <= HS512;
}

bool tg_jwt_key_alg_is_ec(int alg)
{
    return algs[alg].alg >= ES256;
}

int tg_jwt_key_alg(const char *name)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(algs); i++)
        if (strcmp(algs[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const EVP_MD *alg_md(int alg)
{
    switch (algs[alg].bits) {
    case 384: return EVP_sha384();
    case 512: return EVP_sha512();
    default: return EVP_sha256();
    }
}

void tg_jwt_key_free_all(struct tg_jwt_key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(keys[i].kid);
        if (keys[i].secret != NULL)
            OPENSSL_cleanse(keys[i].secret, keys[i].secret_len);
        free(keys[i].secret);
        EVP_PKEY_free(keys[i].pkey);
    }
    free(keys);
}

/* Whether pkey is the kind of key alg needs (RSA; EC on the curve of ES256/ES384). */
bool tg_jwt_key_fits(EVP_PKEY *pkey, int alg)
{
    if (!tg_jwt_key_alg_is_ec(alg))
        return EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= 2048;
    if (!EVP_PKEY_is_a(pkey, "EC"))
        return false;
    char group[64];
    size_t glen = 0;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &glen))
        return false;
    const char *want = algs[alg].bits == 256 ? "prime256v1" : "secp384r1";
    return strcmp(group, want) == 0;
}

/*
 * Reads the JWKS file into a fresh key list. Keys for another use ("use": "enc")
 * or of a type we do not verify with (OKP, oct) are skipped; a malformed RSA or EC
 * key fails the whole file. On failure writes a message (without "config:") to err.
 */
int tg_jwt_key_read_jwks(const char *file, struct tg_jwt_key **out, size_t *n_out, char *err,
                         size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, err_size, "could not read JWKS \"%s\": %s", file, jerr.text);
        return TG_ERROR;
    }
    json_t *list = json_object_get(root, "keys");
    if (!json_is_array(list)) {
        snprintf(err, err_size, "JWKS \"%s\": keys must be an array", file);
        json_decref(root);
        return TG_ERROR;
    }
    struct tg_jwt_key *keys = calloc(json_array_size(list) + 1, sizeof(*keys));
    size_t n = 0;
    int rc = keys != NULL ? TG_OK : TG_ERROR;
    if (keys == NULL)
        snprintf(err, err_size, "out of memory");
    size_t i;
    json_t *jwk;
    json_array_foreach(list, i, jwk) {
        if (rc != TG_OK)
            break;
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        const char *use = json_string_value(json_object_get(jwk, "use"));
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        const char *alg = json_string_value(json_object_get(jwk, "alg"));
        if (kty == NULL || (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0) ||
            (use != NULL && strcmp(use, "sig") != 0))
            continue;
        int a = alg != NULL ? tg_jwt_key_alg(alg) : -1;
        bool rsa = strcmp(kty, "RSA") == 0;
        if (kid == NULL || kid[0] == '\0' || a < 0 || tg_jwt_key_alg_is_hmac(a) ||
            rsa == tg_jwt_key_alg_is_ec(a)) {
            snprintf(err, err_size, "JWKS \"%s\": keys[%zu] needs a kid and an alg of its kty",
                     file, i);
            rc = TG_ERROR;
            break;
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(keys[j].kid, kid) == 0) {
                snprintf(err, err_size, "JWKS \"%s\": keys[%zu]: kid \"%s\" appears twice", file, i,
                         kid);
                rc = TG_ERROR;
            }
        }
        if (rc != TG_OK)
            break;
        EVP_PKEY *pkey = tg_jwk_public_key(jwk, rsa ? 0 : algs[a].bits);
        if (pkey == NULL || !tg_jwt_key_fits(pkey, a)) {
            EVP_PKEY_free(pkey);
            snprintf(err, err_size, "JWKS \"%s\": keys[%zu]: not a valid %s public key for %s",
                     file, i, kty, algs[a].name);
            rc = TG_ERROR;
            break;
        }
        keys[n].pkey = pkey;
        keys[n].alg = a;
        keys[n].kid = strdup(kid);
        n++;
        if (keys[n - 1].kid == NULL) {
            snprintf(err, err_size, "out of memory");
            rc = TG_ERROR;
        }
    }
    json_decref(root);
    if (rc != TG_OK) {
        tg_jwt_key_free_all(keys, n);
        return TG_ERROR;
    }
    *out = keys;
    *n_out = n;
    return TG_OK;
}

/* ES256/ES384 signatures are JOSE's raw r||s; OpenSSL wants DER. */
bool tg_jwt_key_verify(const struct tg_jwt_key *k, const char *input, size_t input_len,
                       const unsigned char *sig, size_t sig_len)
{
    const EVP_MD *md = alg_md(k->alg);
    if (tg_jwt_key_alg_is_hmac(k->alg)) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        if (HMAC(md, k->secret, (int)k->secret_len, (const unsigned char *)input, input_len, mac,
                 &mac_len) == NULL)
            return false;
        return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
    }
    unsigned char *der = NULL;
    int der_len = 0;
    if (tg_jwt_key_alg_is_ec(k->alg)) {
        size_t half = (size_t)algs[k->alg].bits / 8;
        if (sig_len != 2 * half)
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)half, NULL);
        BIGNUM *s = BN_bin2bn(sig + half, (int)half, NULL);
        if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return false;
        }
        der_len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (der_len <= 0)
            return false;
        sig = der;
        sig_len = (size_t)der_len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, k->pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, input_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

const struct tg_jwt_key *tg_jwt_key_find(const struct tg_jwt_key *keys, size_t n, const char *kid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].kid, kid) == 0)
            return &keys[i];
    return NULL;
}
