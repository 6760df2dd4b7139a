/*
 * health.h — GET /health: 200 {"status":"ok"} when the worker can reach
 * PostgreSQL and every configured worker process is up; 503 with "status"
 * "unavailable" (the database) or "degraded" (fewer workers up than
 * server.processes, e.g. while the master replaces one), so a load balancer
 * takes the host out while it is not whole. The body also carries the worker
 * and thread counts (capacity.h). No authentication, no secrets, nothing
 * about the database but "ok"/"unavailable".
 */
#ifndef TG_HEALTH_H
#define TG_HEALTH_H

struct tg_request;

int tg_health_handle(struct tg_request *r);

#endif
