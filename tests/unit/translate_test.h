/*
 * translate_test.h — what the translation unit tests share: JSON comparison
 * with a readable diff, case-file arguments, and jansson allocations that fail
 * on demand. Header-only (static inline), as unit.h, because each test binary
 * is built from its one .c file; include it after cmocka.h and jansson.h.
 */
#ifndef TG_TEST_TRANSLATE_TEST_H
#define TG_TEST_TRANSLATE_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* Failure injection (the torture tests below): the jansson allocation that fails. */
static size_t allocations, fail_at; /* fail_at: the allocation that fails (0: none) */

static inline void fail_unequal(const char *dir, const char *what, json_t *got, json_t *want)
{
    char *g =
        got != NULL ? json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char *w =
        want != NULL ? json_dumps(want, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    fprintf(stderr, "%s: %s differs\n--- got\n%s\n--- want\n%s\n", dir, what,
            g != NULL ? g : "(null)", w != NULL ? w : "(null)");
    free(g);
    free(w);
    fail_msg("%s: %s differs", dir, what);
}

static inline void check_json(const char *dir, const char *what, json_t *got, json_t *want)
{
    if (got == NULL || want == NULL || !json_equal(got, want))
        fail_unequal(dir, what, got, want);
}

static inline json_t *parse_or_fail(const char *dir, const char *what, const char *text)
{
    json_error_t error;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &error);
    if (v == NULL)
        fail_msg("%s: %s: line %d: %s", dir, what, error.line, error.text);
    return v;
}

/* The value of "name value" in an args text, copied into out; false when absent. */
static inline bool arg(const char *args, const char *name, char *out, size_t size)
{
    size_t len = strlen(name);
    for (const char *line = args; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t line_len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (line_len >= len && strncmp(line, name, len) == 0 &&
            (line_len == len || line[len] == ' ')) {
            size_t from = line_len > len ? len + 1 : len;
            snprintf(out, size, "%.*s", (int)(line_len - from), line + from);
            return true;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return false;
}

static inline void *failing_malloc(size_t size)
{
    if (fail_at != 0 && ++allocations == fail_at)
        return NULL;
    return malloc(size);
}

static inline json_t *event_data(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

#endif
