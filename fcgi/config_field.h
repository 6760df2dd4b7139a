/*
 * config_field.h — the two rules every reader of a part of the config shares,
 * whichever module it is in (config*.c, auth_jwt.c, bound_config.c): a string
 * written "$NAME" stands for the environment variable NAME, and an unknown field
 * is an error, never ignored. Errors read "config: <path>: <problem>".
 *
 * Depends on nothing of the gateway but common.h, so that a module loading its
 * own section need not include config.h (which includes it back).
 */
#ifndef TG_CONFIG_FIELD_H
#define TG_CONFIG_FIELD_H

#include "common.h"

struct json_t; /* jansson's json_t */

/*
 * The value a config string stands for: value itself (borrowed), or for "$NAME"
 * the environment variable NAME (getenv's, borrowed). NULL when that variable is
 * unset or empty, with "config: <field>: environment variable ..." written into
 * err (always NUL-terminated).
 */
const char *tg_config_field_resolve_env(const char *value, const char *field, char *err,
                                        size_t err_size);

/*
 * TG_ERROR, with "config: <path>.<key>: unknown field" in err, when obj (a JSON
 * object, borrowed) has a key not in known (NULL-terminated); else TG_OK.
 */
int tg_config_field_check_known(struct json_t *obj, const char *path, const char *const *known,
                                char *err, size_t err_size);

#endif
