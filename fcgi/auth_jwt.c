/*
 * auth_jwt.c — JWT issuers (loaded from the config, their JWKS file re-read
 * when it changes) and token verification; the keys, the algorithms and the
 * signature check are jwt_key.c's.
 *
 * The order of checks is deliberate: shape and size first (cheap, no parsing of
 * untrusted JSON beyond 1 KiB), then the header, then the key chosen by kid, then
 * the signature, and only a signed payload is parsed for its claims.
 */
#include "auth_jwt.h"

#include "config_field.h"
#include "crypto.h"
#include "jwt_key.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct jwks_cache {
    pthread_rwlock_t lock;
    struct timespec mtime; /* of the file the keys were read from */
    off_t size;
    struct tg_jwt_key *keys;
    size_t n_keys;
};

struct tg_jwt_issuer {
    char *issuer;
    char *audience;
    int leeway_s;
    struct tg_jwt_key *keys; /* from the config */
    size_t n_keys;
    char *jwks_file;         /* NULL: none */
    struct jwks_cache *jwks; /* mutable even in a const issuer: re-read on change */
    char *claim_user, *claim_group, *claim_groups, *claim_role;
    bool create_unknown; /* users and groups unknown to the database are created */
};

/* ---- small helpers ---- */

static void set_err(char *err, size_t err_size, const char *path, const char *fmt, ...)
    TG_PRINTF(4, 5);

