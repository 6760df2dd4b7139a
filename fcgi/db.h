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
 * Who a request claims to be and what it asks for: the parameters shared by
 * tollgate.identify and tollgate.reserve. key_hash (SHA-256, 32 bytes) for a
 * key; NULL for a JWT principal (user, group, role, create). end_user /
 * end_group: attribution the client asked for (NULL: none). model may be NULL.
 */
struct tg_db_who {
    const unsigned char *key_hash;
    const char *user, *group, *role;
    bool create;
    const char *end_user, *end_group;
    const char *endpoint;
    const char *model;
};

/* What tollgate.identify answered (strings in the request's arena). */
struct tg_db_identified {
    const char *status;         /* ok, unknown_key, revoked, expired, unknown_user,
                                   unknown_group, invalid_principal, endpoint_not_allowed,
                                   model_not_allowed */
    const char *denied_subject; /* who refused: 'group "g"', 'role "r"', 'key' */
    const char *attribution;    /* "applied", "ignored" or NULL */
};

/*
 * One round trip (tollgate.identify): who is calling and may it use this
 * endpoint and model. Fills r->identity as far as known and *out.
 * TG_ERROR: the database is unavailable; TG_DECLINED: it refused the statement
 * (a bug or bad input: not an outage, so never a reason to fail open).
 */
int tg_db_identify(struct tg_request *r, const struct tg_db_who *who, struct tg_db_identified *out);

/* What tollgate.reserve answered (strings in the request's arena). */
struct tg_db_reservation {
    struct tg_db_identified who; /* identify's columns */
    const char *status; /* identify's statuses, or unpriced_model, quota_exceeded, rate_limited */
    const char *denied_subject, *denied_metric, *denied_window;
    int64_t denied_limit;
    int64_t retry_after_s;                                        /* -1: none */
    int64_t tokens_limit, tokens_remaining, tokens_reset_s;       /* -1: no such quota */
    int64_t requests_limit, requests_remaining, requests_reset_s; /* -1: no such quota */
    int64_t warn_used_pct;                                        /* -1: no warning */
    int64_t warn_limit;
    const char *warn_metric, *warn_reset;
    bool headers_added; /* quota.c's: the x-ratelimit headers went out once */
};

/*
 * One round trip: identifies who (as tg_db_identify), then reserves the
 * request's upper bound (input_tokens + max_output tokens, and its price) on
 * every quota row and global bucket that applies, all or none
 * (tollgate.reserve). Fills r->identity as far as known.
 * max_web_searches: the most server-side web searches the request may run (their
 * per-use fee is reserved too). buckets_json may be NULL. TG_ERROR: the database is unavailable;
 * TG_DECLINED: it refused the statement (as for tg_db_identify).
 */
int tg_db_reserve(struct tg_request *r, const struct tg_db_who *who, int64_t input_tokens,
                  int64_t max_output_tokens, const char *holder, int64_t ttl_ms,
                  const char *buckets_json, int64_t max_web_searches,
                  struct tg_db_reservation *out);

/* Releases r's reservation without using it (a later check refused the request). */
int tg_db_release(struct tg_request *r);

/*
 * One round trip and one commit: settles n usage records at once
 * (tollgate.settle_batch; rows_json is a JSON array of tg_usage_record_json
 * objects). cost_micros[i] gets record i's stored cost; *alerts_json the
 * thresholds the batch crossed (malloc'd JSON array, caller frees) or NULL.
 * TG_ERROR: the database is unavailable; TG_DECLINED: it refused the batch (its
 * message in err; nothing of the batch was written). meanwhile (may be NULL) is
 * called while the server executes the batch (the journal's sync).
 */
int tg_db_settle_batch(const char *log_id, const char *rows_json, size_t n, int64_t *cost_micros,
                       char **alerts_json, char *err, size_t err_size, void (*meanwhile)(void));

/*
 * Why the calling thread's last tg_db_settle_batch was refused: "SQLSTATE: primary
 * message" (never the server's detail, which may quote values). Thread-local,
 * valid until the thread's next call of tg_db_settle_batch or this function.
 */
const char *tg_db_settle_refusal(void);

/* The holders of reservations made in domain (holder.h). Caller frees each and the array. */
int tg_db_reservation_holders(const char *host, char ***holders, size_t *n);

/* Releases expired reservations and those of dead_holders (may be empty). */
int tg_db_sweep(const char *const *dead_holders, size_t n, int64_t *released);

/*
 * One round trip: adds a batch of refusal counts (rows_json: denials.c's JSON
 * array) to tollgate.denials (tollgate.denials_add), once per batch_id (a
 * UUID): resending a batch that was applied adds nothing. TG_ERROR: the
 * database is unavailable; TG_DECLINED: it refused the batch (as for
 * tg_db_identify).
 */
int tg_db_denials_add(const char *batch_id, const char *rows_json);

/*
 * One round trip: stores a batch of MCP audit rows (rows_json: a JSON array of
 * mcp_access.c's rows) with tollgate.mcp_calls_add, idempotent by call id;
 * *inserted gets the rows new to the table. TG_ERROR: the database is
 * unavailable; TG_DECLINED: it refused the batch.
 */
int tg_db_mcp_calls_add(const char *rows_json, int64_t *inserted);

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
                const char *const *params, struct tg_db_rows *rows, char *err, size_t err_size);

/*
 * Runs one parameterised statement on a pooled connection, unprepared (for
 * rare calls: the admin API, reports, metrics), text parameters (NULL for SQL
 * NULL), rows in r->arena. TG_DECLINED: the server refused it; sqlstate (6
 * bytes) and err get its SQLSTATE and primary message (never its detail, which
 * may quote values). TG_ERROR: the database is unavailable. A read_only
 * statement whose connection broke (a database restart) is retried once on a
 * fresh one; any other is not, as it may have committed.
 */
int tg_db_call(struct tg_request *r, const char *sql, int n_params, const char *const *params,
               bool read_only, struct tg_db_rows *rows, char *sqlstate, char *err, size_t err_size);

/*
 * Runs one parameterised query and calls row(arg, n_cols, cells) for each row
 * as it arrives (libpq's single-row mode: memory stays flat however many rows),
 * column names first (as a row, once). NULL cells are NULL. row returns TG_OK
 * to go on; anything else stops (the rest is discarded) and is returned.
 * TG_ERROR with the server's message in err when the query fails.
 */
typedef int (*tg_db_row_fn)(void *arg, int n_cols, const char *const *cells);
int tg_db_query_each(struct tg_db_conn *conn, const char *sql, int n_params,
                     const char *const *params, tg_db_row_fn row, void *arg, char *err,
                     size_t err_size);

/*
 * On a pooled connection: every row of tollgate.prices (price.c's columns), to
 * row as tg_db_query_each calls it (column names first). TG_ERROR: the
 * database is unavailable or refused.
 */
int tg_db_each_price(tg_db_row_fn row, void *arg);

/* Runs a multi-statement script (a migration) as is. */
int tg_db_exec_script(struct tg_db_conn *conn, const char *sql, char *err, size_t err_size);

#endif
