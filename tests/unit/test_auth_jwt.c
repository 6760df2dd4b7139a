/*
 * test_auth_jwt.c — JWT verification against tokens minted by another implementation.
 *
 * Data-driven: each directory under tests/unit/data/jwt/cases is one case:
 *   token     the compact JWT (minted by mint.mjs with the jose npm package or
 *             hand-crafted there with Node's crypto; never by Tollgate's C code)
 *   expected  "ok user=<u> group=<g> role=<r>" or "declined: <reason>"
 *   issuer    (optional) "single": verify with the one-key issuer instead of the main one
 * Every case is verified at NOW with a leeway of 30 s. Adding a case is adding files
 * (or a line in mint.mjs). The keys are in data/jwt/keys; the JWKS file is copied
 * to a temporary directory so the rotation test can rewrite it.
 *
 * The C tests check what one token cannot: JWKS rotation (new kid accepted and the
 * removed kid refused after the file changes), verifying from many threads while the
 * file is rewritten, and the "auth" section of the config.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_jwt.h"
#include "config.h"
#include "unit.h"

#define NOW 1900000000

static char *data_dir; /* tests/unit/data/jwt */
static char tmp_dir[] = "/tmp/tg-jwt-XXXXXX";
static char *jwks_path; /* the JWKS file the main issuer reads */
static struct tg_jwt_issuer *main_issuer, *single_issuer;

static char *read_chomped(const char *dir, const char *name)
{
    char *s = unit_read_file(dir, name, NULL);
    if (s != NULL)
        unit_chomp(s);
    return s;
}

