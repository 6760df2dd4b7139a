/*
 * test_trace.c — traceparent parsing (W3C Trace Context, level 1 §3.2): the
 * spec's example, every malformed shape it names, future versions; and the span
 * Tollgate begins, in the client's trace or a new one.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "trace.h"

#define EXAMPLE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_parse_spec_example(void **state)
{
    (void)state;
    struct tg_trace t = {0};
    assert_int_equal(tg_trace_parse(EXAMPLE, &t), TG_OK);
    assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(t.parent_id, "00f067aa0ba902b7");
    assert_string_equal(t.flags, "01");
}

static void test_parse_refuses_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      /* no flags */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 has no more */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* separator */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",   /* misplaced dash */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* future: no dash */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        struct tg_trace t = {0};
        if (tg_trace_parse(bad[i], &t) != TG_DECLINED)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_string_equal(t.trace_id, ""); /* untouched */
    }
    struct tg_trace t = {0};
    assert_int_equal(tg_trace_parse(NULL, &t), TG_DECLINED);
}

static void test_parse_future_version(void **state)
{
    (void)state;
    struct tg_trace t = {0};
    /* a higher version may append fields after a dash: parse what we know */
    assert_int_equal(
        tg_trace_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", &t), TG_OK);
    assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_int_equal(tg_trace_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &t),
                     TG_OK);
    assert_string_equal(t.flags, "00");
}

static void test_begin_joins_client_trace(void **state)
{
    (void)state;
    struct tg_trace t;
    tg_trace_begin(&t, EXAMPLE);
    assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(t.parent_id, "00f067aa0ba902b7");
    assert_string_equal(t.flags, "01");
    assert_int_equal(strlen(t.span_id), 16);
    assert_string_not_equal(t.span_id, t.parent_id); /* Tollgate is a new span */
    char want[TG_TRACEPARENT_LEN + 1];
    snprintf(want, sizeof(want), "00-4bf92f3577b34da6a3ce929d0e0e4736-%s-01", t.span_id);
    assert_string_equal(t.traceparent, want);
}

static void test_begin_starts_trace(void **state)
{
    (void)state;
    static const char *const headers[] = {NULL, "", "00-zz-00f067aa0ba902b7-01"};
    for (size_t i = 0; i < TG_ARRAY_LEN(headers); i++) {
        struct tg_trace t;
        tg_trace_begin(&t, headers[i]);
        assert_int_equal(strlen(t.trace_id), 32);
        assert_int_equal(strspn(t.trace_id, "0123456789abcdef"), 32);
        assert_string_equal(t.parent_id, "");
        assert_string_equal(t.flags, "01"); /* every request is logged: sampled */
        assert_int_equal(strlen(t.traceparent), TG_TRACEPARENT_LEN);
        struct tg_trace parsed = {0}; /* what goes upstream parses back to this span */
        assert_int_equal(tg_trace_parse(t.traceparent, &parsed), TG_OK);
        assert_string_equal(parsed.trace_id, t.trace_id);
        assert_string_equal(parsed.parent_id, t.span_id);
    }
}

/* The ratio's decision goes upstream: bit 0 set or cleared, the other bits and ids kept. */
static void test_set_sampled_rewrites_flags(void **state)
{
    (void)state;
    struct tg_trace t = {0};
    tg_trace_begin(&t, NULL);
    char before[TG_TRACEPARENT_LEN + 1];
    snprintf(before, sizeof(before), "%s", t.traceparent);
    tg_trace_set_sampled(&t, false);
    assert_string_equal(t.flags, "00");
    assert_int_equal(strncmp(t.traceparent, before, 53), 0);
    assert_string_equal(t.traceparent + 53, "00");
    tg_trace_set_sampled(&t, true);
    assert_string_equal(t.traceparent, before);
    snprintf(t.flags, sizeof(t.flags), "03"); /* a future flag is kept */
    tg_trace_set_sampled(&t, false);
    assert_string_equal(t.flags, "02");
    assert_string_equal(t.traceparent + 53, "02");
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_spec_example),
        cmocka_unit_test(test_parse_refuses_malformed),
        cmocka_unit_test(test_parse_future_version),
        cmocka_unit_test(test_begin_joins_client_trace),
        cmocka_unit_test(test_begin_starts_trace),
        cmocka_unit_test(test_set_sampled_rewrites_flags),
    };
    return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}
