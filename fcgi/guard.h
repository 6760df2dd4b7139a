/*
 * guard.h — the guardrails rules engine: PII, prompt-injection and topic rules
 * (PCRE2 patterns with optional checksum validators) compiled once from a JSON
 * section, then run over text to find, and optionally mask, what they match.
 *
 * Pure: it knows nothing of requests, roles' origins or where the text came
 * from, and does no I/O. The caller decides what a finding means for a request
 * (refuse on "block", rewrite with tg_guard_mask on "mask", log on "warn").
 * This is the only module that talks to PCRE2.
 *
 * A rule set is immutable once loaded and may be shared by threads: every scan
 * makes its own match data.
 */
#ifndef TG_GUARD_H
#define TG_GUARD_H

#include <jansson.h>

#include "common.h"

enum tg_guard_category {
    TG_GUARD_PII = 0,
    TG_GUARD_INJECTION,
    TG_GUARD_TOPIC,
};

/* Ordered by strength: a level's policy can only lower an action. */
enum tg_guard_action {
    TG_GUARD_WARN = 0,
    TG_GUARD_MASK,
    TG_GUARD_BLOCK,
};

enum tg_guard_severity {
    TG_GUARD_LOW = 0,
    TG_GUARD_MEDIUM,
    TG_GUARD_HIGH,
    TG_GUARD_CRITICAL,
};

/* Strictness levels, from the most trusted caller to the least. */
enum tg_guard_level {
    TG_GUARD_ADMIN = 0,
    TG_GUARD_ELEVATED,
    TG_GUARD_STANDARD,
};

struct tg_guard_finding {
    size_t rule;      /* the rule's index in the set */
    const char *name; /* the rule's name, borrowed from the set */
    enum tg_guard_category category;
    enum tg_guard_action action; /* effective at the level scanned */
    enum tg_guard_severity severity;
    size_t offset; /* the match: bytes of the caller's text */
    size_t length;
    bool limit; /* the rule hit its match/depth limit: a "block" failing closed */
};

struct tg_guard_rules;

/*
 * Compiles the rule set described by section (borrowed):
 *   {"rules": [{"name", "category", "pattern", "caseless", "validator", "action",
 *               "severity", "mask", "description", "match_limit", "depth_limit"}],
 *    "limits": {"match_limit": 100000, "depth_limit": 1000},
 *    "strictness": {"admin"|"elevated"|"standard":
 *                   {"pii"|"injection"|"topic": {"max_action", "below"}}},
 *    "levels": {"roles": {"role": "level"}, "default": "standard"}}
 * A level named in "strictness" replaces that level's built-in policy (admin:
 * injection at most warn; elevated: topic below critical at most warn).
 * Returns a new rule set (free with tg_guard_free), or NULL with a message in
 * err naming the JSON path, as `guardrails.rules[3].pattern: ...`.
 */
struct tg_guard_rules *tg_guard_load(json_t *section, char *err, size_t err_size);

/* Frees the rule set and everything it holds. NULL is a no-op. */
void tg_guard_free(struct tg_guard_rules *rules);

/* The number of rules in the set. */
size_t tg_guard_count(const struct tg_guard_rules *rules);

/* Rule i's name (borrowed from the set); NULL when i is out of range. */
const char *tg_guard_rule_name(const struct tg_guard_rules *rules, size_t i);

/*
 * Runs every rule over text[0..len) (UTF-8) at a strictness level. Findings go
 * to out[0..cap) in rule order, then by offset; *n gets how many there were in
 * all. Nothing of the text is copied: a finding holds offsets only. A rule that
 * hits its match or depth limit is reported (limit set, length 0) when its
 * effective action is block, and skipped otherwise.
 * TG_OK; TG_DECLINED when there were more than cap findings (the first cap are
 * in out); TG_ERROR when text is not valid UTF-8 or memory ran out.
 */
int tg_guard_scan(const struct tg_guard_rules *rules, enum tg_guard_level level, const char *text,
                  size_t len, struct tg_guard_finding *out, size_t cap, size_t *n);

/*
 * A copy of text[0..len) in which the span of every finding whose effective
 * action is mask is replaced by its rule's mask text (overlapping spans are
 * merged and take the first one's mask); every other byte is kept. New,
 * NUL-terminated, malloc'd (the caller frees); *out_len gets its length. NULL
 * when text is not valid UTF-8, memory ran out or there were more than
 * TG_GUARD_MAX_FINDINGS spans: the caller should then refuse the text.
 */
char *tg_guard_mask(const struct tg_guard_rules *rules, enum tg_guard_level level, const char *text,
                    size_t len, size_t *out_len);

#define TG_GUARD_MAX_FINDINGS 65536

/*
 * A copy of text[0..len) in which the span of each of findings[0..n) (as
 * tg_guard_scan reported them over this text, whatever their action) is
 * replaced by its rule's mask text; findings of length 0 are skipped,
 * overlapping spans merged as tg_guard_mask does. For a caller that decides the
 * action of each finding itself. New, NUL-terminated, malloc'd (the caller
 * frees); *out_len gets its length. NULL when memory ran out, n is over
 * TG_GUARD_MAX_FINDINGS or a finding lies outside the text.
 */
char *tg_guard_mask_findings(const struct tg_guard_rules *rules, const char *text, size_t len,
                             const struct tg_guard_finding *findings, size_t n, size_t *out_len);

/* A finding reported by tg_guard_mask_range (borrowed for the call). */
typedef void (*tg_guard_finding_fn)(void *ctx, const struct tg_guard_finding *finding);

/*
 * Masking for replies, which cannot be refused: the span of every finding whose
 * effective action is mask or block is masked (as tg_guard_mask does for mask).
 * text[0..len) is what the caller holds of one text: text[0..from) went out
 * already and is only context for the rules (look-behinds), text[from..*to) is to
 * go out now, text[*to..len) is held back. *to is lowered to the start of a
 * masked span that crosses it (the match may grow with what comes next) when that
 * start is past from, or at from and the span no longer than what is held back
 * (*to may then become from: nothing goes out yet); any other span crossing *to,
 * or one that began before from, is masked in the part inside [from, *to).
 * on_finding (NULL: none) gets each finding of any action that starts in
 * [from, *to) (after lowering), so a finding is reported once over successive
 * windows. Returns text[from..*to) masked: new, NUL-terminated, malloc'd (the
 * caller frees), *out_len its length; NULL when text is not valid UTF-8, memory
 * ran out, a cap was hit, or a blocking rule hit its match limit (the caller must
 * withhold the text: a guard fails closed).
 */
char *tg_guard_mask_range(const struct tg_guard_rules *rules, enum tg_guard_level level,
                          const char *text, size_t len, size_t from, size_t *to,
                          tg_guard_finding_fn on_finding, void *ctx, size_t *out_len);

/* The level a role maps to under "levels" (the default when role is NULL or unmapped). */
enum tg_guard_level tg_guard_level_for_role(const struct tg_guard_rules *rules, const char *role);

/* Names as in the JSON ("pii", "block", "high", "admin"). */
const char *tg_guard_category_name(enum tg_guard_category category);
const char *tg_guard_action_name(enum tg_guard_action action);
const char *tg_guard_severity_name(enum tg_guard_severity severity);
const char *tg_guard_level_name(enum tg_guard_level level);

/* Parses a level name: TG_OK with *level set, TG_DECLINED for an unknown name. */
int tg_guard_level_parse(const char *name, enum tg_guard_level *level);

#endif
