/*
 * test_translate_openai.c — the one-shot translations between OpenAI Chat
 * Completions and the pivot: translate_openai.c (a client's request to the
 * pivot), translate_openai_reply.c (the pivot's reply, usage and errors back),
 * translate_openai_backend.c (the pivot to an OpenAI backend and back). The
 * streams are test_translate_openai_stream.c's.
 *
 * Data-driven: tests/unit/data/translate_openai/<suite>/<case>/ holds one case.
 *   request_to_pivot    tg_translate_openai_request_to_pivot
 *   reply_to_openai     tg_translate_pivot_reply_to_openai
 *   request_to_openai   tg_translate_pivot_request_to_openai
 *   reply_to_pivot      tg_translate_openai_reply_to_pivot
 *   roundtrip           request_to_pivot, then request_to_openai of its result
 *     input.json   what goes in
 *     expect.json  what must come out (compared with json_equal), or
 *     error        the TG_DECLINED message, exactly (a final newline dropped)
 *     args         (optional) "name value" lines: model (NULL when absent),
 *                  default_max_tokens (4096)
 * Adding a case is adding files.
 *
 * The rest are behaviours a case file cannot express: every allocation failing
 * in turn (TG_ERROR and no leak, never another answer), usage never counted
 * twice, errors and stop reasons both ways.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/translate_openai.h"
#include "providers/translate_openai_backend.h"
#include "providers/translate_openai_reply.h"
#include "translate_test.h"
#include "unit.h"

#define ERR_SIZE 512
#define CREATED 1700000000

/* ---- the one-shot translations ---- */

struct xcase {
    char *dir;
    json_t *input;
    json_t *expect; /* NULL when an error is expected */
    char *error;
    char *args;
    char model[128];
    bool has_model;
    int64_t default_max_tokens;
};

static int load_xcase(void **state)
{
    struct xcase *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->dir = *state;
    *state = c;
    char *text = unit_read_file(c->dir, "input.json", NULL);
    if (text == NULL)
        fail_msg("%s/input.json: cannot read", c->dir);
    c->input = parse_or_fail(c->dir, "input.json", text);
    free(text);
    text = unit_read_file(c->dir, "expect.json", NULL);
    if (text != NULL) {
        c->expect = parse_or_fail(c->dir, "expect.json", text);
        free(text);
    }
    c->error = unit_read_file(c->dir, "error", NULL);
    if (c->error != NULL)
        unit_chomp(c->error);
    if ((c->expect == NULL) == (c->error == NULL))
        fail_msg("%s: needs exactly one of expect.json and error", c->dir);
    c->args = unit_read_file(c->dir, "args", NULL);
    char value[64];
    c->has_model = arg(c->args, "model", c->model, sizeof(c->model));
    c->default_max_tokens = 4096;
    if (arg(c->args, "default_max_tokens", value, sizeof(value)))
        c->default_max_tokens = strtoll(value, NULL, 10);
    return 0;
}

static int unload_xcase(void **state)
{
    struct xcase *c = *state;
    json_decref(c->input);
    json_decref(c->expect);
    free(c->error);
    free(c->args);
    free(c); /* c->dir belongs to the runner */
    return 0;
}

/* Checks one translation's result against the case. */
static void check_result(struct xcase *c, int rc, json_t *out, const char *err)
{
    if (c->error != NULL) {
        if (rc != TG_DECLINED)
            fail_msg("%s: returned %d, want TG_DECLINED \"%s\"", c->dir, rc, c->error);
        if (strcmp(err, c->error) != 0)
            fail_msg("%s: message \"%s\", want \"%s\"", c->dir, err, c->error);
        return;
    }
    if (rc != TG_OK)
        fail_msg("%s: returned %d (\"%s\"), want TG_OK", c->dir, rc, err);
    check_json(c->dir, "the translation", out, c->expect);
    json_decref(out);
}

static const char *model_of(struct xcase *c)
{
    return c->has_model ? c->model : NULL;
}

