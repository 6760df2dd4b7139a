/*
 * vertex_token.c — the service-account JWT bearer flow for Vertex AI, minus the HTTP:
 * key files, RS256 assertions (OpenSSL 3's EVP_DigestSign), token answers, the token
 * cache. The only file of the Vertex provider that includes OpenSSL. The contract is in
 * vertex_token.h.
 */
#include "vertex_token.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto.h"

#define MIN_RSA_BITS 2048
#define MAX_PEM_BYTES 16384
#define MAX_CLAIMS_JSON 2048 /* the header or the claims, before base64url */

struct tg_vertex_key {
    char email[256];
    char key_id[129];
    char token_uri[512];
    char project[128];
    EVP_PKEY *pkey;
};

TG_PRINTF(3, 4) static int fail(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return TG_ERROR;
}

/* ---- the key file ---- */

/* Copies the string member name of obj into buf; TG_ERROR with err naming the field. */
static int string_field(json_t *obj, const char *name, bool required, char *buf, size_t buf_size,
                        char *err, size_t err_size)
{
    json_t *v = json_object_get(obj, name);
    buf[0] = '\0';
    if (v == NULL && !required)
        return TG_OK;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return fail(err, err_size, "service account key: \"%s\" is missing or not a string", name);
    if (json_string_length(v) >= buf_size)
        return fail(err, err_size, "service account key: \"%s\" is longer than %zu bytes", name,
                    buf_size - 1);
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    for (const char *c = buf; *c != '\0'; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
            return fail(err, err_size,
                        "service account key: \"%s\" holds a space or a character that is not "
                        "printable ASCII",
                        name);
    return TG_OK;
}

static bool token_uri_allowed(const char *uri)
{
    static const char *const loopback[] = {"http://localhost", "http://127.0.0.1", "http://[::1]"};
    if (strncmp(uri, "https://", 8) == 0)
        return uri[8] != '\0';
    for (size_t i = 0; i < TG_ARRAY_LEN(loopback); i++) {
        size_t n = strlen(loopback[i]);
        if (strncmp(uri, loopback[i], n) == 0 && (uri[n] == '\0' || uri[n] == ':' || uri[n] == '/'))
            return true;
    }
    return false;
}

/* A key file's key is never encrypted: without this, OpenSSL would ask the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int private_key(json_t *obj, struct tg_vertex_key *key, char *err, size_t err_size)
{
    json_t *pem = json_object_get(obj, "private_key");
    if (!json_is_string(pem) || json_string_length(pem) == 0)
        return fail(err, err_size,
                    "service account key: \"private_key\" is missing or not a string");
    if (json_string_length(pem) > MAX_PEM_BYTES)
        return fail(err, err_size, "service account key: \"private_key\" is longer than %d bytes",
                    MAX_PEM_BYTES);
    BIO *bio = BIO_new_mem_buf(json_string_value(pem), (int)json_string_length(pem));
    key->pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error(); /* a failure's reasons stay here, not in the next caller's queue */
    if (key->pkey == NULL || !EVP_PKEY_is_a(key->pkey, "RSA"))
        return fail(err, err_size,
                    "service account key: \"private_key\" is not a PEM RSA "
                    "private key");
    if (EVP_PKEY_get_bits(key->pkey) < MIN_RSA_BITS)
        return fail(err, err_size,
                    "service account key: \"private_key\" has %d bits, fewer than %d",
                    EVP_PKEY_get_bits(key->pkey), MIN_RSA_BITS);
    return TG_OK;
}

