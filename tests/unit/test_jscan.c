/*
 * test_jscan.c — the top-level member finder: which member it finds, which it
 * must not (nested keys, keys inside strings), and text it must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "jscan.h"

struct scan_case {
    const char *name;
    const char *text;
    const char *key;
    int rc;
    const char *value; /* the raw value expected for TG_OK */
};

static const struct scan_case cases[] = {
    {"a plain member", "{\"a\":1,\"usage\":{\"x\":2}}", "usage", TG_OK, "{\"x\":2}"},
    {"whitespace around everything", " {\n \"usage\" : [1, {\"b\":\"}\"}] ,\"z\":null } ", "usage",
     TG_OK, "[1, {\"b\":\"}\"}]"},
    {"scalars", "{\"n\":-1.5e3,\"t\":true,\"usage\":false}", "usage", TG_OK, "false"},
    {"nested key is not top level", "{\"a\":{\"usage\":1}}", "usage", TG_DECLINED, NULL},
    {"key inside a string", "{\"a\":\"\\\"usage\\\":1\",\"b\":2}", "usage", TG_DECLINED, NULL},
    {"escaped backslash before a quote", "{\"a\":\"x\\\\\",\"usage\":7}", "usage", TG_OK, "7"},
    {"braces inside strings do not count", "{\"a\":\"{[\",\"usage\":\"}]\"}", "usage", TG_OK,
     "\"}]\""},
    {"the last of duplicates wins", "{\"usage\":1,\"usage\":2}", "usage", TG_OK, "2"},
    {"a longer key with the same prefix", "{\"usages\":1}", "usage", TG_DECLINED, NULL},
    {"empty object", "{}", "usage", TG_DECLINED, NULL},
    {"not an object", "[{\"usage\":1}]", "usage", TG_ERROR, NULL},
    {"empty text", "", "usage", TG_ERROR, NULL},
    {"cut inside the value", "{\"usage\":{\"x\":", "usage", TG_ERROR, NULL},
    {"cut after the value", "{\"usage\":1", "usage", TG_ERROR, NULL},
    {"cut inside a string", "{\"a\":\"abc", "usage", TG_ERROR, NULL},
    {"a key that is not a string", "{usage:1}", "usage", TG_ERROR, NULL},
    {"a missing colon", "{\"usage\" 1}", "usage", TG_ERROR, NULL},
    {"a missing comma", "{\"a\":1 \"usage\":2}", "usage", TG_ERROR, NULL},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        const struct scan_case *c = &cases[i];
        const char *value = NULL;
        size_t value_len = 0;
        int rc = tg_jscan_member(c->text, strlen(c->text), c->key, &value, &value_len);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
        if (rc == TG_OK && (value_len != strlen(c->value) || memcmp(value, c->value, value_len)))
            fail_msg("%s: value \"%.*s\", want \"%s\"", c->name, (int)value_len, value, c->value);
    }
}

static void test_honours_len(void **state)
{
    /* bytes past len are not read: the same text cut short is refused */
    (void)state;
    const char *text = "{\"usage\":12345}";
    const char *value;
    size_t value_len;
    assert_int_equal(tg_jscan_member(text, strlen(text), "usage", &value, &value_len), TG_OK);
    for (size_t len = 0; len < strlen(text); len++)
        assert_int_equal(tg_jscan_member(text, len, "usage", &value, &value_len), TG_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_honours_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
