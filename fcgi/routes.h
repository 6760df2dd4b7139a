/*
 * routes.h — the operator's routing rules (config "routes", config_routes.c):
 * which rule a request matches, and a rule's direct response.
 *
 * Rules are tried in config order; the first whose every criterion holds wins.
 * Before the body is read only rules without a model criterion are tried
 * (route.c); once the dialect has the client's model name, the rules with one
 * (dialect.c). A rule's action: a direct response (no backend at all), another
 * model (its pool serves the request), or an http provider (the request goes
 * as it is).
 */
#ifndef TG_ROUTES_H
#define TG_ROUTES_H

#include "common.h"

struct tg_request;
struct tg_config_route;

/*
 * The first rule matching r: with model NULL, among the rules without a model
 * criterion; else among those whose model criterion is model. NULL: none.
 */
const struct tg_config_route *tg_routes_match(struct tg_request *r, const char *model);

/* Answers r with the rule's direct response (status, headers, body). TG_OK. */
int tg_routes_respond_direct(struct tg_request *r, const struct tg_config_route *route);

#endif
