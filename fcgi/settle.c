/*
 * settle.c — group commit of usage rows (leader and followers, see settle.h).
 *
 * Queue items live on the heap: a waiter that gives up (its deadline passed)
 * leaves its item behind, and whoever completes the item frees it then.
 */
#include "settle.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "jsafe.h"
#include "journal.h"
#include "log.h"
#include "otel.h"
#include "otel_span.h"
#include "price.h"
#include "request.h"
#include "spool.h"
#include "usage.h"

#define BATCH_MAX 64

struct item {
    struct item *next;
    struct tg_usage_record rec; /* strings: copies owned by the item */
    char request_id[37];
    char ts[40];
    char *strings[7];
    int journal_slot;
    bool done;
    bool waiter_gone; /* nobody waits: whoever completes the item frees it */
    enum tg_settle_result result;
    int64_t cost_micros;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t done;
    struct item *head, *tail;
    size_t n;
    bool leading; /* a batch is in flight */
    long wait_ms;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER, .wait_ms = 15000};

void tg_settle_init(const struct tg_config *config)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q.done, &attr);
    pthread_condattr_destroy(&attr);
    /* a batch takes at most a connection wait, a statement and a retry on a fresh connection */
    q.wait_ms = 2 * (config->db_statement_timeout_ms + config->db_connect_timeout_ms) + 1000;
}

static void item_free(struct item *it)
{
    if (it == NULL)
        return;
    for (size_t i = 0; i < TG_ARRAY_LEN(it->strings); i++)
        free(it->strings[i]);
    free(it);
}

static const char *own(struct item *it, size_t i, const char *s)
{
    if (s == NULL)
        return NULL;
    it->strings[i] = strdup(s);
    return it->strings[i];
}

static struct item *item_new(const struct tg_usage_record *rec, int journal_slot)
{
    struct item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return NULL;
    it->rec = *rec;
    snprintf(it->request_id, sizeof(it->request_id), "%s", rec->request_id);
    snprintf(it->ts, sizeof(it->ts), "%s", rec->ts != NULL ? rec->ts : "");
    it->rec.request_id = it->request_id;
    it->rec.ts = rec->ts != NULL ? it->ts : NULL;
    const char *const in[] = {rec->user_id, rec->group_id,     rec->provider,  rec->model,
                              rec->outcome, rec->usage_source, rec->guard_rule};
    const char **out[] = {&it->rec.user_id,   &it->rec.group_id, &it->rec.provider,
                          &it->rec.model,     &it->rec.outcome,  &it->rec.usage_source,
                          &it->rec.guard_rule};
    for (size_t i = 0; i < TG_ARRAY_LEN(in); i++) {
        *out[i] = own(it, i, in[i]);
        if (in[i] != NULL && *out[i] == NULL) {
            item_free(it);
            return NULL;
        }
    }
    it->journal_slot = journal_slot;
    return it;
}

/* ---- one batch ---- */

/* NULL when out of memory: a batch short of a row would dead-letter the rest */
static char *encode_batch(struct item **items, size_t n)
{
    json_t *rows = json_array();
    bool failed = rows == NULL;
    for (size_t i = 0; i < n && !failed; i++)
        failed = json_array_append_new(rows, tg_usage_record_json(&items[i]->rec, SIZE_MAX)) != 0;
    char *text = failed ? NULL : tg_jsafe_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    return text;
}

/* The database cannot take these now: the spool keeps them (fsync'd) for replay. */
static void spool_items(struct item **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct item *it = items[i];
        if (tg_spool_append(&it->rec) == TG_OK) {
            it->result = TG_SETTLE_SPOOLED;
            tg_log_warn(it->request_id, "database unavailable: usage spooled for replay");
        } else {
            it->result = TG_SETTLE_LOST;
            tg_log_error(it->request_id,
                         "could not record usage: database and spool unavailable (model \"%s\", "
                         "input_tokens %lld, output_tokens %lld)",
                         it->rec.model != NULL ? it->rec.model : "",
                         (long long)it->rec.usage.input_tokens,
                         (long long)it->rec.usage.output_tokens);
        }
    }
}

