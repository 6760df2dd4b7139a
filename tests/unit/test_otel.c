/*
 * test_otel.c — the span exporter's pure parts (otel.h, otel_span.h,
 * config_otel.h): the OTLP/HTTP JSON encoding (its shape per the OTLP JSON
 * mapping: hex ids, string nanoseconds, typed AnyValues, kind, status), the
 * bounded queue (all or nothing, a full queue drops and counts, order kept),
 * the head sampling decision, attribute values cut on a UTF-8 boundary, and
 * the "otel" section's values and defaults.
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

#include "config.h"
#include "otel.h"
#include "otel_span.h"
#include "trace.h"

static void make_span(struct tg_otel_span *s, const char *span_id, const char *parent)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->trace_id, sizeof(s->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    snprintf(s->span_id, sizeof(s->span_id), "%s", span_id);
    snprintf(s->parent_id, sizeof(s->parent_id), "%s", parent);
    snprintf(s->name, sizeof(s->name), "chat claude-haiku-4-5");
    s->kind = TG_OTEL_KIND_SERVER;
    s->start_ns = INT64_C(1767225600123456789);
    s->end_ns = INT64_C(1767225600987654321);
}

static json_t *attr_value(json_t *span, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(span, "attributes"), i, a)
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
            return json_object_get(a, "value");
    return NULL;
}

static void test_encode_shape(void **state)
{
    (void)state;
    struct tg_otel_span spans[2];
    make_span(&spans[0], "00f067aa0ba902b7", "");
    tg_otel_attr_str(&spans[0], "gen_ai.request.model", "claude-haiku-4-5");
    tg_otel_attr_int(&spans[0], "gen_ai.usage.input_tokens", INT64_C(9007199254740993));
    tg_otel_attr_bool(&spans[0], "tollgate.stream", true);
    tg_otel_attr_str(&spans[0], "gen_ai.response.finish_reasons", "end_turn\nmax_tokens");
    spans[0].attrs[spans[0].n_attrs - 1].type = TG_OTEL_STRINGS;
    tg_otel_attr_str(&spans[0], "tollgate.cost_usd", "0.000123");
    spans[0].status = TG_OTEL_STATUS_ERROR;
    snprintf(spans[0].status_message, sizeof(spans[0].status_message), "provider \"a\" failed");
    make_span(&spans[1], "b7ad6b7169203331", "00f067aa0ba902b7");
    spans[1].kind = TG_OTEL_KIND_CLIENT;

    size_t len = 0;
    char *text = tg_otel_encode("gw-test", spans, 2, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    assert_non_null(doc);
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    json_t *res_attr =
        json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
    assert_string_equal(json_string_value(json_object_get(res_attr, "key")), "service.name");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res_attr, "value"), "stringValue")),
        "gw-test");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")),
                        "tollgate");
    json_t *list = json_object_get(ss, "spans");
    assert_int_equal(json_array_size(list), 2);
    json_t *root = json_array_get(list, 0), *child = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(root, "traceId")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(json_string_value(json_object_get(root, "spanId")), "00f067aa0ba902b7");
    assert_null(json_object_get(root, "parentSpanId")); /* a root span has none */
    assert_string_equal(json_string_value(json_object_get(child, "parentSpanId")),
                        "00f067aa0ba902b7");
    assert_int_equal(json_integer_value(json_object_get(root, "kind")), 2);
    assert_int_equal(json_integer_value(json_object_get(child, "kind")), 3);
    /* 64-bit integers are strings in OTLP JSON: exact past 2^53 */
    assert_string_equal(json_string_value(json_object_get(root, "startTimeUnixNano")),
                        "1767225600123456789");
    assert_string_equal(json_string_value(json_object_get(root, "endTimeUnixNano")),
                        "1767225600987654321");
    assert_string_equal(json_string_value(json_object_get(
                            attr_value(root, "gen_ai.usage.input_tokens"), "intValue")),
                        "9007199254740993");
    assert_true(json_is_true(json_object_get(attr_value(root, "tollgate.stream"), "boolValue")));
    assert_string_equal(
        json_string_value(json_object_get(attr_value(root, "gen_ai.request.model"), "stringValue")),
        "claude-haiku-4-5");
    json_t *reasons = json_object_get(
        json_object_get(attr_value(root, "gen_ai.response.finish_reasons"), "arrayValue"),
        "values");
    assert_int_equal(json_array_size(reasons), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(reasons, 1), "stringValue")),
        "max_tokens");
    json_t *status = json_object_get(root, "status");
    assert_int_equal(json_integer_value(json_object_get(status, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(status, "message")),
                        "provider \"a\" failed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(child, "status"), "code")),
                     0);
    json_decref(doc);
    free(text);
}

