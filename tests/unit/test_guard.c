/*
 * test_guard.c — the guardrails rules engine (guard.c) and the shipped rule set
 * (conf/guardrails.json).
 *
 * Data-driven: tests/unit/data/guard/corpus.tsv is a labelled corpus, one prompt
 * a line: label TAB category TAB text, where label is "pos" (a rule of that
 * category must find something) or "neg" (none may), and category is pii,
 * injection, topic, or benign (neg only: no rule may block it). Lines starting
 * with "#" are comments. The corpus is scanned at level "standard"; precision and
 * recall per category are printed, recall must be >= 0.95 and no benign line may
 * be blocked. Adding a case is adding a line.
 *
 * The rest: masking keeps every byte outside the masked spans, ReDoS bounds on a
 * 1 MB adversarial prompt per shipped rule, a rule hitting its match limit fails
 * closed, strictness levels, validators, and config errors naming their path.
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
#include <time.h>

#include "guard_mask.h"
#include "guard_validate.h"
#include "unit.h"

#define MAX_FINDINGS 256

/*
 * This thread's CPU time: what a scan costs, whatever else the machine runs
 * (a wall-clock budget fails on a loaded CI box without any regression).
 */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* conf/guardrails.json, parsed (new reference). */
static json_t *shipped_section(void)
{
    char *dir = unit_data_dir("guard");
    assert_non_null(dir);
    char *conf_dir = unit_path(dir, "../../../../conf");
    assert_non_null(conf_dir);
    size_t len;
    char *text = unit_read_file(conf_dir, "guardrails.json", &len);
    assert_non_null(text);
    json_error_t jerr;
    json_t *section = json_loadb(text, len, 0, &jerr);
    if (section == NULL)
        fail_msg("conf/guardrails.json: %s at line %d", jerr.text, jerr.line);
    free(text);
    free(conf_dir);
    free(dir);
    return section;
}

static struct tg_guard_rules *load_shipped(void)
{
    json_t *section = shipped_section();
    char err[512] = "";
    struct tg_guard_rules *rules = tg_guard_load(section, err, sizeof(err));
    if (rules == NULL)
        fail_msg("conf/guardrails.json: %s", err);
    json_decref(section);
    return rules;
}

static struct tg_guard_rules *load_text(const char *json, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *section = json_loads(json, 0, &jerr);
    if (section == NULL)
        fail_msg("test JSON: %s", jerr.text);
    struct tg_guard_rules *rules = tg_guard_load(section, err, err_size);
    json_decref(section);
    return rules;
}

/* ---- the labelled corpus ---- */

struct tally {
    int positives, true_pos, false_pos;
};

