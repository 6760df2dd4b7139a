/*
 * test_guard_reply.c — the non-stream reply masker (guard_reply.c) with the
 * shipped rule set: an Anthropic Messages reply and an OpenAI chat.completion
 * get their texts masked (a block rule's finding too), everything else — id,
 * usage, tool calls, stop reason — as it was; a reply with nothing to mask is
 * left alone; a body that is not JSON is refused; findings of every action are
 * reported.
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

#include "guard.h"
#include "guard_reply.h"
#include "unit.h"
#include "guard_test.h"

struct seen {
    size_t n;
    size_t warns;
};

static void on_finding(void *ctx, const struct tg_guard_finding *f)
{
    struct seen *s = ctx;
    s->n++;
    s->warns += f->action == TG_GUARD_WARN;
}

static json_t *mask_ok(enum tg_guard_stream_dialect dialect, enum tg_guard_level level,
                       const char *body, struct seen *seen)
{
    char *out = NULL;
    size_t out_len = 0;
    assert_int_equal(tg_guard_reply_mask(rules, level, dialect, body, strlen(body), on_finding,
                                         seen, &out, &out_len),
                     TG_OK);
    assert_non_null(out);
    assert_int_equal(strlen(out), out_len);
    json_t *doc = json_loadb(out, out_len, 0, NULL);
    assert_non_null(doc);
    free(out);
    return doc;
}

static void test_anthropic_reply(void **state)
{
    (void)state;
    const char *body =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Your SSN 078-05-1120 and key "
        "AKIAQ3EXAMPLE7ZZYYXX, é\"},{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
        "\"input\":{\"x\":\"078-05-1120\"}},{\"type\":\"text\",\"text\":\"mail a@b.example.com\"}],"
        "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":12,\"output_tokens\":34}}";
    struct seen seen = {0};
    json_t *doc = mask_ok(TG_GUARD_STREAM_ANTHROPIC, TG_GUARD_STANDARD, body, &seen);
    json_t *content = json_object_get(doc, "content");
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 0), "text")),
                        "Your SSN <US_SSN> and key <AWS_ACCESS_KEY>, é");
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 2), "text")),
                        "mail <EMAIL>");
    /* everything else as it was: the tool's input, usage, ids */
    json_t *original = json_loads(body, 0, NULL);
    json_t *o_content = json_object_get(original, "content");
    assert_true(json_equal(json_array_get(content, 1), json_array_get(o_content, 1)));
    assert_true(json_equal(json_object_get(doc, "usage"), json_object_get(original, "usage")));
    json_object_del(doc, "content");
    json_object_del(original, "content");
    assert_true(json_equal(doc, original));
    assert_int_equal(seen.n, 3);
    json_decref(original);
    json_decref(doc);
}

static void test_openai_reply(void **state)
{
    (void)state;
    const char *body =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
        "\"card 4111 1111 1111 1111 ok\"},\"finish_reason\":\"stop\"},{\"index\":1,\"message\":"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},\"finish_reason\":"
        "\"tool_calls\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,"
        "\"total_tokens\":7}}";
    struct seen seen = {0};
    json_t *doc = mask_ok(TG_GUARD_STREAM_OPENAI, TG_GUARD_STANDARD, body, &seen);
    json_t *choices = json_object_get(doc, "choices");
    json_t *message = json_object_get(json_array_get(choices, 0), "message");
    assert_string_equal(json_string_value(json_object_get(message, "content")), "card <CARD> ok");
    json_t *original = json_loads(body, 0, NULL);
    assert_true(json_equal(json_array_get(choices, 1),
                           json_array_get(json_object_get(original, "choices"), 1)));
    assert_true(json_equal(json_object_get(doc, "usage"), json_object_get(original, "usage")));
    assert_int_equal(seen.n, 1);
    json_decref(original);
    json_decref(doc);
}

/* Nothing to mask: the body goes as it is; a warn is still reported. */
static void test_nothing_to_mask_and_warn(void **state)
{
    (void)state;
    const char *body = "{\"content\":[{\"type\":\"text\",\"text\":\"Our competitors' roadmap "
                       "for next year is unknown.\"}],\"usage\":{\"output_tokens\":1}}";
    struct seen seen = {0};
    char *out = (char *)"untouched";
    size_t out_len = 1;
    assert_int_equal(tg_guard_reply_mask(rules, TG_GUARD_STANDARD, TG_GUARD_STREAM_ANTHROPIC, body,
                                         strlen(body), on_finding, &seen, &out, &out_len),
                     TG_DECLINED);
    assert_null(out);
    assert_int_equal(seen.warns, 1);
    /* the wrong dialect's shape: no text found, nothing changed */
    assert_int_equal(tg_guard_reply_mask(rules, TG_GUARD_STANDARD, TG_GUARD_STREAM_OPENAI, body,
                                         strlen(body), NULL, NULL, &out, &out_len),
                     TG_DECLINED);
}

static void test_not_json_is_refused(void **state)
{
    (void)state;
    char *out;
    size_t out_len;
    const char *body = "SSN 078-05-1120";
    assert_int_equal(tg_guard_reply_mask(rules, TG_GUARD_STANDARD, TG_GUARD_STREAM_ANTHROPIC, body,
                                         strlen(body), NULL, NULL, &out, &out_len),
                     TG_ERROR);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_reply),
        cmocka_unit_test(test_openai_reply),
        cmocka_unit_test(test_nothing_to_mask_and_warn),
        cmocka_unit_test(test_not_json_is_refused),
    };
    return cmocka_run_group_tests_name("guard_reply", tests, load_shipped, free_rules);
}
