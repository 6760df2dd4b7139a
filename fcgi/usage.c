/*
 * usage.c — the settle step. Pricing is done by the database (tollgate.price_micros)
 * so psql reports and the gateway can never disagree on a price.
 */
#include "usage.h"

#include <inttypes.h>
#include <stdio.h>

#include "db.h"
#include "log.h"
#include "request.h"

int64_t tg_usage_total(const struct tg_usage *u)
{
    return u->input_tokens + u->output_tokens + u->cache_read_tokens + u->cache_write_tokens;
}

void tg_usage_format_usd(int64_t micros, char *out, size_t out_size)
{
    const char *sign = micros < 0 ? "-" : "";
    uint64_t abs_micros = micros < 0 ? (uint64_t)(-(micros + 1)) + 1 : (uint64_t)micros;
    snprintf(out, out_size, "%s%" PRIu64 ".%06" PRIu64, sign, abs_micros / 1000000,
             abs_micros % 1000000);
}

int tg_usage_settle(struct tg_request *r)
{
    int64_t cost = 0;
    if (tg_db_record_usage(r, &cost) != TG_OK) {
        tg_log_error(r->request_id, "could not record usage: database unavailable");
        return TG_ERROR;
    }
    r->cost_micros = cost;
    return TG_OK;
}