/* Writes text to path, then sets its mtime to mtime_s (so a rewrite is always newer). */
static void write_file(const char *path, const char *text, time_t mtime_s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    struct timespec times[2] = {{mtime_s, 0}, {mtime_s, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void copy_jwks(const char *name, time_t mtime_s)
{
    char *keys = unit_path(data_dir, "keys");
    char *text = unit_read_file(keys, name, NULL);
    assert_non_null(text);
    write_file(jwks_path, text, mtime_s);
    free(text);
    free(keys);
}

static void set_secret_env(const char *var, const char *file)
{
    char *keys = unit_path(data_dir, "keys");
    char *secret = read_chomped(keys, file);
    assert_non_null(secret);
    assert_int_equal(setenv(var, secret, 1), 0);
    free(secret);
    free(keys);
}

static struct tg_jwt_issuer *load_issuer(const char *text)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    if (obj == NULL)
        fail_msg("issuer JSON: %s", jerr.text);
    struct tg_jwt_issuer *iss = NULL;
    char err[512];
    int rc = tg_jwt_issuer_load(obj, "auth.jwt[0]", &iss, err, sizeof(err));
    json_decref(obj);
    if (rc != TG_OK)
        fail_msg("%s", err);
    return iss;
}

static int setup_issuers(void **state)
{
    (void)state;
    data_dir = unit_data_dir("jwt");
    assert_non_null(mkdtemp(tmp_dir));
    jwks_path = unit_path(tmp_dir, "jwks.json");
    copy_jwks("jwks.json", 1000000000);
    set_secret_env("TG_UNIT_JWT_HS256", "hs256.secret");
    set_secret_env("TG_UNIT_JWT_HS384", "hs384.secret");
    set_secret_env("TG_UNIT_JWT_HS512", "hs512.secret");
    set_secret_env("TG_UNIT_JWT_SOLO", "solo.secret");

    char text[8192];
    const char *d = data_dir;
    snprintf(text, sizeof(text),
             "{\"issuer\": \"https://idp.example\", \"audience\": \"tollgate\", \"leeway_s\": 30,"
             " \"keys\": ["
             "  {\"kid\": \"hs256\", \"alg\": \"HS256\", \"secret\": \"$TG_UNIT_JWT_HS256\"},"
             "  {\"kid\": \"hs384\", \"alg\": \"HS384\", \"secret\": \"$TG_UNIT_JWT_HS384\"},"
             "  {\"kid\": \"hs512\", \"alg\": \"HS512\", \"secret\": \"$TG_UNIT_JWT_HS512\"},"
             "  {\"kid\": \"rs256\", \"alg\": \"RS256\", \"pem_file\": \"%s/keys/rs256.pem\"},"
             "  {\"kid\": \"rs384\", \"alg\": \"RS384\", \"pem_file\": \"%s/keys/rs384.pem\"},"
             "  {\"kid\": \"rs512\", \"alg\": \"RS512\", \"pem_file\": \"%s/keys/rs512.pem\"},"
             "  {\"kid\": \"es256\", \"alg\": \"ES256\", \"pem_file\": \"%s/keys/es256.pem\"},"
             "  {\"kid\": \"es384\", \"alg\": \"ES384\", \"pem_file\": \"%s/keys/es384.pem\"}],"
             " \"jwks_file\": \"%s\","
             " \"claims\": {\"user\": \"sub\", \"group\": \"group_id\", \"groups\": \"groups\","
             "              \"role\": \"role\"}}",
             d, d, d, d, d, jwks_path);
    main_issuer = load_issuer(text);
    single_issuer = load_issuer(
        "{\"issuer\": \"https://idp.example\", \"audience\": \"tollgate\","
        " \"keys\": [{\"kid\": \"solo\", \"alg\": \"HS256\", \"secret\": \"$TG_UNIT_JWT_SOLO\"}]}");
    return 0;
}

static int teardown_issuers(void **state)
{
    (void)state;
    tg_jwt_issuer_free(main_issuer);
    tg_jwt_issuer_free(single_issuer);
    unlink(jwks_path);
    rmdir(tmp_dir);
    free(jwks_path);
    free(data_dir);
    return 0;
}

/* The outcome as the expected files spell it. */
static void verify_to_text(const struct tg_jwt_issuer *iss, const char *token, char *got,
                           size_t got_size)
{
    struct tg_jwt_identity id;
    char reason[128];
    memset(reason, 'x', sizeof(reason));
    if (tg_jwt_verify(iss, token, NOW, &id, reason, sizeof(reason)) == TG_OK) {
        snprintf(got, got_size, "ok user=%s group=%s role=%s", id.user_id, id.group_id, id.role);
        return;
    }
    assert_non_null(memchr(reason, '\0', sizeof(reason)));
    assert_string_equal(id.user_id, ""); /* a declined token leaves no identity behind */
    snprintf(got, got_size, "declined: %s", reason);
}

/* ---- the data-driven cases ---- */

static void test_jwt_case(void **state)
{
    const char *dir = *state;
    char *token = read_chomped(dir, "token");
    char *want = read_chomped(dir, "expected");
    char *issuer = read_chomped(dir, "issuer");
    if (token == NULL || want == NULL)
        fail_msg("%s: needs token and expected", dir);
    const struct tg_jwt_issuer *iss = main_issuer;
    if (issuer != NULL && strcmp(issuer, "single") == 0)
        iss = single_issuer;
    char got[1024];
    verify_to_text(iss, token, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        print_error("%s:\n  want %s\n  got  %s\n", dir, want, got);
        fail();
    }
    /* the reason is log-safe: it never echoes the token or a part of it */
    char *dot = strchr(token, '.');
    if (dot != NULL && dot - token > 8) {
        char head[9];
        memcpy(head, token, 8);
        head[8] = '\0';
        assert_null(strstr(got, head));
    }
    free(token);
    free(want);
    free(issuer);
}

/* ---- JWKS rotation ---- */

static char *rotation_token(const char *name)
{
    char *dir = unit_path(data_dir, "rotation");
    char *token = read_chomped(dir, name);
    free(dir);
    assert_non_null(token);
    return token;
}

static void test_jwks_rotation(void **state)
{
    (void)state;
    char *old_token = rotation_token("old.token");
    char *new_token = rotation_token("new.token");
    char got[512];

    copy_jwks("jwks.json", 1000000000);
    verify_to_text(main_issuer, old_token, got, sizeof(got));
    assert_string_equal(got, "ok user=alice group=eng role=member");
    verify_to_text(main_issuer, new_token, got, sizeof(got));
    assert_string_equal(got, "declined: unknown kid");

    /* the IdP rotates: jwks-rs1 goes, jwks-rs2 comes */
    copy_jwks("jwks-rotated.json", 1000000100);
    verify_to_text(main_issuer, new_token, got, sizeof(got));
    assert_string_equal(got, "ok user=alice group=eng role=member");
    verify_to_text(main_issuer, old_token, got, sizeof(got));
    assert_string_equal(got, "declined: unknown kid");

    /* a broken rewrite keeps the keys we had */
    write_file(jwks_path, "{\"keys\": [", 1000000200);
    verify_to_text(main_issuer, new_token, got, sizeof(got));
    assert_string_equal(got, "ok user=alice group=eng role=member");

    copy_jwks("jwks.json", 1000000300);
    verify_to_text(main_issuer, old_token, got, sizeof(got));
    assert_string_equal(got, "ok user=alice group=eng role=member");
    free(old_token);
    free(new_token);
}

/* Many threads verify while the JWKS file flips between two key sets (run under ASan). */
struct worker {
    const char *token;
    int ok, declined;
};

static void *verify_loop(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 300; i++) {
        struct tg_jwt_identity id;
        char reason[64];
        int rc = tg_jwt_verify(main_issuer, w->token, NOW, &id, reason, sizeof(reason));
        if (rc == TG_OK)
            w->ok++;
        else if (strcmp(reason, "unknown kid") == 0)
            w->declined++;
    }
    return NULL;
}

static void test_jwks_concurrent_reload(void **state)
{
    (void)state;
    char *old_token = rotation_token("old.token");
    pthread_t threads[4];
    struct worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (struct worker){old_token, 0, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, verify_loop, &workers[i]), 0);
    }
    for (int i = 0; i < 20; i++)
        copy_jwks(i % 2 ? "jwks.json" : "jwks-rotated.json", 1000001000 + i);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].ok + workers[i].declined, 300);
    }
    copy_jwks("jwks.json", 1000002000);
    free(old_token);
}