static void set_err(char *err, size_t err_size, const char *path, const char *fmt, ...)
{
    int n = snprintf(err, err_size, "config: %s: ", path);
    if (n < 0 || (size_t)n >= err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, err_size - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- JWKS (RFC 7517) ---- */

static bool same_file(const struct stat *st, const struct jwks_cache *c)
{
    return st->st_mtim.tv_sec == c->mtime.tv_sec && st->st_mtim.tv_nsec == c->mtime.tv_nsec &&
           st->st_size == c->size;
}

/*
 * Re-reads the JWKS file when its mtime or size changed. A file that cannot be
 * read or parsed leaves the previous keys in place (an IdP's half-written file
 * must not lock everyone out); its mtime is remembered so it is not re-parsed on
 * every request.
 */
static void jwks_refresh(const struct tg_jwt_issuer *iss)
{
    struct jwks_cache *c = iss->jwks;
    struct stat st;
    if (stat(iss->jwks_file, &st) != 0)
        return;
    pthread_rwlock_rdlock(&c->lock);
    bool same = same_file(&st, c);
    pthread_rwlock_unlock(&c->lock);
    if (same)
        return;
    pthread_rwlock_wrlock(&c->lock);
    if (!same_file(&st, c)) {
        struct tg_jwt_key *keys = NULL;
        size_t n = 0;
        char err[256];
        if (tg_jwt_key_read_jwks(iss->jwks_file, &keys, &n, err, sizeof(err)) == TG_OK) {
            tg_jwt_key_free_all(c->keys, c->n_keys);
            c->keys = keys;
            c->n_keys = n;
        }
        c->mtime = st.st_mtim;
        c->size = st.st_size;
    }
    pthread_rwlock_unlock(&c->lock);
}

/* ---- loading ---- */

/* A string field, "$NAME" read from the environment; NULL (and err set) on failure. */
static char *get_str(json_t *obj, const char *key, const char *path, bool required,
                     const char *fallback, char *err, size_t err_size, bool *failed)
{
    char field[256];
    snprintf(field, sizeof(field), "%s.%s", path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) {
            set_err(err, err_size, field, "is required");
            *failed = true;
            return NULL;
        }
        return fallback != NULL ? strdup(fallback) : NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        set_err(err, err_size, field, "must be a non-empty string");
        *failed = true;
        return NULL;
    }
    const char *s = tg_config_field_resolve_env(json_string_value(v), field, err, err_size);
    if (s == NULL) {
        *failed = true;
        return NULL;
    }
    char *copy = strdup(s);
    if (copy == NULL) {
        set_err(err, err_size, field, "out of memory");
        *failed = true;
    }
    return copy;
}

static bool unknown_field(json_t *obj, const char *path, const char *const *known, char *err,
                          size_t err_size)
{
    return tg_config_field_check_known(obj, path, known, err, err_size) != TG_OK;
}

static int load_key(json_t *obj, const char *path, struct tg_jwt_key *k, char *err, size_t err_size)
{
    static const char *const known[] = {"kid", "alg", "secret", "pem_file", NULL};
    char field[256];
    bool failed = false;
    if (!json_is_object(obj)) {
        set_err(err, err_size, path, "must be an object");
        return TG_ERROR;
    }
    if (unknown_field(obj, path, known, err, err_size))
        return TG_ERROR;
    k->kid = get_str(obj, "kid", path, true, NULL, err, err_size, &failed);
    char *alg = failed ? NULL : get_str(obj, "alg", path, true, NULL, err, err_size, &failed);
    if (failed)
        return TG_ERROR;
    k->alg = tg_jwt_key_alg(alg);
    if (k->alg < 0) {
        snprintf(field, sizeof(field), "%s.alg", path);
        set_err(err, err_size, field,
                "unsupported algorithm \"%s\" (supported: HS256, HS384, HS512, RS256, RS384, "
                "RS512, ES256, ES384)",
                alg);
        free(alg);
        return TG_ERROR;
    }
    free(alg);
    json_t *secret = json_object_get(obj, "secret");
    json_t *pem = json_object_get(obj, "pem_file");
    if (tg_jwt_key_alg_is_hmac(k->alg)) {
        if (pem != NULL || secret == NULL) {
            set_err(err, err_size, path, "%s takes a \"secret\", not a \"pem_file\"",
                    tg_jwt_key_alg_name(k->alg));
            return TG_ERROR;
        }
        char *s = get_str(obj, "secret", path, true, NULL, err, err_size, &failed);
        if (failed)
            return TG_ERROR;
        k->secret = (unsigned char *)s;
        k->secret_len = strlen(s);
        if (k->secret_len < (size_t)tg_jwt_key_alg_bits(k->alg) / 8) {
            snprintf(field, sizeof(field), "%s.secret", path);
            set_err(err, err_size, field, "must be at least %d bytes for %s",
                    tg_jwt_key_alg_bits(k->alg) / 8, tg_jwt_key_alg_name(k->alg));
            return TG_ERROR;
        }
        return TG_OK;
    }
    if (secret != NULL || pem == NULL) {
        set_err(err, err_size, path, "%s takes a \"pem_file\", not a \"secret\"",
                tg_jwt_key_alg_name(k->alg));
        return TG_ERROR;
    }
    char *file = get_str(obj, "pem_file", path, true, NULL, err, err_size, &failed);
    if (failed)
        return TG_ERROR;
    snprintf(field, sizeof(field), "%s.pem_file", path);
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        set_err(err, err_size, field, "could not open \"%s\": %s", file, strerror(errno));
        free(file);
        return TG_ERROR;
    }
    k->pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (k->pkey == NULL || !tg_jwt_key_fits(k->pkey, k->alg)) {
        set_err(err, err_size, field, "\"%s\" is not a %s public key for %s", file,
                tg_jwt_key_alg_is_ec(k->alg) ? "PEM EC" : "PEM RSA (2048 bits or more)",
                tg_jwt_key_alg_name(k->alg));
        free(file);
        return TG_ERROR;
    }
    free(file);
    return TG_OK;
}

