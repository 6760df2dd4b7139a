/*
 * crypto.h — hashing, randomness and encodings from OpenSSL's libcrypto: SHA-256
 * of keys, request ids, new key material. Not JWT (auth_jwt.c owns that).
 */
#ifndef TG_CRYPTO_H
#define TG_CRYPTO_H

#include "common.h"

#define TG_SHA256_LEN 32

/* Fills buf with n bytes from the OS's CSPRNG. TG_ERROR if it could not. */
int tg_crypto_random(unsigned char *buf, size_t n);

/* SHA-256 of data into out. */
void tg_crypto_sha256(const void *data, size_t len, unsigned char out[TG_SHA256_LEN]);

/*
 * HMAC-SHA-256 (RFC 2104) of data under key into out: AWS Signature Version 4
 * (providers/sigv4.c) chains it to derive its signing key. TG_OK, or TG_ERROR
 * when libcrypto failed (out of memory).
 */
int tg_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                          unsigned char out[TG_SHA256_LEN]);

/* A random (version 4) UUID in its 36-character text form, NUL-terminated. */
void tg_crypto_uuid4(char out[37]);

/*
 * 64 random bits from a per-thread xorshift generator seeded once from the
 * CSPRNG: no system call, not for secrets (ids, load balancing, jitter).
 */
uint64_t tg_crypto_fast_random(void);

/*
 * A version 7 UUID: 48 bits of Unix milliseconds, then 74 pseudo-random bits
 * (a per-thread generator seeded from the CSPRNG: unique, not secret). Ids
 * made later sort later, so the usage table's btrees take them at their right
 * edge.
 */
void tg_crypto_uuid7(char out[37]);

/*
 * base64url without padding. Writes at most out_size bytes including the NUL;
 * returns the encoded length, or TG_ERROR when out is too small.
 */
int tg_crypto_base64url(const unsigned char *in, size_t len, char *out, size_t out_size);

/*
 * Strict base64url without padding (RFC 7515 §2): only the 64 letters, no '=', a
 * length that is not 1 mod 4, and unused trailing bits zero (so each value has one
 * spelling). out holds at least len*3/4 bytes. Returns the decoded length or -1.
 */
long tg_crypto_base64url_decode(const char *in, size_t len, unsigned char *out);

/* The same into a malloc'd buffer (caller frees); NULL when not base64url. */
unsigned char *tg_crypto_base64url_decode_alloc(const char *in, size_t len, size_t *out_len);

/* The value of one hex digit (either case), or -1 when c is not one. */
int tg_crypto_hex_value(char c);

/* Lower-case hex of in into out (2*len+1 bytes). */
void tg_crypto_hex(const unsigned char *in, size_t len, char *out);

/* Compares n bytes in time independent of where they differ. */
bool tg_crypto_equal(const void *a, const void *b, size_t n);

#endif