static void test_corpus(void **state)
{
    (void)state;
    struct tg_guard_rules *rules = load_shipped();
    char *dir = unit_data_dir("guard");
    size_t len;
    char *corpus = unit_read_file(dir, "corpus.tsv", &len);
    assert_non_null(corpus);
    static const char *const categories[] = {"pii", "injection", "topic"};
    struct tally tally[3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    int lines = 0, benign = 0, benign_blocked = 0, benign_flagged = 0;
    struct tg_guard_finding found[MAX_FINDINGS];
    char *save = corpus;
    for (char *line = corpus; line != NULL && *line != '\0'; line = save) {
        char *nl = strchr(line, '\n');
        save = nl != NULL ? nl + 1 : NULL;
        if (nl != NULL)
            *nl = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *tab1 = strchr(line, '\t');
        char *tab2 = tab1 != NULL ? strchr(tab1 + 1, '\t') : NULL;
        if (tab2 == NULL)
            fail_msg("corpus.tsv: malformed line \"%s\"", line);
        *tab1 = *tab2 = '\0';
        const char *label = line, *category = tab1 + 1, *text = tab2 + 1;
        bool pos = strcmp(label, "pos") == 0;
        if (!pos && strcmp(label, "neg") != 0)
            fail_msg("corpus.tsv: unknown label \"%s\"", label);
        int want = -1;
        for (int c = 0; c < 3; c++)
            if (strcmp(category, categories[c]) == 0)
                want = c;
        if (want < 0 && strcmp(category, "benign") != 0)
            fail_msg("corpus.tsv: unknown category \"%s\"", category);
        lines++;
        size_t n = 0;
        assert_int_equal(
            tg_guard_scan(rules, TG_GUARD_STANDARD, text, strlen(text), found, MAX_FINDINGS, &n),
            TG_OK);
        bool hit[3] = {false, false, false}, blocked = false;
        for (size_t i = 0; i < n; i++) {
            hit[found[i].category] = true;
            blocked |= found[i].action == TG_GUARD_BLOCK;
        }
        if (want < 0) {
            benign++;
            benign_blocked += blocked;
            benign_flagged += hit[0] || hit[1] || hit[2];
            if (n > 0)
                printf("  benign %s: %s by %s: %s\n", blocked ? "BLOCKED" : "flagged",
                       tg_guard_action_name(found[0].action), found[0].name, text);
        }
        for (int c = 0; c < 3; c++) {
            bool positive = pos && c == want;
            tally[c].positives += positive;
            tally[c].true_pos += positive && hit[c];
            tally[c].false_pos += !positive && hit[c];
            if (positive && !hit[c])
                printf("  %s missed: %s\n", categories[c], text);
            if (!positive && hit[c] && want >= 0) {
                for (size_t i = 0; i < n; i++)
                    if ((int)found[i].category == c) {
                        printf("  %s false positive (%s): %s [%.*s]\n", categories[c],
                               found[i].name, text, (int)found[i].length, text + found[i].offset);
                        break;
                    }
            }
        }
    }
    printf("corpus: %d prompts, %d benign (%d flagged, %d blocked)\n", lines, benign,
           benign_flagged, benign_blocked);
    for (int c = 0; c < 3; c++) {
        int flagged = tally[c].true_pos + tally[c].false_pos;
        double precision = flagged ? (double)tally[c].true_pos / flagged : 1.0;
        double recall = tally[c].positives ? (double)tally[c].true_pos / tally[c].positives : 1.0;
        printf("  %-9s positives %3d  precision %.3f  recall %.3f  (tp %d, fp %d)\n", categories[c],
               tally[c].positives, precision, recall, tally[c].true_pos, tally[c].false_pos);
        assert_true(tally[c].positives > 0);
        assert_true(recall >= 0.95);
    }
    assert_true(lines >= 300);
    assert_int_equal(benign_blocked, 0);
    free(corpus);
    free(dir);
    tg_guard_free(rules);
}

/* ---- masking ---- */

static bool utf8_ok(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t extra = s[i] < 0x80                   ? 0
                       : s[i] >= 0xC2 && s[i] < 0xE0 ? 1
                       : s[i] >= 0xE0 && s[i] < 0xF0 ? 2
                       : s[i] >= 0xF0 && s[i] < 0xF5 ? 3
                                                     : 9;
        if (extra == 9)
            return false;
        for (size_t k = 1; k <= extra; k++)
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return false;
        i += extra + 1;
    }
    return true;
}

