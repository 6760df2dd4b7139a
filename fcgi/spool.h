/*
 * spool.h — the usage spool: where a usage row goes when PostgreSQL cannot take
 * it at settle time, so that no usage is ever lost, and the dead letter, where a
 * row goes that PostgreSQL will never take, so that it never blocks the others.
 *
 * Files in spool.dir, shared by every worker process of the host:
 *
 *   usage.pending     framed records (frame.h), one JSON usage row each
 *                     (tg_spool_encode); appended under flock, fsync'd
 *   usage.replay      the records a replay took out of usage.pending (renamed),
 *                     settled without holding any appender's lock; what could
 *                     not be settled yet stays in it for the next replay
 *   usage.deadletter  framed records PostgreSQL refused or that failed
 *                     tg_usage_record_check: the row's JSON plus "error" (why)
 *                     and "dead_lettered_at". Never read by the gateway: once
 *                     the cause is fixed, an operator can move it to
 *                     usage.pending (no worker appending to it) to replay it
 *   replay.lock       one replay at a time per host
 *   usage.spool       the JSON-lines spool of earlier versions: converted to
 *                     framed records once (lines locked and truncated as those
 *                     versions did), so its rows are replayed too
 *
 * A torn or damaged record is skipped and logged; its neighbours are replayed.
 * Replay settles with tollgate.settle, idempotent by request id, so a record
 * replayed twice (a crash mid-replay) is still one row.
 */
#ifndef TG_SPOOL_H
#define TG_SPOOL_H

#include "common.h"

struct tg_usage_record;

/* How long an appender waits for a file's lock before it gives up. */
#define TG_SPOOL_LOCK_TIMEOUT_MS 2000

/*
 * Creates dir if needed and checks it is writable. Call once per process,
 * before any other function here (the paths are set once, then only read).
 */
int tg_spool_init(const char *dir);

/*
 * Appends rec durably to usage.pending: TG_OK once the record and (when the
 * file is new) its directory entry are fsync'd. A record that fails
 * tg_usage_record_check goes to the dead letter instead (TG_OK when it is
 * there). TG_ERROR otherwise, errno set (ETIMEDOUT: the lock stayed taken for
 * TG_SPOOL_LOCK_TIMEOUT_MS). Thread-safe.
 */
int tg_spool_append(const struct tg_usage_record *rec);

/* True when records wait for a replay (two stat(2) calls). */
bool tg_spool_pending(void);

/*
 * Replays the spool into the database unless another thread or process is
 * doing so (then returns 0 at once): the leftover of an earlier replay first,
 * then what usage.pending holds. Each record is checked, then settled: a
 * record refused (tg_usage_settle_record's TG_DECLINED) or failing the check
 * goes to the dead letter and replay goes on; when the database is
 * unavailable, replay stops and keeps the rest for the next call. Appenders
 * are held up only while usage.pending is renamed. Returns the number of rows
 * settled, or TG_ERROR when the spool files cannot be read or written.
 */
int tg_spool_replay(const char *log_id);

/*
 * Appends rec to the dead letter with why (a reason such as "23514: new row
 * ... violates check constraint ..."; never prompt text), fsync'd, logs it and
 * adds one to tollgate_usage_dead_letters_total. Strings of a record too large
 * for one frame are cut. TG_OK once on disk, TG_ERROR otherwise.
 */
int tg_spool_dead_letter(const char *log_id, const struct tg_usage_record *rec, const char *why);

/* Serialises rec as one JSON object (no newline) into a malloc'd string; NULL
 * when out of memory or a string is not valid UTF-8. */
char *tg_spool_encode(const struct tg_usage_record *rec);

#endif
