/*
 * db.c — the libpq pool and the gateway's few statements.
 *
 * A connection that breaks (server restart, network) is dropped and reopened on
 * its next use; a call that hit a broken connection is retried once on a fresh
 * one, which is safe because every statement here is idempotent (lookups, and
 * usage inserts keyed by request id).
 */
#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "log.h"
#include "request.h"

struct statement {
    const char *name;
    const char *sql;
    int n_params;
};

static const struct statement statements[] = {
    {"ping", "SELECT 1", 0},
    /* identify and reserve share their first 9 columns and their identity parameters */
    {"identify",
     "SELECT status, api_key_id, key_prefix, user_id, group_id, role, denied_subject, "
     "attribution FROM tollgate.identify($1::bytea, $2, $3, $4, $5::boolean, $6, $7, $8, $9)",
     9},
    {"reserve",
     "SELECT status, api_key_id, key_prefix, user_id, group_id, role, denied_subject, "
     "attribution, denied_metric, denied_window, denied_limit, retry_after_s, tokens_limit, "
     "tokens_remaining, tokens_reset_s, requests_limit, requests_remaining, requests_reset_s, "
     "warn_used_pct, warn_limit, warn_metric, "
     "to_char(warn_reset AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
     "FROM tollgate.reserve($10::uuid, $1::bytea, $9, $11::bigint, $12::bigint, $13, "
     "$14::int, $15::jsonb, $2, $3, $4, $5::boolean, $6, $7, $8, $16::bigint)",
     16},
    /* one round trip and one commit for many requests (settle.c's group commit) */
    {"settle_batch", "SELECT ord, cost_micros, alerts::text FROM tollgate.settle_batch($1::jsonb)",
     1},
    {"release", "SELECT tollgate.release($1::uuid)", 1},
    {"holders", "SELECT tollgate.reservation_holders($1)", 1},
    {"sweep", "SELECT tollgate.sweep_reservations($1::text[])", 1},
    /* idempotent by batch id, like settle by request id: a replayed batch adds nothing */
    {"denials_add", "SELECT tollgate.denials_add($1::jsonb, $2::uuid)", 2},
    /* idempotent by call id: a replayed batch of MCP audit rows adds nothing */
    {"mcp_calls_add", "SELECT tollgate.mcp_calls_add($1::jsonb)", 1},
};

struct pool_conn {
    PGconn *pg;
    bool in_use;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    struct pool_conn *conns;
    int n_conns;
    const char *url;
    char connect_timeout_s[16];
    char options[128];
    long wait_ms;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER};

int tg_db_pool_init(const struct tg_config *config)
{
    pool.conns = calloc((size_t)config->db_pool_size, sizeof(*pool.conns));
    if (pool.conns == NULL)
        return TG_ERROR;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool.freed, &attr);
    pthread_condattr_destroy(&attr);
    pool.n_conns = config->db_pool_size;
    pool.url = config->db_url;
    /* libpq's connect_timeout is in whole seconds, at least 2 */
    long secs = (config->db_connect_timeout_ms + 999) / 1000;
    snprintf(pool.connect_timeout_s, sizeof(pool.connect_timeout_s), "%ld", secs < 2 ? 2 : secs);
    /* tollgate.fixed_ts: this worker fixes each request's ts (see tollgate.settle) */
    snprintf(pool.options, sizeof(pool.options), "-c statement_timeout=%ld -c tollgate.fixed_ts=on",
             config->db_statement_timeout_ms);
    pool.wait_ms = config->db_statement_timeout_ms + config->db_connect_timeout_ms;
    return TG_OK;
}

void tg_db_pool_shutdown(void)
{
    for (int i = 0; i < pool.n_conns; i++)
        if (pool.conns[i].pg != NULL)
            PQfinish(pool.conns[i].pg);
    free(pool.conns);
    pool.conns = NULL;
    pool.n_conns = 0;
}

static PGconn *open_connection(const char *url, const char *timeout_s, const char *options)
{
    const char *keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
    const char *values[] = {url, timeout_s, options, "tollgate", NULL};
    return PQconnectdbParams(keys, values, 1);
}

static bool prepare_all(PGconn *pg, const char *request_id)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(statements); i++) {
        PGresult *res =
            PQprepare(pg, statements[i].name, statements[i].sql, statements[i].n_params, NULL);
        bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            tg_log_error(request_id, "could not prepare statement \"%s\": %s", statements[i].name,
                         PQerrorMessage(pg));
        PQclear(res);
        if (!ok)
            return false;
    }
    return true;
}

