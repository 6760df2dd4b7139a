/*
 * test_translate_gemini.c — the pivot request to generateContent and a generateContent
 * reply back to the pivot.
 *
 * Data-driven: each directory under tests/unit/data/gemini is one case, holding any of:
 *   request.json         a pivot request, translated with tg_gemini_request_from_pivot;
 *   gemini_request.json  the generateContent body it must give (compared as JSON), or
 *   declined / error     the message it must be refused with (TG_DECLINED / TG_ERROR);
 *   gemini_reply.json    a generateContent reply, translated with tg_gemini_reply_to_pivot;
 *   reply.json           the pivot reply it must give, or
 *   reply_error          the message it must fail with;
 *   options              lines "sentinel" (TG_GEMINI_SIGNATURE_SENTINEL), "model NAME" and
 *                        "seed TEXT" (the reply's model and id seed).
 * Adding a case is adding a directory.
 *
 * The C tests check what a case file cannot: a tool round trip through both
 * directions (the ids and signatures a reply makes come back as Gemini's), the usage
 * arithmetic at its edges, stop reasons, id bases, error bodies and the schema cut alone.
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

#include "providers/translate_gemini.h"
#include "providers/translate_gemini_schema.h"
#include "unit.h"

struct options {
    unsigned flags;
    char model[128];
    char seed[128];
    bool has_model, has_seed;
};

static void read_options(const char *dir, struct options *o)
{
    memset(o, 0, sizeof(*o));
    char *text = unit_read_file(dir, "options", NULL);
    if (text == NULL)
        return;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (strcmp(line, "sentinel") == 0) {
            o->flags |= TG_GEMINI_SIGNATURE_SENTINEL;
        } else if (strncmp(line, "model ", 6) == 0) {
            snprintf(o->model, sizeof(o->model), "%s", line + 6);
            o->has_model = true;
        } else if (strncmp(line, "seed ", 5) == 0) {
            snprintf(o->seed, sizeof(o->seed), "%s", line + 5);
            o->has_seed = true;
        } else if (line[0] != '\0') {
            fail_msg("%s/options: unknown line \"%s\"", dir, line);
        }
        line = next;
    }
    free(text);
}

/* The JSON of dir/name, or NULL when the file does not exist. */
static json_t *load_json(const char *dir, const char *name)
{
    char *path = unit_path(dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        free(path);
        return NULL;
    }
    fclose(f);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (doc == NULL)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    free(path);
    return doc;
}

static char *read_chomped(const char *dir, const char *name)
{
    char *s = unit_read_file(dir, name, NULL);
    if (s != NULL)
        unit_chomp(s);
    return s;
}

static void assert_json_equal(const char *what, json_t *got, json_t *want)
{
    if (json_equal(got, want))
        return;
    char *g = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_INDENT(2) | JSON_SORT_KEYS);
    print_error("%s:\n--- want\n%s\n--- got\n%s\n", what, w, g);
    free(g);
    free(w);
    fail();
}

static void check_request(const char *dir, const struct options *o)
{
    json_t *pivot = load_json(dir, "request.json");
    if (pivot == NULL)
        return;
    json_t *want = load_json(dir, "gemini_request.json");
    char *declined = read_chomped(dir, "declined");
    char *error = read_chomped(dir, "error");
    if ((want != NULL) + (declined != NULL) + (error != NULL) != 1)
        fail_msg("%s: request.json needs one of gemini_request.json, declined, error", dir);

    json_t *got = NULL;
    char err[512];
    memset(err, 'x', sizeof(err));
    int rc = tg_gemini_request_from_pivot(pivot, o->flags, &got, err, sizeof(err));
    if (want != NULL) {
        if (rc != TG_OK)
            fail_msg("%s: rc %d: %s", dir, rc, err);
        assert_json_equal(dir, got, want);
    } else {
        const char *want_msg = declined != NULL ? declined : error;
        int want_rc = declined != NULL ? TG_DECLINED : TG_ERROR;
        assert_null(got);
        assert_non_null(memchr(err, '\0', sizeof(err)));
        if (rc != want_rc || strcmp(err, want_msg) != 0)
            fail_msg("%s:\n  want %d \"%s\"\n  got  %d \"%s\"", dir, want_rc, want_msg, rc, err);
    }
    json_decref(got);
    json_decref(want);
    json_decref(pivot);
    free(declined);
    free(error);
}

