/*
 * admin_body.h — the admin API's bodies in and out (admin_body.c), for the
 * admin modules (admin.c, admin_cache.c). Every reader fails the request with
 * a 400 naming the field ("\"limit\": must be an integer from 1 to 1000").
 */
#ifndef TG_ADMIN_BODY_H
#define TG_ADMIN_BODY_H

#include <jansson.h>

#include "common.h"

struct tg_arena;
struct tg_request;

#define TG_ADMIN_MAX_BODY (64 * 1024) /* admin bodies are small; anything bigger is a mistake */

/* s[0..len) with its %XX escapes decoded, in the arena; NULL when malformed or holding NUL. */
char *tg_admin_body_decode(struct tg_arena *arena, const char *s, size_t len);

/* The body as a JSON object (borrowed: the arena owns it; an empty body is {}); NULL with r->error
 * set. */
json_t *tg_admin_body_read(struct tg_request *r);

/* Fails r with 400 "\"field\": problem". Returns TG_ERROR. */
int tg_admin_body_bad_field(struct tg_request *r, const char *field, const char *problem);

/* TG_ERROR naming the first field of body that known (NULL-terminated) lacks. */
int tg_admin_body_check_fields(struct tg_request *r, json_t *body, const char *const *known);

/* A string field into *out (borrowed), NULL when absent or null. */
int tg_admin_body_string(struct tg_request *r, json_t *body, const char *name, bool required,
                         const char **out);

/* A string field that is an identifier (letters, digits, ._@:-; at most 128). */
int tg_admin_body_id(struct tg_request *r, json_t *body, const char *name, bool required,
                     const char **out);

/* A required string that is one of choices (NULL-terminated); spelled says which. */
int tg_admin_body_choice(struct tg_request *r, json_t *body, const char *name,
                         const char *const *choices, const char *spelled, const char **out);

/* An integer field in [min, max] into *out, left as is when absent and not required. */
int tg_admin_body_integer(struct tg_request *r, json_t *body, const char *name, bool required,
                          int64_t min, int64_t max, int64_t *out);

/* json as compact text in the arena; NULL with r->error set. */
const char *tg_admin_body_dump(struct tg_request *r, const json_t *json);

/* An array of non-empty strings as JSON text (arena) for a ::jsonb parameter; NULL for null. */
int tg_admin_body_string_array(struct tg_request *r, json_t *body, const char *name,
                               const char **json_text);

/* Answers json text with status. TG_OK. */
int tg_admin_body_respond_json(struct tg_request *r, int status, const char *json);

/* Answers doc (a new reference, stolen) with status; TG_ERROR with r->error set when it cannot. */
int tg_admin_body_respond_doc(struct tg_request *r, int status, json_t *doc);

#endif