/* Takes a free pooled connection, waiting at most pool.wait_ms. */
static struct pool_conn *acquire(const char *request_id)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += pool.wait_ms / 1000;
    deadline.tv_nsec += (pool.wait_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        for (int i = 0; i < pool.n_conns; i++) {
            if (!pool.conns[i].in_use) {
                pool.conns[i].in_use = true;
                pthread_mutex_unlock(&pool.mu);
                return &pool.conns[i];
            }
        }
        if (pthread_cond_timedwait(&pool.freed, &pool.mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&pool.mu);
            tg_log_error(request_id, "could not get a database connection: pool exhausted");
            return NULL;
        }
    }
}

static void release(struct pool_conn *c)
{
    pthread_mutex_lock(&pool.mu);
    c->in_use = false;
    pthread_cond_signal(&pool.freed);
    pthread_mutex_unlock(&pool.mu);
}

static bool ensure_connected(struct pool_conn *c, const char *request_id)
{
    if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK)
        return true;
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = open_connection(pool.url, pool.connect_timeout_s, pool.options);
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
        /* libpq's message names host and socket, never the password */
        tg_log_error(request_id, "could not connect to the database: %s",
                     c->pg != NULL ? PQerrorMessage(c->pg) : "out of memory");
        PQfinish(c->pg);
        c->pg = NULL;
        return false;
    }
    if (!prepare_all(c->pg, request_id)) {
        PQfinish(c->pg);
        c->pg = NULL;
        return false;
    }
    return true;
}

/*
 * Runs a prepared statement, retrying once on a fresh connection when the
 * connection broke. Returns a PGresult with tuples (caller PQclears), or NULL.
 */
static PGresult *run_prepared_why(const char *request_id, const char *name, int n_params,
                                  const char *const *values, int *why);
static PGresult *run_prepared_meanwhile(const char *request_id, const char *name, int n_params,
                                        const char *const *values, int *why,
                                        void (*meanwhile)(void));

static PGresult *run_prepared(const char *request_id, const char *name, int n_params,
                              const char *const *values)
{
    int why;
    return run_prepared_why(request_id, name, n_params, values, &why);
}

/* The calling thread's last statement the server refused (run_prepared_why). */
static _Thread_local struct {
    char sqlstate[6];
    char message[256]; /* the primary message: never the detail, which may quote values */
} refused;

static void note_refusal(PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(refused.sqlstate, sizeof(refused.sqlstate), "%s", state != NULL ? state : "XX000");
    snprintf(refused.message, sizeof(refused.message), "%s",
             primary != NULL ? primary : "statement failed");
}

/* run_prepared, and *why: TG_OK, TG_DECLINED (the server refused the statement:
 * an SQL error, not an outage; see `refused`) or TG_ERROR (no answer: the
 * database is unavailable). */
static PGresult *run_prepared_why(const char *request_id, const char *name, int n_params,
                                  const char *const *values, int *why)
{
    return run_prepared_meanwhile(request_id, name, n_params, values, why, NULL);
}

/*
 * Sends the statement, runs meanwhile (if any) while the server executes it,
 * then reads its result (the last one, as PQexecPrepared returns).
 */
static PGresult *exec_prepared(PGconn *pg, const char *name, int n_params,
                               const char *const *values, void (*meanwhile)(void))
{
    if (meanwhile == NULL)
        return PQexecPrepared(pg, name, n_params, values, NULL, NULL, 0);
    int sent = PQsendQueryPrepared(pg, name, n_params, values, NULL, NULL, 0);
    meanwhile();
    if (!sent)
        return NULL;
    PGresult *last = NULL, *res;
    while ((res = PQgetResult(pg)) != NULL) {
        PQclear(last);
        last = res;
    }
    return last;
}

/* run_prepared_why, with meanwhile run while the server executes the statement. */
static PGresult *run_prepared_meanwhile(const char *request_id, const char *name, int n_params,
                                        const char *const *values, int *why,
                                        void (*meanwhile)(void))
{
    *why = TG_ERROR;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct pool_conn *c = acquire(request_id);
        if (c == NULL)
            return NULL;
        if (!ensure_connected(c, request_id)) {
            release(c);
            return NULL;
        }
        PGresult *res = exec_prepared(c->pg, name, n_params, values, meanwhile);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            release(c);
            *why = TG_OK;
            return res;
        }
        bool broken = PQstatus(c->pg) != CONNECTION_OK;
        tg_log_error(request_id, "could not run statement \"%s\": %s", name,
                     res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
        if (!broken)
            note_refusal(res);
        PQclear(res);
        if (broken) {
            PQfinish(c->pg);
            c->pg = NULL;
        }
        release(c);
        if (!broken) {
            *why = TG_DECLINED;
            return NULL; /* an SQL error: retrying would fail the same way */
        }
    }
    return NULL;
}

