/*
 * models.h — GET /v1/models: the models this gateway serves, in Anthropic's list
 * format (canonical names and aliases alike, since clients may send either).
 */
#ifndef TG_MODELS_H
#define TG_MODELS_H

struct tg_request;

/* Answers the request. TG_ERROR with r->error set when the answer could not be built. */
int tg_models_handle(struct tg_request *r);

#endif