static void check_reply(const char *dir, const struct options *o)
{
    json_t *reply = load_json(dir, "gemini_reply.json");
    if (reply == NULL)
        return;
    json_t *want = load_json(dir, "reply.json");
    char *error = read_chomped(dir, "reply_error");
    if ((want != NULL) == (error != NULL))
        fail_msg("%s: gemini_reply.json needs one of reply.json, reply_error", dir);
    json_t *got = NULL;
    char err[256];
    int rc = tg_gemini_reply_to_pivot(reply, o->has_model ? o->model : NULL,
                                      o->has_seed ? o->seed : NULL, &got, err, sizeof(err));
    if (want != NULL) {
        if (rc != TG_OK)
            fail_msg("%s: rc %d: %s", dir, rc, err);
        assert_json_equal(dir, got, want);
    } else {
        assert_int_equal(rc, TG_ERROR);
        assert_null(got);
        assert_string_equal(err, error);
    }
    json_decref(got);
    json_decref(want);
    json_decref(reply);
    free(error);
}

static void test_case(void **state)
{
    const char *dir = *state;
    struct options o;
    read_options(dir, &o);
    check_request(dir, &o);
    check_reply(dir, &o);
}

/* ---- the round trip ---- */

/* A reply's tool_use blocks, sent back in a request, become Gemini's calls again. */
static void test_tool_round_trip(void **state)
{
    (void)state;
    json_t *reply = json_loads(
        "{\"candidates\": [{\"content\": {\"role\": \"model\", \"parts\": ["
        "  {\"functionCall\": {\"name\": \"get_weather\", \"args\": {\"city\": \"Paris\"}},"
        "   \"thoughtSignature\": \"Zm9vYmFy+/8=\"},"
        "  {\"functionCall\": {\"name\": \"get_time\", \"args\": {\"tz\": \"CET\"}}},"
        "  {\"functionCall\": {\"name\": \"lookup\", \"args\": {}, \"id\": \"abc-1\"}}]},"
        "  \"finishReason\": \"STOP\"}], \"responseId\": \"rt-1\"}",
        0, NULL);
    assert_non_null(reply);
    json_t *pivot_reply = NULL;
    char err[256];
    assert_int_equal(tg_gemini_reply_to_pivot(reply, "m", NULL, &pivot_reply, err, sizeof(err)),
                     TG_OK);
    assert_string_equal(json_string_value(json_object_get(pivot_reply, "stop_reason")), "tool_use");
    json_t *content = json_object_get(pivot_reply, "content");
    assert_int_equal(json_array_size(content), 3);

    /* the ids are distinct and made only of the characters Anthropic allows */
    for (size_t i = 0; i < 3; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(content, i), "id"));
        assert_non_null(id);
        assert_int_equal(strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789_-"),
                         strlen(id));
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(
                id, json_string_value(json_object_get(json_array_get(content, k), "id")));
    }

    /* the client answers every call, one of them with an error */
    json_t *results = json_array();
    for (size_t i = 0; i < 3; i++) {
        json_t *use = json_array_get(content, i);
        json_array_append_new(results,
                              json_pack("{s:s,s:O,s:s,s:b}", "type", "tool_result", "tool_use_id",
                                        json_object_get(use, "id"), "content",
                                        i == 1 ? "no such zone" : "fine", "is_error", i == 1));
    }
    json_t *request =
        json_pack("{s:s,s:i,s:[{s:s,s:s},{s:s,s:O},{s:s,s:o}]}", "model", "m", "max_tokens", 64,
                  "messages", "role", "user", "content", "Go", "role", "assistant", "content",
                  content, "role", "user", "content", results);
    assert_non_null(request);
    json_t *body = NULL;
    assert_int_equal(tg_gemini_request_from_pivot(request, 0, &body, err, sizeof(err)), TG_OK);
    json_t *want = json_loads(
        "{\"contents\": ["
        " {\"role\": \"user\", \"parts\": [{\"text\": \"Go\"}]},"
        " {\"role\": \"model\", \"parts\": ["
        "  {\"functionCall\": {\"name\": \"get_weather\", \"args\": {\"city\": \"Paris\"}},"
        "   \"thoughtSignature\": \"Zm9vYmFy+/8=\"},"
        "  {\"functionCall\": {\"name\": \"get_time\", \"args\": {\"tz\": \"CET\"}}},"
        "  {\"functionCall\": {\"name\": \"lookup\", \"args\": {}, \"id\": \"abc-1\"}}]},"
        " {\"role\": \"user\", \"parts\": ["
        "  {\"functionResponse\": {\"name\": \"get_weather\", \"response\": {\"output\": "
        "\"fine\"}}},"
        "  {\"functionResponse\": {\"name\": \"get_time\","
        "                          \"response\": {\"error\": \"no such zone\"}}},"
        "  {\"functionResponse\": {\"name\": \"lookup\", \"response\": {\"output\": \"fine\"},"
        "                          \"id\": \"abc-1\"}}]}],"
        " \"generationConfig\": {\"maxOutputTokens\": 64}}",
        0, NULL);
    assert_non_null(want);
    assert_json_equal("round trip", body, want);
    json_decref(want);
    json_decref(body);
    json_decref(request);
    json_decref(pivot_reply);
    json_decref(reply);
}