static int key_fields(json_t *obj, struct tg_vertex_key *key, char *err, size_t err_size)
{
    if (!json_is_object(obj))
        return fail(err, err_size, "service account key: not a JSON object");
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (type == NULL)
        return fail(err, err_size, "service account key: \"type\" is missing or not a string");
    if (strcmp(type, "service_account") != 0) {
        char shown[40];
        size_t n = 0;
        for (const char *c = type; *c != '\0' && n + 1 < sizeof(shown); c++)
            shown[n++] = (*c >= 0x20 && *c < 0x7f && *c != '"') ? *c : '?';
        shown[n] = '\0';
        return fail(err, err_size,
                    "service account key: \"type\" is \"%s\", not \"service_account\"", shown);
    }
    int rc = string_field(obj, "client_email", true, key->email, sizeof(key->email), err, err_size);
    if (rc == TG_OK)
        rc = string_field(obj, "private_key_id", true, key->key_id, sizeof(key->key_id), err,
                          err_size);
    if (rc == TG_OK)
        rc = string_field(obj, "token_uri", true, key->token_uri, sizeof(key->token_uri), err,
                          err_size);
    if (rc == TG_OK && !token_uri_allowed(key->token_uri))
        rc = fail(err, err_size,
                  "service account key: \"token_uri\" is not an https URL (http only to "
                  "localhost)");
    if (rc == TG_OK)
        rc = string_field(obj, "project_id", false, key->project, sizeof(key->project), err,
                          err_size);
    if (rc == TG_OK)
        rc = private_key(obj, key, err, err_size);
    return rc;
}

int tg_vertex_key_parse(const char *json_text, size_t len, struct tg_vertex_key **out, char *err,
                        size_t err_size)
{
    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    json_error_t jerr;
    json_t *obj = json_loadb(json_text, len, 0, &jerr);
    if (obj == NULL)
        /* jansson's text quotes the input near the error: only the position is safe */
        return fail(err, err_size, "service account key: not valid JSON (line %d, column %d)",
                    jerr.line, jerr.column);
    struct tg_vertex_key *key = calloc(1, sizeof(*key));
    int rc = key != NULL ? key_fields(obj, key, err, err_size)
                         : fail(err, err_size, "service account key: out of memory");
    json_decref(obj);
    if (rc != TG_OK) {
        tg_vertex_key_free(key);
        return rc;
    }
    *out = key;
    return TG_OK;
}

int tg_vertex_key_load(const char *path, struct tg_vertex_key **out, char *err, size_t err_size)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, err_size, "could not open service account key \"%s\": %s", path,
                    strerror(errno));
    char *buf = malloc(TG_VERTEX_MAX_KEY_FILE + 1);
    size_t len = buf != NULL ? fread(buf, 1, TG_VERTEX_MAX_KEY_FILE + 1, f) : 0;
    bool failed = buf == NULL || ferror(f);
    fclose(f);
    int rc;
    if (failed)
        rc = fail(err, err_size, "could not read service account key \"%s\"", path);
    else if (len > TG_VERTEX_MAX_KEY_FILE)
        rc = fail(err, err_size, "service account key \"%s\" is larger than %d bytes", path,
                  TG_VERTEX_MAX_KEY_FILE);
    else
        rc = tg_vertex_key_parse(buf, len, out, err, err_size);
    if (rc != TG_OK && !failed && len <= TG_VERTEX_MAX_KEY_FILE) {
        /* name the file too: the parse's message speaks of "service account key" only */
        char inner[256];
        snprintf(inner, sizeof(inner), "%s", err);
        const char *rest = strncmp(inner, "service account key: ", 21) == 0 ? inner + 21 : inner;
        snprintf(err, err_size, "service account key \"%s\": %s", path, rest);
    }
    if (buf != NULL) {
        OPENSSL_cleanse(buf, TG_VERTEX_MAX_KEY_FILE + 1);
        free(buf);
    }
    return rc;
}

