/*
 * guard_reply.h — the guardrails over a non-stream reply, in the client's
 * dialect (after any translation): the text of an Anthropic Messages reply
 * (content[].text of its text blocks) or of an OpenAI chat.completion
 * (choices[].message.content) is masked — every finding of a mask or block
 * rule, since a reply already paid for cannot be refused — and the reply is
 * written again as compact JSON. Everything else (id, usage, stop reason,
 * tool calls) is kept as it was.
 *
 * Pure: no request, no I/O. The caller counts and logs the findings.
 */
#ifndef TG_GUARD_REPLY_H
#define TG_GUARD_REPLY_H

#include "common.h"
#include "guard_mask.h"
#include "guard_stream.h"

/*
 * Masks body[0..len), a reply in dialect (TG_GUARD_STREAM_ANTHROPIC: a Messages
 * reply; TG_GUARD_STREAM_OPENAI: a chat.completion), at level. on_finding (may
 * be NULL) gets every finding of any action, with ctx.
 * TG_OK: something was masked, *out is the new body (new, NUL-terminated,
 * malloc'd: the caller frees), *out_len its length. TG_DECLINED: no text had
 * anything to mask, the body goes as it is (*out NULL). TG_ERROR: the body is
 * not a JSON object, or a text could not be checked (invalid UTF-8, a cap,
 * memory, a blocking rule at its match limit): the reply must be withheld.
 */
int tg_guard_reply_mask(const struct tg_guard_rules *rules, enum tg_guard_level level,
                        enum tg_guard_stream_dialect dialect, const char *body, size_t len,
                        tg_guard_finding_fn on_finding, void *ctx, char **out, size_t *out_len);

#endif
