/*
 * test_translate_gemini_stream.c — streamGenerateContent chunks to pivot stream events.
 *
 * Data-driven: each directory under tests/unit/data/gemini_stream is one case:
 *   input        the SSE bytes Gemini sends (streamGenerateContent?alt=sse), run through
 *                Tollgate's SSE parser, each event's data fed to tg_gemini_stream_feed,
 *                then tg_gemini_stream_finish;
 *   events.json  the pivot events that must come out: [[name, data], ...];
 *   options      (optional) lines "model NAME", "seed TEXT", and "finish error" when
 *                tg_gemini_stream_finish must return TG_ERROR;
 *   usage        (optional) "input=N output=N cache_read=N": the stream's usage at the end.
 * Every event's data must have "type" equal to its name. Adding a case is adding a
 * directory.
 *
 * The C tests check what a case cannot: a callback stopping the feed, a chunk that is
 * not JSON, a failure the caller reports, and the stream's state after the end.
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

#include "providers/translate_gemini_stream.h"
#include "sse.h"
#include "unit.h"

/* The events a run emitted, as [[name, data], ...]. */
struct collector {
    json_t *events;
    size_t stop_after; /* return TG_ERROR from this event on (0: never) */
};

static int collect(void *ctx, const char *name, json_t *data)
{
    struct collector *c = ctx;
    const char *type = json_string_value(json_object_get(data, "type"));
    if (type == NULL || strcmp(type, name) != 0)
        fail_msg("event \"%s\" has data of type \"%s\"", name, type != NULL ? type : "(none)");
    json_array_append_new(c->events, json_pack("[sO]", name, data));
    if (c->stop_after > 0 && json_array_size(c->events) >= c->stop_after)
        return TG_ERROR;
    return TG_OK;
}

struct run {
    struct tg_gemini_stream stream;
    int feed_rc;
};

static int on_sse(void *ctx, const char *event, const char *data, size_t len)
{
    (void)event;
    struct run *run = ctx;
    int rc = tg_gemini_stream_feed(&run->stream, data, len);
    if (rc != TG_OK)
        run->feed_rc = rc;
    return rc;
}

static void test_case(void **state)
{
    const char *dir = *state;
    char model[128] = "", seed[128] = "";
    bool finish_error = false;
    char *options = unit_read_file(dir, "options", NULL);
    for (char *line = options; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (strncmp(line, "model ", 6) == 0)
            snprintf(model, sizeof(model), "%s", line + 6);
        else if (strncmp(line, "seed ", 5) == 0)
            snprintf(seed, sizeof(seed), "%s", line + 5);
        else if (strcmp(line, "finish error") == 0)
            finish_error = true;
        else if (line[0] != '\0')
            fail_msg("%s/options: unknown line \"%s\"", dir, line);
        line = next;
    }
    free(options);

    size_t input_len = 0;
    char *input = unit_read_file(dir, "input", &input_len);
    char *events_path = unit_path(dir, "events.json");
    json_error_t jerr;
    json_t *want = json_load_file(events_path, 0, &jerr);
    if (input == NULL || want == NULL)
        fail_msg("%s: needs input and a valid events.json (%s)", dir, jerr.text);

    struct collector c = {.events = json_array()};
    struct run run = {.feed_rc = TG_OK};
    tg_gemini_stream_init(&run.stream, model[0] != '\0' ? model : NULL,
                          seed[0] != '\0' ? seed : NULL, collect, &c);
    struct tg_sse_parser p;
    tg_sse_parser_init(&p, 1 << 20, on_sse, &run);
    int rc = tg_sse_feed(&p, input, input_len);
    tg_sse_parser_release(&p);
    if (rc != TG_OK)
        fail_msg("%s: feeding returned %d", dir, rc);
    rc = tg_gemini_stream_finish(&run.stream);
    assert_int_equal(rc, finish_error ? TG_ERROR : TG_OK);
    assert_true(run.stream.ended);

    if (!json_equal(c.events, want)) {
        char *g = json_dumps(c.events, JSON_INDENT(1));
        char *w = json_dumps(want, JSON_INDENT(1));
        print_error("%s:\n--- want\n%s\n--- got\n%s\n", dir, w, g);
        free(g);
        free(w);
        fail();
    }

    char *usage = unit_read_file(dir, "usage", NULL);
    if (usage != NULL) {
        char got[128];
        snprintf(got, sizeof(got), "input=%lld output=%lld cache_read=%lld",
                 (long long)run.stream.usage.input_tokens,
                 (long long)run.stream.usage.output_tokens,
                 (long long)run.stream.usage.cache_read_tokens);
        unit_chomp(usage);
        assert_string_equal(got, usage);
        free(usage);
    }
    json_decref(c.events);
    json_decref(want);
    free(events_path);
    free(input);
}

