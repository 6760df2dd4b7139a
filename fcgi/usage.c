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
#include "jsafe.h"
#include "log.h"
#include "shm.h"

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

/*
 * s as a JSON string of at most max bytes of s (cut at a character boundary);
 * bytes that are not UTF-8 are written as "\xHH" text. JSON null for NULL.
 */
json_t *tg_usage_json_string(const char *s, size_t max)
{
    if (s == NULL)
        return json_null();
    size_t len = strnlen(s, max + 1);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--; /* do not cut a character in two */
    }
    json_t *text = json_stringn(s, len);
    if (text != NULL)
        return text;
    char *escaped = malloc(4 * len + 1);
    if (escaped == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80)
            escaped[at++] = (char)c;
        else
            at += (size_t)snprintf(escaped + at, 5, "\\x%02X", c);
    }
    text = json_stringn(escaped, at);
    free(escaped);
    return text;
}

json_t *tg_usage_record_json(const struct tg_usage_record *rec, size_t max)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    const struct {
        const char *key;
        const char *value;
    } strings[] = {
        {"request_id", rec->request_id}, {"ts", rec->ts},
        {"user_id", rec->user_id},       {"group_id", rec->group_id},
        {"provider", rec->provider},     {"model", rec->model},
        {"outcome", rec->outcome},       {"usage_source", rec->usage_source},
    };
    bool failed = false;
    for (size_t i = 0; i < TG_ARRAY_LEN(strings); i++) {
        const char *v = strings[i].value;
        /* whole strings are sent as they are: json_string refuses what is not UTF-8 */
        json_t *j = max != SIZE_MAX ? tg_usage_json_string(v, max)
                    : v != NULL     ? json_string(v)
                                    : json_null();
        failed |= json_object_set_new(o, strings[i].key, j) != 0;
    }
    const struct {
        const char *key;
        int64_t value;
    } numbers[] = {
        {"input_tokens", rec->usage.input_tokens},
        {"output_tokens", rec->usage.output_tokens},
        {"cache_read_tokens", rec->usage.cache_read_tokens},
        {"cache_write_tokens", rec->usage.cache_write_tokens},
        {"cache_write_1h_tokens", rec->usage.cache_write_1h_tokens},
        {"web_search_requests", rec->usage.web_search_requests},
        {"http_status", rec->http_status},
        {"latency_ms", rec->latency_ms},
        {"upstream_ms", rec->upstream_ms},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(numbers); i++)
        failed |= json_object_set_new(o, numbers[i].key, json_integer(numbers[i].value)) != 0;
    if (rec->guard_rule != NULL) { /* absent otherwise: the earlier versions' records */
        json_t *j = max != SIZE_MAX ? tg_usage_json_string(rec->guard_rule, max)
                                    : json_string(rec->guard_rule);
        failed |= json_object_set_new(o, "guard_rule", j) != 0;
    }
    if (rec->has_ttft) /* absent otherwise (not a stream, nothing came): the usage row's null */
        failed |= json_object_set_new(o, "ttft_ms", json_integer(rec->ttft_ms)) != 0;
    failed |= json_object_set_new(o, "stream", json_boolean(rec->stream)) != 0;
    /* no key (a JWT caller): null, so the usage row's api_key_id is null too */
    failed |= json_object_set_new(o, "api_key_id",
                                  rec->api_key_id != 0 ? json_integer(rec->api_key_id)
                                                       : json_null()) != 0;
    if (failed) {
        json_decref(o);
        return NULL;
    }
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
    char why[320];
    json_t *rows = json_array();
    /* out of memory is an error, never an empty batch (refused, dead-lettered) */
    char *text =
        rows != NULL && json_array_append_new(rows, tg_usage_record_json(rec, SIZE_MAX)) == 0
            ? tg_jsafe_dumps(rows, JSON_COMPACT)
            : NULL;
    json_decref(rows);
    if (text == NULL)
        return TG_ERROR;
    int rc = tg_db_settle_batch(log_id, text, 1, cost_micros, &alerts, why, sizeof(why), NULL);
    free(text);
    if (rc != TG_OK)
        return rc;
    if (alerts != NULL)
        tg_usage_report_alerts(log_id, alerts);
    free(alerts);
    return TG_OK;
}

static bool is_uuid(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return s[36] == '\0';
}

