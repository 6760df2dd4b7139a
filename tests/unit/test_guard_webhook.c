/*
 * test_guard_webhook.c — the remote guardrail checks without a network: the
 * bodies asked (webhook and moderation), every answer read or refused, the
 * deny reason's cap and cleaning, moderation's categories; and the config's
 * guardrails.webhook / guardrails.moderation, each error naming its field.
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

#include "arena.h"
#include "config.h"
#include "guard_webhook.h"
#include "request.h"

static const struct tg_guard_webhook_text texts[] = {
    {"system", "be nice", 7},
    {"messages[0].content", "hello\0there", 11},
};

static struct tg_guard_hook webhook = {.kind = TG_GUARD_HOOK_WEBHOOK};
static char violence[] = "violence", self_harm[] = "self-harm", model[] = "omni-moderation-latest";
static char *moderation_categories[] = {violence, self_harm};
static struct tg_guard_hook moderation = {.kind = TG_GUARD_HOOK_MODERATION,
                                          .model = model,
                                          .categories = moderation_categories,
                                          .n_categories = 2};

static int parse(const struct tg_guard_hook *hook, size_t n, const char *answer,
                 struct tg_arena *arena, struct tg_guard_webhook_verdict *v)
{
    return tg_guard_webhook_parse(hook, n, answer, strlen(answer), arena, v);
}

static void test_webhook_body(void **state)
{
    (void)state;
    struct tg_request r = {0};
    snprintf(r.request_id, sizeof(r.request_id), "%s", "0b7c9a3e-0000-4000-8000-000000000001");
    r.endpoint_path = "/v1/messages";
    r.client_model = "haiku";
    r.identity = (struct tg_identity){
        .key_prefix = "tg-AbCdEfGh", .user_id = "alice", .group_id = "eng", .role = NULL};
    size_t len = 0;
    char *body = tg_guard_webhook_body(&r, &webhook, texts, 2, &len);
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    json_t *doc = json_loads(body, JSON_ALLOW_NUL, NULL);
    assert_non_null(doc);
    json_t *want = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:n}, s:[{s:s, s:s}, {s:s, s:s#}]}", "request_id",
        r.request_id, "endpoint", "/v1/messages", "model", "haiku", "caller", "key_prefix",
        "tg-AbCdEfGh", "user_id", "alice", "group_id", "eng", "role", "texts", "where", "system",
        "text", "be nice", "where", "messages[0].content", "text", "hello\0there", (size_t)11);
    assert_true(json_equal(doc, want));
    json_decref(want);
    json_decref(doc);
    free(body);
}

static void test_moderation_body(void **state)
{
    (void)state;
    struct tg_request r = {0};
    size_t len = 0;
    char *body = tg_guard_webhook_body(&r, &moderation, texts, 1, &len);
    assert_non_null(body);
    assert_string_equal(body, "{\"model\":\"omni-moderation-latest\",\"input\":[\"be nice\"]}");
    free(body);
}

static void test_webhook_answers(void **state)
{
    (void)state;
    struct tg_arena *arena = tg_arena_new(4096);
    struct tg_guard_webhook_verdict v;
    assert_int_equal(parse(&webhook, 2, "{\"action\": \"allow\"}", arena, &v), TG_OK);
    assert_int_equal(v.action, TG_GUARD_WEBHOOK_ALLOW);

    assert_int_equal(
        parse(&webhook, 2, "{\"action\": \"deny\", \"reason\": \"no\\u0007 way\\n\"}", arena, &v),
        TG_OK);
    assert_int_equal(v.action, TG_GUARD_WEBHOOK_DENY);
    assert_string_equal(v.reason, "no way");
    assert_int_equal(parse(&webhook, 2, "{\"action\": \"deny\"}", arena, &v), TG_OK);
    assert_string_equal(v.reason, "no reason given");

    assert_int_equal(parse(&webhook, 2,
                           "{\"action\": \"replace\", \"texts\": [\"a\", \"b\\u0000c\"]}", arena,
                           &v),
                     TG_OK);
    assert_int_equal(v.action, TG_GUARD_WEBHOOK_REPLACE);
    assert_string_equal(v.texts[0], "a");
    assert_int_equal(v.lens[1], 3);
    assert_memory_equal(v.texts[1], "b\0c", 3);

    static const char *const refused[] = {
        "",
        "not json",
        "[]",
        "{\"action\": \"maybe\"}",
        "{\"action\": 1}",
        "{\"verdict\": \"allow\"}",
        "{\"action\": \"replace\", \"texts\": [\"only one\"]}",
        "{\"action\": \"replace\", \"texts\": [\"a\", \"b\", \"c\"]}",
        "{\"action\": \"replace\", \"texts\": [\"a\", 2]}",
        "{\"action\": \"replace\"}",
        "{\"action\": \"allow\", \"action\": \"deny\"}",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(refused); i++) {
        if (parse(&webhook, 2, refused[i], arena, &v) != TG_ERROR)
            fail_msg("answer %s was taken", refused[i]);
        assert_true(v.error[0] != '\0');
    }
    tg_arena_free(arena);
}

/* A long reason is cut at a character's boundary, never inside a UTF-8 sequence. */
static void test_reason_capped_on_a_character(void **state)
{
    (void)state;
    struct tg_arena *arena = tg_arena_new(4096);
    char answer[2048];
    char reason[1024] = "x"; /* 1 byte, then 3-byte characters: the cap falls inside one */
    for (size_t i = 0; i < 300; i++)
        memcpy(reason + 1 + 3 * i, "\xe2\x82\xac", 4);
    snprintf(answer, sizeof(answer), "{\"action\": \"deny\", \"reason\": \"%s\"}", reason);
    struct tg_guard_webhook_verdict v;
    assert_int_equal(parse(&webhook, 1, answer, arena, &v), TG_OK);
    size_t len = strlen(v.reason);
    assert_true(len <= TG_GUARD_WEBHOOK_MAX_REASON && len >= TG_GUARD_WEBHOOK_MAX_REASON - 3);
    assert_int_equal((len - 1) % 3, 0);
    json_t *s = json_string(v.reason); /* NULL if it were not valid UTF-8 */
    assert_non_null(s);
    json_decref(s);
    tg_arena_free(arena);
}

