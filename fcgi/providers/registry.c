/*
 * registry.c — which module serves each provider type.
 */
#include "registry.h"

#include "provider_anthropic.h"
#include "provider_bedrock.h"
#include "provider_gemini.h"
#include "provider_http.h"
#include "provider_openai.h"

const struct tg_provider_ops *tg_registry_provider(enum tg_provider_type type)
{
    switch (type) {
    case TG_PROVIDER_ANTHROPIC: return &tg_provider_anthropic;
    case TG_PROVIDER_OPENAI: return &tg_provider_openai;
    case TG_PROVIDER_AZURE_OPENAI: return &tg_provider_azure_openai;
    case TG_PROVIDER_BEDROCK: return &tg_provider_bedrock;
    case TG_PROVIDER_GEMINI: return &tg_provider_gemini;
    case TG_PROVIDER_VERTEX: return &tg_provider_vertex;
    case TG_PROVIDER_HTTP: return &tg_provider_http;
    default: return NULL;
    }
}
