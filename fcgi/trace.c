/*
 * trace.c — traceparent parsing and propagation.
 */
#include "trace.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

int tg_trace_parse(const char *h, struct tg_trace *trace)
{
    /* version "-" trace-id "-" parent-id "-" flags; a future version may append fields */
    if (h == NULL || strlen(h) < TG_TRACEPARENT_LEN)
        return TG_DECLINED;
    bool shape = h[2] == '-' && h[35] == '-' && h[52] == '-' && is_lower_hex(h, 2) &&
                 is_lower_hex(h + 3, 32) && is_lower_hex(h + 36, 16) && is_lower_hex(h + 53, 2);
    if (!shape || strncmp(h, "ff", 2) == 0 || all_zero(h + 3, 32) || all_zero(h + 36, 16))
        return TG_DECLINED;
    bool v00 = strncmp(h, "00", 2) == 0;
    if ((v00 && h[55] != '\0') || (!v00 && h[55] != '\0' && h[55] != '-'))
        return TG_DECLINED;
    memcpy(trace->trace_id, h + 3, 32);
    trace->trace_id[32] = '\0';
    memcpy(trace->parent_id, h + 36, 16);
    trace->parent_id[16] = '\0';
    memcpy(trace->flags, h + 53, 2);
    trace->flags[2] = '\0';
    return TG_OK;
}

/* n random bytes as 2n hex digits, never all zero (an all-zero id is invalid). */
static void random_id(char *out, size_t n_bytes)
{
    unsigned char raw[16] = {0};
    if (tg_crypto_random(raw, n_bytes) != TG_OK)
        memset(raw, 0, sizeof(raw));
    tg_crypto_hex(raw, n_bytes, out);
    if (all_zero(out, 2 * n_bytes))
        out[2 * n_bytes - 1] = '1';
}

void tg_trace_begin(struct tg_trace *t, const char *traceparent)
{
    if (tg_trace_parse(traceparent, t) != TG_OK) {
        random_id(t->trace_id, 16);
        t->parent_id[0] = '\0';
        snprintf(t->flags, sizeof(t->flags), "01"); /* sampled, unless otel's ratio says not */
    }
    random_id(t->span_id, 8);
    snprintf(t->traceparent, sizeof(t->traceparent), "00-%s-%s-%s", t->trace_id, t->span_id,
             t->flags);
}

void tg_trace_set_sampled(struct tg_trace *t, bool sampled)
{
    int flags = (tg_crypto_hex_value(t->flags[0]) << 4) | tg_crypto_hex_value(t->flags[1]);
    flags = sampled ? flags | 1 : flags & ~1;
    snprintf(t->flags, sizeof(t->flags), "%02x", (unsigned)flags & 0xff);
    snprintf(t->traceparent, sizeof(t->traceparent), "00-%s-%s-%s", t->trace_id, t->span_id,
             t->flags);
}
