/*
 * provider_anthropic.h — the anthropic provider: Anthropic's Messages API as a
 * backend. The client's body goes byte for byte; only headers are rewritten:
 * the client's credential never reaches the provider and the provider's never
 * reaches the client. Usage is read from the reply's "usage" member, or from a
 * stream's message_start and message_delta events.
 */
#ifndef TG_PROVIDER_ANTHROPIC_H
#define TG_PROVIDER_ANTHROPIC_H

#include "provider.h"

extern const struct tg_provider_ops tg_provider_anthropic;

/* Reads usage from a Messages JSON object's "usage" member (for tests too). */
void tg_anthropic_read_usage(const char *json_text, size_t len, struct tg_usage *usage);

#endif
