/*
 * test_eventstream.c — providers/eventstream.c: the decoder and the encoder.
 *
 * Data-driven: each directory under tests/unit/data/eventstream is one case:
 *   input.bin  the bytes of the stream
 *   expect     what must come out: per message a line "message" followed by its
 *              well-known headers (message-type|event-or-exception-type|
 *              content-type|error-code|error-message), a line per header
 *              ("header NAME TYPE VALUE": integers in decimal, byte arrays and
 *              UUIDs in hex, bytes outside printable ASCII as \xNN), a line
 *              "payload ..."; then "ok", or "error " and the decoder's message
 *   options    (optional) "max_len N"
 * Every case is fed whole, byte by byte, split in two at every position and,
 * when short, in three at every pair of positions: the same output each time.
 *
 * The vectors: those of botocore's tests/unit/test_eventstream.py (data only:
 * all_headers_types, empty_message, error_message, event_id_int_header,
 * initial_response, int*_header, payload_*; the bad_* and duplicate_header
 * negatives), and cases made with Python's struct and zlib.crc32 (bedrock_*,
 * three_messages, and the malformed ones with valid CRCs), the good ones
 * checked by botocore's own decoder when written.
 *
 * The rest: the encoder against a published vector, the encoder's refusals,
 * the CRC-32 check value, a callback stopping the feed, a failure that sticks,
 * a large message across many feeds.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/eventstream.h"
#include "unit.h"

#define THREE_WAY_MAX_INPUT 200

struct es_case {
    char *dir;
    unsigned char *input;
    size_t input_len;
    char *expect;
    size_t max_len;
};

/* A growing text the callback dumps messages into. */
struct dump {
    char *text;
    size_t len, cap;
};

static void dump_add(struct dump *d, const char *fmt, ...) TG_PRINTF(2, 3);

static void dump_add(struct dump *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    if (d->len + (size_t)n + 1 > d->cap) {
        d->cap = (d->len + (size_t)n + 1) * 2;
        d->text = realloc(d->text, d->cap);
        assert_non_null(d->text);
    }
    va_start(ap, fmt);
    vsnprintf(d->text + d->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    d->len += (size_t)n;
}

static void dump_escaped(struct dump *d, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\')
            dump_add(d, "\\\\");
        else if (p[i] >= 0x20 && p[i] < 0x7f)
            dump_add(d, "%c", p[i]);
        else
            dump_add(d, "\\x%02x", p[i]);
    }
}

static void dump_hex(struct dump *d, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dump_add(d, "%02x", p[i]);
}

static const char *const type_names[] = {"true", "false", "byte",   "short",     "integer",
                                         "long", "bytes", "string", "timestamp", "uuid"};

static int dump_message(void *ctx, const struct tg_eventstream_message *msg)
{
    struct dump *d = ctx;
    dump_add(d, "message %s|%s|%s|%s|%s\n", msg->message_type, msg->event_type, msg->content_type,
             msg->error_code, msg->error_message);
    size_t at = 0;
    struct tg_eventstream_header h;
    while (tg_eventstream_header_next(msg->headers, msg->headers_len, &at, &h) == TG_OK) {
        dump_add(d, "header ");
        dump_escaped(d, (const unsigned char *)h.name, h.name_len);
        dump_add(d, " %s ", type_names[h.type]);
        switch (h.type) {
        case TG_EVENTSTREAM_TRUE:
        case TG_EVENTSTREAM_FALSE: dump_add(d, "%s", type_names[h.type]); break;
        case TG_EVENTSTREAM_BYTES:
        case TG_EVENTSTREAM_UUID: dump_hex(d, h.bytes, h.bytes_len); break;
        case TG_EVENTSTREAM_STRING: dump_escaped(d, h.bytes, h.bytes_len); break;
        default: dump_add(d, "%lld", (long long)h.integer);
        }
        dump_add(d, "\n");
    }
    dump_add(d, "payload ");
    dump_escaped(d, msg->payload, msg->payload_len);
    dump_add(d, "\n");
    return TG_OK;
}

