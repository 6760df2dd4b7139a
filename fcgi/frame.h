/*
 * frame.h — framed, append-only record files: the on-disk format shared by the
 * usage spool (spool.c) and any other local log of records that must survive a
 * crash (a per-process journal, a dead letter).
 *
 * A file is a sequence of records, each a 12-byte header then the payload:
 *
 *     magic   u32 little-endian  TG_FRAME_MAGIC (bytes ff fe 54 47)
 *     length  u32 little-endian  payload bytes, at most TG_FRAME_PAYLOAD_MAX
 *     crc     u32 little-endian  CRC-32C (Castagnoli) of the payload
 *     payload length bytes, opaque to this module
 *
 * Writers append whole records with one write(2) on an O_APPEND descriptor, so
 * records of concurrent writers never interleave; a crash can still leave a
 * torn record (a short write), and a disk can corrupt one. The reader verifies
 * every record and skips a bad one by scanning forward to the next magic whose
 * record verifies: only the bad record is lost, never its neighbours.
 *
 * Durability is the caller's choice: tg_frame_write does not sync; call
 * tg_frame_sync (the file's data) and, after creating or renaming a file,
 * tg_frame_sync_dir (the directory entry). Locking is advisory (flock(2), per
 * open file description) and always has a deadline.
 *
 * Resynchronising on the magic means that a payload which itself holds a whole
 * framed record could surface it when the outer record is damaged: a caller
 * that nests frames must check what it reads (JSON payloads cannot hold one:
 * the magic's first byte, 0xff, never occurs in UTF-8).
 *
 * What this module is not: it knows nothing of what a payload means, and it
 * never truncates, renames or deletes a file (a journal that wants to append
 * after a torn tail can ftruncate to the reader's offset first).
 */
#ifndef TG_FRAME_H
#define TG_FRAME_H

#include <sys/types.h>

#include "common.h"

#define TG_FRAME_MAGIC 0x4754FEFFu /* on disk: ff fe 'T' 'G' (never in UTF-8 text) */
#define TG_FRAME_HEADER 12
#define TG_FRAME_PAYLOAD_MAX (64 * 1024)

/* CRC-32C (Castagnoli, reflected, as iSCSI and ext4 use) of data. */
uint32_t tg_frame_crc32c(const void *data, size_t len);

/*
 * Appends one record holding payload (len bytes, at most TG_FRAME_PAYLOAD_MAX)
 * to fd, which should be opened with O_APPEND: header and payload go out in one
 * write(2) (retried on a short write or EINTR). Does not sync.
 * TG_OK once written; TG_ERROR with errno set: EMSGSIZE for an oversized
 * payload (nothing written), ENOMEM, or the write's error (a prefix of the
 * record may then be in the file: readers skip it as torn).
 */
int tg_frame_write(int fd, const void *payload, size_t len);

/* One payload of a batch (borrowed). */
struct tg_frame_part {
    const void *data;
    size_t len;
};

/*
 * Appends n records (parts[0] first) with one write(2), as tg_frame_write does
 * for one: cheaper than n calls when records are batched. Every part must fit
 * TG_FRAME_PAYLOAD_MAX (else EMSGSIZE, nothing written). n == 0 writes nothing.
 */
int tg_frame_write_batch(int fd, const struct tg_frame_part *parts, size_t n);

/* fdatasync(2) of fd (retried on EINTR). TG_OK or TG_ERROR (errno set). */
int tg_frame_sync(int fd);

/*
 * fsync(2) of the directory dir, so that a file created, renamed or unlinked in
 * it survives a crash. TG_OK or TG_ERROR (errno set).
 */
int tg_frame_sync_dir(const char *dir);

/*
 * Takes flock(LOCK_EX) on fd, waiting at most timeout_ms (polling with short
 * sleeps; 0: one try). TG_OK when held; TG_DECLINED when another descriptor
 * still held it at the deadline; TG_ERROR on any other failure (errno set).
 * The lock goes with close(fd) or tg_frame_unlock.
 */
int tg_frame_lock(int fd, int64_t timeout_ms);

/* tg_frame_lock(fd, 0): takes the lock only if it is free right now. */
int tg_frame_try_lock(int fd);

/* Releases the lock taken on fd. */
void tg_frame_unlock(int fd);

/*
 * Reads the records of a file in order. Usage:
 *
 *     struct tg_frame_reader rd;
 *     if (tg_frame_reader_open(&rd, path) == TG_OK) {
 *         const void *p; size_t n;
 *         while (tg_frame_reader_next(&rd, &p, &n) == TG_OK)
 *             use(p, n);               // p is valid until the next call
 *         // rd.skipped records were bad; rd.offset ends the last good one
 *         tg_frame_reader_release(&rd);
 *     }
 *
 * The reader never writes. A record being appended while it reads may look
 * torn: read under the writers' lock, or from a file no one appends to.
 */
struct tg_frame_reader {
    int fd;
    bool owns_fd;
    unsigned char *buf; /* window of the file: buf[0..len) is at file offset base */
    size_t len;
    size_t at;   /* where the next record is looked for, within buf */
    off_t base;  /* file offset of buf[0] */
    bool eof;    /* nothing more to read(2) */
    bool in_bad; /* inside a bad stretch, which began at bad_start */
    off_t bad_start;
    /* For the caller (read only): */
    off_t offset;           /* file offset just after the last good record */
    uint64_t records;       /* good records returned */
    uint64_t skipped;       /* bad stretches skipped (a torn or corrupt record each) */
    uint64_t skipped_bytes; /* bytes in them, a torn tail included */
};

/*
 * Opens path for reading from its start. TG_OK; TG_DECLINED when there is no
 * such file; TG_ERROR otherwise (errno set).
 */
int tg_frame_reader_open(struct tg_frame_reader *rd, const char *path);

/*
 * Reads from fd (borrowed: not closed by release) from file offset start on,
 * with pread(2), so fd's own position is left alone. TG_OK or TG_ERROR (ENOMEM).
 */
int tg_frame_reader_init(struct tg_frame_reader *rd, int fd, off_t start);

/*
 * The next good record: TG_OK with *payload (len bytes, in rd's buffer, valid
 * until the next call) and rd->offset just after it; TG_DECLINED at the end of
 * the file; TG_ERROR when a read fails (errno set). Bad stretches on the way
 * are skipped and counted in rd->skipped / rd->skipped_bytes.
 */
int tg_frame_reader_next(struct tg_frame_reader *rd, const void **payload, size_t *len);

/* Frees rd's buffer and closes the file if rd opened it. */
void tg_frame_reader_release(struct tg_frame_reader *rd);

#endif