void tg_vertex_key_free(struct tg_vertex_key *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

const char *tg_vertex_key_email(const struct tg_vertex_key *key)
{
    return key->email;
}

const char *tg_vertex_key_token_uri(const struct tg_vertex_key *key)
{
    return key->token_uri;
}

const char *tg_vertex_key_project(const struct tg_vertex_key *key)
{
    return key->project;
}

/* ---- the assertion ---- */

/* Appends base64url(JSON of obj) to out at *used; obj is stolen. */
static int append_b64_json(json_t *obj, char *out, size_t out_size, size_t *used)
{
    char json[MAX_CLAIMS_JSON];
    size_t n = obj != NULL ? json_dumpb(obj, json, sizeof(json), JSON_COMPACT) : 0;
    json_decref(obj);
    if (n == 0 || n >= sizeof(json))
        return TG_ERROR;
    int enc = tg_crypto_base64url((const unsigned char *)json, n, out + *used, out_size - *used);
    if (enc < 0)
        return TG_ERROR;
    *used += (size_t)enc;
    return TG_OK;
}

static int sign_rs256(EVP_PKEY *pkey, const char *input, size_t input_len, unsigned char *sig,
                      size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
              EVP_DigestSign(ctx, sig, sig_len, (const unsigned char *)input, input_len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok ? TG_OK : TG_ERROR;
}

int tg_vertex_assertion(const struct tg_vertex_key *key, int64_t now_s, char *out, size_t out_size,
                        char *err, size_t err_size)
{
    size_t used = 0;
    json_t *header = json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "kid", key->key_id);
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", key->email, "scope", TG_VERTEX_SCOPE,
                               "aud", key->token_uri, "iat", (json_int_t)now_s, "exp",
                               (json_int_t)(now_s + TG_VERTEX_ASSERTION_LIFETIME_S));
    int rc = append_b64_json(header, out, out_size, &used);
    if (rc == TG_OK && used + 1 < out_size)
        out[used++] = '.';
    else
        rc = TG_ERROR;
    if (rc == TG_OK)
        rc = append_b64_json(claims, out, out_size, &used);
    else
        json_decref(claims);
    if (rc != TG_OK) {
        if (out_size > 0)
            out[0] = '\0';
        return fail(err, err_size, "could not build the assertion: it needs more than %zu bytes",
                    out_size);
    }

    size_t sig_len = (size_t)EVP_PKEY_get_size(key->pkey);
    unsigned char *sig = malloc(sig_len);
    if (sig == NULL || sign_rs256(key->pkey, out, used, sig, &sig_len) != TG_OK) {
        free(sig);
        out[0] = '\0';
        return fail(err, err_size, "could not sign the assertion for \"%s\"", key->email);
    }
    rc = used + 1 < out_size ? TG_OK : TG_ERROR;
    int enc = -1;
    if (rc == TG_OK) {
        out[used++] = '.';
        enc = tg_crypto_base64url(sig, sig_len, out + used, out_size - used);
    }
    free(sig);
    if (enc < 0) {
        out[0] = '\0';
        return fail(err, err_size, "could not build the assertion: it needs more than %zu bytes",
                    out_size);
    }
    return TG_OK;
}

