/*
 * jsafe.h — jansson calls that succeed whole or fail, never half.
 *
 * Two of jansson 2.14's calls carry on when memory runs out half-way and
 * return a result that looks fine (found by tests/integration/test_chaos.py,
 * which fails each allocation of a request in turn):
 *
 * - json_dumps grows its buffer as it writes and ignores a failed append of
 *   an object's key: the text can be invalid JSON (a usage row PostgreSQL
 *   refuses, a body the provider cannot read) or valid JSON with a key cut.
 * - json_copy (shallow) ignores a failed insertion: the copy lacks members
 *   (a streamed request forwarded without "stream").
 *
 * Use these instead. Not for json_deep_copy, which does check.
 */
#ifndef TG_JSAFE_H
#define TG_JSAFE_H

#include <jansson.h>

#include "common.h"

/*
 * json_dumps(json, flags), but NULL unless the whole text was written: when
 * json is NULL, cannot be encoded, or memory runs out. It measures the text
 * first, then writes it into one buffer of that size. The caller frees the
 * text with free().
 */
char *tg_jsafe_dumps(const json_t *json, size_t flags);

/*
 * json_copy(json) (a new reference; members and elements shared, not
 * copied), but NULL unless every member or element is in the copy. NULL
 * json gives NULL.
 */
json_t *tg_jsafe_copy(json_t *json);

#endif