/* Feeds c's input cut at cuts[0..n_cuts) and checks the dump against expect. */
static void run_split(const struct es_case *c, const size_t *cuts, size_t n_cuts, const char *what)
{
    struct dump d = {0};
    struct tg_eventstream_decoder dec;
    tg_eventstream_decoder_init(&dec, c->max_len, dump_message, &d);
    int rc = TG_OK;
    size_t from = 0;
    for (size_t i = 0; i <= n_cuts && rc == TG_OK; i++) {
        size_t to = i < n_cuts ? cuts[i] : c->input_len;
        rc = tg_eventstream_feed(&dec, c->input + from, to - from);
        from = to;
    }
    if (rc == TG_OK)
        rc = tg_eventstream_finish(&dec);
    if (rc == TG_OK)
        dump_add(&d, "ok\n");
    else
        dump_add(&d, "error %s\n", dec.error);
    tg_eventstream_decoder_release(&dec);
    if (strcmp(d.text, c->expect) != 0)
        fail_msg("%s, fed %s:\n--- got\n%s--- want\n%s", c->dir, what, d.text, c->expect);
    free(d.text);
}

static void test_case_every_split(void **state)
{
    const struct es_case *c = *state;
    size_t n = c->input_len;
    run_split(c, NULL, 0, "whole");

    size_t *each = malloc((n + 1) * sizeof(*each));
    assert_non_null(each);
    for (size_t i = 0; i < n; i++)
        each[i] = i + 1;
    run_split(c, each, n > 0 ? n - 1 : 0, "byte by byte");
    free(each);

    char what[64];
    for (size_t i = 0; i <= n; i++) {
        snprintf(what, sizeof(what), "split at %zu", i);
        run_split(c, &i, 1, what);
    }
    if (n <= THREE_WAY_MAX_INPUT) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = i + 1; j < n; j++) {
                size_t cuts[2] = {i, j};
                snprintf(what, sizeof(what), "split at %zu and %zu", i, j);
                run_split(c, cuts, 2, what);
            }
    }
}

static int case_setup(void **state)
{
    struct es_case *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->dir = strdup(*state);
    c->input = (unsigned char *)unit_read_file(c->dir, "input.bin", &c->input_len);
    c->expect = unit_read_file(c->dir, "expect", NULL);
    assert_non_null(c->input);
    assert_non_null(c->expect);
    char *options = unit_read_file(c->dir, "options", NULL);
    if (options != NULL) {
        unsigned long max_len;
        assert_int_equal(sscanf(options, "max_len %lu", &max_len), 1);
        c->max_len = max_len;
        free(options);
    }
    *state = c;
    return 0;
}

static int case_teardown(void **state)
{
    struct es_case *c = *state;
    free(c->dir);
    free(c->input);
    free(c->expect);
    free(c);
    return 0;
}

static void test_crc32_check_value(void **state)
{
    (void)state;
    /* the CRC catalogue's check value of CRC-32/ISO-HDLC (CRC-32C's would be 0xe3069283) */
    assert_int_equal(tg_eventstream_crc32("123456789", 9), 0xcbf43926u);
    assert_int_equal(tg_eventstream_crc32("", 0), 0);
}

/* The encoder reproduces botocore's all_headers_types vector byte for byte. */
static void test_encode_known_vector(void **state)
{
    (void)state;
    char *dir = unit_data_dir("eventstream/all_headers_types");
    size_t want_len;
    unsigned char *want = (unsigned char *)unit_read_file(dir, "input.bin", &want_len);
    assert_non_null(want);
    const unsigned char *uuid = (const unsigned char *)"0123456789abcdef";
    const struct tg_eventstream_header headers[] = {
        {"0", 1, TG_EVENTSTREAM_TRUE, 0, NULL, 0},
        {"1", 1, TG_EVENTSTREAM_FALSE, 0, NULL, 0},
        {"2", 1, TG_EVENTSTREAM_BYTE, 2, NULL, 0},
        {"3", 1, TG_EVENTSTREAM_SHORT, 3, NULL, 0},
        {"4", 1, TG_EVENTSTREAM_INTEGER, 4, NULL, 0},
        {"5", 1, TG_EVENTSTREAM_LONG, 5, NULL, 0},
        {"6", 1, TG_EVENTSTREAM_BYTES, 0, (const unsigned char *)"bytes", 5},
        {"7", 1, TG_EVENTSTREAM_STRING, 0, (const unsigned char *)"utf8", 4},
        {"8", 1, TG_EVENTSTREAM_TIMESTAMP, 8, NULL, 0},
        {"9", 1, TG_EVENTSTREAM_UUID, 0, uuid, 16},
    };
    unsigned char *out;
    size_t out_len;
    assert_int_equal(tg_eventstream_encode(headers, TG_ARRAY_LEN(headers), NULL, 0, &out, &out_len),
                     TG_OK);
    assert_int_equal(out_len, want_len);
    assert_memory_equal(out, want, want_len);
    free(out);

    /* negative integers of every width, as botocore's int*_header vectors hold them */
    const struct tg_eventstream_header minus_one = {"long", 4, TG_EVENTSTREAM_LONG, -1, NULL, 0};
    free(want);
    free(dir);
    dir = unit_data_dir("eventstream/int64_header");
    want = (unsigned char *)unit_read_file(dir, "input.bin", &want_len);
    assert_int_equal(tg_eventstream_encode(&minus_one, 1, NULL, 0, &out, &out_len), TG_OK);
    assert_int_equal(out_len, want_len);
    assert_memory_equal(out, want, want_len);
    free(out);
    free(want);
    free(dir);
}

