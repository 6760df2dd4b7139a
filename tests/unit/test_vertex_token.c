/*
 * test_vertex_token.c — the service-account flow for Vertex AI without the HTTP call.
 *
 * The group setup makes a 2048-bit RSA key with OpenSSL and writes a service-account key
 * file around it; the assertion built from it is checked as Google would: split, its
 * header and claims decoded, its RS256 signature verified with the public key. Bad key
 * files are variations of the good one. Token answers and the cache are checked with the
 * time passed in. No key material comes from the tree: nothing secret is checked in.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "providers/vertex_token.h"
#include "unit.h"

#define NOW 1900000000
#define TOKEN_URI "https://oauth2.googleapis.com/token"
#define EMAIL "tollgate@proj-1.iam.gserviceaccount.com"

static EVP_PKEY *rsa_key;   /* the account's key */
static char *rsa_pem;       /* its PKCS#8 PEM */
static char *small_pem;     /* a 1024-bit RSA key */
static char *ec_pem;        /* a P-256 key */
static char *encrypted_pem; /* the account's key under a passphrase */
static char tmp_dir[] = "/tmp/tg-vertex-XXXXXX";

static char *pem_of(EVP_PKEY *pkey, const char *passphrase)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey,
                                              passphrase != NULL ? EVP_aes_256_cbc() : NULL, NULL,
                                              0, NULL, (void *)passphrase),
                     1);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    char *pem = strndup(data, (size_t)len);
    BIO_free(bio);
    return pem;
}

static int setup_keys(void **state)
{
    (void)state;
    rsa_key = EVP_RSA_gen(2048);
    assert_non_null(rsa_key);
    rsa_pem = pem_of(rsa_key, NULL);
    encrypted_pem = pem_of(rsa_key, "passphrase");
    EVP_PKEY *small = EVP_RSA_gen(1024);
    small_pem = pem_of(small, NULL);
    EVP_PKEY_free(small);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    ec_pem = pem_of(ec, NULL);
    EVP_PKEY_free(ec);
    assert_non_null(mkdtemp(tmp_dir));
    return 0;
}

static int teardown_keys(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    free(rsa_pem);
    free(small_pem);
    free(ec_pem);
    free(encrypted_pem);
    rmdir(tmp_dir);
    return 0;
}

/* The good key file's JSON, as a new object to vary. */
static json_t *good_key_json(void)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "type", "service_account", "project_id",
                     "proj-1", "private_key_id", "0123456789abcdef", "private_key", rsa_pem,
                     "client_email", EMAIL, "client_id", "1234567890", "token_uri", TOKEN_URI);
}

/* Writes doc (stolen) to tmp_dir/name and returns the path (malloc'd). */
static char *write_key_file(const char *name, json_t *doc)
{
    char *path = unit_path(tmp_dir, name);
    assert_int_equal(json_dump_file(doc, path, JSON_INDENT(2)), 0);
    json_decref(doc);
    return path;
}

static struct tg_vertex_key *load_good_key(void)
{
    char *path = write_key_file("good.json", good_key_json());
    struct tg_vertex_key *key = NULL;
    char err[256];
    int rc = tg_vertex_key_load(path, &key, err, sizeof(err));
    if (rc != TG_OK)
        fail_msg("%s", err);
    unlink(path);
    free(path);
    return key;
}

static json_t *decode_segment(const char *seg, size_t len)
{
    size_t out_len;
    unsigned char *raw = tg_crypto_base64url_decode_alloc(seg, len, &out_len);
    assert_non_null(raw);
    json_t *doc = json_loadb((const char *)raw, out_len, 0, NULL);
    free(raw);
    assert_non_null(doc);
    return doc;
}

/* ---- the assertion ---- */