static void clear_result(void *res)
{
    PQclear(res);
}

int tg_db_ping(struct tg_request *r)
{
    PGresult *res = run_prepared(r->request_id, "ping", 0, NULL);
    if (res == NULL)
        return TG_ERROR;
    PQclear(res);
    return TG_OK;
}

static const char *cell(struct tg_request *r, PGresult *res, int col)
{
    if (PQgetisnull(res, 0, col))
        return NULL;
    return tg_arena_strdup(r->arena, PQgetvalue(res, 0, col));
}

static int64_t int_or(PGresult *res, int col, int64_t fallback)
{
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, col))
        return fallback;
    return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/*
 * Refusals that say "not now" rather than "never": connection exceptions (08),
 * transaction rollbacks such as deadlocks and serialization failures (40),
 * insufficient resources such as a full disk (53), operator intervention such
 * as a statement timeout or a shutdown (57), system errors (58), a lock not
 * available (55P03), a read-only transaction during a failover (25006), and
 * internal errors (XX). Anything else is the statement's fault.
 */
static bool refusal_is_transient(const char *sqlstate)
{
    static const char *const classes[] = {"08", "40", "53", "57", "58", "XX"};
    for (size_t i = 0; i < TG_ARRAY_LEN(classes); i++)
        if (strncmp(sqlstate, classes[i], 2) == 0)
            return true;
    return strcmp(sqlstate, "55P03") == 0 || strcmp(sqlstate, "25006") == 0;
}

const char *tg_db_settle_refusal(void)
{
    static _Thread_local char text[sizeof(refused.sqlstate) + sizeof(refused.message) + 4];
    snprintf(text, sizeof(text), "%s: %s", refused.sqlstate, refused.message);
    return text;
}

int tg_db_settle_batch(const char *log_id, const char *rows_json, size_t n, int64_t *cost_micros,
                       char **alerts_json, char *err, size_t err_size, void (*meanwhile)(void))
{
    const char *values[] = {rows_json};
    int why = TG_ERROR;
    *alerts_json = NULL;
    refused.sqlstate[0] = refused.message[0] = '\0';
    PGresult *res = run_prepared_meanwhile(log_id, "settle_batch", 1, values, &why, meanwhile);
    if (res == NULL) {
        if (why != TG_DECLINED || refusal_is_transient(refused.sqlstate))
            return TG_ERROR;
        snprintf(err, err_size, "%s", tg_db_settle_refusal());
        return TG_DECLINED;
    }
    int rows = PQntuples(res);
    for (size_t i = 0; i < n; i++)
        cost_micros[i] = -1;
    for (int i = 0; i < rows; i++) {
        long ord = strtol(PQgetvalue(res, i, 0), NULL, 10);
        if (ord >= 1 && (size_t)ord <= n)
            cost_micros[ord - 1] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (*alerts_json == NULL && !PQgetisnull(res, i, 2) &&
            strcmp(PQgetvalue(res, i, 2), "[]") != 0)
            *alerts_json = strdup(PQgetvalue(res, i, 2));
    }
    PQclear(res);
    for (size_t i = 0; i < n; i++) {
        if (cost_micros[i] < 0) { /* the function must answer every record */
            snprintf(err, err_size, "settle_batch gave no cost for record %zu", i + 1);
            free(*alerts_json);
            *alerts_json = NULL;
            return TG_DECLINED;
        }
    }
    return TG_OK;
}

/* The identity parameters ($1..$9) shared by identify and reserve. */
struct who_params {
    char hex[2 + 2 * TG_SHA256_LEN + 1];
    const char *values[9];
};

static void who_params(const struct tg_db_who *who, struct who_params *p)
{
    const char *key = NULL;
    if (who->key_hash != NULL) {
        memcpy(p->hex, "\\x", 2);
        tg_crypto_hex(who->key_hash, TG_SHA256_LEN, p->hex + 2);
        key = p->hex;
    }
    const char *values[] = {
        key,           who->user,      who->group,    who->role, who->create ? "t" : "f",
        who->end_user, who->end_group, who->endpoint, who->model};
    memcpy(p->values, values, sizeof(values));
}

