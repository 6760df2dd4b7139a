/*
 * spool.h — the usage spool: where a usage row goes when PostgreSQL cannot take
 * it at settle time, so that no usage is ever lost.
 *
 * One append-only file of JSON lines (spool.dir/usage.spool), shared by every
 * worker process of the host through flock(2). Each append is fsync'd before it
 * returns. Replay settles every line with tollgate.settle, which is
 * idempotent by request id, so a line replayed twice is still one row.
 */
#ifndef TG_SPOOL_H
#define TG_SPOOL_H

#include "common.h"

struct tg_usage_record;

/* Creates dir if needed and checks it is writable. Call once per process. */
int tg_spool_init(const char *dir);

/* Appends rec durably. TG_OK once it is on disk, TG_ERROR otherwise (errno set). */
int tg_spool_append(const struct tg_usage_record *rec);

/* True when the spool file holds lines (one stat(2); cheap enough per settle). */
bool tg_spool_pending(void);

/*
 * Replays the spool into the database if no other process is doing so. Lines
 * that were written are removed; on a database failure the rest stay for the
 * next replay. Returns the number of rows replayed, or TG_ERROR.
 */
int tg_spool_replay(const char *log_id);

/*
 * Sets rec aside in the dead letter (spool.dir/usage.deadletter, fsync'd) with
 * why PostgreSQL refused it, logged. TG_OK once on disk.
 */
int tg_spool_dead_letter(const struct tg_usage_record *rec, const char *why);

/* Serialises rec as one JSON line (no newline) into a malloc'd string. */
char *tg_spool_encode(const struct tg_usage_record *rec);

#endif