static int finding_cmp(const void *a, const void *b)
{
    const struct tg_guard_finding *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every byte outside the mask spans is kept, each span becomes one "<...>" mask. */
static void check_mask(const struct tg_guard_rules *rules, const char *text, size_t want_spans)
{
    size_t len = strlen(text), n = 0, out_len = 0;
    struct tg_guard_finding found[MAX_FINDINGS], spans[MAX_FINDINGS];
    assert_int_equal(tg_guard_scan(rules, TG_GUARD_STANDARD, text, len, found, MAX_FINDINGS, &n),
                     TG_OK);
    size_t n_spans = 0;
    for (size_t i = 0; i < n; i++)
        if (found[i].action == TG_GUARD_MASK)
            spans[n_spans++] = found[i];
    qsort(spans, n_spans, sizeof(*spans), finding_cmp);
    size_t merged = 0;
    for (size_t i = 0; i < n_spans; i++) {
        size_t end = spans[i].offset + spans[i].length;
        if (merged > 0 && spans[i].offset < spans[merged - 1].offset + spans[merged - 1].length) {
            size_t prev_end = spans[merged - 1].offset + spans[merged - 1].length;
            if (end > prev_end)
                spans[merged - 1].length = end - spans[merged - 1].offset;
        } else {
            spans[merged++] = spans[i];
        }
    }
    assert_int_equal(merged, want_spans);
    char *masked = tg_guard_mask(rules, TG_GUARD_STANDARD, text, len, &out_len);
    assert_non_null(masked);
    assert_int_equal(strlen(masked), out_len);
    assert_true(utf8_ok((const unsigned char *)masked, out_len));
    size_t in_at = 0, out_at = 0;
    for (size_t i = 0; i < merged; i++) {
        size_t gap = spans[i].offset - in_at;
        assert_true(out_at + gap <= out_len);
        assert_memory_equal(masked + out_at, text + in_at, gap);
        out_at += gap;
        assert_int_equal(masked[out_at], '<');
        const char *close = strchr(masked + out_at, '>');
        assert_non_null(close);
        out_at = (size_t)(close - masked) + 1;
        in_at = spans[i].offset + spans[i].length;
    }
    assert_int_equal(out_len - out_at, len - in_at);
    assert_memory_equal(masked + out_at, text + in_at, len - in_at);
    free(masked);
}

static void test_mask(void **state)
{
    (void)state;
    struct tg_guard_rules *rules = load_shipped();
    check_mask(rules, "Grüße an jürgen.müller@example.de, Tel. +49 30 901820 — danke ✓", 2);
    check_mask(rules, "SSN 123-45-6789, card 4111 1111 1111 1111, ip 8.8.8.8 ☃", 3);
    check_mask(rules, "nothing to hide here: 日本語のテキスト", 0);
    check_mask(rules, "4111111111111111", 1);
    check_mask(rules, "", 0);
    size_t out_len;
    char *masked = tg_guard_mask(rules, TG_GUARD_STANDARD, "mail a@b.io now", 15, &out_len);
    assert_string_equal(masked, "mail <EMAIL> now");
    free(masked);
    /* invalid UTF-8 is refused, not masked around */
    assert_null(tg_guard_mask(rules, TG_GUARD_STANDARD, "a\xff b@c.io", 10, &out_len));
    size_t n;
    struct tg_guard_finding f[1];
    assert_int_equal(tg_guard_scan(rules, TG_GUARD_STANDARD, "\xc0\xaf", 2, f, 1, &n), TG_ERROR);
    tg_guard_free(rules);
}

/* ---- ReDoS ---- */

#define ADVERSARIAL_BYTES (1024 * 1024)

static char *repeat(const char *unit)
{
    size_t unit_len = strlen(unit);
    char *s = malloc(ADVERSARIAL_BYTES + 1);
    assert_non_null(s);
    for (size_t i = 0; i < ADVERSARIAL_BYTES; i++)
        s[i] = unit[i % unit_len];
    s[ADVERSARIAL_BYTES] = '\0';
    return s;
}

static void test_redos(void **state)
{
    (void)state;
    static const char *const units[] = {"1",        " ",    "a",    "ignore ", "1 ",
                                        "1-",       "a.",   "../",  "'",       "sk-",
                                        "you are ", "a@a.", "1.1.", "AKIA",    "-----BEGIN "};
    char *inputs[TG_ARRAY_LEN(units)];
    for (size_t u = 0; u < TG_ARRAY_LEN(units); u++)
        inputs[u] = repeat(units[u]);
    json_t *section = shipped_section();
    json_t *all = json_object_get(section, "rules");
    double total = 0;
    struct tg_guard_finding found[MAX_FINDINGS];
    for (size_t r = 0; r < json_array_size(all); r++) {
        json_t *one = json_pack("{s:[O]}", "rules", json_array_get(all, r));
        char err[512];
        struct tg_guard_rules *rules = tg_guard_load(one, err, sizeof(err));
        assert_non_null(rules);
        double worst = 0;
        size_t worst_unit = 0, limits = 0;
        for (size_t u = 0; u < TG_ARRAY_LEN(units); u++) {
            double t0 = now_seconds();
            size_t n = 0;
            int rc = tg_guard_scan(rules, TG_GUARD_STANDARD, inputs[u], ADVERSARIAL_BYTES, found,
                                   MAX_FINDINGS, &n);
            double took = now_seconds() - t0;
            assert_true(rc == TG_OK || rc == TG_DECLINED);
            for (size_t i = 0; i < n && i < MAX_FINDINGS; i++)
                limits += found[i].limit;
            total += took;
            if (took > worst) {
                worst = took;
                worst_unit = u;
            }
        }
        printf("  %-30s worst %7.1f ms on \"%s\"...%s\n",
               json_string_value(json_object_get(json_array_get(all, r), "name")), worst * 1e3,
               units[worst_unit], limits ? " (hit its limit: failed closed)" : "");
        tg_guard_free(rules);
        json_decref(one);
    }
    printf("redos: %zu rules x %zu inputs of 1 MB in %.2f s\n", json_array_size(all),
           TG_ARRAY_LEN(units), total);
    assert_true(total < 2.0);
    json_decref(section);
    for (size_t u = 0; u < TG_ARRAY_LEN(units); u++)
        free(inputs[u]);
}

/* ---- limits, strictness, validators, errors ---- */

static void test_match_limit_fails_closed(void **state)
{
    (void)state;
    static const char *const actions[] = {"block", "warn", "mask"};
    const char text[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab";
    for (size_t a = 0; a < TG_ARRAY_LEN(actions); a++) {
        char json[512], err[256];
        snprintf(json, sizeof(json),
                 "{\"limits\": {\"match_limit\": 1000},"
                 " \"rules\": [{\"name\": \"catastrophic\", \"category\": \"injection\","
                 " \"pattern\": \"^(a|aa)+$\", \"action\": \"%s\"}]}",
                 actions[a]);
        struct tg_guard_rules *rules = load_text(json, err, sizeof(err));
        assert_non_null(rules);
        struct tg_guard_finding f[4];
        size_t n = 9;
        assert_int_equal(tg_guard_scan(rules, TG_GUARD_STANDARD, text, sizeof(text) - 1, f, 4, &n),
                         TG_OK);
        if (a == 0) {
            assert_int_equal(n, 1);
            assert_true(f[0].limit);
            assert_int_equal(f[0].action, TG_GUARD_BLOCK);
            assert_string_equal(f[0].name, "catastrophic");
        } else {
            assert_int_equal(n, 0); /* warn and mask rules are skipped */
        }
        /* admin's injection rules only warn: the limit is then not a block either */
        assert_int_equal(tg_guard_scan(rules, TG_GUARD_ADMIN, text, sizeof(text) - 1, f, 4, &n),
                         TG_OK);
        assert_int_equal(n, 0);
        tg_guard_free(rules);
    }
}

static const char levels_json[] =
    "{\"rules\": ["
    " {\"name\": \"card\", \"category\": \"pii\", \"pattern\": \"\\\\d{16}\","
    "  \"validator\": \"luhn\", \"action\": \"mask\", \"severity\": \"critical\"},"
    " {\"name\": \"override\", \"category\": \"injection\", \"pattern\": \"ignore previous\","
    "  \"caseless\": true, \"action\": \"block\", \"severity\": \"critical\"},"
    " {\"name\": \"earnings\", \"category\": \"topic\", \"pattern\": \"earnings\","
    "  \"action\": \"block\", \"severity\": \"high\"},"
    " {\"name\": \"merger\", \"category\": \"topic\", \"pattern\": \"merger\","
    "  \"action\": \"block\", \"severity\": \"critical\"},"
    " {\"name\": \"secret\", \"category\": \"pii\", \"pattern\": \"AKIA\\\\w{16}\","
    "  \"action\": \"block\", \"severity\": \"critical\"}],"
    " \"levels\": {\"roles\": {\"security-team\": \"admin\", \"finance\": \"elevated\"},"
    "             \"default\": \"standard\"}}";

static const char levels_text[] =
    "4111111111111111 IGNORE PREVIOUS earnings merger AKIAIOSFODNN7EXAMPLE";

static void actions_at(const struct tg_guard_rules *rules, enum tg_guard_level level,
                       enum tg_guard_action want[5])
{
    struct tg_guard_finding f[8];
    size_t n;
    assert_int_equal(tg_guard_scan(rules, level, levels_text, strlen(levels_text), f, 8, &n),
                     TG_OK);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f[i].rule, i);
        assert_int_equal(f[i].action, want[i]);
    }
}

