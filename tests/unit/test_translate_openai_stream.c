/*
 * test_translate_openai_stream.c — the two stream machines of
 * translate_openai_stream.c: the writer (pivot events to an OpenAI client's
 * chunks) and the reader (an OpenAI backend's chunks to pivot events).
 *
 * Data-driven: tests/unit/data/translate_openai/<suite>/<case>/ holds one case.
 *   stream_to_openai    the writer
 *     events       one event a line: name TAB data JSON ("-" for a name: NULL,
 *                  the data's type names the event)
 *     expect       one frame a line: the chunk's JSON, or [DONE]
 *     args         (optional) "name value" lines: model ("gpt-client"; "-":
 *                  NULL), id (NULL), include_usage, finish (what finish
 *                  returns: ok (default) or declined)
 *   stream_to_pivot     the reader
 *     chunks       one "data:" payload a line: JSON, or [DONE] (calls done);
 *                  done is called at the end of the file when no [DONE] did
 *     expect       one event a line: name TAB data JSON
 *     args         (optional) model (NULL), done (what done returns: ok
 *                  (default) or declined)
 * Adding a case is adding files.
 *
 * The rest are behaviours a case file cannot express: every allocation failing
 * in turn, callbacks stopping a stream, the caps, tool arguments split at every
 * position, and a backend's stream reaching a client through the pivot.
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

#include "providers/translate_openai_stream.h"
#include "translate_test.h"
#include "unit.h"

#define ERR_SIZE 512
#define CREATED 1700000000

/* ---- the streams ---- */

/* Bytes written by a writer; every write must be whole SSE frames. */
struct sink {
    char *buf;
    size_t len, cap;
    size_t writes;
    size_t stop_at; /* the write that returns stop_with (0: none) */
    int stop_with;
    bool torn; /* a write was not whole "data: ...\n\n" frames */
};

