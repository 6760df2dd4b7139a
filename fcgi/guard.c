/*
 * guard.c — the guardrails rules engine (guard.h): loading and compiling rules,
 * the strictness policy, and scanning (masking is guard_mask.c's).
 * The only file that includes pcre2.h. Not here: what a request does with a
 * finding, where the text or the role come from; the checksums and UTF-8 checks
 * (guard_validate.c).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "guard_validate.h"

#define MAX_RULES 1024
#define MAX_NAME 64
#define MAX_PATTERN 4096
#define MAX_ROLES 1024
#define DEFAULT_MATCH_LIMIT 100000
#define DEFAULT_DEPTH_LIMIT 1000
#define N_LEVELS 3
#define N_CATEGORIES 3
#define SEVERITY_NONE 4 /* "below" unset: the cap applies at every severity */

enum validator { VALIDATOR_NONE = 0, VALIDATOR_LUHN, VALIDATOR_IBAN };

struct rule {
    char *name;
    char *mask;
    size_t mask_len;
    enum tg_guard_category category;
    enum tg_guard_action action;
    enum tg_guard_severity severity;
    enum validator validator;
    pcre2_code *code;
    pcre2_match_context *match_context;
};

/* A level's cap on one category: actions are lowered to max_action for rules below `below`. */
struct cap {
    enum tg_guard_action max_action;
    int below; /* a severity, or SEVERITY_NONE */
    bool set;
};

struct role {
    char *role;
    enum tg_guard_level level;
};

struct tg_guard_rules {
    struct rule *rules;
    size_t n_rules;
    uint32_t max_pairs; /* the most capture pairs any rule needs, for the match data */
    struct cap caps[N_LEVELS][N_CATEGORIES];
    struct role *roles;
    size_t n_roles;
    enum tg_guard_level default_level;
};

static const char *const category_names[] = {"pii", "injection", "topic"};
static const char *const action_names[] = {"warn", "mask", "block"};
static const char *const severity_names[] = {"low", "medium", "high", "critical"};
static const char *const level_names[] = {"admin", "elevated", "standard"};
static const char *const validator_names[] = {"none", "luhn", "iban"};

static int find_name(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *tg_guard_category_name(enum tg_guard_category category)
{
    return (unsigned)category < N_CATEGORIES ? category_names[category] : "?";
}

const char *tg_guard_action_name(enum tg_guard_action action)
{
    return (unsigned)action < TG_ARRAY_LEN(action_names) ? action_names[action] : "?";
}

const char *tg_guard_severity_name(enum tg_guard_severity severity)
{
    return (unsigned)severity < TG_ARRAY_LEN(severity_names) ? severity_names[severity] : "?";
}

const char *tg_guard_level_name(enum tg_guard_level level)
{
    return (unsigned)level < N_LEVELS ? level_names[level] : "?";
}

int tg_guard_level_parse(const char *name, enum tg_guard_level *level)
{
    int i = name != NULL ? find_name(level_names, N_LEVELS, name) : -1;
    if (i < 0)
        return TG_DECLINED;
    *level = (enum tg_guard_level)i;
    return TG_OK;
}

/* ---- validators ---- */

/*
 * How much of a match the rule's validator accepts: len, or for IBANs the
 * longest prefix ending before a space that checks (a pattern written for
 * groups of four may take a following word), or 0 when it rejects the match.
 */
static size_t validated_length(enum validator validator, const char *s, size_t len)
{
    switch (validator) {
    case VALIDATOR_NONE: return len;
    case VALIDATOR_LUHN: return tg_guard_validate_luhn(s, len) ? len : 0;
    case VALIDATOR_IBAN:
        for (size_t end = len; end > 0; end--) {
            if ((end == len || s[end] == ' ') && tg_guard_validate_iban(s, end))
                return end;
        }
        return 0;
    }
    return 0;
}

/* ---- loading ---- */

struct loader {
    char *err;
    size_t err_size;
};

static TG_PRINTF(2, 3) void fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->err_size, fmt, ap);
    va_end(ap);
}

