/*
 * guard_bench.c — guard-bench, scripts/bench's figures for the guardrails
 * engine (fcgi/guard.h) alone: no stack, no request, one thread.
 *
 *   guard-bench RULES_FILE [-r ROUNDS]   the figures below
 *   guard-bench -p BYTES                 prints the benign prompt of BYTES bytes
 *
 * 1. Cost: the whole rule set of RULES_FILE (conf/guardrails.json) is loaded as
 *    tollgate-fcgi loads it, then a benign prompt of 2 KB and one of 100 KB
 *    (realistic English prose, built deterministically: the same bytes on every
 *    run, and the ones scripts/bench POSTs through the stack) are scanned at
 *    level standard, ROUNDS x 2000 and ROUNDS x 40 times. Prints the process CPU
 *    time per scan and how many findings the prompt gave (0: nothing of it is
 *    masked or blocked).
 * 2. ReDoS: each rule alone (a section of that one rule and the file's limits)
 *    against 1 MB adversarial inputs (long runs of digits, spaces, "a",
 *    "ignore ", "../", quotes, "-----BEGIN " ...), then the whole set against
 *    the same inputs. Prints each rule's worst wall-clock time, the worst rule,
 *    and the whole set's worst.
 *
 * Output lines (scripts/bench parses them):
 *   scan BYTES US_PER_SCAN FINDINGS
 *   rule NAME MS "UNIT" [limit]
 *   redos-worst NAME MS "UNIT"
 *   redos-set MS "UNIT"
 * Exit status 1 when the rules cannot be loaded or a scan fails.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"

#define ADVERSARIAL_BYTES (1024 * 1024)
#define MAX_FOUND 64

/* Benign prose: what a prompt usually is. No PII, no instructions aimed at the model. */
static const char *const sentences[] = {
    "The quarterly planning meeting moved to the large conference room on the third floor.",
    "Please summarize the following design notes for the storage team in a neutral tone.",
    "Our service reads events from the queue, groups them by customer and writes a daily "
    "summary.",
    "The migration plan keeps the old schema readable until every client has been upgraded.",
    "Latency rose slightly after the deploy, mostly in the slowest percentile of requests.",
    "Write a short paragraph explaining why caching helps when the same question is asked "
    "often.",
    "The garden behind the library needs new benches, better lighting and a wider path.",
    "Each section of the report should start with a one sentence conclusion, then the evidence.",
    "Compare the two approaches and list what each one costs in memory and in maintenance.",
    "The recipe calls for flour, butter, a little salt and two hours of patience.",
    "Customers asked for clearer invoices, so the billing page now groups charges by project.",
    "The onboarding guide explains how to request access, where the runbooks live and whom to "
    "ask.",
    "Translate the paragraph into plain English without changing its meaning.",
    "Rain is expected over the weekend, so the team picnic will be held indoors.",
    "Review the function below and suggest clearer names for its variables and arguments.",
    "The museum exhibit covers early printing presses, paper making and bookbinding.",
};

static const char *const units[] = {"1",    " ",    "a",    "ignore ",    "1 ",  "1-",
                                    "a.",   "../",  "'",    "\"",         "sk-", "you are ",
                                    "a@a.", "1.1.", "AKIA", "-----BEGIN "};

/* The benign prompt of exactly len bytes (ASCII): sentences picked by a fixed LCG. */
static char *benign(size_t len)
{
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    unsigned long seed = 12345;
    size_t at = 0;
    while (at < len) {
        seed = seed * 1103515245UL + 12345UL;
        const char *pick = sentences[(seed >> 16) % TG_ARRAY_LEN(sentences)];
        for (size_t i = 0; pick[i] != '\0' && at < len; i++)
            s[at++] = pick[i];
        if (at < len)
            s[at++] = (seed >> 8) % 5 == 0 ? '\n' : ' ';
    }
    s[len] = '\0';
    return s;
}

static char *repeat(const char *unit)
{
    size_t unit_len = strlen(unit);
    char *s = malloc(ADVERSARIAL_BYTES + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < ADVERSARIAL_BYTES; i++)
        s[i] = unit[i % unit_len];
    s[ADVERSARIAL_BYTES] = '\0';
    return s;
}

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One scan; *limit set when a finding hit its match limit. TG_ERROR on failure. */
static int scan(const struct tg_guard_rules *rules, const char *text, size_t len, size_t *n,
                bool *limit)
{
    struct tg_guard_finding found[MAX_FOUND];
    int rc = tg_guard_scan(rules, TG_GUARD_STANDARD, text, len, found, MAX_FOUND, n);
    if (rc == TG_ERROR)
        return TG_ERROR;
    for (size_t i = 0; limit != NULL && i < *n && i < MAX_FOUND; i++)
        *limit = *limit || found[i].limit;
    return TG_OK;
}

