/*
 * guard_mask.h — masking with the guardrails' rules: a text's matched spans
 * replaced by their rules' mask texts, whole (prompts), for findings a caller
 * chose (tool calls), or window by window (replies and streams, which cannot be
 * refused). The rules and the scan are guard.h's.
 */
#ifndef TG_GUARD_MASK_H
#define TG_GUARD_MASK_H

#include "guard.h"

/*
 * A copy of text[0..len) in which the span of every finding whose effective
 * action is mask is replaced by its rule's mask text (overlapping spans are
 * merged and take the first one's mask); every other byte is kept. New,
 * NUL-terminated, malloc'd (the caller frees); *out_len gets its length. NULL
 * when text is not valid UTF-8, memory ran out or there were more than
 * TG_GUARD_MAX_FINDINGS spans: the caller should then refuse the text.
 */
char *tg_guard_mask(const struct tg_guard_rules *rules, enum tg_guard_level level, const char *text,
                    size_t len, size_t *out_len);

#define TG_GUARD_MAX_FINDINGS 65536

/*
 * A copy of text[0..len) in which the span of each of findings[0..n) (as
 * tg_guard_scan reported them over this text, whatever their action) is
 * replaced by its rule's mask text; findings of length 0 are skipped,
 * overlapping spans merged as tg_guard_mask does. For a caller that decides the
 * action of each finding itself. New, NUL-terminated, malloc'd (the caller
 * frees); *out_len gets its length. NULL when memory ran out, n is over
 * TG_GUARD_MAX_FINDINGS or a finding lies outside the text.
 */
char *tg_guard_mask_findings(const struct tg_guard_rules *rules, const char *text, size_t len,
                             const struct tg_guard_finding *findings, size_t n, size_t *out_len);

/* A finding reported by tg_guard_mask_range (borrowed for the call). */
typedef void (*tg_guard_finding_fn)(void *ctx, const struct tg_guard_finding *finding);

/*
 * Masking for replies, which cannot be refused: the span of every finding whose
 * effective action is mask or block is masked (as tg_guard_mask does for mask).
 * text[0..len) is what the caller holds of one text: text[0..from) went out
 * already and is only context for the rules (look-behinds), text[from..*to) is to
 * go out now, text[*to..len) is held back. *to is lowered to the start of a
 * masked span that crosses it (the match may grow with what comes next) when that
 * start is past from, or at from and the span no longer than what is held back
 * (*to may then become from: nothing goes out yet); any other span crossing *to,
 * or one that began before from, is masked in the part inside [from, *to).
 * on_finding (NULL: none) gets each finding of any action that starts in
 * [from, *to) (after lowering), so a finding is reported once over successive
 * windows. Returns text[from..*to) masked: new, NUL-terminated, malloc'd (the
 * caller frees), *out_len its length; NULL when text is not valid UTF-8, memory
 * ran out, a cap was hit, or a blocking rule hit its match limit (the caller must
 * withhold the text: a guard fails closed).
 */
char *tg_guard_mask_range(const struct tg_guard_rules *rules, enum tg_guard_level level,
                          const char *text, size_t len, size_t from, size_t *to,
                          tg_guard_finding_fn on_finding, void *ctx, size_t *out_len);

#endif
