/*
 * test_guard_texts.c — guard_texts.c: the texts a guard sees in each dialect,
 * their places, and replacing them in place.
 *
 * Data-driven: tests/unit/data/guard_texts/<case>/ holds one case.
 *   dialect  anthropic, openai_chat, openai_embeddings or http
 *   paths    (http) the field paths, one a line
 *   input    the request body (JSON)
 *   expect   the texts yielded, in order: a JSON array of [where, text]
 *   masked   (optional) the body after every text is replaced with "<X>"
 * Every case also checks that after masking, a second walk yields the same
 * places, each now "<X>". Adding a case is adding files.
 *
 * The rest are what a case file cannot express: a callback that stops the walk,
 * the caps (count, bytes, depth), keys holding NULs, bad replacements and
 * out-of-memory, the HTTP path grammar.
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

#include "providers/guard_texts.h"
#include "translate_test.h"
#include "unit.h"

#define MAX_PATHS 16

/* ---- the data-driven cases ---- */

struct gcase {
    char *dir;
    enum tg_guard_dialect dialect;
    char *paths_text;
    const char *paths[MAX_PATHS];
    size_t n_paths;
    json_t *input;
    json_t *expect;
    json_t *masked; /* NULL: not checked */
};

static enum tg_guard_dialect dialect_named(const char *dir, const char *name)
{
    if (strcmp(name, "anthropic") == 0)
        return TG_GUARD_ANTHROPIC;
    if (strcmp(name, "openai_chat") == 0)
        return TG_GUARD_OPENAI_CHAT;
    if (strcmp(name, "openai_embeddings") == 0)
        return TG_GUARD_OPENAI_EMBEDDINGS;
    if (strcmp(name, "http") == 0)
        return TG_GUARD_HTTP;
    fail_msg("%s: unknown dialect \"%s\"", dir, name);
    return TG_GUARD_HTTP;
}

static json_t *load_json(const char *dir, const char *name, bool required)
{
    char *text = unit_read_file(dir, name, NULL);
    if (text == NULL) {
        if (required)
            fail_msg("%s/%s: cannot read", dir, name);
        return NULL;
    }
    json_t *v = parse_or_fail(dir, name, text);
    free(text);
    return v;
}

static int load_gcase(void **state)
{
    struct gcase *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->dir = *state;
    *state = c;
    char *dialect = unit_read_file(c->dir, "dialect", NULL);
    if (dialect == NULL)
        fail_msg("%s/dialect: cannot read", c->dir);
    unit_chomp(dialect);
    c->dialect = dialect_named(c->dir, dialect);
    free(dialect);
    c->paths_text = unit_read_file(c->dir, "paths", NULL);
    for (char *line = c->paths_text; line != NULL && *line != '\0';) {
        char *end = strchr(line, '\n');
        if (end != NULL)
            *end = '\0';
        if (*line != '\0') {
            if (c->n_paths == MAX_PATHS)
                fail_msg("%s/paths: more than %d", c->dir, MAX_PATHS);
            c->paths[c->n_paths++] = line;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    c->input = load_json(c->dir, "input", true);
    c->expect = load_json(c->dir, "expect", true);
    c->masked = load_json(c->dir, "masked", false);
    return 0;
}

static int unload_gcase(void **state)
{
    struct gcase *c = *state;
    json_decref(c->input);
    json_decref(c->expect);
    json_decref(c->masked);
    free(c->paths_text);
    free(c); /* c->dir belongs to the runner */
    return 0;
}

/* Appends [where, text] to the array ctx. */
static int collect(void *ctx, const struct tg_guard_text *t)
{
    json_t *pair = json_pack("[s, s#]", t->where, t->text, t->len);
    assert_non_null(pair);
    assert_int_equal(json_array_append_new(ctx, pair), 0);
    return TG_OK;
}

static int mask(void *ctx, const struct tg_guard_text *t)
{
    (void)ctx;
    return tg_guard_texts_replace(t, "<X>", 3);
}

static void test_case(void **state)
{
    struct gcase *c = *state;
    json_t *got = json_array();
    int rc = tg_guard_texts_each(c->input, c->dialect, c->paths, c->n_paths, collect, got);
    if (rc != TG_OK)
        fail_msg("%s: the walk returned %d", c->dir, rc);
    check_json(c->dir, "the texts", got, c->expect);

    assert_int_equal(tg_guard_texts_each(c->input, c->dialect, c->paths, c->n_paths, mask, NULL),
                     TG_OK);
    if (c->masked != NULL)
        check_json(c->dir, "the masked body", c->input, c->masked);

    /* the same places, each now "<X>" */
    json_t *again = json_array();
    assert_int_equal(
        tg_guard_texts_each(c->input, c->dialect, c->paths, c->n_paths, collect, again), TG_OK);
    size_t i;
    json_t *pair;
    json_array_foreach(got, i, pair) {
        assert_int_equal(json_string_set(json_array_get(pair, 1), "<X>"), 0);
    }
    check_json(c->dir, "the texts after masking", again, got);
    json_decref(again);
    json_decref(got);
}

/* ---- fixed tests ---- */

struct counter {
    size_t calls;
    size_t stop_at; /* 0: never */
};

static int count(void *ctx, const struct tg_guard_text *t)
{
    struct counter *n = ctx;
    (void)t;
    n->calls++;
    return n->calls == n->stop_at ? TG_DECLINED : TG_OK;
}

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

static void test_stop(void **state)
{
    (void)state;
    json_t *doc = parse("{\"input\": [\"a\", \"b\", \"c\"]}");
    struct counter n = {.stop_at = 2};
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_OPENAI_EMBEDDINGS, NULL, 0, count, &n),
                     TG_DECLINED);
    assert_int_equal(n.calls, 2);
    json_decref(doc);
}

