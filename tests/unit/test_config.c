/*
 * test_config.c — loading and validating tollgate.json.
 *
 * Data-driven (jansson's test/suites layout): each directory under
 * tests/unit/data/config is one case:
 *   input   the config text, valid but for one thing
 *   error   the exact message tg_config_parse must give ("config: <path>: ...");
 *           a '*' in it matches anything (for jansson's own wording). No error
 *           file: the config must load.
 *   env     (optional) one variable a line: NAME=value sets it, NAME unsets it
 * TOLLGATE_DATABASE_URL is unset for every case. Adding a case is adding files.
 *
 * The C tests check what a message cannot: the values a valid config loads into,
 * defaults, "$NAME" secrets, model lookup, reading from a file, tg_config_load_db_url.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "crypto.h"
#include "unit.h"

#define ERR_SIZE 512

/* ---- the data-driven cases ---- */

/* Applies the case's env file; with undo, unsets every variable it names. */
static void apply_env(const char *dir, bool undo)
{
    char *env = unit_read_file(dir, "env", NULL);
    if (env == NULL)
        return;
    char *save = NULL;
    for (char *line = strtok_r(env, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (eq != NULL)
            *eq = '\0';
        if (undo || eq == NULL)
            assert_int_equal(unsetenv(line), 0);
        else
            assert_int_equal(setenv(line, eq + 1, 1), 0);
    }
    free(env);
}

static bool message_matches(const char *want, const char *got)
{
    if (strchr(want, '*') == NULL)
        return strcmp(want, got) == 0; /* paths hold [n]: no pattern unless asked */
    return fnmatch(want, got, 0) == 0;
}

static void test_config_case(void **state)
{
    const char *dir = *state;
    char *input = unit_read_file(dir, "input", NULL);
    if (input == NULL)
        fail_msg("%s/input: cannot read", dir);
    char *want = unit_read_file(dir, "error", NULL);
    if (want != NULL)
        unit_chomp(want);

    unsetenv("TOLLGATE_DATABASE_URL");
    apply_env(dir, false);
    struct tg_config *config = (struct tg_config *)&config; /* must be overwritten */
    char err[ERR_SIZE];
    memset(err, 'x', sizeof(err));
    int rc = tg_config_parse(input, &config, err, sizeof(err));
    apply_env(dir, true);
    free(input);

    char got[ERR_SIZE + 1];
    snprintf(got, sizeof(got), "%.*s", (int)strnlen(err, sizeof(err)), err);
    bool terminated = memchr(err, '\0', sizeof(err)) != NULL;
    tg_config_free(rc == TG_OK ? config : NULL);

    if (want == NULL) {
        if (rc != TG_OK || got[0] != '\0')
            fail_msg("%s: want the config to load, got %d \"%s\"", dir, rc, got);
        return;
    }
    bool ok = rc == TG_ERROR && config == NULL && terminated && message_matches(want, got);
    if (!ok) {
        print_error("%s:\n  want TG_ERROR \"%s\"\n  got  %d \"%s\"%s%s\n", dir, want, rc, got,
                    config == NULL ? "" : " (and *out was not NULL)",
                    terminated ? "" : " (not NUL-terminated)");
        free(want);
        fail();
    }
    free(want);
}

/* ---- a valid config in full ---- */

static const char full_config[] =
    "{\n"
    "  \"server\": {\"threads\": 8, \"max_body_bytes\": 2048, \"max_response_bytes\": 8192},\n"
    "  \"database\": {\"url\": \"postgresql://tg@db/tollgate\", \"pool_size\": 3,\n"
    "                \"connect_timeout_ms\": 1500, \"statement_timeout_ms\": 700},\n"
    "  \"providers\": {\n"
    "    \"anthropic\": {\"type\": \"anthropic\", \"base_url\": "
    "\"https://api.anthropic.com/\",\n"
    "                  \"api_key\": \"sk-one\", \"connect_timeout_ms\": 250,\n"
    "                  \"timeout_ms\": 90000},\n"
    "    \"anthropic-eu\": {\"type\": \"anthropic\", \"base_url\": "
    "\"http://eu.example:8080//\",\n"
    "                     \"api_key\": \"sk-two\"}\n"
    "  },\n"
    "  \"models\": {\n"
    "    \"claude-haiku-4-5-20251001\": {\"provider\": \"anthropic\",\n"
    "                                  \"aliases\": [\"claude-haiku-4-5\", \"haiku\"]},\n"
    "    \"claude-sonnet-4-5\": {\"provider\": \"anthropic-eu\", \"aliases\": []},\n"
    "    \"claude-opus-4-1\": {\"provider\": \"anthropic\"}\n"
    "  },\n"
    "  \"log\": {\"file\": \"/tmp/tollgate-unit.log\"},\n"
    "  \"spool\": {\"dir\": \"/tmp/tollgate-spool\"}\n"
    "}\n";

static struct tg_config *parse_ok(const char *text)
{
    struct tg_config *config = NULL;
    char err[ERR_SIZE];
    int rc = tg_config_parse(text, &config, err, sizeof(err));
    if (rc != TG_OK)
        fail_msg("tg_config_parse failed: %s", err);
    assert_non_null(config);
    assert_string_equal(err, "");
    return config;
}

static const struct tg_provider *provider_named(const struct tg_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_providers; i++)
        if (strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    return NULL;
}

static int unset_db_env(void **state)
{
    (void)state;
    unsetenv("TOLLGATE_DATABASE_URL");
    return 0;
}

static int free_config(void **state)
{
    tg_config_free(*state);
    *state = NULL;
    unsetenv("TOLLGATE_DATABASE_URL");
    return 0;
}

static void test_full_config_values(void **state)
{
    struct tg_config *c = parse_ok(full_config);
    *state = c;
    assert_int_equal(c->threads, 8);
    assert_int_equal(c->max_body_bytes, 2048);
    assert_int_equal(c->max_response_bytes, 8192);
    assert_string_equal(c->db_url, "postgresql://tg@db/tollgate");
    assert_int_equal(c->db_pool_size, 3);
    assert_int_equal(c->db_connect_timeout_ms, 1500);
    assert_int_equal(c->db_statement_timeout_ms, 700);

    assert_int_equal(c->n_providers, 2);
    const struct tg_provider *one = provider_named(c, "anthropic");
    const struct tg_provider *two = provider_named(c, "anthropic-eu");
    assert_non_null(one);
    assert_non_null(two);
    assert_int_equal(one->type, TG_PROVIDER_ANTHROPIC);
    assert_string_equal(one->base_url, "https://api.anthropic.com"); /* slash dropped */
    assert_string_equal(two->base_url, "http://eu.example:8080");    /* every slash */
    assert_string_equal(one->api_key, "sk-one");
    assert_string_equal(two->api_key, "sk-two");
    assert_int_equal(one->connect_timeout_ms, 250);
    assert_int_equal(one->timeout_ms, 90000);
    assert_int_equal(two->connect_timeout_ms, 5000); /* defaults */
    assert_int_equal(two->timeout_ms, 600000);

    assert_int_equal(c->n_models, 3);
    const struct tg_model *haiku = tg_config_find_model(c, "claude-haiku-4-5-20251001");
    assert_non_null(haiku);
    assert_string_equal(haiku->name, "claude-haiku-4-5-20251001");
    assert_ptr_equal(haiku->provider, one);
    assert_int_equal(haiku->n_aliases, 2);
    assert_string_equal(haiku->aliases[0], "claude-haiku-4-5");
    assert_string_equal(haiku->aliases[1], "haiku");
    const struct tg_model *sonnet = tg_config_find_model(c, "claude-sonnet-4-5");
    assert_non_null(sonnet);
    assert_ptr_equal(sonnet->provider, two);
    assert_int_equal(sonnet->n_aliases, 0);

    assert_string_equal(c->log_file, "/tmp/tollgate-unit.log");
    assert_string_equal(c->spool_dir, "/tmp/tollgate-spool");
}

static void test_find_model(void **state)
{
    struct tg_config *c = parse_ok(full_config);
    *state = c;
    const struct tg_model *by_name = tg_config_find_model(c, "claude-haiku-4-5-20251001");
    assert_non_null(by_name);
    assert_ptr_equal(tg_config_find_model(c, "claude-haiku-4-5"), by_name);
    assert_ptr_equal(tg_config_find_model(c, "haiku"), by_name);
    const struct tg_model *opus = tg_config_find_model(c, "claude-opus-4-1");
    assert_non_null(opus);
    assert_string_equal(opus->name, "claude-opus-4-1");
    assert_ptr_not_equal(opus, by_name);

    assert_null(tg_config_find_model(c, "gpt-4o"));
    assert_null(tg_config_find_model(c, ""));
    assert_null(tg_config_find_model(c, "HAIKU"));             /* exact match only */
    assert_null(tg_config_find_model(c, "claude-haiku-4-5-")); /* no prefix match */
    assert_null(tg_config_find_model(c, "claude-haiku"));
}

static void test_defaults(void **state)
{
    struct tg_config *c = parse_ok("{\"database\": {\"url\": \"postgresql:///tollgate\"},"
                                   " \"providers\": {\"p\": {\"type\": \"anthropic\", "
                                   "\"base_url\": \"http://localhost:9\","
                                   "                      \"api_key\": \"k\"}},"
                                   " \"models\": {\"m\": {\"provider\": \"p\"}},"
                                   " \"log\": {\"file\": \"-\"}}");
    *state = c;
    assert_int_equal(c->processes, 4); /* sized for hundreds of streams per host */
    assert_int_equal(c->threads, 256);
    assert_int_equal(c->thread_stack_kib, 1024);
    assert_int_equal(c->queue_timeout_ms, 0); /* beyond capacity: a 503 at once */
    assert_int_equal(c->max_body_bytes, 1 << 20);
    assert_int_equal(c->max_response_bytes, 16 << 20);
    assert_int_equal(c->db_pool_size, 4);
    assert_int_equal(c->db_connect_timeout_ms, 2000);
    assert_int_equal(c->db_statement_timeout_ms, 5000);
    assert_int_equal(c->providers[0].connect_timeout_ms, 5000);
    assert_int_equal(c->providers[0].timeout_ms, 600000);
    assert_null(c->log_file); /* "-" means stderr */
    assert_string_equal(c->spool_dir, "/var/lib/tollgate/spool");
    assert_int_equal(c->models[0].n_aliases, 0);
    assert_string_equal(c->attribution_user_header, "x-tollgate-user");
    assert_string_equal(c->attribution_group_header, "x-tollgate-group");
    assert_int_equal(c->auth_failure_max, 20); /* pre-authentication is on by default */
    assert_int_equal(c->auth_failure_per_ms, 60000);
    assert_int_equal(c->auth_unknown_key_ttl_ms, 3000);
    assert_false(c->admin_enabled); /* no admin section: /admin/ is not routed */
}

/* bounds (bound.c reads the section) and the models' maxima: values and defaults. */
static void test_bounds_values_and_defaults(void **state)
{
    struct tg_config *c = parse_ok(
        "{\"database\": {\"url\": \"postgresql:///x\"},"
        " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
        "                      \"api_key\": \"k\"}},"
        " \"models\": {\"m\": {\"provider\": \"p\", \"max_input_tokens\": 200000},"
        "            \"big\": {\"provider\": \"p\", \"max_output_tokens\": 64000,"
        "                     \"max_input_tokens\": 1000000}},"
        " \"bounds\": {\"allowed_betas\": [\"files-api-2025-04-14\", \"context-1m-2025-08-07\"],"
        "            \"image_max_tokens\": 1600, \"document_max_tokens\": 50000,"
        "            \"tool_system_tokens\": 0, \"builtin_tool_tokens\": 900,"
        "            \"server_tool_default_uses\": 5, \"server_tool_use_max_tokens\": 20000}}");
    *state = c;
    assert_int_equal(c->bounds.n_allowed_betas, 2);
    assert_string_equal(c->bounds.allowed_betas[0], "files-api-2025-04-14");
    assert_string_equal(c->bounds.allowed_betas[1], "context-1m-2025-08-07");
    assert_int_equal(c->bounds.image_max_tokens, 1600);
    assert_int_equal(c->bounds.document_max_tokens, 50000);
    assert_int_equal(c->bounds.tool_system_tokens, 0);
    assert_int_equal(c->bounds.builtin_tool_tokens, 900);
    assert_int_equal(c->bounds.server_tool_default_uses, 5);
    assert_int_equal(c->bounds.server_tool_use_max_tokens, 20000);
    const struct tg_model *big = tg_config_find_model(c, "big");
    assert_int_equal(big->max_output_tokens, 64000);
    assert_int_equal(big->max_input_tokens, 1000000);
    assert_true(big->max_input_tokens_set);
    tg_config_free(c);

    /* no section, no maxima: the defaults (0: the model's context window) */
    c = parse_ok("{\"database\": {\"url\": \"postgresql:///x\"},"
                 " \"providers\": {\"p\": {\"type\": \"anthropic\","
                 "                      \"base_url\": \"https://x.test\", \"api_key\": \"k\"}},"
                 " \"models\": {\"m\": {\"provider\": \"p\"}}}");
    *state = c;
    assert_int_equal(c->bounds.n_allowed_betas, 0);
    assert_int_equal(c->bounds.image_max_tokens, 2000);
    assert_int_equal(c->bounds.document_max_tokens, 0);
    assert_int_equal(c->bounds.tool_system_tokens, 1000);
    assert_int_equal(c->bounds.builtin_tool_tokens, 2000);
    assert_int_equal(c->bounds.server_tool_default_uses, 10);
    assert_int_equal(c->bounds.server_tool_use_max_tokens, 0);
    assert_int_equal(c->models[0].max_output_tokens, 128000);
    assert_int_equal(c->models[0].max_input_tokens, 200000);
    assert_false(c->models[0].max_input_tokens_set);
}

/* mcp: audit_payloads per server (off unless set) and the cap on each payload. */
static void test_mcp_audit_payloads(void **state)
{
    static const char head[] =
        "{\"database\": {\"url\": \"postgresql:///x\"},"
        " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
        "                      \"api_key\": \"k\"}},"
        " \"models\": {\"m\": {\"provider\": \"p\"}},"
        " \"mcp\": {\"session_secret\": \"0123456789abcdef0123456789abcdef\",";
    char text[1024];
    snprintf(text, sizeof(text),
             "%s \"servers\": {\"a\": {\"url\": \"http://127.0.0.1:1/mcp\","
             " \"audit_payloads\": true}, \"b\": {\"url\": \"http://127.0.0.1:2/mcp\"}},"
             " \"audit_payload_bytes\": 1000}}",
             head);
    struct tg_config *c = parse_ok(text);
    *state = c;
    assert_int_equal(c->mcp.n_servers, 2);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(c->mcp.servers[i].audit_payloads,
                         strcmp(c->mcp.servers[i].name, "a") == 0);
    assert_int_equal(c->mcp.audit_payload_bytes, 1000);
    tg_config_free(c);
    snprintf(text, sizeof(text), "%s \"servers\": {\"a\": {\"url\": \"http://127.0.0.1:1/mcp\"}}}}",
             head);
    c = parse_ok(text);
    *state = c;
    assert_false(c->mcp.servers[0].audit_payloads);
    assert_int_equal(c->mcp.audit_payload_bytes, 16384);
}

/* Admin keys are kept as their SHA-256 only; the env var's value is not copied. */
static void test_admin_keys_hashed(void **state)
{
    const char *key = "admin-key-0123456789abcdefghij";
    assert_int_equal(setenv("TG_UNIT_ADMIN_KEY", key, 1), 0);
    struct tg_config *c = parse_ok(
        "{\"database\": {\"url\": \"postgresql:///x\"},"
        " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
        "                      \"api_key\": \"k\"}},"
        " \"models\": {\"m\": {\"provider\": \"p\"}},"
        " \"admin\": {\"keys\": [\"$TG_UNIT_ADMIN_KEY\", \"second-admin-key-0123456789\"]}}");
    *state = c;
    unsetenv("TG_UNIT_ADMIN_KEY");
    assert_true(c->admin_enabled);
    assert_int_equal(c->n_admin_keys, 2);
    assert_null(c->admin_jwt_role);
    unsigned char want[TG_SHA256_LEN];
    tg_crypto_sha256(key, strlen(key), want);
    assert_memory_equal(c->admin_key_hashes[0], want, TG_SHA256_LEN);
    tg_crypto_sha256("second-admin-key-0123456789", 27, want);
    assert_memory_equal(c->admin_key_hashes[1], want, TG_SHA256_LEN);
}

static void test_env_secrets_resolved(void **state)
{
    assert_int_equal(setenv("TG_UNIT_API_KEY", "sk-from-env", 1), 0);
    assert_int_equal(setenv("TG_UNIT_DB", "postgresql://env@db/x", 1), 0);
    struct tg_config *c = parse_ok(
        "{\"database\": {\"url\": \"$TG_UNIT_DB\"},"
        " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
        "                      \"api_key\": \"$TG_UNIT_API_KEY\"}},"
        " \"models\": {\"m\": {\"provider\": \"p\"}}}");
    *state = c;
    unsetenv("TG_UNIT_API_KEY");
    unsetenv("TG_UNIT_DB");
    assert_string_equal(c->providers[0].api_key, "sk-from-env");
    assert_string_equal(c->db_url, "postgresql://env@db/x");
}

static void test_lone_dollar_is_literal(void **state)
{
    struct tg_config *c = parse_ok(
        "{\"database\": {\"url\": \"postgresql:///x\"},"
        " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
        "                      \"api_key\": \"$\"}},"
        " \"models\": {\"m\": {\"provider\": \"p\"}}}");
    *state = c;
    assert_string_equal(c->providers[0].api_key, "$");
}

static void test_database_url_env_overrides(void **state)
{
    assert_int_equal(setenv("TOLLGATE_DATABASE_URL", "postgresql://override@db/y", 1), 0);
    struct tg_config *c = parse_ok(
        "{\"database\": {\"url\": \"postgresql://file@db/x\"},"
        " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
        "                      \"api_key\": \"k\"}},"
        " \"models\": {\"m\": {\"provider\": \"p\"}}}");
    *state = c;
    assert_string_equal(c->db_url, "postgresql://override@db/y");
}

static void test_error_truncated_to_buffer(void **state)
{
    (void)state;
    struct tg_config *c = NULL;
    char err[16];
    memset(err, 'x', sizeof(err));
    assert_int_equal(tg_config_parse("{}", &c, err, sizeof(err)), TG_ERROR);
    assert_null(c);
    assert_int_equal(strnlen(err, sizeof(err)), sizeof(err) - 1);
    assert_memory_equal(err, "config: databas", sizeof(err));
}

/* ---- from files ---- */

struct temp_file {
    char path[64];
};

static void write_temp(struct temp_file *t, const char *text)
{
    snprintf(t->path, sizeof(t->path), "/tmp/tollgate-unit-XXXXXX");
    int fd = mkstemp(t->path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void test_load_shipped_example(void **state)
{
    /* conf/tollgate.json is what operators copy: it must load as shipped */
    char *dir = unit_data_dir("config"); /* <srcdir>/tests/unit/data/config */
    assert_non_null(dir);
    char path[4200];
    snprintf(path, sizeof(path), "%s/../../../../conf/tollgate.json", dir);
    free(dir);
    assert_int_equal(setenv("TOLLGATE_DATABASE_URL", "postgresql://example@db/tollgate", 1), 0);
    assert_int_equal(setenv("ANTHROPIC_API_KEY", "sk-ant-example", 1), 0);
    struct tg_config *c = NULL;
    char err[ERR_SIZE];
    int rc = tg_config_load(path, &c, err, sizeof(err));
    unsetenv("ANTHROPIC_API_KEY");
    if (rc != TG_OK)
        fail_msg("%s: %s", path, err);
    *state = c;
    assert_string_equal(c->db_url, "postgresql://example@db/tollgate");
    assert_string_equal(c->providers[0].api_key, "sk-ant-example");
    assert_non_null(tg_config_find_model(c, "claude-haiku-4-5"));
}

static void test_load_missing_file(void **state)
{
    (void)state;
    struct tg_config *c = (struct tg_config *)&c;
    char err[ERR_SIZE];
    const char *path = "/nonexistent/tollgate-unit.json";
    assert_int_equal(tg_config_load(path, &c, err, sizeof(err)), TG_ERROR);
    assert_null(c);
    const char *want = "config: could not read \"/nonexistent/tollgate-unit.json\": ";
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\"", err);
}

static void test_load_invalid_json_names_file(void **state)
{
    (void)state;
    struct temp_file t;
    write_temp(&t, "{\n  \"server\": {\"threads\": 2\n}\n");
    struct tg_config *c = NULL;
    char err[ERR_SIZE];
    int rc = tg_config_load(t.path, &c, err, sizeof(err));
    unlink(t.path);
    assert_int_equal(rc, TG_ERROR);
    assert_null(c);
    char want[128];
    snprintf(want, sizeof(want), "config: %s: line 4, column ", t.path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want it to start \"%s\"", err, want);
}

static void test_load_validation_error_from_file(void **state)
{
    (void)state;
    struct temp_file t;
    write_temp(&t, "{\"server\": {\"threads\": 0}}");
    struct tg_config *c = NULL;
    char err[ERR_SIZE];
    int rc = tg_config_load(t.path, &c, err, sizeof(err));
    unlink(t.path);
    assert_int_equal(rc, TG_ERROR);
    assert_string_equal(err, "config: server.threads: must be between 1 and 1024");
}

/* ---- tg_config_load_db_url ---- */

static void test_db_url_from_file(void **state)
{
    (void)state;
    struct temp_file t;
    /* providers need no secrets here: their variables are unset and ignored */
    write_temp(&t, "{\"database\": {\"url\": \"postgresql://file@db/x\"},"
                   " \"providers\": {\"p\": {\"api_key\": \"$TG_UNIT_NOT_SET\"}}}");
    unsetenv("TG_UNIT_NOT_SET");
    char *url = NULL;
    char err[ERR_SIZE];
    int rc = tg_config_load_db_url(t.path, &url, err, sizeof(err));
    if (rc != TG_OK)
        fail_msg("%s", err);
    assert_string_equal(url, "postgresql://file@db/x");
    free(url);

    assert_int_equal(setenv("TOLLGATE_DATABASE_URL", "postgresql://env@db/y", 1), 0);
    rc = tg_config_load_db_url(t.path, &url, err, sizeof(err));
    unsetenv("TOLLGATE_DATABASE_URL");
    unlink(t.path);
    assert_int_equal(rc, TG_OK);
    assert_string_equal(url, "postgresql://env@db/y");
    free(url);
}

static void test_db_url_env_wins_without_file(void **state)
{
    (void)state;
    assert_int_equal(setenv("TOLLGATE_DATABASE_URL", "postgresql://env@db/z", 1), 0);
    char *url = NULL;
    char err[ERR_SIZE];
    int rc = tg_config_load_db_url("/nonexistent/tollgate.json", &url, err, sizeof(err));
    unsetenv("TOLLGATE_DATABASE_URL");
    assert_int_equal(rc, TG_OK);
    assert_string_equal(url, "postgresql://env@db/z");
    free(url);
}

static void test_db_url_dollar_resolved(void **state)
{
    (void)state;
    struct temp_file t;
    write_temp(&t, "{\"database\": {\"url\": \"$TG_UNIT_DB_URL2\"}}");
    assert_int_equal(setenv("TG_UNIT_DB_URL2", "postgresql://dollar@db/w", 1), 0);
    char *url = NULL;
    char err[ERR_SIZE];
    int rc = tg_config_load_db_url(t.path, &url, err, sizeof(err));
    assert_int_equal(rc, TG_OK);
    assert_string_equal(url, "postgresql://dollar@db/w");
    free(url);

    unsetenv("TG_UNIT_DB_URL2");
    url = (char *)&url;
    rc = tg_config_load_db_url(t.path, &url, err, sizeof(err));
    unlink(t.path);
    assert_int_equal(rc, TG_ERROR);
    assert_null(url);
    assert_string_equal(
        err, "config: database.url: environment variable \"TG_UNIT_DB_URL2\" is not set");
}

static void test_db_url_errors(void **state)
{
    (void)state;
    struct temp_file t;
    write_temp(&t, "{\"server\": {}}");
    char *url = (char *)&url;
    char err[ERR_SIZE];
    int rc = tg_config_load_db_url(t.path, &url, err, sizeof(err));
    unlink(t.path);
    assert_int_equal(rc, TG_ERROR);
    assert_null(url);
    assert_string_equal(err, "config: database: is required");

    rc = tg_config_load_db_url("/nonexistent/tollgate.json", &url, err, sizeof(err));
    assert_int_equal(rc, TG_ERROR);
    assert_null(url);
    const char *want = "config: could not read \"/nonexistent/tollgate.json\"";
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\"", err);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test_setup_teardown(test_full_config_values, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_find_model, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_defaults, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_env_secrets_resolved, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_admin_keys_hashed, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_bounds_values_and_defaults, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_mcp_audit_payloads, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_lone_dollar_is_literal, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_database_url_env_overrides, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_error_truncated_to_buffer, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_load_shipped_example, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_load_missing_file, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_load_invalid_json_names_file, unset_db_env,
                                        free_config),
        cmocka_unit_test_setup_teardown(test_load_validation_error_from_file, unset_db_env,
                                        free_config),
        cmocka_unit_test_setup_teardown(test_db_url_from_file, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_db_url_env_wins_without_file, unset_db_env,
                                        free_config),
        cmocka_unit_test_setup_teardown(test_db_url_dollar_resolved, unset_db_env, free_config),
        cmocka_unit_test_setup_teardown(test_db_url_errors, unset_db_env, free_config),
    };
    return unit_run_suite("config", "config", test_config_case, NULL, NULL, fixed,
                          TG_ARRAY_LEN(fixed), NULL, NULL);
}