static int cost(const struct tg_guard_rules *rules, size_t len, long times)
{
    char *text = benign(len);
    if (text == NULL)
        return TG_ERROR;
    size_t n = 0;
    int rc = scan(rules, text, len, &n, NULL); /* warm: JIT stacks, caches */
    double t0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < times && rc == TG_OK; i++)
        rc = scan(rules, text, len, &n, NULL);
    double took = seconds(CLOCK_PROCESS_CPUTIME_ID) - t0;
    if (rc == TG_OK)
        printf("scan %zu %.1f %zu\n", len, took * 1e6 / (double)times, n);
    free(text);
    return rc;
}

/* The worst wall-clock time of rules over the adversarial inputs; *worst_unit gets its input. */
static int worst_of(const struct tg_guard_rules *rules, char *const *inputs, double *worst,
                    size_t *worst_unit, bool *limit)
{
    *worst = 0;
    *worst_unit = 0;
    for (size_t u = 0; u < TG_ARRAY_LEN(units); u++) {
        size_t n = 0;
        double t0 = seconds(CLOCK_MONOTONIC);
        if (scan(rules, inputs[u], ADVERSARIAL_BYTES, &n, limit) != TG_OK)
            return TG_ERROR;
        double took = seconds(CLOCK_MONOTONIC) - t0;
        if (took > *worst) {
            *worst = took;
            *worst_unit = u;
        }
    }
    return TG_OK;
}

static int redos(json_t *section, const struct tg_guard_rules *all)
{
    char *inputs[TG_ARRAY_LEN(units)];
    for (size_t u = 0; u < TG_ARRAY_LEN(units); u++)
        if ((inputs[u] = repeat(units[u])) == NULL)
            return TG_ERROR;
    json_t *rules = json_object_get(section, "rules");
    json_t *limits = json_object_get(section, "limits");
    double worst_all = -1, worst;
    size_t worst_rule = 0, unit, worst_rule_unit = 0;
    int rc = TG_OK;
    for (size_t r = 0; r < json_array_size(rules) && rc == TG_OK; r++) {
        json_t *one = json_pack("{s:[O]}", "rules", json_array_get(rules, r));
        if (one == NULL || (limits != NULL && json_object_set(one, "limits", limits) != 0))
            return TG_ERROR;
        char err[512];
        struct tg_guard_rules *alone = tg_guard_load(one, err, sizeof(err));
        json_decref(one);
        if (alone == NULL) {
            fprintf(stderr, "guard-bench: rule %zu: %s\n", r, err);
            return TG_ERROR;
        }
        bool limit = false;
        rc = worst_of(alone, inputs, &worst, &unit, &limit);
        if (rc == TG_OK) {
            printf("rule %s %.2f \"%s\"%s\n", tg_guard_rule_name(alone, 0), worst * 1e3,
                   units[unit], limit ? " limit" : "");
            if (worst > worst_all) {
                worst_all = worst;
                worst_rule = r;
                worst_rule_unit = unit;
            }
        }
        tg_guard_free(alone);
    }
    if (rc == TG_OK)
        printf("redos-worst %s %.2f \"%s\"\n", tg_guard_rule_name(all, worst_rule), worst_all * 1e3,
               units[worst_rule_unit]);
    bool limit = false;
    if (rc == TG_OK && (rc = worst_of(all, inputs, &worst, &unit, &limit)) == TG_OK)
        printf("redos-set %.2f \"%s\"\n", worst * 1e3, units[unit]);
    for (size_t u = 0; u < TG_ARRAY_LEN(units); u++)
        free(inputs[u]);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: guard-bench RULES_FILE [-r ROUNDS] | guard-bench -p BYTES\n");
    return 2;
}

int main(int argc, char **argv)
{
    long rounds = 1, prompt = -1;
    int opt;
    while ((opt = getopt(argc, argv, "r:p:")) != -1) {
        switch (opt) {
        case 'r': rounds = strtol(optarg, NULL, 10); break;
        case 'p': prompt = strtol(optarg, NULL, 10); break;
        default: return usage();
        }
    }
    if (prompt >= 0) {
        char *text = benign((size_t)prompt);
        if (text == NULL)
            return 1;
        fwrite(text, 1, (size_t)prompt, stdout);
        free(text);
        return 0;
    }
    if (optind != argc - 1 || rounds < 1)
        return usage();
    json_error_t jerr;
    json_t *section = json_load_file(argv[optind], 0, &jerr);
    if (section == NULL) {
        fprintf(stderr, "guard-bench: %s: %s\n", argv[optind], jerr.text);
        return 1;
    }
    char err[512];
    struct tg_guard_rules *all = tg_guard_load(section, err, sizeof(err));
    if (all == NULL) {
        fprintf(stderr, "guard-bench: %s: %s\n", argv[optind], err);
        json_decref(section);
        return 1;
    }
    printf("rules %zu\n", tg_guard_count(all));
    int rc = cost(all, 2048, rounds * 2000);
    if (rc == TG_OK)
        rc = cost(all, 102400, rounds * 40);
    if (rc == TG_OK)
        rc = redos(section, all);
    tg_guard_free(all);
    json_decref(section);
    if (rc != TG_OK)
        fprintf(stderr, "guard-bench: a scan failed\n");
    return rc == TG_OK ? 0 : 1;
}