static void test_request_to_pivot(void **state)
{
    struct xcase *c = *state;
    char err[ERR_SIZE] = "";
    json_t *out = NULL;
    int rc = tg_translate_openai_request_to_pivot(c->input, c->default_max_tokens, &out, err,
                                                  sizeof(err));
    check_result(c, rc, out, err);
}

static void test_reply_to_openai(void **state)
{
    struct xcase *c = *state;
    char err[ERR_SIZE] = "";
    json_t *out = NULL;
    int rc =
        tg_translate_pivot_reply_to_openai(c->input, model_of(c), CREATED, &out, err, sizeof(err));
    check_result(c, rc, out, err);
}

static void test_request_to_openai(void **state)
{
    struct xcase *c = *state;
    char err[ERR_SIZE] = "";
    json_t *out = NULL;
    int rc = tg_translate_pivot_request_to_openai(c->input, model_of(c), &out, err, sizeof(err));
    check_result(c, rc, out, err);
}

static void test_reply_to_pivot(void **state)
{
    struct xcase *c = *state;
    char err[ERR_SIZE] = "";
    json_t *out = NULL;
    int rc = tg_translate_openai_reply_to_pivot(c->input, model_of(c), &out, err, sizeof(err));
    check_result(c, rc, out, err);
}

static void test_roundtrip(void **state)
{
    struct xcase *c = *state;
    char err[ERR_SIZE] = "";
    json_t *pivot = NULL, *out = NULL;
    int rc = tg_translate_openai_request_to_pivot(c->input, c->default_max_tokens, &pivot, err,
                                                  sizeof(err));
    if (rc != TG_OK)
        fail_msg("%s: to the pivot: returned %d (\"%s\")", c->dir, rc, err);
    rc = tg_translate_pivot_request_to_openai(pivot, model_of(c), &out, err, sizeof(err));
    json_decref(pivot);
    check_result(c, rc, out, err);
}

/* ---- every allocation failing in turn ---- */

/* One translation under test: input in, *out out. */
typedef int (*translate_fn)(json_t *input, json_t **out, char *err, size_t err_size);

static int request_to_pivot(json_t *in, json_t **out, char *err, size_t size)
{
    return tg_translate_openai_request_to_pivot(in, 4096, out, err, size);
}

static int reply_to_openai(json_t *in, json_t **out, char *err, size_t size)
{
    return tg_translate_pivot_reply_to_openai(in, NULL, CREATED, out, err, size);
}

static int request_to_openai(json_t *in, json_t **out, char *err, size_t size)
{
    return tg_translate_pivot_request_to_openai(in, NULL, out, err, size);
}

static int reply_to_pivot(json_t *in, json_t **out, char *err, size_t size)
{
    return tg_translate_openai_reply_to_pivot(in, NULL, out, err, size);
}

/* Loads a case's input.json and expect.json (suite/name under the data directory). */
static void load_pair(const char *suite_case, json_t **input, json_t **expect)
{
    char *dir = unit_data_dir(suite_case);
    assert_non_null(dir);
    char *in = unit_read_file(dir, "input.json", NULL),
         *want = unit_read_file(dir, "expect.json", NULL);
    if (in == NULL || want == NULL)
        fail_msg("%s: cannot read input.json and expect.json", dir);
    *input = parse_or_fail(dir, "input.json", in);
    *expect = parse_or_fail(dir, "expect.json", want);
    free(in);
    free(want);
    free(dir);
}

static void torture(const char *suite_case, translate_fn fn)
{
    json_t *input, *expect;
    load_pair(suite_case, &input, &expect);
    json_set_alloc_funcs(failing_malloc, free);
    size_t n;
    for (n = 1;; n++) {
        char err[ERR_SIZE] = "";
        json_t *out = NULL;
        allocations = 0;
        fail_at = n;
        int rc = fn(input, &out, err, sizeof(err));
        fail_at = 0;
        bool failed = allocations >= n;
        if (rc == TG_OK && !json_equal(out, expect))
            fail_unequal(suite_case, "the translation with an allocation failing", out, expect);
        if (rc != TG_OK && (rc != TG_ERROR || strcmp(err, "out of memory") != 0))
            fail_msg("%s: allocation %zu failing: returned %d \"%s\"", suite_case, n, rc, err);
        json_decref(out);
        if (!failed)
            break; /* every allocation has failed once */
    }
    assert_true(n > 10); /* the allocator was in place */
    json_set_alloc_funcs(malloc, free);
    json_decref(input);
    json_decref(expect);
}

