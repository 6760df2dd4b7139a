/*
 * test_translate_bedrock.c — providers/translate_bedrock.c, pivot <-> Converse.
 *
 * Data-driven: each directory under tests/unit/data/translate_bedrock is one
 * case, its kind told by its files:
 *   pivot_request.json + converse_request.json   the request translates to it
 *   pivot_request.json + declined | error        TG_DECLINED / TG_ERROR, this message
 *   converse_reply.json + pivot_reply.json       the reply translates to it
 *   converse_reply.json + error                  TG_ERROR, this message
 *   bedrock_events + pivot_events [+ result]     a ConverseStream: one Bedrock
 *       message a line (["event", type, payload], ["exception", type, payload],
 *       ["error", code, message]; a string payload is sent as it is), each
 *       encoded with eventstream.c's encoder; the pivot events that must come
 *       out, one [name, data] a line; result "error" when the translator must
 *       end in TG_ERROR (default "ok")
 * Replies and streams are translated with id "msg_bdrk_01" and model
 * "claude-3-haiku". A stream's bytes are fed to the event-stream decoder whole,
 * byte by byte, in chunks of 7 and of 13, and split in two at every position;
 * the decoder hands each message to the stream translator; every run must give
 * the same events. JSON is compared with json_equal (key order aside).
 *
 * The rest: the usage mapping, the request path, the stream's usage fields,
 * an emit callback stopping the stream.
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

#include "providers/eventstream.h"
#include "providers/translate_bedrock.h"
#include "unit.h"

#define ID "msg_bdrk_01"
#define MODEL "claude-3-haiku"

static json_t *load_json(const char *dir, const char *name)
{
    char *path = unit_path(dir, name);
    json_error_t err;
    json_t *j = json_load_file(path, JSON_DECODE_ANY, &err);
    if (j == NULL)
        fail_msg("%s: %s", path, err.text);
    free(path);
    return j;
}

static bool has_file(const char *dir, const char *name)
{
    char *text = unit_read_file(dir, name, NULL);
    free(text);
    return text != NULL;
}

static char *read_line_file(const char *dir, const char *name)
{
    char *text = unit_read_file(dir, name, NULL);
    if (text != NULL)
        unit_chomp(text);
    return text;
}

static void expect_json(const char *dir, const json_t *got, const json_t *want)
{
    if (json_equal(got, want))
        return;
    char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS);
    fail_msg("%s:\n--- got\n%s\n--- want\n%s", dir, g, w);
}

static void run_request(const char *dir)
{
    json_t *pivot = load_json(dir, "pivot_request.json");
    char *before = json_dumps(pivot, JSON_SORT_KEYS);
    json_t *out = (json_t *)1;
    char msg[256] = "";
    int rc = tg_translate_bedrock_request(pivot, &out, msg, sizeof(msg));
    char *declined = read_line_file(dir, "declined");
    char *error = read_line_file(dir, "error");
    if (declined != NULL || error != NULL) {
        if (rc != (declined != NULL ? TG_DECLINED : TG_ERROR))
            fail_msg("%s: returned %d (message \"%s\")", dir, rc, msg);
        assert_string_equal(msg, declined != NULL ? declined : error);
        assert_null(out);
    } else {
        if (rc != TG_OK)
            fail_msg("%s: returned %d: %s", dir, rc, msg);
        json_t *want = load_json(dir, "converse_request.json");
        expect_json(dir, out, want);
        json_decref(want);
        json_decref(out);
    }
    /* the pivot is left as it was */
    char *after = json_dumps(pivot, JSON_SORT_KEYS);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(declined);
    free(error);
    json_decref(pivot);
}

