/*
 * capacity.h — how many requests this host serves at once, and the counts that
 * GET /health and GET /metrics report about the worker processes.
 *
 * A FastCGI request holds a worker thread until it ends (a stream: for minutes),
 * and a request only reaches a worker when one of its threads accepts it. So
 * each worker runs server.threads request threads plus one spare, and the host
 * admits at most the sum of server.threads of its live workers at once (counted
 * in shared memory, under one lock): whatever the load, the spare threads stay
 * free for what is quick — GET /health and GET /metrics are answered without
 * admission, and a request beyond capacity gets a quick 503 in the client's
 * dialect, with retry-after, instead of waiting for a thread — or, with
 * server.queue_timeout_ms > 0, after waiting that long for a slot (the waiting
 * request holds its thread, a spare perhaps: /health may then wait as long).
 *
 * The slots themselves (one per worker process) are written by supervise.c.
 * Without the shared segment, everything is admitted and nothing is counted.
 */
#ifndef TG_CAPACITY_H
#define TG_CAPACITY_H

#include <stdint.h>

#include "common.h"

struct tg_request;
struct tg_shm_workers;

/* Seconds a refused client is told to wait (retry-after). */
#define TG_CAPACITY_RETRY_AFTER_S 1

/* What the slots say, summed over the worker processes that are up. */
struct tg_capacity_counts {
    int configured;     /* server.processes; 0: no master (unsupervised) */
    int alive;          /* workers up (forked, threads running) */
    int threads_total;  /* their threads, the spares included */
    int threads_busy;   /* of which serving a request now */
    int capacity;       /* requests admitted at most at once (their server.threads) */
    int admitted;       /* requests admitted now */
    uint64_t refused;   /* 503s for want of a free thread, since the segment was made */
    uint64_t respawned; /* workers replaced since then */
};

/* This process serves in slot (given by the master after fork); -1: no slot. */
void tg_capacity_set_slot(int slot);

/* This worker's threads run: n request threads (and one spare). */
void tg_capacity_ready(int n);

/* A thread took (+1) or finished (-1) a request of any kind: the busy gauge. */
void tg_capacity_busy(int delta);

/*
 * Admits r, which is not quick (not /health, not /metrics): TG_OK, and
 * tg_capacity_leave() is owed when it ends; or TG_DECLINED with r->error set
 * (503, "overloaded_error", retry-after) when the host serves its capacity
 * (and still did after server.queue_timeout_ms).
 */
int tg_capacity_admit(struct tg_request *r);
void tg_capacity_leave(void);

/* The same on an explicit table and slot (unit tests): TG_OK or TG_DECLINED. */
int tg_capacity_admit_slot(struct tg_shm_workers *w, int slot);
void tg_capacity_leave_slot(struct tg_shm_workers *w, int slot);

/* Sums the table w (NULL: the host's segment; all zero when there is none). */
void tg_capacity_count(struct tg_shm_workers *w, struct tg_capacity_counts *out);

#endif