static void test_assertion_verifies(void **state)
{
    (void)state;
    struct tg_vertex_key *key = load_good_key();
    assert_string_equal(tg_vertex_key_email(key), EMAIL);
    assert_string_equal(tg_vertex_key_token_uri(key), TOKEN_URI);
    assert_string_equal(tg_vertex_key_project(key), "proj-1");

    char jwt[TG_VERTEX_MAX_ASSERTION];
    char err[256];
    assert_int_equal(tg_vertex_assertion(key, NOW, jwt, sizeof(jwt), err, sizeof(err)), TG_OK);
    const char *dot1 = strchr(jwt, '.');
    assert_non_null(dot1);
    const char *dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));
    /* base64url only: the form body needs no escaping */
    assert_int_equal(
        strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
        strlen(jwt));

    json_t *header = decode_segment(jwt, (size_t)(dot1 - jwt));
    json_t *want_header =
        json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "kid", "0123456789abcdef");
    assert_true(json_equal(header, want_header));
    json_t *claims = decode_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    json_t *want_claims =
        json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", EMAIL, "scope",
                  "https://www.googleapis.com/auth/cloud-platform", "aud", TOKEN_URI, "iat",
                  (json_int_t)NOW, "exp", (json_int_t)NOW + 3600);
    assert_true(json_equal(claims, want_claims));

    size_t sig_len;
    unsigned char *sig = tg_crypto_base64url_decode_alloc(dot2 + 1, strlen(dot2 + 1), &sig_len);
    assert_non_null(sig);
    assert_int_equal(sig_len, 256);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, rsa_key), 1);
    assert_int_equal(
        EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
    /* and a changed claim does not verify */
    char tampered[TG_VERTEX_MAX_ASSERTION];
    memcpy(tampered, jwt, strlen(jwt) + 1);
    tampered[dot1 - jwt + 5] ^= 1;
    EVP_MD_CTX_reset(ctx);
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, rsa_key), 1);
    assert_int_not_equal(
        EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)tampered, (size_t)(dot2 - jwt)),
        1);
    EVP_MD_CTX_free(ctx);
    free(sig);

    json_decref(header);
    json_decref(want_header);
    json_decref(claims);
    json_decref(want_claims);
    tg_vertex_key_free(key);
}

static void test_request_body(void **state)
{
    (void)state;
    struct tg_vertex_key *key = load_good_key();
    char body[TG_VERTEX_MAX_ASSERTION + 128];
    char jwt[TG_VERTEX_MAX_ASSERTION];
    char err[256];
    assert_int_equal(tg_vertex_token_request_body(key, NOW, body, sizeof(body), err, sizeof(err)),
                     TG_OK);
    assert_int_equal(tg_vertex_assertion(key, NOW, jwt, sizeof(jwt), err, sizeof(err)), TG_OK);
    static const char prefix[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    assert_memory_equal(body, prefix, sizeof(prefix) - 1);
    /* RS256 with PKCS#1 v1.5 is deterministic: the same claims give the same JWT */
    assert_string_equal(body + sizeof(prefix) - 1, jwt);

    /* too small a buffer fails cleanly, leaving an empty string */
    char small[300];
    assert_int_equal(tg_vertex_assertion(key, NOW, small, sizeof(small), err, sizeof(err)),
                     TG_ERROR);
    assert_string_equal(small, "");
    assert_string_equal(err, "could not build the assertion: it needs more than 300 bytes");
    assert_int_equal(tg_vertex_token_request_body(key, NOW, small, 50, err, sizeof(err)), TG_ERROR);
    assert_int_equal(tg_vertex_token_request_body(key, NOW, small, 200, err, sizeof(err)),
                     TG_ERROR);
    assert_string_equal(small, "");
    tg_vertex_key_free(key);
}

/* The assertion is signed from many threads with one key (run under ASan). */
static void *sign_loop(void *arg)
{
    struct tg_vertex_key *key = arg;
    char jwt[TG_VERTEX_MAX_ASSERTION];
    char err[128];
    for (int i = 0; i < 20; i++)
        if (tg_vertex_assertion(key, NOW + i, jwt, sizeof(jwt), err, sizeof(err)) != TG_OK)
            return (void *)1;
    return NULL;
}

static void test_assertion_threads(void **state)
{
    (void)state;
    struct tg_vertex_key *key = load_good_key();
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, sign_loop, key), 0);
    for (int i = 0; i < 4; i++) {
        void *result;
        assert_int_equal(pthread_join(threads[i], &result), 0);
        assert_null(result);
    }
    tg_vertex_key_free(key);
}

/* ---- bad key files ---- */

struct bad_key {
    const char *field;
    enum { SET_STRING, SET_INT, REMOVE } how;
    const char *value; /* SET_STRING; "@small", "@ec", "@encrypted": generated PEMs */
    const char *want;
};

