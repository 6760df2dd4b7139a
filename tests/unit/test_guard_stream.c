/*
 * test_guard_stream.c — the stream masker (guard_stream.c) with the shipped
 * rule set (conf/guardrails.json).
 *
 * Byte-correctness: for texts holding an SSN, an e-mail address or a card
 * number among multi-byte UTF-8, every split of the text into 2 and into 3
 * events (at every character boundary, since a JSON string is whole
 * characters), in both dialects, raw and parsed, with a small window (the
 * carry is cut mid-stream) and the default one: the texts emitted for the
 * block concatenate to tg_guard_mask_range of the whole text, every emitted
 * event is valid JSON with everything but its text as received, and no emitted
 * piece holds the secret. Then: a client that leaves gets nothing held, blocks
 * interleave, a finish_reason / [DONE] flushes, events without text pass
 * byte for byte, findings are reported once.
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

#include "guard_mask.h"
#include "guard_stream.h"
#include "unit.h"
#include "guard_test.h"

/* What the client received: every event, and the text of each block concatenated. */
struct client {
    enum tg_guard_stream_dialect dialect;
    char text[4][2048]; /* by block / choice index */
    size_t len[4];
    char raw[64][1024]; /* events as sent, in order */
    char names[64][32];
    size_t n;
    size_t findings;
    bool fail_writes;
};

static void append_text(struct client *c, json_int_t index, const char *text, size_t len)
{
    assert_true(index >= 0 && index < 4);
    assert_true(c->len[index] + len < sizeof(c->text[0]));
    memcpy(c->text[index] + c->len[index], text, len);
    c->len[index] += len;
    c->text[index][c->len[index]] = '\0';
}

static int on_emit(void *ctx, const char *event, const char *data, size_t len, json_t *doc)
{
    struct client *c = ctx;
    if (c->fail_writes)
        return TG_ERROR;
    char *dumped = data == NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (data == NULL) {
        assert_non_null(dumped);
        data = dumped;
        len = strlen(dumped);
    }
    assert_true(c->n < 64 && len < sizeof(c->raw[0]));
    memcpy(c->raw[c->n], data, len);
    c->raw[c->n][len] = '\0';
    snprintf(c->names[c->n], sizeof(c->names[0]), "%s", event);
    c->n++;
    if (!(len == 6 && memcmp(data, "[DONE]", 6) == 0)) {
        json_t *ev = json_loadb(data, len, 0, NULL);
        assert_non_null(ev); /* every event sent is valid JSON */
        if (c->dialect == TG_GUARD_STREAM_ANTHROPIC && strcmp(event, "content_block_delta") == 0) {
            json_t *delta = json_object_get(ev, "delta");
            const char *type = json_string_value(json_object_get(delta, "type"));
            assert_string_equal(json_string_value(json_object_get(ev, "type")),
                                "content_block_delta");
            json_t *text = json_object_get(delta, "text");
            if (strcmp(type, "text_delta") == 0)
                append_text(c, json_integer_value(json_object_get(ev, "index")),
                            json_string_value(text), json_string_length(text));
        }
        size_t i;
        json_t *choice;
        json_array_foreach(json_object_get(ev, "choices"), i, choice) {
            json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
            assert_string_equal(json_string_value(json_object_get(ev, "object")),
                                "chat.completion.chunk");
            if (json_is_string(content))
                append_text(c, json_integer_value(json_object_get(choice, "index")),
                            json_string_value(content), json_string_length(content));
        }
        json_decref(ev);
    }
    free(dumped);
    return TG_OK;
}

static void on_finding(void *ctx, const struct tg_guard_finding *f)
{
    (void)f;
    ((struct client *)ctx)->findings++;
}

/* The whole text masked at once: what the client must end up with. */
static char *expected_mask(const char *text)
{
    size_t len = strlen(text), to = len, out_len;
    char *out =
        tg_guard_mask_range(rules, TG_GUARD_STANDARD, text, len, 0, &to, NULL, NULL, &out_len);
    assert_non_null(out);
    assert_int_equal(to, len);
    return out;
}

