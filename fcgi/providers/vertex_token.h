/*
 * vertex_token.h — OAuth2 access tokens for Vertex AI from a Google service-account key
 * (RFC 7523's JWT bearer grant, as Google's "OAuth 2.0 for Server to Server
 * Applications" describes it): loading the key file, signing the assertion (RS256 with
 * OpenSSL's libcrypto), the token request's form body, reading the token endpoint's
 * answer, and a cache that says when a token needs refreshing.
 *
 * Not here: the HTTP call to the token endpoint (the caller POSTs the body with
 * Content-Type application/x-www-form-urlencoded to tg_vertex_key_token_uri), the clock
 * (every function takes the time, so tests control it), and logging. Nothing here ever
 * writes a private key, an assertion or an access token into an error message.
 */
#ifndef TG_VERTEX_TOKEN_H
#define TG_VERTEX_TOKEN_H

#include <pthread.h>

#include "common.h"

#define TG_VERTEX_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define TG_VERTEX_ASSERTION_LIFETIME_S 3600 /* the longest Google accepts */
#define TG_VERTEX_REFRESH_MARGIN_S 300      /* refresh this long before the token expires */
#define TG_VERTEX_MAX_KEY_FILE 65536        /* bytes of a key file */
#define TG_VERTEX_MAX_ASSERTION 4096        /* bytes of the signed JWT (RSA up to 8192 bits) */
#define TG_VERTEX_MAX_TOKEN 4096            /* bytes of an access token, NUL included */
#define TG_VERTEX_GRANT_TYPE "urn:ietf:params:oauth:grant-type:jwt-bearer"

struct tg_vertex_key; /* opaque: the account's email, key id, token URI and RSA key */

/*
 * Parses a service-account key file's JSON (len bytes, borrowed): "type" must be
 * "service_account"; "client_email", "private_key_id" non-empty strings; "private_key" a
 * PEM RSA private key of at least 2048 bits; "token_uri" an https URL (http only to
 * localhost, 127.0.0.1 or [::1], for test servers); "project_id" optional. On TG_OK *out
 * is a key the caller owns (tg_vertex_key_free). TG_ERROR: *out NULL and err (always
 * NUL-terminated) names the bad field ("service account key: \"private_key\" is not a PEM
 * RSA private key"), never quoting the key.
 */
int tg_vertex_key_parse(const char *json_text, size_t len, struct tg_vertex_key **out, char *err,
                        size_t err_size);

/*
 * tg_vertex_key_parse on the file at path (at most TG_VERTEX_MAX_KEY_FILE bytes; the
 * buffer is wiped after). Errors name the path.
 */
int tg_vertex_key_load(const char *path, struct tg_vertex_key **out, char *err, size_t err_size);

/* Frees key (NULL is fine). */
void tg_vertex_key_free(struct tg_vertex_key *key);

/* The key's client_email, token_uri and project_id ("" when absent); borrowed from key. */
const char *tg_vertex_key_email(const struct tg_vertex_key *key);
const char *tg_vertex_key_token_uri(const struct tg_vertex_key *key);
const char *tg_vertex_key_project(const struct tg_vertex_key *key);

/*
 * The signed assertion at time now_s (seconds since the epoch): a compact JWS with header
 * {"alg":"RS256","typ":"JWT","kid":private_key_id} and claims {"iss":client_email,
 * "scope":TG_VERTEX_SCOPE,"aud":token_uri,"iat":now_s,"exp":now_s+3600}, signed RS256
 * over base64url(header).base64url(claims). Safe from many threads on one key. Writes
 * at most out_size bytes (NUL included) and returns TG_OK; TG_ERROR with err set when out
 * is too small or signing failed.
 */
int tg_vertex_assertion(const struct tg_vertex_key *key, int64_t now_s, char *out, size_t out_size,
                        char *err, size_t err_size);

/*
 * The token request's form body at now_s:
 * "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<jwt>" (the
 * JWT's characters need no escaping). Same returns as tg_vertex_assertion.
 */
int tg_vertex_token_request_body(const struct tg_vertex_key *key, int64_t now_s, char *out,
                                 size_t out_size, char *err, size_t err_size);

/* An access token and when it stops working. */
struct tg_vertex_token {
    char access_token[TG_VERTEX_MAX_TOKEN];
    int64_t expires_at; /* seconds since the epoch */
    int64_t lifetime_s; /* expires_in as granted */
};

/*
 * Reads the token endpoint's answer (len bytes of body, borrowed) to a request sent at
 * now_s. Success is HTTP 200 with {"access_token": non-empty printable ASCII without
 * spaces (it goes into a header), "expires_in": positive integer, "token_type":
 * "Bearer" (any case)}: fills *out and returns TG_OK. Otherwise TG_ERROR, *out cleared,
 * and err says why: the field missing or ill-typed, or for an error body
 * ({"error", "error_description"}) the HTTP status, the error code and its description
 * (printable ASCII only, capped), never the token or the body itself.
 */
int tg_vertex_token_parse(const char *body, size_t len, long http_status, int64_t now_s,
                          struct tg_vertex_token *out, char *err, size_t err_size);

/*
 * One account's current token, shared by threads. A token is handed out while
 * now + margin < expires_at, where margin is the cache's margin but at most half the
 * token's lifetime (so a short-lived token is still used). Threads that find it stale at
 * once all refresh; the last put wins.
 */
struct tg_vertex_token_cache {
    pthread_mutex_t lock;
    int64_t margin_s;
    bool has_token;
    struct tg_vertex_token token;
};

/* Prepares c, empty, with margin_s (TG_VERTEX_REFRESH_MARGIN_S is the usual). */
void tg_vertex_token_cache_init(struct tg_vertex_token_cache *c, int64_t margin_s);

/* Wipes the token and destroys the lock (not c itself). */
void tg_vertex_token_cache_release(struct tg_vertex_token_cache *c);

/*
 * TG_OK: the cached token is good at now_s; copied into out (out_size bytes, NUL
 * included). TG_DECLINED: none is (empty, within the margin, expired, or out too small):
 * fetch one and tg_vertex_token_cache_put it.
 */
int tg_vertex_token_cache_get(struct tg_vertex_token_cache *c, int64_t now_s, char *out,
                              size_t out_size);

/* Stores a copy of token (borrowed) as the current one. */
void tg_vertex_token_cache_put(struct tg_vertex_token_cache *c,
                               const struct tg_vertex_token *token);

/* Forgets the token (say, after the provider answered 401 to it). */
void tg_vertex_token_cache_clear(struct tg_vertex_token_cache *c);

#endif