static void test_moderation_answers(void **state)
{
    (void)state;
    struct tg_arena *arena = tg_arena_new(4096);
    struct tg_guard_webhook_verdict v;
    const char *flagged = "{\"id\": \"modr-1\", \"results\": ["
                          "{\"flagged\": false, \"categories\": {\"violence\": false}},"
                          "{\"flagged\": true, \"categories\": {\"harassment\": true, "
                          "\"violence/graphic\": true, \"violence\": false}}]}";
    assert_int_equal(parse(&moderation, 2, flagged, arena, &v), TG_OK);
    assert_int_equal(v.action, TG_GUARD_WEBHOOK_DENY);
    assert_string_equal(v.reason, "violence/graphic"); /* under a configured category */

    const char *unlisted = "{\"results\": [{\"flagged\": true, \"categories\": "
                           "{\"harassment\": true, \"self-harmless\": true}}]}";
    assert_int_equal(parse(&moderation, 1, unlisted, arena, &v), TG_OK);
    assert_int_equal(v.action, TG_GUARD_WEBHOOK_ALLOW);

    struct tg_guard_hook any = {.kind = TG_GUARD_HOOK_MODERATION}; /* no categories: any */
    assert_int_equal(parse(&any, 1, unlisted, arena, &v), TG_OK);
    assert_int_equal(v.action, TG_GUARD_WEBHOOK_DENY);
    assert_string_equal(v.reason, "harassment");

    static const char *const refused[] = {
        "{\"results\": []}",
        "{\"results\": [{\"categories\": {}}, {\"categories\": {}}]}",
        "{\"results\": [{\"flagged\": true}]}",
        "{\"error\": {\"message\": \"bad key\"}}",
        "garbage",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(refused); i++)
        if (parse(&moderation, 1, refused[i], arena, &v) != TG_ERROR)
            fail_msg("answer %s was taken", refused[i]);
    tg_arena_free(arena);
}

#define BASE_CONFIG                                                                                \
    "{\"database\": {\"url\": \"postgresql:///x\"},"                                               \
    " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","          \
    "                      \"api_key\": \"k\"}},"                                                  \
    " \"models\": {\"m\": {\"provider\": \"p\"}}, \"guardrails\": %s}"

static struct tg_config *load(const char *guardrails, char *err, size_t err_size)
{
    char text[4096];
    snprintf(text, sizeof(text), BASE_CONFIG, guardrails);
    struct tg_config *c = NULL;
    if (tg_config_parse(text, &c, err, err_size) != TG_OK)
        return NULL;
    return c;
}