/* Well-formed UTF-8 (no overlongs, no surrogates) of at most max bytes. */
static bool utf8_within(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (p[n] != '\0') {
        if (n >= max)
            return false;
        unsigned char c = p[n];
        int more = c < 0x80                 ? 0
                   : c >= 0xC2 && c <= 0xDF ? 1
                   : (c & 0xF0) == 0xE0     ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3
                                            : -1;
        if (more < 0)
            return false;
        unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        for (int k = 1; k <= more; k++) {
            unsigned char b = p[n + (size_t)k];
            if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80)
                return false;
        }
        n += (size_t)more + 1;
    }
    return true;
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int tg_usage_record_check(const struct tg_usage_record *rec, char *why, size_t why_size)
{
    if (!is_uuid(rec->request_id)) {
        snprintf(why, why_size, "request_id is not a UUID");
        return TG_DECLINED;
    }
    const char *ts = rec->ts;
    if (ts == NULL || strlen(ts) < 10 || !digits(ts, 4) || ts[4] != '-' || !digits(ts + 5, 2) ||
        ts[7] != '-' || !digits(ts + 8, 2) || (ts[10] != '\0' && ts[10] != 'T' && ts[10] != ' ')) {
        snprintf(why, why_size, "ts is missing or not an ISO 8601 time");
        return TG_DECLINED;
    }
    const struct {
        const char *name;
        int64_t value;
    } counts[] = {
        {"input_tokens", rec->usage.input_tokens},
        {"output_tokens", rec->usage.output_tokens},
        {"cache_read_tokens", rec->usage.cache_read_tokens},
        {"cache_write_tokens", rec->usage.cache_write_tokens},
        {"cache_write_1h_tokens", rec->usage.cache_write_1h_tokens},
        {"web_search_requests", rec->usage.web_search_requests},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(counts); i++) {
        if (counts[i].value < 0 || counts[i].value > INT32_MAX) {
            snprintf(why, why_size, "%s %lld is out of range (0 to 2147483647)", counts[i].name,
                     (long long)counts[i].value);
            return TG_DECLINED;
        }
    }
    if (rec->usage.cache_write_1h_tokens > rec->usage.cache_write_tokens) {
        snprintf(why, why_size, "cache_write_1h_tokens %lld exceeds cache_write_tokens %lld",
                 (long long)rec->usage.cache_write_1h_tokens,
                 (long long)rec->usage.cache_write_tokens);
        return TG_DECLINED;
    }
    if (rec->api_key_id < 0 || rec->http_status < 0 || rec->http_status > 999 ||
        rec->latency_ms < INT32_MIN || rec->latency_ms > INT32_MAX ||
        rec->upstream_ms < INT32_MIN || rec->upstream_ms > INT32_MAX) {
        snprintf(why, why_size,
                 "api_key_id %lld, http_status %d, latency_ms %lld or upstream_ms %lld is out "
                 "of range",
                 (long long)rec->api_key_id, rec->http_status, (long long)rec->latency_ms,
                 (long long)rec->upstream_ms);
        return TG_DECLINED;
    }
    if (rec->has_ttft && (rec->ttft_ms < 0 || rec->ttft_ms > INT32_MAX)) {
        snprintf(why, why_size, "ttft_ms %lld is out of range (0 to 2147483647)",
                 (long long)rec->ttft_ms);
        return TG_DECLINED;
    }
    const char *source = rec->usage_source;
    if (source != NULL && strcmp(source, "provider") != 0 && strcmp(source, "estimated") != 0 &&
        strcmp(source, "reserved_bound") != 0) {
        snprintf(why, why_size, "usage_source is not provider, estimated or reserved_bound");
        return TG_DECLINED;
    }
    size_t rule_len = rec->guard_rule != NULL ? strlen(rec->guard_rule) : 1;
    if (rule_len == 0 || rule_len > TG_USAGE_GUARD_RULE_MAX) {
        snprintf(why, why_size, "guard_rule is not of 1 to %d bytes", TG_USAGE_GUARD_RULE_MAX);
        return TG_DECLINED;
    }
    const struct {
        const char *name;
        const char *value;
    } strings[] = {
        {"ts", rec->ts},
        {"user_id", rec->user_id},
        {"group_id", rec->group_id},
        {"provider", rec->provider},
        {"model", rec->model},
        {"outcome", rec->outcome},
        {"guard_rule", rec->guard_rule},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(strings); i++) {
        if (strings[i].value != NULL && !utf8_within(strings[i].value, TG_USAGE_STRING_MAX)) {
            snprintf(why, why_size, "%s is not UTF-8 of at most %d bytes", strings[i].name,
                     TG_USAGE_STRING_MAX);
            return TG_DECLINED;
        }
    }
    return TG_OK;
}
