/*
 * jsafe.c — jansson calls that succeed whole or fail, never half (jsafe.h).
 */
#include "jsafe.h"

#include <stdlib.h>

char *tg_jsafe_dumps(const json_t *json, size_t flags)
{
    if (json == NULL)
        return NULL;
    /* a dump into a buffer never allocates for the text itself */
    size_t size = json_dumpb(json, NULL, 0, flags);
    if (size == 0)
        return NULL;
    char *text = malloc(size + 1);
    if (text == NULL)
        return NULL;
    if (json_dumpb(json, text, size, flags) != size) {
        free(text);
        return NULL;
    }
    text[size] = '\0';
    return text;
}

json_t *tg_jsafe_copy(json_t *json)
{
    if (json_is_object(json)) {
        json_t *copy = json_object();
        const char *key;
        json_t *value;
        json_object_foreach(json, key, value) {
            if (copy == NULL || json_object_set(copy, key, value) != 0) {
                json_decref(copy);
                return NULL;
            }
        }
        return copy;
    }
    if (json_is_array(json)) {
        json_t *copy = json_array();
        size_t i;
        json_t *value;
        json_array_foreach(json, i, value) {
            if (copy == NULL || json_array_append(copy, value) != 0) {
                json_decref(copy);
                return NULL;
            }
        }
        return copy;
    }
    return json_copy(json); /* a scalar: one allocation, no member to lose */
}