struct seen {
    int count;
    char event_type[64];
    char payload[256];
    int stop_at; /* return TG_DECLINED from this message on (1-based); 0 never */
};

static int record(void *ctx, const struct tg_eventstream_message *msg)
{
    struct seen *s = ctx;
    s->count++;
    snprintf(s->event_type, sizeof(s->event_type), "%s", msg->event_type);
    snprintf(s->payload, sizeof(s->payload), "%.*s", (int)msg->payload_len,
             (const char *)msg->payload);
    struct tg_eventstream_header h;
    assert_int_equal(tg_eventstream_header_find(msg, ":content-type", &h), TG_OK);
    assert_int_equal(tg_eventstream_header_find(msg, ":nope", &h), TG_DECLINED);
    return s->stop_at > 0 && s->count >= s->stop_at ? TG_DECLINED : TG_OK;
}

static void test_encode_json_round_trip(void **state)
{
    (void)state;
    unsigned char *a, *b;
    size_t a_len, b_len;
    const char *json = "{\"stopReason\":\"end_turn\"}";
    assert_int_equal(
        tg_eventstream_encode_json("event", "messageStop", json, strlen(json), &a, &a_len), TG_OK);
    assert_int_equal(
        tg_eventstream_encode_json("exception", "validationException", "{}", 2, &b, &b_len), TG_OK);
    unsigned char both[512];
    assert_true(a_len + b_len <= sizeof(both));
    memcpy(both, a, a_len);
    memcpy(both + a_len, b, b_len);

    struct seen s = {0};
    struct tg_eventstream_decoder d;
    tg_eventstream_decoder_init(&d, 0, record, &s);
    assert_int_equal(tg_eventstream_feed(&d, both, a_len + b_len), TG_OK);
    assert_int_equal(tg_eventstream_finish(&d), TG_OK);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.event_type, "validationException");
    assert_string_equal(s.payload, "{}");
    assert_int_equal(d.messages, 2);
    tg_eventstream_decoder_release(&d);

    /* a callback's refusal stops this feed; the decoder goes on with the next */
    s = (struct seen){.stop_at = 1};
    tg_eventstream_decoder_init(&d, 0, record, &s);
    assert_int_equal(tg_eventstream_feed(&d, both, a_len + b_len), TG_DECLINED);
    assert_int_equal(s.count, 1);
    assert_string_equal(s.event_type, "messageStop");
    s.stop_at = 0;
    assert_int_equal(tg_eventstream_feed(&d, b, b_len), TG_OK);
    assert_int_equal(s.count, 2);
    assert_int_equal(tg_eventstream_finish(&d), TG_OK);
    tg_eventstream_decoder_release(&d);

    /* a framing error sticks: good bytes after it are refused too */
    s = (struct seen){0};
    tg_eventstream_decoder_init(&d, 0, record, &s);
    a[a_len - 1] ^= 1;
    assert_int_equal(tg_eventstream_feed(&d, a, a_len), TG_ERROR);
    assert_non_null(strstr(d.error, "message checksum mismatch"));
    assert_int_equal(tg_eventstream_feed(&d, b, b_len), TG_ERROR);
    assert_int_equal(tg_eventstream_finish(&d), TG_ERROR);
    assert_int_equal(s.count, 0);
    tg_eventstream_decoder_release(&d);
    tg_eventstream_decoder_release(&d); /* twice is harmless */
    free(a);
    free(b);
}