/* A member that must be a string naming one of names: its index, or -1 (err set). */
static int enum_member(struct loader *ld, json_t *obj, const char *key, const char *path,
                       const char *const *names, size_t n, int fallback)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return fallback;
    if (!json_is_string(v)) {
        fail(ld, "%s.%s: must be a string", path, key);
        return -1;
    }
    int i = find_name(names, n, json_string_value(v));
    if (i < 0) {
        char allowed[128] = "";
        size_t used = 0;
        for (size_t k = 0; k < n && used < sizeof(allowed); k++)
            used += (size_t)snprintf(allowed + used, sizeof(allowed) - used, "%s\"%s\"",
                                     k ? ", " : "", names[k]);
        fail(ld, "%s.%s: unknown value \"%s\" (expected one of %s)", path, key,
             json_string_value(v), allowed);
    }
    return i;
}

/* An optional positive integer member no larger than max: TG_OK with *out set (or left). */
static int limit_member(struct loader *ld, json_t *obj, const char *key, const char *path,
                        uint32_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return TG_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000000) {
        fail(ld, "%s.%s: must be an integer from 1 to 100000000", path, key);
        return TG_ERROR;
    }
    *out = (uint32_t)json_integer_value(v);
    return TG_OK;
}

static int check_keys(struct loader *ld, json_t *obj, const char *path, const char *const *keys,
                      size_t n)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (find_name(keys, n, key) < 0) {
            fail(ld, "%s: unknown member \"%s\"", path, key);
            return TG_ERROR;
        }
    }
    return TG_OK;
}

