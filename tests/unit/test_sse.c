/*
 * test_sse.c — the incremental SSE parser.
 *
 * Data-driven: each directory under tests/unit/data/sse is one case:
 *   input    the exact bytes of the stream (CR, CRLF and LF kept as they are)
 *   events   the events that must come out, one a line: name TAB data, with
 *            \n, \r, \t and \\ escaped in data
 *   options  (optional) "max_event_bytes N" (default 65536) and "result error"
 *            when the stream must end in TG_ERROR after the listed events
 * Every case is fed whole, byte by byte, split in two at every position and, when
 * short, split in three at every pair of distinct positions: the same events and
 * the same result must come out each time. Adding a case is adding a directory.
 * (Empty feeds in the middle of a stream have their own test below.)
 *
 * The rest are behaviours a case file cannot express: a callback stopping the
 * parser, empty feeds, reuse after release.
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

#include "sse.h"
#include "unit.h"

#define DEFAULT_MAX_EVENT_BYTES 65536
#define THREE_WAY_MAX_INPUT 200 /* n^2/2 runs: keep the sanitizer build quick */

struct expected_event {
    char *name;
    char *data;
    size_t data_len;
};

struct sse_case {
    char *dir;
    char *input;
    size_t input_len;
    struct expected_event *events;
    size_t n_events;
    size_t max_event_bytes;
    int result;
};

/* Checks the events of one run against the case as they arrive. */
struct checker {
    const struct sse_case *c;
    size_t seen;
    char mismatch[512]; /* the first difference; empty when none */
};

static int check_event(void *ctx, const char *event, const char *data, size_t data_len)
{
    struct checker *ck = ctx;
    size_t k = ck->seen++;
    if (ck->mismatch[0] != '\0')
        return TG_OK;
    if (data[data_len] != '\0' || strlen(data) != data_len) {
        snprintf(ck->mismatch, sizeof(ck->mismatch),
                 "event %zu: data is not NUL-terminated at data_len %zu", k, data_len);
    } else if (k >= ck->c->n_events) {
        snprintf(ck->mismatch, sizeof(ck->mismatch), "unexpected event %zu \"%s\": \"%.200s\"", k,
                 event, data);
    } else {
        const struct expected_event *want = &ck->c->events[k];
        if (strcmp(event, want->name) != 0)
            snprintf(ck->mismatch, sizeof(ck->mismatch), "event %zu: name \"%s\", want \"%s\"", k,
                     event, want->name);
        else if (data_len != want->data_len || memcmp(data, want->data, data_len) != 0)
            snprintf(ck->mismatch, sizeof(ck->mismatch),
                     "event %zu \"%s\": data \"%.200s\", want \"%.200s\"", k, event, data,
                     want->data);
    }
    return TG_OK;
}

/*
 * Feeds the case's input cut at cuts[0..n_cuts) (ascending offsets) and checks
 * the events and the result. what names the split in failure messages.
 */
static void run_split(const struct sse_case *c, const size_t *cuts, size_t n_cuts, const char *what)
{
    struct checker ck = {.c = c};
    struct tg_sse_parser p;
    tg_sse_parser_init(&p, c->max_event_bytes, check_event, &ck);
    int rc = TG_OK;
    size_t from = 0;
    for (size_t i = 0; i <= n_cuts && rc == TG_OK; i++) {
        size_t to = i < n_cuts ? cuts[i] : c->input_len;
        rc = tg_sse_feed(&p, c->input + from, to - from);
        from = to;
    }
    tg_sse_parser_release(&p);
    if (ck.mismatch[0] != '\0')
        fail_msg("%s, fed %s: %s", c->dir, what, ck.mismatch);
    if (ck.seen != c->n_events)
        fail_msg("%s, fed %s: %zu events, want %zu", c->dir, what, ck.seen, c->n_events);
    if (rc != c->result)
        fail_msg("%s, fed %s: tg_sse_feed returned %d, want %d", c->dir, what, rc, c->result);
}

static void test_case_every_split(void **state)
{
    const struct sse_case *c = *state;
    char what[64];
    size_t n = c->input_len;

    run_split(c, NULL, 0, "whole");

    size_t *each = malloc((n + 1) * sizeof(*each));
    assert_non_null(each);
    for (size_t i = 0; i < n; i++)
        each[i] = i + 1;
    run_split(c, each, n > 0 ? n - 1 : 0, "byte by byte");
    free(each);

    for (size_t i = 0; i <= n; i++) {
        snprintf(what, sizeof(what), "split at %zu", i);
        run_split(c, &i, 1, what);
    }

    if (n <= THREE_WAY_MAX_INPUT) {
        for (size_t i = 0; i <= n; i++)
            for (size_t j = i + 1; j <= n; j++) {
                size_t cuts[2] = {i, j};
                snprintf(what, sizeof(what), "split at %zu and %zu", i, j);
                run_split(c, cuts, 2, what);
            }
    }
}

