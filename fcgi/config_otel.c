/*
 * config_otel.c — the config's "otel" section (config_otel.h).
 */
#include "config_otel.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_load.h"

/* otel.c sends them in an array of TG_OTEL_MAX_HEADERS (+ its own) */
_Static_assert(TG_OTEL_MAX_HEADERS >= TG_CONFIG_MAX_HEADERS, "otel.c's header array too small");

static void load_headers(struct tg_config_loader *ld, json_t *otel, struct tg_otel_config *c)
{
    tg_config_load_headers(ld, otel, "otel", NULL, 0, &c->headers, &c->n_headers);
}

/* The collector's URL is the config's own text: "$NAME" is not read from the environment. */
static void load_endpoint(struct tg_config_loader *ld, json_t *otel, struct tg_otel_config *c)
{
    json_t *v = json_object_get(otel, "endpoint");
    const char *s = json_string_value(v);
    if (v == NULL) {
        tg_config_load_fail(ld, "otel.endpoint", "is required");
        return;
    }
    if (s == NULL || !tg_config_load_is_http_url(s) || strlen(s) > 2048) {
        tg_config_load_fail(ld, "otel.endpoint",
                            "must be an http(s) URL such as \"http://127.0.0.1:4318/v1/traces\"");
        return;
    }
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            tg_config_load_fail(ld, "otel.endpoint", "must not hold spaces or control characters");
            return;
        }
    c->endpoint = tg_config_load_strdup(ld, s);
}

static void load_ratio(struct tg_config_loader *ld, json_t *otel, struct tg_otel_config *c)
{
    json_t *v = json_object_get(otel, "sample_ratio");
    c->sample_ratio = 1.0;
    if (v != NULL) {
        if (!json_is_number(v) || json_number_value(v) < 0.0 || json_number_value(v) > 1.0) {
            tg_config_load_fail(ld, "otel.sample_ratio", "must be a number from 0 to 1");
            return;
        }
        c->sample_ratio = json_number_value(v);
    }
    /* a trace is kept when its 56 random bits are below the threshold (otel_span.c) */
    c->sample_threshold = (uint64_t)(c->sample_ratio * (double)(UINT64_C(1) << 56));
}

static void load_flag(struct tg_config_loader *ld, json_t *otel, struct tg_otel_config *c)
{
    json_t *v = json_object_get(otel, "always_sample_errors");
    c->always_sample_errors = true;
    if (v == NULL)
        return;
    if (!json_is_boolean(v))
        tg_config_load_fail(ld, "otel.always_sample_errors", "must be true or false");
    else
        c->always_sample_errors = json_is_true(v);
}

void tg_config_otel_load(struct tg_config_loader *ld, json_t *root, struct tg_otel_config *c)
{
    json_t *otel = tg_config_load_object(ld, root, "otel", "", false);
    if (otel == NULL || ld->failed)
        return;
    static const char *const known[] = {
        "endpoint",    "headers",     "service_name", "sample_ratio", "always_sample_errors",
        "queue_spans", "batch_spans", "flush_ms",     "timeout_ms",   NULL};
    tg_config_load_keys(ld, otel, "otel", known);
    load_endpoint(ld, otel, c);
    load_headers(ld, otel, c);
    c->service_name =
        (char *)tg_config_load_string(ld, otel, "service_name", "otel", "tollgate", false);
    if (c->service_name != NULL && (c->service_name[0] == '\0' || strlen(c->service_name) > 128 ||
                                    !tg_config_load_printable(c->service_name)))
        tg_config_load_fail(ld, "otel.service_name", "must be 1 to 128 printable characters");
    load_ratio(ld, otel, c);
    load_flag(ld, otel, c);
    c->queue_spans = tg_config_load_integer(ld, otel, "queue_spans", "otel", 2048, 16, 1000000);
    c->batch_spans = tg_config_load_integer(ld, otel, "batch_spans", "otel", 256, 1, 10000);
    if (!ld->failed && c->batch_spans > c->queue_spans)
        tg_config_load_fail(ld, "otel.batch_spans", "must not exceed otel.queue_spans (%ld)",
                            c->queue_spans);
    c->flush_ms = tg_config_load_integer(ld, otel, "flush_ms", "otel", 1000, 10, 60000);
    c->timeout_ms = tg_config_load_integer(ld, otel, "timeout_ms", "otel", 2000, 10, 60000);
}

void tg_config_otel_release(struct tg_otel_config *c)
{
    free(c->endpoint);
    for (size_t i = 0; i < c->n_headers; i++)
        free(c->headers[i]);
    free(c->headers);
    free(c->service_name);
    memset(c, 0, sizeof(*c));
}