static void test_encode_invalid_utf8_and_cut(void **state)
{
    (void)state;
    struct tg_otel_span s;
    make_span(&s, "00f067aa0ba902b7", "");
    tg_otel_attr_str(&s, "tollgate.user_id", "bad\xff\xfe");
    char long_value[400];
    memset(long_value, 0, sizeof(long_value));
    for (size_t i = 0; i + 2 < 300; i += 2) /* "é" repeated: 2 bytes each */
        memcpy(long_value + i, "\xC3\xA9", 2);
    tg_otel_attr_str(&s, "tollgate.group_id", long_value);
    size_t cut = strlen(s.attrs[1].s);
    assert_true(cut < TG_OTEL_VALUE_MAX);
    assert_int_equal(cut % 2, 0); /* never half a character */
    size_t len;
    char *text = tg_otel_encode(NULL, &s, 1, &len);
    assert_non_null(text);
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc); /* still valid JSON */
    json_decref(doc);
    free(text);
    /* past TG_OTEL_MAX_ATTRS, attributes are ignored, not overflowed */
    for (int i = 0; i < 2 * TG_OTEL_MAX_ATTRS; i++)
        tg_otel_attr_int(&s, "x", i);
    assert_int_equal(s.n_attrs, TG_OTEL_MAX_ATTRS);
}

static void test_queue_drops_when_full(void **state)
{
    (void)state;
    struct tg_otel_queue q;
    assert_int_equal(tg_otel_queue_init(&q, 4, 2), TG_OK);
    struct tg_otel_span in[3], out[8];
    make_span(&in[0], "0000000000000001", "");
    make_span(&in[1], "0000000000000002", "");
    make_span(&in[2], "0000000000000003", "");
    assert_int_equal(tg_otel_queue_push(&q, in, 3), TG_OK);
    /* 2 more do not fit in 4: both dropped (a request's spans go together), counted */
    assert_int_equal(tg_otel_queue_push(&q, in, 2), TG_DECLINED);
    assert_int_equal(q.dropped, 2);
    assert_int_equal(q.n, 3);
    assert_int_equal(tg_otel_queue_push(&q, in, 1), TG_OK); /* one still fits */
    assert_int_equal(tg_otel_queue_push(&q, in, 1), TG_DECLINED);
    assert_int_equal(q.dropped, 3);
    /* taken oldest first, up to max */
    assert_int_equal(tg_otel_queue_take(&q, out, 2, 0), 2);
    assert_string_equal(out[0].span_id, "0000000000000001");
    assert_string_equal(out[1].span_id, "0000000000000002");
    assert_int_equal(tg_otel_queue_take(&q, out, 8, 0), 2);
    assert_string_equal(out[0].span_id, "0000000000000003");
    assert_string_equal(out[1].span_id, "0000000000000001");
    /* the ring wraps */
    assert_int_equal(tg_otel_queue_push(&q, in, 3), TG_OK);
    assert_int_equal(tg_otel_queue_take(&q, out, 8, 10), 3);
    assert_string_equal(out[2].span_id, "0000000000000003");
    /* an empty queue waits at most wait_ms */
    int64_t t0 = tg_now_ms();
    assert_int_equal(tg_otel_queue_take(&q, out, 8, 50), 0);
    assert_true(tg_now_ms() - t0 < 2000);
    tg_otel_queue_release(&q);
}

static void test_submit_without_exporter_declines(void **state)
{
    (void)state;
    struct tg_otel_span s;
    make_span(&s, "0000000000000001", "");
    assert_false(tg_otel_enabled());
    assert_int_equal(tg_otel_submit(&s, 1), TG_DECLINED);
}

