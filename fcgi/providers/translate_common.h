/*
 * translate_common.h — small helpers every translation between a dialect and
 * the pivot shares: a client-safe "path: problem" message, a client's value
 * quoted safely in it, optional members read with null as absent, texts joined
 * under a cap. Pure: no request, no I/O.
 */
#ifndef TG_TRANSLATE_COMMON_H
#define TG_TRANSLATE_COMMON_H

#include <jansson.h>

#include "common.h"

/* The longest text a translation builds (joined texts, a data URL), in bytes. */
#define TG_TRANSLATE_MAX_TEXT (64 * 1024 * 1024)

/* Room for a quoted value: tg_translate_quote's buffer. */
#define TG_TRANSLATE_QUOTE_SIZE 48

/* Room for a path such as "messages[12].tool_calls[3].function.arguments". */
#define TG_TRANSLATE_PATH_SIZE 96

/* Formats a message into err (err_size bytes, cut when longer) and returns TG_DECLINED. */
int tg_translate_decline(char *err, size_t err_size, const char *fmt, ...) TG_PRINTF(3, 4);

/* Writes "out of memory" into err and returns TG_ERROR. */
int tg_translate_oom(char *err, size_t err_size);

/*
 * s (a client's value) fit for quoting in a message, written into buf
 * (TG_TRANSLATE_QUOTE_SIZE bytes): cut at a character boundary after 40 bytes
 * with "...", quotes, backslashes and control characters as '?'. Returns buf.
 */
const char *tg_translate_quote(const char *s, char *buf);

/* obj[key] (borrowed), or NULL when absent or JSON null (clients send nulls for defaults). */
json_t *tg_translate_member(json_t *obj, const char *key);

/*
 * The strings of the array strings (borrowed) joined with sep, as a new JSON
 * string in *joined. TG_OK; TG_DECLINED when the result would pass
 * TG_TRANSLATE_MAX_TEXT; TG_ERROR when out of memory. Items that are not
 * strings count as "".
 */
int tg_translate_join(json_t *strings, const char *sep, json_t **joined);

/*
 * Appends a pivot text block {"type": "text", "text"} for len bytes of text
 * (valid UTF-8) to blocks; an empty text appends nothing (the pivot refuses
 * empty text blocks). TG_OK, or TG_ERROR when out of memory.
 */
int tg_translate_append_text(json_t *blocks, const char *text, size_t len);

/*
 * len bytes of text as a JSON object (*object, new, set only on TG_OK); blank
 * text (some models' way of saying "no arguments") is {}. TG_DECLINED when the
 * text is not a JSON object; TG_ERROR when out of memory.
 */
int tg_translate_parse_object(const char *text, size_t len, json_t **object);

/*
 * value (borrowed) written as compact JSON, in a new JSON string; NULL when out
 * of memory or past TG_TRANSLATE_MAX_TEXT.
 */
json_t *tg_translate_compact(json_t *value);

#endif
