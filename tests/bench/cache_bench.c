/*
 * cache_bench.c — cache-bench, scripts/bench's figures for the response
 * cache's store: the host's shared-memory cache (fcgi/cache.h, what the
 * gateway uses) against an UNLOGGED PostgreSQL table (the alternative issue 11
 * names), each measured the same way.
 *
 *   cache-bench [-c CONNINFO] [-d SECONDS] [-t THREADS] [-k KEYS]
 *
 * For each store, entry size (2 KB and 32 KB) and thread count (1, then
 * THREADS, default 4), KEYS distinct entries (default 256) are stored first;
 * then, for SECONDS each (default 1), every thread in turn stores (replaces) a
 * random entry, then looks one up (a hit), timing every call:
 *   shm    tg_cache_put / tg_cache_get on a segment of its own (one handle
 *          shared by the threads, as a worker's threads share it);
 *   table  one connection per thread, prepared statements, binary key and body:
 *            store  INSERT ... ON CONFLICT (key) DO UPDATE (body, expires, last_used)
 *            hit    UPDATE ... SET last_used = now() WHERE key = $1 AND
 *                   expires > now() RETURNING body   (the LRU's touch: one round trip)
 *          on tollgate_cache_bench (key bytea primary key, body bytea, expires
 *          timestamptz, last_used timestamptz, indexed for the LRU's eviction),
 *          UNLOGGED, dropped at the end. Without -c the table is not measured.
 *
 * Output lines (scripts/bench parses them), latencies in microseconds:
 *   result STORE OP BYTES THREADS MEAN_US P50_US P99_US OPS_PER_S
 * Exit status 1 when a call fails (a miss counts as a failure: every lookup
 * must hit).
 *
 * libpq is used here directly (db.c is the gateway's only includer of it): the
 * bench measures the table alone, not db.c's pool.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

#define MAX_SAMPLES (1 << 20)
#define MAX_THREADS 64

enum store_kind { STORE_SHM, STORE_TABLE };
enum op { OP_STORE, OP_HIT };

struct run {
    enum store_kind kind;
    enum op op;
    size_t bytes;
    int keys;
    double seconds;
    struct tg_cache *cache;
    const char *conninfo;
};

struct worker {
    const struct run *run;
    unsigned seed;
    PGconn *conn;
    char *value;
    char *out;
    double *samples; /* microseconds */
    size_t n;
    int failed;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void key_of(int index, unsigned char key[TG_CACHE_KEY_BYTES])
{
    memset(key, 0xA5, TG_CACHE_KEY_BYTES);
    memcpy(key, &index, sizeof(index));
}

static void fill(char *buf, size_t len, unsigned *seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + rand_r(seed) % 26);
}

/* ---- the table ---- */

// clang-format off
static const char *const create_sql =
    "set client_min_messages = warning;"
    "drop table if exists tollgate_cache_bench;"
    "create unlogged table tollgate_cache_bench ("
    " key bytea primary key, body bytea not null,"
    " expires timestamptz not null, last_used timestamptz not null);"
    "create index on tollgate_cache_bench (last_used)";
static const char *const store_sql =
    "insert into tollgate_cache_bench (key, body, expires, last_used)"
    " values ($1, $2, now() + interval '5 minutes', now())"
    " on conflict (key) do update set body = excluded.body,"
    " expires = excluded.expires, last_used = excluded.last_used";
static const char *const hit_sql =
    "update tollgate_cache_bench set last_used = now()"
    " where key = $1 and expires > now() returning body";
// clang-format on

static PGconn *connect_table(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "cache-bench: could not connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PGresult *a = PQprepare(conn, "store", store_sql, 2, NULL);
    PGresult *b = PQprepare(conn, "hit", hit_sql, 1, NULL);
    bool ok = PQresultStatus(a) == PGRES_COMMAND_OK && PQresultStatus(b) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "cache-bench: could not prepare: %s", PQerrorMessage(conn));
    PQclear(a);
    PQclear(b);
    if (!ok) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static int table_store(PGconn *conn, const unsigned char *key, const char *value, size_t len)
{
    const char *params[2] = {(const char *)key, value};
    int lengths[2] = {TG_CACHE_KEY_BYTES, (int)len};
    int formats[2] = {1, 1};
    PGresult *res = PQexecPrepared(conn, "store", 2, params, lengths, formats, 1);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "cache-bench: store: %s", PQerrorMessage(conn));
    PQclear(res);
    return rc;
}

