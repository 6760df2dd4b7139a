/*
 * bound_config.h — the config's "bounds" section: what a request's reservation
 * adds to its body's bytes for what the bytes do not hold, and which
 * anthropic-beta values are passed on. Loaded once with the config (config.c
 * embeds it in struct tg_config); bound.c applies it to each request.
 *
 * Depends on nothing of the gateway but common.h and config_field.h, so that
 * config.h can include it and bound.h can include config.h: one way.
 */
#ifndef TG_BOUND_CONFIG_H
#define TG_BOUND_CONFIG_H

#include "common.h"

struct json_t; /* jansson's json_t */

/*
 * bounds: what a request's reservation adds to its body's bytes for what the
 * bytes do not hold (bound.c applies it).
 */
struct tg_bounds_config {
    char **allowed_betas; /* anthropic-beta values passed on; any other is refused */
    size_t n_allowed_betas;
    int64_t image_max_tokens;           /* per image, whatever its source */
    int64_t document_max_tokens;        /* per document or file not inline; 0: the context */
    int64_t tool_system_tokens;         /* once, when the request has tools */
    int64_t builtin_tool_tokens;        /* per tool with a "type" (defined by the provider) */
    int64_t server_tool_default_uses;   /* a server tool without "max_uses" */
    int64_t server_tool_use_max_tokens; /* input one server tool use adds; 0: the context */
};

/*
 * Loads the config's "bounds" section (borrowed; NULL: every default) into *out.
 * TG_ERROR, with "config: bounds.<field>: <problem>" in err, for a bad field.
 * *out is then released already. Release a loaded one with tg_bound_config_release.
 */
int tg_bound_config_load(struct json_t *section, struct tg_bounds_config *out, char *err,
                         size_t err_size);
void tg_bound_config_release(struct tg_bounds_config *bounds);

/*
 * The first allowed beta that widens the context window ("context-1m-…"), or
 * NULL: when there is one, config.c requires every model's max_input_tokens.
 */
const char *tg_bound_config_context_beta(const struct tg_bounds_config *bounds);

/*
 * Whether s[0..len) is a beta name: 1 to 100 letters, digits, '.', '_' or '-'.
 * The same rule for bounds.allowed_betas and a request's anthropic-beta values.
 */
bool tg_bound_config_is_beta_name(const char *s, size_t len);

#endif
