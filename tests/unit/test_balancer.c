/*
 * test_balancer.c — balancer.c: priorities and weights (a distribution over
 * seeded random values), tried and drained members skipped, the fallback to the
 * next priority; the circuit breaker's cycle with the clock passed in (the
 * threshold within the window, cooldown, one half-open probe, its success and
 * failure, a lost probe, a released one), the full table; the same circuits
 * shared by forked processes through a real segment (failures add up, exactly
 * one process wins the probe); retry backoff and retry-after.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "balancer.h"
#include "crypto.h"
#include "shm.h"

/* ---- helpers ---- */

/* splitmix64: a seeded generator, so every run draws the same values */
static uint64_t next_random(uint64_t *seed)
{
    uint64_t z = (*seed += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const struct tg_balancer_policy policy = {
    .failure_threshold = 5,
    .window_ms = 60000,
    .cooldown_ms = 30000,
    .probe_timeout_ms = 45000,
};

/* A table in memory shared with any child (as the segment is), zeroed. */
static int table_setup(void **state)
{
    void *t = mmap(NULL, sizeof(struct tg_shm_circuits), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED || tg_balancer_table_init(t) != TG_OK)
        return -1;
    *state = t;
    return 0;
}

static int table_teardown(void **state)
{
    munmap(*state, sizeof(struct tg_shm_circuits));
    return 0;
}

static void fail_times(struct tg_shm_circuits *t, const char *id, int times, int64_t now_ms)
{
    for (int i = 0; i < times; i++)
        tg_balancer_report(t, id, false, 0, &policy, now_ms);
}

/* The state of id's circuit as the snapshot has it (closed when untracked). */
static enum tg_shm_circuit_state state_of(struct tg_shm_circuits *t, const char *id, int64_t now_ms,
                                          struct tg_balancer_circuit_view *out)
{
    static struct tg_balancer_circuit_view views[TG_SHM_CIRCUITS];
    size_t n = tg_balancer_snapshot(t, &policy, now_ms, views, TG_ARRAY_LEN(views), NULL);
    for (size_t i = 0; i < n && i < TG_ARRAY_LEN(views); i++)
        if (strcmp(views[i].id, id) == 0) {
            if (out != NULL)
                *out = views[i];
            return views[i].state;
        }
    return TG_CIRCUIT_CLOSED;
}

/* A one-member pool: whether id is admitted now, and the probe token it got. */
static bool admitted(struct tg_shm_circuits *t, const char *id, int64_t now_ms, uint64_t *probe)
{
    const struct tg_balancer_member one[] = {{id, 1, 1}};
    uint64_t token = 0;
    int chosen = tg_balancer_pick(t, one, 1, NULL, &policy, now_ms, 0, &token);
    if (probe != NULL)
        *probe = token;
    return chosen == 0;
}

/* ---- choice ---- */

static void test_lowest_priority_first(void **state)
{
    struct tg_shm_circuits *t = *state;
    const struct tg_balancer_member pool[] = {
        {"backup", 2, 100}, {"east", 1, 1}, {"west", 1, 1}, {"first", 0, 0}};
    uint64_t seed = 1, probe = 7;
    for (int i = 0; i < 1000; i++) {
        int chosen = tg_balancer_pick(t, pool, 4, NULL, &policy, 0, next_random(&seed), &probe);
        assert_true(chosen == 1 || chosen == 2); /* priority 0 is drained (weight 0) */
        assert_int_equal(probe, 0);
    }
    assert_int_equal(tg_balancer_pick(t, pool, 0, NULL, &policy, 0, 0, &probe), -1);
}

/* Picks n times with seeded values; counts[i] gets how often member i won. */
static void tally(struct tg_shm_circuits *t, const struct tg_balancer_member *pool, size_t size,
                  int n, uint64_t seed, int *counts)
{
    memset(counts, 0, size * sizeof(*counts));
    for (int i = 0; i < n; i++) {
        int chosen = tg_balancer_pick(t, pool, size, NULL, &policy, 0, next_random(&seed), NULL);
        assert_true(chosen >= 0 && (size_t)chosen < size);
        counts[chosen]++;
    }
}

static void assert_share(int count, int n, double want)
{
    double got = (double)count / n;
    if (got < want - 0.01 || got > want + 0.01)
        fail_msg("share %.4f, want %.4f +- 0.01", got, want);
}

static void test_weights(void **state)
{
    struct tg_shm_circuits *t = *state;
    const struct tg_balancer_member pool[] = {
        {"a", 1, 1}, {"b", 1, 3}, {"drained", 1, 0}, {"c", 1, 6}, {"negative", 1, -4}};
    int counts[5], n = 200000;
    tally(t, pool, 5, n, 42, counts);
    assert_share(counts[0], n, 0.1);
    assert_share(counts[1], n, 0.3);
    assert_share(counts[3], n, 0.6);
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[4], 0);

    /* the extremes of random reach the first and the last member */
    assert_int_equal(tg_balancer_pick(t, pool, 5, NULL, &policy, 0, 0, NULL), 0);
    assert_int_equal(tg_balancer_pick(t, pool, 5, NULL, &policy, 0, UINT64_MAX, NULL), 3);

    /* an open member's share goes to the others, in their proportion */
    fail_times(t, "a", 5, 0);
    tally(t, pool, 5, n, 43, counts);
    assert_int_equal(counts[0], 0);
    assert_share(counts[1], n, 1.0 / 3);
    assert_share(counts[3], n, 2.0 / 3);

    /* only drained members: nothing to choose */
    const struct tg_balancer_member drained[] = {{"x", 1, 0}, {"y", 1, 0}};
    assert_int_equal(tg_balancer_pick(t, drained, 2, NULL, &policy, 0, 5, NULL), -1);
}

static void test_tried_skipped(void **state)
{
    struct tg_shm_circuits *t = *state;
    const struct tg_balancer_member pool[] = {{"a", 1, 1}, {"b", 1, 1}, {"c", 2, 1}};
    bool tried[3] = {true, false, false};
    uint64_t seed = 7;
    for (int i = 0; i < 200; i++)
        assert_int_equal(tg_balancer_pick(t, pool, 3, tried, &policy, 0, next_random(&seed), NULL),
                         1);
    tried[1] = true;
    assert_int_equal(tg_balancer_pick(t, pool, 3, tried, &policy, 0, 0, NULL), 2);
    tried[2] = true;
    assert_int_equal(tg_balancer_pick(t, pool, 3, tried, &policy, 0, 0, NULL), -1);
}

static void test_priority_fallback(void **state)
{
    struct tg_shm_circuits *t = *state;
    const struct tg_balancer_member pool[] = {{"p1-a", 1, 1}, {"p1-b", 1, 1}, {"p2", 2, 1}};
    bool tried[3] = {false, true, false};
    uint64_t seed = 3;
    /* one priority-1 member left: priority 2 waits */
    for (int i = 0; i < 100; i++)
        assert_int_equal(
            tg_balancer_pick(t, pool, 3, tried, &policy, 1000, next_random(&seed), NULL), 0);
    /* it opens: now priority 2 serves */
    fail_times(t, "p1-a", 5, 1000);
    assert_int_equal(tg_balancer_pick(t, pool, 3, tried, &policy, 1000, 0, NULL), 2);
    /* its cooldown passed: it is due a probe, so priority 1 is available again */
    int64_t due = 1000 + policy.cooldown_ms;
    uint64_t probe = 0;
    assert_int_equal(tg_balancer_pick(t, pool, 3, tried, &policy, due, 0, &probe), 0);
    assert_int_not_equal(probe, 0);
    /* that probe is in flight for someone else: priority 2 again */
    uint64_t other = 9;
    assert_int_equal(tg_balancer_pick(t, pool, 3, tried, &policy, due + 1, 0, &other), 2);
    assert_int_equal(other, 0);
    /* no table (shared memory not mapped): every circuit closed */
    assert_int_equal(tg_balancer_pick(NULL, pool, 3, tried, &policy, due + 1, 0, &other), 0);
    assert_int_equal(other, 0);
}

/* ---- the breaker ---- */

static void test_opens_within_window(void **state)
{
    struct tg_shm_circuits *t = *state;
    fail_times(t, "east", 4, 10000);
    assert_true(admitted(t, "east", 10000, NULL));
    assert_int_equal(state_of(t, "east", 10000, NULL), TG_CIRCUIT_CLOSED);
    /* the fifth within window_ms of the first */
    fail_times(t, "east", 1, 10000 + policy.window_ms - 1);
    struct tg_balancer_circuit_view v;
    assert_int_equal(state_of(t, "east", 70000, &v), TG_CIRCUIT_OPEN);
    assert_int_equal(v.failures_total, 5);
    assert_int_equal(v.opened_total, 1);
    assert_false(admitted(t, "east", 70000, NULL));
}

static void test_spread_failures_stay_closed(void **state)
{
    struct tg_shm_circuits *t = *state;
    /* 50 failures, never 5 within 60 s of each other: one every 15 s */
    for (int i = 0; i < 50; i++) {
        fail_times(t, "slow", 1, (int64_t)i * 15000);
        assert_true(admitted(t, "slow", (int64_t)i * 15000, NULL));
    }
    struct tg_balancer_circuit_view v;
    assert_int_equal(state_of(t, "slow", 49 * 15000, &v), TG_CIRCUIT_CLOSED);
    assert_int_equal(v.failures_in_window, 4);
    assert_int_equal(v.failures_total, 50);
    assert_int_equal(v.opened_total, 0);
    /* a failure exactly window_ms old has aged out */
    fail_times(t, "edge", 4, 0);
    fail_times(t, "edge", 1, policy.window_ms);
    assert_int_equal(state_of(t, "edge", policy.window_ms, NULL), TG_CIRCUIT_CLOSED);

    /* successes do not erase failures by default... */
    fail_times(t, "flaky", 4, 0);
    tg_balancer_report(t, "flaky", true, 0, &policy, 1);
    fail_times(t, "flaky", 1, 2);
    assert_int_equal(state_of(t, "flaky", 2, NULL), TG_CIRCUIT_OPEN);
    /* ...unless the policy says success_resets */
    struct tg_balancer_policy resets = policy;
    resets.success_resets = true;
    for (int i = 0; i < 4; i++)
        tg_balancer_report(t, "resets", false, 0, &resets, 0);
    tg_balancer_report(t, "resets", true, 0, &resets, 1);
    tg_balancer_report(t, "resets", false, 0, &resets, 2);
    assert_int_equal(state_of(t, "resets", 2, NULL), TG_CIRCUIT_CLOSED);
}

static void test_probe_cycle(void **state)
{
    struct tg_shm_circuits *t = *state;
    int64_t opened = 5000;
    fail_times(t, "east", 5, opened);
    /* refused through the cooldown */
    assert_false(admitted(t, "east", opened + 1, NULL));
    assert_false(admitted(t, "east", opened + policy.cooldown_ms - 1, NULL));
    /* then one probe, and only one */
    int64_t due = opened + policy.cooldown_ms;
    uint64_t probe = 0, other = 0;
    assert_true(admitted(t, "east", due, &probe));
    assert_int_not_equal(probe, 0);
    assert_int_equal(state_of(t, "east", due, NULL), TG_CIRCUIT_HALF_OPEN);
    for (int i = 0; i < 10; i++)
        assert_false(admitted(t, "east", due + i * 1000, &other));
    assert_int_equal(other, 0);
    /* ordinary reports while it is half-open change nothing */
    tg_balancer_report(t, "east", true, 0, &policy, due + 10);
    tg_balancer_report(t, "east", true, probe + 1, &policy, due + 10);
    assert_int_equal(state_of(t, "east", due + 10, NULL), TG_CIRCUIT_HALF_OPEN);
    /* the probe succeeds: closed, its failures cleared */
    tg_balancer_report(t, "east", true, probe, &policy, due + 20);
    struct tg_balancer_circuit_view v;
    assert_int_equal(state_of(t, "east", due + 20, &v), TG_CIRCUIT_CLOSED);
    assert_int_equal(v.failures_in_window, 0);
    assert_true(admitted(t, "east", due + 21, &other));
    assert_int_equal(other, 0);
    fail_times(t, "east", 4, due + 30);
    assert_true(admitted(t, "east", due + 30, NULL));
    /* a report with the spent token counts as an ordinary one */
    tg_balancer_report(t, "east", false, probe, &policy, due + 31);
    assert_int_equal(state_of(t, "east", due + 31, &v), TG_CIRCUIT_OPEN);
    assert_int_equal(v.opened_total, 2);
}

static void test_probe_failure_reopens(void **state)
{
    struct tg_shm_circuits *t = *state;
    fail_times(t, "east", 5, 0);
    /* failures while open do not extend the cooldown, successes do not close it */
    fail_times(t, "east", 3, 20000);
    tg_balancer_report(t, "east", true, 0, &policy, 25000);
    assert_int_equal(state_of(t, "east", 25000, NULL), TG_CIRCUIT_OPEN);
    uint64_t probe = 0;
    assert_true(admitted(t, "east", 30000, &probe));
    tg_balancer_report(t, "east", false, probe, &policy, 31000);
    struct tg_balancer_circuit_view v;
    assert_int_equal(state_of(t, "east", 31000, &v), TG_CIRCUIT_OPEN);
    assert_int_equal(v.opened_total, 2);
    assert_int_equal(v.failures_total, 9);
    /* another full cooldown from the failed probe */
    assert_false(admitted(t, "east", 31000 + policy.cooldown_ms - 1, NULL));
    uint64_t again = 0;
    assert_true(admitted(t, "east", 31000 + policy.cooldown_ms, &again));
    assert_int_not_equal(again, 0);
    assert_int_not_equal(again, probe);
}

static void test_lost_probe_expires(void **state)
{
    struct tg_shm_circuits *t = *state;
    fail_times(t, "east", 5, 0);
    uint64_t lost = 0, probe = 0;
    assert_true(admitted(t, "east", 30000, &lost));
    /* its process died: nothing is reported. Refused until probe_timeout_ms... */
    assert_false(admitted(t, "east", 30000 + policy.probe_timeout_ms - 1, NULL));
    /* ...then the next caller gets a new probe */
    assert_true(admitted(t, "east", 30000 + policy.probe_timeout_ms, &probe));
    assert_int_not_equal(probe, 0);
    assert_int_not_equal(probe, lost);
    /* the lost one turns up late: it does not decide */
    tg_balancer_report(t, "east", false, lost, &policy, 80000);
    assert_int_equal(state_of(t, "east", 80000, NULL), TG_CIRCUIT_HALF_OPEN);
    tg_balancer_report(t, "east", true, probe, &policy, 80001);
    assert_int_equal(state_of(t, "east", 80001, NULL), TG_CIRCUIT_CLOSED);

    /* probe_timeout_ms 0: a probe is lost after cooldown_ms */
    struct tg_balancer_policy plain = policy;
    plain.probe_timeout_ms = 0;
    const struct tg_balancer_member one[] = {{"west", 1, 1}};
    for (int i = 0; i < 5; i++)
        tg_balancer_report(t, "west", false, 0, &plain, 0);
    assert_int_equal(tg_balancer_pick(t, one, 1, NULL, &plain, 30000, 0, &lost), 0);
    assert_int_equal(tg_balancer_pick(t, one, 1, NULL, &plain, 59999, 0, &probe), -1);
    assert_int_equal(tg_balancer_pick(t, one, 1, NULL, &plain, 60000, 0, &probe), 0);
    assert_int_not_equal(probe, lost);
}

static void test_release_probe(void **state)
{
    struct tg_shm_circuits *t = *state;
    fail_times(t, "east", 5, 0);
    uint64_t probe = 0, next = 0;
    assert_true(admitted(t, "east", 30000, &probe));
    /* a wrong token gives nothing back */
    tg_balancer_release(t, "east", probe + 1);
    assert_false(admitted(t, "east", 30001, NULL));
    /* the probe was never sent: the next caller may probe at once */
    tg_balancer_release(t, "east", probe);
    assert_true(admitted(t, "east", 30002, &next));
    assert_int_not_equal(next, 0);
    assert_int_not_equal(next, probe);
    assert_false(admitted(t, "east", 30003, NULL));
}

static void test_breaker_off(void **state)
{
    struct tg_shm_circuits *t = *state;
    struct tg_balancer_policy off = policy;
    off.failure_threshold = 0;
    const struct tg_balancer_member one[] = {{"east", 1, 1}};
    uint64_t probe = 9;
    for (int i = 0; i < 100; i++)
        tg_balancer_report(t, "east", false, 0, &off, 0);
    assert_int_equal(tg_balancer_pick(t, one, 1, NULL, &off, 1, 0, &probe), 0);
    assert_int_equal(probe, 0);
    struct tg_balancer_circuit_view v;
    assert_int_equal(state_of(t, "east", 1, &v), TG_CIRCUIT_CLOSED);
    assert_int_equal(v.failures_total, 100);
    /* a threshold past the ring counts as the ring's size */
    struct tg_balancer_policy huge = policy;
    huge.failure_threshold = 1000;
    for (int i = 0; i < TG_SHM_CIRCUIT_FAILURES - 1; i++)
        tg_balancer_report(t, "west", false, 0, &huge, 0);
    assert_int_equal(state_of(t, "west", 0, NULL), TG_CIRCUIT_CLOSED);
    tg_balancer_report(t, "west", false, 0, &huge, 0);
    assert_int_equal(state_of(t, "west", 0, NULL), TG_CIRCUIT_OPEN);
}

static void test_table_full(void **state)
{
    struct tg_shm_circuits *t = *state;
    char id[32];
    for (int i = 0; i < TG_SHM_CIRCUITS; i++) {
        snprintf(id, sizeof(id), "backend-%d", i);
        tg_balancer_report(t, id, true, 0, &policy, 0);
    }
    static struct tg_balancer_circuit_view views[TG_SHM_CIRCUITS];
    uint64_t untracked = 9;
    assert_int_equal(tg_balancer_snapshot(t, &policy, 0, views, 10, &untracked), TG_SHM_CIRCUITS);
    assert_int_equal(untracked, 0);
    /* every slot is taken: a new backend fails safe, closed however it fails */
    fail_times(t, "latecomer", 20, 0);
    assert_true(admitted(t, "latecomer", 1, NULL));
    /* the tracked ones still work */
    fail_times(t, "backend-7", 5, 0);
    assert_false(admitted(t, "backend-7", 1, NULL));
    /* so does an id that does not fit a slot */
    char long_id[TG_SHM_CIRCUIT_ID + 10];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    fail_times(t, long_id, 5, 0);
    assert_true(admitted(t, long_id, 1, NULL));
    assert_int_equal(tg_balancer_snapshot(t, &policy, 0, views, TG_SHM_CIRCUITS, &untracked),
                     TG_SHM_CIRCUITS);
    assert_int_equal(untracked, 25);
    assert_int_equal(t->untracked_logged, 1);
}

static void test_snapshot(void **state)
{
    struct tg_shm_circuits *t = *state;
    struct tg_balancer_circuit_view views[4];
    assert_int_equal(tg_balancer_snapshot(t, &policy, 0, views, 4, NULL), 0);
    assert_int_equal(tg_balancer_snapshot(NULL, &policy, 0, views, 4, NULL), 0);
    tg_balancer_report(t, "ok", true, 0, &policy, 0);
    fail_times(t, "shaky", 2, 0);
    fail_times(t, "down", 5, 0);
    uint64_t probe = 0;
    fail_times(t, "probing", 5, 0);
    assert_true(admitted(t, "probing", 30000, &probe));
    assert_int_equal(tg_balancer_snapshot(t, &policy, 30000, views, 4, NULL), 4);
    int seen = 0;
    for (int i = 0; i < 4; i++) {
        const struct tg_balancer_circuit_view *v = &views[i];
        if (strcmp(v->id, "ok") == 0) {
            assert_string_equal(tg_balancer_state_name(v->state), "closed");
            assert_int_equal(v->failures_total, 0);
        } else if (strcmp(v->id, "shaky") == 0) {
            assert_string_equal(tg_balancer_state_name(v->state), "closed");
            assert_int_equal(v->failures_in_window, 2);
        } else if (strcmp(v->id, "down") == 0) {
            assert_string_equal(tg_balancer_state_name(v->state), "open");
            assert_int_equal(v->opened_total, 1);
        } else {
            assert_string_equal(v->id, "probing");
            assert_string_equal(tg_balancer_state_name(v->state), "half_open");
        }
        seen++;
    }
    assert_int_equal(seen, 4);
    /* failures age out of the window in the snapshot too */
    assert_int_equal(tg_balancer_snapshot(t, &policy, 60000, views, 1, NULL), 4);
}

/* ---- across processes, through a real segment ---- */

struct segment {
    char scope[64];
    char name[64];
    struct tg_shm *shm;
};

static int segment_setup(void **state)
{
    struct segment *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    snprintf(s->scope, sizeof(s->scope), "unit:test_balancer:%ld", (long)getpid());
    /* shm.c names the segment after the first 8 bytes of the scope's SHA-256 */
    unsigned char hash[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_crypto_sha256(s->scope, strlen(s->scope), hash);
    tg_crypto_hex(hash, 8, hex);
    snprintf(s->name, sizeof(s->name), "/tollgate-%s", hex);
    shm_unlink(s->name);
    if (tg_shm_attach(s->scope, &s->shm) != TG_OK) {
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static int segment_teardown(void **state)
{
    struct segment *s = *state;
    munmap(s->shm, sizeof(*s->shm));
    shm_unlink(s->name);
    free(s);
    return 0;
}

/* Waits for n children; fails unless each exited 0. */
static void wait_children(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("child %d ended with status %d", i, status);
    }
}

#define CHILDREN 6
#define COUNTED_REPORTS 300

static void test_processes_share_circuits(void **state)
{
    struct segment *s = *state;
    struct tg_shm_circuits *t = &s->shm->circuits;
    assert_true(admitted(t, "anthropic-east", 1000, NULL));
    struct tg_balancer_policy off = policy;
    off.failure_threshold = 0;
    pid_t pids[CHILDREN];
    for (int i = 0; i < CHILDREN; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            /* a worker process of its own: it maps the segment by its scope */
            struct tg_shm *mine = NULL;
            if (tg_shm_attach(s->scope, &mine) != TG_OK || mine == s->shm)
                _exit(2);
            tg_balancer_report(&mine->circuits, "anthropic-east", false, 0, &policy, 1000 + i);
            /* many reports at once: the lock keeps every one of them */
            for (int k = 0; k < COUNTED_REPORTS; k++)
                tg_balancer_report(&mine->circuits, "counted", false, 0, &off, 1000);
            _exit(0);
        }
    }
    wait_children(pids, CHILDREN);
    struct tg_balancer_circuit_view v;
    assert_int_equal(state_of(t, "anthropic-east", 2000, &v), TG_CIRCUIT_OPEN);
    assert_int_equal(v.failures_total, CHILDREN);
    assert_int_equal(v.opened_total, 1);
    assert_false(admitted(t, "anthropic-east", 2000, NULL));
    assert_int_equal(state_of(t, "counted", 2000, &v), TG_CIRCUIT_CLOSED);
    assert_int_equal(v.failures_total, CHILDREN * COUNTED_REPORTS);
}

#define RACERS 8
#define ROUNDS 6

/* What the racing children share with the parent (an anonymous shared mapping). */
struct race {
    int ready;
    int go;
    int chosen[RACERS];
    uint64_t token[RACERS];
};

static void test_processes_race_for_probe(void **state)
{
    struct segment *s = *state;
    struct tg_shm_circuits *t = &s->shm->circuits;
    struct race *race =
        mmap(NULL, sizeof(*race), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(race != MAP_FAILED);
    int64_t opened = 1000;
    fail_times(t, "contended", 5, opened);
    for (int round = 0; round < ROUNDS; round++) {
        memset(race, 0, sizeof(*race));
        int64_t due = opened + policy.cooldown_ms;
        pid_t pids[RACERS];
        for (int i = 0; i < RACERS; i++) {
            pids[i] = fork();
            assert_true(pids[i] >= 0);
            if (pids[i] == 0) {
                struct tg_shm *mine = NULL;
                if (tg_shm_attach(s->scope, &mine) != TG_OK)
                    _exit(2);
                const struct tg_balancer_member one[] = {{"contended", 1, 1}};
                __atomic_add_fetch(&race->ready, 1, __ATOMIC_SEQ_CST);
                while (!__atomic_load_n(&race->go, __ATOMIC_ACQUIRE))
                    sched_yield();
                race->chosen[i] = tg_balancer_pick(&mine->circuits, one, 1, NULL, &policy, due,
                                                   (uint64_t)i, &race->token[i]);
                _exit(0);
            }
        }
        while (__atomic_load_n(&race->ready, __ATOMIC_ACQUIRE) < RACERS)
            usleep(1000);
        __atomic_store_n(&race->go, 1, __ATOMIC_RELEASE);
        wait_children(pids, RACERS);
        int winners = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            if (race->chosen[i] == 0) {
                winners++;
                winner = i;
                assert_int_not_equal(race->token[i], 0);
            } else {
                assert_int_equal(race->chosen[i], -1);
                assert_int_equal(race->token[i], 0);
            }
        }
        assert_int_equal(winners, 1);
        assert_int_equal(state_of(t, "contended", due, NULL), TG_CIRCUIT_HALF_OPEN);
        /* the probe fails: open again, for the next round's race */
        opened = due + 500;
        tg_balancer_report(t, "contended", false, race->token[winner], &policy, opened);
        assert_int_equal(state_of(t, "contended", opened, NULL), TG_CIRCUIT_OPEN);
    }
    struct tg_balancer_circuit_view v;
    state_of(t, "contended", opened, &v);
    assert_int_equal(v.opened_total, 1 + ROUNDS);
    munmap(race, sizeof(*race));
}

/* ---- retry timing ---- */

static void test_backoff(void **state)
{
    (void)state;
    const int64_t base = 100, max = 10000;
    /* the ceiling doubles per attempt up to max; random's extremes reach 0 and it */
    const int64_t ceilings[] = {100, 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    for (int attempt = 0; attempt < 10; attempt++) {
        assert_int_equal(tg_balancer_backoff_ms(attempt, base, max, 0, 0), 0);
        assert_int_equal(tg_balancer_backoff_ms(attempt, base, max, UINT64_MAX, 0),
                         ceilings[attempt]);
    }
    assert_int_equal(tg_balancer_backoff_ms(INT_MAX, base, max, UINT64_MAX, 0), max);
    assert_int_equal(tg_balancer_backoff_ms(INT_MAX, 0, max, UINT64_MAX, 0), 0);
    assert_int_equal(tg_balancer_backoff_ms(3, INT64_MAX, INT64_MAX, UINT64_MAX, 0), INT64_MAX);
    assert_int_equal(tg_balancer_backoff_ms(3, -5, -5, UINT64_MAX, 0), 0);

    /* full jitter: spread over [0, ceiling], about half of it on average */
    uint64_t seed = 11;
    int64_t low = INT64_MAX, high = 0, sum = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        int64_t d = tg_balancer_backoff_ms(3, base, max, next_random(&seed), 0);
        assert_true(d >= 0 && d <= 400);
        low = d < low ? d : low;
        high = d > high ? d : high;
        sum += d;
    }
    assert_true(low < 5 && high > 395);
    assert_true(sum / n > 190 && sum / n < 210);

    /* retry-after is a floor, capped by max */
    assert_int_equal(tg_balancer_backoff_ms(1, base, max, 0, 2500), 2500);
    assert_int_equal(tg_balancer_backoff_ms(9, base, max, UINT64_MAX, 2500), max);
    assert_int_equal(tg_balancer_backoff_ms(1, base, max, UINT64_MAX, 50000), max);
    assert_int_equal(tg_balancer_backoff_ms(1, base, max, 0, -1), 0);
}

static void test_retry_after(void **state)
{
    (void)state;
    const int64_t cap = 60000;
    const int64_t date = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(tg_balancer_retry_after_ms("120", 0, 600000), 120000);
    assert_int_equal(tg_balancer_retry_after_ms("0", 0, cap), 0);
    assert_int_equal(tg_balancer_retry_after_ms(" 5\t", 0, cap), 5000);
    assert_int_equal(tg_balancer_retry_after_ms("1.5", 0, cap), 1500);
    assert_int_equal(tg_balancer_retry_after_ms("0.0257", 0, cap), 25);
    assert_int_equal(tg_balancer_retry_after_ms("3600", 0, cap), cap);
    assert_int_equal(tg_balancer_retry_after_ms("99999999999999999999999999", 0, cap), cap);
    assert_int_equal(tg_balancer_retry_after_ms("5", 0, -1), 0);
    const char *bad[] = {"", "  ", "-5", "+5", "5s", "1.", ".5", "1.5.2", "5 5", "abc", NULL};
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++)
        if (tg_balancer_retry_after_ms(bad[i], 0, cap) != -1)
            fail_msg("accepted \"%s\"", bad[i] != NULL ? bad[i] : "(null)");

    /* the three HTTP-date forms, 30 s after now */
    assert_int_equal(tg_balancer_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", date - 30, cap),
                     30000);
    assert_int_equal(tg_balancer_retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", date - 30, cap),
                     30000);
    assert_int_equal(tg_balancer_retry_after_ms("Sun Nov  6 08:49:37 1994", date - 30, cap), 30000);
    assert_int_equal(tg_balancer_retry_after_ms(" Sun, 06 Nov 1994 08:49:37 GMT ", date, cap), 0);
    /* a date in the past: no wait; far ahead: the cap */
    assert_int_equal(tg_balancer_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", date + 5, cap), 0);
    assert_int_equal(tg_balancer_retry_after_ms("Fri, 31 Dec 9999 23:59:59 GMT", date, cap), cap);
    /* the leap day and a 21st-century RFC 850 year */
    assert_int_equal(tg_balancer_retry_after_ms("Thu, 29 Feb 2024 00:00:10 GMT", 1709164800, cap),
                     10000);
    assert_int_equal(
        tg_balancer_retry_after_ms("Thursday, 29-Feb-24 00:00:10 GMT", 1709164800, cap), 10000);
    const char *bad_dates[] = {
        "Sun, 06 Nov 1994 08:49:37",          "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",      "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",      "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "Sun, 06 November 1994 08:49:37 GMT", "Sun Nov  6 08:49:37",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad_dates); i++)
        if (tg_balancer_retry_after_ms(bad_dates[i], date, cap) != -1)
            fail_msg("accepted \"%s\"", bad_dates[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lowest_priority_first, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_weights, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_tried_skipped, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_priority_fallback, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_opens_within_window, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_spread_failures_stay_closed, table_setup,
                                        table_teardown),
        cmocka_unit_test_setup_teardown(test_probe_cycle, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_probe_failure_reopens, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_lost_probe_expires, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_release_probe, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_breaker_off, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_table_full, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_processes_share_circuits, segment_setup,
                                        segment_teardown),
        cmocka_unit_test_setup_teardown(test_processes_race_for_probe, segment_setup,
                                        segment_teardown),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
