/*
 * balancer.h — choosing a backend for a request from a model's pool, the
 * circuit breaker per backend that every worker process of the host shares,
 * and the timing of retries.
 *
 * A pool is a list of members (a backend id, a priority, a weight). A request
 * goes to the lowest priority number that has a member it may use, and within
 * that priority to a member drawn by weight. A member it may use is one the
 * request has not tried yet and whose circuit admits it.
 *
 * Circuits live in the host's shared memory (shm.h: struct tg_shm_circuits),
 * so a backend that fails for one worker process is avoided by all of them;
 * other hosts keep their own. A circuit is
 *   closed     requests flow. failure_threshold failures within window_ms open
 *              it. Successes do not erase failures (they age out of the window)
 *              unless the policy says success_resets.
 *   open       refused until cooldown_ms after it opened; the first pick after
 *              that which draws it gets the one half-open probe.
 *   half-open  one probe in flight, every other request refused. The probe's
 *              success closes the circuit (failures cleared); its failure opens
 *              it for another cooldown. A probe not reported within
 *              probe_timeout_ms (its process died, or its caller forgot) is
 *              lost: the next pick may grant a new one.
 * Reports that are not the current probe's change nothing while the circuit is
 * open or half-open (requests that started before it opened).
 *
 * Which upstream outcomes are failures (connect errors, timeouts, 5xx, and 429
 * or 529 if the config says so) is the caller's business: report() takes a
 * boolean.
 *
 * Times are CLOCK_MONOTONIC milliseconds (tg_now_ms(): the same clock for every
 * process of the host), passed in so that tests drive the clock. Randomness is
 * passed in too.
 *
 * Not here: the pool's configuration, the request (upstream.c sends it), and
 * the decision whether to retry at all.
 */
#ifndef TG_BALANCER_H
#define TG_BALANCER_H

#include "common.h"
#include "shm.h"

/* One member of a model's pool. Borrowed by every call that takes it. */
struct tg_balancer_member {
    const char *id; /* the backend's id, its circuit's key (at most 128 bytes to be tracked) */
    int priority;   /* lower numbers first; any int */
    int weight;     /* share within its priority; 0 (or less): drained, never chosen */
};

/*
 * The breaker's policy (from the config). Values out of range are brought into
 * it, never refused: failure_threshold above TG_SHM_CIRCUIT_FAILURES counts as
 * that; window_ms below 1 as 1; cooldown_ms below 0 as 0; probe_timeout_ms 0 or
 * less as cooldown_ms. failure_threshold 0 or less disables the breaker: every
 * circuit admits, reports still count failures_total.
 */
struct tg_balancer_policy {
    int failure_threshold; /* failures within window_ms that open a closed circuit */
    int64_t window_ms;
    int64_t cooldown_ms;      /* open: how long requests are refused before a probe */
    int64_t probe_timeout_ms; /* half-open: when a probe not reported is lost */
    bool success_resets;      /* a success in the closed state clears its failures */
};

/* 5 failures within 60 s open a circuit for 30 s; a probe is lost after 30 s. */
#define TG_BALANCER_POLICY_DEFAULT                                                                 \
    ((struct tg_balancer_policy){.failure_threshold = 5,                                           \
                                 .window_ms = 60000,                                               \
                                 .cooldown_ms = 30000,                                             \
                                 .probe_timeout_ms = 30000,                                        \
                                 .success_resets = false})

/* Prepares t (zeroed, its robust mutex initialised); shm.c's segment needs no call. */
int tg_balancer_table_init(struct tg_shm_circuits *t);