/* ---- usage ---- */

static void usage_of(const char *metadata, struct tg_usage *u)
{
    json_t *doc = metadata != NULL ? json_loads(metadata, 0, NULL) : NULL;
    tg_gemini_usage_read(doc, u);
    json_decref(doc);
}

static void test_usage(void **state)
{
    (void)state;
    struct tg_usage u;
    usage_of("{\"promptTokenCount\": 1000, \"cachedContentTokenCount\": 800,"
             " \"candidatesTokenCount\": 40, \"thoughtsTokenCount\": 60,"
             " \"totalTokenCount\": 1100}",
             &u);
    assert_int_equal(u.input_tokens, 200);
    assert_int_equal(u.cache_read_tokens, 800);
    assert_int_equal(u.cache_write_tokens, 0);
    assert_int_equal(u.output_tokens, 100);
    /* nothing counted twice: the four kinds add up to Gemini's total */
    assert_int_equal(u.input_tokens + u.cache_read_tokens + u.output_tokens, 1100);

    usage_of("{\"promptTokenCount\": 10, \"toolUsePromptTokenCount\": 5}", &u);
    assert_int_equal(u.input_tokens, 15);

    /* a cache count above the prompt's (never seen) is clamped, not negative input */
    usage_of("{\"promptTokenCount\": 10, \"cachedContentTokenCount\": 50}", &u);
    assert_int_equal(u.input_tokens, 0);
    assert_int_equal(u.cache_read_tokens, 10);

    usage_of("{\"promptTokenCount\": \"10\", \"candidatesTokenCount\": -4}", &u);
    assert_int_equal(u.input_tokens + u.output_tokens + u.cache_read_tokens, 0);
    usage_of(NULL, &u);
    assert_int_equal(u.input_tokens + u.output_tokens, 0);

    struct tg_usage k = {
        .input_tokens = 1, .output_tokens = 2, .cache_read_tokens = 3, .cache_write_tokens = 4};
    json_t *j = tg_gemini_usage_json(&k);
    json_t *want = json_pack("{s:i,s:i,s:i,s:i}", "input_tokens", 1, "output_tokens", 2,
                             "cache_read_input_tokens", 3, "cache_creation_input_tokens", 4);
    assert_json_equal("usage json", j, want);
    json_decref(j);
    json_decref(want);
}

