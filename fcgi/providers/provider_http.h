/*
 * provider_http.h — any JSON HTTP backend (an internal agent service, say) behind
 * an operator's http route: the client's body, method POST, content type and
 * query string go as they are to base_url + providers.X.path (or the client's
 * path), with the provider's credential as a bearer token; the reply comes back
 * as it is. Authentication, RBAC, buckets and quotas apply as to any request;
 * its usage row counts the request, with tokens when the reply reports a
 * "usage" object in Anthropic's or OpenAI's shape.
 */
#ifndef TG_PROVIDER_HTTP_H
#define TG_PROVIDER_HTTP_H

#include "provider.h"

extern const struct tg_provider_ops tg_provider_http;

#endif
