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

/* What tollgate.reserve answered (strings in the request's arena). */
struct tg_db_reservation {
    const char *status; /* ok, unknown_key, revoked, expired, model_not_allowed,
                           quota_exceeded, rate_limited */
    const char *denied_subject, *denied_metric, *denied_window;
    int64_t denied_limit;
    int64_t retry_after_s; /* -1: none */
    int64_t tokens_limit, tokens_remaining, tokens_reset_s;       /* -1: no such quota */
    int64_t requests_limit, requests_remaining, requests_reset_s; /* -1: no such quota */
    int64_t warn_used_pct;                                        /* -1: no warning */
    int64_t warn_limit;
    const char *warn_metric, *warn_reset;
    bool headers_added; /* quota.c's: the x-ratelimit headers went out once */
};

/*
 * One round trip: authenticates the key (SHA-256 key_hash), checks the model is
 * allowed and reserves the request's upper bound (input_tokens + max_output
 * tokens, and its price) on every quota row and global bucket that applies, all
 * or none (tollgate.reserve). Fills r->identity when the key is known.
 * buckets_json may be NULL. TG_ERROR: the database is unavailable.
 */
int tg_db_reserve(struct tg_request *r, const unsigned char *key_hash, int64_t input_tokens,
                  int64_t max_output_tokens, const char *holder, int64_t ttl_ms,
                  const char *buckets_json, struct tg_db_reservation *out);

/* Releases r's reservation without using it (a later check refused the request). */
int tg_db_release(struct tg_request *r);

/*
 * One round trip: writes the usage row, replaces the reservation by the actual
 * usage on every quota row, raises threshold alerts (tollgate.settle; idempotent
 * by request id). *alerts_json is a JSON array (malloc'd, caller frees) or NULL.
 */
int tg_db_settle(const char *log_id, const struct tg_usage_record *rec, int64_t *cost_micros,
                 char **alerts_json);

/* The holders ("host:pid") of reservations made on host. Caller frees each and the array. */
int tg_db_reservation_holders(const char *host, char ***holders, size_t *n);

/* Releases expired reservations and those of dead_holders (may be empty). */
int tg_db_sweep(const char *const *dead_holders, size_t n, int64_t *released);

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
