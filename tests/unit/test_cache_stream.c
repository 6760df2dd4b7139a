/*
 * test_cache_stream.c — cache_stream.c: a stored reply replayed as a stream.
 * Each stored reply (Anthropic messages and OpenAI chat.completions: text,
 * tool calls, several blocks, UTF-8) is streamed at several piece sizes (1 byte
 * upwards, so that every multi-byte character is split at), the stream is
 * parsed back with sse.c's parser and reassembled as an SDK would, and the
 * result must equal the stored reply. Also: the frames' order and shape, the
 * usage chunk only when asked for, replies that cannot be replayed declined
 * with nothing written, a callback stopping the stream, and every allocation
 * failing in turn.
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

#include "cache_stream.h"
#include "sse.h"
#include "translate_test.h"

#define UTF8                                                                                       \
    "h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "                 \
    "\xf0\x9f\x8e\x89!"

/* ---- the stored replies ---- */

static const char *const anthropic_text =
    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\","
    "\"content\":[{\"type\":\"text\",\"text\":\"" UTF8 " " UTF8 " and a \\\"quote\\\"\\n\"}],"
    "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":40,"
    "\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":5,\"output_tokens\":9}}";

static const char *const anthropic_tool =
    "{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\","
    "\"content\":[{\"type\":\"text\",\"text\":\"Let me look.\"},{\"type\":\"tool_use\","
    "\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Z\xc3\xbcrich " UTF8 "\","
    "\"days\":[1,2],\"nested\":{\"a\":null,\"b\":true}}}],\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":30}}";

static const char *const anthropic_blocks =
    "{\"id\":\"msg_3\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
    "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Hmm, " UTF8 "\",\"signature\":\"sig==\"},"
    "{\"type\":\"text\",\"text\":\"First.\",\"citations\":[{\"type\":\"char_location\","
    "\"cited_text\":\"x\",\"document_index\":0,\"start_char_index\":0,\"end_char_index\":1}]},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"now\",\"input\":{}},"
    "{\"type\":\"redacted_thinking\",\"data\":\"opaque\"},"
    "{\"type\":\"text\",\"text\":\"Second " UTF8 "\"}],"
    "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"END\",\"usage\":{\"input_tokens\":7,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":64,"
    "\"server_tool_use\":{\"web_search_requests\":0}}}";

static const char *const openai_text =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"" UTF8 " " UTF8 "\\n\\ttab\",\"refusal\":null,\"annotations\":[]},"
    "\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":100,"
    "\"completion_tokens\":30,\"total_tokens\":130,\"prompt_tokens_details\":{\"cached_tokens\":40}"
    "},"
    "\"system_fingerprint\":\"fp\"}";

static const char *const openai_tools =
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion\",\"created\":1700000001,"
    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
    "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Z\xc3\xbcrich\\\",  "
    "\\\"unit\\\":\\\"c\\\"}\"}},{\"id\":\"call_2\",\"type\":\"function\",\"function\":"
    "{\"name\":\"now\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}],"
    "\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":11,\"total_tokens\":31}}";

static const char *const openai_text_and_tool =
    "{\"id\":\"chatcmpl-3\",\"object\":\"chat.completion\",\"created\":1700000002,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Calling " UTF8 "\",\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\","
    "\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"" UTF8 "\\\"}\"}}]},"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,"
    "\"total_tokens\":11}}";

/* ---- the sink and the parser ---- */

struct sink {
    char *buf;
    size_t len, cap;
    size_t writes;
    size_t stop_at; /* the write that returns stop_with (0: none) */
    int stop_with;
    bool torn; /* a write was not whole frames */
    const char *frame_start;
};

