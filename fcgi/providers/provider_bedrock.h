/*
 * provider_bedrock.h — Amazon Bedrock's Converse API as a backend: Converse and
 * ConverseStream (its binary event stream, CRCs checked), authenticated by a
 * Bedrock API key sent as a bearer token, or by SigV4 with the provider's
 * access key, secret and session token (from the config, or the environment's
 * AWS_* variables at start). Bedrock speaks no client's dialect: every request
 * goes through the pivot (translate_bedrock.h).
 */
#ifndef TG_PROVIDER_BEDROCK_H
#define TG_PROVIDER_BEDROCK_H

#include "provider.h"

extern const struct tg_provider_ops tg_provider_bedrock;

#endif