static int compile_rule(struct loader *ld, struct tg_guard_rules *set, struct rule *r, json_t *obj,
                        size_t index, uint32_t match_limit, uint32_t depth_limit)
{
    static const char *const keys[] = {"name",        "category",    "pattern",    "caseless",
                                       "validator",   "action",      "severity",   "mask",
                                       "description", "match_limit", "depth_limit"};
    char path[64];
    snprintf(path, sizeof(path), "guardrails.rules[%zu]", index);
    if (!json_is_object(obj)) {
        fail(ld, "%s: must be an object", path);
        return TG_ERROR;
    }
    if (check_keys(ld, obj, path, keys, TG_ARRAY_LEN(keys)) != TG_OK)
        return TG_ERROR;

    const char *name = json_string_value(json_object_get(obj, "name"));
    size_t name_len = name != NULL ? strlen(name) : 0;
    if (name_len == 0 || name_len > MAX_NAME) {
        fail(ld, "%s.name: must be a string of 1 to %d bytes", path, MAX_NAME);
        return TG_ERROR;
    }
    for (size_t i = 0; i < index; i++) {
        if (strcmp(set->rules[i].name, name) == 0) {
            fail(ld, "%s.name: \"%s\" is already the name of rules[%zu]", path, name, i);
            return TG_ERROR;
        }
    }
    r->name = strdup(name);
    if (r->name == NULL) {
        fail(ld, "%s: out of memory", path);
        return TG_ERROR;
    }
    if (json_object_get(obj, "category") == NULL) {
        fail(ld, "%s.category: missing", path);
        return TG_ERROR;
    }
    int category = enum_member(ld, obj, "category", path, category_names, N_CATEGORIES, -1);
    int action = enum_member(ld, obj, "action", path, action_names, 3, TG_GUARD_BLOCK);
    int severity = category < 0 || action < 0
                       ? -1
                       : enum_member(ld, obj, "severity", path, severity_names, 4, TG_GUARD_MEDIUM);
    int validator =
        severity < 0 ? -1
                     : enum_member(ld, obj, "validator", path, validator_names, 3, VALIDATOR_NONE);
    if (category < 0 || action < 0 || severity < 0 || validator < 0)
        return TG_ERROR;
    r->category = (enum tg_guard_category)category;
    r->action = (enum tg_guard_action)action;
    r->severity = (enum tg_guard_severity)severity;
    r->validator = (enum validator)validator;

    json_t *caseless = json_object_get(obj, "caseless");
    if (caseless != NULL && !json_is_boolean(caseless)) {
        fail(ld, "%s.caseless: must be true or false", path);
        return TG_ERROR;
    }
    json_t *description = json_object_get(obj, "description");
    if (description != NULL && !json_is_string(description)) {
        fail(ld, "%s.description: must be a string", path);
        return TG_ERROR;
    }

    json_t *mask = json_object_get(obj, "mask");
    if (mask != NULL) {
        if (!json_is_string(mask) || json_string_length(mask) == 0 ||
            json_string_length(mask) > TG_GUARD_MAX_MASK) {
            fail(ld, "%s.mask: must be a string of 1 to %d bytes", path, TG_GUARD_MAX_MASK);
            return TG_ERROR;
        }
        r->mask = strdup(json_string_value(mask));
    } else {
        /* "<" + the name upper-cased + ">" */
        r->mask = malloc(name_len + 3);
        if (r->mask != NULL) {
            r->mask[0] = '<';
            for (size_t i = 0; i < name_len; i++)
                r->mask[i + 1] =
                    name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];
            r->mask[name_len + 1] = '>';
            r->mask[name_len + 2] = '\0';
        }
    }
    if (r->mask == NULL) {
        fail(ld, "%s: out of memory", path);
        return TG_ERROR;
    }
    r->mask_len = strlen(r->mask);

    if (limit_member(ld, obj, "match_limit", path, &match_limit) != TG_OK ||
        limit_member(ld, obj, "depth_limit", path, &depth_limit) != TG_OK)
        return TG_ERROR;

    json_t *pattern = json_object_get(obj, "pattern");
    if (!json_is_string(pattern) || json_string_length(pattern) == 0 ||
        json_string_length(pattern) > MAX_PATTERN) {
        fail(ld, "%s.pattern: must be a string of 1 to %d bytes", path, MAX_PATTERN);
        return TG_ERROR;
    }
    uint32_t options = PCRE2_UTF | PCRE2_UCP;
    if (json_is_true(caseless))
        options |= PCRE2_CASELESS;
    int errcode;
    PCRE2_SIZE erroffset;
    r->code = pcre2_compile((PCRE2_SPTR)json_string_value(pattern), json_string_length(pattern),
                            options, &errcode, &erroffset, NULL);
    if (r->code == NULL) {
        PCRE2_UCHAR message[256];
        if (pcre2_get_error_message(errcode, message, sizeof(message)) < 0)
            snprintf((char *)message, sizeof(message), "error %d", errcode);
        fail(ld, "%s.pattern: could not compile pattern: %s at offset %zu", path,
             (const char *)message, (size_t)erroffset);
        return TG_ERROR;
    }
    /* JIT when the platform has it; the interpreter otherwise (a failure here is not an error) */
    (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
    uint32_t captures = 0;
    (void)pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &captures);
    if (captures + 1 > set->max_pairs)
        set->max_pairs = captures + 1;

    r->match_context = pcre2_match_context_create(NULL);
    if (r->match_context == NULL) {
        fail(ld, "%s: out of memory", path);
        return TG_ERROR;
    }
    pcre2_set_match_limit(r->match_context, match_limit);
    pcre2_set_depth_limit(r->match_context, depth_limit);
    return TG_OK;
}

