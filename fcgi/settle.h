/*
 * settle.h — the settle step's group commit: the usage rows of many requests
 * settled in one round trip and one commit (tollgate.settle_batch).
 *
 * Leader and followers: a thread that settles puts its record on the process's
 * queue; if no batch is in flight it becomes the leader, takes everything queued
 * (its own record included) and settles it in one statement, while threads that
 * arrive meanwhile queue up for the next batch. A lone request pays one round
 * trip and no hand-off; under load one commit covers many requests.
 *
 * A batch the database refused (an SQL error, not an outage) is retried one
 * record at a time, so one poisoned record cannot block the others: that record
 * goes to the spool's dead letter. When the database is unavailable the batch
 * goes to the spool (fsync'd) and is replayed later. Either way the journal is
 * told the records are safe (tg_journal_settled), so recovery skips them.
 * Not here: the usage row's SQL (sql/010_settle_batch.sql), pricing.
 */
#ifndef TG_SETTLE_H
#define TG_SETTLE_H

#include "common.h"

struct tg_config;
struct tg_request;
struct tg_usage_record;

/* Per-process set-up: how long a settler waits for its batch. */
void tg_settle_init(const struct tg_config *config);

/* What became of a record given to tg_settle_usage. */
enum tg_settle_result {
    TG_SETTLED,        /* its usage row is committed in PostgreSQL (cost known) */
    TG_SETTLE_SPOOLED, /* the database was unavailable: it waits in the spool */
    TG_SETTLE_PENDING, /* queued past the deadline: a later batch settles it */
    TG_SETTLE_REFUSED, /* PostgreSQL refused it: in the dead letter, logged */
    TG_SETTLE_LOST,    /* neither the database nor the spool took it (logged) */
};

/*
 * Settles rec (copied; the caller keeps ownership) with whatever else is queued,
 * waiting at most the database's deadlines. journal_slot is the journal file that
 * holds the request's records (-1: none). *cost_micros is set for TG_SETTLED.
 */
enum tg_settle_result tg_settle_usage(const char *log_id, const struct tg_usage_record *rec,
                                      int journal_slot, int64_t *cost_micros);

/*
 * Settles records for which nobody waits (their waiters gave up, or recovery
 * queued them): leads batches while records wait and no other thread leads.
 * The sweeper calls it, and so does shutdown.
 * Returns how many records its batches took.
 */
int tg_settle_flush(void);

/*
 * The pipeline's settle step for a request that went upstream: writes its usage
 * to the journal (journal.h), settles it with the group commit (idempotent by
 * request id) and sets r->cost_micros; runs even when the client went away.
 * When the database cannot take the row it goes to the spool and the reply is
 * priced by the worker's prices (price.h). TG_OK when the row is in the
 * database, the spool or the dead letter; TG_ERROR when none could take it
 * (logged; the journal keeps it for recovery).
 */
int tg_settle_request(struct tg_request *r);

/* A dead worker's record, for tg_journal_recover: TG_OK once it is safe. */
int tg_settle_recovered(const char *log_id, const struct tg_usage_record *rec);

/* Records queued and not yet settled (for shutdown's log and tests). */
size_t tg_settle_queued(void);

#endif
