/*
 * guard_stream.h — the guardrails over a streamed reply, event by event: the
 * text of Anthropic `content_block_delta` / `text_delta` events, or of OpenAI
 * `chat.completion.chunk` `choices[i].delta.content`, is masked before it goes
 * on (every finding of a mask or block rule is masked: a reply cannot be
 * refused). A match may be split across events, so each content block (or
 * choice) keeps a carry: the last `window` bytes of its text are held back
 * until more text shows they are no part of a match, never cut inside a UTF-8
 * sequence, and flushed, masked, at content_block_stop, at a finish_reason, at
 * message_delta / message_stop / [DONE], or at tg_guard_stream_finish. For a
 * block, the concatenation of the texts it emits equals tg_guard_mask_range
 * over its whole text, as long as no match is longer than the window.
 *
 * Emitted events keep everything but their text as received (unchanged events
 * byte for byte); a flush at a block's end is a synthesized delta shaped like
 * the block's last one. Text that could not be checked (invalid UTF-8, a cap,
 * memory, a blocking rule at its match limit) is withheld, never sent as is.
 *
 * Pure: no request, no I/O but through the emit callback. Not thread-safe: one
 * per stream.
 */
#ifndef TG_GUARD_STREAM_H
#define TG_GUARD_STREAM_H

#include <jansson.h>

#include "common.h"
#include "guard_mask.h"

enum tg_guard_stream_dialect {
    TG_GUARD_STREAM_ANTHROPIC = 0, /* event name + Messages stream event (and the pivot) */
    TG_GUARD_STREAM_OPENAI,        /* data lines: chat.completion.chunk, [DONE] */
};

#define TG_GUARD_STREAM_WINDOW_DEFAULT 256
#define TG_GUARD_STREAM_WINDOW_MAX 16384

/*
 * One event to send on: either data[0..len) (its bytes, doc NULL) or doc
 * (borrowed for the call; data NULL). Returns TG_OK, or TG_ERROR when it could
 * not be sent (the stream reports it from feed / finish).
 */
typedef int (*tg_guard_stream_emit_fn)(void *ctx, const char *event, const char *data, size_t len,
                                       json_t *doc);

struct tg_guard_stream;

/*
 * A masker for one stream. rules (borrowed, must outlive it) at level; window:
 * the bytes held back per block (1..TG_GUARD_STREAM_WINDOW_MAX, else the
 * default). emit gets every event to send, on_finding (may be NULL) every
 * finding once, both with ctx. NULL when memory ran out. Free with
 * tg_guard_stream_free.
 */
struct tg_guard_stream *tg_guard_stream_new(const struct tg_guard_rules *rules,
                                            enum tg_guard_level level,
                                            enum tg_guard_stream_dialect dialect, size_t window,
                                            tg_guard_stream_emit_fn emit,
                                            tg_guard_finding_fn on_finding, void *ctx);

/* Frees it and the text it still holds (which is never sent). NULL is a no-op. */
void tg_guard_stream_free(struct tg_guard_stream *s);

/*
 * One event as received: event name and data[0..len) (not NUL-terminated).
 * Emits zero or more events. TG_OK, or TG_ERROR when an emit failed.
 */
int tg_guard_stream_feed(struct tg_guard_stream *s, const char *event, const char *data,
                         size_t len);

/* The same for a parsed event (doc borrowed, never modified). */
int tg_guard_stream_feed_json(struct tg_guard_stream *s, const char *event, json_t *doc);

/* The stream ended: every block's held text is flushed, masked. TG_OK or TG_ERROR (emit). */
int tg_guard_stream_finish(struct tg_guard_stream *s);

/* Was some text withheld because it could not be checked? */
bool tg_guard_stream_failed(const struct tg_guard_stream *s);

#endif
