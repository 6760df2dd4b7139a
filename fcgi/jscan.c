/*
 * jscan.c — the top-level member finder (see jscan.h).
 */
#include "jscan.h"

#include <string.h>

static size_t skip_space(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* The index just after the string that starts at s[i] ('"'), or len when it never ends. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++; /* the escaped character, whatever it is */
        else if (s[i] == '"')
            return i + 1;
    }
    return len;
}

/* The index just after the value that starts at s[i], or len when it never ends. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    if (i >= len)
        return len;
    if (s[i] == '"')
        return skip_string(s, len, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, len, i);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return len;
    }
    while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        i++; /* a number, true, false or null */
    return i;
}

int tg_jscan_member(const char *text, size_t len, const char *key, const char **value,
                    size_t *value_len)
{
    size_t key_len = strlen(key);
    size_t i = skip_space(text, len, 0);
    if (i >= len || text[i] != '{')
        return TG_ERROR;
    i = skip_space(text, len, i + 1);
    if (i < len && text[i] == '}')
        return TG_DECLINED;
    int found = TG_DECLINED;
    while (i < len) {
        if (text[i] != '"')
            return TG_ERROR;
        size_t key_end = skip_string(text, len, i);
        if (key_end >= len)
            return TG_ERROR;
        bool match = key_end - i - 2 == key_len && memcmp(text + i + 1, key, key_len) == 0;
        i = skip_space(text, len, key_end);
        if (i >= len || text[i] != ':')
            return TG_ERROR;
        i = skip_space(text, len, i + 1);
        size_t end = skip_value(text, len, i);
        if (end >= len || end == i)
            return TG_ERROR; /* an object always ends with '}' after its last value */
        if (match) {
            *value = text + i;
            *value_len = end - i;
            found = TG_OK;
        }
        i = skip_space(text, len, end);
        if (i < len && text[i] == '}')
            return found;
        if (i >= len || text[i] != ',')
            return TG_ERROR;
        i = skip_space(text, len, i + 1);
    }
    return TG_ERROR;
}