static void test_encode_refusals(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    size_t out_len = 0;
    char long_name[256];
    memset(long_name, 'n', sizeof(long_name));
    static unsigned char big[70000];
    const struct tg_eventstream_header bad[] = {
        {"", 0, TG_EVENTSTREAM_TRUE, 0, NULL, 0},
        {long_name, 256, TG_EVENTSTREAM_TRUE, 0, NULL, 0},
        {"s", 1, TG_EVENTSTREAM_STRING, 0, big, 65536},
        {"u", 1, TG_EVENTSTREAM_UUID, 0, big, 15},
        {"t", 1, (enum tg_eventstream_type)10, 0, NULL, 0},
        {"b", 1, TG_EVENTSTREAM_BYTES, 0, NULL, 3},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        assert_int_equal(tg_eventstream_encode(&bad[i], 1, NULL, 0, &out, &out_len), TG_ERROR);
        assert_null(out);
    }
    const struct tg_eventstream_header ok = {long_name, 255, TG_EVENTSTREAM_STRING, 0, big, 65535};
    assert_int_equal(tg_eventstream_encode(&ok, 1, NULL, 0, &out, &out_len), TG_OK);
    assert_int_equal(out_len, 16 + 1 + 255 + 1 + 2 + 65535);
    free(out);
    out = NULL;
    /* a payload over the limit */
    assert_int_equal(
        tg_eventstream_encode(NULL, 0, big, TG_EVENTSTREAM_DEFAULT_MAX_LEN, &out, &out_len),
        TG_ERROR);
    assert_null(out);
}

/* A 1 MiB payload across 4 KiB feeds, then a small message: both whole and in order. */
static void test_large_message_in_chunks(void **state)
{
    (void)state;
    size_t payload_len = 1024 * 1024;
    char *payload = malloc(payload_len);
    assert_non_null(payload);
    for (size_t i = 0; i < payload_len; i++)
        payload[i] = (char)('a' + i % 26);
    unsigned char *big, *small;
    size_t big_len, small_len;
    assert_int_equal(
        tg_eventstream_encode_json("event", "chunk", payload, payload_len, &big, &big_len), TG_OK);
    assert_int_equal(tg_eventstream_encode_json("event", "after", "{}", 2, &small, &small_len),
                     TG_OK);
    struct seen s = {0};
    struct tg_eventstream_decoder d;
    tg_eventstream_decoder_init(&d, 0, record, &s);
    for (size_t at = 0; at < big_len; at += 4096) {
        size_t n = big_len - at < 4096 ? big_len - at : 4096;
        assert_int_equal(tg_eventstream_feed(&d, big + at, n), TG_OK);
        assert_int_equal(s.count, at + n == big_len ? 1 : 0);
    }
    assert_int_equal(tg_eventstream_feed(&d, small, small_len), TG_OK);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.event_type, "after");
    assert_int_equal(tg_eventstream_finish(&d), TG_OK);
    tg_eventstream_decoder_release(&d);

    /* the same message under a 64 KiB cap fails at its prelude */
    s = (struct seen){0};
    tg_eventstream_decoder_init(&d, 64 * 1024, record, &s);
    assert_int_equal(tg_eventstream_feed(&d, big, 12), TG_ERROR);
    assert_non_null(strstr(d.error, "exceeds the limit of 65536"));
    tg_eventstream_decoder_release(&d);
    free(payload);
    free(big);
    free(small);
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_crc32_check_value),       cmocka_unit_test(test_encode_known_vector),
        cmocka_unit_test(test_encode_json_round_trip),  cmocka_unit_test(test_encode_refusals),
        cmocka_unit_test(test_large_message_in_chunks),
    };
    return unit_run_suite("eventstream", "eventstream", test_case_every_split, case_setup,
                          case_teardown, fixed, TG_ARRAY_LEN(fixed), NULL, NULL);
}