/* {"input": [s, s, ...]}: n references to one string of len bytes. */
static json_t *many(size_t n, size_t len)
{
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, 'a', len);
    text[len] = '\0';
    json_t *s = json_stringn(text, len);
    free(text);
    json_t *input = json_array();
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_array_append(input, s), 0);
    json_decref(s);
    return json_pack("{s:o}", "input", input);
}

static void test_cap_count(void **state)
{
    (void)state;
    json_t *doc = many(TG_GUARD_TEXTS_MAX_COUNT, 1);
    struct counter n = {0};
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_OPENAI_EMBEDDINGS, NULL, 0, count, &n),
                     TG_OK);
    assert_int_equal(n.calls, TG_GUARD_TEXTS_MAX_COUNT);
    json_decref(doc);

    doc = many(TG_GUARD_TEXTS_MAX_COUNT + 1, 1);
    n.calls = 0;
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_OPENAI_EMBEDDINGS, NULL, 0, count, &n),
                     TG_ERROR);
    assert_int_equal(n.calls, TG_GUARD_TEXTS_MAX_COUNT);
    json_decref(doc);
}

static void test_cap_bytes(void **state)
{
    (void)state;
    size_t mib = 1024 * 1024, fit = TG_GUARD_TEXTS_MAX_BYTES / mib;
    json_t *doc = many(fit, mib);
    struct counter n = {0};
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_OPENAI_EMBEDDINGS, NULL, 0, count, &n),
                     TG_OK);
    assert_int_equal(n.calls, fit);
    json_decref(doc);

    doc = many(fit + 1, mib);
    n.calls = 0;
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_OPENAI_EMBEDDINGS, NULL, 0, count, &n),
                     TG_ERROR);
    assert_int_equal(n.calls, fit);
    json_decref(doc);
}

/* A tool_use block whose input nests levels arrays deep around "deep". */
static json_t *nested_tool_use(size_t levels)
{
    json_t *value = json_string("deep");
    for (size_t i = 0; i < levels; i++) {
        json_t *array = json_array();
        assert_int_equal(json_array_append_new(array, value), 0);
        value = array;
    }
    json_t *doc =
        json_pack("{s:[{s:s, s:[{s:s, s:s, s:s, s:o}]}]}", "messages", "role", "assistant",
                  "content", "type", "tool_use", "id", "t1", "name", "f", "input", value);
    assert_non_null(doc);
    return doc;
}

static void test_cap_depth(void **state)
{
    (void)state;
    /* the input itself is one level; the walk allows TG_GUARD_TEXTS_MAX_DEPTH */
    json_t *doc = nested_tool_use(TG_GUARD_TEXTS_MAX_DEPTH - 2);
    struct counter n = {0};
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_ANTHROPIC, NULL, 0, count, &n), TG_OK);
    assert_int_equal(n.calls, 1);
    json_decref(doc);

    doc = nested_tool_use(TG_GUARD_TEXTS_MAX_DEPTH + 10);
    n.calls = 0;
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_ANTHROPIC, NULL, 0, count, &n), TG_ERROR);
    assert_int_equal(n.calls, 0);
    json_decref(doc);
}

/* A key holding a NUL shows as its position and is replaced as itself. */
static void test_key_with_nul(void **state)
{
    (void)state;
    json_t *input = json_object();
    assert_int_equal(json_object_setn_new(input, "a\0b", 3, json_string("secret")), 0);
    assert_int_equal(json_object_set_new(input, "a", json_string("plain")), 0);
    json_t *doc = nested_tool_use(0);
    json_t *block = json_array_get(
        json_object_get(json_array_get(json_object_get(doc, "messages"), 0), "content"), 0);
    assert_int_equal(json_object_set_new(block, "input", input), 0);

    json_t *got = json_array();
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_ANTHROPIC, NULL, 0, collect, got), TG_OK);
    json_t *want = parse("[[\"messages[0].content[0].input.#0\", \"secret\"],"
                         " [\"messages[0].content[0].input.a\", \"plain\"]]");
    check_json("key_with_nul", "the texts", got, want);
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_ANTHROPIC, NULL, 0, mask, NULL), TG_OK);
    assert_int_equal(json_object_size(input), 2);
    assert_string_equal(json_string_value(json_object_getn(input, "a\0b", 3)), "<X>");
    assert_string_equal(json_string_value(json_object_get(input, "a")), "<X>");
    json_decref(want);
    json_decref(got);
    json_decref(doc);
}

