/*
 * translate_common.c — the helpers translate_common.h describes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_common.h"

#define QUOTE_MAX 40 /* bytes of a client's value quoted in a message */

int tg_translate_decline(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return TG_DECLINED;
}

int tg_translate_oom(char *err, size_t err_size)
{
    snprintf(err, err_size, "out of memory");
    return TG_ERROR;
}

const char *tg_translate_quote(const char *s, char *buf)
{
    size_t n = 0;
    for (; s[n] != '\0' && n < QUOTE_MAX; n++) {
        unsigned char c = (unsigned char)s[n];
        buf[n] = c < 0x20 || c == '"' || c == '\\' || c == 0x7f ? '?' : (char)c;
    }
    if (s[n] != '\0') {
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) /* not inside a character */
            n--;
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

json_t *tg_translate_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

int tg_translate_join(json_t *strings, const char *sep, json_t **joined)
{
    size_t sep_len = strlen(sep), total = 0, i;
    json_t *s;
    json_array_foreach(strings, i, s) {
        total += (i > 0 ? sep_len : 0) + json_string_length(s);
        if (total > TG_TRANSLATE_MAX_TEXT)
            return TG_DECLINED;
    }
    char *buf = malloc(total + 1);
    if (buf == NULL)
        return TG_ERROR;
    size_t at = 0;
    json_array_foreach(strings, i, s) {
        if (i > 0) {
            memcpy(buf + at, sep, sep_len);
            at += sep_len;
        }
        if (json_string_length(s) > 0)
            memcpy(buf + at, json_string_value(s), json_string_length(s));
        at += json_string_length(s);
    }
    /* pieces of valid UTF-8 joined by a separator of ASCII are valid UTF-8 */
    *joined = json_stringn_nocheck(buf, total);
    free(buf);
    return *joined != NULL ? TG_OK : TG_ERROR;
}

int tg_translate_append_text(json_t *blocks, const char *text, size_t len)
{
    if (len == 0)
        return TG_OK;
    json_t *block = json_pack("{s:s, s:s%}", "type", "text", "text", text, len);
    return json_array_append_new(blocks, block) == 0 ? TG_OK : TG_ERROR;
}

int tg_translate_parse_object(const char *text, size_t len, json_t **object)
{
    size_t k = 0;
    while (k < len && strchr(" \t\r\n", text[k]) != NULL)
        k++;
    if (k == len) {
        *object = json_object();
        return *object != NULL ? TG_OK : TG_ERROR;
    }
    json_error_t error;
    json_t *v = json_loadb(text, len, 0, &error);
    if (v == NULL && json_error_code(&error) != json_error_out_of_memory) {
        /*
         * jansson's lexer reports some allocation failures as syntax errors:
         * a second parse tells a real syntax error (it fails again) from those.
         */
        v = json_loadb(text, len, 0, &error);
        if (v != NULL) {
            json_decref(v);
            return TG_ERROR;
        }
    }
    if (v == NULL && json_error_code(&error) == json_error_out_of_memory)
        return TG_ERROR;
    if (!json_is_object(v)) {
        json_decref(v);
        return TG_DECLINED;
    }
    *object = v;
    return TG_OK;
}

json_t *tg_translate_compact(json_t *value)
{
    /*
     * Into a buffer of the exact size, measured first: json_dumps goes on past
     * a failed allocation and may drop an object's key from its text.
     */
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t size = json_dumpb(value, NULL, 0, flags);
    if (size == 0 || size > TG_TRANSLATE_MAX_TEXT)
        return NULL;
    char *buf = malloc(size);
    if (buf == NULL)
        return NULL;
    json_t *text = json_dumpb(value, buf, size, flags) == size ? json_stringn(buf, size) : NULL;
    free(buf);
    return text;
}