static int load_keys(json_t *obj, const char *path, struct tg_jwt_issuer *iss, char *err,
                     size_t err_size)
{
    json_t *list = json_object_get(obj, "keys");
    char field[224];
    snprintf(field, sizeof(field), "%s.keys", path);
    if (list == NULL)
        return TG_OK;
    if (!json_is_array(list)) {
        set_err(err, err_size, field, "must be an array");
        return TG_ERROR;
    }
    iss->keys = calloc(json_array_size(list) + 1, sizeof(*iss->keys));
    if (iss->keys == NULL) {
        set_err(err, err_size, field, "out of memory");
        return TG_ERROR;
    }
    size_t i;
    json_t *key;
    json_array_foreach(list, i, key) {
        snprintf(field, sizeof(field), "%s.keys[%zu]", path, i);
        struct tg_jwt_key *k = &iss->keys[iss->n_keys++];
        if (load_key(key, field, k, err, err_size) != TG_OK)
            return TG_ERROR;
        for (size_t j = 0; j + 1 < iss->n_keys; j++) {
            if (strcmp(iss->keys[j].kid, k->kid) == 0) {
                snprintf(field, sizeof(field), "%s.keys[%zu].kid", path, i);
                set_err(err, err_size, field, "\"%s\" is already the kid of another key", k->kid);
                return TG_ERROR;
            }
        }
    }
    return TG_OK;
}

static int load_claims(json_t *obj, const char *path, struct tg_jwt_issuer *iss, char *err,
                       size_t err_size)
{
    static const char *const known[] = {"user", "group", "groups", "role", NULL};
    char field[224];
    bool failed = false;
    snprintf(field, sizeof(field), "%s.claims", path);
    json_t *claims = json_object_get(obj, "claims");
    if (claims != NULL && !json_is_object(claims)) {
        set_err(err, err_size, field, "must be an object");
        return TG_ERROR;
    }
    if (claims != NULL && unknown_field(claims, field, known, err, err_size))
        return TG_ERROR;
    iss->claim_user = get_str(claims, "user", field, false, "sub", err, err_size, &failed);
    if (!failed)
        iss->claim_group =
            get_str(claims, "group", field, false, "group_id", err, err_size, &failed);
    if (!failed)
        iss->claim_groups =
            get_str(claims, "groups", field, false, "groups", err, err_size, &failed);
    if (!failed)
        iss->claim_role = get_str(claims, "role", field, false, "role", err, err_size, &failed);
    if (!failed && (iss->claim_user == NULL || iss->claim_group == NULL ||
                    iss->claim_groups == NULL || iss->claim_role == NULL)) {
        set_err(err, err_size, field, "out of memory");
        failed = true;
    }
    return failed ? TG_ERROR : TG_OK;
}

