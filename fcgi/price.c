/*
 * price.c — the worker's copy of tollgate.prices (see price.h).
 *
 * The rows are few (a price per model and version): they are kept in one array,
 * replaced whole under a lock at each reload, and searched linearly.
 */
#include "price.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

#define MAX_PRICES 4096

static struct {
    pthread_mutex_t mu;
    struct tg_price *rows;
    size_t n;
    int64_t loaded_at_ms;
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static __int128 rate_sum(int64_t in, int64_t out, int64_t cr, int64_t cw5m, int64_t cw1h,
                         int64_t r_in, int64_t r_out, int64_t r_cr, int64_t r_cw5m, int64_t r_cw1h)
{
    return (__int128)in * r_in + (__int128)out * r_out + (__int128)cr * r_cr +
           (__int128)cw5m * r_cw5m + (__int128)cw1h * r_cw1h;
}

int64_t tg_price_compute(const struct tg_price *p, const struct tg_usage *u)
{
    int64_t cw = u->cache_write_tokens > u->cache_write_1h_tokens ? u->cache_write_tokens
                                                                  : u->cache_write_1h_tokens;
    int64_t cw1h = u->cache_write_1h_tokens;
    __int128 sum;
    if (p->long_threshold >= 0 &&
        (__int128)u->input_tokens + u->cache_read_tokens + cw > p->long_threshold) {
        sum = rate_sum(u->input_tokens, u->output_tokens, u->cache_read_tokens, cw - cw1h, cw1h,
                       p->long_input, p->long_output, p->long_cache_read, p->long_cache_write,
                       p->long_cache_write_1h);
    } else {
        sum = rate_sum(u->input_tokens, u->output_tokens, u->cache_read_tokens, cw - cw1h, cw1h,
                       p->input, p->output, p->cache_read, p->cache_write,
                       p->cache_write_1h >= 0 ? p->cache_write_1h : p->cache_write);
    }
    /* numeric's round(): half away from zero, and every amount here is >= 0 */
    __int128 micros = (sum + 500000) / 1000000;
    return (int64_t)(micros + (__int128)u->web_search_requests * p->web_search);
}

/* ---- loading ---- */

static int64_t cell_int(const char *cell)
{
    return cell != NULL ? strtoll(cell, NULL, 10) : -1;
}

struct load {
    struct tg_price *rows;
    size_t n, cap;
    bool header_seen;
};

static int add_row(void *arg, int n_cols, const char *const *cells)
{
    struct load *load = arg;
    if (!load->header_seen) { /* the first call names the columns */
        load->header_seen = true;
        return TG_OK;
    }
    if (n_cols != 14 || load->n >= MAX_PRICES || cells[0] == NULL)
        return TG_ERROR;
    if (load->n == load->cap) {
        size_t cap = load->cap == 0 ? 64 : load->cap * 2;
        struct tg_price *grown = realloc(load->rows, cap * sizeof(*grown));
        if (grown == NULL)
            return TG_ERROR;
        load->rows = grown;
        load->cap = cap;
    }
    struct tg_price *p = &load->rows[load->n++];
    snprintf(p->model, sizeof(p->model), "%s", cells[0]);
    int64_t *fields[] = {
        &p->effective_from_ms, &p->input,           &p->output,           &p->cache_read,
        &p->cache_write,       &p->cache_write_1h,  &p->long_threshold,   &p->long_input,
        &p->long_output,       &p->long_cache_read, &p->long_cache_write, &p->long_cache_write_1h,
        &p->web_search};
    for (int i = 0; i < 13; i++)
        *fields[i] = cell_int(cells[i + 1]);
    return TG_OK;
}

int tg_price_refresh(void)
{
    struct load load = {0};
    if (tg_db_each_price(add_row, &load) != TG_OK) {
        free(load.rows);
        return TG_ERROR;
    }
    pthread_mutex_lock(&cache.mu);
    free(cache.rows);
    cache.rows = load.rows;
    cache.n = load.n;
    cache.loaded_at_ms = tg_now_ms();
    pthread_mutex_unlock(&cache.mu);
    return TG_OK;
}

static bool lookup(const char *model, int64_t at_ms, struct tg_price *out)
{
    bool found = false;
    pthread_mutex_lock(&cache.mu);
    for (size_t i = 0; i < cache.n; i++) {
        const struct tg_price *p = &cache.rows[i];
        if (strcmp(p->model, model) != 0 || p->effective_from_ms > at_ms)
            continue;
        if (!found || p->effective_from_ms > out->effective_from_ms) {
            *out = *p;
            found = true;
        }
    }
    pthread_mutex_unlock(&cache.mu);
    return found;
}

int tg_price_cost(const char *model, int64_t at_ms, const struct tg_usage *u, int64_t *cost_micros)
{
    struct tg_price p;
    if (!lookup(model, at_ms, &p)) {
        /* a model priced since the last load: load again, at most once a second */
        pthread_mutex_lock(&cache.mu);
        bool stale = tg_now_ms() - cache.loaded_at_ms > 1000;
        pthread_mutex_unlock(&cache.mu);
        if (!stale || tg_price_refresh() != TG_OK || !lookup(model, at_ms, &p))
            return TG_DECLINED;
    }
    *cost_micros = tg_price_compute(&p, u);
    return TG_OK;
}
