/*
 * admin_sql.c — one admin statement, one cell (see admin_sql.h).
 */
#include "admin_sql.h"

#include <string.h>

#include "db.h"
#include "request.h"

int tg_admin_sql_cell(struct tg_request *r, const char *sql, int n, const char *const *params,
                      const char **cell, char sqlstate[6], char *message, size_t message_size)
{
    struct tg_db_rows rows;
    bool read_only = strcmp(r->method, "GET") == 0; /* lists: safe to retry after a restart */
    sqlstate[0] = '\0';
    message[0] = '\0';
    int rc = tg_db_call(r, sql, n, params, read_only, &rows, sqlstate, message, message_size);
    if (rc == TG_DECLINED)
        return TG_DECLINED;
    if (rc != TG_OK) {
        tg_request_fail(r, 503, "api_error", "the gateway's database is unavailable",
                        "admin statement failed");
        r->outcome = "database_unavailable";
        return TG_ERROR;
    }
    if (rows.n_rows != 1 || rows.n_cols != 1) {
        tg_request_fail(r, 500, "api_error", "internal error",
                        "admin statement answered %d rows of %d columns", rows.n_rows, rows.n_cols);
        return TG_ERROR;
    }
    *cell = rows.cells[0];
    return TG_OK;
}