int tg_jwt_issuer_load(json_t *obj, const char *path, struct tg_jwt_issuer **out, char *err,
                       size_t err_size)
{
    static const char *const known[] = {"issuer",    "audience", "leeway_s",       "keys",
                                        "jwks_file", "claims",   "create_unknown", NULL};
    char field[224];
    bool failed = false;
    *out = NULL;
    err[0] = '\0';
    if (!json_is_object(obj)) {
        set_err(err, err_size, path, "must be an object");
        return TG_ERROR;
    }
    if (unknown_field(obj, path, known, err, err_size))
        return TG_ERROR;
    struct tg_jwt_issuer *iss = calloc(1, sizeof(*iss));
    if (iss == NULL) {
        set_err(err, err_size, path, "out of memory");
        return TG_ERROR;
    }
    iss->issuer = get_str(obj, "issuer", path, true, NULL, err, err_size, &failed);
    if (!failed)
        iss->audience = get_str(obj, "audience", path, true, NULL, err, err_size, &failed);
    iss->leeway_s = 30;
    json_t *leeway = json_object_get(obj, "leeway_s");
    if (!failed && leeway != NULL) {
        snprintf(field, sizeof(field), "%s.leeway_s", path);
        if (!json_is_integer(leeway) || json_integer_value(leeway) < 0 ||
            json_integer_value(leeway) > TG_JWT_MAX_LEEWAY_S) {
            set_err(err, err_size, field, "must be an integer between 0 and %d",
                    TG_JWT_MAX_LEEWAY_S);
            failed = true;
        } else {
            iss->leeway_s = (int)json_integer_value(leeway);
        }
    }
    json_t *create = json_object_get(obj, "create_unknown");
    if (!failed && create != NULL && !json_is_boolean(create)) {
        set_err(err, err_size, path, "create_unknown must be true or false");
        failed = true;
    }
    iss->create_unknown = json_is_true(create);
    if (!failed)
        failed = load_keys(obj, path, iss, err, err_size) != TG_OK;
    if (!failed)
        failed = load_claims(obj, path, iss, err, err_size) != TG_OK;
    if (!failed && json_object_get(obj, "jwks_file") != NULL) {
        iss->jwks_file = get_str(obj, "jwks_file", path, true, NULL, err, err_size, &failed);
        iss->jwks = failed ? NULL : calloc(1, sizeof(*iss->jwks));
        if (!failed && iss->jwks == NULL) {
            set_err(err, err_size, path, "out of memory");
            failed = true;
        }
        if (!failed && pthread_rwlock_init(&iss->jwks->lock, NULL) != 0) {
            free(iss->jwks);
            iss->jwks = NULL;
            set_err(err, err_size, path, "could not create a lock");
            failed = true;
        }
        struct stat st;
        char problem[384];
        snprintf(field, sizeof(field), "%s.jwks_file", path);
        if (!failed && stat(iss->jwks_file, &st) != 0) {
            set_err(err, err_size, field, "could not read \"%s\": %s", iss->jwks_file,
                    strerror(errno));
            failed = true;
        } else if (!failed &&
                   tg_jwt_key_read_jwks(iss->jwks_file, &iss->jwks->keys, &iss->jwks->n_keys,
                                        problem, sizeof(problem)) != TG_OK) {
            set_err(err, err_size, field, "%s", problem);
            failed = true;
        } else if (!failed) {
            iss->jwks->mtime = st.st_mtim;
            iss->jwks->size = st.st_size;
        }
    }
    if (!failed && iss->n_keys == 0 && iss->jwks_file == NULL) {
        set_err(err, err_size, path, "needs \"keys\" or a \"jwks_file\"");
        failed = true;
    }
    if (failed) {
        tg_jwt_issuer_free(iss);
        return TG_ERROR;
    }
    *out = iss;
    return TG_OK;
}

void tg_jwt_issuer_free(struct tg_jwt_issuer *iss)
{
    if (iss == NULL)
        return;
    free(iss->issuer);
    free(iss->audience);
    tg_jwt_key_free_all(iss->keys, iss->n_keys);
    free(iss->jwks_file);
    if (iss->jwks != NULL) {
        tg_jwt_key_free_all(iss->jwks->keys, iss->jwks->n_keys);
        pthread_rwlock_destroy(&iss->jwks->lock);
        free(iss->jwks);
    }
    free(iss->claim_user);
    free(iss->claim_group);
    free(iss->claim_groups);
    free(iss->claim_role);
    free(iss);
}

const char *tg_jwt_issuer_name(const struct tg_jwt_issuer *iss)
{
    return iss->issuer;
}

/* ---- verifying ---- */

