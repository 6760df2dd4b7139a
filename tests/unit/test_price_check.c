/*
 * test_price_check.c — the model lists of price_check.c: the canonical names of a
 * loaded config, and of a config file read for its "models" keys alone (no
 * secret resolved), in the config's order, as the JSON array the statement
 * takes; the refusals of a file without models.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "price_check.h"

#define CONFIG_HEAD                                                                                \
    "{\"database\": {\"url\": \"postgresql://tg@db/tollgate\"},"                                   \
    " \"providers\": {\"anthropic\": {\"type\": \"anthropic\","                                    \
    " \"base_url\": \"https://api.anthropic.com\", \"api_key\": \"sk-test\"}},"

static void test_models_of_a_loaded_config(void **state)
{
    (void)state;
    struct tg_config *config = NULL;
    char err[256];
    int rc =
        tg_config_parse(CONFIG_HEAD " \"models\": {\"zeta-model\": {\"provider\": \"anthropic\","
                                    " \"aliases\": [\"zeta\"]},"
                                    " \"alpha-model\": {\"provider\": \"anthropic\"}}}",
                        &config, err, sizeof(err));
    if (rc != TG_OK)
        fail_msg("%s", err);
    char *json = tg_price_check_models_json(config);
    /* canonical names only (no alias), in the config's order */
    assert_string_equal(json, "[\"zeta-model\",\"alpha-model\"]");
    free(json);
    tg_config_free(config);
}

/* text written to a fresh temporary file, whose path is returned (caller unlinks it) */
static char *config_file(const char *text)
{
    char *path = strdup("/tmp/tollgate-price-check-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_models_of_a_config_file(void **state)
{
    (void)state;
    /* only "models" is read: a provider key "$UNSET" is never resolved, and names
     * that need JSON escaping stay exact */
    char *path =
        config_file(CONFIG_HEAD " \"models\": {\"m-2\": {}, \"m\\\"1\": {}, \"\xc3\xa9-3\": {}},"
                                " \"unknown_field\": true}");
    char err[256] = "";
    char *json = tg_price_check_models_json_file(path, err, sizeof(err));
    assert_non_null(json);
    assert_string_equal(json, "[\"m-2\",\"m\\\"1\",\"\xc3\xa9-3\"]");
    assert_string_equal(err, "");
    free(json);
    unlink(path);
    free(path);
}

static void test_config_files_without_models(void **state)
{
    (void)state;
    static const char *const texts[] = {
        CONFIG_HEAD " \"server\": {}}",             /* no "models" */
        CONFIG_HEAD " \"models\": {}}",             /* none in it */
        CONFIG_HEAD " \"models\": [\"claude-x\"]}", /* not an object */
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char *path = config_file(texts[i]);
        char err[512], want[512];
        assert_null(tg_price_check_models_json_file(path, err, sizeof(err)));
        snprintf(want, sizeof(want), "config \"%s\": models: must name at least one model", path);
        assert_string_equal(err, want);
        unlink(path);
        free(path);
    }
}

static void test_unreadable_config_files(void **state)
{
    (void)state;
    char err[512];
    assert_null(tg_price_check_models_json_file("/nonexistent/tollgate.json", err, sizeof(err)));
    assert_non_null(strstr(err, "could not read config \"/nonexistent/tollgate.json\": "));

    char *path = config_file("{\"models\": {\"a\": {}, \"a\": {}}}"); /* a duplicate key */
    assert_null(tg_price_check_models_json_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, "could not read config \""));
    assert_non_null(strstr(err, "(line 1)"));
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_of_a_loaded_config),
        cmocka_unit_test(test_models_of_a_config_file),
        cmocka_unit_test(test_config_files_without_models),
        cmocka_unit_test(test_unreadable_config_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
