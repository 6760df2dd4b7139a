/*
 * shm.h — the per-host shared memory segment that every worker process of one
 * deployment maps: local rate-limit buckets, the metrics that GET /metrics
 * reports, the backends' circuit breakers, the pre-authentication tables and
 * the worker processes' slots. Nothing in it must be seen by other hosts; what
 * must be global lives in PostgreSQL.
 *
 * The segment is named after the FastCGI listening socket (every process that
 * spawn-fcgi started shares it, and two deployments on one host do not), created
 * by the first process and initialised exactly once; a process killed while it
 * held a lock does not wedge the others (robust mutexes).
 *
 * The layout is versioned (SHM_MAGIC in shm.c, and the size): a segment left
 * by a build with another layout is unlinked and made afresh.
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

/*
 * Metrics (metrics.c reads and writes them; the layout is here so that the
 * segment's version covers it). One series per label set of
 * tollgate_requests_total; a label value that does not fit its field sends the
 * request to the overflow series, never a truncated value.
 */
#define TG_SHM_SERIES 4096       /* the table's capacity; metrics.max_series is at most this */
#define TG_SHM_SERIES_SLOTS 8192 /* open-addressing index, at most half full */
#define TG_SHM_LABEL_KEY 16      /* a key's display prefix ("tg-AbCdEfGh") */
#define TG_SHM_LABEL_ID 129      /* user and group ids: 128 characters, as the schema allows */
#define TG_SHM_LABEL_MODEL 129
#define TG_SHM_LABEL_PROVIDER 65
#define TG_SHM_HISTOGRAM_BUCKETS 14 /* 13 finite upper bounds, then +Inf */

enum tg_shm_token_type {
    TG_TOKENS_INPUT,
    TG_TOKENS_OUTPUT,
    TG_TOKENS_CACHE_READ,
    TG_TOKENS_CACHE_WRITE,
    TG_TOKENS_TYPES
};

struct tg_shm_series {
    char api_key_id[TG_SHM_LABEL_KEY]; /* "" for callers without a key */
    char user_id[TG_SHM_LABEL_ID];
    char group_id[TG_SHM_LABEL_ID];
    char model[TG_SHM_LABEL_MODEL];
    char provider[TG_SHM_LABEL_PROVIDER];
    int32_t code; /* the HTTP status sent */
    uint64_t requests;
    uint64_t tokens[TG_TOKENS_TYPES];
    uint64_t cost_micros; /* integer micro-dollars, as settled */
};

struct tg_shm_histogram {
    uint64_t buckets[TG_SHM_HISTOGRAM_BUCKETS]; /* per bucket, not cumulative */
    uint64_t sum_micros;                        /* observations in microseconds */
};

struct tg_shm_metrics {
    pthread_mutex_t lock; /* robust, process-shared: guards everything below */
    uint32_t n_series;
    uint16_t index[TG_SHM_SERIES_SLOTS];        /* 0: empty; else 1 + a position in series */
    struct tg_shm_series series[TG_SHM_SERIES]; /* dense, in order of first use */
    struct tg_shm_series overflow;              /* every label set that found the table full */
    struct tg_shm_histogram request_duration;
    struct tg_shm_histogram upstream_duration;
    struct tg_shm_histogram time_to_first_token;
    uint64_t rejected_quota;       /* 429s from PostgreSQL quotas */
    uint64_t rejected_bucket;      /* 429s from token buckets, local or global */
    uint64_t reservation_exceeded; /* usage that passed its reservation (quota.c) */
};

/*
 * Circuit breakers (balancer.c reads and writes them; the layout is here so
 * that the segment's version covers it). One circuit per backend id, found by
 * open addressing and never removed (ids come from the config: a few per
 * model). A backend whose id finds the table full, or does not fit, is not
 * tracked: its circuit counts as closed.
 */
#define TG_SHM_CIRCUITS 1024       /* the table's capacity (and its open-addressing modulus) */
#define TG_SHM_CIRCUIT_ID 129      /* a backend id: 128 characters */
#define TG_SHM_CIRCUIT_FAILURES 32 /* failure times remembered: failure_threshold's cap */

