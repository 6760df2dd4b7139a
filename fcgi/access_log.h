/*
 * access_log.h — the access line: one JSON line per request, written when the
 * request is done (schema in README: "Log schema").
 *
 * Metadata only, as for every log line (log.h): ids, display prefixes, counts,
 * times, the outcome. Never prompt or completion text, a full key, a JWT or a
 * provider credential. Not here: operator messages (log.h).
 */
#ifndef TG_ACCESS_LOG_H
#define TG_ACCESS_LOG_H

#include "common.h"

struct tg_request;

/*
 * Writes r's access line (borrowed; read only) to the log opened by tg_log_open,
 * with one write(2). A line longer than its fixed buffer (4 KiB) ends at its last
 * complete field. Allocates nothing; never fails the request.
 */
void tg_access_log_write(struct tg_request *r);

#endif
