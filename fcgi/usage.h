/*
 * usage.h — token usage of one request and its settlement: the usage row that
 * every request which reached a provider owes, priced in PostgreSQL.
 */
#ifndef TG_USAGE_H
#define TG_USAGE_H

#include "common.h"

struct tg_request;

/* Token usage reported by the provider. */
struct tg_usage {
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cache_read_tokens;
    int64_t cache_write_tokens;
};

int64_t tg_usage_total(const struct tg_usage *u);

/* Formats micro-dollars as dollars with six decimals ("0.001234"). */
void tg_usage_format_usd(int64_t micros, char *out, size_t out_size);

/*
 * Settles a request that reached the provider: writes its usage row (idempotent
 * by request id) and sets r->cost_micros. Runs even when the client went away.
 * Returns TG_OK, or TG_ERROR when the row could not be written (logged).
 */
int tg_usage_settle(struct tg_request *r);

#endif
