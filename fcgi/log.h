/*
 * log.h — JSON lines: one access line per request, and operator messages.
 *
 * Metadata only. Nothing here is ever given prompt or completion text, a full
 * key, a JWT or a provider credential; callers pass display prefixes and ids.
 * Each line is written with a single write(2) on an O_APPEND descriptor, so lines
 * from many threads and processes do not interleave.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

#include "common.h"

struct tg_request;

enum tg_log_level { TG_LOG_DEBUG, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR };

/* Opens path for appending (NULL: stderr). Returns TG_OK or TG_ERROR (errno set). */
int tg_log_open(const char *path);

/* Writes {"ts","level","msg","file","line","request_id"}; request_id may be NULL. */
void tg_log_write(enum tg_log_level level, const char *file, int line, const char *request_id,
                  const char *fmt, ...) TG_PRINTF(5, 6);

#define tg_log_error(rid, ...) tg_log_write(TG_LOG_ERROR, __FILE__, __LINE__, rid, __VA_ARGS__)
#define tg_log_warn(rid, ...) tg_log_write(TG_LOG_WARN, __FILE__, __LINE__, rid, __VA_ARGS__)
#define tg_log_info(rid, ...) tg_log_write(TG_LOG_INFO, __FILE__, __LINE__, rid, __VA_ARGS__)

/* The per-request access line (schema in README: "Log schema"). */
void tg_log_access(struct tg_request *r);

#endif