static void test_strictness(void **state)
{
    (void)state;
    char err[256];
    struct tg_guard_rules *rules = load_text(levels_json, err, sizeof(err));
    assert_non_null(rules);
    enum tg_guard_action standard[5] = {TG_GUARD_MASK, TG_GUARD_BLOCK, TG_GUARD_BLOCK,
                                        TG_GUARD_BLOCK, TG_GUARD_BLOCK};
    enum tg_guard_action elevated[5] = {TG_GUARD_MASK, TG_GUARD_BLOCK, TG_GUARD_WARN,
                                        TG_GUARD_BLOCK, TG_GUARD_BLOCK};
    enum tg_guard_action admin[5] = {TG_GUARD_MASK, TG_GUARD_WARN, TG_GUARD_BLOCK, TG_GUARD_BLOCK,
                                     TG_GUARD_BLOCK};
    actions_at(rules, TG_GUARD_STANDARD, standard);
    actions_at(rules, TG_GUARD_ELEVATED, elevated);
    actions_at(rules, TG_GUARD_ADMIN, admin);
    assert_int_equal(tg_guard_level_for_role(rules, "security-team"), TG_GUARD_ADMIN);
    assert_int_equal(tg_guard_level_for_role(rules, "finance"), TG_GUARD_ELEVATED);
    assert_int_equal(tg_guard_level_for_role(rules, "intern"), TG_GUARD_STANDARD);
    assert_int_equal(tg_guard_level_for_role(rules, NULL), TG_GUARD_STANDARD);
    /* pii masks at every level: the card is masked for admin too */
    size_t out_len;
    char *masked = tg_guard_mask(rules, TG_GUARD_ADMIN, levels_text, strlen(levels_text), &out_len);
    assert_non_null(masked);
    assert_true(strncmp(masked, "<CARD> IGNORE", 13) == 0);
    free(masked);
    tg_guard_free(rules);

    /* a configured level replaces the built-in policy for that level */
    json_t *section = json_loads(levels_json, 0, NULL);
    json_object_set_new(
        section, "strictness",
        json_pack("{s:{s:{s:s}}, s:{}}", "standard", "topic", "max_action", "warn", "admin"));
    rules = tg_guard_load(section, err, sizeof(err));
    assert_non_null(rules);
    enum tg_guard_action standard2[5] = {TG_GUARD_MASK, TG_GUARD_BLOCK, TG_GUARD_WARN,
                                         TG_GUARD_WARN, TG_GUARD_BLOCK};
    actions_at(rules, TG_GUARD_STANDARD, standard2);
    actions_at(rules, TG_GUARD_ADMIN, standard);
    actions_at(rules, TG_GUARD_ELEVATED, elevated);
    tg_guard_free(rules);
    json_decref(section);
}

