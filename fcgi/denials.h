/*
 * denials.h — how many requests were refused before the provider, persisted
 * without a write per refusal: tollgate.denials (sql/008_denials.sql) holds
 * the counts per UTC day, group, user, key, reason and HTTP status.
 *
 * A refused request (401, 403, 429, 400, 503 …) writes no usage row, and its
 * reserve transaction writes nothing, by design: a burst of 429s must not
 * turn a quota row into a hot spot. So each worker process counts refusals in
 * a fixed-size table in its own memory, under one mutex (no allocation, no
 * I/O per request), and its sweeper thread sends that table every
 * quotas.sweep_interval_ms in one statement (tollgate.denials_add); the
 * graceful stop sends it once more.
 *
 * Exactly once. A flush swaps the live table out (requests go on counting in
 * a fresh one) and sends it as a batch with a UUID; denials_add applies a
 * batch id once. A batch the database did not take (down) is kept as it is
 * and sent again, with the same id, at the next flush, so a batch whose
 * commit succeeded but whose answer was lost (the connection broke, and
 * db.c retried) is not counted twice. Memory is two tables whatever happens.
 *
 * Bounded. A table holds TG_DENIALS_MAX_KEYS counters; once it has that many,
 * or when a group or user id is longer than TG_DENIALS_ID_MAX bytes (or a
 * reason longer than TG_DENIALS_REASON_MAX), a refusal is counted in the
 * table's one overflow counter: reason "overflow", no group, user or key,
 * status 0. Totals stay exact.
 *
 * Lost: on kill -9 or a crash, what was counted since the last flush (at most
 * one sweep interval), plus, while the database is down, the batch kept for
 * the retry; at a graceful stop with the database down, both as well (logged).
 *
 * Not here: usage rows of requests that reached the provider (usage.c), the
 * host's /metrics counters (metrics.c), the access log (access_log.c).
 */
#ifndef TG_DENIALS_H
#define TG_DENIALS_H

#include <time.h>

#include "common.h"

struct tg_request;

#define TG_DENIALS_MAX_KEYS 768  /* counters a table holds before the overflow */
#define TG_DENIALS_SLOTS 1024    /* hash slots: a power of two above MAX_KEYS */
#define TG_DENIALS_ID_MAX 128    /* longest group or user id counted as itself */
#define TG_DENIALS_REASON_MAX 31 /* longest reason counted as itself */
#define TG_DENIALS_OVERFLOW "overflow"

/*
 * Counts r if it is a refusal before the provider (tg_denials_counts): under
 * its UTC day, r->identity's group, user and key (NULL: none) and reason
 * r->outcome ("rejected" for an error answered with outcome "ok") with status
 * r->status. Call once per request, after it was answered. Never allocates.
 */
void tg_denials_record(const struct tg_request *r);

/*
 * Sends what was counted: first the batch kept from a flush that failed, if
 * any, with its id; then (if nothing was kept, or the kept one went through)
 * the live table, swapped out under the mutex, as a new batch. One statement
 * in the usual case; none when there is nothing to send. Call from one thread
 * at a time (the sweeper; at shutdown, after the sweeper stopped).
 * TG_OK: nothing is left to send (a batch the database refused as invalid is
 * logged and dropped: resending it would fail the same way). TG_ERROR: the
 * database is unavailable; the batch is kept for the next flush.
 */
int tg_denials_flush(void);

/* Requests counted in this process and not yet in the database. */
uint64_t tg_denials_unsent(void);

/* ---- the parts below are pure, for tests ---- */

/*
 * Is an answer a refusal before the provider? status >= 400 (the status sent;
 * 0 when the client left first) for a request whose provider was neither
 * reached (upstream_contacted) nor tried (outcome "upstream_…" or
 * "client_disconnected": those write a usage row).
 */
bool tg_denials_counts(int status, bool upstream_contacted, const char *outcome);

/* The UTC day of t, as days since 1970-01-01. */
int32_t tg_denials_day(time_t t);

/* What one refusal is counted under. Strings are borrowed; NULL and "" are "none". */
struct tg_denials_key {
    int32_t day; /* tg_denials_day() */
    const char *group_id;
    const char *user_id;
    int64_t api_key_id; /* 0: none */
    const char *reason; /* NULL counts as "rejected" */
    int http_status;
};

/* One counter: a key (strings copied in, "" for none) and its count. */
struct tg_denials_counter {
    int32_t day;
    int http_status;
    int64_t api_key_id;
    uint64_t requests; /* 0: a free slot */
    char group_id[TG_DENIALS_ID_MAX + 1];
    char user_id[TG_DENIALS_ID_MAX + 1];
    char reason[TG_DENIALS_REASON_MAX + 1];
};

/* An open-addressing hash table of counters, plus the overflow counter. */
struct tg_denials_table {
    struct tg_denials_counter slots[TG_DENIALS_SLOTS];
    size_t n_keys;                      /* slots in use */
    struct tg_denials_counter overflow; /* requests 0: unused */
};

/* Empties t (all counters zero). */
void tg_denials_table_clear(struct tg_denials_table *t);

/*
 * Adds n requests to k's counter in t, claiming a slot for a new key.
 * TG_OK: counted under k. TG_DECLINED: counted in the overflow counter (t is
 * full, or a string of k does not fit); the overflow keeps the day of its
 * first request.
 */
int tg_denials_table_add(struct tg_denials_table *t, const struct tg_denials_key *k, uint64_t n);

/* Requests counted in t, the overflow included. */
uint64_t tg_denials_table_total(const struct tg_denials_table *t);

/*
 * The counters of t as denials_add's p_rows: a JSON array of {"day":
 * "YYYY-MM-DD", "group_id", "user_id" (string or null), "api_key_id" (number
 * or null), "reason", "http_status", "requests"}, in slot order, the overflow
 * last. Malloc'd NUL-terminated text, the caller frees; NULL when out of
 * memory.
 */
char *tg_denials_table_json(const struct tg_denials_table *t);

#endif
