/*
 * frame.c — framed append-only record files (the format is in frame.h).
 *
 * CRC-32C is computed in software, eight bytes a step (slice-by-8): about a
 * nanosecond per 3 bytes, far below the cost of the write(2) it protects, and
 * the same result on every CPU.
 */
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define READ_WINDOW (2 * (TG_FRAME_HEADER + TG_FRAME_PAYLOAD_MAX))
#define STACK_RECORD 4096 /* records up to this size are built on the stack */
#define LOCK_POLL_MAX_US 20000

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

uint32_t tg_frame_crc32c(const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (; len >= 8; p += 8, len -= 8) {
        uint32_t lo = c ^ load_le32(p), hi = load_le32(p + 4);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
            crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
            crc_table[0][hi >> 24];
    }
    for (; len > 0; p++, len--)
        c = (c >> 8) ^ crc_table[0][(c ^ *p) & 0xff];
    return c ^ 0xFFFFFFFFu;
}

static void put_record(unsigned char *out, const void *payload, size_t len)
{
    store_le32(out, TG_FRAME_MAGIC);
    store_le32(out + 4, (uint32_t)len);
    store_le32(out + 8, tg_frame_crc32c(payload, len));
    if (len > 0)
        memcpy(out + TG_FRAME_HEADER, payload, len);
}

static int write_all(int fd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return TG_ERROR;
        if (n == 0) {
            errno = EIO;
            return TG_ERROR;
        }
        data += n;
        len -= (size_t)n;
    }
    return TG_OK;
}

int tg_frame_write(int fd, const void *payload, size_t len)
{
    struct tg_frame_part part = {payload, len};
    return tg_frame_write_batch(fd, &part, 1);
}

int tg_frame_write_batch(int fd, const struct tg_frame_part *parts, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > TG_FRAME_PAYLOAD_MAX || (parts[i].len > 0 && parts[i].data == NULL)) {
            errno = EMSGSIZE;
            return TG_ERROR;
        }
        if (total > SIZE_MAX - TG_FRAME_HEADER - parts[i].len) {
            errno = ENOMEM;
            return TG_ERROR;
        }
        total += TG_FRAME_HEADER + parts[i].len;
    }
    if (total == 0)
        return TG_OK;
    unsigned char local[STACK_RECORD];
    unsigned char *buf = total <= sizeof(local) ? local : malloc(total);
    if (buf == NULL) {
        errno = ENOMEM;
        return TG_ERROR;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        put_record(buf + at, parts[i].data, parts[i].len);
        at += TG_FRAME_HEADER + parts[i].len;
    }
    int rc = write_all(fd, buf, total);
    int saved = errno;
    if (buf != local)
        free(buf);
    errno = saved;
    return rc;
}

int tg_frame_sync(int fd)
{
    while (fdatasync(fd) != 0) {
        if (errno != EINTR)
            return TG_ERROR;
    }
    return TG_OK;
}

int tg_frame_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return TG_ERROR;
    int rc = TG_OK;
    while (fsync(fd) != 0) {
        if (errno != EINTR) {
            rc = TG_ERROR;
            break;
        }
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int tg_frame_lock(int fd, int64_t timeout_ms)
{
    int64_t deadline = tg_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    long pause_us = 250;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return TG_OK;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return TG_ERROR;
        int64_t left_ms = deadline - tg_now_ms();
        if (left_ms <= 0)
            return TG_DECLINED;
        long sleep_us = left_ms * 1000 < pause_us ? (long)(left_ms * 1000) : pause_us;
        struct timespec ts = {0, sleep_us * 1000};
        nanosleep(&ts, NULL);
        if (pause_us < LOCK_POLL_MAX_US)
            pause_us *= 2;
    }
}

int tg_frame_try_lock(int fd)
{
    return tg_frame_lock(fd, 0);
}

void tg_frame_unlock(int fd)
{
    flock(fd, LOCK_UN);
}

/* ---- reader ---- */

int tg_frame_reader_init(struct tg_frame_reader *rd, int fd, off_t start)
{
    memset(rd, 0, sizeof(*rd));
    rd->fd = fd;
    rd->base = start;
    rd->offset = start;
    rd->buf = malloc(READ_WINDOW);
    if (rd->buf == NULL) {
        errno = ENOMEM;
        return TG_ERROR;
    }
    return TG_OK;
}

int tg_frame_reader_open(struct tg_frame_reader *rd, const char *path)
{
    memset(rd, 0, sizeof(*rd));
    rd->fd = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? TG_DECLINED : TG_ERROR;
    if (tg_frame_reader_init(rd, fd, 0) != TG_OK) {
        close(fd);
        rd->fd = -1;
        return TG_ERROR;
    }
    rd->owns_fd = true;
    return TG_OK;
}