/* Copies a string claim into dst; false when it does not fit. */
static bool copy_claim(char *dst, size_t dst_size, const char *src)
{
    size_t len = strlen(src);
    if (len >= dst_size)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

static const char *check_claims(const struct tg_jwt_issuer *iss, json_t *claims, int64_t now_s,
                                struct tg_jwt_identity *out)
{
    json_t *exp = json_object_get(claims, "exp");
    if (!json_is_number(exp))
        return "token has no exp";
    if (!(json_number_value(exp) + iss->leeway_s > (double)now_s))
        return "token expired";
    json_t *nbf = json_object_get(claims, "nbf");
    if (nbf != NULL &&
        (!json_is_number(nbf) || !(json_number_value(nbf) - iss->leeway_s <= (double)now_s)))
        return "token not yet valid";
    const char *tok_iss = json_string_value(json_object_get(claims, "iss"));
    if (tok_iss == NULL || strcmp(tok_iss, iss->issuer) != 0)
        return "wrong iss";
    json_t *aud = json_object_get(claims, "aud");
    bool aud_ok = json_is_string(aud) && strcmp(json_string_value(aud), iss->audience) == 0;
    size_t i;
    json_t *a;
    if (json_is_array(aud)) {
        json_array_foreach(aud, i, a) {
            if (json_is_string(a) && strcmp(json_string_value(a), iss->audience) == 0)
                aud_ok = true;
        }
    }
    if (!aud_ok)
        return "wrong aud";
    const char *user = json_string_value(json_object_get(claims, iss->claim_user));
    if (user == NULL || user[0] == '\0')
        return "token has no user claim";
    if (!copy_claim(out->user_id, sizeof(out->user_id), user))
        return "claim too long";
    const char *group = json_string_value(json_object_get(claims, iss->claim_group));
    if (group == NULL) {
        json_t *groups = json_object_get(claims, iss->claim_groups);
        if (json_is_array(groups))
            group = json_string_value(json_array_get(groups, 0));
    }
    if (group != NULL && !copy_claim(out->group_id, sizeof(out->group_id), group))
        return "claim too long";
    const char *role = json_string_value(json_object_get(claims, iss->claim_role));
    if (role != NULL && !copy_claim(out->role, sizeof(out->role), role))
        return "claim too long";
    return NULL;
}

/* The checks after the shape: header, key, signature, claims. NULL when all pass. */
static const char *verify_parts(const struct tg_jwt_issuer *iss, const char *token,
                                const char *dot1, const char *dot2, int64_t now_s,
                                struct tg_jwt_identity *out)
{
    size_t header_b64 = (size_t)(dot1 - token);
    if (header_b64 > (TG_JWT_MAX_HEADER * 4 + 2) / 3)
        return "header too large";
    unsigned char header_buf[TG_JWT_MAX_HEADER + 4];
    long header_len = tg_crypto_base64url_decode(token, header_b64, header_buf);
    if (header_len < 0)
        return "token is not base64url";
    json_error_t jerr;
    json_t *header =
        json_loadb((const char *)header_buf, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(header)) {
        json_decref(header);
        return "header is not a JSON object";
    }
    const char *reason = NULL;
    const char *alg = json_string_value(json_object_get(header, "alg"));
    json_t *kid_v = json_object_get(header, "kid");
    const char *kid = json_string_value(kid_v);
    if (alg == NULL)
        reason = "header has no alg";
    else if (json_object_get(header, "jwk") != NULL || json_object_get(header, "jku") != NULL ||
             json_object_get(header, "x5u") != NULL || json_object_get(header, "x5c") != NULL)
        reason = "header names its own key";
    else if (json_object_get(header, "crit") != NULL)
        reason = "header names unsupported extensions";
    else if (kid_v != NULL && kid == NULL)
        reason = "unknown kid";
    if (reason != NULL) {
        json_decref(header);
        return reason;
    }

    /* the key, under the JWKS read lock so a reload cannot free it mid-use */
    if (iss->jwks != NULL) {
        jwks_refresh(iss);
        pthread_rwlock_rdlock(&iss->jwks->lock);
    }
    const struct tg_jwt_key *key = NULL;
    size_t n_jwks = iss->jwks != NULL ? iss->jwks->n_keys : 0;
    if (kid != NULL) {
        key = tg_jwt_key_find(iss->keys, iss->n_keys, kid);
        if (key == NULL && iss->jwks != NULL)
            key = tg_jwt_key_find(iss->jwks->keys, n_jwks, kid);
        if (key == NULL)
            reason = "unknown kid";
    } else if (iss->n_keys + n_jwks == 1) {
        key = iss->n_keys == 1 ? &iss->keys[0] : &iss->jwks->keys[0];
    } else {
        reason = "token has no kid";
    }
    if (key != NULL && strcmp(alg, tg_jwt_key_alg_name(key->alg)) != 0)
        reason = "alg does not match the key";
    if (reason == NULL) {
        const char *sig_b64 = dot2 + 1;
        size_t sig_len = 0;
        unsigned char *sig = tg_crypto_base64url_decode_alloc(sig_b64, strlen(sig_b64), &sig_len);
        if (sig == NULL)
            reason = "token is not base64url";
        else if (!tg_jwt_key_verify(key, token, (size_t)(dot2 - token), sig, sig_len))
            reason = "bad signature";
        free(sig);
    }
    if (iss->jwks != NULL)
        pthread_rwlock_unlock(&iss->jwks->lock);
    json_decref(header);
    if (reason != NULL)
        return reason;

    size_t payload_len = 0;
    unsigned char *payload =
        tg_crypto_base64url_decode_alloc(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload_len);
    if (payload == NULL)
        return "token is not base64url";
    json_t *claims = json_loadb((const char *)payload, payload_len, JSON_REJECT_DUPLICATES, &jerr);
    free(payload);
    if (!json_is_object(claims))
        reason = "payload is not a JSON object";
    else
        reason = check_claims(iss, claims, now_s, out);
    json_decref(claims);
    return reason;
}

int tg_jwt_verify(const struct tg_jwt_issuer *iss, const char *token, int64_t now_s,
                  struct tg_jwt_identity *out, char *reason, size_t reason_size)
{
    memset(out, 0, sizeof(*out));
    const char *why = NULL;
    size_t len = strnlen(token, TG_JWT_MAX_TOKEN + 1);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 =
        dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (len > TG_JWT_MAX_TOKEN)
        why = "token too large";
    else if (dot1 == NULL || dot2 == NULL || dot1 == token || dot2 == dot1 + 1 || dot2[1] == '\0' ||
             strchr(dot2 + 1, '.') != NULL)
        why = "token is not a compact JWS";
    else if (strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                           "0123456789-_.") != len)
        why = "token is not base64url";
    else
        why = verify_parts(iss, token, dot1, dot2, now_s, out);
    if (why == NULL)
        return TG_OK;
    memset(out, 0, sizeof(*out));
    snprintf(reason, reason_size, "%s", why);
    return TG_DECLINED;
}

