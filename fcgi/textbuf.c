/*
 * textbuf.c — a growing text with a hard cap (see textbuf.h).
 */
#include "textbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void tg_textbuf_init(struct tg_textbuf *t, size_t initial, size_t max)
{
    *t = (struct tg_textbuf){.buf = malloc(initial), .cap = initial, .max = max};
    t->failed = t->buf == NULL;
    if (t->buf != NULL)
        t->buf[0] = '\0';
}

void tg_textbuf_put(struct tg_textbuf *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if ((size_t)n >= t->cap - t->len) {
        size_t cap = t->cap;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *grown = cap <= t->max ? realloc(t->buf, cap) : NULL;
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
        va_start(ap, fmt);
        vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

char *tg_textbuf_take(struct tg_textbuf *t, size_t *len)
{
    if (t->failed) {
        free(t->buf);
        t->buf = NULL;
        return NULL;
    }
    *len = t->len;
    char *text = t->buf;
    t->buf = NULL;
    return text;
}
