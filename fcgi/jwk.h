/*
 * jwk.h — JSON Web Keys (RFC 7517/7518) to OpenSSL public keys: the RSA (n, e)
 * and EC (crv, x, y on P-256 / P-384) members of one JWK. Not here: choosing
 * keys, JWKS files and their reloading, or verification (auth_jwt.c).
 */
#ifndef TG_JWK_H
#define TG_JWK_H

#include <jansson.h>
#include <openssl/evp.h>

/*
 * The public key of jwk (borrowed): RSA when ec_bits is 0, else EC on the curve
 * of that size (256: "P-256", 384: "P-384"), which the JWK's crv must name.
 * Returns a new EVP_PKEY (caller EVP_PKEY_free's) or NULL when jwk is not such a
 * key.
 */
EVP_PKEY *tg_jwk_public_key(json_t *jwk, int ec_bits);

#endif