/* The built-in policy: admin's injection rules only warn; elevated's topic rules below critical. */
static void default_caps(struct cap caps[N_CATEGORIES], enum tg_guard_level level)
{
    memset(caps, 0, N_CATEGORIES * sizeof(*caps));
    if (level == TG_GUARD_ADMIN)
        caps[TG_GUARD_INJECTION] =
            (struct cap){.max_action = TG_GUARD_WARN, .below = SEVERITY_NONE, .set = true};
    else if (level == TG_GUARD_ELEVATED)
        caps[TG_GUARD_TOPIC] =
            (struct cap){.max_action = TG_GUARD_WARN, .below = TG_GUARD_CRITICAL, .set = true};
}

static int load_strictness(struct loader *ld, struct tg_guard_rules *set, json_t *strictness)
{
    for (int level = 0; level < N_LEVELS; level++)
        default_caps(set->caps[level], (enum tg_guard_level)level);
    if (strictness == NULL)
        return TG_OK;
    if (!json_is_object(strictness)) {
        fail(ld, "guardrails.strictness: must be an object");
        return TG_ERROR;
    }
    if (check_keys(ld, strictness, "guardrails.strictness", level_names, N_LEVELS) != TG_OK)
        return TG_ERROR;
    for (int level = 0; level < N_LEVELS; level++) {
        json_t *policy = json_object_get(strictness, level_names[level]);
        if (policy == NULL)
            continue;
        char path[96];
        snprintf(path, sizeof(path), "guardrails.strictness.%s", level_names[level]);
        if (!json_is_object(policy)) {
            fail(ld, "%s: must be an object", path);
            return TG_ERROR;
        }
        if (check_keys(ld, policy, path, category_names, N_CATEGORIES) != TG_OK)
            return TG_ERROR;
        memset(set->caps[level], 0, sizeof(set->caps[level]));
        for (int category = 0; category < N_CATEGORIES; category++) {
            json_t *cap = json_object_get(policy, category_names[category]);
            if (cap == NULL)
                continue;
            char cap_path[128];
            snprintf(cap_path, sizeof(cap_path), "%s.%s", path, category_names[category]);
            static const char *const keys[] = {"max_action", "below"};
            if (!json_is_object(cap)) {
                fail(ld, "%s: must be an object", cap_path);
                return TG_ERROR;
            }
            if (check_keys(ld, cap, cap_path, keys, TG_ARRAY_LEN(keys)) != TG_OK)
                return TG_ERROR;
            int max_action =
                enum_member(ld, cap, "max_action", cap_path, action_names, 3, TG_GUARD_BLOCK);
            int below = max_action < 0 ? -1
                                       : enum_member(ld, cap, "below", cap_path, severity_names, 4,
                                                     SEVERITY_NONE);
            if (max_action < 0 || below < 0)
                return TG_ERROR;
            set->caps[level][category] = (struct cap){
                .max_action = (enum tg_guard_action)max_action, .below = below, .set = true};
        }
    }
    return TG_OK;
}

static int load_levels(struct loader *ld, struct tg_guard_rules *set, json_t *levels)
{
    set->default_level = TG_GUARD_STANDARD;
    if (levels == NULL)
        return TG_OK;
    static const char *const keys[] = {"roles", "default"};
    if (!json_is_object(levels)) {
        fail(ld, "guardrails.levels: must be an object");
        return TG_ERROR;
    }
    if (check_keys(ld, levels, "guardrails.levels", keys, TG_ARRAY_LEN(keys)) != TG_OK)
        return TG_ERROR;
    int def = enum_member(ld, levels, "default", "guardrails.levels", level_names, N_LEVELS,
                          TG_GUARD_STANDARD);
    if (def < 0)
        return TG_ERROR;
    set->default_level = (enum tg_guard_level)def;
    json_t *roles = json_object_get(levels, "roles");
    if (roles == NULL)
        return TG_OK;
    if (!json_is_object(roles) || json_object_size(roles) > MAX_ROLES) {
        fail(ld, "guardrails.levels.roles: must be an object of at most %d roles", MAX_ROLES);
        return TG_ERROR;
    }
    set->roles = calloc(json_object_size(roles) + 1, sizeof(*set->roles));
    if (set->roles == NULL) {
        fail(ld, "guardrails.levels.roles: out of memory");
        return TG_ERROR;
    }
    const char *role;
    json_t *v;
    json_object_foreach(roles, role, v) {
        enum tg_guard_level level;
        if (!json_is_string(v) || tg_guard_level_parse(json_string_value(v), &level) != TG_OK) {
            fail(ld,
                 "guardrails.levels.roles.%s: must be one of \"admin\", \"elevated\", "
                 "\"standard\"",
                 role);
            return TG_ERROR;
        }
        set->roles[set->n_roles].role = strdup(role);
        if (set->roles[set->n_roles].role == NULL) {
            fail(ld, "guardrails.levels.roles: out of memory");
            return TG_ERROR;
        }
        set->roles[set->n_roles++].level = level;
    }
    return TG_OK;
}

