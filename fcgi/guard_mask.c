/*
 * guard_mask.c — masking with the guardrails' rules (guard_mask.h): the spans
 * of a text's findings, sorted and merged (overlaps take the first rule's
 * mask), written over with their masks; for a whole text, for chosen findings,
 * or for one window of a reply held back where a match may still grow.
 */
#include "guard_mask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A text this long could overflow the masked copy's size (a mask per byte). */
#define TOO_LONG (SIZE_MAX / (TG_GUARD_MAX_MASK + 1) - 1)

struct span {
    size_t from, to;
    const char *mask; /* NULL for a finding kept only to be reported */
    size_t mask_len;
    struct tg_guard_finding finding;
};

/* The span of finding f, masked by its rule's mask when masks. */
static struct span span_of(const struct tg_guard_rules *set, const struct tg_guard_finding *f,
                           bool masks)
{
    struct span s = {.from = f->offset, .to = f->offset + f->length, .finding = *f};
    if (masks)
        s.mask = tg_guard_rule_mask(set, f->rule, &s.mask_len);
    return s;
}

struct span_list {
    const struct tg_guard_rules *set;
    struct span *spans;
    size_t n, cap;
    bool mask_blocks; /* "block" findings are masked too (a reply cannot be refused) */
    bool report;      /* keep findings that do not mask, to report them */
    bool limit;       /* a blocking rule hit its match limit */
};

static int emit_mask_span(void *ctx, const struct tg_guard_finding *finding)
{
    struct span_list *sl = ctx;
    if (finding->limit) {
        sl->limit = true;
        return TG_OK;
    }
    bool masks =
        finding->action == TG_GUARD_MASK || (sl->mask_blocks && finding->action == TG_GUARD_BLOCK);
    if ((!masks && !sl->report) || finding->length == 0)
        return TG_OK;
    if (sl->n == sl->cap) {
        if (sl->cap >= TG_GUARD_MAX_FINDINGS)
            return TG_ERROR;
        size_t cap = sl->cap ? sl->cap * 2 : 16;
        struct span *grown = realloc(sl->spans, cap * sizeof(*grown));
        if (grown == NULL)
            return TG_ERROR;
        sl->spans = grown;
        sl->cap = cap;
    }
    sl->spans[sl->n++] = span_of(sl->set, finding, masks);
    return TG_OK;
}

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    /* the same start: the rule listed first masks (rules are ordered by the operator) */
    return x->finding.rule < y->finding.rule ? -1 : x->finding.rule > y->finding.rule;
}

/* The masking spans sorted and merged in place (each keeps its first rule's mask): how many. */
static size_t merge_spans(struct span_list *sl)
{
    size_t merged = 0;
    for (size_t i = 0; i < sl->n; i++) {
        if (sl->spans[i].mask == NULL)
            continue;
        if (merged > 0 && sl->spans[i].from < sl->spans[merged - 1].to) {
            if (sl->spans[i].to > sl->spans[merged - 1].to)
                sl->spans[merged - 1].to = sl->spans[i].to;
        } else {
            sl->spans[merged++] = sl->spans[i];
        }
    }
    return merged;
}

/* text[from..to) with the merged spans' parts inside it replaced by their masks. */
static char *write_masked(const struct span *spans, size_t n, const char *text, size_t from,
                          size_t to, size_t *out_len)
{
    /* spans never exceed the text and masks are at most TG_GUARD_MAX_MASK bytes: no overflow */
    size_t size = to - from;
    for (size_t i = 0; i < n; i++) {
        size_t a = spans[i].from > from ? spans[i].from : from;
        size_t b = spans[i].to < to ? spans[i].to : to;
        if (a < b)
            size = size - (b - a) + spans[i].mask_len;
    }
    char *masked = malloc(size + 1);
    if (masked == NULL)
        return NULL;
    size_t at = from, used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = spans[i].from > from ? spans[i].from : from;
        size_t b = spans[i].to < to ? spans[i].to : to;
        if (a >= b)
            continue;
        memcpy(masked + used, text + at, a - at);
        used += a - at;
        memcpy(masked + used, spans[i].mask, spans[i].mask_len);
        used += spans[i].mask_len;
        at = b;
    }
    memcpy(masked + used, text + at, to - at);
    used += to - at;
    masked[used] = '\0';
    *out_len = used;
    return masked;
}