static void test_head_sampling(void **state)
{
    (void)state;
    struct tg_trace t = {0};
    /* the client's flag decides, whatever the ratio */
    tg_trace_begin(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_true(tg_otel_span_head_sampled(&t, 0));
    tg_trace_begin(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    assert_false(tg_otel_span_head_sampled(&t, UINT64_C(1) << 56));
    /* no client decision: the trace id's last 56 bits against the threshold */
    struct tg_trace own = {0};
    snprintf(own.trace_id, sizeof(own.trace_id), "4bf92f3577b34da6a300000000000000");
    assert_false(tg_otel_span_head_sampled(&own, 0)); /* ratio 0: never */
    assert_true(tg_otel_span_head_sampled(&own, 1));
    snprintf(own.trace_id, sizeof(own.trace_id), "4bf92f3577b34da6a3ffffffffffffff");
    assert_false(tg_otel_span_head_sampled(&own, (UINT64_C(1) << 56) - 1));
    assert_true(tg_otel_span_head_sampled(&own, UINT64_C(1) << 56)); /* ratio 1: always */
    /* about half of random trace ids at 0.5 */
    int kept = 0;
    for (int i = 0; i < 2000; i++) {
        struct tg_trace fresh = {0};
        tg_trace_begin(&fresh, NULL);
        kept += tg_otel_span_head_sampled(&fresh, UINT64_C(1) << 55);
    }
    assert_in_range(kept, 800, 1200);
}

static const char config_text[] =
    "{\"database\": {\"url\": \"postgresql://x@localhost/t\"},"
    " \"providers\": {\"a\": {\"type\": \"anthropic\", \"api_key\": \"k\"}},"
    " \"models\": {\"m\": {\"provider\": \"a\"}}%s}";

static void test_config_values(void **state)
{
    (void)state;
    char text[2048], err[512];
    struct tg_config *c = NULL;
    snprintf(text, sizeof(text), config_text, "");
    assert_int_equal(tg_config_parse(text, &c, err, sizeof(err)), TG_OK);
    assert_null(c->otel.endpoint); /* no section: off */
    tg_config_free(c);

    setenv("TG_UNIT_OTEL_TOKEN", "s3cret", 1);
    snprintf(text, sizeof(text), config_text,
             ", \"otel\": {\"endpoint\": \"http://127.0.0.1:4318/v1/traces\","
             " \"headers\": {\"x-token\": \"$TG_UNIT_OTEL_TOKEN\"}, \"sample_ratio\": 0.5,"
             " \"always_sample_errors\": false, \"queue_spans\": 100, \"batch_spans\": 10,"
             " \"flush_ms\": 200, \"timeout_ms\": 300}");
    assert_int_equal(tg_config_parse(text, &c, err, sizeof(err)), TG_OK);
    assert_string_equal(c->otel.endpoint, "http://127.0.0.1:4318/v1/traces");
    assert_int_equal(c->otel.n_headers, 1);
    assert_string_equal(c->otel.headers[0], "x-token: s3cret");
    assert_string_equal(c->otel.service_name, "tollgate");
    assert_true(c->otel.sample_threshold == UINT64_C(1) << 55);
    assert_false(c->otel.always_sample_errors);
    assert_int_equal(c->otel.queue_spans, 100);
    assert_int_equal(c->otel.batch_spans, 10);
    assert_int_equal(c->otel.flush_ms, 200);
    assert_int_equal(c->otel.timeout_ms, 300);
    tg_config_free(c);

    snprintf(text, sizeof(text), config_text,
             ", \"otel\": {\"endpoint\": \"https://c/v1/traces\"}");
    assert_int_equal(tg_config_parse(text, &c, err, sizeof(err)), TG_OK);
    assert_true(c->otel.sample_threshold == UINT64_C(1) << 56); /* ratio 1 by default */
    assert_true(c->otel.always_sample_errors);
    assert_int_equal(c->otel.queue_spans, 2048);
    assert_int_equal(c->otel.batch_spans, 256);
    tg_config_free(c);

    /* the collector's URL is the config's own: "$NAME" is not looked up */
    setenv("TG_UNIT_OTEL_URL", "http://elsewhere/v1/traces", 1);
    snprintf(text, sizeof(text), config_text, ", \"otel\": {\"endpoint\": \"$TG_UNIT_OTEL_URL\"}");
    assert_int_equal(tg_config_parse(text, &c, err, sizeof(err)), TG_ERROR);
    assert_non_null(strstr(err, "config: otel.endpoint: must be an http(s) URL"));
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_shape),
        cmocka_unit_test(test_encode_invalid_utf8_and_cut),
        cmocka_unit_test(test_queue_drops_when_full),
        cmocka_unit_test(test_submit_without_exporter_declines),
        cmocka_unit_test(test_head_sampling),
        cmocka_unit_test(test_config_values),
    };
    return cmocka_run_group_tests_name("otel", tests, NULL, NULL);
}
