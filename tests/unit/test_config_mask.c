/*
 * test_config_mask.c — tg_config_mask: every secret field masked, "$NAME"
 * references kept, passwords inside database URLs and keyword strings masked.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "config_mask.h"

static char *masked(const char *config)
{
    json_error_t jerr;
    json_t *root = json_loads(config, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(tg_config_mask(root), TG_OK);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    assert_non_null(text);
    return text;
}

static void test_secret_fields(void **state)
{
    (void)state;
    char *text = masked(
        "{\"providers\": {\"a\": {\"api_key\": \"sk-secret-1\", \"base_url\": \"https://x\"},"
        "                 \"b\": {\"api_key\": \"$ANTHROPIC_API_KEY\"}},"
        " \"auth\": {\"jwt\": [{\"keys\": [{\"kid\": \"k1\", \"secret\": \"hs-secret-2\"},"
        "                                 {\"kid\": \"k2\", \"pem_file\": \"/p.pem\"}]}]},"
        " \"admin\": {\"keys\": [\"admin-secret-3\", \"$TOLLGATE_ADMIN_KEY\"]}}");
    for (const char *s = "sk-secret-1\0hs-secret-2\0admin-secret-3\0"; *s; s += strlen(s) + 1)
        if (strstr(text, s) != NULL)
            fail_msg("%s is in %s", s, text);
    assert_non_null(strstr(text, "\"$ANTHROPIC_API_KEY\""));
    assert_non_null(strstr(text, "\"$TOLLGATE_ADMIN_KEY\""));
    assert_non_null(strstr(text, "\"https://x\""));
    assert_non_null(strstr(text, "\"/p.pem\""));
    free(text);
}

/* The webhook's header values are credentials; its URL and moderation's key variable are not. */
static void test_guardrail_webhook_headers(void **state)
{
    (void)state;
    char *text = masked("{\"guardrails\": {\"webhook\": {\"url\": \"http://h/check\","
                        "  \"headers\": {\"authorization\": \"Bearer wh-secret-4\","
                        "               \"x-key\": \"$GUARD_KEY\"}},"
                        " \"moderation\": {\"api_key_env\": \"OPENAI_API_KEY\"}}}");
    if (strstr(text, "wh-secret-4") != NULL)
        fail_msg("the webhook's header is in %s", text);
    assert_non_null(strstr(text, "\"authorization\":\"********\""));
    assert_non_null(strstr(text, "\"$GUARD_KEY\""));
    assert_non_null(strstr(text, "\"http://h/check\""));
    assert_non_null(strstr(text, "\"OPENAI_API_KEY\""));
    free(text);
}

static void test_database_urls(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"postgresql://tg:pw@db:5432/x", "postgresql://tg:********@db:5432/x"},
        {"postgresql://tg@db/x?password=pw&sslmode=require",
         "postgresql://tg@db/x?password=********&sslmode=require"},
        {"host=db password='p w\\'x' user=tg", "host=db password=******** user=tg"},
        {"host=db sslpassword = pw", "host=db sslpassword = ********"},
        {"postgresql:///tollgate?host=/run", "postgresql:///tollgate?host=/run"},
        {"$TOLLGATE_DATABASE_URL", "$TOLLGATE_DATABASE_URL"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        json_t *root = json_pack("{s:{s:s}}", "database", "url", cases[i][0]);
        assert_int_equal(tg_config_mask(root), TG_OK);
        const char *url =
            json_string_value(json_object_get(json_object_get(root, "database"), "url"));
        if (strcmp(url, cases[i][1]) != 0)
            fail_msg("\"%s\" became \"%s\", want \"%s\"", cases[i][0], url, cases[i][1]);
        json_decref(root);
    }
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_fields),
        cmocka_unit_test(test_database_urls),
        cmocka_unit_test(test_guardrail_webhook_headers),
    };
    return cmocka_run_group_tests_name("config_mask", tests, NULL, NULL);
}
