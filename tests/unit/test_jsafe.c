/*
 * test_jsafe.c — tg_jsafe_dumps and tg_jsafe_copy with jansson's allocator
 * failing each of its calls in turn: the result is whole (the same text, an
 * equal copy) or NULL, never half. json_dumps and json_copy, under the same
 * failures, are counted for the record: json_copy returns copies short of
 * members; json_dumps's cut keys showed in test_chaos.py (a settle batch
 * PostgreSQL refused as invalid JSON), not necessarily with this sample.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsafe.h"

static long fail_at; /* the allocation to fail, 1-based; 0: none */
static long calls;   /* allocations so far */
static bool failed;  /* fail_at was reached */

static void *failing_malloc(size_t size)
{
    if (++calls == fail_at) {
        failed = true;
        return NULL;
    }
    return malloc(size);
}

static void arm(long n)
{
    fail_at = n;
    calls = 0;
    failed = false;
    json_set_alloc_funcs(failing_malloc, free);
}

static void disarm(void)
{
    json_set_alloc_funcs(malloc, free);
}

/* An object whose dump grows the buffer several times, with nested values. */
static json_t *sample(void)
{
    char long_text[3000];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:[s, i, {s:s}], s:{s:s, s:n}}",
                  "request_id", "01a22a6d-d44f-700f-88e9-1927134f1428", "provider", "anthropic",
                  "model", "claude-haiku-4-5-20251001", "text", long_text, "input_tokens",
                  (json_int_t)1234, "output_tokens", (json_int_t)56, "stream", 1, "list", "a", 2,
                  "k", "v", "nested", "usage_source", "provider", "guard_rule");
    for (int i = 0; doc != NULL && i < 40; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key_number_%d_with_a_long_name", i);
        json_object_set_new(doc, key, json_integer(i)); /* mostly keys */
    }
    assert_non_null(doc);
    return doc;
}

static void test_dumps_whole_or_null(void **state)
{
    (void)state;
    json_t *doc = sample();
    char *expected = tg_jsafe_dumps(doc, JSON_COMPACT);
    assert_non_null(expected);
    long whole = 0, refused = 0, jansson_wrong = 0;
    for (long n = 1;; n++) {
        arm(n);
        char *text = tg_jsafe_dumps(doc, JSON_COMPACT);
        bool reached = failed;
        arm(n);
        char *raw = json_dumps(doc, JSON_COMPACT);
        disarm();
        if (text != NULL) {
            assert_string_equal(text, expected);
            whole++;
        } else {
            assert_true(reached); /* NULL only when an allocation failed */
            refused++;
        }
        if (raw != NULL && strcmp(raw, expected) != 0)
            jansson_wrong++;
        free(text);
        free(raw);
        if (!reached)
            break;
        assert_true(n < 100000);
    }
    printf("# tg_jsafe_dumps: %ld allocations failed in turn: %ld NULL, %ld whole; json_dumps "
           "returned wrong text %ld times\n",
           refused + whole - 1, refused, whole, jansson_wrong);
    free(expected);
    json_decref(doc);
}

static void test_copy_whole_or_null(void **state)
{
    (void)state;
    json_t *doc = sample();
    json_t *list = json_pack("[s, s, i, n, {s:i}]", "a", "b", 3, "k", 1);
    assert_non_null(list);
    json_t *sources[] = {doc, list};
    long jansson_short = 0;
    for (size_t s = 0; s < 2; s++) {
        for (long n = 1;; n++) {
            arm(n);
            json_t *copy = tg_jsafe_copy(sources[s]);
            bool reached = failed;
            arm(n);
            json_t *raw = json_copy(sources[s]);
            disarm();
            if (copy != NULL)
                assert_true(json_equal(copy, sources[s]));
            else
                assert_true(reached);
            if (raw != NULL && !json_equal(raw, sources[s]))
                jansson_short++;
            json_decref(copy);
            json_decref(raw);
            if (!reached)
                break;
        }
    }
    printf("# tg_jsafe_copy: whole or NULL; json_copy returned a short copy %ld times\n",
           jansson_short);
    assert_null(tg_jsafe_copy(NULL));
    json_decref(list);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dumps_whole_or_null),
        cmocka_unit_test(test_copy_whole_or_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