static int sink_write(void *ctx, const char *bytes, size_t len)
{
    struct sink *s = ctx;
    size_t start = strlen(s->frame_start);
    if (len < start + 2 || strncmp(bytes, s->frame_start, start) != 0 || bytes[len - 2] != '\n' ||
        bytes[len - 1] != '\n')
        s->torn = true;
    if (s->len + len + 1 > s->cap) {
        s->cap = (s->len + len + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        assert_non_null(s->buf);
    }
    memcpy(s->buf + s->len, bytes, len);
    s->len += len;
    s->buf[s->len] = '\0';
    s->writes++;
    return s->writes == s->stop_at ? s->stop_with : TG_OK;
}

static int collect(void *ctx, const char *event, const char *data, size_t len)
{
    json_t *events = ctx;
    json_t *payload =
        strcmp(data, "[DONE]") == 0 ? json_string("[DONE]") : json_loadb(data, len, 0, NULL);
    if (payload == NULL)
        fail_msg("an event's data is not JSON: \"%.80s\"", data);
    json_array_append_new(events, json_pack("[s, o]", event, payload));
    return TG_OK;
}

/* The stream's events as [name, data] pairs (data: JSON, or "[DONE]"). */
static json_t *parse_stream(const struct sink *s)
{
    json_t *events = json_array();
    struct tg_sse_parser p;
    tg_sse_parser_init(&p, 1 << 20, collect, events);
    assert_int_equal(tg_sse_feed(&p, s->buf != NULL ? s->buf : "", s->len), TG_OK);
    tg_sse_parser_release(&p);
    return events;
}

static struct sink stream_of(const char *reply, bool openai, bool include_usage, size_t piece)
{
    struct sink s = {.frame_start = openai ? "data: " : "event: "};
    struct tg_cache_stream_opts opts = {
        .openai = openai, .include_usage = include_usage, .piece_bytes = piece};
    assert_int_equal(tg_cache_stream_write(reply, strlen(reply), &opts, sink_write, &s), TG_OK);
    assert_false(s.torn);
    return s;
}

/* obj[key] += add (strings). */
static void append_text(json_t *obj, const char *key, json_t *add)
{
    json_t *old = json_object_get(obj, key);
    assert_true(json_is_string(old) && json_is_string(add));
    size_t a = json_string_length(old), b = json_string_length(add);
    char *joined = malloc(a + b + 1);
    memcpy(joined, json_string_value(old), a);
    memcpy(joined + a, json_string_value(add), b);
    json_object_set_new(obj, key, json_stringn(joined, a + b));
    free(joined);
}

/* ---- Anthropic: the events reassembled into a message, as the SDK does ---- */

static json_t *reassemble_anthropic(json_t *events)
{
    json_t *message = NULL, *partial = json_array();
    bool stopped = false;
    size_t i;
    json_t *pair;
    json_array_foreach(events, i, pair) {
        const char *name = json_string_value(json_array_get(pair, 0));
        json_t *data = json_array_get(pair, 1);
        assert_string_equal(name, json_string_value(json_object_get(data, "type")));
        assert_false(stopped);
        assert_true(i == 0 ? strcmp(name, "message_start") == 0 : message != NULL);
        json_t *content = message != NULL ? json_object_get(message, "content") : NULL;
        size_t index = (size_t)json_integer_value(json_object_get(data, "index"));
        json_t *block = json_array_get(content, index);
        json_t *delta = json_object_get(data, "delta");
        const char *dtype = json_string_value(json_object_get(delta, "type"));
        if (strcmp(name, "message_start") == 0) {
            message = json_deep_copy(json_object_get(data, "message"));
            assert_int_equal(json_array_size(json_object_get(message, "content")), 0);
            assert_true(json_is_null(json_object_get(message, "stop_reason")));
            assert_int_equal(json_integer_value(json_object_get(json_object_get(message, "usage"),
                                                                "output_tokens")),
                             0);
        } else if (strcmp(name, "content_block_start") == 0) {
            assert_int_equal(index, json_array_size(content));
            json_array_append_new(content, json_deep_copy(json_object_get(data, "content_block")));
            json_array_append_new(partial, json_string(""));
        } else if (strcmp(name, "content_block_delta") == 0) {
            assert_non_null(block);
            if (strcmp(dtype, "text_delta") == 0)
                append_text(block, "text", json_object_get(delta, "text"));
            else if (strcmp(dtype, "thinking_delta") == 0)
                append_text(block, "thinking", json_object_get(delta, "thinking"));
            else if (strcmp(dtype, "signature_delta") == 0)
                json_object_set(block, "signature", json_object_get(delta, "signature"));
            else if (strcmp(dtype, "citations_delta") == 0)
                json_array_append(json_object_get(block, "citations"),
                                  json_object_get(delta, "citation"));
            else if (strcmp(dtype, "input_json_delta") == 0) {
                json_t *buf = json_pack("{s:O}", "b", json_array_get(partial, index));
                append_text(buf, "b", json_object_get(delta, "partial_json"));
                json_array_set(partial, index, json_object_get(buf, "b"));
                json_decref(buf);
            } else
                fail_msg("unexpected delta %s", dtype);
        } else if (strcmp(name, "content_block_stop") == 0) {
            json_t *text = json_array_get(partial, index);
            if (json_string_length(text) > 0)
                json_object_set_new(block, "input", json_loads(json_string_value(text), 0, NULL));
        } else if (strcmp(name, "message_delta") == 0) {
            json_object_update(message, delta);
            json_object_update(json_object_get(message, "usage"), json_object_get(data, "usage"));
        } else if (strcmp(name, "message_stop") == 0) {
            stopped = true;
        } else {
            fail_msg("unexpected event %s", name);
        }
    }
    assert_true(stopped);
    json_decref(partial);
    return message;
}

static void check_anthropic(const char *reply)
{
    static const size_t pieces[] = {1, 2, 3, 5, 7, 16, 0};
    json_t *want = json_loads(reply, 0, NULL);
    assert_non_null(want);
    for (size_t k = 0; k < TG_ARRAY_LEN(pieces); k++) {
        struct sink s = stream_of(reply, false, false, pieces[k]);
        json_t *events = parse_stream(&s);
        json_t *got = reassemble_anthropic(events);
        check_json("anthropic", "the reassembled message", got, want);
        if (pieces[k] == 1) /* every character in its own delta at least */
            assert_true(json_array_size(events) > 20);
        json_decref(got);
        json_decref(events);
        free(s.buf);
    }
    json_decref(want);
}

static void test_anthropic_text(void **state)
{
    (void)state;
    check_anthropic(anthropic_text);
    /* the frames: named events, message_start first, message_stop last, no [DONE] */
    struct sink s = stream_of(anthropic_text, false, false, 0);
    assert_true(strncmp(s.buf, "event: message_start\ndata: {", 28) == 0);
    assert_non_null(strstr(s.buf, "event: content_block_delta\ndata: {\"type\":"
                                  "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                                  "\"text_delta\",\"text\":\"h\xc3\xa9llo"));
    const char *end = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    assert_string_equal(s.buf + s.len - strlen(end), end);
    assert_null(strstr(s.buf, "[DONE]"));
    free(s.buf);
}

static void test_anthropic_tool_use(void **state)
{
    (void)state;
    check_anthropic(anthropic_tool);
    struct sink s = stream_of(anthropic_tool, false, false, 0);
    /* the tool block starts with an empty input; its input comes as JSON text */
    assert_non_null(strstr(s.buf, "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\","
                                  "\"name\":\"get_weather\",\"input\":{}}"));
    assert_non_null(strstr(s.buf, "\"input_json_delta\",\"partial_json\":\"{\\\"city\\\""));
    assert_non_null(strstr(s.buf, "\"delta\":{\"stop_reason\":\"tool_use\""));
    free(s.buf);
}

static void test_anthropic_multiple_blocks(void **state)
{
    (void)state;
    check_anthropic(anthropic_blocks);
}

/* ---- OpenAI: the chunks reassembled into a chat.completion ---- */

static void check_openai_case(const char *reply, bool include_usage, size_t piece)
{
    json_t *want = json_loads(reply, 0, NULL);
    struct sink s = stream_of(reply, true, include_usage, piece);
    json_t *events = parse_stream(&s);
    size_t n = json_array_size(events);
    assert_true(n >= 3);
    const char *last = json_string_value(json_array_get(json_array_get(events, n - 1), 1));
    assert_non_null(last);
    assert_string_equal(last, "[DONE]");
    json_t *content = json_string(""), *calls = json_array(), *usage = NULL;
    const char *finish = NULL, *role = NULL;
    for (size_t i = 0; i + 1 < n; i++) {
        json_t *chunk = json_array_get(json_array_get(events, i), 1);
        assert_string_equal(json_string_value(json_object_get(chunk, "object")),
                            "chat.completion.chunk");
        assert_true(json_equal(json_object_get(chunk, "id"), json_object_get(want, "id")));
        assert_true(json_equal(json_object_get(chunk, "model"), json_object_get(want, "model")));
        assert_true(
            json_equal(json_object_get(chunk, "created"), json_object_get(want, "created")));
        assert_true(include_usage == (json_object_get(chunk, "usage") != NULL));
        json_t *choices = json_object_get(chunk, "choices");
        if (json_array_size(choices) == 0) { /* the usage chunk: last before [DONE] */
            assert_true(include_usage && i + 2 == n && usage == NULL);
            usage = json_object_get(chunk, "usage");
            continue;
        }
        json_t *choice = json_array_get(choices, 0);
        json_t *delta = json_object_get(choice, "delta");
        if (i == 0)
            role = json_string_value(json_object_get(delta, "role"));
        assert_null(finish); /* nothing after the finish_reason but usage */
        finish = json_string_value(json_object_get(choice, "finish_reason"));
        json_t *holder = json_pack("{s:O}", "c", content);
        if (json_is_string(json_object_get(delta, "content"))) {
            append_text(holder, "c", json_object_get(delta, "content"));
            json_decref(content);
            content = json_incref(json_object_get(holder, "c"));
        }
        json_decref(holder);
        size_t k;
        json_t *item;
        json_array_foreach(json_object_get(delta, "tool_calls"), k, item) {
            size_t index = (size_t)json_integer_value(json_object_get(item, "index"));
            json_t *function = json_object_get(item, "function");
            if (index == json_array_size(calls)) {
                json_array_append_new(
                    calls,
                    json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", json_object_get(item, "id"), "type",
                              "function", "function", "name", json_object_get(function, "name"),
                              "arguments", json_object_get(function, "arguments")));
            } else {
                assert_true(index + 1 == json_array_size(calls));
                append_text(json_object_get(json_array_get(calls, index), "function"), "arguments",
                            json_object_get(function, "arguments"));
            }
        }
    }
    assert_non_null(role);
    assert_string_equal(role, "assistant");
    json_t *choice = json_array_get(json_object_get(want, "choices"), 0);
    json_t *message = json_object_get(choice, "message");
    json_t *want_content = json_object_get(message, "content");
    if (json_is_null(want_content))
        assert_int_equal(json_string_length(content), 0);
    else
        check_json("openai", "the content", content, want_content);
    json_t *want_calls = json_object_get(message, "tool_calls");
    if (want_calls != NULL)
        check_json("openai", "the tool calls", calls, want_calls); /* arguments byte for byte */
    else
        assert_int_equal(json_array_size(calls), 0);
    assert_non_null(finish);
    assert_string_equal(finish, json_string_value(json_object_get(choice, "finish_reason")));
    if (include_usage) {
        json_t *want_usage = json_object_get(want, "usage");
        assert_non_null(usage);
        static const char *const counts[] = {"prompt_tokens", "completion_tokens", "total_tokens"};
        for (size_t k = 0; k < TG_ARRAY_LEN(counts); k++)
            assert_true(json_equal(json_object_get(usage, counts[k]),
                                   json_object_get(want_usage, counts[k])));
        json_int_t cached = json_integer_value(
            json_object_get(json_object_get(want_usage, "prompt_tokens_details"), "cached_tokens"));
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(usage, "prompt_tokens_details"), "cached_tokens")),
                         cached);
    } else {
        assert_null(usage);
    }
    json_decref(content);
    json_decref(calls);
    json_decref(events);
    json_decref(want);
    free(s.buf);
}

