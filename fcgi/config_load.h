/*
 * config_load.h — the config loader's shared parts, for config*.c only (not a
 * public interface): the loader state that keeps the first error, and typed
 * readers of a field that name its JSON path when it is bad.
 */
#ifndef TG_CONFIG_LOAD_H
#define TG_CONFIG_LOAD_H

#include "config.h"

/* The loader's state: the first error ("config: <path>: <problem>") wins. */
struct tg_config_loader {
    char *err;
    size_t err_size;
    bool failed;
};

/* Records "config: path: ..." unless an error was recorded already. */
void tg_config_load_fail(struct tg_config_loader *ld, const char *path, const char *fmt, ...)
    TG_PRINTF(3, 4);

/* strdup, failing the load when out of memory. */
char *tg_config_load_strdup(struct tg_config_loader *ld, const char *s);

/*
 * obj.key as a new string (free it), "$NAME" read from the environment; a copy of
 * fallback (or NULL) when absent, failing when required. path names obj.
 */
const char *tg_config_load_string(struct tg_config_loader *ld, struct json_t *obj, const char *key,
                                  const char *path, const char *fallback, bool required);

/* obj.key as an integer in [min, max]; fallback when absent. */
long tg_config_load_integer(struct tg_config_loader *ld, struct json_t *obj, const char *key,
                            const char *path, long fallback, long min, long max);

/* obj.key as an object (borrowed), or NULL (failing when required). */
struct json_t *tg_config_load_object(struct tg_config_loader *ld, struct json_t *obj,
                                     const char *key, const char *path, bool required);

/* Whether s holds no control characters (a header value may hold it). */
bool tg_config_load_printable(const char *s);

/* The headers an upstream call of the config may send, at most this many. */
#define TG_CONFIG_MAX_HEADERS 16

/*
 * obj.headers: an object of at most TG_CONFIG_MAX_HEADERS headers an upstream
 * call sends, into *lines ("Name: value", malloc'd, NULL-terminated, with room
 * for spare more lines; free each and the array) and *n. A name is 1-64 of
 * [A-Za-z0-9_-] and none the gateway sets itself (Content-Type, Content-Length,
 * Host, Transfer-Encoding, and those of reserved, NULL-terminated, may be NULL;
 * case-insensitive); a value is a string without control characters, in which a
 * "$NAME" ending it is the environment variable NAME ("$TOKEN", "Bearer
 * $TOKEN"); a line is at most 4096 bytes. path names obj in errors. Absent:
 * *lines is an empty array when spare > 0, else NULL.
 */
void tg_config_load_headers(struct tg_config_loader *ld, struct json_t *obj, const char *path,
                            const char *const *reserved, size_t spare, char ***lines, size_t *n);

/* Fails on a key of obj not in known (NULL-terminated): a typo is never ignored. */
void tg_config_load_keys(struct tg_config_loader *ld, struct json_t *obj, const char *path,
                         const char *const *known);

/* An http:// or https:// URL with something after the scheme. */
bool tg_config_load_is_http_url(const char *s);

/* providers and models (config_providers.c): loaded, checked, released. */
void tg_config_load_providers(struct tg_config_loader *ld, struct json_t *root,
                              struct tg_config *c);
void tg_config_load_models(struct tg_config_loader *ld, struct json_t *root, struct tg_config *c);
void tg_config_providers_release(struct tg_config *c);
void tg_config_load_guard(struct tg_config_loader *ld, struct json_t *root, struct tg_config *c);
void tg_config_guard_release(struct tg_config *c);
/* guardrails.webhook and .moderation of the guardrails object g (config_guard_webhook.c) */
void tg_config_load_guard_hooks(struct tg_config_loader *ld, struct json_t *g, struct tg_config *c);
void tg_config_guard_hooks_release(struct tg_config *c);
void tg_config_load_routes(struct tg_config_loader *ld, struct json_t *root, struct tg_config *c);
void tg_config_routes_release(struct tg_config *c);
/* mcp (config_mcp.c) */
void tg_config_load_mcp(struct tg_config_loader *ld, struct json_t *root, struct tg_config *c);
void tg_config_mcp_release(struct tg_config *c);
void tg_config_load_failover(struct tg_config_loader *ld, struct json_t *root, struct tg_config *c);

#endif