static void test_validators(void **state)
{
    (void)state;
    char err[256];
    struct tg_guard_rules *rules = load_text(
        "{\"rules\": ["
        " {\"name\": \"card\", \"category\": \"pii\", \"pattern\": \"[\\\\d -]{13,23}\\\\d\","
        "  \"validator\": \"luhn\", \"action\": \"mask\"},"
        " {\"name\": \"iban\", \"category\": \"pii\","
        "  \"pattern\": \"[A-Z]{2}\\\\d\\\\d(?: ?[A-Z0-9]{1,4})+\", \"validator\": \"iban\","
        "  \"action\": \"mask\"}]}",
        err, sizeof(err));
    assert_non_null(rules);
    static const struct {
        const char *text;
        size_t n;
        size_t length;
    } cases[] = {
        {"4111 1111 1111 1111", 1, 19},
        {"4111-1111-1111-1111", 1, 19},
        {"4111 1111 1111 1112", 0, 0},
        {"4111111111111111111", 0, 0}, /* 19 digits failing Luhn */
        {"GB82 WEST 1234 5698 7654 32", 1, 27},
        {"GB82WEST12345698765432", 1, 22},
        {"GB82 WEST 1234 5698 7654 33", 0, 0},
        {"GB82 WEST 1234 5698 7654 32 ABCD", 1, 27}, /* a following group is not taken */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        struct tg_guard_finding f[4];
        size_t n;
        assert_int_equal(
            tg_guard_scan(rules, TG_GUARD_STANDARD, cases[i].text, strlen(cases[i].text), f, 4, &n),
            TG_OK);
        if (n != cases[i].n)
            fail_msg("\"%s\": %zu findings, want %zu", cases[i].text, n, cases[i].n);
        if (n > 0)
            assert_int_equal(f[0].length, cases[i].length);
    }
    /* the UTF-8 check refuses overlongs, surrogates, truncations and values past U+10FFFF */
    assert_true(tg_guard_validate_utf8((const unsigned char *)"h\xc3\xa9 \xf0\x9f\x98\x80", 8));
    assert_false(tg_guard_validate_utf8((const unsigned char *)"\xc0\xaf", 2));
    assert_false(tg_guard_validate_utf8((const unsigned char *)"\xed\xa0\x80", 3));
    assert_false(tg_guard_validate_utf8((const unsigned char *)"\xe2\x82", 2));
    assert_false(tg_guard_validate_utf8((const unsigned char *)"\xf4\x90\x80\x80", 4));
    assert_true(tg_guard_validate_iban("gb82 west 1234 5698 7654 32", 27));
    assert_false(tg_guard_validate_luhn("4111 1111 1111 111x", 19));
    /* more findings than room: the first ones, the count of all, TG_DECLINED */
    struct tg_guard_finding f[1];
    size_t n;
    const char two[] = "4111111111111111 x 4111111111111111";
    assert_int_equal(tg_guard_scan(rules, TG_GUARD_STANDARD, two, strlen(two), f, 1, &n),
                     TG_DECLINED);
    assert_int_equal(n, 2);
    assert_int_equal(f[0].offset, 0);
    tg_guard_free(rules);
}

