/*
 * health.h — GET /health: 200 when the worker can reach PostgreSQL, else 503.
 * No authentication, no secrets, nothing about the database but "ok"/"unavailable".
 */
#ifndef TG_HEALTH_H
#define TG_HEALTH_H

struct tg_request;

int tg_health_handle(struct tg_request *r);

#endif