static int sink_write(void *ctx, const char *bytes, size_t len)
{
    struct sink *s = ctx;
    if (len < 8 || strncmp(bytes, "data: ", 6) != 0 || bytes[len - 2] != '\n' ||
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

/* The frames of s as a JSON array: each chunk's JSON, or the string "[DONE]". */
static json_t *sink_frames(const char *dir, struct sink *s)
{
    json_t *frames = json_array();
    const char *p = s->buf != NULL ? s->buf : "";
    while (*p != '\0') {
        const char *end = strstr(p, "\n\n");
        if (strncmp(p, "data: ", 6) != 0 || end == NULL)
            fail_msg("%s: not an SSE data frame: \"%.80s\"", dir, p);
        char *payload = strndup(p + 6, (size_t)(end - p - 6));
        json_t *v = strcmp(payload, "[DONE]") == 0 ? json_string("[DONE]")
                                                   : parse_or_fail(dir, "a written chunk", payload);
        free(payload);
        json_array_append_new(frames, v);
        p = end + 2;
    }
    return frames;
}

/* Lines of dir/name as a JSON array: "name TAB json" as [name, json], else the JSON (or "[DONE]").
 */
static json_t *read_lines(const char *dir, const char *name, bool named)
{
    char *text = unit_read_file(dir, name, NULL);
    if (text == NULL)
        fail_msg("%s/%s: cannot read", dir, name);
    json_t *lines = json_array();
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (named) {
            char *tab = strchr(line, '\t');
            if (tab == NULL)
                fail_msg("%s/%s: line without a TAB: \"%s\"", dir, name, line);
            *tab = '\0';
            json_array_append_new(lines,
                                  json_pack("[s, o]", line, parse_or_fail(dir, name, tab + 1)));
        } else if (strcmp(line, "[DONE]") == 0) {
            json_array_append_new(lines, json_string("[DONE]"));
        } else {
            json_array_append_new(lines, parse_or_fail(dir, name, line));
        }
    }
    free(text);
    return lines;
}

static void test_stream_to_openai(void **state)
{
    const char *dir = *state;
    char *args = unit_read_file(dir, "args", NULL);
    char model[128] = "gpt-client", id[128], finish[32] = "ok", flag[8];
    bool has_id = arg(args, "id", id, sizeof(id));
    bool include_usage = arg(args, "include_usage", flag, sizeof(flag));
    arg(args, "model", model, sizeof(model));
    arg(args, "finish", finish, sizeof(finish));
    free(args);
    json_t *events = read_lines(dir, "events", true);
    json_t *want = read_lines(dir, "expect", false);

    struct sink s = {0};
    struct tg_translate_openai_writer w;
    const char *model_arg = strcmp(model, "-") == 0 ? NULL : model;
    assert_int_equal(tg_translate_openai_writer_init(&w, model_arg, CREATED, has_id ? id : NULL,
                                                     include_usage, sink_write, &s),
                     TG_OK);
    size_t i;
    json_t *event;
    json_array_foreach(events, i, event) {
        const char *name = json_string_value(json_array_get(event, 0));
        int rc = tg_translate_openai_writer_feed(&w, strcmp(name, "-") == 0 ? NULL : name,
                                                 json_array_get(event, 1));
        if (rc != TG_OK)
            fail_msg("%s: event %zu: feed returned %d", dir, i, rc);
    }
    int rc = tg_translate_openai_writer_finish(&w);
    tg_translate_openai_writer_release(&w);
    int want_rc = strcmp(finish, "declined") == 0 ? TG_DECLINED : TG_OK;
    if (rc != want_rc)
        fail_msg("%s: finish returned %d, want %d", dir, rc, want_rc);
    if (s.torn)
        fail_msg("%s: a write was not whole frames", dir);
    json_t *got = sink_frames(dir, &s);
    check_json(dir, "the chunks", got, want);
    json_decref(got);
    json_decref(want);
    json_decref(events);
    free(s.buf);
}

/* Events emitted by a reader, as [name, data] pairs. */
struct events {
    json_t *list;
    size_t stop_at; /* the event that returns stop_with (0: none) */
    int stop_with;
};

static int collect_event(void *ctx, const char *event, json_t *data)
{
    struct events *e = ctx;
    size_t failing = fail_at; /* the collector's own allocations are not under test */
    fail_at = 0;
    const char *type = json_string_value(json_object_get(data, "type"));
    if (type == NULL || strcmp(type, event) != 0)
        fail_msg("event \"%s\" has data of type \"%s\"", event, type != NULL ? type : "(none)");
    json_array_append_new(e->list, json_pack("[s, O]", event, data));
    fail_at = failing;
    return json_array_size(e->list) == e->stop_at ? e->stop_with : TG_OK;
}

static void test_stream_to_pivot(void **state)
{
    const char *dir = *state;
    char *args = unit_read_file(dir, "args", NULL);
    char model[128], done[32] = "ok";
    bool has_model = arg(args, "model", model, sizeof(model));
    arg(args, "done", done, sizeof(done));
    free(args);
    json_t *chunks = read_lines(dir, "chunks", false);
    json_t *want = read_lines(dir, "expect", true);

    struct events e = {.list = json_array()};
    struct tg_translate_openai_reader r;
    assert_int_equal(
        tg_translate_openai_reader_init(&r, has_model ? model : NULL, collect_event, &e), TG_OK);
    int want_rc = strcmp(done, "declined") == 0 ? TG_DECLINED : TG_OK, rc = TG_OK;
    bool done_called = false;
    size_t i;
    json_t *chunk;
    json_array_foreach(chunks, i, chunk) {
        if (json_is_string(chunk)) { /* [DONE] */
            rc = tg_translate_openai_reader_done(&r);
            done_called = true;
        } else if ((rc = tg_translate_openai_reader_feed(&r, chunk)) != TG_OK) {
            fail_msg("%s: chunk %zu: feed returned %d", dir, i, rc);
        }
    }
    if (!done_called)
        rc = tg_translate_openai_reader_done(&r);
    tg_translate_openai_reader_release(&r);
    if (rc != want_rc)
        fail_msg("%s: done returned %d, want %d", dir, rc, want_rc);
    check_json(dir, "the events", e.list, want);
    json_decref(e.list);
    json_decref(want);
    json_decref(chunks);
}

/* ---- every allocation failing in turn ---- */

static void test_torture_writer(void **state)
{
    (void)state;
    char *dir = unit_data_dir("translate_openai/stream_to_openai/tool_use");
    json_t *events = read_lines(dir, "events", true), *want = read_lines(dir, "expect", false);
    json_set_alloc_funcs(failing_malloc, free);
    size_t n;
    for (n = 1;; n++) {
        struct sink s = {0};
        struct tg_translate_openai_writer w;
        allocations = 0;
        fail_at = n;
        int rc =
            tg_translate_openai_writer_init(&w, "gpt-client", CREATED, NULL, true, sink_write, &s);
        size_t i;
        json_t *event;
        json_array_foreach(events, i, event) {
            if (rc != TG_OK)
                break;
            rc = tg_translate_openai_writer_feed(&w, json_string_value(json_array_get(event, 0)),
                                                 json_array_get(event, 1));
        }
        if (rc == TG_OK)
            rc = tg_translate_openai_writer_finish(&w);
        tg_translate_openai_writer_release(&w);
        fail_at = 0;
        bool failed = allocations >= n;
        if (rc != TG_OK && rc != TG_ERROR)
            fail_msg("%s: allocation %zu failing: returned %d", dir, n, rc);
        if (rc == TG_OK) {
            json_set_alloc_funcs(malloc, free);
            json_t *got = sink_frames(dir, &s);
            check_json(dir, "the chunks with an allocation failing", got, want);
            json_decref(got);
            json_set_alloc_funcs(failing_malloc, free);
        }
        free(s.buf);
        if (!failed)
            break;
    }
    assert_true(n > 10); /* the allocator was in place */
    json_set_alloc_funcs(malloc, free);
    json_decref(events);
    json_decref(want);
    free(dir);
}

static void test_torture_reader(void **state)
{
    (void)state;
    char *dir = unit_data_dir("translate_openai/stream_to_pivot/tool_calls");
    json_t *chunks = read_lines(dir, "chunks", false), *want = read_lines(dir, "expect", true);
    size_t n;
    for (n = 1;; n++) {
        struct events e = {.list = json_array()};
        struct tg_translate_openai_reader r;
        json_set_alloc_funcs(failing_malloc, free);
        allocations = 0;
        fail_at = n;
        int rc = tg_translate_openai_reader_init(&r, NULL, collect_event, &e);
        size_t i;
        json_t *chunk;
        json_array_foreach(chunks, i, chunk) {
            if (rc != TG_OK)
                break;
            rc = json_is_string(chunk) ? tg_translate_openai_reader_done(&r)
                                       : tg_translate_openai_reader_feed(&r, chunk);
        }
        tg_translate_openai_reader_release(&r);
        fail_at = 0;
        json_set_alloc_funcs(malloc, free);
        bool failed = allocations >= n;
        if (rc != TG_OK && rc != TG_ERROR)
            fail_msg("%s: allocation %zu failing: returned %d", dir, n, rc);
        if (rc == TG_OK)
            check_json(dir, "the events with an allocation failing", e.list, want);
        json_decref(e.list);
        if (!failed)
            break;
    }
    assert_true(n > 10); /* the allocator was in place */
    json_decref(chunks);
    json_decref(want);
    free(dir);
}

/* ---- behaviours beyond a case file ---- */

static int feed_text(struct tg_translate_openai_writer *w, const char *event, const char *data)
{
    json_t *v = event_data(data);
    int rc = tg_translate_openai_writer_feed(w, event, v);
    json_decref(v);
    return rc;
}

static void test_writer_callback_stops(void **state)
{
    (void)state;
    struct sink s = {.stop_at = 2, .stop_with = 7};
    struct tg_translate_openai_writer w;
    assert_int_equal(
        tg_translate_openai_writer_init(&w, "m", CREATED, "chatcmpl-x", false, sink_write, &s),
        TG_OK);
    assert_int_equal(feed_text(&w, "message_start", "{\"type\":\"message_start\",\"message\":{}}"),
                     TG_OK);
    /* the second write (the first text) answers 7: the feed returns it */
    assert_int_equal(feed_text(&w, "content_block_delta",
                               "{\"type\":\"content_block_delta\",\"index\":0,"
                               "\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}"),
                     7);
    assert_int_equal(s.writes, 2);
    tg_translate_openai_writer_release(&w);
    tg_translate_openai_writer_release(&w); /* twice is harmless */
    free(s.buf);
}

static void test_writer_block_index_cap(void **state)
{
    (void)state;
    struct sink s = {0};
    struct tg_translate_openai_writer w;
    assert_int_equal(
        tg_translate_openai_writer_init(&w, NULL, CREATED, NULL, false, sink_write, &s), TG_OK);
    char data[256];
    snprintf(data, sizeof(data),
             "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":"
             "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{}}}",
             TG_TRANSLATE_OPENAI_MAX_BLOCKS);
    assert_int_equal(feed_text(&w, "content_block_start", data), TG_ERROR);
    tg_translate_openai_writer_release(&w);
    free(s.buf);
}

static int feed_chunk(struct tg_translate_openai_reader *r, const char *text)
{
    json_t *v = event_data(text);
    int rc = tg_translate_openai_reader_feed(r, v);
    json_decref(v);
    return rc;
}

static void test_reader_callback_stops(void **state)
{
    (void)state;
    struct events e = {.list = json_array(), .stop_at = 2, .stop_with = 7};
    struct tg_translate_openai_reader r;
    assert_int_equal(tg_translate_openai_reader_init(&r, "m", collect_event, &e), TG_OK);
    /* message_start, then content_block_start answers 7 */
    assert_int_equal(feed_chunk(&r, "{\"id\":\"c\",\"choices\":[{\"index\":0,"
                                    "\"delta\":{\"content\":\"hi\"}}]}"),
                     7);
    assert_int_equal(json_array_size(e.list), 2);
    tg_translate_openai_reader_release(&r);
    tg_translate_openai_reader_release(&r); /* twice is harmless */
    json_decref(e.list);
}

static void test_reader_tool_call_cap(void **state)
{
    (void)state;
    struct events e = {.list = json_array()};
    struct tg_translate_openai_reader r;
    assert_int_equal(tg_translate_openai_reader_init(&r, NULL, collect_event, &e), TG_OK);
    char chunk[256];
    int rc = TG_OK, k;
    for (k = 0; k <= TG_TRANSLATE_OPENAI_MAX_TOOL_CALLS && rc == TG_OK; k++) {
        snprintf(chunk, sizeof(chunk),
                 "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,"
                 "\"id\":\"call_%d\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}",
                 k, k);
        rc = feed_chunk(&r, chunk);
    }
    assert_int_equal(rc, TG_ERROR);
    assert_int_equal(k, TG_TRANSLATE_OPENAI_MAX_TOOL_CALLS + 1);
    tg_translate_openai_reader_release(&r);
    json_decref(e.list);
}

/* The partial_json of the input_json_delta events at block index, concatenated. */
static char *gathered_arguments(json_t *events, int index)
{
    size_t cap = 1024, len = 0, i;
    char *out = calloc(cap, 1);
    json_t *event;
    json_array_foreach(events, i, event) {
        json_t *data = json_array_get(event, 1);
        json_t *partial = json_object_get(json_object_get(data, "delta"), "partial_json");
        if (!json_is_string(partial) || json_integer_value(json_object_get(data, "index")) != index)
            continue;
        assert_true(len + json_string_length(partial) < cap);
        memcpy(out + len, json_string_value(partial), json_string_length(partial));
        len += json_string_length(partial);
    }
    return out;
}

/* A chunk of a tool call's arguments piece (the first piece names the call). */
static json_t *arguments_chunk(const char *piece, size_t len, bool first)
{
    json_t *call = json_pack("{s:i, s:{s:s%}}", "index", 0, "function", "arguments", piece, len);
    if (first) {
        json_object_set_new(call, "id", json_string("call_1"));
        json_object_set_new(call, "type", json_string("function"));
        json_object_set_new(json_object_get(call, "function"), "name", json_string("weather"));
    }
    return json_pack("{s:s, s:s, s:[{s:i, s:{s:[o]}, s:n}]}", "id", "c1", "model", "gpt", "choices",
                     "index", 0, "delta", "tool_calls", call, "finish_reason");
}

static void test_reader_arguments_split_everywhere(void **state)
{
    (void)state;
    static const char args[] =
        "{\"city\":\"Z\xc3\xbcrich\",\"days\":[1,2,3],\"note\":\"\xe2\x98\x83 a\\\"b\"}";
    size_t n = strlen(args);
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            /* chunks carry JSON strings: a piece never splits a character */
            if (((unsigned char)args[i] & 0xC0) == 0x80 || ((unsigned char)args[j] & 0xC0) == 0x80)
                continue;
            struct events e = {.list = json_array()};
            struct tg_translate_openai_reader r;
            assert_int_equal(tg_translate_openai_reader_init(&r, NULL, collect_event, &e), TG_OK);
            size_t cuts[4] = {0, i, j, n};
            for (int k = 0; k < 3; k++) {
                json_t *chunk = arguments_chunk(args + cuts[k], cuts[k + 1] - cuts[k], k == 0);
                assert_non_null(chunk);
                assert_int_equal(tg_translate_openai_reader_feed(&r, chunk), TG_OK);
                json_decref(chunk);
            }
            assert_int_equal(tg_translate_openai_reader_done(&r), TG_OK);
            tg_translate_openai_reader_release(&r);
            char *got = gathered_arguments(e.list, 0);
            if (strcmp(got, args) != 0)
                fail_msg("split at %zu and %zu: arguments \"%s\"", i, j, got);
            free(got);
            /* and the stop_reason is tool_use though no finish_reason came */
            json_t *last_delta = json_array_get(e.list, json_array_size(e.list) - 2);
            assert_string_equal(
                json_string_value(json_object_get(
                    json_object_get(json_array_get(last_delta, 1), "delta"), "stop_reason")),
                "tool_use");
            json_decref(e.list);
        }
    }
}