static void expect_error(const char *json, const char *want)
{
    char err[512] = "";
    struct tg_guard_rules *rules = load_text(json, err, sizeof(err));
    if (rules != NULL || strstr(err, want) == NULL)
        fail_msg("%s: got \"%s\", want \"%s\"", json, err, want);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("{\"rules\": [{\"name\": \"a\", \"category\": \"pii\", \"pattern\": \"x\"},"
                 " {\"name\": \"b\", \"category\": \"pii\", \"pattern\": \"(ab\"}]}",
                 "guardrails.rules[1].pattern: could not compile pattern: missing closing "
                 "parenthesis at offset 3");
    expect_error("{\"rules\": [{\"name\": \"a\", \"category\": \"pi\", \"pattern\": \"x\"}]}",
                 "guardrails.rules[0].category: unknown value \"pi\" (expected one of \"pii\", "
                 "\"injection\", \"topic\")");
    expect_error("{\"rules\": [{\"name\": \"a\", \"pattern\": \"x\"}]}",
                 "guardrails.rules[0].category: missing");
    expect_error("{\"rules\": [{\"name\": \"a\", \"category\": \"pii\", \"pattern\": \"x\","
                 " \"action\": \"drop\"}]}",
                 "guardrails.rules[0].action: unknown value \"drop\"");
    expect_error("{\"rules\": [{\"name\": \"a\", \"category\": \"pii\", \"pattern\": \"x\","
                 " \"validator\": \"crc\"}]}",
                 "guardrails.rules[0].validator: unknown value \"crc\"");
    expect_error("{\"rules\": [{\"name\": \"a\", \"category\": \"pii\", \"pattern\": \"x\","
                 " \"patern\": \"y\"}]}",
                 "guardrails.rules[0]: unknown member \"patern\"");
    expect_error("{\"rules\": [{\"name\": \"a\", \"category\": \"pii\", \"pattern\": \"x\"},"
                 " {\"name\": \"a\", \"category\": \"pii\", \"pattern\": \"y\"}]}",
                 "guardrails.rules[1].name: \"a\" is already the name of rules[0]");
    expect_error("{\"rules\": [{\"name\": \"a\", \"category\": \"pii\", \"pattern\": \"\"}]}",
                 "guardrails.rules[0].pattern: must be a string of 1 to 4096 bytes");
    expect_error("{\"rules\": {}}", "guardrails.rules: must be an array");
    expect_error("{\"rules\": [], \"limits\": {\"match_limit\": 0}}",
                 "guardrails.limits.match_limit: must be an integer from 1 to 100000000");
    expect_error("{\"rules\": [], \"strictness\": {\"root\": {}}}",
                 "guardrails.strictness: unknown member \"root\"");
    expect_error("{\"rules\": [], \"strictness\": {\"admin\": {\"topic\": {\"below\": \"huge\"}}}}",
                 "guardrails.strictness.admin.topic.below: unknown value \"huge\"");
    expect_error("{\"rules\": [], \"levels\": {\"roles\": {\"ops\": \"root\"}}}",
                 "guardrails.levels.roles.ops: must be one of \"admin\", \"elevated\", "
                 "\"standard\"");
    /* "description" is accepted, and the default mask is the name upper-cased */
    char err[256];
    struct tg_guard_rules *rules =
        load_text("{\"description\": \"d\", \"rules\": [{\"name\": \"zip_code\", \"category\":"
                  " \"pii\", \"pattern\": \"\\\\b\\\\d{5}\\\\b\", \"action\": \"mask\","
                  " \"description\": \"US ZIP\"}]}",
                  err, sizeof(err));
    assert_non_null(rules);
    size_t out_len;
    char *masked = tg_guard_mask(rules, TG_GUARD_STANDARD, "at 02139.", 9, &out_len);
    assert_string_equal(masked, "at <ZIP_CODE>.");
    free(masked);
    tg_guard_free(rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_redos),         cmocka_unit_test(test_match_limit_fails_closed),
        cmocka_unit_test(test_strictness),    cmocka_unit_test(test_validators),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests_name("guard", tests, NULL, NULL);
}
