/*
 * provider_gemini.h — Google's Gemini API (generateContent and
 * streamGenerateContent?alt=sse, an API key in x-goog-api-key) and Vertex AI
 * (the same under projects/P/locations/L/publishers/google/models/M, with an
 * OAuth2 access token from a service-account key: an RS256-signed assertion
 * exchanged at the key's token_uri, or providers.X.token_url, cached until five
 * minutes before it expires) as backends. Neither speaks a client's dialect:
 * every request goes through the pivot (translate_gemini.h).
 */
#ifndef TG_PROVIDER_GEMINI_H
#define TG_PROVIDER_GEMINI_H

#include "provider.h"

extern const struct tg_provider_ops tg_provider_gemini;
extern const struct tg_provider_ops tg_provider_vertex;

#endif
