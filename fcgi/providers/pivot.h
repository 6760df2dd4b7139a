/*
 * pivot.h — what the pivot (Anthropic Messages) says of usage, whoever speaks
 * it: a reply's or an event's usage object mapped onto Tollgate's four token
 * kinds (plus the 1-hour cache writes and web searches), and a stream's meter —
 * the usage so far, the content bytes delivered (every token is at least one
 * byte of it), whether the final usage arrived and whether an error event came,
 * and the model and stop reasons the reply names (for the trace: nothing else
 * of the content is kept). Every translated stream is metered here, and
 * Anthropic's own streams too; OpenAI's own streams note theirs through
 * tg_pivot_note_model / tg_pivot_note_reason.
 */
#ifndef TG_PIVOT_H
#define TG_PIVOT_H

#include <jansson.h>

#include "common.h"
#include "usage.h"

/* A stream's meter; usage points at the request's usage (borrowed). */
struct tg_pivot_meter {
    struct tg_usage *usage;
    int64_t text_bytes;       /* content streamed so far (text, tool JSON, thinking), in bytes */
    bool final_usage;         /* a message_delta carried the final usage */
    bool stream_error;        /* an error event came */
    char model[128];          /* the model the reply names, "" none (yet); cut if longer */
    char finish_reasons[256]; /* its stop (finish) reasons as they came, '\n'-separated */
};

/* Takes what a Messages usage object (borrowed) says into usage; absent members keep their value.
 */
void tg_pivot_take_usage(json_t *usage_obj, struct tg_usage *usage);

/*
 * Counts one stream event (its name, its data object borrowed) into m: usage,
 * content bytes, errors, message_start's model and message_delta's stop_reason.
 */
void tg_pivot_observe(struct tg_pivot_meter *m, const char *event, json_t *data);

/* Notes what a whole pivot reply (borrowed) names: its model and stop_reason. */
void tg_pivot_observe_reply(struct tg_pivot_meter *m, json_t *reply);

/*
 * Notes the reply's model: the first named wins (NULL and "" ignored), so a
 * decoder notes the provider's own before its pivot events name the gateway's.
 */
void tg_pivot_note_model(struct tg_pivot_meter *m, const char *model);

/* Appends a stop (finish) reason; NULL, "", one with '\n' or past the buffer are dropped. */
void tg_pivot_note_reason(struct tg_pivot_meter *m, const char *reason);

#endif