bool tg_jwt_issuer_creates_unknown(const struct tg_jwt_issuer *iss)
{
    return iss->create_unknown;
}

/* The unverified "iss" of token's payload into out ("" when there is none). */
static void peek_issuer(const char *token, char *out, size_t out_size)
{
    out[0] = '\0';
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL)
        return;
    size_t payload_len = 0;
    unsigned char *payload =
        tg_crypto_base64url_decode_alloc(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload_len);
    if (payload == NULL)
        return;
    json_error_t jerr;
    json_t *claims = json_loadb((const char *)payload, payload_len, 0, &jerr);
    free(payload);
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (iss != NULL)
        snprintf(out, out_size, "%s", iss);
    json_decref(claims);
}

int tg_jwt_verify_any(struct tg_jwt_issuer *const *issuers, size_t n, const char *token,
                      int64_t now_s, struct tg_jwt_identity *out,
                      const struct tg_jwt_issuer **issuer, char *reason, size_t reason_size)
{
    *issuer = NULL;
    memset(out, 0, sizeof(*out));
    if (n == 0 || strnlen(token, TG_JWT_MAX_TOKEN + 1) > TG_JWT_MAX_TOKEN) {
        snprintf(reason, reason_size, "%s", n == 0 ? "no issuer configured" : "token too large");
        return TG_DECLINED;
    }
    const struct tg_jwt_issuer *chosen = issuers[0];
    if (n > 1) {
        char name[512];
        peek_issuer(token, name, sizeof(name));
        chosen = NULL;
        for (size_t i = 0; i < n && chosen == NULL; i++)
            if (strcmp(issuers[i]->issuer, name) == 0)
                chosen = issuers[i];
        if (chosen == NULL) {
            snprintf(reason, reason_size, "wrong iss");
            return TG_DECLINED;
        }
    }
    *issuer = chosen;
    return tg_jwt_verify(chosen, token, now_s, out, reason, reason_size);
}