static int replace_bad(void *ctx, const struct tg_guard_text *t)
{
    (void)ctx;
    assert_int_equal(tg_guard_texts_replace(t, "\xff\xfe", 2), TG_ERROR);
    return TG_OK;
}

static int replace_failing(void *ctx, const struct tg_guard_text *t)
{
    (void)ctx;
    allocations = 0;
    fail_at = 1;
    int rc = tg_guard_texts_replace(t, "<X>", 3);
    fail_at = 0;
    assert_int_equal(rc, TG_ERROR);
    return TG_OK;
}

/* Invalid UTF-8 and out-of-memory leave the document as it was. */
static void test_replace_fails(void **state)
{
    (void)state;
    const char *body = "{\"system\": \"s\", \"messages\": [{\"role\": \"user\", \"content\":"
                       " [{\"type\": \"text\", \"text\": \"t\"}]}]}";
    json_t *doc = parse(body), *want = parse(body);
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_ANTHROPIC, NULL, 0, replace_bad, NULL),
                     TG_OK);
    check_json("replace_fails", "the body", doc, want);

    json_set_alloc_funcs(failing_malloc, free);
    int rc = tg_guard_texts_each(doc, TG_GUARD_ANTHROPIC, NULL, 0, replace_failing, NULL);
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(rc, TG_OK);
    check_json("replace_fails", "the body", doc, want);

    struct tg_guard_text nowhere = {0};
    assert_int_equal(tg_guard_texts_replace(&nowhere, "x", 1), TG_ERROR);
    struct tg_guard_text past = {.holder = json_object_get(doc, "messages"), .index = 5};
    assert_int_equal(tg_guard_texts_replace(&past, "x", 1), TG_ERROR);
    json_decref(want);
    json_decref(doc);
}

static void test_path_check(void **state)
{
    (void)state;
    const char *good[] = {"message",    "messages[*].content", "input.text",
                          "[*].prompt", "a[0][*].b",           "a-b_c.d$",
                          "[12]"};
    const char *bad[] = {"",    ".a",  "a.",    "a..b", "a[",    "a[]",  "a[x]",
                         "a[*", "a]b", "a[*]b", "[*]]", "a[-1]", "a.[0]"};
    for (size_t i = 0; i < TG_ARRAY_LEN(good); i++)
        if (tg_guard_texts_path_check(good[i]) != TG_OK)
            fail_msg("\"%s\" should be a valid path", good[i]);
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++)
        if (tg_guard_texts_path_check(bad[i]) != TG_DECLINED)
            fail_msg("\"%s\" should not be a valid path", bad[i]);
    assert_int_equal(tg_guard_texts_path_check(NULL), TG_DECLINED);
    char long_path[TG_GUARD_TEXTS_PATH_MAX + 2];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    assert_int_equal(tg_guard_texts_path_check(long_path), TG_DECLINED);

    /* a walk with a bad path fails before it yields anything */
    json_t *doc = parse("{\"message\": \"m\"}");
    const char *paths[] = {"message", "a[x]"};
    struct counter n = {0};
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_HTTP, paths, 2, count, &n), TG_ERROR);
    assert_int_equal(n.calls, 0);
    json_decref(doc);
}

/* A long "where" is cut, ends in "...", and the walk goes on. */
static int check_where(void *ctx, const struct tg_guard_text *t)
{
    size_t *calls = ctx;
    (*calls)++;
    size_t len = strlen(t->where);
    assert_true(len < TG_GUARD_TEXTS_WHERE_MAX);
    assert_string_equal(t->where + len - 3, "...");
    return TG_OK;
}

static void test_where_cut(void **state)
{
    (void)state;
    json_t *doc = nested_tool_use(100);
    size_t calls = 0;
    assert_int_equal(tg_guard_texts_each(doc, TG_GUARD_ANTHROPIC, NULL, 0, check_where, &calls),
                     TG_OK);
    assert_int_equal(calls, 1);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_stop),         cmocka_unit_test(test_cap_count),
        cmocka_unit_test(test_cap_bytes),    cmocka_unit_test(test_cap_depth),
        cmocka_unit_test(test_key_with_nul), cmocka_unit_test(test_replace_fails),
        cmocka_unit_test(test_path_check),   cmocka_unit_test(test_where_cut),
    };
    return unit_run_suite("guard_texts", "guard_texts", test_case, load_gcase, unload_gcase, fixed,
                          TG_ARRAY_LEN(fixed), NULL, NULL);
}