struct tg_guard_rules *tg_guard_load(json_t *section, char *err, size_t err_size)
{
    struct loader ld = {err, err_size};
    static const char *const keys[] = {"rules", "limits", "strictness", "levels", "description"};
    if (!json_is_object(section)) {
        fail(&ld, "guardrails: must be an object");
        return NULL;
    }
    if (check_keys(&ld, section, "guardrails", keys, TG_ARRAY_LEN(keys)) != TG_OK)
        return NULL;
    json_t *rules = json_object_get(section, "rules");
    if (!json_is_array(rules) || json_array_size(rules) > MAX_RULES) {
        fail(&ld, "guardrails.rules: must be an array of at most %d rules", MAX_RULES);
        return NULL;
    }
    uint32_t match_limit = DEFAULT_MATCH_LIMIT, depth_limit = DEFAULT_DEPTH_LIMIT;
    json_t *limits = json_object_get(section, "limits");
    if (limits != NULL) {
        static const char *const limit_keys[] = {"match_limit", "depth_limit"};
        if (!json_is_object(limits)) {
            fail(&ld, "guardrails.limits: must be an object");
            return NULL;
        }
        if (check_keys(&ld, limits, "guardrails.limits", limit_keys, 2) != TG_OK ||
            limit_member(&ld, limits, "match_limit", "guardrails.limits", &match_limit) != TG_OK ||
            limit_member(&ld, limits, "depth_limit", "guardrails.limits", &depth_limit) != TG_OK)
            return NULL;
    }

    struct tg_guard_rules *set = calloc(1, sizeof(*set));
    if (set == NULL) {
        fail(&ld, "guardrails: out of memory");
        return NULL;
    }
    set->max_pairs = 1;
    set->rules = calloc(json_array_size(rules) + 1, sizeof(*set->rules));
    if (set->rules == NULL) {
        fail(&ld, "guardrails.rules: out of memory");
        tg_guard_free(set);
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(rules); i++) {
        /* counted before compiling so that a half-built rule is freed with the set */
        set->n_rules = i + 1;
        if (compile_rule(&ld, set, &set->rules[i], json_array_get(rules, i), i, match_limit,
                         depth_limit) != TG_OK) {
            tg_guard_free(set);
            return NULL;
        }
    }
    if (load_strictness(&ld, set, json_object_get(section, "strictness")) != TG_OK ||
        load_levels(&ld, set, json_object_get(section, "levels")) != TG_OK) {
        tg_guard_free(set);
        return NULL;
    }
    return set;
}

void tg_guard_free(struct tg_guard_rules *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n_rules; i++) {
        free(set->rules[i].name);
        free(set->rules[i].mask);
        pcre2_code_free(set->rules[i].code);
        pcre2_match_context_free(set->rules[i].match_context);
    }
    for (size_t i = 0; i < set->n_roles; i++)
        free(set->roles[i].role);
    free(set->roles);
    free(set->rules);
    free(set);
}

size_t tg_guard_count(const struct tg_guard_rules *set)
{
    return set->n_rules;
}

