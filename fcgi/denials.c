/*
 * denials.c — refusals counted in memory, sent in batches (contract in
 * denials.h).
 */
#include "denials.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "db.h"
#include "jsafe.h"
#include "log.h"
#include "request.h"

/* ---- the table ---- */

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The key's hash; strings include their NUL so ("ab","c") and ("a","bc") differ. */
static uint64_t key_hash(const struct tg_denials_key *k, const char *group, const char *user,
                         const char *reason)
{
    uint64_t h = 14695981039346656037ULL;
    h = fnv1a(h, &k->day, sizeof(k->day));
    h = fnv1a(h, &k->http_status, sizeof(k->http_status));
    h = fnv1a(h, &k->api_key_id, sizeof(k->api_key_id));
    h = fnv1a(h, group, strlen(group) + 1);
    h = fnv1a(h, user, strlen(user) + 1);
    return fnv1a(h, reason, strlen(reason) + 1);
}

static bool same_key(const struct tg_denials_counter *c, const struct tg_denials_key *k,
                     const char *group, const char *user, const char *reason)
{
    return c->day == k->day && c->http_status == k->http_status && c->api_key_id == k->api_key_id &&
           strcmp(c->group_id, group) == 0 && strcmp(c->user_id, user) == 0 &&
           strcmp(c->reason, reason) == 0;
}

static int count_overflow(struct tg_denials_table *t, int32_t day, uint64_t n)
{
    struct tg_denials_counter *o = &t->overflow;
    if (o->requests == 0) {
        o->day = day;
        o->http_status = 0;
        o->api_key_id = 0;
        o->group_id[0] = o->user_id[0] = '\0';
        snprintf(o->reason, sizeof(o->reason), "%s", TG_DENIALS_OVERFLOW);
    }
    o->requests += n;
    return TG_DECLINED;
}

void tg_denials_table_clear(struct tg_denials_table *t)
{
    memset(t, 0, sizeof(*t));
}

int tg_denials_table_add(struct tg_denials_table *t, const struct tg_denials_key *k, uint64_t n)
{
    const char *group = or_empty(k->group_id), *user = or_empty(k->user_id);
    const char *reason = k->reason != NULL ? k->reason : "rejected";
    /* an id cut short would be charged to someone else: count it apart instead */
    if (strlen(group) > TG_DENIALS_ID_MAX || strlen(user) > TG_DENIALS_ID_MAX ||
        strlen(reason) > TG_DENIALS_REASON_MAX)
        return count_overflow(t, k->day, n);
    size_t mask = TG_DENIALS_SLOTS - 1;
    for (size_t i = (size_t)key_hash(k, group, user, reason) & mask;; i = (i + 1) & mask) {
        struct tg_denials_counter *c = &t->slots[i];
        if (c->requests == 0) {
            /* a free slot ends the probe: the key is new. Keeping a quarter of the
             * slots free keeps probes short and guarantees one is found. */
            if (t->n_keys >= TG_DENIALS_MAX_KEYS)
                return count_overflow(t, k->day, n);
            c->day = k->day;
            c->http_status = k->http_status;
            c->api_key_id = k->api_key_id;
            snprintf(c->group_id, sizeof(c->group_id), "%s", group);
            snprintf(c->user_id, sizeof(c->user_id), "%s", user);
            snprintf(c->reason, sizeof(c->reason), "%s", reason);
            c->requests = n;
            t->n_keys++;
            return TG_OK;
        }
        if (same_key(c, k, group, user, reason)) {
            c->requests += n;
            return TG_OK;
        }
    }
}

uint64_t tg_denials_table_total(const struct tg_denials_table *t)
{
    uint64_t total = t->overflow.requests;
    for (size_t i = 0; i < TG_DENIALS_SLOTS; i++)
        total += t->slots[i].requests;
    return total;
}

