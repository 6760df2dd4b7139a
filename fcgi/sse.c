/*
 * sse.c — line splitting and field handling for text/event-stream.
 */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

void tg_sse_parser_init(struct tg_sse_parser *p, size_t max_event_bytes, tg_sse_event_fn fn,
                        void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->on_event = fn;
    p->ctx = ctx;
    p->max_event_bytes = max_event_bytes;
}

void tg_sse_parser_release(struct tg_sse_parser *p)
{
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
    p->line_len = p->line_cap = p->data_len = p->data_cap = 0;
}

/* Grows *buf to hold need bytes (+1 for a NUL), within the parser's cap. */
static int reserve(struct tg_sse_parser *p, char **buf, size_t *cap, size_t need)
{
    if (need > p->max_event_bytes)
        return TG_ERROR;
    if (need + 1 <= *cap)
        return TG_OK;
    size_t grown = *cap == 0 ? 256 : *cap * 2;
    while (grown < need + 1)
        grown *= 2;
    char *fresh = realloc(*buf, grown);
    if (fresh == NULL)
        return TG_ERROR;
    *buf = fresh;
    *cap = grown;
    return TG_OK;
}

static int dispatch(struct tg_sse_parser *p)
{
    int rc = TG_OK;
    if (p->has_data) {
        p->data[p->data_len] = '\0';
        rc = p->on_event(p->ctx, p->event[0] != '\0' ? p->event : "message", p->data, p->data_len);
    }
    p->data_len = 0;
    p->has_data = false;
    p->event[0] = '\0';
    return rc;
}

static int append_data(struct tg_sse_parser *p, const char *value, size_t len)
{
    size_t sep = p->has_data ? 1 : 0;
    if (reserve(p, &p->data, &p->data_cap, p->data_len + sep + len) != TG_OK)
        return TG_ERROR;
    if (sep)
        p->data[p->data_len++] = '\n';
    memcpy(p->data + p->data_len, value, len);
    p->data_len += len;
    p->has_data = true;
    return TG_OK;
}

/* One complete line (without its terminator). */
static int process_line(struct tg_sse_parser *p, const char *line, size_t len)
{
    if (len == 0)
        return dispatch(p);
    if (line[0] == ':')
        return TG_OK; /* comment */
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon != NULL ? (size_t)(colon - line) : len;
    const char *value = colon != NULL ? colon + 1 : line + len;
    size_t value_len = len - name_len - (colon != NULL ? 1 : 0);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0)
        return append_data(p, value, value_len);
    if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = value_len < sizeof(p->event) - 1 ? value_len : sizeof(p->event) - 1;
        memcpy(p->event, value, n);
        p->event[n] = '\0';
    }
    return TG_OK; /* id, retry and unknown fields carry nothing we need */
}

int tg_sse_feed(struct tg_sse_parser *p, const char *buf, size_t len)
{
    size_t i = 0;
    if (len == 0)
        return TG_OK; /* an empty feed must not forget a pending CR */
    if (p->last_was_cr && buf[0] == '\n')
        i = 1; /* the LF of a CRLF split across feeds */
    p->last_was_cr = false;
    while (i < len) {
        const char *start = buf + i;
        size_t rest = len - i;
        size_t n = 0;
        while (n < rest && start[n] != '\n' && start[n] != '\r')
            n++;
        if (n == rest) { /* no terminator yet: keep the partial line */
            if (reserve(p, &p->line, &p->line_cap, p->line_len + n) != TG_OK)
                return TG_ERROR;
            memcpy(p->line + p->line_len, start, n);
            p->line_len += n;
            return TG_OK;
        }
        int rc;
        if (p->line_len > 0) {
            if (reserve(p, &p->line, &p->line_cap, p->line_len + n) != TG_OK)
                return TG_ERROR;
            memcpy(p->line + p->line_len, start, n);
            p->line_len += n;
            rc = process_line(p, p->line, p->line_len);
            p->line_len = 0;
        } else {
            if (n > p->max_event_bytes)
                return TG_ERROR;
            rc = process_line(p, start, n);
        }
        if (rc != TG_OK)
            return rc;
        i += n;
        if (start[n] == '\r') {
            if (i + 1 < len && buf[i + 1] == '\n')
                i++;
            else if (i + 1 == len)
                p->last_was_cr = true;
        }
        i++;
    }
    return TG_OK;
}