void tg_frame_reader_release(struct tg_frame_reader *rd)
{
    free(rd->buf);
    rd->buf = NULL;
    if (rd->owns_fd && rd->fd >= 0)
        close(rd->fd);
    rd->fd = -1;
    rd->owns_fd = false;
}

/*
 * Makes at least need bytes available from rd->at (fewer only at the end of
 * the file). Returns how many are available, or -1 when a read fails.
 */
static ssize_t fill(struct tg_frame_reader *rd, size_t need)
{
    if (rd->len - rd->at >= need || rd->eof)
        return (ssize_t)(rd->len - rd->at);
    if (rd->at > 0) {
        memmove(rd->buf, rd->buf + rd->at, rd->len - rd->at);
        rd->base += (off_t)rd->at;
        rd->len -= rd->at;
        rd->at = 0;
    }
    while (rd->len < need && rd->len < READ_WINDOW) {
        ssize_t n =
            pread(rd->fd, rd->buf + rd->len, READ_WINDOW - rd->len, rd->base + (off_t)rd->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            rd->eof = true;
            break;
        }
        rd->len += (size_t)n;
    }
    return (ssize_t)(rd->len - rd->at);
}

/* Closes a bad stretch that ends at file offset end. */
static void end_bad(struct tg_frame_reader *rd, off_t end)
{
    if (!rd->in_bad)
        return;
    rd->skipped++;
    rd->skipped_bytes += (uint64_t)(end - rd->bad_start);
    rd->in_bad = false;
}

/*
 * The record at rd->at is bad: opens a bad stretch (if none is open) and moves
 * to the next byte that could start a record. TG_OK to try there, TG_DECLINED
 * at the end of the file (the stretch closed), TG_ERROR when a read fails.
 */
static int skip_bad(struct tg_frame_reader *rd)
{
    static const unsigned char magic[4] = {0xFF, 0xFE, 'T', 'G'};
    if (!rd->in_bad) {
        rd->in_bad = true;
        rd->bad_start = rd->base + (off_t)rd->at;
    }
    rd->at++;
    for (;;) {
        ssize_t avail = fill(rd, 4);
        if (avail < 0)
            return TG_ERROR;
        const unsigned char *from = rd->buf + rd->at;
        const unsigned char *found = memmem(from, (size_t)avail, magic, sizeof(magic));
        if (found != NULL) {
            rd->at += (size_t)(found - from);
            return TG_OK;
        }
        if (rd->eof) {
            rd->at = rd->len;
            end_bad(rd, rd->base + (off_t)rd->len);
            return TG_DECLINED;
        }
        /* keep a tail that may be the start of a magic split across reads */
        if (avail > 3)
            rd->at += (size_t)avail - 3;
        if (fill(rd, (size_t)(rd->len - rd->at) + 1) < 0)
            return TG_ERROR;
    }
}

int tg_frame_reader_next(struct tg_frame_reader *rd, const void **payload, size_t *len)
{
    for (;;) {
        ssize_t avail = fill(rd, TG_FRAME_HEADER);
        if (avail < 0)
            return TG_ERROR;
        if (avail == 0) {
            end_bad(rd, rd->base + (off_t)rd->len);
            return TG_DECLINED;
        }
        const unsigned char *h = rd->buf + rd->at;
        bool ok = (size_t)avail >= TG_FRAME_HEADER && load_le32(h) == TG_FRAME_MAGIC &&
                  load_le32(h + 4) <= TG_FRAME_PAYLOAD_MAX;
        size_t plen = ok ? load_le32(h + 4) : 0;
        if (ok) {
            avail = fill(rd, TG_FRAME_HEADER + plen);
            if (avail < 0)
                return TG_ERROR;
            h = rd->buf + rd->at; /* fill may have moved the window */
            ok = (size_t)avail >= TG_FRAME_HEADER + plen &&
                 tg_frame_crc32c(h + TG_FRAME_HEADER, plen) == load_le32(h + 8);
        }
        if (!ok) {
            int rc = skip_bad(rd);
            if (rc != TG_OK)
                return rc;
            continue;
        }
        end_bad(rd, rd->base + (off_t)rd->at);
        *payload = h + TG_FRAME_HEADER;
        *len = plen;
        rd->at += TG_FRAME_HEADER + plen;
        rd->offset = rd->base + (off_t)rd->at;
        rd->records++;
        return TG_OK;
    }
}
