/*
 * price.h — the prices this worker keeps in memory, to price a reply for its
 * x-tollgate-cost-usd header when the usage row could not be settled before
 * the reply (PostgreSQL down: the row waits in the spool).
 *
 * The usage row is always priced by PostgreSQL (tollgate.price_micros); this
 * module applies the same rule with the same integer arithmetic, to the same
 * price rows, so the two agree to the micro-dollar — except for a price set
 * after the cache last loaded (it reloads every sweep, and at once for a model
 * it does not know). It never decides what anyone is billed.
 */
#ifndef TG_PRICE_H
#define TG_PRICE_H

#include "common.h"
#include "usage.h"

/* One row of tollgate.prices: rates in micro-dollars per million tokens; -1: null. */
struct tg_price {
    char model[128];
    int64_t effective_from_ms; /* Unix milliseconds */
    int64_t input, output, cache_read, cache_write, cache_write_1h;
    int64_t long_threshold; /* -1: no long-context rates */
    int64_t long_input, long_output, long_cache_read, long_cache_write, long_cache_write_1h;
    int64_t web_search; /* micro-dollars per search */
};

/*
 * The cost of usage u at price p, as tollgate.price_micros computes it: every
 * token kind at its rate (all at the long-context rates when input + cache
 * read + cache write passes the threshold; 1-hour writes at the 5-minute rate
 * when no 1-hour rate is set), summed, divided by a million and rounded half
 * up once, plus the web searches' fees. Exact for any count up to 2^31.
 */
int64_t tg_price_compute(const struct tg_price *p, const struct tg_usage *u);

/* (Re)loads every price row from PostgreSQL. TG_ERROR: the database is unavailable. */
int tg_price_refresh(void);

/*
 * The cost of u for model at wall-clock time at_ms (the request's start), from
 * the price in force then. TG_OK with *cost_micros; TG_DECLINED when no price
 * is known for it (even after reloading once).
 */
int tg_price_cost(const char *model, int64_t at_ms, const struct tg_usage *u, int64_t *cost_micros);

#endif
