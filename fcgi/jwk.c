/*
 * jwk.c — JWK members (base64url big-endian integers) into EVP_PKEYs via
 * OpenSSL 3's OSSL_PARAM builders.
 */
#include "jwk.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static unsigned char *member_bytes(json_t *jwk, const char *name, size_t *len)
{
    json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return NULL;
    return tg_crypto_base64url_decode_alloc(json_string_value(v), json_string_length(v), len);
}

static EVP_PKEY *rsa_key(json_t *jwk)
{
    size_t n_len = 0, e_len = 0;
    unsigned char *n = member_bytes(jwk, "n", &n_len);
    unsigned char *e = member_bytes(jwk, "e", &e_len);
    BIGNUM *bn_n = n != NULL ? BN_bin2bn(n, (int)n_len, NULL) : NULL;
    BIGNUM *bn_e = e != NULL ? BN_bin2bn(e, (int)e_len, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    if (bn_n != NULL && bn_e != NULL && bld != NULL &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) != NULL &&
        EVP_PKEY_fromdata_init(ctx) > 0) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
            pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *ec_key(json_t *jwk, int bits)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    size_t coord = (size_t)bits / 8;
    if (crv == NULL || strcmp(crv, bits == 256 ? "P-256" : "P-384") != 0)
        return NULL;
    size_t x_len = 0, y_len = 0;
    unsigned char *x = member_bytes(jwk, "x", &x_len);
    unsigned char *y = member_bytes(jwk, "y", &y_len);
    EVP_PKEY *pkey = NULL;
    if (x != NULL && y != NULL && x_len == coord && y_len == coord) {
        unsigned char point[1 + 2 * 48];
        point[0] = 0x04; /* uncompressed */
        memcpy(point + 1, x, coord);
        memcpy(point + 1 + coord, y, coord);
        char group[16];
        snprintf(group, sizeof(group), "%s", coord == 32 ? "prime256v1" : "secp384r1");
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
            OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * coord),
            OSSL_PARAM_construct_end(),
        };
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (ctx != NULL && EVP_PKEY_fromdata_init(ctx) > 0 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
            pkey = NULL;
        EVP_PKEY_CTX_free(ctx);
    }
    free(x);
    free(y);
    return pkey;
}

EVP_PKEY *tg_jwk_public_key(json_t *jwk, int ec_bits)
{
    if (ec_bits == 0)
        return rsa_key(jwk);
    if (ec_bits != 256 && ec_bits != 384)
        return NULL;
    return ec_key(jwk, ec_bits);
}