static void test_stop_reasons(void **state)
{
    (void)state;
    static const char *const table[][3] = {
        {"STOP", "0", "end_turn"},
        {"STOP", "1", "tool_use"},
        {NULL, "0", "end_turn"},
        {"MAX_TOKENS", "1", "max_tokens"},
        {"SAFETY", "0", "refusal"},
        {"RECITATION", "0", "refusal"},
        {"BLOCKLIST", "0", "refusal"},
        {"PROHIBITED_CONTENT", "0", "refusal"},
        {"SPII", "1", "refusal"},
        {"IMAGE_SAFETY", "0", "refusal"},
        {"OTHER", "0", "end_turn"},
        {"LANGUAGE", "0", "end_turn"},
        {"MALFORMED_FUNCTION_CALL", "0", "end_turn"},
        {"FINISH_REASON_UNSPECIFIED", "0", "end_turn"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(table); i++)
        assert_string_equal(tg_gemini_stop_reason(table[i][0], table[i][1][0] == '1'), table[i][2]);
}

static void test_id_base(void **state)
{
    (void)state;
    char base[49];
    tg_gemini_id_base("a-b_c.d/e", "seed", base, sizeof(base));
    assert_string_equal(base, "abcde");
    tg_gemini_id_base(NULL, "req-42", base, sizeof(base));
    assert_string_equal(base, "req42");
    tg_gemini_id_base("--", "", base, sizeof(base));
    assert_int_equal(strlen(base), 16); /* random hex */
    assert_int_equal(strspn(base, "0123456789abcdef"), 16);
    char again[49];
    tg_gemini_id_base(NULL, NULL, again, sizeof(again));
    assert_string_not_equal(base, again);
    char long_id[200];
    memset(long_id, 'z', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    tg_gemini_id_base(long_id, NULL, base, sizeof(base));
    assert_int_equal(strlen(base), 48);
    char small[5];
    tg_gemini_id_base("abcdefgh", NULL, small, sizeof(small));
    assert_string_equal(small, "abcd");
}

static void test_tool_use_id_cases(void **state)
{
    (void)state;
    /* an id of Gemini's that cannot stand in an Anthropic id is replaced */
    json_t *part =
        json_loads("{\"functionCall\": {\"name\": \"f\", \"id\": \"has space\"}}", 0, NULL);
    json_t *id = tg_gemini_tool_use_id(part, "b", 4);
    assert_string_equal(json_string_value(id), "toolu_g4-b");
    json_decref(id);
    json_decref(part);
    /* a signature longer than the cap is dropped, not cut */
    size_t n = TG_GEMINI_MAX_SIGNATURE + 4;
    char *sig = malloc(n + 1);
    memset(sig, 'A', n);
    sig[n] = '\0';
    part = json_pack("{s:{s:s},s:s}", "functionCall", "name", "f", "thoughtSignature", sig);
    id = tg_gemini_tool_use_id(part, "b", 0);
    assert_string_equal(json_string_value(id), "toolu_g0-b");
    json_decref(id);
    json_decref(part);
    free(sig);
}

static void test_error_to_pivot(void **state)
{
    (void)state;
    json_t *body = json_loads("{\"error\": {\"code\": 429, \"message\": \"Resource exhausted\","
                              " \"status\": \"RESOURCE_EXHAUSTED\"}}",
                              0, NULL);
    json_t *e = tg_gemini_error_to_pivot(body, 429);
    json_t *want = json_loads("{\"type\": \"error\", \"error\": {\"type\": \"rate_limit_error\","
                              " \"message\": \"Resource exhausted\"}}",
                              0, NULL);
    assert_json_equal("429", e, want);
    json_decref(e);
    json_decref(want);
    /* in a stream the status comes from the body */
    e = tg_gemini_error_to_pivot(body, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "error"), "type")),
                        "rate_limit_error");
    json_decref(e);
    json_decref(body);

    e = tg_gemini_error_to_pivot(NULL, 500);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "error"), "type")),
                        "api_error");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "error"), "message")),
                        "the provider returned an error");
    json_decref(e);

    /* a long message is cut at a character boundary */
    char message[1200];
    size_t used = 0;
    while (used + 2 < sizeof(message)) {
        memcpy(message + used, "\xc3\xa9", 2); /* é */
        used += 2;
    }
    message[used] = '\0';
    body = json_pack("{s:{s:i,s:s}}", "error", "code", 400, "message", message);
    assert_non_null(body);
    e = tg_gemini_error_to_pivot(body, 400);
    json_t *msg = json_object_get(json_object_get(e, "error"), "message");
    assert_true(json_string_length(msg) <= 512);
    assert_true(json_string_length(msg) >= 510);
    json_decref(e);
    json_decref(body);
}

static void test_schema_alone(void **state)
{
    (void)state;
    /* a $ref cycle stops at the depth cap instead of recursing forever */
    json_t *schema = json_loads("{\"$ref\": \"#/$defs/Node\", \"$defs\": {\"Node\": {"
                                " \"type\": \"object\", \"properties\": {"
                                "  \"next\": {\"$ref\": \"#/$defs/Node\"}}}}}",
                                0, NULL);
    json_t *out = tg_gemini_schema(schema);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "type")), "OBJECT");
    json_t *next = json_object_get(json_object_get(out, "properties"), "next");
    assert_string_equal(json_string_value(json_object_get(next, "type")), "OBJECT");
    json_decref(out);
    json_decref(schema);

    /* not a schema at all: an unconstrained one */
    json_t *t = json_true();
    out = tg_gemini_schema(t);
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
    json_decref(t);
}

static void test_not_an_object(void **state)
{
    (void)state;
    json_t *arr = json_array();
    json_t *out = (json_t *)1;
    char err[128];
    assert_int_equal(tg_gemini_request_from_pivot(arr, 0, &out, err, sizeof(err)), TG_ERROR);
    assert_null(out);
    assert_string_equal(err, "the request is not a JSON object");
    out = (json_t *)1;
    assert_int_equal(tg_gemini_reply_to_pivot(arr, NULL, NULL, &out, err, sizeof(err)), TG_ERROR);
    assert_null(out);
    /* a tiny error buffer is still NUL-terminated */
    char tiny[8];
    assert_int_equal(tg_gemini_request_from_pivot(arr, 0, &out, tiny, sizeof(tiny)), TG_ERROR);
    assert_int_equal(strlen(tiny), 7);
    json_decref(arr);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_tool_round_trip),   cmocka_unit_test(test_usage),
        cmocka_unit_test(test_stop_reasons),      cmocka_unit_test(test_id_base),
        cmocka_unit_test(test_tool_use_id_cases), cmocka_unit_test(test_error_to_pivot),
        cmocka_unit_test(test_schema_alone),      cmocka_unit_test(test_not_an_object),
    };
    return unit_run_suite("translate_gemini", "gemini", test_case, NULL, NULL, fixed,
                          TG_ARRAY_LEN(fixed), NULL, NULL);
}
