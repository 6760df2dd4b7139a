/*
 * prices.c — tollgatectl price set and price check, and the check migrate runs
 * after it (ops.c). A price is integer micro-dollars per million tokens (per
 * search for web search), in force from a time on (tollgate.price_set,
 * sql/009_prices.sql); which of the config's models have none in force is
 * price_check.c's statement. price list is a list command (main.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "db.h"
#include "price_check.h"

// clang-format off
/* price set: the row as stored (a null 1-hour rate is the cache-write rate) */
static const char price_set_sql[] =
    "SELECT p.model, " SQL_UTC("p.effective_from") ", p.input_micros_per_mtok,"
    " p.output_micros_per_mtok, p.cache_read_micros_per_mtok,"
    " p.cache_write_micros_per_mtok,"
    " coalesce(p.cache_write_1h_micros_per_mtok, p.cache_write_micros_per_mtok),"
    " p.web_search_micros_per_use, p.long_context_threshold_tokens,"
    " p.long_input_micros_per_mtok, p.long_output_micros_per_mtok,"
    " p.long_cache_read_micros_per_mtok, p.long_cache_write_micros_per_mtok,"
    " p.long_cache_write_1h_micros_per_mtok"
    " FROM jsonb_populate_record(NULL::tollgate.prices,"
    " tollgate.price_set($1, $2::timestamptz, $3::bigint, $4::bigint, $5::bigint,"
    " $6::bigint, $7, p_cache_write_1h => $8::bigint, p_web_search => $9::bigint,"
    " p_long_context_threshold => $10::bigint, p_long_input => $11::bigint,"
    " p_long_output => $12::bigint, p_long_cache_read => $13::bigint,"
    " p_long_cache_write => $14::bigint, p_long_cache_write_1h => $15::bigint)) p";
// clang-format on

/* The price set options after the base rates, in price_set_sql's parameter order ($8..$15). */
static const char *const price_options[] = {
    "--cache-write-1h", "--web-search",      "--long-context-threshold", "--long-input",
    "--long-output",    "--long-cache-read", "--long-cache-write",       "--long-cache-write-1h",
};

int tg_ctl_prices_set(struct tg_ctl *ctl, int argc, char **argv)
{
    static const char *const base[] = {"--input", "--output", "--cache-read", "--cache-write"};
    const char *params[15] = {argv[0], tg_ctl_option(argc, argv, "--from")};
    for (size_t i = 0; i < TG_ARRAY_LEN(base) + TG_ARRAY_LEN(price_options); i++) {
        const char *flag = i < 4 ? base[i] : price_options[i - 4];
        int64_t value;
        const char *text = tg_ctl_option(argc, argv, flag);
        bool threshold = strcmp(flag, "--long-context-threshold") == 0;
        const char *unit = threshold                           ? "prompt tokens, at least 1"
                           : strcmp(flag, "--web-search") == 0 ? "micro-dollars per search"
                                                               : "micro-dollars per million tokens";
        if (text != NULL && tg_ctl_parse_whole(text, threshold ? 1 : 0, INT64_MAX, &value) != TG_OK)
            return tg_ctl_die("invalid %s \"%s\" (%s, a whole number)", flag, text, unit);
        params[i < 4 ? 2 + i : 3 + i] = text; /* $7 is the actor */
    }
    params[6] = ctl->actor;
    if (params[2] == NULL || params[3] == NULL)
        return tg_ctl_usage(ctl->cmd, "price set needs --input and --output");
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, price_set_sql, 15, params, &rows) != TG_OK)
        return 1;
    const char **c = rows.cells;
    if (rows.n_rows == 0 || c[0] == NULL)
        return tg_ctl_die("could not set the price of \"%s\"", argv[0]);
    printf("price of \"%s\" from %s, in micro-dollars per million tokens: input %s, output %s,"
           " cache read %s, cache write %s, cache write 1h %s; web search %s micro-dollars per"
           " search",
           c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
    if (c[8] != NULL)
        printf("; above %s prompt tokens: input %s, output %s, cache read %s, cache write %s,"
               " cache write 1h %s",
               c[8], c[9], c[10], c[11], c[12], c[13]);
    printf("\n");
    return 0;
}

int tg_ctl_prices_unpriced(struct tg_ctl *ctl, struct tg_db_rows *rows)
{
    char *models = tg_price_check_models_json_file(ctl->config_path, ctl->err, sizeof(ctl->err));
    if (models == NULL)
        return tg_ctl_die("%s", ctl->err);
    const char *params[] = {models};
    int status = tg_ctl_query(ctl, tg_price_check_sql, 1, params, rows) == TG_OK ? 0 : 1;
    free(models);
    return status;
}

int tg_ctl_prices_check(struct tg_ctl *ctl, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct tg_db_rows rows;
    if (tg_ctl_prices_unpriced(ctl, &rows) != 0)
        return 1;
    if (rows.n_rows == 0) {
        printf("every model of the config has a price in force\n");
        return 0;
    }
    for (int i = 0; i < rows.n_rows; i++)
        printf("%s\n", rows.cells[i]);
    return tg_ctl_die("%d of the config's models %s no price in force: their requests are refused",
                      rows.n_rows, rows.n_rows == 1 ? "has" : "have");
}
