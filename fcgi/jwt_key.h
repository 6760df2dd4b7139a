/*
 * jwt_key.h — the keys a JWT is checked with: the algorithms Tollgate accepts
 * (HS256/384/512, RS256/384/512, ES256/384), which key each takes (an HMAC
 * secret; an RSA key of 2048 bits or more; an EC key on the algorithm's
 * curve), the keys of a JWKS file (RFC 7517), and the signature check.
 * auth_jwt.c loads issuers with them and verifies tokens.
 */
#ifndef TG_JWT_KEY_H
#define TG_JWT_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/types.h>

struct tg_jwt_key {
    char *kid;
    int alg;               /* tg_jwt_key_alg's index */
    unsigned char *secret; /* HS: the HMAC key */
    size_t secret_len;
    EVP_PKEY *pkey; /* RS, ES: the public key */
};

/* The index of the algorithm named name ("RS256"), or -1 when it is not one we verify. */
int tg_jwt_key_alg(const char *name);

/* The name and the bit size (the digest's, and for ES the curve's) of algorithm alg. */
const char *tg_jwt_key_alg_name(int alg);
int tg_jwt_key_alg_bits(int alg);

/* Whether alg is of the HS family (a shared secret), of the ES family (an EC key). */
bool tg_jwt_key_alg_is_hmac(int alg);
bool tg_jwt_key_alg_is_ec(int alg);

/* Whether pkey is the kind of key alg needs (RSA of 2048 bits or more; EC on its curve). */
bool tg_jwt_key_fits(EVP_PKEY *pkey, int alg);

/* The key of keys[0..n) whose kid is kid, or NULL. */
const struct tg_jwt_key *tg_jwt_key_find(const struct tg_jwt_key *keys, size_t n, const char *kid);

/*
 * Whether sig is k's signature of input[0..input_len) (ES: JOSE's raw r||s).
 * The HMAC is compared in constant time.
 */
bool tg_jwt_key_verify(const struct tg_jwt_key *k, const char *input, size_t input_len,
                       const unsigned char *sig, size_t sig_len);

/* Frees keys[0..n) (secrets cleansed) and the array. */
void tg_jwt_key_free_all(struct tg_jwt_key *keys, size_t n);

/*
 * Reads the JWKS file into a fresh key list (*out, *n_out; the caller frees it
 * with tg_jwt_key_free_all). Keys for another use ("use": "enc") or of a type
 * we do not verify with (OKP, oct) are skipped; a malformed RSA or EC key fails
 * the whole file. TG_OK, or TG_ERROR with a message (without "config:") in err.
 */
int tg_jwt_key_read_jwks(const char *file, struct tg_jwt_key **out, size_t *n_out, char *err,
                         size_t err_size);

#endif
