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
#include "spool.h"

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

static void fill_record(struct tg_request *r, struct tg_usage_record *rec)
{
    *rec = (struct tg_usage_record){
        .request_id = r->request_id,
        .ts = r->started_at,
        .api_key_id = r->identity.api_key_id,
        .user_id = r->identity.user_id,
        .group_id = r->identity.group_id,
        .provider = r->model->provider->name,
        .model = r->model->name,
        .usage = r->usage,
        .http_status = r->status,
        .latency_ms = tg_now_ms() - r->t_start_ms,
        .upstream_ms = r->upstream_ms,
        .stream = r->stream,
        .outcome = r->outcome,
    };
}

int tg_usage_settle(struct tg_request *r)
{
    struct tg_usage_record rec;
    fill_record(r, &rec);
    int64_t cost = 0;
    if (tg_db_record_usage(r->request_id, &rec, &cost) == TG_OK) {
        r->cost_micros = cost;
        if (tg_spool_pending())
            tg_spool_replay(r->request_id);
        return TG_OK;
    }
    if (tg_spool_append(&rec) == TG_OK) {
        tg_log_warn(r->request_id, "database unavailable: usage spooled for replay");
        return TG_OK;
    }
    tg_log_error(r->request_id,
                 "could not record usage: database and spool unavailable (model \"%s\", "
                 "input_tokens %lld, output_tokens %lld)",
                 rec.model, (long long)rec.usage.input_tokens, (long long)rec.usage.output_tokens);
    return TG_ERROR;
}