/* Reader then writer: an OpenAI backend's stream reaches an OpenAI client with its meaning. */
static int forward_to_writer(void *ctx, const char *event, json_t *data)
{
    return tg_translate_openai_writer_feed(ctx, event, data);
}

static void test_stream_through_the_pivot(void **state)
{
    (void)state;
    char *dir = unit_data_dir("translate_openai/stream_to_pivot/tool_calls");
    json_t *chunks = read_lines(dir, "chunks", false);
    struct sink s = {0};
    struct tg_translate_openai_writer w;
    struct tg_translate_openai_reader r;
    assert_int_equal(tg_translate_openai_writer_init(&w, "gpt-client", CREATED, "chatcmpl-x", true,
                                                     sink_write, &s),
                     TG_OK);
    assert_int_equal(tg_translate_openai_reader_init(&r, NULL, forward_to_writer, &w), TG_OK);
    size_t i;
    json_t *chunk;
    json_array_foreach(chunks, i, chunk) {
        int rc = json_is_string(chunk) ? tg_translate_openai_reader_done(&r)
                                       : tg_translate_openai_reader_feed(&r, chunk);
        assert_int_equal(rc, TG_OK);
    }
    assert_int_equal(tg_translate_openai_writer_finish(&w), TG_OK);
    json_t *frames = sink_frames(dir, &s);
    /* gather what each side says: text, each call's arguments, finish_reason, usage */
    char text[256] = "", arguments[2][256] = {"", ""}, finish[32] = "";
    json_t *usage = NULL, *frame;
    json_array_foreach(frames, i, frame) {
        json_t *delta =
            json_object_get(json_array_get(json_object_get(frame, "choices"), 0), "delta");
        const char *content = json_string_value(json_object_get(delta, "content"));
        const char *reason = json_string_value(
            json_object_get(json_array_get(json_object_get(frame, "choices"), 0), "finish_reason"));
        if (content != NULL)
            strncat(text, content, sizeof(text) - strlen(text) - 1);
        if (reason != NULL)
            snprintf(finish, sizeof(finish), "%s", reason);
        size_t k;
        json_t *call;
        json_array_foreach(json_object_get(delta, "tool_calls"), k, call) {
            json_int_t index = json_integer_value(json_object_get(call, "index"));
            const char *piece =
                json_string_value(json_object_get(json_object_get(call, "function"), "arguments"));
            assert_true(index >= 0 && index < 2);
            if (piece != NULL)
                strncat(arguments[index], piece,
                        sizeof(arguments[0]) - strlen(arguments[index]) - 1);
        }
        if (json_is_object(json_object_get(frame, "usage")))
            usage = json_object_get(frame, "usage");
    }
    assert_string_equal(text, "Let me check.");
    assert_string_equal(arguments[0], "{\"city\":\"Paris\",\"unit\":\"c\"}");
    assert_string_equal(arguments[1], "{\"city\":\"Rome\"}");
    assert_string_equal(finish, "tool_calls");
    /* the usage the backend reported, unchanged by two mappings: nothing counted twice */
    json_t *want =
        json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", 2000, "completion_tokens", 300,
                  "total_tokens", 2300, "prompt_tokens_details", "cached_tokens", 1500);
    check_json(dir, "the usage through the pivot", usage, want);
    json_decref(want);
    json_decref(frames);
    json_decref(chunks);
    tg_translate_openai_reader_release(&r);
    tg_translate_openai_writer_release(&w);
    free(s.buf);
    free(dir);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_torture_writer),
        cmocka_unit_test(test_torture_reader),
        cmocka_unit_test(test_writer_callback_stops),
        cmocka_unit_test(test_writer_block_index_cap),
        cmocka_unit_test(test_reader_callback_stops),
        cmocka_unit_test(test_reader_tool_call_cap),
        cmocka_unit_test(test_reader_arguments_split_everywhere),
        cmocka_unit_test(test_stream_through_the_pivot),
    };
    int failed =
        unit_run_suite("translate_openai/stream_to_openai", "translate_openai/stream_to_openai",
                       test_stream_to_openai, NULL, NULL, NULL, 0, NULL, NULL);
    failed +=
        unit_run_suite("translate_openai/stream_to_pivot", "translate_openai/stream_to_pivot",
                       test_stream_to_pivot, NULL, NULL, fixed, TG_ARRAY_LEN(fixed), NULL, NULL);
    return failed;
}