static char *anthropic_delta(int index, const char *text, size_t len)
{
    json_t *ev = json_pack("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta", "index",
                           index, "delta", "type", "text_delta", "text", text, len);
    char *out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
}

static char *openai_chunk(int index, const char *text, size_t len, const char *finish)
{
    json_t *ev = json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s%}, s:o}]}", "id", "chatcmpl-1",
                           "object", "chat.completion.chunk", "created", 1, "model", "m", "choices",
                           "index", index, "delta", "content", text, len, "finish_reason",
                           finish != NULL ? json_string(finish) : json_null());
    char *out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
}

static void feed(struct tg_guard_stream *s, enum tg_guard_stream_dialect dialect, bool parsed,
                 const char *event, const char *data)
{
    if (!parsed) {
        assert_int_equal(tg_guard_stream_feed(s, event, data, strlen(data)), TG_OK);
        return;
    }
    json_t *doc = json_loads(data, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(tg_guard_stream_feed_json(s, event, doc), TG_OK);
    (void)dialect;
    json_decref(doc);
}

/* text cut at cuts[0..n_cuts) streamed as n_cuts + 1 deltas; the client's text is returned. */
static void stream_pieces(enum tg_guard_stream_dialect dialect, bool parsed, size_t window,
                          const char *text, const size_t *cuts, size_t n_cuts, struct client *c)
{
    memset(c, 0, sizeof(*c));
    c->dialect = dialect;
    struct tg_guard_stream *s =
        tg_guard_stream_new(rules, TG_GUARD_STANDARD, dialect, window, on_emit, on_finding, c);
    assert_non_null(s);
    const char *event = dialect == TG_GUARD_STREAM_ANTHROPIC ? "content_block_delta" : "message";
    size_t at = 0, len = strlen(text);
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        char *data = dialect == TG_GUARD_STREAM_ANTHROPIC
                         ? anthropic_delta(0, text + at, to - at)
                         : openai_chunk(0, text + at, to - at, NULL);
        feed(s, dialect, parsed, event, data);
        free(data);
        at = to;
    }
    if (dialect == TG_GUARD_STREAM_ANTHROPIC) {
        feed(s, dialect, parsed, "content_block_stop",
             "{\"type\":\"content_block_stop\",\"index\":0}");
    } else {
        char *done = openai_chunk(0, "", 0, "stop");
        feed(s, dialect, parsed, event, done);
        free(done);
        if (!parsed)
            assert_int_equal(tg_guard_stream_feed(s, event, "[DONE]", 6), TG_OK);
    }
    assert_int_equal(tg_guard_stream_finish(s), TG_OK);
    assert_false(tg_guard_stream_failed(s));
    tg_guard_stream_free(s);
}

static bool boundary(const char *text, size_t i)
{
    return ((unsigned char)text[i] & 0xC0) != 0x80;
}

static const char *const texts[] = {
    "Ünïcødé ☕ first: my SSN is 078-05-1120, ça va? 日本語 done",
    "Write to jane.doe@example.com — or ☎ later 𝄞 ok", "Card 4111 1111 1111 1111 exp 12/29 ✓ é",
    "078-05-1120", /* the match is the whole text */
};
static const char *const secrets[] = {"078-05-1120", "jane.doe@example.com", "4111 1111 1111 1111",
                                      "078-05-1120"};

static void check_client(const struct client *c, const char *expected, const char *secret)
{
    assert_string_equal(c->text[0], expected);
    for (size_t i = 0; i < c->n; i++)
        assert_null(strstr(c->raw[i], secret));
}

