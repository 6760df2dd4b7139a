/*
 * models.h — GET /v1/models: the models this gateway serves that the caller may
 * use (canonical names and aliases alike, since clients may send either), each
 * with its price per million tokens, in the caller's dialect.
 */
#ifndef TG_MODELS_H
#define TG_MODELS_H

struct tg_request;

/* The caller's dialect: Anthropic's when it sends anthropic-version or x-api-key, else OpenAI's. */
void tg_models_dialect(struct tg_request *r);

/*
 * Answers an identified request (tg_auth_identify). TG_ERROR with r->error set
 * when the answer could not be built (503: the database is unavailable).
 */
int tg_models_handle(struct tg_request *r);

#endif