static void run_reply(const char *dir)
{
    json_t *converse = load_json(dir, "converse_reply.json");
    json_t *out = (json_t *)1;
    char msg[256] = "";
    int rc = tg_translate_bedrock_reply(converse, ID, MODEL, &out, msg, sizeof(msg));
    char *error = read_line_file(dir, "error");
    if (error != NULL) {
        assert_int_equal(rc, TG_ERROR);
        assert_string_equal(msg, error);
        assert_null(out);
    } else {
        if (rc != TG_OK)
            fail_msg("%s: returned %d: %s", dir, rc, msg);
        json_t *want = load_json(dir, "pivot_reply.json");
        expect_json(dir, out, want);
        json_decref(want);
        json_decref(out);
    }
    free(error);
    json_decref(converse);
}

/* The encoded Bedrock stream of a case, malloc'd. */
static unsigned char *encode_stream(const char *dir, size_t *len)
{
    char *text = unit_read_file(dir, "bedrock_events", NULL);
    assert_non_null(text);
    unsigned char *all = NULL;
    size_t used = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_error_t err;
        json_t *item = json_loads(line, 0, &err);
        if (!json_is_array(item) || json_array_size(item) != 3)
            fail_msg("%s: bad line %s", dir, line);
        const char *kind = json_string_value(json_array_get(item, 0));
        const char *type = json_string_value(json_array_get(item, 1));
        json_t *payload = json_array_get(item, 2);
        unsigned char *frame;
        size_t frame_len;
        if (strcmp(kind, "error") == 0) {
            const char *message = json_string_value(payload);
            const struct tg_eventstream_header headers[] = {
                {":message-type", 13, TG_EVENTSTREAM_STRING, 0, (const unsigned char *)"error", 5},
                {":error-code", 11, TG_EVENTSTREAM_STRING, 0, (const unsigned char *)type,
                 strlen(type)},
                {":error-message", 14, TG_EVENTSTREAM_STRING, 0, (const unsigned char *)message,
                 strlen(message)},
            };
            assert_int_equal(tg_eventstream_encode(headers, 3, NULL, 0, &frame, &frame_len), TG_OK);
        } else {
            char *body = json_is_string(payload) ? strdup(json_string_value(payload))
                                                 : json_dumps(payload, JSON_COMPACT);
            assert_int_equal(
                tg_eventstream_encode_json(kind, type, body, strlen(body), &frame, &frame_len),
                TG_OK);
            free(body);
        }
        all = realloc(all, used + frame_len);
        assert_non_null(all);
        memcpy(all + used, frame, frame_len);
        used += frame_len;
        free(frame);
        json_decref(item);
    }
    free(text);
    *len = used;
    return all;
}

static int collect(void *ctx, const char *event_name, json_t *data)
{
    json_t *events = ctx;
    /* every data object's "type" is its event's name */
    assert_string_equal(json_string_value(json_object_get(data, "type")), event_name);
    assert_int_equal(json_array_append_new(events, json_pack("[s,O]", event_name, data)), 0);
    return TG_OK;
}

/* Feeds bytes cut at cuts[0..n) through decoder and translator; the events, and the result. */
static json_t *run_stream_split(const unsigned char *bytes, size_t len, const size_t *cuts,
                                size_t n_cuts, bool *ok, struct tg_translate_bedrock_stream *s)
{
    json_t *events = json_array();
    struct tg_eventstream_decoder dec;
    tg_translate_bedrock_stream_init(s, ID, MODEL, collect, events);
    tg_eventstream_decoder_init(&dec, 0, tg_translate_bedrock_stream_on_message, s);
    int rc = TG_OK;
    size_t from = 0;
    for (size_t i = 0; i <= n_cuts && rc == TG_OK; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        rc = tg_eventstream_feed(&dec, bytes + from, to - from);
        from = to;
    }
    if (rc == TG_OK)
        assert_int_equal(tg_eventstream_finish(&dec), TG_OK);
    int finished = tg_translate_bedrock_stream_finish(s);
    *ok = rc == TG_OK && finished == TG_OK;
    tg_eventstream_decoder_release(&dec);
    return events;
}