/* ---- loading the cases ---- */

static char *unescape(const char *s, size_t *len)
{
    char *out = malloc(strlen(s) + 1);
    assert_non_null(out);
    size_t o = 0;
    for (const char *q = s; *q != '\0'; q++) {
        if (*q != '\\' || q[1] == '\0') {
            out[o++] = *q;
            continue;
        }
        q++;
        switch (*q) {
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        default: out[o++] = *q; break;
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

static void parse_events(struct sse_case *c, char *text)
{
    size_t cap = 8;
    c->events = calloc(cap, sizeof(*c->events));
    assert_non_null(c->events);
    char *line = text;
    while (line != NULL && *line != '\0') {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *tab = strchr(line, '\t');
        if (tab == NULL)
            fail_msg("%s/events: line without a TAB: \"%s\"", c->dir, line);
        *tab = '\0';
        if (c->n_events == cap) {
            cap *= 2;
            c->events = realloc(c->events, cap * sizeof(*c->events));
            assert_non_null(c->events);
        }
        struct expected_event *e = &c->events[c->n_events++];
        e->name = strdup(line);
        e->data = unescape(tab + 1, &e->data_len);
        line = next;
    }
}

static void parse_options(struct sse_case *c, char *text)
{
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long n;
        if (sscanf(line, "max_event_bytes %lu", &n) == 1)
            c->max_event_bytes = n;
        else if (strcmp(line, "result error") == 0)
            c->result = TG_ERROR;
        else if (strcmp(line, "result ok") == 0)
            c->result = TG_OK;
        else
            fail_msg("%s/options: unknown option \"%s\"", c->dir, line);
    }
}

/* The runner hands in the case's directory; the case's state replaces it. */
static int load_case(void **state)
{
    struct sse_case *c = calloc(1, sizeof(*c));
    if (c == NULL)
        fail_msg("out of memory");
    c->dir = *state;
    *state = c;
    c->input = unit_read_file(c->dir, "input", &c->input_len);
    if (c->input == NULL)
        fail_msg("%s/input: cannot read", c->dir);
    char *events = unit_read_file(c->dir, "events", NULL);
    if (events == NULL)
        fail_msg("%s/events: cannot read", c->dir);
    parse_events(c, events);
    free(events);
    c->max_event_bytes = DEFAULT_MAX_EVENT_BYTES;
    c->result = TG_OK;
    char *options = unit_read_file(c->dir, "options", NULL);
    if (options != NULL) {
        parse_options(c, options);
        free(options);
    }
    return 0;
}

static int unload_case(void **state)
{
    struct sse_case *c = *state;
    for (size_t i = 0; i < c->n_events; i++) {
        free(c->events[i].name);
        free(c->events[i].data);
    }
    free(c->events);
    free(c->input);
    free(c); /* c->dir belongs to the runner */
    return 0;
}

/* ---- behaviours beyond a case file ---- */

struct collected {
    char names[8][64];
    char data[8][128];
    size_t n;
    int stop_with; /* returned from the stop_at'th event on */
    size_t stop_at;
};

static int collect(void *ctx, const char *event, const char *data, size_t data_len)
{
    struct collected *col = ctx;
    assert_true(col->n < TG_ARRAY_LEN(col->names));
    snprintf(col->names[col->n], sizeof(col->names[0]), "%s", event);
    snprintf(col->data[col->n], sizeof(col->data[0]), "%.*s", (int)data_len, data);
    col->n++;
    return col->n >= col->stop_at ? col->stop_with : TG_OK;
}

/* A parser feeding a collector, released by the teardown even when a test fails. */
struct fixture {
    struct tg_sse_parser p;
    struct collected col;
};

static int setup_parser(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->col.stop_with = TG_OK;
    f->col.stop_at = SIZE_MAX;
    tg_sse_parser_init(&f->p, 1024, collect, &f->col);
    *state = f;
    return 0;
}

static int teardown_parser(void **state)
{
    struct fixture *f = *state;
    tg_sse_parser_release(&f->p);
    free(f);
    return 0;
}

static void test_callback_stops_parser(void **state)
{
    struct fixture *f = *state;
    f->col.stop_with = 7;
    f->col.stop_at = 2;
    const char *stream = "data: one\n\nevent: two\ndata: 2\n\ndata: three\n\n";
    assert_int_equal(tg_sse_feed(&f->p, stream, strlen(stream)), 7);
    assert_int_equal(f->col.n, 2); /* "three" was not delivered */
    assert_string_equal(f->col.names[1], "two");
}

static void test_callback_error_returned(void **state)
{
    struct fixture *f = *state;
    f->col.stop_with = TG_ERROR;
    f->col.stop_at = 1;
    /* the event is completed by a later feed: that feed returns the callback's value */
    assert_int_equal(tg_sse_feed(&f->p, "data: x\n", 8), TG_OK);
    assert_int_equal(f->col.n, 0);
    assert_int_equal(tg_sse_feed(&f->p, "\ndata: y\n\n", 10), TG_ERROR);
    assert_int_equal(f->col.n, 1);
    assert_string_equal(f->col.data[0], "x");
}

static void test_empty_feed_keeps_partial_line(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tg_sse_feed(&f->p, "", 0), TG_OK);
    assert_int_equal(tg_sse_feed(&f->p, "data: par", 9), TG_OK);
    assert_int_equal(tg_sse_feed(&f->p, "", 0), TG_OK);
    assert_int_equal(tg_sse_feed(&f->p, "tial\n\n", 6), TG_OK);
    assert_int_equal(f->col.n, 1);
    assert_string_equal(f->col.data[0], "partial");
}

static void test_empty_feed_between_cr_and_lf(void **state)
{
    /*
     * A feed of zero bytes is a split like any other: it must not forget that
     * the last feed ended on a CR, or the LF of that CRLF becomes a blank line
     * and dispatches the event early.
     * "event: e" CR | (empty) | LF "data: a" CR | (empty) | LF "data: b" CRLF CRLF
     * is one event "e" with data "a\nb".
     */
    struct fixture *f = *state;
    assert_int_equal(tg_sse_feed(&f->p, "event: e\r", 9), TG_OK);
    assert_int_equal(tg_sse_feed(&f->p, "", 0), TG_OK);
    assert_int_equal(tg_sse_feed(&f->p, "\ndata: a\r", 9), TG_OK);
    assert_int_equal(tg_sse_feed(&f->p, "", 0), TG_OK);
    assert_int_equal(tg_sse_feed(&f->p, "\ndata: b\r\n\r\n", 13), TG_OK);
    assert_int_equal(f->col.n, 1);
    assert_string_equal(f->col.names[0], "e");
    assert_string_equal(f->col.data[0], "a\nb");
}

static void test_release_then_reuse(void **state)
{
    struct fixture *f = *state;
    char big[1000];
    memset(big, 'b', sizeof(big));
    assert_int_equal(tg_sse_feed(&f->p, "data: ", 6), TG_OK);
    assert_int_equal(tg_sse_feed(&f->p, big, 500), TG_OK); /* buffered, unfinished */
    tg_sse_parser_release(&f->p);
    tg_sse_parser_release(&f->p); /* twice is harmless */
    tg_sse_parser_init(&f->p, 1024, collect, &f->col);
    assert_int_equal(tg_sse_feed(&f->p, "data: fresh\n\n", 13), TG_OK);
    assert_int_equal(f->col.n, 1);
    assert_string_equal(f->col.data[0], "fresh"); /* nothing of the old line is left */
}

static void test_unterminated_line_over_cap(void **state)
{
    /* a line that never ends still hits the cap, and nothing is dispatched */
    struct fixture *f = *state;
    char line[2048];
    memset(line, 'x', sizeof(line));
    memcpy(line, "data: ", 6);
    int rc = TG_OK;
    size_t fed = 0;
    while (fed < sizeof(line) && rc == TG_OK) {
        rc = tg_sse_feed(&f->p, line + fed, 100);
        fed += 100;
    }
    assert_int_equal(rc, TG_ERROR);
    assert_true(fed <= 1024 + 100); /* failed as soon as the cap was passed */
    assert_int_equal(f->col.n, 0);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test_setup_teardown(test_callback_stops_parser, setup_parser, teardown_parser),
        cmocka_unit_test_setup_teardown(test_callback_error_returned, setup_parser,
                                        teardown_parser),
        cmocka_unit_test_setup_teardown(test_empty_feed_keeps_partial_line, setup_parser,
                                        teardown_parser),
        cmocka_unit_test_setup_teardown(test_empty_feed_between_cr_and_lf, setup_parser,
                                        teardown_parser),
        cmocka_unit_test_setup_teardown(test_release_then_reuse, setup_parser, teardown_parser),
        cmocka_unit_test_setup_teardown(test_unterminated_line_over_cap, setup_parser,
                                        teardown_parser),
    };
    return unit_run_suite("sse", "sse", test_case_every_split, load_case, unload_case, fixed,
                          TG_ARRAY_LEN(fixed), NULL, NULL);
}