static void test_config_values(void **state)
{
    (void)state;
    char err[512] = "";
    setenv("TG_UNIT_GUARD_AUTH", "Bearer s3cret", 1);
    setenv("TG_UNIT_MOD_KEY", "sk-mod", 1);
    struct tg_config *c =
        load("{\"webhook\": {\"url\": \"http://127.0.0.1:9000/check\", \"on_error\": \"open\","
             "             \"headers\": {\"authorization\": \"$TG_UNIT_GUARD_AUTH\","
             "                           \"x-team\": \"ml\"}},"
             " \"moderation\": {\"url\": \"http://127.0.0.1:9001/v1/moderations\","
             "                \"api_key_env\": \"TG_UNIT_MOD_KEY\", \"timeout_ms\": 800,"
             "                \"categories\": [\"violence\"]}}",
             err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_null(c->guard); /* remote checks only: no local rule set */
    const struct tg_guard_hook *w = &c->guard_webhook, *m = &c->guard_moderation;
    assert_string_equal(w->url, "http://127.0.0.1:9000/check");
    assert_int_equal(w->timeout_ms, 500);
    assert_int_equal(w->connect_timeout_ms, 500);
    assert_true(w->fail_open);
    assert_int_equal(w->n_headers, 2);
    assert_string_equal(w->headers[0], "authorization: Bearer s3cret");
    assert_string_equal(w->headers[1], "x-team: ml");
    assert_int_equal(m->kind, TG_GUARD_HOOK_MODERATION);
    assert_false(m->fail_open);
    assert_int_equal(m->timeout_ms, 800);
    assert_int_equal(m->connect_timeout_ms, 800);
    assert_string_equal(m->model, "omni-moderation-latest");
    assert_int_equal(m->n_headers, 1);
    assert_string_equal(m->headers[0], "authorization: Bearer sk-mod");
    assert_int_equal(m->n_categories, 1);
    assert_string_equal(m->categories[0], "violence");
    tg_config_free(c);
    unsetenv("TG_UNIT_GUARD_AUTH");
    unsetenv("TG_UNIT_MOD_KEY");
}

static void test_config_errors_name_the_field(void **state)
{
    (void)state;
    unsetenv("TG_UNIT_UNSET");
    static const char *const cases[][2] = {
        {"{\"webhook\": {}}", "config: guardrails.webhook.url: is required"},
        {"{\"webhook\": {\"url\": \"ftp://x/check\"}}", "config: guardrails.webhook.url: "},
        {"{\"webhook\": {\"url\": \"http://x\", \"on_error\": \"sometimes\"}}",
         "config: guardrails.webhook.on_error: "},
        {"{\"webhook\": {\"url\": \"http://x\", \"timeout_ms\": 0}}",
         "config: guardrails.webhook.timeout_ms: "},
        {"{\"webhook\": {\"url\": \"http://x\", \"verbose\": true}}",
         "config: guardrails.webhook.verbose: unknown field"},
        {"{\"webhook\": {\"url\": \"http://x\", \"headers\": []}}",
         "config: guardrails.webhook.headers: "},
        {"{\"webhook\": {\"url\": \"http://x\", \"headers\": {\"bad name\": \"v\"}}}",
         "config: guardrails.webhook.headers.bad name: "},
        {"{\"webhook\": {\"url\": \"http://x\", \"headers\": {\"x-a\": \"v\\r\\nx: y\"}}}",
         "config: guardrails.webhook.headers.x-a: "},
        {"{\"webhook\": {\"url\": \"http://x\", \"headers\": {\"x-a\": \"$TG_UNIT_UNSET\"}}}",
         "config: guardrails.webhook.headers.x-a: environment variable"},
        {"{\"moderation\": {\"url\": \"http://x\", \"api_key_env\": \"TG_UNIT_UNSET\"}}",
         "config: guardrails.moderation.api_key_env: "},
        {"{\"moderation\": {\"url\": \"http://x\", \"categories\": []}}",
         "config: guardrails.moderation.categories: "},
        {"{\"moderation\": {\"url\": \"http://x\", \"categories\": [\"violence\", \"Hate!\"]}}",
         "config: guardrails.moderation.categories[1]: "},
        {"{\"moderation\": {\"url\": \"http://x\", \"headers\": {}}}",
         "config: guardrails.moderation.headers: unknown field"},
        {"{\"moderation\": \"http://x\"}", "config: guardrails.moderation: "},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char err[512] = "";
        struct tg_config *c = load(cases[i][0], err, sizeof(err));
        if (c != NULL) {
            tg_config_free(c);
            fail_msg("%s was accepted", cases[i][0]);
        }
        if (strncmp(err, cases[i][1], strlen(cases[i][1])) != 0)
            fail_msg("%s: got \"%s\", want \"%s...\"", cases[i][0], err, cases[i][1]);
    }
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhook_body),
        cmocka_unit_test(test_moderation_body),
        cmocka_unit_test(test_webhook_answers),
        cmocka_unit_test(test_reason_capped_on_a_character),
        cmocka_unit_test(test_moderation_answers),
        cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_config_errors_name_the_field),
    };
    return cmocka_run_group_tests_name("guard_webhook", tests, NULL, NULL);
}
