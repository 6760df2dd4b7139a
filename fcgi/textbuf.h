/*
 * textbuf.h — a growing text with a hard cap, for what is written piece by
 * piece with printf formats (the /metrics exposition): once anything failed
 * (out of memory, over the cap), every later write is dropped and the text is
 * refused whole, never cut.
 */
#ifndef TG_TEXTBUF_H
#define TG_TEXTBUF_H

#include <stddef.h>

#include "common.h"

struct tg_textbuf {
    char *buf;
    size_t len, cap, max;
    bool failed;
};

/* Starts t with initial bytes of room, growing to at most max; failed when out of memory. */
void tg_textbuf_init(struct tg_textbuf *t, size_t initial, size_t max);

/* Appends the formatted text (dropped once t failed). */
void tg_textbuf_put(struct tg_textbuf *t, const char *fmt, ...) TG_PRINTF(2, 3);

/* The text (malloc'd, NUL-terminated, its length in *len), or NULL when anything failed. */
char *tg_textbuf_take(struct tg_textbuf *t, size_t *len);

#endif
