/*
 * prom.c — Prometheus exposition pieces shared by the /metrics writers (see
 * prom.h).
 */
#include "prom.h"

#include <inttypes.h>
#include <stdio.h>

#include "textbuf.h"

/* The finite upper bounds of every histogram, from 5 ms to a minute. */
static const struct {
    int64_t micros;
    const char *le;
} bounds[TG_SHM_HISTOGRAM_BUCKETS - 1] = {
    {5000, "0.005"},  {10000, "0.01"},  {25000, "0.025"}, {50000, "0.05"},  {100000, "0.1"},
    {250000, "0.25"}, {500000, "0.5"},  {1000000, "1"},   {2500000, "2.5"}, {5000000, "5"},
    {10000000, "10"}, {30000000, "30"}, {60000000, "60"},
};

size_t tg_prom_escape_label(const char *value, char *out, size_t size)
{
    size_t need = 0;
    for (const char *p = value; *p != '\0'; p++) {
        char plain[2] = {*p, '\0'};
        const char *piece = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : plain;
        for (const char *q = piece; *q != '\0'; q++, need++)
            if (need + 1 < size)
                out[need] = *q;
    }
    if (size > 0)
        out[need < size ? need : size - 1] = '\0';
    return need;
}

void tg_prom_format_seconds(uint64_t micros, char *out, size_t size)
{
    snprintf(out, size, "%" PRIu64 ".%06" PRIu64, micros / 1000000, micros % 1000000);
}

size_t tg_prom_bucket(int64_t micros)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(bounds); i++)
        if (micros <= bounds[i].micros)
            return i;
    return TG_SHM_HISTOGRAM_BUCKETS - 1;
}

void tg_prom_histogram(struct tg_textbuf *t, const char *name, const struct tg_shm_histogram *h)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i < TG_SHM_HISTOGRAM_BUCKETS; i++) {
        cumulative += h->buckets[i];
        tg_textbuf_put(t, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name,
                       i < TG_ARRAY_LEN(bounds) ? bounds[i].le : "+Inf", cumulative);
    }
    char sum[32];
    tg_prom_format_seconds(h->sum_micros, sum, sizeof(sum));
    tg_textbuf_put(t, "%s_sum %s\n%s_count %" PRIu64 "\n", name, sum, name, cumulative);
}
