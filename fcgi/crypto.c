/*
 * crypto.c — thin wrappers over libcrypto so the rest of the code never includes
 * OpenSSL headers for these basics.
 */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tg_crypto_random(unsigned char *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? TG_OK : TG_ERROR;
}

/*
 * SHA-256 fetched once: EVP_sha256() makes libcrypto look the implementation up
 * again (locks, and a getpid(2) for its fork check) at every digest.
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void tg_crypto_sha256(const void *data, size_t len, unsigned char out[TG_SHA256_LEN])
{
    unsigned int out_len = TG_SHA256_LEN;
    pthread_once(&sha256_once, fetch_sha256);
    EVP_Digest(data, len, out, &out_len, sha256_md != NULL ? sha256_md : EVP_sha256(), NULL);
}

int tg_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                          unsigned char out[TG_SHA256_LEN])
{
    unsigned int out_len = TG_SHA256_LEN;
    pthread_once(&sha256_once, fetch_sha256);
    if (key_len > INT_MAX)
        return TG_ERROR;
    if (HMAC(sha256_md != NULL ? sha256_md : EVP_sha256(), key, (int)key_len, data, len, out,
             &out_len) == NULL)
        return TG_ERROR;
    return TG_OK;
}

static void uuid_format(unsigned char b[16], int version, char out[37])
{
    b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

void tg_crypto_uuid4(char out[37])
{
    unsigned char b[16];
    if (tg_crypto_random(b, sizeof(b)) != TG_OK) {
        /* RAND_bytes failing means the process cannot work safely anyway */
        memset(b, 0, sizeof(b));
    }
    uuid_format(b, 4, out);
}

/*
 * Request ids need to be unique, not secret: a per-thread xorshift128+ seeded
 * from the CSPRNG once, so an id costs no system call (libcrypto's RAND_bytes
 * asks getpid(2) each time, to notice a fork).
 */
uint64_t tg_crypto_fast_random(void)
{
    static _Thread_local uint64_t state[2];
    if (state[0] == 0 && state[1] == 0) {
        if (tg_crypto_random((unsigned char *)state, sizeof(state)) != TG_OK ||
            (state[0] == 0 && state[1] == 0)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            state[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL | 1;
            state[1] = (uint64_t)(uintptr_t)&state;
        }
    }
    uint64_t x = state[0];
    uint64_t y = state[1];
    state[0] = y;
    x ^= x << 23;
    state[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return state[1] + y;
}

void tg_crypto_uuid7(char out[37])
{
    unsigned char b[16];
    uint64_t r1 = tg_crypto_fast_random(), r2 = tg_crypto_fast_random();
    memcpy(b + 6, &r1, 2);
    memcpy(b + 8, &r2, 8);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    uuid_format(b, 7, out);
}

int tg_crypto_base64url(const unsigned char *in, size_t len, char *out, size_t out_size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t need = (len * 4 + 2) / 3;
    if (need + 1 > out_size)
        return TG_ERROR;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
    return (int)o;
}

int tg_crypto_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int base64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long tg_crypto_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int nbits = 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = base64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out[n++] = (unsigned char)(acc >> nbits);
            acc &= (1u << nbits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return n;
}

unsigned char *tg_crypto_base64url_decode_alloc(const char *in, size_t len, size_t *out_len)
{
    unsigned char *out = malloc(len * 3 / 4 + 1);
    if (out == NULL)
        return NULL;
    long n = tg_crypto_base64url_decode(in, len, out);
    if (n < 0) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)n;
    return out;
}

void tg_crypto_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

bool tg_crypto_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