static void test_torture_request_to_pivot(void **state)
{
    (void)state;
    torture("translate_openai/request_to_pivot/everything", request_to_pivot);
}

static void test_torture_reply_to_openai(void **state)
{
    (void)state;
    torture("translate_openai/reply_to_openai/tool_use", reply_to_openai);
}

static void test_torture_request_to_openai(void **state)
{
    (void)state;
    torture("translate_openai/request_to_openai/everything", request_to_openai);
}

static void test_torture_reply_to_pivot(void **state)
{
    (void)state;
    torture("translate_openai/reply_to_pivot/tool_calls", reply_to_pivot);
}

/* ---- behaviours beyond a case file ---- */

static void test_usage_never_twice(void **state)
{
    (void)state;
    /* reasoning is inside completion_tokens, cached inside prompt_tokens */
    json_t *usage = event_data("{\"prompt_tokens\":2000,\"completion_tokens\":300,"
                               "\"total_tokens\":2300,"
                               "\"prompt_tokens_details\":{\"cached_tokens\":1500},"
                               "\"completion_tokens_details\":{\"reasoning_tokens\":200}}");
    struct tg_usage u = {.cache_write_tokens = 99, .input_tokens = 99};
    tg_translate_openai_usage_read(usage, &u);
    assert_int_equal(u.input_tokens, 500);
    assert_int_equal(u.cache_read_tokens, 1500);
    assert_int_equal(u.cache_write_tokens, 0);
    assert_int_equal(u.output_tokens, 300);
    assert_int_equal(tg_usage_total(&u), 2300); /* what OpenAI's total_tokens says */
    json_t *back = tg_translate_pivot_usage_to_openai(&u);
    json_object_del(usage, "completion_tokens_details");
    check_json("usage", "OpenAI -> four kinds -> OpenAI", back, usage);
    json_decref(back);
    json_decref(usage);

    /* pivot usage: the cache's tokens are input too, once */
    json_t *pivot = event_data("{\"input_tokens\":10,\"cache_read_input_tokens\":1000,"
                               "\"cache_creation_input_tokens\":200,\"output_tokens\":50}");
    struct tg_usage p = {0};
    tg_translate_pivot_usage_read(pivot, &p);
    json_t *openai = tg_translate_pivot_usage_to_openai(&p);
    struct tg_usage again = {0};
    tg_translate_openai_usage_read(openai, &again);
    assert_int_equal(json_integer_value(json_object_get(openai, "prompt_tokens")), 1210);
    assert_int_equal(json_integer_value(json_object_get(openai, "total_tokens")), 1260);
    /* OpenAI cannot say what was a cache write: it is uncached input there */
    assert_int_equal(again.input_tokens, 210);
    assert_int_equal(again.cache_read_tokens, 1000);
    assert_int_equal(tg_usage_total(&again), tg_usage_total(&p));
    json_decref(openai);
    json_decref(pivot);

    /* not an object: nothing read; cached beyond the prompt: clamped */
    struct tg_usage untouched = {.input_tokens = 7};
    tg_translate_openai_usage_read(NULL, &untouched);
    assert_int_equal(untouched.input_tokens, 7);
    json_t *odd = event_data("{\"prompt_tokens\":10,\"completion_tokens\":-3,"
                             "\"prompt_tokens_details\":{\"cached_tokens\":50}}");
    tg_translate_openai_usage_read(odd, &untouched);
    assert_int_equal(untouched.input_tokens, 0);
    assert_int_equal(untouched.cache_read_tokens, 10);
    assert_int_equal(untouched.output_tokens, 0);
    json_decref(odd);
}

