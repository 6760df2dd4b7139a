/*
 * shm.h — the per-host shared memory segment that every worker process of one
 * deployment maps: local rate-limit buckets now (metrics and circuit state
 * later). Nothing in it must be seen by other hosts; what must be global lives
 * in PostgreSQL.
 *
 * The segment is named after the FastCGI listening socket (every process that
 * spawn-fcgi started shares it, and two deployments on one host do not), created
 * by the first process and initialised exactly once; a process killed while it
 * held the lock does not wedge the others (robust mutex).
 */
#ifndef TG_SHM_H
#define TG_SHM_H

#include <pthread.h>

#include "common.h"

#define TG_SHM_BUCKETS 4096
#define TG_SHM_BUCKET_KEY 96

struct tg_shm_bucket {
    char key[TG_SHM_BUCKET_KEY]; /* "" = free slot */
    int64_t tokens;
    int64_t last_fill_ms; /* CLOCK_MONOTONIC, the same for every process of the host */
};

struct tg_shm {
    uint64_t magic; /* set last, once initialised */
    uint64_t size;
    uint64_t quota_alerts_total; /* threshold crossings seen by this host (atomic) */
    pthread_mutex_t lock; /* robust, process-shared: guards buckets */
    struct tg_shm_bucket buckets[TG_SHM_BUCKETS];
};

/*
 * Maps the segment for the deployment identified by scope (e.g. the socket
 * path), creating and initialising it if this process is the first. Returns
 * TG_OK with *out mapped for the process's lifetime, or TG_ERROR (errno set).
 */
int tg_shm_attach(const char *scope, struct tg_shm **out);

/* The host's segment once some module attached it, or NULL. */
struct tg_shm *tg_shm_get(void);

/* Adds one to the host's quota alert counter (no-op before attach). */
void tg_shm_count_alert(void);

/* Locks / unlocks the bucket table (recovering from a dead holder). */
int tg_shm_lock(struct tg_shm *shm);
void tg_shm_unlock(struct tg_shm *shm);

#endif
