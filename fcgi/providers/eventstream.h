/*
 * eventstream.h — AWS's binary event-stream framing
 * (application/vnd.amazon.eventstream), which Bedrock's ConverseStream and
 * InvokeModelWithResponseStream answer with: an incremental decoder (bytes in
 * as they arrive, split anywhere; whole, verified messages out through a
 * callback) and an encoder (for tests and the mock provider).
 *
 * A message is, big-endian throughout:
 *
 *     total length    u32  the whole message, these 4 bytes and the CRC included
 *     headers length  u32
 *     prelude CRC     u32  CRC-32 of the 8 bytes before it
 *     headers         a sequence of: name length u8 (1..255), name, type u8, value
 *     payload         total - headers - 16 bytes, opaque here
 *     message CRC     u32  CRC-32 of everything before it
 *
 * Header value types: 0 true and 1 false (no bytes), 2 byte (1), 3 short (2),
 * 4 integer (4), 5 long (8), 6 byte array and 7 string (u16 length, then the
 * bytes), 8 timestamp (8, milliseconds since the epoch), 9 UUID (16).
 *
 * CRC-32 here is the IEEE 802.3 / zlib one (reflected polynomial 0xEDB88320),
 * not frame.c's CRC-32C.
 *
 * Not here: what an event means (translate_bedrock.c), JSON, the HTTP layer.
 */
#ifndef TG_EVENTSTREAM_H
#define TG_EVENTSTREAM_H

#include "common.h"

#define TG_EVENTSTREAM_PRELUDE_LEN 12
#define TG_EVENTSTREAM_MIN_LEN 16                          /* prelude + message CRC */
#define TG_EVENTSTREAM_DEFAULT_MAX_LEN (16u * 1024 * 1024) /* one message, all included */
#define TG_EVENTSTREAM_MAX_HEADERS_LEN (128u * 1024)       /* the headers of one message */
#define TG_EVENTSTREAM_MAX_HEADERS 64                      /* headers in one message */

enum tg_eventstream_type {
    TG_EVENTSTREAM_TRUE = 0,
    TG_EVENTSTREAM_FALSE = 1,
    TG_EVENTSTREAM_BYTE = 2,
    TG_EVENTSTREAM_SHORT = 3,
    TG_EVENTSTREAM_INTEGER = 4,
    TG_EVENTSTREAM_LONG = 5,
    TG_EVENTSTREAM_BYTES = 6,
    TG_EVENTSTREAM_STRING = 7,
    TG_EVENTSTREAM_TIMESTAMP = 8,
    TG_EVENTSTREAM_UUID = 9,
};

/*
 * One header. Decoded, its pointers are borrowed from the message (name and
 * string values are not NUL-terminated); to encode, the caller fills it.
 */
struct tg_eventstream_header {
    const char *name;
    size_t name_len;
    enum tg_eventstream_type type;
    int64_t integer; /* byte, short, integer, long, timestamp (sign-extended); bools 1/0 */
    const unsigned char *bytes; /* byte array, string, UUID (16 bytes) */
    size_t bytes_len;
};

/* A verified message, as the callback sees it. Everything is borrowed for the call only. */
struct tg_eventstream_message {
    const char *message_type;  /* ":message-type": "event", "exception", "error"; "" if absent */
    const char *event_type;    /* ":event-type", or ":exception-type" for an exception; or "" */
    const char *content_type;  /* ":content-type"; or "" */
    const char *error_code;    /* ":error-code" of a message of type "error"; or "" */
    const char *error_message; /* ":error-message" (cut to 1023 bytes); or "" */
    const unsigned char *payload;
    size_t payload_len;
    const unsigned char *headers; /* the raw header block, for tg_eventstream_header_next */
    size_t headers_len;
};

/* Called once per message. TG_OK to go on; anything else stops the feed and is returned by it. */
typedef int (*tg_eventstream_fn)(void *ctx, const struct tg_eventstream_message *msg);

struct tg_eventstream_decoder {
    tg_eventstream_fn on_message;
    void *ctx;
    size_t max_len;
    unsigned char *buf; /* an unfinished message: buf[0..len) */
    size_t len, cap;
    size_t need;       /* its total length once its prelude was read; 0 before */
    bool failed;       /* a framing error: every later feed fails */
    uint64_t messages; /* messages delivered */
    char error[256];   /* the framing error, PostgreSQL style; "" when none */
    /* the well-known string headers of the message being delivered */
    char message_type[32], event_type[128], content_type[128], error_code[128];
    char error_message[1024];
};

/*
 * Prepares d. max_len caps one message's total length (0: the default,
 * TG_EVENTSTREAM_DEFAULT_MAX_LEN); its buffer grows to the longest message seen.
 */
void tg_eventstream_decoder_init(struct tg_eventstream_decoder *d, size_t max_len,
                                 tg_eventstream_fn fn, void *ctx);

/* Frees d's buffer (not d). */
void tg_eventstream_decoder_release(struct tg_eventstream_decoder *d);

/*
 * Feeds len bytes. Each message completed by them is verified and delivered in
 * order. Returns TG_OK; TG_ERROR on a framing error (d->error says which: a
 * prelude or message CRC mismatch, a length under the minimum or over the cap,
 * headers that do not fit or do not parse, a well-known header that is not a
 * short string) or out of memory, after which every feed fails; or the
 * callback's non-TG_OK value, the rest of this feed then unread.
 */
int tg_eventstream_feed(struct tg_eventstream_decoder *d, const void *data, size_t len);

/*
 * At the end of the stream: TG_OK when it ended between messages; TG_ERROR
 * with d->error set when a message was cut short (or a framing error came before).
 */
int tg_eventstream_finish(struct tg_eventstream_decoder *d);

/*
 * Reads the header at *offset of a header block: TG_OK with *h filled
 * (borrowing from block) and *offset past it; TG_DECLINED at the end of the
 * block; TG_ERROR when it is malformed (an empty name, an unknown type, a value
 * past the end).
 */
int tg_eventstream_header_next(const unsigned char *block, size_t len, size_t *offset,
                               struct tg_eventstream_header *h);

/*
 * The first header named name (NUL-terminated) of a message: TG_OK with *h
 * filled, TG_DECLINED when there is none.
 */
int tg_eventstream_header_find(const struct tg_eventstream_message *msg, const char *name,
                               struct tg_eventstream_header *h);

/*
 * Encodes one message of the n headers given (names of 1..255 bytes; strings
 * and byte arrays up to 65535 bytes; UUIDs of 16) and payload into a new
 * malloc'd buffer (*out, *out_len; the caller frees it). TG_ERROR, with
 * nothing allocated, for a header that cannot be encoded, a message over
 * TG_EVENTSTREAM_DEFAULT_MAX_LEN, or out of memory.
 */
int tg_eventstream_encode(const struct tg_eventstream_header *headers, size_t n,
                          const void *payload, size_t payload_len, unsigned char **out,
                          size_t *out_len);

/*
 * Encodes a message as AWS's JSON services send one: ":message-type" =
 * message_type, then ":event-type" = type for an "event" or ":exception-type"
 * = type for an "exception", and ":content-type" = "application/json". As
 * tg_eventstream_encode otherwise.
 */
int tg_eventstream_encode_json(const char *message_type, const char *type, const char *json,
                               size_t json_len, unsigned char **out, size_t *out_len);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of data. */
uint32_t tg_eventstream_crc32(const void *data, size_t len);

#endif
