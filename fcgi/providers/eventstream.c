/*
 * eventstream.c — AWS event-stream messages: an incremental, verifying decoder
 * and an encoder. A message whose bytes all arrived in one feed is read where it
 * lies; only a message split across feeds is copied into the decoder's buffer.
 */
#include "eventstream.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t len)
{
    uint32_t c = crc ^ 0xFFFFFFFFu;
    for (; len > 0; p++, len--)
        c = crc_table[(c ^ *p) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t tg_eventstream_crc32(const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    return crc32_update(0, data, len);
}

static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint64_t load_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The value's fixed size for a type, or -1 for the length-prefixed and unknown types. */
static int fixed_size(unsigned type)
{
    switch (type) {
    case TG_EVENTSTREAM_TRUE:
    case TG_EVENTSTREAM_FALSE: return 0;
    case TG_EVENTSTREAM_BYTE: return 1;
    case TG_EVENTSTREAM_SHORT: return 2;
    case TG_EVENTSTREAM_INTEGER: return 4;
    case TG_EVENTSTREAM_LONG:
    case TG_EVENTSTREAM_TIMESTAMP: return 8;
    case TG_EVENTSTREAM_UUID: return 16;
    default: return -1;
    }
}

int tg_eventstream_header_next(const unsigned char *block, size_t len, size_t *offset,
                               struct tg_eventstream_header *h)
{
    size_t at = *offset;
    if (at >= len)
        return TG_DECLINED;
    size_t name_len = block[at++];
    if (name_len == 0 || name_len > len - at || len - at - name_len < 1)
        return TG_ERROR;
    memset(h, 0, sizeof(*h));
    h->name = (const char *)block + at;
    h->name_len = name_len;
    at += name_len;
    unsigned type = block[at++];
    if (type > TG_EVENTSTREAM_UUID)
        return TG_ERROR;
    h->type = (enum tg_eventstream_type)type;
    int size = fixed_size(type);
    if (size < 0) { /* byte array or string: a u16 length first */
        if (len - at < 2)
            return TG_ERROR;
        size_t n = (size_t)load_be(block + at, 2);
        at += 2;
        if (n > len - at)
            return TG_ERROR;
        h->bytes = block + at;
        h->bytes_len = n;
        at += n;
    } else {
        if ((size_t)size > len - at)
            return TG_ERROR;
        if (type == TG_EVENTSTREAM_UUID) {
            h->bytes = block + at;
            h->bytes_len = 16;
        } else if (type == TG_EVENTSTREAM_TRUE) {
            h->integer = 1;
        } else if (size > 0) {
            /* two's complement of its width */
            uint64_t raw = load_be(block + at, (size_t)size);
            h->integer = size == 1   ? (int8_t)raw
                         : size == 2 ? (int16_t)raw
                         : size == 4 ? (int32_t)raw
                                     : (int64_t)raw;
        }
        at += (size_t)size;
    }
    *offset = at;
    return TG_OK;
}

int tg_eventstream_header_find(const struct tg_eventstream_message *msg, const char *name,
                               struct tg_eventstream_header *h)
{
    size_t at = 0, name_len = strlen(name);
    while (tg_eventstream_header_next(msg->headers, msg->headers_len, &at, h) == TG_OK)
        if (h->name_len == name_len && memcmp(h->name, name, name_len) == 0)
            return TG_OK;
    return TG_DECLINED;
}

void tg_eventstream_decoder_init(struct tg_eventstream_decoder *d, size_t max_len,
                                 tg_eventstream_fn fn, void *ctx)
{
    memset(d, 0, sizeof(*d));
    d->on_message = fn;
    d->ctx = ctx;
    d->max_len = max_len > 0 ? max_len : TG_EVENTSTREAM_DEFAULT_MAX_LEN;
    if (d->max_len > UINT32_MAX)
        d->max_len = UINT32_MAX;
}

void tg_eventstream_decoder_release(struct tg_eventstream_decoder *d)
{
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = d->need = 0;
}

static int fail(struct tg_eventstream_decoder *d, const char *fmt, ...) TG_PRINTF(2, 3);

static int fail(struct tg_eventstream_decoder *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof(d->error), fmt, ap);
    va_end(ap);
    d->failed = true;
    return TG_ERROR;
}

/* Checks the 12-byte prelude at p; *total gets the message's length. */
static int check_prelude(struct tg_eventstream_decoder *d, const unsigned char *p, size_t *total)
{
    uint32_t want = load_be32(p + 8), got = tg_eventstream_crc32(p, 8);
    if (want != got)
        return fail(d, "event stream prelude checksum mismatch: computed 0x%08x, received 0x%08x",
                    got, want);
    uint32_t length = load_be32(p), headers_len = load_be32(p + 4);
    if (length < TG_EVENTSTREAM_MIN_LEN)
        return fail(d, "event stream message length %u is below the minimum of %d", length,
                    TG_EVENTSTREAM_MIN_LEN);
    if (length > d->max_len)
        return fail(d, "event stream message length %u exceeds the limit of %zu", length,
                    d->max_len);
    if (headers_len > length - TG_EVENTSTREAM_MIN_LEN)
        return fail(d, "event stream headers length %u does not fit a message of %u bytes",
                    headers_len, length);
    if (headers_len > TG_EVENTSTREAM_MAX_HEADERS_LEN)
        return fail(d, "event stream headers length %u exceeds the limit of %u", headers_len,
                    TG_EVENTSTREAM_MAX_HEADERS_LEN);
    *total = length;
    return TG_OK;
}

/* Copies a well-known string header into dst (NUL-terminated); TG_ERROR when it cannot be. */
static int take_string(struct tg_eventstream_decoder *d, const struct tg_eventstream_header *h,
                       char *dst, size_t dst_size, bool may_cut)
{
    if (h->type != TG_EVENTSTREAM_STRING)
        return fail(d, "event stream header \"%.*s\" is of type %d, not a string", (int)h->name_len,
                    h->name, (int)h->type);
    if (memchr(h->bytes, '\0', h->bytes_len) != NULL)
        return fail(d, "event stream header \"%.*s\" holds a NUL byte", (int)h->name_len, h->name);
    size_t n = h->bytes_len;
    if (n >= dst_size) {
        if (!may_cut)
            return fail(d, "event stream header \"%.*s\" of %zu bytes exceeds the limit of %zu",
                        (int)h->name_len, h->name, n, dst_size - 1);
        n = dst_size - 1;
    }
    memcpy(dst, h->bytes, n);
    dst[n] = '\0';
    return TG_OK;
}

static bool name_is(const struct tg_eventstream_header *h, const char *name)
{
    return h->name_len == strlen(name) && memcmp(h->name, name, h->name_len) == 0;
}

/* Verifies the whole message at p (total bytes, prelude already checked) and delivers it. */
static int deliver(struct tg_eventstream_decoder *d, const unsigned char *p, size_t total)
{
    uint32_t want = load_be32(p + total - 4), got = tg_eventstream_crc32(p, total - 4);
    if (want != got)
        return fail(d, "event stream message checksum mismatch: computed 0x%08x, received 0x%08x",
                    got, want);
    size_t headers_len = load_be32(p + 4);
    const unsigned char *block = p + TG_EVENTSTREAM_PRELUDE_LEN;
    d->message_type[0] = d->event_type[0] = d->content_type[0] = '\0';
    d->error_code[0] = d->error_message[0] = '\0';

    struct tg_eventstream_header seen[TG_EVENTSTREAM_MAX_HEADERS], h;
    size_t n = 0, at = 0;
    int rc;
    char exception_type[sizeof(d->event_type)] = "";
    while ((rc = tg_eventstream_header_next(block, headers_len, &at, &h)) == TG_OK) {
        if (n == TG_EVENTSTREAM_MAX_HEADERS)
            return fail(d, "event stream message has more than %d headers",
                        TG_EVENTSTREAM_MAX_HEADERS);
        for (size_t i = 0; i < n; i++)
            if (seen[i].name_len == h.name_len && memcmp(seen[i].name, h.name, h.name_len) == 0)
                return fail(d, "event stream header \"%.*s\" appears twice", (int)h.name_len,
                            h.name);
        seen[n++] = h;
        int taken = TG_OK;
        if (name_is(&h, ":message-type"))
            taken = take_string(d, &h, d->message_type, sizeof(d->message_type), false);
        else if (name_is(&h, ":event-type"))
            taken = take_string(d, &h, d->event_type, sizeof(d->event_type), false);
        else if (name_is(&h, ":exception-type"))
            taken = take_string(d, &h, exception_type, sizeof(exception_type), false);
        else if (name_is(&h, ":content-type"))
            taken = take_string(d, &h, d->content_type, sizeof(d->content_type), false);
        else if (name_is(&h, ":error-code"))
            taken = take_string(d, &h, d->error_code, sizeof(d->error_code), false);
        else if (name_is(&h, ":error-message"))
            taken = take_string(d, &h, d->error_message, sizeof(d->error_message), true);
        if (taken != TG_OK)
            return TG_ERROR;
    }
    if (rc == TG_ERROR)
        return fail(d, "malformed event stream header at byte %zu of %zu", at, headers_len);
    if (strcmp(d->message_type, "exception") == 0 && exception_type[0] != '\0')
        memcpy(d->event_type, exception_type, sizeof(exception_type));

    struct tg_eventstream_message msg = {
        .message_type = d->message_type,
        .event_type = d->event_type,
        .content_type = d->content_type,
        .error_code = d->error_code,
        .error_message = d->error_message,
        .payload = block + headers_len,
        .payload_len = total - TG_EVENTSTREAM_MIN_LEN - headers_len,
        .headers = block,
        .headers_len = headers_len,
    };
    d->messages++;
    return d->on_message != NULL ? d->on_message(d->ctx, &msg) : TG_OK;
}

static int reserve(struct tg_eventstream_decoder *d, size_t need)
{
    if (need <= d->cap)
        return TG_OK;
    unsigned char *grown = realloc(d->buf, need);
    if (grown == NULL)
        return fail(d, "out of memory for an event stream message of %zu bytes", need);
    d->buf = grown;
    d->cap = need;
    return TG_OK;
}

int tg_eventstream_feed(struct tg_eventstream_decoder *d, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (d->failed)
        return TG_ERROR;
    while (len > 0) {
        size_t total;
        if (d->len == 0 && len >= TG_EVENTSTREAM_PRELUDE_LEN) {
            /* a message starts here: read it in place when it is all here */
            if (check_prelude(d, p, &total) != TG_OK)
                return TG_ERROR;
            if (len >= total) {
                int rc = deliver(d, p, total);
                if (rc != TG_OK)
                    return rc;
                p += total;
                len -= total;
                continue;
            }
            if (reserve(d, total) != TG_OK)
                return TG_ERROR;
            memcpy(d->buf, p, len);
            d->len = len;
            d->need = total;
            return TG_OK;
        }
        if (d->need == 0) { /* gathering a prelude split across feeds */
            if (reserve(d, TG_EVENTSTREAM_PRELUDE_LEN) != TG_OK)
                return TG_ERROR;
            size_t take = TG_EVENTSTREAM_PRELUDE_LEN - d->len;
            if (take > len)
                take = len;
            memcpy(d->buf + d->len, p, take);
            d->len += take;
            p += take;
            len -= take;
            if (d->len < TG_EVENTSTREAM_PRELUDE_LEN)
                return TG_OK;
            if (check_prelude(d, d->buf, &total) != TG_OK || reserve(d, total) != TG_OK)
                return TG_ERROR;
            d->need = total;
            continue;
        }
        size_t take = d->need - d->len;
        if (take > len)
            take = len;
        memcpy(d->buf + d->len, p, take);
        d->len += take;
        p += take;
        len -= take;
        if (d->len == d->need) {
            size_t whole = d->need;
            d->len = d->need = 0;
            int rc = deliver(d, d->buf, whole);
            if (rc != TG_OK)
                return rc;
        }
    }
    return TG_OK;
}

int tg_eventstream_finish(struct tg_eventstream_decoder *d)
{
    if (d->failed)
        return TG_ERROR;
    if (d->len == 0)
        return TG_OK;
    if (d->need == 0)
        return fail(d, "event stream ended inside a message prelude: %zu of %d bytes received",
                    d->len, TG_EVENTSTREAM_PRELUDE_LEN);
    return fail(d, "event stream ended inside a message: %zu of %zu bytes received", d->len,
                d->need);
}

/* The encoded size of one header, or 0 when it cannot be encoded. */
static size_t header_size(const struct tg_eventstream_header *h)
{
    if (h->name == NULL || h->name_len == 0 || h->name_len > 255 || h->type > TG_EVENTSTREAM_UUID)
        return 0;
    int size = fixed_size(h->type);
    if (size < 0) {
        if (h->bytes_len > 65535 || (h->bytes == NULL && h->bytes_len > 0))
            return 0;
        return 1 + h->name_len + 1 + 2 + h->bytes_len;
    }
    if (h->type == TG_EVENTSTREAM_UUID && (h->bytes == NULL || h->bytes_len != 16))
        return 0;
    return 1 + h->name_len + 1 + (size_t)size;
}

int tg_eventstream_encode(const struct tg_eventstream_header *headers, size_t n,
                          const void *payload, size_t payload_len, unsigned char **out,
                          size_t *out_len)
{
    size_t headers_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t size = header_size(&headers[i]);
        if (size == 0)
            return TG_ERROR;
        headers_len += size;
    }
    if (headers_len > TG_EVENTSTREAM_MAX_HEADERS_LEN ||
        payload_len > TG_EVENTSTREAM_DEFAULT_MAX_LEN ||
        TG_EVENTSTREAM_MIN_LEN + headers_len + payload_len > TG_EVENTSTREAM_DEFAULT_MAX_LEN ||
        (payload == NULL && payload_len > 0))
        return TG_ERROR;
    size_t total = TG_EVENTSTREAM_MIN_LEN + headers_len + payload_len;
    unsigned char *buf = malloc(total);
    if (buf == NULL)
        return TG_ERROR;
    store_be32(buf, (uint32_t)total);
    store_be32(buf + 4, (uint32_t)headers_len);
    store_be32(buf + 8, tg_eventstream_crc32(buf, 8));
    unsigned char *w = buf + TG_EVENTSTREAM_PRELUDE_LEN;
    for (size_t i = 0; i < n; i++) {
        const struct tg_eventstream_header *h = &headers[i];
        *w++ = (unsigned char)h->name_len;
        memcpy(w, h->name, h->name_len);
        w += h->name_len;
        *w++ = (unsigned char)h->type;
        int size = fixed_size(h->type);
        if (size < 0) {
            *w++ = (unsigned char)(h->bytes_len >> 8);
            *w++ = (unsigned char)h->bytes_len;
            if (h->bytes_len > 0)
                memcpy(w, h->bytes, h->bytes_len);
            w += h->bytes_len;
        } else if (h->type == TG_EVENTSTREAM_UUID) {
            memcpy(w, h->bytes, 16);
            w += 16;
        } else {
            for (int k = size - 1; k >= 0; k--)
                *w++ = (unsigned char)((uint64_t)h->integer >> (8 * k));
        }
    }
    if (payload_len > 0)
        memcpy(w, payload, payload_len);
    w += payload_len;
    store_be32(w, tg_eventstream_crc32(buf, total - 4));
    *out = buf;
    *out_len = total;
    return TG_OK;
}

static struct tg_eventstream_header string_header(const char *name, const char *value)
{
    return (struct tg_eventstream_header){
        .name = name,
        .name_len = strlen(name),
        .type = TG_EVENTSTREAM_STRING,
        .bytes = (const unsigned char *)value,
        .bytes_len = strlen(value),
    };
}

int tg_eventstream_encode_json(const char *message_type, const char *type, const char *json,
                               size_t json_len, unsigned char **out, size_t *out_len)
{
    bool exception = strcmp(message_type, "exception") == 0;
    struct tg_eventstream_header headers[] = {
        string_header(":message-type", message_type),
        string_header(exception ? ":exception-type" : ":event-type", type),
        string_header(":content-type", "application/json"),
    };
    return tg_eventstream_encode(headers, TG_ARRAY_LEN(headers), json, json_len, out, out_len);
}
