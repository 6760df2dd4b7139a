/*
 * fuzz_translate_stream.c — a provider's SSE stream, as the gateway reads it:
 * the bytes go through the SSE decoder (fcgi/sse.c) and each event's data to
 * one stream translator, picked by the first byte: OpenAI chat chunks to pivot
 * events (translate_openai_stream.c's reader), Gemini chunks to pivot events
 * (translate_gemini_stream.c), or Anthropic (pivot) events to OpenAI chunks
 * (the writer). The pivot events a reader emits also go through the writer,
 * as for an OpenAI client of that provider.
 */
#include <jansson.h>
#include <string.h>

#include "common.h"
#include "fuzz.h"
#include "sse.h"
#include "translate_gemini_stream.h"
#include "translate_openai_stream.h"

struct run {
    int mode;
    struct tg_translate_openai_reader reader;
    struct tg_gemini_stream gemini;
    struct tg_translate_openai_writer writer;
};

static int write_out(void *ctx, const char *bytes, size_t len)
{
    size_t *sum = ctx;
    for (size_t i = 0; i < len; i++) /* reads the bytes: ASan checks the span */
        *sum += (unsigned char)bytes[i];
    return TG_OK;
}

static int emit(void *ctx, const char *event, json_t *data)
{
    struct run *run = ctx;
    tg_translate_openai_writer_feed(&run->writer, event, data);
    return TG_OK;
}

static int on_event(void *ctx, const char *event, const char *data, size_t data_len)
{
    struct run *run = ctx;
    if (run->mode == 1) {
        tg_gemini_stream_feed(&run->gemini, data, data_len); /* a bad chunk: the next one */
        return TG_OK;
    }
    if (run->mode == 0 && data_len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        tg_translate_openai_reader_done(&run->reader);
        return TG_OK;
    }
    json_t *doc = json_loadb(data, data_len, 0, NULL);
    if (doc == NULL)
        return TG_OK;
    if (run->mode == 0)
        tg_translate_openai_reader_feed(&run->reader, doc);
    else
        tg_translate_openai_writer_feed(&run->writer, event, doc);
    json_decref(doc);
    return TG_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct run run = {.mode = data[0] % 3};
    size_t sum = 0;
    if (tg_translate_openai_writer_init(&run.writer, "m", 1700000000, "chatcmpl-fuzz", data[0] & 4,
                                        write_out, &sum) != TG_OK)
        return 0;
    if (tg_translate_openai_reader_init(&run.reader, data[0] & 8 ? "m" : NULL, emit, &run) !=
        TG_OK) {
        tg_translate_openai_writer_release(&run.writer);
        return 0;
    }
    tg_gemini_stream_init(&run.gemini, "gemini-2.5-flash", "seed", emit, &run);
    struct tg_sse_parser p;
    tg_sse_parser_init(&p, 64 * 1024, on_event, &run);
    tg_sse_feed(&p, (const char *)data + 1, size - 1);
    tg_sse_parser_release(&p);
    if (run.mode == 0)
        tg_translate_openai_reader_done(&run.reader);
    else if (run.mode == 1)
        tg_gemini_stream_finish(&run.gemini);
    tg_translate_openai_writer_finish(&run.writer);
    tg_translate_openai_reader_release(&run.reader);
    tg_translate_openai_writer_release(&run.writer);
    return 0;
}