static void test_bad_key_files(void **state)
{
    (void)state;
    static const struct bad_key cases[] = {
        {"type", REMOVE, NULL, "\"type\" is missing or not a string"},
        {"type", SET_STRING, "authorized_user",
         "\"type\" is \"authorized_user\", not "
         "\"service_account\""},
        {"client_email", REMOVE, NULL, "\"client_email\" is missing or not a string"},
        {"client_email", SET_INT, NULL, "\"client_email\" is missing or not a string"},
        {"client_email", SET_STRING, "a b@c",
         "\"client_email\" holds a space or a character "
         "that is not printable ASCII"},
        {"private_key_id", SET_STRING, "", "\"private_key_id\" is missing or not a string"},
        {"token_uri", REMOVE, NULL, "\"token_uri\" is missing or not a string"},
        {"token_uri", SET_STRING, "http://oauth2.example/token",
         "\"token_uri\" is not an https URL (http only to localhost)"},
        {"token_uri", SET_STRING, "http://localhost.evil/token",
         "\"token_uri\" is not an https URL (http only to localhost)"},
        {"project_id", SET_INT, NULL, "\"project_id\" is missing or not a string"},
        {"private_key", REMOVE, NULL, "\"private_key\" is missing or not a string"},
        {"private_key", SET_STRING,
         "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
         "\"private_key\" is not a PEM RSA private key"},
        {"private_key", SET_STRING, "@ec", "\"private_key\" is not a PEM RSA private key"},
        {"private_key", SET_STRING, "@encrypted", "\"private_key\" is not a PEM RSA private key"},
        {"private_key", SET_STRING, "@small", "\"private_key\" has 1024 bits, fewer than 2048"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        const struct bad_key *c = &cases[i];
        json_t *doc = good_key_json();
        if (c->how == REMOVE) {
            json_object_del(doc, c->field);
        } else if (c->how == SET_INT) {
            json_object_set_new(doc, c->field, json_integer(7));
        } else {
            const char *v = c->value;
            if (strcmp(v, "@small") == 0)
                v = small_pem;
            else if (strcmp(v, "@ec") == 0)
                v = ec_pem;
            else if (strcmp(v, "@encrypted") == 0)
                v = encrypted_pem;
            json_object_set_new(doc, c->field, json_string(v));
        }
        char *path = write_key_file("bad.json", doc);
        struct tg_vertex_key *key = (struct tg_vertex_key *)1;
        char err[512], want[512];
        int rc = tg_vertex_key_load(path, &key, err, sizeof(err));
        snprintf(want, sizeof(want), "service account key \"%s\": %s", path, c->want);
        if (rc != TG_ERROR || strcmp(err, want) != 0)
            fail_msg("case %zu: rc %d\n  want %s\n  got  %s", i, rc, want, err);
        assert_null(key);
        assert_null(strstr(err, "BEGIN"));
        unlink(path);
        free(path);
    }
}

static void test_bad_key_text(void **state)
{
    (void)state;
    struct tg_vertex_key *key = NULL;
    char err[256];
    /* jansson would quote the text near the error: only the position is reported */
    const char *broken = "{\"private_key\": \"-----BEGIN PRIVATE KEY-----\nMIIsecret";
    assert_int_equal(tg_vertex_key_parse(broken, strlen(broken), &key, err, sizeof(err)), TG_ERROR);
    assert_null(strstr(err, "MIIsecret"));
    assert_non_null(strstr(err, "not valid JSON"));
    assert_int_equal(tg_vertex_key_parse("[]", 2, &key, err, sizeof(err)), TG_ERROR);
    assert_string_equal(err, "service account key: not a JSON object");
    assert_null(key);

    char *missing = unit_path(tmp_dir, "missing.json");
    assert_int_equal(tg_vertex_key_load(missing, &key, err, sizeof(err)), TG_ERROR);
    char want[512];
    snprintf(want, sizeof(want),
             "could not open service account key \"%s\": No such file or "
             "directory",
             missing);
    assert_string_equal(err, want);
    free(missing);

    /* a file over the cap is refused before parsing */
    char *big = unit_path(tmp_dir, "big.json");
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    for (int i = 0; i < TG_VERTEX_MAX_KEY_FILE / 8 + 1; i++)
        fputs("        ", f);
    fclose(f);
    assert_int_equal(tg_vertex_key_load(big, &key, err, sizeof(err)), TG_ERROR);
    snprintf(want, sizeof(want), "service account key \"%s\" is larger than 65536 bytes", big);
    assert_string_equal(err, want);
    unlink(big);
    free(big);
    tg_vertex_key_free(NULL);
}

/* ---- token answers ---- */

static int parse(const char *body, long status, struct tg_vertex_token *t, char *err,
                 size_t err_size)
{
    return tg_vertex_token_parse(body, strlen(body), status, NOW, t, err, err_size);
}

static void test_token_good(void **state)
{
    (void)state;
    struct tg_vertex_token t;
    char err[256];
    assert_int_equal(parse("{\"access_token\": \"ya29.c.Kp8Babc-_DEF\", \"expires_in\": 3599,"
                           " \"token_type\": \"Bearer\"}",
                           200, &t, err, sizeof(err)),
                     TG_OK);
    assert_string_equal(t.access_token, "ya29.c.Kp8Babc-_DEF");
    assert_int_equal(t.expires_at, NOW + 3599);
    assert_int_equal(t.lifetime_s, 3599);
    assert_int_equal(parse("{\"access_token\": \"x\", \"expires_in\": 60, \"token_type\":"
                           " \"bearer\", \"id_token\": \"y\"}",
                           200, &t, err, sizeof(err)),
                     TG_OK);
}

static void test_token_bad(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        long status;
        const char *want;
    } cases[] = {
        {"{\"expires_in\": 3599, \"token_type\": \"Bearer\"}", 200,
         "token response: \"access_token\" is missing or not a string"},
        {"{\"access_token\": 5, \"expires_in\": 3599, \"token_type\": \"Bearer\"}", 200,
         "token response: \"access_token\" is missing or not a string"},
        {"{\"access_token\": \"ab\\r\\nX-Evil: 1\", \"expires_in\": 3599, \"token_type\": "
         "\"Bearer\"}",
         200,
         "token response: \"access_token\" holds a space or a character that is not printable "
         "ASCII"},
        {"{\"access_token\": \"secret-token\", \"expires_in\": \"3599\", \"token_type\": "
         "\"Bearer\"}",
         200, "token response: \"expires_in\" is missing or not a positive integer"},
        {"{\"access_token\": \"secret-token\", \"expires_in\": 0, \"token_type\": \"Bearer\"}", 200,
         "token response: \"expires_in\" is missing or not a positive integer"},
        {"{\"access_token\": \"secret-token\", \"expires_in\": 3599}", 200,
         "token response: \"token_type\" is missing or not a string"},
        {"{\"access_token\": \"secret-token\", \"expires_in\": 3599, \"token_type\": \"mac\"}", 200,
         "token response: \"token_type\" is \"mac\", not \"Bearer\""},
        {"{\"error\": \"invalid_grant\", \"error_description\": \"Invalid JWT Signature.\"}", 400,
         "token endpoint refused the assertion (HTTP 400): invalid_grant: \"Invalid JWT "
         "Signature.\""},
        {"{\"error\": \"invalid_grant\", \"error_description\": \"bad \\\"quote\\\"\\n\"}", 400,
         "token endpoint refused the assertion (HTTP 400): invalid_grant: \"bad 'quote'?\""},
        {"{\"error\": \"unauthorized_client\"}", 401,
         "token endpoint refused the assertion (HTTP 401): unauthorized_client"},
        {"{\"access_token\": \"secret-token\", \"expires_in\": 3599, \"token_type\": "
         "\"Bearer\"}",
         500, "token endpoint answered HTTP 500 without a token"},
        {"<html>secret-token</html>", 502,
         "token endpoint answered HTTP 502 with a body that is not a JSON object"},
        {"", 200, "token endpoint answered HTTP 200 with a body that is not a JSON object"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_vertex_token t;
        memset(&t, 'x', sizeof(t));
        char err[256];
        int rc = parse(cases[i].body, cases[i].status, &t, err, sizeof(err));
        if (rc != TG_ERROR || strcmp(err, cases[i].want) != 0)
            fail_msg("case %zu: rc %d\n  want %s\n  got  %s", i, rc, cases[i].want, err);
        assert_null(strstr(err, "secret-token"));
        assert_string_equal(t.access_token, "");
        assert_int_equal(t.expires_at, 0);
    }
    /* an over-long token is refused, not cut */
    size_t n = TG_VERTEX_MAX_TOKEN + 10;
    char *body = malloc(n + 100);
    int used = snprintf(body, n + 100, "{\"access_token\": \"");
    memset(body + used, 'a', TG_VERTEX_MAX_TOKEN);
    used += TG_VERTEX_MAX_TOKEN;
    snprintf(body + used, n + 100 - (size_t)used,
             "\", \"expires_in\": 10, \"token_type\": \"Bearer\"}");
    struct tg_vertex_token t;
    char err[256];
    assert_int_equal(parse(body, 200, &t, err, sizeof(err)), TG_ERROR);
    assert_string_equal(err, "token response: \"access_token\" is longer than 4095 bytes");
    free(body);
}

/* ---- the cache ---- */

static struct tg_vertex_token token_at(const char *value, int64_t now, int64_t expires_in)
{
    struct tg_vertex_token t;
    memset(&t, 0, sizeof(t));
    snprintf(t.access_token, sizeof(t.access_token), "%s", value);
    t.lifetime_s = expires_in;
    t.expires_at = now + expires_in;
    return t;
}

static void test_cache_margin(void **state)
{
    (void)state;
    struct tg_vertex_token_cache c;
    tg_vertex_token_cache_init(&c, TG_VERTEX_REFRESH_MARGIN_S);
    char out[TG_VERTEX_MAX_TOKEN];
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW, out, sizeof(out)), TG_DECLINED);

    struct tg_vertex_token t = token_at("tok-1", NOW, 3600);
    tg_vertex_token_cache_put(&c, &t);
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW, out, sizeof(out)), TG_OK);
    assert_string_equal(out, "tok-1");
    /* good until 300 s before expiry, then refreshed */
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW + 3600 - 300 - 1, out, sizeof(out)), TG_OK);
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW + 3600 - 300, out, sizeof(out)),
                     TG_DECLINED);
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW + 4000, out, sizeof(out)), TG_DECLINED);

    /* a newer token replaces it */
    t = token_at("tok-2", NOW + 3400, 3600);
    tg_vertex_token_cache_put(&c, &t);
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW + 3400, out, sizeof(out)), TG_OK);
    assert_string_equal(out, "tok-2");

    /* too small a buffer gets nothing */
    char small[4];
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW + 3400, small, sizeof(small)), TG_DECLINED);

    /* a short-lived token is used for half its life, not never */
    t = token_at("short", NOW, 120);
    tg_vertex_token_cache_put(&c, &t);
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW + 59, out, sizeof(out)), TG_OK);
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW + 60, out, sizeof(out)), TG_DECLINED);

    t = token_at("tok-3", NOW, 3600);
    tg_vertex_token_cache_put(&c, &t);
    tg_vertex_token_cache_clear(&c);
    assert_int_equal(tg_vertex_token_cache_get(&c, NOW, out, sizeof(out)), TG_DECLINED);
    tg_vertex_token_cache_release(&c);
}