enum tg_shm_circuit_state { TG_CIRCUIT_CLOSED, TG_CIRCUIT_OPEN, TG_CIRCUIT_HALF_OPEN };

struct tg_shm_circuit {
    char id[TG_SHM_CIRCUIT_ID]; /* "" = free slot */
    int32_t state;              /* enum tg_shm_circuit_state */
    uint32_t n_failures;        /* failure times held, at most TG_SHM_CIRCUIT_FAILURES */
    uint32_t next_failure;      /* the ring position the next failure time goes to */
    int64_t failure_ms[TG_SHM_CIRCUIT_FAILURES]; /* ring of the latest failure times */
    int64_t opened_at_ms;                        /* when it last opened (CLOCK_MONOTONIC) */
    int64_t probe_at_ms;  /* half-open: when the probe in flight was granted */
    uint64_t probe_token; /* half-open: the probe's token (one more per grant, never 0) */
    uint64_t failures_total;
    uint64_t opened_total;
};

struct tg_shm_circuits {
    pthread_mutex_t lock; /* robust, process-shared: guards everything below */
    uint32_t n_circuits;
    uint32_t untracked_logged;  /* 1 once an untracked backend was logged */
    uint64_t untracked_reports; /* reports about backends without a circuit */
    struct tg_shm_circuit circuits[TG_SHM_CIRCUITS];
};

/* Guardrail actions taken on this host, by rule index (the config's order) and action. */
#define TG_SHM_GUARD_RULES 256 /* rules beyond this are counted in the last slot */
#define TG_SHM_GUARD_ACTIONS 3 /* warn, mask, block (guard.h's order) */
#define TG_SHM_GUARD_HOOKS 2   /* webhook, moderation (config.h's tg_guard_hook_kind order) */

/*
 * Pre-authentication (preauth.c reads and writes it; the layout is here so that
 * the segment's version covers it): failed authentications per client address
 * (a token bucket each), key hashes PostgreSQL said are unknown (until an
 * expiry), key hashes recently valid (a last-seen time). Each table is
 * set-associative, TG_SHM_PREAUTH_WAYS entries per set: bounded, and a full set
 * gives up its least useful entry. A stamp of 0 is a free entry.
 */
#define TG_SHM_PREAUTH_ADDRS 4096 /* addresses tracked (a multiple of the ways) */
#define TG_SHM_PREAUTH_HASHES 4096
#define TG_SHM_PREAUTH_WAYS 8
#define TG_SHM_PREAUTH_ADDR 17 /* the family (4 or 6), then the address or its /64 */
#define TG_SHM_PREAUTH_HASH 16 /* the first 16 bytes of a key's SHA-256 */

struct tg_shm_preauth_addr {
    unsigned char addr[TG_SHM_PREAUTH_ADDR];
    int64_t credit;   /* the bucket: failures left times the limit's per_ms (exact) */
    int64_t stamp_ms; /* its last refill (CLOCK_MONOTONIC); 0 = free */
};

struct tg_shm_preauth_hash {
    unsigned char hash[TG_SHM_PREAUTH_HASH];
    int64_t stamp_ms; /* unknown: when it expires; valid: when last seen; 0 = free */
};

struct tg_shm_preauth {
    pthread_mutex_t lock; /* robust, process-shared: guards the tables */
    struct tg_shm_preauth_addr addrs[TG_SHM_PREAUTH_ADDRS];
    struct tg_shm_preauth_hash unknown[TG_SHM_PREAUTH_HASHES];
    struct tg_shm_preauth_hash valid[TG_SHM_PREAUTH_HASHES];
    uint64_t refusals_total;     /* 429s before any lookup (atomic) */
    uint64_t unknown_hits_total; /* 401s answered by the unknown-key cache (atomic) */
};

/*
 * Worker processes (supervise.c writes the slots, capacity.c reads and counts in
 * them). The master fills a slot's pid when it forks the worker and clears the
 * slot when it reaps it; the worker sets threads once its threads run.
 */
#define TG_SHM_WORKERS 64 /* server.processes' cap */