static void run_stream(const char *dir)
{
    size_t len;
    unsigned char *bytes = encode_stream(dir, &len);
    json_t *want = json_array();
    char *text = unit_read_file(dir, "pivot_events", NULL);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        json_array_append_new(want, json_loads(line, 0, NULL));
    free(text);
    char *result = read_line_file(dir, "result");
    bool want_ok = result == NULL || strcmp(result, "ok") == 0;
    free(result);

    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    assert_non_null(cuts);
    struct {
        size_t step; /* 0: whole; 1: byte by byte; k: chunks of k */
        const char *what;
    } plans[] = {{0, "whole"}, {1, "byte by byte"}, {7, "in 7s"}, {13, "in 13s"}};
    for (size_t p = 0; p < TG_ARRAY_LEN(plans) + len + 1; p++) {
        size_t n = 0;
        char what[64];
        if (p < TG_ARRAY_LEN(plans)) {
            for (size_t at = plans[p].step; plans[p].step > 0 && at < len; at += plans[p].step)
                cuts[n++] = at;
            snprintf(what, sizeof(what), "%s", plans[p].what);
        } else {
            cuts[n++] = p - TG_ARRAY_LEN(plans);
            snprintf(what, sizeof(what), "split at %zu", cuts[0]);
        }
        bool ok;
        struct tg_translate_bedrock_stream s;
        json_t *got = run_stream_split(bytes, len, cuts, n, &ok, &s);
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_INDENT(1));
            char *w = json_dumps(want, JSON_INDENT(1));
            fail_msg("%s, fed %s:\n--- got\n%s\n--- want\n%s", dir, what, g, w);
        }
        if (ok != want_ok)
            fail_msg("%s, fed %s: result %s, want %s (error \"%s\")", dir, what,
                     ok ? "ok" : "error", want_ok ? "ok" : "error", s.error);
        json_decref(got);
    }
    free(cuts);
    free(bytes);
    json_decref(want);
}

static void test_case(void **state)
{
    const char *dir = *state;
    if (has_file(dir, "pivot_request.json"))
        run_request(dir);
    else if (has_file(dir, "converse_reply.json"))
        run_reply(dir);
    else if (has_file(dir, "bedrock_events"))
        run_stream(dir);
    else
        fail_msg("%s: no input file", dir);
}

static void test_usage_mapping(void **state)
{
    (void)state;
    json_t *u =
        json_pack("{s:i,s:i,s:i,s:i,s:i}", "inputTokens", 15, "outputTokens", 354, "totalTokens",
                  1417, "cacheReadInputTokens", 7, "cacheWriteInputTokens", 1041);
    json_t *p = tg_translate_bedrock_usage(u);
    /* one to one: input_tokens is not inputTokens plus the cached ones */
    json_t *want = json_pack("{s:i,s:i,s:i,s:i}", "input_tokens", 15, "output_tokens", 354,
                             "cache_read_input_tokens", 7, "cache_creation_input_tokens", 1041);
    assert_true(json_equal(p, want));
    json_decref(p);
    json_decref(u);

    /* absent, null, negative and mistyped counts are zeros */
    u = json_pack("{s:i,s:s,s:n}", "inputTokens", -3, "outputTokens", "5", "cacheReadInputTokens");
    json_t *zeros = json_pack("{s:i,s:i,s:i,s:i}", "input_tokens", 0, "output_tokens", 0,
                              "cache_read_input_tokens", 0, "cache_creation_input_tokens", 0);
    p = tg_translate_bedrock_usage(u);
    assert_true(json_equal(p, zeros));
    json_decref(p);
    p = tg_translate_bedrock_usage(NULL);
    assert_true(json_equal(p, zeros));
    json_decref(p);
    json_decref(u);
    json_decref(zeros);
    json_decref(want);
}

