/*
 * test_provider_anthropic.c — reading token usage out of Anthropic replies
 * (tg_anthropic_read_usage). Forwarding and relaying need a provider: the
 * integration suite drives them against the mock.
 *
 * A table of cases: the JSON, the usage before, the usage after. "Before" is
 * non-zero where a case must show that absent fields keep earlier values.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "provider_anthropic.h"

/* clang-format off */
#define ZERO {0, 0, 0, 0, 0, 0}
#define EARLIER {11, 22, 33, 44, 0, 0}
/* clang-format on */

struct usage_case {
    const char *name;
    const char *json;
    struct tg_usage before;
    struct tg_usage after; /* input, output, cache_read, cache_write, of which 1h, searches */
};

static const struct usage_case cases[] = {
    {"full Messages response",
     "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
     "\"content\":[{\"type\":\"text\",\"text\":\"Hello!\"}],"
     "\"model\":\"claude-haiku-4-5-20251001\",\"stop_reason\":\"end_turn\","
     "\"stop_sequence\":null,\"usage\":{\"input_tokens\":2095,\"output_tokens\":503,"
     "\"cache_creation_input_tokens\":2051,\"cache_read_input_tokens\":1024,"
     "\"service_tier\":\"standard\"}}",
     ZERO,
     {2095, 503, 1024, 2051, 0, 0}},
    {"full usage replaces earlier values",
     "{\"usage\":{\"input_tokens\":1,\"output_tokens\":2,"
     "\"cache_read_input_tokens\":3,\"cache_creation_input_tokens\":4}}",
     EARLIER,
     {1, 2, 3, 4, 0, 0}},
    {"usage without cache fields",
     "{\"type\":\"message\",\"usage\":{\"input_tokens\":25,\"output_tokens\":15}}",
     ZERO,
     {25, 15, 0, 0, 0, 0}},
    {"missing usage leaves zeros", "{\"type\":\"message\",\"content\":[]}", ZERO, ZERO},
    {"missing usage keeps earlier values", "{\"type\":\"message\",\"content\":[]}", EARLIER,
     EARLIER},
    {"message_delta style: only output_tokens",
     "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
     "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}",
     EARLIER,
     {11, 15, 33, 44, 0, 0}},
    {"zero counts are values, not absences",
     "{\"usage\":{\"input_tokens\":0,\"output_tokens\":0,"
     "\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0}}",
     EARLIER, ZERO},
    {"invalid JSON leaves zeros", "{\"usage\":{\"input_tokens\":5,", ZERO, ZERO},
    {"invalid JSON keeps earlier values", "not json at all", EARLIER, EARLIER},
    {"empty body", "", EARLIER, EARLIER},
    {"usage not an object", "{\"usage\":[1,2,3]}", EARLIER, EARLIER},
    {"usage null", "{\"usage\":null}", EARLIER, EARLIER},
    {"top level not an object", "[{\"usage\":{\"input_tokens\":9}}]", EARLIER, EARLIER},
    {"counts of the wrong type are ignored",
     "{\"usage\":{\"input_tokens\":\"25\",\"output_tokens\":1.5,"
     "\"cache_read_input_tokens\":null,\"cache_creation_input_tokens\":7}}",
     EARLIER,
     {11, 22, 33, 7, 0, 0}},
    {"large counts keep 64 bits",
     "{\"usage\":{\"input_tokens\":5000000000}}",
     ZERO,
     {INT64_C(5000000000), 0, 0, 0, 0, 0}},
    {"a nested usage key (a tool's input) is not the reply's",
     "{\"content\":[{\"type\":\"tool_use\",\"input\":{\"usage\":{\"input_tokens\":999}}},"
     "{\"type\":\"text\",\"text\":\"say \\\"usage\\\":{\\\"input_tokens\\\":7} {[\"}],"
     "\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}",
     ZERO,
     {5, 6, 0, 0, 0, 0}},
    {"usage before the content is found too",
     "{\"usage\":{\"input_tokens\":8,\"output_tokens\":9},"
     "\"content\":[{\"type\":\"tool_use\",\"input\":{\"usage\":{\"input_tokens\":999}}}]}",
     ZERO,
     {8, 9, 0, 0, 0, 0}},
    {"1-hour cache writes and web searches",
     "{\"usage\":{\"input_tokens\":10,\"output_tokens\":20,\"cache_creation_input_tokens\":300,"
     "\"cache_creation\":{\"ephemeral_5m_input_tokens\":100,\"ephemeral_1h_input_tokens\":200},"
     "\"server_tool_use\":{\"web_search_requests\":3}}}",
     ZERO,
     {10, 20, 0, 300, 200, 3}},
    {"an error reply has no usage",
     "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}"
     "}",
     EARLIER, EARLIER},
};

static void check_case(const struct usage_case *c, const char *text, size_t len)
{
    struct tg_usage u = c->before;
    tg_anthropic_read_usage(text, len, &u);
    if (u.input_tokens != c->after.input_tokens || u.output_tokens != c->after.output_tokens ||
        u.cache_read_tokens != c->after.cache_read_tokens ||
        u.cache_write_tokens != c->after.cache_write_tokens ||
        u.cache_write_1h_tokens != c->after.cache_write_1h_tokens ||
        u.web_search_requests != c->after.web_search_requests)
        fail_msg("%s: got {%lld, %lld, %lld, %lld}, want {%lld, %lld, %lld, %lld}", c->name,
                 (long long)u.input_tokens, (long long)u.output_tokens,
                 (long long)u.cache_read_tokens, (long long)u.cache_write_tokens,
                 (long long)c->after.input_tokens, (long long)c->after.output_tokens,
                 (long long)c->after.cache_read_tokens, (long long)c->after.cache_write_tokens);
}

static void test_read_usage_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        const struct usage_case *c = &cases[i];
        size_t len = strlen(c->json);
        /* the body as it comes off the wire: exactly len bytes, no NUL after them */
        char *body = malloc(len > 0 ? len : 1);
        assert_non_null(body);
        memcpy(body, c->json, len);
        check_case(c, body, len);
        free(body);
    }
}

static void test_read_usage_honours_len(void **state)
{
    /* bytes past len (the rest of a reused buffer) are not part of the reply */
    (void)state;
    const char *text = "{\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}"
                       "{\"usage\":{\"input_tokens\":99}}";
    size_t json_len = strlen("{\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}");
    struct usage_case c = {"first document only", text, ZERO, {3, 4, 0, 0, 0, 0}};
    check_case(&c, text, json_len);
    /* cut short, the same bytes are invalid JSON and change nothing */
    struct usage_case cut = {"truncated document", text, EARLIER, EARLIER};
    check_case(&cut, text, json_len - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_usage_cases),
        cmocka_unit_test(test_read_usage_honours_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