/* Fills r->identity and the identify columns (0..7) of res's only row. */
static int read_who(struct tg_request *r, PGresult *res, struct tg_db_identified *out)
{
    if (tg_arena_cleanup_add(r->arena, clear_result, res) != TG_OK || PQntuples(res) != 1)
        return TG_ERROR;
    out->status = cell(r, res, 0);
    if (out->status == NULL)
        return TG_ERROR;
    r->identity.api_key_id = int_or(res, 1, 0);
    r->identity.key_prefix = cell(r, res, 2);
    r->identity.user_id = cell(r, res, 3);
    r->identity.group_id = cell(r, res, 4);
    r->identity.role = cell(r, res, 5);
    out->denied_subject = cell(r, res, 6);
    out->attribution = cell(r, res, 7);
    return TG_OK;
}

int tg_db_identify(struct tg_request *r, const struct tg_db_who *who, struct tg_db_identified *out)
{
    struct who_params p;
    who_params(who, &p);
    int why;
    PGresult *res = run_prepared_why(r->request_id, "identify", 9, p.values, &why);
    if (res == NULL)
        return why;
    return read_who(r, res, out);
}

int tg_db_reserve(struct tg_request *r, const struct tg_db_who *who, int64_t input_tokens,
                  int64_t max_output_tokens, const char *holder, int64_t ttl_ms,
                  const char *buckets_json, int64_t max_web_searches, struct tg_db_reservation *out)
{
    struct who_params p;
    who_params(who, &p);
    char in[24], max_out[24], ttl[24], searches[24];
    snprintf(searches, sizeof(searches), "%" PRId64, max_web_searches);
    snprintf(in, sizeof(in), "%" PRId64, input_tokens);
    snprintf(max_out, sizeof(max_out), "%" PRId64, max_output_tokens);
    snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    const char *values[16];
    memcpy(values, p.values, sizeof(p.values));
    values[15] = searches;
    values[9] = r->request_id;
    values[10] = in;
    values[11] = max_out;
    values[12] = holder;
    values[13] = ttl;
    values[14] = buckets_json;
    int why;
    PGresult *res = run_prepared_why(r->request_id, "reserve", 16, values, &why);
    if (res == NULL)
        return why;
    if (read_who(r, res, &out->who) != TG_OK)
        return TG_ERROR;
    out->status = out->who.status;
    out->denied_subject = out->who.denied_subject;
    out->denied_metric = cell(r, res, 8);
    out->denied_window = cell(r, res, 9);
    out->denied_limit = int_or(res, 10, 0);
    out->retry_after_s = int_or(res, 11, -1);
    out->tokens_limit = int_or(res, 12, -1);
    out->tokens_remaining = int_or(res, 13, -1);
    out->tokens_reset_s = int_or(res, 14, -1);
    out->requests_limit = int_or(res, 15, -1);
    out->requests_remaining = int_or(res, 16, -1);
    out->requests_reset_s = int_or(res, 17, -1);
    out->warn_used_pct = int_or(res, 18, -1);
    out->warn_limit = int_or(res, 19, 0);
    out->warn_metric = cell(r, res, 20);
    out->warn_reset = cell(r, res, 21);
    return TG_OK;
}

int tg_db_release(struct tg_request *r)
{
    const char *values[] = {r->request_id};
    PGresult *res = run_prepared(r->request_id, "release", 1, values);
    if (res == NULL)
        return TG_ERROR;
    PQclear(res);
    return TG_OK;
}

int tg_db_reservation_holders(const char *host, char ***holders, size_t *n)
{
    const char *values[] = {host};
    PGresult *res = run_prepared(NULL, "holders", 1, values);
    *holders = NULL;
    *n = 0;
    if (res == NULL)
        return TG_ERROR;
    int rows = PQntuples(res);
    *holders = calloc((size_t)rows + 1, sizeof(char *));
    for (int i = 0; *holders != NULL && i < rows; i++)
        if (!PQgetisnull(res, i, 0))
            (*holders)[(*n)++] = strdup(PQgetvalue(res, i, 0));
    PQclear(res);
    return *holders != NULL ? TG_OK : TG_ERROR;
}

/* A text[] literal of simple tokens ("host:pid" has no quotes or commas). */
static char *text_array(const char *const *items, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 3;
    char *out = malloc(len);
    if (out == NULL)
        return NULL;
    size_t at = 0;
    out[at++] = '{';
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(out + at, len - at, "%s\"%s\"", i > 0 ? "," : "", items[i]);
    out[at++] = '}';
    out[at] = '\0';
    return out;
}