static void test_path(void **state)
{
    (void)state;
    char out[256];
    int n = tg_translate_bedrock_path("anthropic.claude-3-haiku-20240307-v1:0", false, out,
                                      sizeof(out));
    assert_string_equal(out, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
    assert_int_equal(n, (int)strlen(out));
    tg_translate_bedrock_path("us.anthropic.claude-3-haiku-20240307-v1:0", true, out, sizeof(out));
    assert_string_equal(out, "/model/us.anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream");
    tg_translate_bedrock_path("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.m",
                              false, out, sizeof(out));
    assert_string_equal(out, "/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-"
                             "profile%2Feu.m/converse");
    /* exactly big enough, one short, empty id */
    size_t need = strlen("/model/m/converse") + 1;
    assert_int_equal(tg_translate_bedrock_path("m", false, out, need), (int)need - 1);
    assert_int_equal(tg_translate_bedrock_path("m", false, out, need - 1), TG_ERROR);
    assert_int_equal(tg_translate_bedrock_path("", false, out, sizeof(out)), TG_ERROR);
    assert_int_equal(tg_translate_bedrock_path(NULL, false, out, sizeof(out)), TG_ERROR);
}

static void test_stream_usage_fields(void **state)
{
    (void)state;
    char *dir = unit_data_dir("translate_bedrock/stream_tool_use");
    size_t len;
    unsigned char *bytes = encode_stream(dir, &len);
    bool ok;
    struct tg_translate_bedrock_stream s;
    json_t *events = run_stream_split(bytes, len, NULL, 0, &ok, &s);
    assert_true(ok);
    assert_true(s.have_usage);
    assert_int_equal(s.input_tokens, 420);
    assert_int_equal(s.output_tokens, 61);
    assert_int_equal(s.cache_read_input_tokens, 2048);
    assert_int_equal(s.cache_creation_input_tokens, 0);
    assert_string_equal(s.error, "");
    json_decref(events);
    free(bytes);
    free(dir);

    /* after an exception the usage is absent and the log line names it */
    dir = unit_data_dir("translate_bedrock/stream_model_error");
    bytes = encode_stream(dir, &len);
    events = run_stream_split(bytes, len, NULL, 0, &ok, &s);
    assert_true(ok); /* the error event went out: the stream ended */
    assert_false(s.have_usage);
    assert_non_null(strstr(s.error, "modelStreamErrorException"));
    /* the account number in Bedrock's message reaches the log, not the client */
    char *dumped = json_dumps(events, 0);
    assert_null(strstr(dumped, "123456789012"));
    assert_non_null(strstr(s.error, "123456789012"));
    free(dumped);
    json_decref(events);
    free(bytes);
    free(dir);
}

static int refuse_second(void *ctx, const char *event_name, json_t *data)
{
    (void)event_name;
    (void)data;
    int *calls = ctx;
    return ++*calls >= 2 ? TG_DECLINED : TG_OK;
}

static void test_emit_stops(void **state)
{
    (void)state;
    int calls = 0;
    struct tg_translate_bedrock_stream s;
    tg_translate_bedrock_stream_init(&s, ID, MODEL, refuse_second, &calls);
    const char *payload = "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"x\"}}";
    struct tg_eventstream_message msg = {
        .message_type = "event",
        .event_type = "contentBlockDelta",
        .content_type = "application/json",
        .error_code = "",
        .error_message = "",
        .payload = (const unsigned char *)payload,
        .payload_len = strlen(payload),
    };
    /* message_start goes out, content_block_start is refused: the refusal comes back */
    assert_int_equal(tg_translate_bedrock_stream_feed(&s, &msg), TG_DECLINED);
    assert_int_equal(calls, 2);
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_usage_mapping),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_stream_usage_fields),
        cmocka_unit_test(test_emit_stops),
    };
    return unit_run_suite("translate_bedrock", "translate_bedrock", test_case, NULL, NULL, fixed,
                          TG_ARRAY_LEN(fixed), NULL, NULL);
}
