/*
 * fuzz_eventstream.c — the AWS event-stream decoder (providers/eventstream.c)
 * and the Bedrock stream translation behind it (translate_bedrock_stream.c),
 * over any bytes fed in pieces of the size the first byte says. CRCs are what
 * most inputs fail on, so when the second byte is odd the harness first
 * rewrites the input's prelude and message CRCs to be right, message by
 * message, letting the fuzzer reach the header and payload parsing.
 */
#include <jansson.h>
#include <string.h>

#include "common.h"
#include "eventstream.h"
#include "fuzz.h"
#include "translate_bedrock.h"

static int emit(void *ctx, const char *event_name, json_t *data)
{
    (void)ctx;
    (void)event_name;
    (void)data; /* borrowed */
    return TG_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Makes each message's two CRCs right where its total length fits in what is left. */
static void fix_crcs(unsigned char *buf, size_t size)
{
    size_t off = 0;
    while (size - off >= 16) {
        unsigned char *m = buf + off;
        uint32_t total = be32(m);
        if (total < 16 || total > size - off)
            break;
        put_be32(m + 8, tg_eventstream_crc32(m, 8));
        put_be32(m + total - 4, tg_eventstream_crc32(m, total - 4));
        off += total;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = (size_t)data[0] * 3 + 1;
    bool fix = data[1] & 1;
    unsigned char *buf = malloc(size - 2 + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 2, size - 2);
    size -= 2;
    if (fix)
        fix_crcs(buf, size);

    struct tg_translate_bedrock_stream s;
    tg_translate_bedrock_stream_init(&s, "msg_fuzz", "claude-bedrock", emit, NULL);
    struct tg_eventstream_decoder d;
    tg_eventstream_decoder_init(&d, 64 * 1024, tg_translate_bedrock_stream_on_message, &s);
    int rc = TG_OK;
    for (size_t off = 0; off < size && rc == TG_OK; off += step)
        rc = tg_eventstream_feed(&d, buf + off, size - off < step ? size - off : step);
    if (rc == TG_OK)
        tg_eventstream_finish(&d);
    tg_translate_bedrock_stream_finish(&s);
    tg_eventstream_decoder_release(&d);
    free(buf);
    return 0;
}