int tg_db_sweep(const char *const *dead_holders, size_t n, int64_t *released)
{
    char *list = text_array(dead_holders, n);
    if (list == NULL)
        return TG_ERROR;
    const char *values[] = {list};
    PGresult *res = run_prepared(NULL, "sweep", 1, values);
    free(list);
    if (res == NULL)
        return TG_ERROR;
    *released = int_or(res, 0, 0);
    PQclear(res);
    return TG_OK;
}

int tg_db_denials_add(const char *batch_id, const char *rows_json)
{
    const char *values[] = {rows_json, batch_id};
    int why;
    PGresult *res = run_prepared_why(NULL, "denials_add", 2, values, &why);
    if (res == NULL)
        return why;
    PQclear(res);
    return TG_OK;
}

int tg_db_mcp_calls_add(const char *rows_json, int64_t *inserted)
{
    const char *values[] = {rows_json};
    int why;
    PGresult *res = run_prepared_why(NULL, "mcp_calls_add", 1, values, &why);
    if (res == NULL)
        return why;
    *inserted = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return TG_OK;
}

/* ---- single connection (tollgatectl) ---- */

struct tg_db_conn {
    PGconn *pg;
};

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

struct tg_db_conn *tg_db_connect(const char *url, char *err, size_t err_size)
{
    struct tg_db_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    conn->pg = open_connection(url, "10", "");
    if (conn->pg == NULL || PQstatus(conn->pg) != CONNECTION_OK) {
        snprintf(err, err_size, "could not connect to the database: %s",
                 conn->pg != NULL ? PQerrorMessage(conn->pg) : "out of memory");
        PQfinish(conn->pg);
        free(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn->pg, ignore_notice, NULL);
    return conn;
}

void tg_db_close(struct tg_db_conn *conn)
{
    if (conn == NULL)
        return;
    PQfinish(conn->pg);
    free(conn);
}

static void copy_error(PGresult *res, PGconn *pg, char *err, size_t err_size)
{
    const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(pg);
    snprintf(err, err_size, "%s", msg);
    size_t len = strlen(err);
    while (len > 0 && (err[len - 1] == '\n' || err[len - 1] == ' '))
        err[--len] = '\0';
}

static int copy_rows(PGresult *res, struct tg_arena *arena, struct tg_db_rows *rows)
{
    rows->n_rows = PQntuples(res);
    rows->n_cols = PQnfields(res);
    rows->col_names = tg_arena_calloc(arena, sizeof(char *) * (size_t)(rows->n_cols + 1));
    rows->cells =
        tg_arena_calloc(arena, sizeof(char *) * ((size_t)rows->n_rows * (size_t)rows->n_cols + 1));
    if (rows->col_names == NULL || rows->cells == NULL)
        return TG_ERROR;
    for (int c = 0; c < rows->n_cols; c++)
        rows->col_names[c] = tg_arena_strdup(arena, PQfname(res, c));
    for (int i = 0; i < rows->n_rows; i++)
        for (int c = 0; c < rows->n_cols; c++)
            rows->cells[i * rows->n_cols + c] =
                PQgetisnull(res, i, c) ? NULL : tg_arena_strdup(arena, PQgetvalue(res, i, c));
    return TG_OK;
}

int tg_db_query(struct tg_db_conn *conn, struct tg_arena *arena, const char *sql, int n_params,
                const char *const *params, struct tg_db_rows *rows, char *err, size_t err_size)
{
    PGresult *res = PQexecParams(conn->pg, sql, n_params, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        copy_error(res, conn->pg, err, err_size);
        PQclear(res);
        return TG_ERROR;
    }
    int rc = rows != NULL ? copy_rows(res, arena, rows) : TG_OK;
    if (rc != TG_OK)
        snprintf(err, err_size, "out of memory");
    PQclear(res);
    return rc;
}

/* One attempt of tg_db_call; *broken: the connection died under it. */
static int call_once(struct tg_request *r, const char *sql, int n_params, const char *const *params,
                     struct tg_db_rows *rows, char *sqlstate, char *err, size_t err_size,
                     bool *broken)
{
    *broken = false;
    struct pool_conn *c = acquire(r->request_id);
    if (c == NULL)
        return TG_ERROR;
    if (!ensure_connected(c, r->request_id)) {
        release(c);
        return TG_ERROR;
    }
    PGresult *res = PQexecParams(c->pg, sql, n_params, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    int rc = TG_OK;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        if (rows != NULL && copy_rows(res, r->arena, rows) != TG_OK)
            rc = TG_ERROR;
    } else if (PQstatus(c->pg) != CONNECTION_OK) {
        tg_log_error(r->request_id, "could not run a statement: %s", PQerrorMessage(c->pg));
        PQfinish(c->pg);
        c->pg = NULL;
        *broken = true;
        rc = TG_ERROR;
    } else {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(sqlstate, 6, "%s", state != NULL ? state : "XX000");
        snprintf(err, err_size, "%s", primary != NULL ? primary : "statement failed");
        rc = TG_DECLINED;
    }
    PQclear(res);
    release(c);
    return rc;
}

static int each_row(PGresult *res, bool first, tg_db_row_fn row, void *arg);

int tg_db_each_price(tg_db_row_fn row, void *arg)
{
    static const char sql[] =
        "SELECT model, floor(extract(epoch FROM effective_from) * 1000)::bigint, "
        "input_micros_per_mtok, output_micros_per_mtok, cache_read_micros_per_mtok, "
        "cache_write_micros_per_mtok, cache_write_1h_micros_per_mtok, "
        "long_context_threshold_tokens, long_input_micros_per_mtok, long_output_micros_per_mtok, "
        "long_cache_read_micros_per_mtok, long_cache_write_micros_per_mtok, "
        "long_cache_write_1h_micros_per_mtok, web_search_micros_per_use FROM tollgate.prices";
    struct pool_conn *c = acquire(NULL);
    if (c == NULL)
        return TG_ERROR;
    if (!ensure_connected(c, NULL)) {
        release(c);
        return TG_ERROR;
    }
    PGresult *res = PQexecParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0);
    int rc = TG_ERROR;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        rc = each_row(res, true, row, arg);
    else if (PQstatus(c->pg) != CONNECTION_OK) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    PQclear(res);
    release(c);
    return rc;
}

