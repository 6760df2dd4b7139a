/*
 * provider_openai.h — OpenAI's API as a backend (Chat Completions and
 * Embeddings), for OpenAI itself and any OpenAI-compatible base URL (vLLM,
 * Ollama, Groq ...: base_url is what comes before "/v1"), and Azure OpenAI
 * (deployment URLs under base_url, the api-key header and api-version).
 *
 * Usage: OpenAI's prompt_tokens includes its cached tokens and
 * completion_tokens its reasoning tokens, so input = prompt_tokens -
 * cached_tokens, cache read = cached_tokens, output = completion_tokens; nothing
 * is counted twice. A stream whose client did not ask for usage is sent with
 * stream_options.include_usage (the one body rewrite of this same-dialect path)
 * and the usage chunk is withheld from that client.
 */
#ifndef TG_PROVIDER_OPENAI_H
#define TG_PROVIDER_OPENAI_H

#include "provider.h"

extern const struct tg_provider_ops tg_provider_openai;
extern const struct tg_provider_ops tg_provider_azure_openai;

/* Takes an OpenAI usage object (chat or embeddings) into usage, as above. */
void tg_openai_take_usage(struct json_t *usage_obj, struct tg_usage *usage);

#endif