static void settle_items(struct item **items, size_t n);

/* A refused batch: each record on its own, so only the poisoned one is set aside. */
static void settle_one_by_one(struct item **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        settle_items(&items[i], 1);
}

/*
 * Checks each record in C before anything is sent (token counts in range, a
 * UUID, bounded strings): one bad record would abort the batch's transaction.
 * A bad one goes to the dead letter; the others are packed to the front.
 */
static size_t keep_valid(struct item **items, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char why[256];
        struct item *it = items[i];
        if (tg_usage_record_check(&it->rec, why, sizeof(why)) == TG_OK) {
            items[kept++] = it;
            continue;
        }
        it->result = tg_spool_dead_letter(it->request_id, &it->rec, why) == TG_OK
                         ? TG_SETTLE_REFUSED
                         : TG_SETTLE_LOST;
    }
    return kept;
}

static void settle_items(struct item **items, size_t n)
{
    const char *log_id = items[0]->request_id;
    int64_t costs[BATCH_MAX];
    char *alerts = NULL;
    char why[256] = "";
    char *rows = encode_batch(items, n);
    int rc = rows != NULL ? tg_db_settle_batch(log_id, rows, n, costs, &alerts, why, sizeof(why),
                                               tg_journal_sync)
                          : TG_ERROR;
    free(rows);
    if (rc == TG_OK) {
        for (size_t i = 0; i < n; i++) {
            items[i]->result = TG_SETTLED;
            items[i]->cost_micros = costs[i];
        }
        if (alerts != NULL)
            tg_usage_report_alerts(log_id, alerts);
        free(alerts); /* the spool, if anything waits in it, is the sweeper's to replay */
    } else if (rc == TG_DECLINED && n > 1) {
        settle_one_by_one(items, n);
    } else if (rc == TG_DECLINED) {
        items[0]->result = tg_spool_dead_letter(log_id, &items[0]->rec, why) == TG_OK
                               ? TG_SETTLE_REFUSED
                               : TG_SETTLE_LOST;
    } else {
        spool_items(items, n);
    }
}

/* Leads one batch; called and returns with q.mu held. */
static void lead_locked(void)
{
    struct item *batch[BATCH_MAX];
    size_t n = 0;
    q.leading = true;
    while (q.head != NULL && n < BATCH_MAX) {
        batch[n++] = q.head;
        q.head = q.head->next;
        q.n--;
    }
    if (q.head == NULL)
        q.tail = NULL;
    pthread_mutex_unlock(&q.mu);

    struct item *valid[BATCH_MAX];
    memcpy(valid, batch, n * sizeof(*batch));
    size_t n_valid = keep_valid(valid, n);
    if (n_valid > 0)
        settle_items(valid, n_valid);
    const char *ids[BATCH_MAX];
    int slots[BATCH_MAX];
    size_t n_safe = 0;
    for (size_t i = 0; i < n; i++) {
        if (batch[i]->result == TG_SETTLE_LOST || batch[i]->journal_slot < 0)
            continue; /* a lost record stays open in the journal: recovery retries it */
        ids[n_safe] = batch[i]->request_id;
        slots[n_safe++] = batch[i]->journal_slot;
    }
    tg_journal_settled(ids, slots, n_safe);

    pthread_mutex_lock(&q.mu);
    for (size_t i = 0; i < n; i++) {
        batch[i]->done = true;
        if (batch[i]->waiter_gone)
            item_free(batch[i]);
    }
    q.leading = false;
    pthread_cond_broadcast(&q.done);
}

/* Appends it to the queue; q.mu held. */
static void push_locked(struct item *it)
{
    if (q.tail != NULL)
        q.tail->next = it;
    else
        q.head = it;
    q.tail = it;
    q.n++;
}

