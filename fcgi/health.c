/*
 * health.c — the health check.
 */
#include "health.h"

#include <string.h>

#include "db.h"
#include "request.h"

int tg_health_handle(struct tg_request *r)
{
    if (tg_db_ping(r) != TG_OK) {
        static const char down[] = "{\"status\":\"unavailable\",\"database\":\"unavailable\"}";
        r->outcome = "database_unavailable";
        return tg_request_respond(r, 503, "application/json", down, strlen(down));
    }
    static const char ok[] = "{\"status\":\"ok\",\"database\":\"ok\"}";
    return tg_request_respond(r, 200, "application/json", ok, strlen(ok));
}
