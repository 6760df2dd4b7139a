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

/* A finding as tg_guard_scan_each hands it over (borrowed for the call): non-TG_OK stops. */
typedef int (*tg_guard_emit_fn)(void *ctx, const struct tg_guard_finding *finding);

/*
 * tg_guard_scan's walk, each finding handed to emit as it is found (in rule
 * order, then by offset) instead of collected. TG_OK; emit's first non-TG_OK;
 * TG_ERROR when text is not valid UTF-8 or memory ran out.
 */
int tg_guard_scan_each(const struct tg_guard_rules *rules, enum tg_guard_level level,
                       const char *text, size_t len, tg_guard_emit_fn emit, void *ctx);

/* A rule's mask text is at most this many bytes. */
#define TG_GUARD_MAX_MASK 64

/* Rule i's mask text (not NUL-terminated) and its length. */
const char *tg_guard_rule_mask(const struct tg_guard_rules *rules, size_t i, size_t *len);

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
