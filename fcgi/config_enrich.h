/*
 * config_enrich.h — the config's "enrich" section: per route, model, group or
 * role, system text put before or after the client's system prompt, and
 * headers set or removed on the call to the provider and on the reply to the
 * client, their values templates over the caller and the call
 * ("{user_id}", "{model}"). Loaded once with the config (config.c embeds it in
 * struct tg_config); enrich.c applies it to each request. Also the template
 * expansion both share, so that what the loader accepts is what expands.
 *
 * Not here: which requests an entry matches at run time, the bodies (enrich.c).
 * Depends on nothing of the gateway but common.h and config_field.h, so that
 * config.h can include it: one way.
 */
#ifndef TG_CONFIG_ENRICH_H
#define TG_CONFIG_ENRICH_H

#include "common.h"

struct json_t; /* jansson's json_t */

/* A template's variables, in this order (tg_config_enrich_expand's values[]). */
enum tg_enrich_var {
    TG_ENRICH_USER_ID,
    TG_ENRICH_GROUP_ID,
    TG_ENRICH_KEY_PREFIX,
    TG_ENRICH_ROLE,
    TG_ENRICH_MODEL,
    TG_ENRICH_BACKEND,
    TG_ENRICH_PROVIDER,
    TG_ENRICH_ROUTE,
    TG_ENRICH_REQUEST_ID,
    TG_ENRICH_N_VARS
};

#define TG_ENRICH_VALUE_MAX 256 /* an expanded header value, in bytes, at most */
#define TG_ENRICH_MAX_SET 16    /* headers set per direction, all entries together */
#define TG_ENRICH_MAX_REMOVE 16 /* header names removed per entry and direction */

struct tg_enrich_header {
    char *name;     /* lower case, a valid token, not a credential or framing header */
    char *template; /* checked: only known variables */
};

/* What one direction (to the provider, or to the client) does with headers. */
struct tg_enrich_headers {
    struct tg_enrich_header *set;
    size_t n_set;
    char **remove; /* lower-case names */
    size_t n_remove;
};

struct tg_enrich_entry {
    /* match: every criterion given must hold; none given: every request */
    char *group;
    char *role;
    char *model; /* a pattern ('*' any run, '?' one byte) over the served model's name */
    char *route; /* a routes[] rule's name */
    /* what it does */
    char *system_prepend; /* NULL: none */
    char *system_append;
    struct tg_enrich_headers request_headers;
    struct tg_enrich_headers response_headers;
};

struct tg_enrich_config {
    struct tg_enrich_entry *entries; /* in config order: each that matches applies */
    size_t n_entries;
};

/*
 * Loads the config's "enrich" array (borrowed; NULL: none) into *out.
 * TG_ERROR, with "config: enrich[i].<field>: <problem>" in err, for a bad
 * field: a template naming an unknown variable, a header name that is not a
 * token or that carries a credential or the message's framing (authorization,
 * x-api-key, host, content-length ... : never set nor removed), a system text
 * that is empty or over 64 KiB. *out is then released already. Release a
 * loaded one with tg_config_enrich_release.
 */
int tg_config_enrich_load(struct json_t *section, struct tg_enrich_config *out, char *err,
                          size_t err_size);
void tg_config_enrich_release(struct tg_enrich_config *enrich);

/*
 * Checks a template: text with "{name}" for a variable of enum tg_enrich_var
 * (user_id, group_id, key_prefix, role, model, backend, provider, route,
 * request_id) and "{{" / "}}" for a brace. TG_ERROR with the problem in
 * problem (which names the variable) otherwise.
 */
int tg_config_enrich_check_template(const char *template, char *problem, size_t problem_size);

/*
 * Expands a checked template with values (TG_ENRICH_N_VARS of them, indexed by
 * enum tg_enrich_var; NULL: empty) into out (NUL-terminated): control bytes of
 * the values (CR, LF, NUL ...) are dropped, and the result is cut at
 * out_size - 1 bytes, never inside a UTF-8 sequence. Returns its length.
 */
size_t tg_config_enrich_expand(const char *template, const char *const *values, char *out,
                               size_t out_size);

/* Whether s is a pattern match of pattern ('*' any run, '?' one byte, else itself). */
bool tg_config_enrich_glob(const char *pattern, const char *s);

#endif
