/*
 * usage.c — the settle step. Pricing is done by the database (tollgate.price_micros)
 * so psql reports and the gateway can never disagree on a price.
 */
#include "usage.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "request.h"
#include "shm.h"
#include "journal.h"
#include "settle.h"

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
        .usage_source = r->usage_source != NULL ? r->usage_source : "provider",
    };
}

static json_t *string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

json_t *tg_usage_record_json(const struct tg_usage_record *rec)
{
    json_t *o = json_object();
    json_object_set_new(o, "request_id", json_string(rec->request_id));
    json_object_set_new(o, "ts", string_or_null(rec->ts));
    json_object_set_new(o, "api_key_id",
                        rec->api_key_id != 0 ? json_integer(rec->api_key_id) : json_null());
    json_object_set_new(o, "user_id", string_or_null(rec->user_id));
    json_object_set_new(o, "group_id", string_or_null(rec->group_id));
    json_object_set_new(o, "provider", string_or_null(rec->provider));
    json_object_set_new(o, "model", string_or_null(rec->model));
    json_object_set_new(o, "input_tokens", json_integer(rec->usage.input_tokens));
    json_object_set_new(o, "output_tokens", json_integer(rec->usage.output_tokens));
    json_object_set_new(o, "cache_read_tokens", json_integer(rec->usage.cache_read_tokens));
    json_object_set_new(o, "cache_write_tokens", json_integer(rec->usage.cache_write_tokens));
    json_object_set_new(o, "cache_write_1h_tokens", json_integer(rec->usage.cache_write_1h_tokens));
    json_object_set_new(o, "web_search_requests", json_integer(rec->usage.web_search_requests));
    json_object_set_new(o, "http_status", json_integer(rec->http_status));
    json_object_set_new(o, "latency_ms", json_integer(rec->latency_ms));
    json_object_set_new(o, "upstream_ms", json_integer(rec->upstream_ms));
    json_object_set_new(o, "stream", json_boolean(rec->stream));
    json_object_set_new(o, "outcome", string_or_null(rec->outcome));
    json_object_set_new(o, "usage_source",
                        json_string(rec->usage_source != NULL ? rec->usage_source : "provider"));
    return o;
}

/* One log event per threshold crossing (the database raises each only once). */
void tg_usage_report_alerts(const char *log_id, const char *alerts_json)
{
    json_t *alerts = json_loads(alerts_json, 0, NULL);
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a) {
        const char *metric = json_string_value(json_object_get(a, "metric"));
        json_int_t used = json_integer_value(json_object_get(a, "used"));
        json_int_t limit = json_integer_value(json_object_get(a, "limit"));
        tg_log_warn(log_id, "quota alert: %s %s per %s crossed %lld%% (used %lld of %lld%s)",
                    json_string_value(json_object_get(a, "subject")), metric,
                    json_string_value(json_object_get(a, "window")),
                    (long long)json_integer_value(json_object_get(a, "threshold_pct")),
                    (long long)used, (long long)limit,
                    metric != NULL && strcmp(metric, "usd") == 0 ? " micro-dollars" : "");
        tg_shm_count_alert();
    }
    json_decref(alerts);
}

int tg_usage_parse_usd(const char *text, int64_t *micros)
{
    const char *p = text;
    bool negative = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return TG_ERROR;
    int64_t whole = 0, fraction = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (INT64_MAX / 1000000 - 9) / 10)
            return TG_ERROR;
        whole = whole * 10 + (*p - '0');
    }
    int digits = 0;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits == 6)
                return TG_ERROR; /* sub-micro-dollar amounts are not money here */
            fraction = fraction * 10 + (*p - '0');
        }
    }
    if (*p != '\0')
        return TG_ERROR;
    for (; digits < 6; digits++)
        fraction *= 10;
    int64_t value = whole * 1000000 + fraction;
    *micros = negative ? -value : value;
    return TG_OK;
}

int tg_usage_settle_record(const char *log_id, const struct tg_usage_record *rec,
                           int64_t *cost_micros)
{
    char *alerts = NULL;
    if (tg_db_settle(log_id, rec, cost_micros, &alerts) != TG_OK)
        return TG_ERROR;
    if (alerts != NULL)
        tg_usage_report_alerts(log_id, alerts);
    free(alerts);
    return TG_OK;
}

int tg_usage_settle(struct tg_request *r)
{
    struct tg_usage_record rec;
    fill_record(r, &rec);
    r->reserved = false;     /* settle consumes the reservation, whatever happens next */
    tg_journal_end(r, &rec); /* on disk before anything else: a kill -9 from here loses nothing */
    int64_t cost = 0;
    switch (tg_settle_usage(r->request_id, &rec, r->journal_slot, &cost)) {
    case TG_SETTLED: r->cost_micros = cost; return TG_OK;
    case TG_SETTLE_SPOOLED:
    case TG_SETTLE_PENDING:
    case TG_SETTLE_REFUSED: return TG_OK; /* durable, logged; no cost to show */
    case TG_SETTLE_LOST: break;
    }
    return TG_ERROR;
}