struct cache_worker {
    struct tg_vertex_token_cache *c;
    int id;
    int good;
};

static void *cache_loop(void *arg)
{
    struct cache_worker *w = arg;
    char out[TG_VERTEX_MAX_TOKEN];
    for (int i = 0; i < 2000; i++) {
        int64_t now = NOW + i;
        if (tg_vertex_token_cache_get(w->c, now, out, sizeof(out)) == TG_OK) {
            /* a token is always whole: one of the values put, never a mix */
            if (strncmp(out, "token-", 6) == 0 && strlen(out) == 7)
                w->good++;
        } else {
            char value[16];
            snprintf(value, sizeof(value), "token-%d", w->id);
            struct tg_vertex_token t = token_at(value, now, 600);
            tg_vertex_token_cache_put(w->c, &t);
        }
    }
    return NULL;
}

static void test_cache_threads(void **state)
{
    (void)state;
    struct tg_vertex_token_cache c;
    tg_vertex_token_cache_init(&c, TG_VERTEX_REFRESH_MARGIN_S);
    pthread_t threads[4];
    struct cache_worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (struct cache_worker){&c, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, cache_loop, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_true(workers[i].good > 0);
    }
    tg_vertex_token_cache_release(&c);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assertion_verifies), cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_assertion_threads),  cmocka_unit_test(test_bad_key_files),
        cmocka_unit_test(test_bad_key_text),       cmocka_unit_test(test_token_good),
        cmocka_unit_test(test_token_bad),          cmocka_unit_test(test_cache_margin),
        cmocka_unit_test(test_cache_threads),
    };
    return cmocka_run_group_tests_name("vertex_token", tests, setup_keys, teardown_keys);
}