struct tg_shm_worker {
    int32_t pid;      /* 0: no process in this slot */
    int32_t threads;  /* request threads once the worker is up (0: starting) */
    int32_t busy;     /* threads serving any request now (atomic) */
    int32_t admitted; /* threads serving an admitted request now (atomic) */
};

struct tg_shm_workers {
    pthread_mutex_t lock;     /* robust, process-shared: admission and the slots' pid/threads */
    int32_t master_pid;       /* the supervising process; 0: none */
    int32_t configured;       /* server.processes */
    uint64_t refused_total;   /* 503s for want of a free thread (atomic) */
    uint64_t respawned_total; /* workers replaced (atomic) */
    struct tg_shm_worker slots[TG_SHM_WORKERS];
};

/*
 * MCP tool calls (metrics_mcp.c reads and writes them; the layout is here so that
 * the segment's version covers it): one series per server, tool and code, dense,
 * in order of first use, found by a linear scan (a few hundred at most).
 */
#define TG_SHM_MCP_SERIES 512  /* the table's capacity */
#define TG_SHM_MCP_RESERVED 64 /* slots only "_other" series may take */
#define TG_SHM_MCP_CODES 7     /* mcp_access.h's codes */
#define TG_SHM_MCP_SERVER 65
#define TG_SHM_MCP_TOOL 129

struct tg_shm_mcp_series {
    char server[TG_SHM_MCP_SERVER];
    char tool[TG_SHM_MCP_TOOL];
    int32_t code; /* index into metrics_mcp.c's codes */
    uint64_t calls;
};

struct tg_shm_mcp {
    pthread_mutex_t lock; /* robust, process-shared: guards everything below */
    uint32_t n_series;
    struct tg_shm_mcp_series series[TG_SHM_MCP_SERIES];
    uint64_t overflow[TG_SHM_MCP_CODES]; /* server="_other", tool="_other" */
    struct tg_shm_histogram duration;
};

struct tg_shm {
    uint64_t magic; /* set last, once initialised */
    uint64_t size;
    uint64_t quota_alerts_total;       /* threshold crossings seen by this host (atomic) */
    uint64_t usage_dead_letters_total; /* usage records put in the dead letter (atomic) */
    uint64_t otel_spans_exported;      /* spans a collector accepted (otel.c; atomic) */
    uint64_t otel_spans_dropped;       /* spans never delivered: queue full, failed export */
    uint64_t otel_export_failures;     /* exports that failed (unreachable, timeout, non-2xx) */
    pthread_mutex_t lock;              /* robust, process-shared: guards buckets */
    struct tg_shm_bucket buckets[TG_SHM_BUCKETS];
    struct tg_shm_metrics metrics;
    struct tg_shm_circuits circuits;
    uint64_t guard_actions[TG_SHM_GUARD_RULES][TG_SHM_GUARD_ACTIONS];      /* atomic */
    uint64_t guard_hook_actions[TG_SHM_GUARD_HOOKS][TG_SHM_GUARD_ACTIONS]; /* atomic */
    struct tg_shm_preauth preauth;
    struct tg_shm_workers workers;
    struct tg_shm_mcp mcp;
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

/* Adds one to the host's usage dead letter counter (no-op before attach). */
void tg_shm_count_dead_letter(void);

/* Counts one guardrail action (rule index, action index) on this host (no-op before attach). */
void tg_shm_count_guard_action(size_t rule, int action);

/* Counts one action of a remote guardrail check (hook kind, action index); no-op before attach. */
void tg_shm_count_guard_hook(int hook, int action);

/* Locks / unlocks the bucket table (recovering from a dead holder). */
int tg_shm_lock(struct tg_shm *shm);
void tg_shm_unlock(struct tg_shm *shm);

/*
 * A robust, process-shared mutex for a structure inside the segment (or, in
 * tests, anywhere): init once; lock recovers from a holder that died (what it
 * guarded may then be a little off, never corrupt). TG_OK or TG_ERROR.
 */
int tg_shm_mutex_init(pthread_mutex_t *mutex);
int tg_shm_mutex_lock(pthread_mutex_t *mutex);
void tg_shm_mutex_unlock(pthread_mutex_t *mutex);

#endif