static json_t *string_or_null(const char *s)
{
    return s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *counter_json(const struct tg_denials_counter *c)
{
    char day[16];
    time_t at = (time_t)c->day * 86400;
    struct tm tm;
    if (gmtime_r(&at, &tm) == NULL || strftime(day, sizeof(day), "%Y-%m-%d", &tm) == 0)
        return NULL;
    return json_pack("{s:s, s:o, s:o, s:o, s:s, s:i, s:I}", "day", day, "group_id",
                     string_or_null(c->group_id), "user_id", string_or_null(c->user_id),
                     "api_key_id", c->api_key_id != 0 ? json_integer(c->api_key_id) : json_null(),
                     "reason", c->reason, "http_status", c->http_status, "requests",
                     (json_int_t)c->requests);
}

char *tg_denials_table_json(const struct tg_denials_table *t)
{
    json_t *rows = json_array();
    bool failed = rows == NULL;
    for (size_t i = 0; !failed && i <= TG_DENIALS_SLOTS; i++) {
        const struct tg_denials_counter *c = i < TG_DENIALS_SLOTS ? &t->slots[i] : &t->overflow;
        if (c->requests > 0)
            failed = json_array_append_new(rows, counter_json(c)) != 0;
    }
    char *text = failed ? NULL : tg_jsafe_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    return text;
}

bool tg_denials_counts(int status, bool upstream_contacted, const char *outcome)
{
    if (status < 400 || upstream_contacted)
        return false;
    return outcome == NULL ||
           (strncmp(outcome, "upstream_", 9) != 0 && strcmp(outcome, "client_disconnected") != 0);
}

int32_t tg_denials_day(time_t t)
{
    return (int32_t)(t >= 0 ? t / 86400 : -((-t + 86399) / 86400));
}

/* ---- the process's counters ---- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tg_denials_table tables[2];
static struct tg_denials_table *live = &tables[0]; /* under lock */

/* The flusher's own (under flush_lock): the batch being sent, or kept for a retry. */
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tg_denials_table *batch = &tables[1];
static char batch_id[37];
static bool batch_kept;

void tg_denials_record(const struct tg_request *r)
{
    if (!tg_denials_counts(r->status, r->upstream_contacted, r->outcome))
        return;
    const char *reason = r->outcome;
    /* an error answered outside the error record never left outcome "ok" */
    if (reason == NULL || strcmp(reason, "ok") == 0)
        reason = "rejected";
    struct tg_denials_key k = {
        .day = tg_denials_day(time(NULL)),
        .group_id = r->identity.group_id,
        .user_id = r->identity.user_id,
        .api_key_id = r->identity.api_key_id,
        .reason = reason,
        .http_status = r->status,
    };
    pthread_mutex_lock(&lock);
    tg_denials_table_add(live, &k, 1);
    pthread_mutex_unlock(&lock);
}

/* Sends the batch. TG_OK: the database has it (or refused it: dropped); TG_ERROR: kept. */
static int send_batch(void)
{
    uint64_t total = tg_denials_table_total(batch);
    char *rows = tg_denials_table_json(batch);
    if (rows == NULL) {
        tg_log_error(NULL, "could not send %" PRIu64 " denial counts now: out of memory", total);
        return TG_ERROR;
    }
    int rc = tg_db_denials_add(batch_id, rows);
    free(rows);
    if (rc == TG_ERROR) {
        tg_log_warn(NULL, "database unavailable: %" PRIu64 " denial counts kept for the next flush",
                    total);
        return TG_ERROR;
    }
    if (rc != TG_OK)
        tg_log_error(NULL, "could not record %" PRIu64 " denial counts: batch %s refused", total,
                     batch_id);
    return TG_OK;
}

int tg_denials_flush(void)
{
    int rc = TG_OK;
    pthread_mutex_lock(&flush_lock);
    /* a retried batch went first: what was counted meanwhile follows in a second round */
    for (int round = 0, rounds = batch_kept ? 2 : 1; round < rounds; round++) {
        if (!batch_kept) {
            pthread_mutex_lock(&lock);
            struct tg_denials_table *emptied = batch;
            batch = live;
            live = emptied; /* cleared when its batch was sent */
            pthread_mutex_unlock(&lock);
            if (batch->n_keys == 0 && batch->overflow.requests == 0)
                break;
            tg_crypto_uuid4(batch_id);
            batch_kept = true;
        }
        rc = send_batch();
        if (rc != TG_OK)
            break;
        tg_denials_table_clear(batch);
        batch_kept = false;
    }
    pthread_mutex_unlock(&flush_lock);
    return rc;
}

uint64_t tg_denials_unsent(void)
{
    pthread_mutex_lock(&flush_lock);
    uint64_t n = batch_kept ? tg_denials_table_total(batch) : 0;
    pthread_mutex_lock(&lock);
    n += tg_denials_table_total(live);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&flush_lock);
    return n;
}