int tg_db_call(struct tg_request *r, const char *sql, int n_params, const char *const *params,
               bool read_only, struct tg_db_rows *rows, char *sqlstate, char *err, size_t err_size)
{
    snprintf(sqlstate, 6, "%s", "");
    err[0] = '\0';
    bool broken;
    int rc = call_once(r, sql, n_params, params, rows, sqlstate, err, err_size, &broken);
    /* a read on a connection a database restart broke is safe to run again */
    if (rc == TG_ERROR && broken && read_only)
        rc = call_once(r, sql, n_params, params, rows, sqlstate, err, err_size, &broken);
    return rc;
}

#define EACH_MAX_COLS 64

static int each_row(PGresult *res, bool first, tg_db_row_fn row, void *arg)
{
    const char *cells[EACH_MAX_COLS];
    int n = PQnfields(res);
    if (n > EACH_MAX_COLS)
        return TG_ERROR;
    int rc = TG_OK;
    if (first) {
        for (int c = 0; c < n; c++)
            cells[c] = PQfname(res, c);
        rc = row(arg, n, cells);
    }
    for (int i = 0; rc == TG_OK && i < PQntuples(res); i++) {
        for (int c = 0; c < n; c++)
            cells[c] = PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c);
        rc = row(arg, n, cells);
    }
    return rc;
}

int tg_db_query_each(struct tg_db_conn *conn, const char *sql, int n_params,
                     const char *const *params, tg_db_row_fn row, void *arg, char *err,
                     size_t err_size)
{
    if (!PQsendQueryParams(conn->pg, sql, n_params, NULL, params, NULL, NULL, 0) ||
        !PQsetSingleRowMode(conn->pg)) {
        copy_error(NULL, conn->pg, err, err_size);
        return TG_ERROR;
    }
    int rc = TG_OK;
    bool first = true, failed = false;
    PGresult *res;
    while ((res = PQgetResult(conn->pg)) != NULL) { /* read to the end, even after a stop */
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            if (rc == TG_OK && !failed)
                rc = each_row(res, first, row, arg);
            first = false;
        } else if (!failed) {
            copy_error(res, conn->pg, err, err_size);
            failed = true;
        }
        PQclear(res);
    }
    return failed ? TG_ERROR : rc;
}

int tg_db_exec_script(struct tg_db_conn *conn, const char *sql, char *err, size_t err_size)
{
    PGresult *res = PQexec(conn->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        copy_error(res, conn->pg, err, err_size);
        PQclear(res);
        return TG_ERROR;
    }
    PQclear(res);
    return TG_OK;
}
