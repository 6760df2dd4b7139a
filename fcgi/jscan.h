/*
 * jscan.h — finding one member of a JSON object without parsing the rest.
 *
 * A provider's reply can be large (long completions, tool results) while the
 * gateway needs only its "usage" member. tg_jscan_member walks the top-level
 * object, skipping every other value by its syntax (strings with their escapes,
 * nested objects and arrays by depth), and hands back the raw text of the one
 * member asked for, which the caller then parses alone. Not a validator: text
 * it calls well-formed may still be refused by a full parser.
 */
#ifndef TG_JSCAN_H
#define TG_JSCAN_H

#include "common.h"

/*
 * Finds member key (compared byte for byte with the raw key, so keys written
 * with escapes never match) of the top-level object in text[0..len). When the
 * key appears more than once the last one wins, as with jansson. TG_OK with
 * *value and *value_len spanning its value; TG_DECLINED when the object has no
 * such member; TG_ERROR when text is not an object or ends before it does.
 */
int tg_jscan_member(const char *text, size_t len, const char *key, const char **value,
                    size_t *value_len);

#endif