/* Every split in two and three, both dialects, raw and parsed, windows 24 / 32 / 256. */
static void test_every_split_is_byte_correct(void **state)
{
    (void)state;
    static const size_t windows[] = {24, 32, 256};
    size_t runs = 0;
    for (size_t t = 0; t < TG_ARRAY_LEN(texts); t++) {
        const char *text = texts[t];
        size_t len = strlen(text);
        char *expected = expected_mask(text);
        assert_null(strstr(expected, secrets[t]));
        for (size_t w = 0; w < TG_ARRAY_LEN(windows); w++)
            for (int mode = 0; mode < 3; mode++) {
                enum tg_guard_stream_dialect dialect =
                    mode == 2 ? TG_GUARD_STREAM_OPENAI : TG_GUARD_STREAM_ANTHROPIC;
                bool parsed = mode == 1;
                struct client c;
                for (size_t i = 0; i <= len; i++) {
                    if (i < len && !boundary(text, i))
                        continue;
                    stream_pieces(dialect, parsed, windows[w], text, &i, 1, &c);
                    check_client(&c, expected, secrets[t]);
                    runs++;
                    /* three events: a second cut after the first (every pair for the
                     * small window, where the carry is cut mid-stream) */
                    for (size_t j = i; windows[w] == 24 && j <= len; j++) {
                        if (j < len && !boundary(text, j))
                            continue;
                        size_t cuts[2] = {i, j};
                        stream_pieces(dialect, parsed, windows[w], text, cuts, 2, &c);
                        check_client(&c, expected, secrets[t]);
                        runs++;
                    }
                }
            }
        free(expected);
    }
    print_message("guard_stream: %zu split streams checked\n", runs);
}

/* The client leaves mid-stream: what is held is never sent, and no SSN digit went out. */
static void test_nothing_held_leaks(void **state)
{
    (void)state;
    struct client c = {.dialect = TG_GUARD_STREAM_ANTHROPIC};
    struct tg_guard_stream *s = tg_guard_stream_new(
        rules, TG_GUARD_STANDARD, TG_GUARD_STREAM_ANTHROPIC, 16, on_emit, NULL, &c);
    const char *pieces[] = {"Well then, my number is 078-0", "5-1120 and more text after it"};
    for (size_t i = 0; i < 2; i++) {
        char *data = anthropic_delta(0, pieces[i], strlen(pieces[i]));
        assert_int_equal(tg_guard_stream_feed(s, "content_block_delta", data, strlen(data)), TG_OK);
        free(data);
    }
    tg_guard_stream_free(s); /* no finish: the client went away */
    /* what went out: the text before the SSN, the SSN masked, never the held tail */
    assert_true(c.len[0] > 0);
    assert_null(strstr(c.text[0], "078"));
    assert_null(strstr(c.text[0], "1120"));
    assert_null(strstr(c.text[0], "after it"));
    const char *masked = "Well then, my number is <US_SSN> and more text after it";
    assert_int_equal(strncmp(c.text[0], masked, c.len[0]), 0);
}

/* Events without text go byte for byte; blocks interleave; message_stop flushes. */
static void test_anthropic_events_and_blocks(void **state)
{
    (void)state;
    struct client c = {.dialect = TG_GUARD_STREAM_ANTHROPIC};
    struct tg_guard_stream *s = tg_guard_stream_new(
        rules, TG_GUARD_STANDARD, TG_GUARD_STREAM_ANTHROPIC, 256, on_emit, on_finding, &c);
    const char *start = "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"
                        "{\"input_tokens\":5, \"output_tokens\":1}}}";
    assert_int_equal(tg_guard_stream_feed(s, "message_start", start, strlen(start)), TG_OK);
    assert_string_equal(c.raw[0], start); /* untouched, spacing included */
    const char *tool = "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                       "\"input_json_delta\",\"partial_json\":\"{\\\"ssn\\\": \\\"078-05-1120\"}}";
    const char *parts[][2] = {
        {"0", "mail a@exam"}, {"2", "SSN 078-05-"}, {"0", "ple.org now"}, {"2", "1120."}};
    for (size_t i = 0; i < 4; i++) {
        char *data = anthropic_delta(atoi(parts[i][0]), parts[i][1], strlen(parts[i][1]));
        assert_int_equal(tg_guard_stream_feed(s, "content_block_delta", data, strlen(data)), TG_OK);
        free(data);
    }
    /* a tool's JSON delta is not text: it goes as it came (the request side guards tools) */
    assert_int_equal(tg_guard_stream_feed(s, "content_block_delta", tool, strlen(tool)), TG_OK);
    assert_string_equal(c.raw[c.n - 1], tool);
    const char *stop0 = "{\"type\":\"content_block_stop\",\"index\":0}";
    assert_int_equal(tg_guard_stream_feed(s, "content_block_stop", stop0, strlen(stop0)), TG_OK);
    assert_string_equal(c.names[c.n - 2], "content_block_delta"); /* the flush, then the stop */
    assert_string_equal(c.raw[c.n - 1], stop0);
    assert_string_equal(c.text[0], "mail <EMAIL> now");
    assert_int_equal(c.len[2], 0); /* block 2 still held */
    const char *stop = "{\"type\":\"message_stop\"}";
    assert_int_equal(tg_guard_stream_feed(s, "message_stop", stop, strlen(stop)), TG_OK);
    assert_string_equal(c.text[2], "SSN <US_SSN>.");
    assert_string_equal(c.raw[c.n - 1], stop);
    assert_int_equal(c.findings, 2); /* each finding reported once */
    tg_guard_stream_free(s);
}