static void check_openai(const char *reply)
{
    static const size_t pieces[] = {1, 2, 3, 4, 7, 0};
    for (size_t k = 0; k < TG_ARRAY_LEN(pieces); k++) {
        check_openai_case(reply, false, pieces[k]);
        check_openai_case(reply, true, pieces[k]);
    }
}

static void test_openai_text(void **state)
{
    (void)state;
    check_openai(openai_text);
    struct sink s = stream_of(openai_text, true, false, 0);
    assert_true(strncmp(s.buf,
                        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                        "\"created\":1700000000,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,"
                        "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}",
                        140) == 0);
    assert_string_equal(s.buf + s.len - 14, "data: [DONE]\n\n");
    free(s.buf);
}

static void test_openai_tool_calls(void **state)
{
    (void)state;
    check_openai(openai_tools);
}

static void test_openai_text_and_tool_call(void **state)
{
    (void)state;
    check_openai(openai_text_and_tool);
}

/* ---- what cannot be replayed, and failures ---- */

static void test_declined_with_nothing_written(void **state)
{
    (void)state;
    static const struct {
        bool openai;
        const char *reply;
    } cases[] = {
        {false, "not json"},
        {false, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}"},
        {false, "{\"type\":\"message\",\"content\":\"a string\"}"},
        {false, "{\"type\":\"message\",\"content\":[{\"text\":\"no type\"}]}"},
        {true, "{\"object\":\"chat.completion\",\"choices\":[]}"},
        {true,
         "{\"choices\":[{\"message\":{\"content\":\"a\"}},{\"message\":{\"content\":\"b\"}}]}"},
        {true, "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I can't\"}}]}"},
        {true, "{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":{\"content\":[]}}]}"},
        {true, "{\"choices\":[{\"message\":{\"content\":\"a\",\"annotations\":[{\"type\":"
               "\"url_citation\"}]}}]}"},
        {true, "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"c\","
               "\"type\":\"custom\",\"custom\":{\"name\":\"x\",\"input\":\"y\"}}]}}]}"},
        {true, "{\"data\":[{\"embedding\":[0.1]}]}"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct sink s = {.frame_start = ""};
        struct tg_cache_stream_opts opts = {.openai = cases[i].openai};
        int rc =
            tg_cache_stream_write(cases[i].reply, strlen(cases[i].reply), &opts, sink_write, &s);
        if (rc != TG_DECLINED || s.writes != 0)
            fail_msg("case %zu: returned %d after %zu writes", i, rc, s.writes);
    }
}

static void test_callback_stops_the_stream(void **state)
{
    (void)state;
    for (int openai = 0; openai < 2; openai++) {
        struct sink s = {
            .frame_start = openai ? "data: " : "event: ", .stop_at = 3, .stop_with = 42};
        struct tg_cache_stream_opts opts = {.openai = openai != 0};
        const char *reply = openai ? openai_tools : anthropic_tool;
        assert_int_equal(tg_cache_stream_write(reply, strlen(reply), &opts, sink_write, &s), 42);
        assert_int_equal(s.writes, 3);
        free(s.buf);
    }
}

static void torture(const char *reply, bool openai)
{
    struct sink clean = stream_of(reply, openai, true, 5);
    /*
     * Failures start after the stored reply is parsed: jansson's lexer drops a
     * character when its buffer cannot grow (a jansson bug) instead of failing,
     * so an allocation failing there would change the text, not be reported.
     */
    json_set_alloc_funcs(failing_malloc, free);
    allocations = 0;
    fail_at = SIZE_MAX; /* counted, never failing */
    json_decref(json_loads(reply, 0, NULL));
    fail_at = 0;
    json_set_alloc_funcs(malloc, free);
    size_t parse = allocations;
    size_t n;
    for (n = parse + 1;; n++) {
        struct sink s = {.frame_start = openai ? "data: " : "event: "};
        struct tg_cache_stream_opts opts = {
            .openai = openai, .include_usage = true, .piece_bytes = 5};
        json_set_alloc_funcs(failing_malloc, free);
        allocations = 0;
        fail_at = n;
        int rc = tg_cache_stream_write(reply, strlen(reply), &opts, sink_write, &s);
        fail_at = 0;
        json_set_alloc_funcs(malloc, free);
        bool failed = allocations >= n;
        if (rc != TG_OK && rc != TG_ERROR)
            fail_msg("allocation %zu failing: returned %d", n, rc);
        if (rc == TG_OK) {
            assert_int_equal(s.len, clean.len);
            assert_memory_equal(s.buf, clean.buf, s.len);
        }
        free(s.buf);
        if (!failed)
            break;
    }
    assert_true(n > parse + 20); /* the allocator was in place */
    free(clean.buf);
}

static void test_torture(void **state)
{
    (void)state;
    torture(anthropic_blocks, false);
    torture(openai_text_and_tool, true);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_text),
        cmocka_unit_test(test_anthropic_tool_use),
        cmocka_unit_test(test_anthropic_multiple_blocks),
        cmocka_unit_test(test_openai_text),
        cmocka_unit_test(test_openai_tool_calls),
        cmocka_unit_test(test_openai_text_and_tool_call),
        cmocka_unit_test(test_declined_with_nothing_written),
        cmocka_unit_test(test_callback_stops_the_stream),
        cmocka_unit_test(test_torture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