/*
 * text[from..to) with sl's spans merged and masked (they are sorted when sorted
 * is true, else sorted here); sl's spans freed.
 */
static char *masked_text(struct span_list *sl, bool sorted, const char *text, size_t from,
                         size_t to, size_t *out_len)
{
    if (!sorted && sl->n > 0)
        qsort(sl->spans, sl->n, sizeof(*sl->spans), span_cmp);
    size_t merged = merge_spans(sl);
    char *masked = write_masked(sl->spans, merged, text, from, to, out_len);
    free(sl->spans);
    return masked;
}

char *tg_guard_mask(const struct tg_guard_rules *set, enum tg_guard_level level, const char *text,
                    size_t len, size_t *out_len)
{
    struct span_list sl = {.set = set};
    if (len > TOO_LONG)
        return NULL;
    if (tg_guard_scan_each(set, level, text, len, emit_mask_span, &sl) != TG_OK) {
        free(sl.spans);
        return NULL;
    }
    return masked_text(&sl, false, text, 0, len, out_len);
}

char *tg_guard_mask_findings(const struct tg_guard_rules *set, const char *text, size_t len,
                             const struct tg_guard_finding *findings, size_t n, size_t *out_len)
{
    if (n > TG_GUARD_MAX_FINDINGS || len > TOO_LONG)
        return NULL;
    struct span_list sl = {.set = set, .spans = malloc((n + 1) * sizeof(struct span))};
    if (sl.spans == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct tg_guard_finding *f = &findings[i];
        if (f->rule >= tg_guard_count(set) || f->offset > len || f->length > len - f->offset) {
            free(sl.spans);
            return NULL;
        }
        if (f->length > 0)
            sl.spans[sl.n++] = span_of(set, f, true);
    }
    return masked_text(&sl, false, text, 0, len, out_len);
}

char *tg_guard_mask_range(const struct tg_guard_rules *set, enum tg_guard_level level,
                          const char *text, size_t len, size_t from, size_t *to,
                          tg_guard_finding_fn on_finding, void *ctx, size_t *out_len)
{
    struct span_list sl = {.set = set, .mask_blocks = true, .report = on_finding != NULL};
    if (len > TOO_LONG || from > *to || *to > len)
        return NULL;
    if (tg_guard_scan_each(set, level, text, len, emit_mask_span, &sl) != TG_OK || sl.limit) {
        free(sl.spans); /* a blocking rule that could not finish: withhold the text */
        return NULL;
    }
    if (sl.n > 0)
        qsort(sl.spans, sl.n, sizeof(*sl.spans), span_cmp);
    /* a match crossing the cut may grow with what comes next: hold it back (overlapping
     * spans may cross the lowered cut in turn, hence until nothing moves) */
    size_t tail = len - *to; /* a match at from no longer than what is held back waits too */
    for (bool moved = true; moved;) {
        moved = false;
        for (size_t i = 0; i < sl.n; i++) {
            const struct span *s = &sl.spans[i];
            if (s->mask != NULL && s->from < *to && s->to > *to &&
                (s->from > from || (s->from == from && s->to - s->from <= tail))) {
                *to = s->from;
                moved = true;
            }
        }
    }
    for (size_t i = 0; on_finding != NULL && i < sl.n; i++)
        if (sl.spans[i].from >= from && sl.spans[i].from < *to)
            on_finding(ctx, &sl.spans[i].finding);
    return masked_text(&sl, true, text, from, *to, out_len);
}
