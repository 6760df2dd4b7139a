/*
 * sse.h — an incremental Server-Sent Events parser (the WHATWG event-stream
 * format): bytes go in as they arrive from the provider, complete events come out
 * through a callback. It knows nothing of any provider's event vocabulary.
 *
 * Lines may end in LF, CRLF or CR, and may be split anywhere across feeds. An
 * event's data is capped (max_event_bytes); past it the parser fails cleanly.
 */
#ifndef TG_SSE_H
#define TG_SSE_H

#include "common.h"

/*
 * Called once per dispatched event. event is the "event:" field ("message" when
 * absent); data is the "data:" lines joined with "\n" and NUL-terminated.
 * Return TG_OK to go on, anything else to stop the parser (tg_sse_feed returns it).
 */
typedef int (*tg_sse_event_fn)(void *ctx, const char *event, const char *data, size_t data_len);

struct tg_sse_parser {
    tg_sse_event_fn on_event;
    void *ctx;
    size_t max_event_bytes;
    char *line; /* the current, unfinished line */
    size_t line_len, line_cap;
    char *data; /* data lines of the current event */
    size_t data_len, data_cap;
    char event[64];
    bool last_was_cr; /* a CR ended the last feed: a following LF belongs to it */
    bool has_data;
};

/* Prepares p. max_event_bytes caps one line and one event's data. */
void tg_sse_parser_init(struct tg_sse_parser *p, size_t max_event_bytes, tg_sse_event_fn fn,
                        void *ctx);

/* Frees the parser's buffers (not p itself). */
void tg_sse_parser_release(struct tg_sse_parser *p);

/*
 * Feeds len bytes. Returns TG_OK; TG_ERROR when a line or an event passed the
 * cap or memory ran out; or the callback's non-TG_OK value.
 */
int tg_sse_feed(struct tg_sse_parser *p, const char *buf, size_t len);

#endif