/*
 * Chooses the member of members[0..n) that the request goes to. Skipped: a
 * member with tried[i] set (tried: n flags, or NULL), a weight of 0 or less, and one
 * whose circuit refuses (open in its cooldown, or half-open with someone
 * else's probe in flight). Among the rest, the lowest priority number present
 * is taken, and within it a member with probability weight / the sum of the
 * weights there, drawn with random (use all 64 bits). So priority 2 serves only
 * when every priority-1 member is tried, drained, open or probing for another.
 *
 * When the chosen member's circuit is due a probe, this call takes the probe
 * atomically (one caller across all processes) and *probe gets its token, to
 * give back to tg_balancer_report or tg_balancer_release; otherwise *probe is
 * 0. probe may be NULL only when the caller will never report.
 *
 * t may be NULL (shared memory not mapped): every circuit counts as closed, as
 * it does when t's lock cannot be taken. policy NULL: the default. Returns the
 * chosen index, or -1 when no member is available.
 */
int tg_balancer_pick(struct tg_shm_circuits *t, const struct tg_balancer_member *members, size_t n,
                     const bool *tried, const struct tg_balancer_policy *policy, int64_t now_ms,
                     uint64_t random, uint64_t *probe);

/*
 * Tells the circuit of backend id how a request that pick sent there ended:
 * success or failure (the caller decides which outcomes fail). probe is what
 * pick gave (0: an ordinary request); a token that is not the circuit's current
 * probe counts as an ordinary report. The circuit is created on first report;
 * when the table is full (or id longer than 128 bytes) nothing is recorded and
 * that is logged once per segment. t NULL: no-op. policy NULL: the default.
 */
void tg_balancer_report(struct tg_shm_circuits *t, const char *id, bool success, uint64_t probe,
                        const struct tg_balancer_policy *policy, int64_t now_ms);

/*
 * Gives back a probe that pick granted but that was never sent (the client left,
 * a later stage refused): the circuit returns to open, due a probe at once. A
 * token that is not the current probe is ignored, as are t NULL and probe 0.
 */
void tg_balancer_release(struct tg_shm_circuits *t, const char *id, uint64_t probe);

/* One circuit as tg_balancer_snapshot copies it. */
struct tg_balancer_circuit_view {
    char id[TG_SHM_CIRCUIT_ID];
    enum tg_shm_circuit_state state;
    uint32_t failures_in_window; /* failures within policy's window_ms of now_ms */
    uint64_t failures_total;     /* every failure reported, in any state */
    uint64_t opened_total;       /* times it opened (reopening after a failed probe too) */
};

/*
 * Copies up to cap circuits of t (in table order) into out for GET /metrics,
 * under t's lock, changing nothing. Returns how many circuits t holds (more
 * than cap: only cap were copied), or 0 when t is NULL or cannot be locked.
 * *untracked, when not NULL, gets the count of reports about untracked backends.
 */
size_t tg_balancer_snapshot(struct tg_shm_circuits *t, const struct tg_balancer_policy *policy,
                            int64_t now_ms, struct tg_balancer_circuit_view *out, size_t cap,
                            uint64_t *untracked);

/* "closed", "open" or "half_open" (a metrics label value). */
const char *tg_balancer_state_name(enum tg_shm_circuit_state state);

/*
 * How long to wait before retry number attempt (1 for the first retry):
 * exponential backoff with full jitter, uniform in [0, min(max_ms, base_ms *
 * 2^(attempt-1))] by random. When the upstream asked for a wait
 * (retry_after_ms > 0, see tg_balancer_retry_after_ms), at least that, but never
 * more than max_ms: a caller that cannot wait retry_after_ms may choose not to
 * retry. attempt below 1 counts as 1; negative times as 0.
 */
int64_t tg_balancer_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint64_t random,
                               int64_t retry_after_ms);

/*
 * A retry-after header value in milliseconds, at most cap_ms: delta-seconds
 * ("120"; a decimal fraction such as "1.5" is accepted too) or an HTTP-date in
 * any of the three forms RFC 9110 has recipients accept (IMF-fixdate, RFC 850,
 * asctime), counted from now_unix_s (wall-clock seconds, time(NULL)); a date
 * in the past is 0. Surrounding whitespace is allowed. Returns -1 when value is
 * NULL or not one of those.
 */
int64_t tg_balancer_retry_after_ms(const char *value, int64_t now_unix_s, int64_t cap_ms);

#endif
