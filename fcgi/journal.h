/*
 * journal.h — each worker process's journal of requests in flight, so that a
 * request a provider served is settled even if its worker dies (kill -9, OOM,
 * a crash) before settling it.
 *
 * Every worker process appends framed records (frame.h) to its own file in the
 * spool directory, journal-<host>-<pid>-<n>.tgj, which it holds locked (flock)
 * for as long as it lives:
 *   B  begin     before the upstream call: who, which model, the reserved bound;
 *   P  progress  during a stream, before the client receives content: the
 *                output streamed so far (never less than the client has seen);
 *   E  end       the usage record as it will be settled (fdatasync'd first when
 *                spool.journal_fsync is on); the only record of a request
 *                settled without going upstream (a block, a cache hit);
 *   S  settled   after the group commit, the spool or the dead letter took it.
 * A file whose lock can be taken belongs to a dead process: the sweeper of any
 * live worker of the host (and every worker when it starts) settles the
 * requests of such a file that have no S — from their E if they have one, else
 * as outcome "worker_lost" at an estimate no lower than what was streamed
 * (usage_source "estimated"), or at the reserved bound when nothing was
 * (usage_source "reserved_bound") — and then deletes the file. Settling is
 * idempotent by request id, so a recovery cut short is simply repeated.
 *
 * B and P records are not synced: they survive the death of the process (they
 * are in the page cache) but not a power loss; E records are synced when
 * spool.journal_fsync is on, by the group commit's leader while PostgreSQL
 * executes its batch (one fdatasync for the batch). Not here: the usage row
 * (settle.c), the spool.
 */
#ifndef TG_JOURNAL_H
#define TG_JOURNAL_H

#include "common.h"

struct tg_config;
struct tg_request;
struct tg_usage_record;

/*
 * Creates this process's journal in config->spool_dir and locks it. Call once
 * per process, after tg_quota_init (the file is named after host and pid: holder.h).
 */
int tg_journal_open(const struct tg_config *config);

/* At a clean exit: deletes the process's journal files that hold nothing open. */
void tg_journal_close(void);

/*
 * Writes r's B record (r->model, r->identity, the bound) and sets
 * r->journal_slot. TG_ERROR when it could not be written (logged): the request
 * must not go upstream then.
 */
int tg_journal_begin(struct tg_request *r);

/* Writes a P record: r's stream has delivered about output_tokens so far. */
void tg_journal_progress(struct tg_request *r, int64_t output_tokens);

/*
 * Writes r's E record holding rec, not synced (see tg_journal_sync). A request
 * settled without going upstream (a guardrail's block, a cache hit) has no B
 * record: its E goes to the current file, and r->journal_slot is set, so that
 * its settle writes the S as for any other.
 */
void tg_journal_end(struct tg_request *r, const struct tg_usage_record *rec);

/*
 * When spool.journal_fsync is on, returns once every E record written so far
 * is on disk: one fdatasync for all of them; a thread that finds a sync under
 * way waits for it (at most 10 s). The group commit's leader calls it.
 */
void tg_journal_sync(void);

/* Writes S records for n settled requests (ids[i] in journal slot slots[i]). */
void tg_journal_settled(const char *const *ids, const int *slots, size_t n);

/*
 * How recovery settles a record: TG_OK once it is safe (in the database, the
 * spool or the dead letter), anything else to keep the file for the next try.
 * The worker passes settle.c's tg_settle_recovered: the journal sits below the
 * group commit and does not call it by name.
 */
typedef int (*tg_journal_settle_fn)(const char *log_id, const struct tg_usage_record *rec);

/*
 * Settles, through settle, what dead processes' journals of this host left
 * open, then deletes those files. Returns how many requests it settled (or
 * spooled); TG_ERROR if a file could not be finished (it is kept).
 */
int tg_journal_recover(tg_journal_settle_fn settle);

#endif