static int table_hit(PGconn *conn, const unsigned char *key, char *out, size_t cap)
{
    const char *params[1] = {(const char *)key};
    int lengths[1] = {TG_CACHE_KEY_BYTES};
    int formats[1] = {1};
    PGresult *res = PQexecPrepared(conn, "hit", 1, params, lengths, formats, 1);
    int rc = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        size_t len = (size_t)PQgetlength(res, 0, 0);
        if (len <= cap) {
            memcpy(out, PQgetvalue(res, 0, 0), len); /* the copy the worker would make */
            rc = 0;
        }
    } else {
        fprintf(stderr, "cache-bench: hit: %s (%d rows)", PQerrorMessage(conn), PQntuples(res));
    }
    PQclear(res);
    return rc;
}

/* ---- one timed call ---- */

static int call(struct worker *w, int index)
{
    const struct run *run = w->run;
    unsigned char key[TG_CACHE_KEY_BYTES];
    key_of(index, key);
    if (run->kind == STORE_SHM) {
        if (run->op == OP_STORE)
            return tg_cache_put(run->cache, key, w->value, run->bytes, NULL, 0, tg_now_ms(),
                                300000) == TG_OK
                       ? 0
                       : -1;
        size_t len = 0;
        return tg_cache_get(run->cache, key, tg_now_ms(), w->out, run->bytes, &len, NULL, 0) ==
                           TG_OK &&
                       len == run->bytes
                   ? 0
                   : -1;
    }
    if (run->op == OP_STORE)
        return table_store(w->conn, key, w->value, run->bytes);
    return table_hit(w->conn, key, w->out, run->bytes);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    const struct run *run = w->run;
    double end = now_us() + run->seconds * 1e6;
    while (w->n < MAX_SAMPLES) {
        int index = rand_r(&w->seed) % run->keys;
        double t0 = now_us();
        if (call(w, index) != 0) {
            w->failed = 1;
            break;
        }
        double t1 = now_us();
        w->samples[w->n++] = t1 - t0;
        if (t1 >= end)
            break;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs threads workers on run, prints its result line. 0, or -1 when a call failed. */
static int measure(struct run *run, int threads)
{
    static const char *const store_names[] = {"shm", "table"};
    static const char *const op_names[] = {"store", "hit"};
    struct worker workers[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    memset(workers, 0, sizeof(workers));
    int rc = 0;
    for (int i = 0; i < threads; i++) {
        struct worker *w = &workers[i];
        w->run = run;
        w->seed = 7919u * (unsigned)(i + 1);
        w->value = malloc(run->bytes);
        w->out = malloc(run->bytes);
        w->samples = malloc(sizeof(double) * MAX_SAMPLES);
        if (w->value == NULL || w->out == NULL || w->samples == NULL)
            rc = -1;
        else
            fill(w->value, run->bytes, &w->seed);
        if (rc == 0 && run->kind == STORE_TABLE && (w->conn = connect_table(run->conninfo)) == NULL)
            rc = -1;
    }
    double t0 = now_us();
    int started = 0;
    for (; rc == 0 && started < threads; started++)
        if (pthread_create(&ids[started], NULL, work, &workers[started]) != 0)
            rc = -1;
    for (int i = 0; i < started; i++)
        pthread_join(ids[i], NULL);
    double elapsed_s = (now_us() - t0) / 1e6;
    size_t total = 0;
    for (int i = 0; i < threads; i++) {
        total += workers[i].n;
        if (workers[i].failed)
            rc = -1;
    }
    double *all = total > 0 ? malloc(sizeof(double) * total) : NULL;
    if (rc == 0 && all != NULL) {
        size_t at = 0;
        double sum = 0;
        for (int i = 0; i < threads; i++)
            for (size_t k = 0; k < workers[i].n; k++) {
                sum += workers[i].samples[k];
                all[at++] = workers[i].samples[k];
            }
        qsort(all, total, sizeof(double), cmp_double);
        printf("result %s %s %zu %d %.2f %.2f %.2f %.0f\n", store_names[run->kind],
               op_names[run->op], run->bytes, threads, sum / (double)total, all[total / 2],
               all[total * 99 / 100], (double)total / elapsed_s);
        fflush(stdout);
    } else if (rc == 0) {
        rc = -1;
    }
    free(all);
    for (int i = 0; i < threads; i++) {
        free(workers[i].value);
        free(workers[i].out);
        free(workers[i].samples);
        PQfinish(workers[i].conn);
    }
    return rc;
}

/* Stores every key of run's size once, so that every lookup hits. */
static int prefill(struct run *run)
{
    struct worker w = {.run = run, .seed = 1};
    struct run store = *run;
    store.op = OP_STORE;
    w.run = &store;
    w.value = malloc(run->bytes);
    int rc = w.value != NULL ? 0 : -1;
    if (rc == 0 && run->kind == STORE_TABLE && (w.conn = connect_table(run->conninfo)) == NULL)
        rc = -1;
    if (rc == 0)
        fill(w.value, run->bytes, &w.seed);
    for (int i = 0; rc == 0 && i < run->keys; i++)
        rc = call(&w, i);
    free(w.value);
    PQfinish(w.conn);
    return rc;
}

static int create_table(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    PGresult *res = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, create_sql) : NULL;
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "cache-bench: could not create the table: %s", PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static void drop_table(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "drop table tollgate_cache_bench"));
    PQfinish(conn);
}

int main(int argc, char **argv)
{
    const char *conninfo = NULL;
    double seconds = 1.0;
    int threads = 4, keys = 256, opt;
    while ((opt = getopt(argc, argv, "c:d:t:k:")) != -1) {
        switch (opt) {
        case 'c': conninfo = optarg; break;
        case 'd': seconds = strtod(optarg, NULL); break;
        case 't': threads = (int)strtol(optarg, NULL, 10); break;
        case 'k': keys = (int)strtol(optarg, NULL, 10); break;
        default:
            fprintf(stderr,
                    "usage: cache-bench [-c CONNINFO] [-d SECONDS] [-t THREADS] [-k KEYS]\n");
            return 2;
        }
    }
    if (seconds <= 0 || threads < 1 || threads > MAX_THREADS || keys < 1) {
        fprintf(stderr, "cache-bench: bad -d, -t or -k\n");
        return 2;
    }
    char scope[64];
    snprintf(scope, sizeof(scope), "cache-bench-%ld", (long)getpid());
    struct tg_cache *cache = NULL;
    /* room for every 32 KB entry: nothing is evicted while measuring */
    size_t capacity = (size_t)keys * 40 * 1024 + TG_CACHE_SLOT_BYTES * 16;
    if (tg_cache_attach(scope, capacity, &cache) != TG_OK) {
        fprintf(stderr, "cache-bench: could not map the cache: %s\n", strerror(errno));
        return 1;
    }
    if (conninfo != NULL && create_table(conninfo) != 0) {
        tg_cache_detach(cache);
        tg_cache_unlink(scope);
        return 1;
    }
    static const size_t sizes[] = {2048, 32768};
    int rc = 0;
    for (int kind = STORE_SHM; rc == 0 && kind <= STORE_TABLE; kind++) {
        if (kind == STORE_TABLE && conninfo == NULL)
            break;
        for (size_t s = 0; rc == 0 && s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            struct run run = {.kind = (enum store_kind)kind,
                              .bytes = sizes[s],
                              .keys = keys,
                              .seconds = seconds,
                              .cache = cache,
                              .conninfo = conninfo};
            rc = prefill(&run);
            int counts[2] = {1, threads};
            for (int c = 0; rc == 0 && c < (threads > 1 ? 2 : 1); c++)
                for (int op = OP_STORE; rc == 0 && op <= OP_HIT; op++) {
                    run.op = (enum op)op;
                    rc = measure(&run, counts[c]);
                }
        }
    }
    if (conninfo != NULL)
        drop_table(conninfo);
    tg_cache_detach(cache);
    tg_cache_unlink(scope);
    if (rc != 0)
        fprintf(stderr, "cache-bench: a call failed\n");
    return rc == 0 ? 0 : 1;
}
