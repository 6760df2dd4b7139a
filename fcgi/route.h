/*
 * route.h — method + path to an endpoint and its error dialect.
 * Unknown paths are 404, known paths with the wrong method 405 (with Allow).
 * Paths under /admin/ go to the admin API when the config enables it.
 */
#ifndef TG_ROUTE_H
#define TG_ROUTE_H

#include "common.h"

struct tg_request;

/* Sets r->endpoint, r->endpoint_path and r->dialect. TG_ERROR with r->error set (404, 405). */
int tg_route_resolve(struct tg_request *r);

#endif