int tg_vertex_token_request_body(const struct tg_vertex_key *key, int64_t now_s, char *out,
                                 size_t out_size, char *err, size_t err_size)
{
    static const char prefix[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    if (out_size > 0)
        out[0] = '\0';
    if (out_size <= sizeof(prefix))
        return fail(err, err_size,
                    "could not build the token request: it needs more than %zu bytes", out_size);
    memcpy(out, prefix, sizeof(prefix));
    int rc = tg_vertex_assertion(key, now_s, out + sizeof(prefix) - 1,
                                 out_size - (sizeof(prefix) - 1), err, err_size);
    if (rc != TG_OK)
        out[0] = '\0';
    return rc;
}

/* ---- the token endpoint's answer ---- */

/* s (may be NULL) with only printable ASCII kept ('?' for the rest, '\'' for '"'), capped. */
static void printable(const char *s, char *buf, size_t buf_size)
{
    size_t n = 0;
    for (const char *c = s; c != NULL && *c != '\0' && n + 1 < buf_size; c++) {
        unsigned char u = (unsigned char)*c;
        buf[n++] = u == '"' ? '\'' : (u >= 0x20 && u < 0x7f) ? (char)u : '?';
    }
    buf[n] = '\0';
}

static int error_answer(json_t *doc, long http_status, char *err, size_t err_size)
{
    char code[64], description[200];
    printable(json_string_value(json_object_get(doc, "error")), code, sizeof(code));
    printable(json_string_value(json_object_get(doc, "error_description")), description,
              sizeof(description));
    if (code[0] == '\0')
        return fail(err, err_size, "token endpoint answered HTTP %ld without a token", http_status);
    if (description[0] == '\0')
        return fail(err, err_size, "token endpoint refused the assertion (HTTP %ld): %s",
                    http_status, code);
    return fail(err, err_size, "token endpoint refused the assertion (HTTP %ld): %s: \"%s\"",
                http_status, code, description);
}

static bool header_safe(const char *s)
{
    for (const char *c = s; *c != '\0'; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
            return false;
    return true;
}

static int token_fields(json_t *doc, int64_t now_s, struct tg_vertex_token *out, char *err,
                        size_t err_size)
{
    json_t *token = json_object_get(doc, "access_token");
    json_t *expires_in = json_object_get(doc, "expires_in");
    const char *token_type = json_string_value(json_object_get(doc, "token_type"));
    if (!json_is_string(token) || json_string_length(token) == 0)
        return fail(err, err_size, "token response: \"access_token\" is missing or not a string");
    if (json_string_length(token) >= sizeof(out->access_token))
        return fail(err, err_size, "token response: \"access_token\" is longer than %zu bytes",
                    sizeof(out->access_token) - 1);
    if (!header_safe(json_string_value(token)))
        return fail(err, err_size,
                    "token response: \"access_token\" holds a space or a "
                    "character that is not printable ASCII");
    if (!json_is_integer(expires_in) || json_integer_value(expires_in) <= 0 ||
        json_integer_value(expires_in) > 10 * 365 * 86400)
        return fail(err, err_size,
                    "token response: \"expires_in\" is missing or not a positive integer");
    if (token_type == NULL)
        return fail(err, err_size, "token response: \"token_type\" is missing or not a string");
    if (strcasecmp(token_type, "Bearer") != 0) {
        char shown[32];
        printable(token_type, shown, sizeof(shown));
        return fail(err, err_size, "token response: \"token_type\" is \"%s\", not \"Bearer\"",
                    shown);
    }
    memcpy(out->access_token, json_string_value(token), json_string_length(token) + 1);
    out->lifetime_s = json_integer_value(expires_in);
    out->expires_at = now_s + out->lifetime_s;
    return TG_OK;
}

int tg_vertex_token_parse(const char *body, size_t len, long http_status, int64_t now_s,
                          struct tg_vertex_token *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    if (err_size > 0)
        err[0] = '\0';
    json_t *doc = json_loadb(body, len, 0, NULL);
    int rc;
    if (!json_is_object(doc))
        rc = fail(err, err_size,
                  "token endpoint answered HTTP %ld with a body that is not a "
                  "JSON object",
                  http_status);
    else if (http_status != 200 || json_object_get(doc, "error") != NULL)
        rc = error_answer(doc, http_status, err, err_size);
    else
        rc = token_fields(doc, now_s, out, err, err_size);
    json_decref(doc);
    if (rc != TG_OK)
        OPENSSL_cleanse(out, sizeof(*out));
    return rc;
}

/* ---- the cache ---- */

void tg_vertex_token_cache_init(struct tg_vertex_token_cache *c, int64_t margin_s)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->margin_s = margin_s > 0 ? margin_s : 0;
}

void tg_vertex_token_cache_release(struct tg_vertex_token_cache *c)
{
    OPENSSL_cleanse(&c->token, sizeof(c->token));
    c->has_token = false;
    pthread_mutex_destroy(&c->lock);
}

int tg_vertex_token_cache_get(struct tg_vertex_token_cache *c, int64_t now_s, char *out,
                              size_t out_size)
{
    int rc = TG_DECLINED;
    pthread_mutex_lock(&c->lock);
    if (c->has_token) {
        int64_t margin = c->margin_s;
        if (margin > c->token.lifetime_s / 2)
            margin = c->token.lifetime_s / 2;
        size_t len = strlen(c->token.access_token);
        if (now_s + margin < c->token.expires_at && len < out_size) {
            memcpy(out, c->token.access_token, len + 1);
            rc = TG_OK;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void tg_vertex_token_cache_put(struct tg_vertex_token_cache *c, const struct tg_vertex_token *token)
{
    pthread_mutex_lock(&c->lock);
    c->token = *token;
    c->token.access_token[sizeof(c->token.access_token) - 1] = '\0';
    c->has_token = c->token.access_token[0] != '\0';
    pthread_mutex_unlock(&c->lock);
}

void tg_vertex_token_cache_clear(struct tg_vertex_token_cache *c)
{
    pthread_mutex_lock(&c->lock);
    OPENSSL_cleanse(&c->token, sizeof(c->token));
    c->has_token = false;
    pthread_mutex_unlock(&c->lock);
}