static void test_errors_both_ways(void **state)
{
    (void)state;
    json_t *pivot = event_data("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                               "\"message\":\"Overloaded\"}}");
    json_t *openai = tg_translate_pivot_error_to_openai(pivot, "x");
    json_t *want =
        event_data("{\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\","
                   "\"param\":null,\"code\":null}}");
    check_json("errors", "pivot -> OpenAI", openai, want);
    json_decref(want);
    json_t *back = tg_translate_openai_error_to_pivot(openai, "x");
    check_json("errors", "OpenAI -> pivot", back, pivot);
    json_decref(back);
    json_decref(openai);
    json_decref(pivot);

    json_t *quota = event_data("{\"error\":{\"message\":\"slow down\",\"type\":\"tokens\","
                               "\"code\":\"rate_limit_exceeded\"}}");
    back = tg_translate_openai_error_to_pivot(quota, "x");
    want = event_data("{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                      "\"message\":\"slow down\"}}");
    check_json("errors", "a rate limit", back, want);
    json_decref(back);
    json_decref(want);
    json_decref(quota);

    json_t *odd = event_data("[1]");
    back = tg_translate_openai_error_to_pivot(odd, "the provider failed");
    want = event_data("{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                      "\"message\":\"the provider failed\"}}");
    check_json("errors", "a body of another shape", back, want);
    json_decref(back);
    json_decref(want);
    openai = tg_translate_pivot_error_to_openai(odd, "bad gateway");
    want = event_data("{\"error\":{\"message\":\"bad gateway\",\"type\":\"api_error\","
                      "\"param\":null,\"code\":null}}");
    check_json("errors", "a body of another shape", openai, want);
    json_decref(openai);
    json_decref(want);
    json_decref(odd);
}

static void test_reasons(void **state)
{
    (void)state;
    static const char *const pivot_to_openai[][2] = {
        {"end_turn", "stop"},       {"stop_sequence", "stop"},     {"max_tokens", "length"},
        {"tool_use", "tool_calls"}, {"refusal", "content_filter"}, {"pause_turn", "stop"},
        {"something_new", "stop"},
    };
    for (size_t k = 0; k < TG_ARRAY_LEN(pivot_to_openai); k++)
        assert_string_equal(tg_translate_pivot_finish_reason(pivot_to_openai[k][0]),
                            pivot_to_openai[k][1]);
    assert_string_equal(tg_translate_pivot_finish_reason(NULL), "stop");
    static const char *const openai_to_pivot[][2] = {
        {"stop", "end_turn"},          {"length", "max_tokens"},      {"tool_calls", "tool_use"},
        {"function_call", "tool_use"}, {"content_filter", "refusal"}, {"other", "end_turn"},
    };
    for (size_t k = 0; k < TG_ARRAY_LEN(openai_to_pivot); k++)
        assert_string_equal(tg_translate_openai_stop_reason(openai_to_pivot[k][0]),
                            openai_to_pivot[k][1]);
    assert_string_equal(tg_translate_openai_stop_reason(NULL), "end_turn");
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_torture_request_to_pivot),
        cmocka_unit_test(test_torture_reply_to_openai),
        cmocka_unit_test(test_torture_request_to_openai),
        cmocka_unit_test(test_torture_reply_to_pivot),
        cmocka_unit_test(test_usage_never_twice),
        cmocka_unit_test(test_errors_both_ways),
        cmocka_unit_test(test_reasons),
    };
    static const struct {
        const char *suite;
        CMUnitTestFunction fn;
    } suites[] = {
        {"translate_openai/request_to_pivot", test_request_to_pivot},
        {"translate_openai/reply_to_openai", test_reply_to_openai},
        {"translate_openai/request_to_openai", test_request_to_openai},
        {"translate_openai/reply_to_pivot", test_reply_to_pivot},
        {"translate_openai/roundtrip", test_roundtrip},
    };
    int failed = 0;
    for (size_t k = 0; k < TG_ARRAY_LEN(suites); k++) {
        bool last = k + 1 == TG_ARRAY_LEN(suites);
        failed +=
            unit_run_suite(suites[k].suite, suites[k].suite, suites[k].fn, load_xcase, unload_xcase,
                           last ? fixed : NULL, last ? TG_ARRAY_LEN(fixed) : 0, NULL, NULL);
    }
    return failed;
}