static void deadline_after(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

enum tg_settle_result tg_settle_usage(const char *log_id, const struct tg_usage_record *rec,
                                      int journal_slot, int64_t *cost_micros)
{
    struct item *it = item_new(rec, journal_slot);
    if (it == NULL) {
        tg_log_error(log_id, "could not queue usage for settling: out of memory");
        return tg_spool_append(rec) == TG_OK ? TG_SETTLE_SPOOLED : TG_SETTLE_LOST;
    }
    struct timespec deadline;
    deadline_after(&deadline, q.wait_ms);
    pthread_mutex_lock(&q.mu);
    push_locked(it);
    while (!it->done) {
        if (!q.leading) {
            lead_locked();
            continue;
        }
        if (pthread_cond_timedwait(&q.done, &q.mu, &deadline) == ETIMEDOUT && !it->done) {
            it->waiter_gone = true; /* the batch that takes it frees it */
            pthread_mutex_unlock(&q.mu);
            tg_log_warn(log_id, "usage not settled within %ld ms: it stays queued", q.wait_ms);
            return TG_SETTLE_PENDING;
        }
    }
    pthread_mutex_unlock(&q.mu);
    enum tg_settle_result result = it->result;
    if (result == TG_SETTLED)
        *cost_micros = it->cost_micros;
    item_free(it);
    return result;
}

int tg_settle_flush(void)
{
    int settled = 0;
    pthread_mutex_lock(&q.mu);
    while (q.head != NULL && !q.leading) {
        settled += (int)(q.n < BATCH_MAX ? q.n : BATCH_MAX);
        lead_locked();
    }
    pthread_mutex_unlock(&q.mu);
    return settled;
}

size_t tg_settle_queued(void)
{
    pthread_mutex_lock(&q.mu);
    size_t n = q.n;
    pthread_mutex_unlock(&q.mu);
    return n;
}

/* ---- the pipeline's settle step ---- */

static void record_of(struct tg_request *r, struct tg_usage_record *rec)
{
    *rec = (struct tg_usage_record){
        .request_id = r->request_id,
        .ts = r->started_at,
        .api_key_id = r->identity.api_key_id,
        .user_id = r->identity.user_id,
        .group_id = r->identity.group_id,
        .provider = tg_request_provider(r),
        .model = r->model->name,
        .usage = r->usage,
        .http_status = r->status,
        .latency_ms = tg_now_ms() - r->t_start_ms,
        .upstream_ms = r->upstream_ms,
        .stream = r->stream,
        .outcome = r->outcome,
        .usage_source = r->usage_source != NULL ? r->usage_source : "provider",
        .guard_rule = r->guard_rule,
        /* relay.c's start_stream stamps the first byte relayed (none: nothing came) */
        .has_ttft = r->stream && r->t_first_byte_ms > 0,
        .ttft_ms = r->stream && r->t_first_byte_ms > 0 ? r->t_first_byte_ms - r->t_start_ms : 0,
    };
}

int tg_settle_request(struct tg_request *r)
{
    int64_t started_ns = tg_otel_now_ns();
    struct tg_usage_record rec;
    record_of(r, &rec);
    r->reserved = false; /* settle consumes the reservation, whatever happens next */
    /* in the journal first: a kill -9 from here loses nothing (the batch syncs it) */
    tg_journal_end(r, &rec);
    int64_t cost = 0;
    enum tg_settle_result result = tg_settle_usage(r->request_id, &rec, r->journal_slot, &cost);
    /* committed, spooled or queued: the trace's "tollgate.settle" ends (enum's order) */
    static const char *const result_names[] = {"settled", "spooled", "pending", "refused", "lost"};
    tg_otel_span_settle(r, started_ns, result_names[result]);
    if (result == TG_SETTLED) {
        r->cost_micros = cost;
        return TG_OK;
    }
    /* not in the database yet (spooled, queued): the reply is priced by the worker */
    if (tg_price_cost(rec.model, r->started_at_ms, &r->usage, &cost) == TG_OK)
        r->cost_micros = cost;
    return result == TG_SETTLE_LOST ? TG_ERROR : TG_OK;
}

int tg_settle_recovered(const char *log_id, const struct tg_usage_record *rec)
{
    int64_t cost = 0;
    return tg_settle_usage(log_id, rec, -1, &cost) == TG_SETTLE_LOST ? TG_ERROR : TG_OK;
}