/* ---- the config's auth section ---- */

static void test_config_auth_section(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"database\": {\"url\": \"postgresql://tg@db/tollgate\"},"
             " \"providers\": {\"anthropic\": {\"type\": \"anthropic\","
             "   \"base_url\": \"https://api.anthropic.com\", \"api_key\": \"sk\"}},"
             " \"models\": {\"claude-sonnet-4-5\": {\"provider\": \"anthropic\"}},"
             " \"auth\": {\"jwt\": ["
             "   {\"issuer\": \"https://idp.example\", \"audience\": \"tollgate\","
             "    \"jwks_file\": \"%s\"},"
             "   {\"issuer\": \"https://other.example\", \"audience\": \"tollgate\","
             "    \"keys\": [{\"kid\": \"solo\", \"alg\": \"HS256\","
             "               \"secret\": \"$TG_UNIT_JWT_SOLO\"}]}]}}",
             jwks_path);
    struct tg_config *config = NULL;
    char err[512];
    unsetenv("TOLLGATE_DATABASE_URL");
    int rc = tg_config_parse(text, &config, err, sizeof(err));
    if (rc != TG_OK)
        fail_msg("%s", err);
    assert_int_equal(config->n_jwt_issuers, 2);
    assert_string_equal(tg_jwt_issuer_name(config->jwt_issuers[0]), "https://idp.example");
    assert_string_equal(tg_jwt_issuer_name(config->jwt_issuers[1]), "https://other.example");

    /* the JWKS-only issuer verifies a JWKS token through the config */
    char *old_token = rotation_token("old.token");
    char got[512];
    verify_to_text(config->jwt_issuers[0], old_token, got, sizeof(got));
    assert_string_equal(got, "ok user=alice group=eng role=member");
    free(old_token);
    tg_config_free(config);
}

static void test_config_without_auth(void **state)
{
    (void)state;
    struct tg_config *config = NULL;
    char err[512];
    int rc = tg_config_parse("{\"database\": {\"url\": \"postgresql://tg@db/tollgate\"},"
                             " \"providers\": {\"a\": {\"type\": \"anthropic\","
                             "   \"base_url\": \"https://api.anthropic.com\", \"api_key\": \"k\"}},"
                             " \"models\": {\"m\": {\"provider\": \"a\"}}}",
                             &config, err, sizeof(err));
    if (rc != TG_OK)
        fail_msg("%s", err);
    assert_int_equal(config->n_jwt_issuers, 0);
    tg_config_free(config);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_jwks_rotation),
        cmocka_unit_test(test_jwks_concurrent_reload),
        cmocka_unit_test(test_config_auth_section),
        cmocka_unit_test(test_config_without_auth),
    };
    return unit_run_suite("auth_jwt", "jwt/cases", test_jwt_case, NULL, NULL, fixed,
                          TG_ARRAY_LEN(fixed), setup_issuers, teardown_issuers);
}