/* ---- behaviours ---- */

static const char *const chunk_text =
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"hi\"}]}}], \"responseId\": \"x\"}";
static const char *const chunk_stop =
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"!\"}]}, \"finishReason\": "
    "\"STOP\"}],"
    " \"usageMetadata\": {\"promptTokenCount\": 3, \"candidatesTokenCount\": 2}}";

static void test_callback_stops_feed(void **state)
{
    (void)state;
    struct collector c = {.events = json_array(), .stop_after = 2};
    struct tg_gemini_stream s;
    tg_gemini_stream_init(&s, "m", NULL, collect, &c);
    /* message_start goes out, content_block_start is refused: the feed says so */
    assert_int_equal(tg_gemini_stream_feed(&s, chunk_text, strlen(chunk_text)), TG_ERROR);
    assert_int_equal(json_array_size(c.events), 2);
    json_decref(c.events);
}

static void test_not_json(void **state)
{
    (void)state;
    struct collector c = {.events = json_array()};
    struct tg_gemini_stream s;
    tg_gemini_stream_init(&s, "m", "seed", collect, &c);
    assert_int_equal(tg_gemini_stream_feed(&s, "{\"cand", 6), TG_ERROR);
    assert_int_equal(tg_gemini_stream_feed(&s, "[1]", 3), TG_ERROR);
    assert_int_equal(json_array_size(c.events), 0);
    /* the caller ends the stream with an error of its own; later calls add nothing */
    assert_int_equal(tg_gemini_stream_fail(&s, "api_error", "the provider's stream broke"), TG_OK);
    assert_true(s.failed);
    assert_int_equal(tg_gemini_stream_fail(&s, "api_error", "again"), TG_OK);
    assert_int_equal(tg_gemini_stream_finish(&s), TG_OK);
    assert_int_equal(json_array_size(c.events), 1);
    json_t *err = json_array_get(json_array_get(c.events, 0), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(err, "error"), "message")),
        "the provider's stream broke");
    json_decref(c.events);
}

static void test_state_after_end(void **state)
{
    (void)state;
    struct collector c = {.events = json_array()};
    struct tg_gemini_stream s;
    tg_gemini_stream_init(&s, NULL, NULL, collect, &c);
    assert_int_equal(tg_gemini_stream_feed(&s, chunk_text, strlen(chunk_text)), TG_OK);
    assert_true(s.started);
    assert_false(s.ended);
    assert_int_equal(tg_gemini_stream_feed(&s, chunk_stop, strlen(chunk_stop)), TG_OK);
    assert_true(s.ended);
    assert_false(s.failed);
    assert_string_equal(s.stop_reason, "end_turn");
    size_t n = json_array_size(c.events);
    /* more text after the end is not sent; finish adds nothing */
    assert_int_equal(tg_gemini_stream_feed(&s, chunk_text, strlen(chunk_text)), TG_OK);
    assert_int_equal(tg_gemini_stream_finish(&s), TG_OK);
    assert_int_equal(json_array_size(c.events), n);
    assert_int_equal(s.usage.input_tokens, 3);
    assert_int_equal(s.usage.output_tokens, 2);
    /* the model's name was unknown: message_start says "" rather than nothing */
    json_t *start = json_array_get(json_array_get(c.events, 0), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(start, "message"), "model")), "");
    json_decref(c.events);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_callback_stops_feed),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_state_after_end),
    };
    return unit_run_suite("translate_gemini_stream", "gemini_stream", test_case, NULL, NULL, fixed,
                          TG_ARRAY_LEN(fixed), NULL, NULL);
}
