/*
 * db.h — PostgreSQL access, the only module that includes libpq.
 *
 * The worker uses a small per-process pool (database.pool_size connections,
 * opened lazily, statements prepared once per connection, reconnected after a
 * database restart). Every call takes at most one round trip plus, when the
 * connection broke, one reconnect and retry; every wait is bounded by
 * database.connect_timeout_ms and database.statement_timeout_ms.
 * tollgatectl uses the single-connection API at the end of this header.
 */
#ifndef TG_DB_H
#define TG_DB_H

#include "arena.h"
#include "common.h"
#include "config.h"

struct tg_request;
struct tg_identity;
struct tg_usage_record;

/* Sets up the process's pool (no connection yet). TG_ERROR when out of memory. */
int tg_db_pool_init(const struct tg_config *config);

/* Closes every pooled connection. Call once, after all threads stopped. */
void tg_db_pool_shutdown(void);

/* One trivial query: TG_OK when the database answers. */
int tg_db_ping(struct tg_request *r);

/*
 * Looks up the key whose SHA-256 is key_hash (32 bytes). On TG_OK fills *identity
 * (strings in r->arena) and *status ("active", "revoked" or "expired").
 * TG_DECLINED: no such key. TG_ERROR: the database is unavailable.
 */
int tg_db_authenticate(struct tg_request *r, const unsigned char *key_hash,
                       struct tg_identity *identity, const char **status);

/*
 * Inserts a usage row (tollgate.record_usage; idempotent by request id) and
 * returns its price in *cost_micros. log_id names the request in log lines.
 * TG_ERROR: the database is unavailable or refused the row.
 */
int tg_db_record_usage(const char *log_id, const struct tg_usage_record *rec,
                       int64_t *cost_micros);

/* ---- single connection (tollgatectl) ---- */

struct tg_db_conn;

/* Query result: n_rows × n_cols cells, NULL cells as NULL. Lives in the arena. */
struct tg_db_rows {
    int n_rows;
    int n_cols;
    const char **col_names;
    const char **cells; /* row-major */
};

/* Connects to url; on failure returns NULL and writes a message into err. */
struct tg_db_conn *tg_db_connect(const char *url, char *err, size_t err_size);
void tg_db_close(struct tg_db_conn *conn);

/*
 * Runs one parameterised statement (text parameters, NULL for SQL NULL).
 * rows may be NULL when the caller wants no result. TG_ERROR writes the server's
 * message into err.
 */
int tg_db_query(struct tg_db_conn *conn, struct tg_arena *arena, const char *sql, int n_params,
                const char *const *params, struct tg_db_rows *rows, char *err,
                size_t err_size);

/* Runs a multi-statement script (a migration) as is. */
int tg_db_exec_script(struct tg_db_conn *conn, const char *sql, char *err, size_t err_size);

#endif
