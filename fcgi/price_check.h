/*
 * price_check.h — "a model the config serves must have a price": which of the
 * config's models (canonical names: usage rows and prices use them) have no
 * price in force now (tollgate.unpriced_models, sql/009_prices.sql).
 * tollgatectl's `price check` and `migrate` ask it, and so does the worker once
 * at start; reserve refuses the requests of an unpriced model either way.
 *
 * Not the pricing itself (the SQL price functions), nor the refusal (reserve).
 */
#ifndef TG_PRICE_CHECK_H
#define TG_PRICE_CHECK_H

#include <stddef.h>

#include "common.h"

struct tg_config;

/*
 * The statement: its one parameter is a JSON array of model names (from
 * tg_price_check_models_json*); it answers one row (one column, the name) per
 * model without a price in force at tollgate.clock(), in the array's order.
 */
extern const char tg_price_check_sql[];

/* The canonical names of config's models as a JSON array; malloc'd, the caller
 * frees it. NULL when out of memory. */
char *tg_price_check_models_json(const struct tg_config *config);

/*
 * The same from the config file at path: the keys of its "models" object, read
 * without loading or checking the rest (tollgatectl needs no provider secret
 * for it). malloc'd, the caller frees it. NULL with the reason in err when the
 * file cannot be read or parsed, or has no "models" object with at least one
 * model.
 */
char *tg_price_check_models_json_file(const char *path, char *err, size_t err_size);

/*
 * The worker's check at start, on the process's pool (db.h, set up before):
 * one statement; logs an error naming each unpriced model of config. Returns
 * TG_OK when every model has a price, TG_DECLINED when some have none,
 * TG_ERROR when the database did not answer (logged as a warning: the check
 * is skipped, the worker starts all the same).
 */
int tg_price_check_log(const struct tg_config *config);

#endif
