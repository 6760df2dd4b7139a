/*
 * usage.h — token usage of one request and its settlement: the usage row that
 * every request which reached a provider owes, priced in PostgreSQL.
 */
#ifndef TG_USAGE_H
#define TG_USAGE_H

#include "common.h"

struct tg_request;
struct json_t;

/* Token usage reported by the provider. */
struct tg_usage {
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cache_read_tokens;
    int64_t cache_write_tokens;    /* every cache write, at whichever rate */
    int64_t cache_write_1h_tokens; /* the part of cache_write_tokens at the 1-hour rate */
    int64_t web_search_requests;   /* server tool uses billed per use */
};

/* One usage row as settled: what tollgate.settle takes. Strings are borrowed. */
struct tg_usage_record {
    const char *request_id; /* uuid */
    const char *ts;         /* ISO 8601, when the request started */
    int64_t api_key_id;     /* 0: none */
    const char *user_id;
    const char *group_id;
    const char *provider;
    const char *model;
    struct tg_usage usage;
    int http_status;
    int64_t latency_ms;
    int64_t upstream_ms;
    bool stream;
    const char *outcome;
    const char *usage_source; /* "provider", "estimated" or "reserved_bound"; NULL: provider */
    const char *guard_rule;   /* the guardrail that blocked the request; NULL: none */
    bool has_ttft;            /* a stream whose first byte was relayed: ttft_ms holds */
    int64_t ttft_ms;          /* from the request's start to that byte (time to first token) */
};

/* The longest guard_rule, in bytes: guard.c's longest rule name, the usage column's check. */
#define TG_USAGE_GUARD_RULE_MAX 64

int64_t tg_usage_total(const struct tg_usage *u);

/* Formats micro-dollars as dollars with six decimals ("0.001234"). */
void tg_usage_format_usd(int64_t micros, char *out, size_t out_size);

/*
 * Parses dollars ("500", "500.00", "-0.5", "+12.345678") into micro-dollars
 * exactly, with integer arithmetic only. TG_ERROR for anything else (more than
 * six decimals, junk, overflow).
 */
int tg_usage_parse_usd(const char *text, int64_t *micros);

/*
 * rec as the JSON object tollgate.settle_batch reads, the spool and the journal
 * keep (a new reference, NULL when out of memory). Strings are cut to max bytes
 * at a character boundary, bytes that are not UTF-8 written as "\xHH" (SIZE_MAX:
 * whole, and NULL for a string that is not UTF-8). "guard_rule" and "ttft_ms"
 * are there only when rec has them, so a record without them reads as the
 * earlier versions' did; readers take a missing "guard_rule" as NULL and a
 * missing "ttft_ms" as none (has_ttft false).
 */
struct json_t *tg_usage_record_json(const struct tg_usage_record *rec, size_t max);

/* s as such a JSON string (cut to max bytes, "\xHH" for bytes not UTF-8); null for NULL. */
struct json_t *tg_usage_json_string(const char *s, size_t max);

/* Logs each threshold alert of a settle's answer (a JSON array), once. */
void tg_usage_report_alerts(const char *log_id, const char *alerts_json);

/*
 * Settles one record (tollgate.settle) and logs the threshold alerts it raised.
 * Used by the spool's replay. TG_ERROR: database
 * unavailable (try later); TG_DECLINED: the database refused this record
 * (tg_db_settle_refusal says why; sending it again would fail the same way).
 */
int tg_usage_settle_record(const char *log_id, const struct tg_usage_record *rec,
                           int64_t *cost_micros);

/* The longest string field tg_usage_record_check accepts, in bytes. */
#define TG_USAGE_STRING_MAX 1024

/*
 * Checks rec before it is sent to the database or spooled: request_id a UUID,
 * ts present ("YYYY-MM-DD..."), token counts and web_search_requests in
 * 0..2147483647, cache_write_1h_tokens at most cache_write_tokens, api_key_id
 * not negative, http_status in 0..999, latency_ms and upstream_ms within a
 * PostgreSQL integer, ttft_ms (when has_ttft) in 0..INT32_MAX, usage_source NULL or one of its
 * three values, guard_rule NULL or 1 to TG_USAGE_GUARD_RULE_MAX bytes, every string valid UTF-8 of
 * at most TG_USAGE_STRING_MAX bytes. TG_OK, or TG_DECLINED with the first problem in why (names the
 * field; quotes numbers, never strings).
 */
int tg_usage_record_check(const struct tg_usage_record *rec, char *why, size_t why_size);

#endif
