/*
 * config_otel.h — the config's "otel" section: where and how otel.c exports
 * the gateway's spans (OTLP/HTTP, JSON encoding). The collector's URL comes
 * only from here (never from a request or the environment); header values may
 * be "$NAME" (read from the environment: they often carry a collector's token)
 * and are masked by `config show`, never logged.
 *
 *   "otel": {"endpoint": "http://127.0.0.1:4318/v1/traces",
 *            "headers": {"authorization": "$OTEL_AUTH"},
 *            "service_name": "tollgate", "sample_ratio": 0.1,
 *            "always_sample_errors": true, "queue_spans": 2048,
 *            "batch_spans": 256, "flush_ms": 1000, "timeout_ms": 2000}
 *
 * Depends on nothing of the gateway but common.h, so that config.h can include
 * it: one way. Not here: sampling and spans (otel_span.c), the exporter (otel.c).
 */
#ifndef TG_CONFIG_OTEL_H
#define TG_CONFIG_OTEL_H

#include "common.h"

struct json_t; /* jansson's json_t */
struct tg_config_loader;

#define TG_OTEL_MAX_HEADERS 16

struct tg_otel_config {
    char *endpoint; /* the full OTLP/HTTP traces URL; NULL: tracing export is off */
    char **headers; /* "Name: value" lines sent with every export; owned */
    size_t n_headers;
    char *service_name;        /* the resource's service.name */
    double sample_ratio;       /* [0, 1]: share of traces without a client decision kept */
    uint64_t sample_threshold; /* sample_ratio scaled to 2^56 (otel_span.c compares) */
    bool always_sample_errors; /* a request that ended in an error is exported anyway */
    long queue_spans;          /* the bounded queue's capacity, in spans */
    long batch_spans;          /* spans per export at most */
    long flush_ms;             /* a partial batch waits at most this long */
    long timeout_ms;           /* one export's deadline, and shutdown's flush deadline */
};

/*
 * Loads the optional "otel" object of root (borrowed) into *out (zeroed by
 * the caller): an absent section leaves it off. A bad field fails the load
 * through ld naming it ("config: otel.sample_ratio: ...").
 */
void tg_config_otel_load(struct tg_config_loader *ld, struct json_t *root,
                         struct tg_otel_config *out);

/* Frees what *c holds (not c itself). */
void tg_config_otel_release(struct tg_otel_config *c);

#endif
