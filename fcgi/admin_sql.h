/*
 * admin_sql.h — the admin API's statements: each answers one row of one column
 * (a JSON document or a scalar). What every admin module does alike is here:
 * the database gone is a 503, an answer of another shape a 500; what differs —
 * how a refusal by the database is told to the client — stays with the caller.
 */
#ifndef TG_ADMIN_SQL_H
#define TG_ADMIN_SQL_H

#include <stddef.h>

#include "common.h"

struct tg_request;

/*
 * Runs sql with its n params (read-only, so safe to retry, when r is a GET) into
 * *cell (the arena's; NULL for SQL null). TG_OK; TG_DECLINED when the database
 * refused the statement: sqlstate (6 bytes) and message (its primary text) are
 * filled, nothing recorded on r; TG_ERROR with r's error recorded (503: the
 * database unavailable; 500: not one row of one column, another failure).
 */
int tg_admin_sql_cell(struct tg_request *r, const char *sql, int n, const char *const *params,
                      const char **cell, char sqlstate[6], char *message, size_t message_size);

#endif