/* OpenAI: the finish_reason chunk carries the tail; the usage chunk and [DONE] flush. */
static void test_openai_finish_and_done(void **state)
{
    (void)state;
    struct client c = {.dialect = TG_GUARD_STREAM_OPENAI};
    struct tg_guard_stream *s = tg_guard_stream_new(rules, TG_GUARD_STANDARD,
                                                    TG_GUARD_STREAM_OPENAI, 256, on_emit, NULL, &c);
    char *a = openai_chunk(0, "SSN 078-0", 9, NULL);
    char *b = openai_chunk(0, "5-1120 bye", 10, "stop");
    char *d = openai_chunk(1, "other 078-05-1120", 17, NULL);
    assert_int_equal(tg_guard_stream_feed(s, "message", a, strlen(a)), TG_OK);
    assert_int_equal(tg_guard_stream_feed(s, "message", d, strlen(d)), TG_OK);
    assert_int_equal(tg_guard_stream_feed(s, "message", b, strlen(b)), TG_OK);
    assert_string_equal(c.text[0], "SSN <US_SSN> bye"); /* in the finish chunk */
    json_t *last = json_loads(c.raw[c.n - 1], 0, NULL);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(last, "choices"), 0), "finish_reason")),
                        "stop");
    assert_string_equal(json_string_value(json_object_get(last, "id")), "chatcmpl-1");
    json_decref(last);
    assert_int_equal(c.len[1], 0);
    assert_int_equal(tg_guard_stream_feed(s, "message", "[DONE]", 6), TG_OK);
    assert_string_equal(c.text[1], "other <US_SSN>");
    assert_string_equal(c.raw[c.n - 1], "[DONE]");
    free(a);
    free(b);
    free(d);
    tg_guard_stream_free(s);
}

/* A failed write is reported; a block rule's finding is masked too. */
static void test_write_failure_and_block_rule(void **state)
{
    (void)state;
    struct client c = {.dialect = TG_GUARD_STREAM_ANTHROPIC};
    struct tg_guard_stream *s = tg_guard_stream_new(
        rules, TG_GUARD_STANDARD, TG_GUARD_STREAM_ANTHROPIC, 256, on_emit, NULL, &c);
    char *data = anthropic_delta(0, "key AKIAQ3EXAMPLE7ZZYYXX", 24);
    assert_int_equal(tg_guard_stream_feed(s, "content_block_delta", data, strlen(data)), TG_OK);
    assert_int_equal(tg_guard_stream_finish(s), TG_OK);
    assert_string_equal(c.text[0], "key <AWS_ACCESS_KEY>");
    c.fail_writes = true;
    assert_int_equal(tg_guard_stream_feed(s, "content_block_delta", data, strlen(data)), TG_ERROR);
    free(data);
    tg_guard_stream_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split_is_byte_correct),
        cmocka_unit_test(test_nothing_held_leaks),
        cmocka_unit_test(test_anthropic_events_and_blocks),
        cmocka_unit_test(test_openai_finish_and_done),
        cmocka_unit_test(test_write_failure_and_block_rule),
    };
    return cmocka_run_group_tests_name("guard_stream", tests, load_shipped, free_rules);
}