const char *tg_guard_rule_mask(const struct tg_guard_rules *set, size_t i, size_t *len)
{
    *len = set->rules[i].mask_len;
    return set->rules[i].mask;
}

const char *tg_guard_rule_name(const struct tg_guard_rules *set, size_t i)
{
    return i < set->n_rules ? set->rules[i].name : NULL;
}

enum tg_guard_level tg_guard_level_for_role(const struct tg_guard_rules *set, const char *role)
{
    for (size_t i = 0; role != NULL && i < set->n_roles; i++)
        if (strcmp(set->roles[i].role, role) == 0)
            return set->roles[i].level;
    return set->default_level;
}

/* ---- scanning ---- */

static enum tg_guard_action effective_action(const struct tg_guard_rules *set, const struct rule *r,
                                             enum tg_guard_level level)
{
    const struct cap *cap = &set->caps[level][r->category];
    if (!cap->set || (int)r->severity >= cap->below)
        return r->action;
    return r->action < cap->max_action ? r->action : cap->max_action;
}

int tg_guard_scan_each(const struct tg_guard_rules *set, enum tg_guard_level level,
                       const char *text, size_t len, tg_guard_emit_fn emit, void *ctx)
{
    if ((unsigned)level >= N_LEVELS || !tg_guard_validate_utf8((const unsigned char *)text, len))
        return TG_ERROR;
    pcre2_match_data *md = pcre2_match_data_create(set->max_pairs, NULL);
    if (md == NULL)
        return TG_ERROR;
    int rc = TG_OK;
    for (size_t i = 0; i < set->n_rules && rc == TG_OK; i++) {
        const struct rule *r = &set->rules[i];
        struct tg_guard_finding f = {.rule = i,
                                     .name = r->name,
                                     .category = r->category,
                                     .action = effective_action(set, r, level),
                                     .severity = r->severity};
        size_t start = 0;
        while (start <= len && rc == TG_OK) {
            /* the text was checked once above: PCRE2 need not check it per call */
            int m = pcre2_match(r->code, (PCRE2_SPTR)text, len, start, PCRE2_NO_UTF_CHECK, md,
                                r->match_context);
            if (m == PCRE2_ERROR_NOMATCH)
                break;
            if (m < 0) {
                /* a limit (or any failure to finish): fail closed only where it blocks */
                if (f.action == TG_GUARD_BLOCK) {
                    f.offset = start;
                    f.length = 0;
                    f.limit = true;
                    rc = emit(ctx, &f);
                }
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t from = ov[0], to = ov[1];
            if (to < from) /* \K in a lookahead: report nothing odd, move on */
                to = from;
            size_t accepted = validated_length(r->validator, text + from, to - from);
            if (accepted > 0) { /* empty matches find nothing to report */
                f.offset = from;
                f.length = accepted;
                f.limit = false;
                rc = emit(ctx, &f);
            }
            if (to > start)
                start = to;
            else if (start < len)
                start += tg_guard_validate_utf8_char(text + start, len - start);
            else
                break;
        }
    }
    pcre2_match_data_free(md);
    return rc;
}

struct scan_out {
    struct tg_guard_finding *out;
    size_t cap;
    size_t n;
};

static int emit_to_array(void *ctx, const struct tg_guard_finding *finding)
{
    struct scan_out *so = ctx;
    if (so->n < so->cap)
        so->out[so->n] = *finding;
    so->n++;
    return TG_OK;
}

int tg_guard_scan(const struct tg_guard_rules *set, enum tg_guard_level level, const char *text,
                  size_t len, struct tg_guard_finding *out, size_t cap, size_t *n)
{
    struct scan_out so = {out, cap, 0};
    int rc = tg_guard_scan_each(set, level, text, len, emit_to_array, &so);
    *n = so.n;
    if (rc != TG_OK)
        return rc;
    return so.n > cap ? TG_DECLINED : TG_OK;
}
