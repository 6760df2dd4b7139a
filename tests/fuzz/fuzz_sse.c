/*
 * fuzz_sse.c — the SSE decoder (fcgi/sse.c) over any bytes, fed in pieces cut
 * where the input's first byte says, so that lines and CRLFs split across
 * feeds are covered. Every event delivered must be NUL-terminated at its length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sse.h"

static int on_event(void *ctx, const char *event, const char *data, size_t data_len)
{
    size_t *events = ctx;
    if (strlen(event) >= 64 || data[data_len] != '\0')
        abort();
    (*events)++;
    return TG_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    size_t events = 0;
    struct tg_sse_parser p;
    tg_sse_parser_init(&p, 4096, on_event, &events);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (tg_sse_feed(&p, (const char *)data + off, n) != TG_OK)
            break;
    }
    tg_sse_parser_release(&p);
    return 0;
}
