/*
 * log.h — JSON lines: operator messages, and what access_log.c shares to write
 * its per-request access line into the same log.
 *
 * Metadata only. Nothing here is ever given prompt or completion text, a full
 * key, a JWT or a provider credential; callers pass display prefixes and ids.
 * Each line is written with a single write(2) on an O_APPEND descriptor, so lines
 * from many threads and processes do not interleave.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

#include "common.h"

enum tg_log_level { TG_LOG_DEBUG, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR };

/* Opens path for appending (NULL: stderr). Returns TG_OK or TG_ERROR (errno set). */
int tg_log_open(const char *path);

/* Writes {"ts","level","msg","file","line","request_id"}; request_id may be NULL. */
void tg_log_write(enum tg_log_level level, const char *file, int line, const char *request_id,
                  const char *fmt, ...) TG_PRINTF(5, 6);

#define tg_log_error(rid, ...) tg_log_write(TG_LOG_ERROR, __FILE__, __LINE__, rid, __VA_ARGS__)
#define tg_log_warn(rid, ...) tg_log_write(TG_LOG_WARN, __FILE__, __LINE__, rid, __VA_ARGS__)
#define tg_log_info(rid, ...) tg_log_write(TG_LOG_INFO, __FILE__, __LINE__, rid, __VA_ARGS__)

#define TG_LOG_TS_SIZE 32 /* "2025-01-02T03:04:05.678Z" and its NUL, with room to spare */

/* Writes the current UTC time as every line's "ts" into out (always NUL-terminated). */
void tg_log_timestamp(char out[TG_LOG_TS_SIZE]);

/* This process's id, every line's "pid" (asked of the kernel once per thread). */
long tg_log_pid(void);

/* In a child after fork(): the pid it logs is its own, not the parent's. */
void tg_log_forked(void);

/*
 * Writes line (len bytes, borrowed: a whole JSON line ending in '\n') to the log
 * with one write(2), so that it does not interleave with others. A failed write
 * is dropped: there is nowhere left to report it.
 */
void tg_log_append(const char *line, size_t len);

#endif
