/*
 * health.c — the health check.
 */
#include "health.h"

#include <stdio.h>
#include <string.h>

#include "capacity.h"
#include "db.h"
#include "request.h"

int tg_health_handle(struct tg_request *r)
{
    struct tg_capacity_counts c;
    tg_capacity_count(NULL, &c);
    bool db_ok = tg_db_ping(r) == TG_OK;
    bool degraded = c.configured > 0 && c.alive < c.configured;
    const char *status = !db_ok ? "unavailable" : degraded ? "degraded" : "ok";
    char body[256];
    int len = snprintf(body, sizeof(body),
                       "{\"status\":\"%s\",\"database\":\"%s\",\"workers\":{\"alive\":%d,"
                       "\"configured\":%d},\"threads\":{\"busy\":%d,\"total\":%d}}",
                       status, db_ok ? "ok" : "unavailable", c.alive, c.configured, c.threads_busy,
                       c.threads_total);
    if (!db_ok)
        r->outcome = "database_unavailable";
    else if (degraded)
        r->outcome = "degraded";
    return tg_request_respond(r, db_ok && !degraded ? 200 : 503, "application/json", body,
                              (size_t)len);
}
