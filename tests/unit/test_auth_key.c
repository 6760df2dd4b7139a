/*
 * test_auth_key.c — which key a client presented (tg_auth_key_presented).
 * tg_auth_key_identify needs the database: the integration suite covers it.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "auth_key.h"

static void test_x_api_key_wins(void **state)
{
    (void)state;
    const char *x = "tg-key-from-header";
    assert_ptr_equal(tg_auth_key_presented(x, "Bearer tg-other"), x);
    assert_ptr_equal(tg_auth_key_presented(x, NULL), x);
    assert_ptr_equal(tg_auth_key_presented(x, "Basic dXNlcjpwYXNz"), x);
}

static void test_empty_x_api_key_is_absent(void **state)
{
    (void)state;
    const char *auth = "Bearer tg-bearer";
    assert_ptr_equal(tg_auth_key_presented("", auth), auth + 7);
    assert_null(tg_auth_key_presented("", NULL));
}

static void test_bearer_token(void **state)
{
    (void)state;
    const char *auth = "Bearer tg-abc123";
    /* borrowed: a pointer into the header, not a copy */
    assert_ptr_equal(tg_auth_key_presented(NULL, auth), auth + 7);
    assert_string_equal(tg_auth_key_presented(NULL, auth), "tg-abc123");
}

static void test_bearer_scheme_case_insensitive(void **state)
{
    (void)state;
    static const char *const forms[] = {"bearer tok", "BEARER tok", "BeArEr tok"};
    for (size_t i = 0; i < TG_ARRAY_LEN(forms); i++) {
        const char *key = tg_auth_key_presented(NULL, forms[i]);
        assert_non_null(key);
        assert_string_equal(key, "tok");
    }
}

static void test_bearer_extra_spaces(void **state)
{
    (void)state;
    const char *key = tg_auth_key_presented(NULL, "Bearer     tok");
    assert_non_null(key);
    assert_string_equal(key, "tok");
}

static void test_not_a_bearer(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "Basic dXNlcjpwYXNz", /* another scheme */
        "Token tok",
        "",
        "Bearer",       /* scheme alone */
        "Bearer ",      /* scheme and a space */
        "Bearer      ", /* scheme and only spaces */
        "Bearertok",    /* no separator */
        " Bearer tok",  /* the scheme must come first */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(headers); i++) {
        const char *key = tg_auth_key_presented(NULL, headers[i]);
        if (key != NULL)
            fail_msg("Authorization \"%s\": got key \"%s\", want none", headers[i], key);
    }
    assert_null(tg_auth_key_presented(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x_api_key_wins),
        cmocka_unit_test(test_empty_x_api_key_is_absent),
        cmocka_unit_test(test_bearer_token),
        cmocka_unit_test(test_bearer_scheme_case_insensitive),
        cmocka_unit_test(test_bearer_extra_spaces),
        cmocka_unit_test(test_not_a_bearer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
