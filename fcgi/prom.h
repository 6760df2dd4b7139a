/*
 * prom.h — the pieces of Prometheus' text exposition every /metrics writer
 * shares: label values escaped, seconds written exactly, and the histograms'
 * buckets (one set of bounds for every histogram of the host), bucketed and
 * written.
 */
#ifndef TG_PROM_H
#define TG_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "shm.h"

struct tg_textbuf;

/*
 * value with '\\', '"' and newlines escaped into out (size bytes, always
 * NUL-terminated when size > 0, cut when short); returns the length it needs.
 */
size_t tg_prom_escape_label(const char *value, char *out, size_t size);

/* Formats microseconds as seconds with six decimals ("0.001234"), exactly. */
void tg_prom_format_seconds(uint64_t micros, char *out, size_t size);

/*
 * The histogram bucket of an observation: the first whose upper bound is >=
 * micros (Prometheus' "le"), TG_SHM_HISTOGRAM_BUCKETS - 1 (+Inf) past the last.
 */
size_t tg_prom_bucket(int64_t micros);

/* h's lines under name: name_bucket{le="..."} (cumulative), name_sum, name_count. */
void tg_prom_histogram(struct tg_textbuf *t, const char *name, const struct tg_shm_histogram *h);

#endif
