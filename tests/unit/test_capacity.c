/*
 * test_capacity.c — admission against the host's request threads (capacity.c)
 * on a worker table in plain memory: the sum of the live workers' threads is
 * admitted and no more, a dead worker's slot (cleared by the master) gives its
 * admissions back, and the counts /health and /metrics report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "capacity.h"
#include "shm.h"

static struct tg_shm_workers table;

static int setup(void **state)
{
    (void)state;
    memset(&table, 0, sizeof(table));
    assert_int_equal(tg_shm_mutex_init(&table.lock), TG_OK);
    table.master_pid = 1;
    table.configured = 2;
    table.slots[0] = (struct tg_shm_worker){.pid = 100, .threads = 2};
    table.slots[1] = (struct tg_shm_worker){.pid = 101, .threads = 1};
    return 0;
}

static void admits_the_sum_of_the_live_workers_threads(void **state)
{
    (void)state;
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_OK);
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_OK);
    /* worker 0's threads are all taken, but the host still has one: it may serve it */
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_OK);
    assert_int_equal(tg_capacity_admit_slot(&table, 1), TG_DECLINED);
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_DECLINED);
    tg_capacity_leave_slot(&table, 0);
    assert_int_equal(tg_capacity_admit_slot(&table, 1), TG_OK);
    assert_int_equal(tg_capacity_admit_slot(&table, 1), TG_DECLINED);
}

static void a_starting_or_dead_worker_adds_no_capacity(void **state)
{
    (void)state;
    table.slots[1].threads = 0; /* forked, threads not running yet */
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_OK);
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_OK);
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_DECLINED);
    /* worker 0 dies with two admitted: the master clears its slot, a new one starts */
    table.slots[0] = (struct tg_shm_worker){.pid = 102, .threads = 2};
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_OK);
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_OK);
    assert_int_equal(tg_capacity_admit_slot(&table, 0), TG_DECLINED);
}

static void counts_sum_the_live_workers(void **state)
{
    (void)state;
    table.slots[0].busy = 3;
    table.slots[1].busy = 1;
    assert_int_equal(tg_capacity_admit_slot(&table, 1), TG_OK);
    struct tg_capacity_counts c;
    tg_capacity_count(&table, &c);
    assert_int_equal(c.configured, 2);
    assert_int_equal(c.alive, 2);
    assert_int_equal(c.threads_total, 5); /* 2 + 1 + a spare each */
    assert_int_equal(c.threads_busy, 4);
    assert_int_equal(c.capacity, 3);
    assert_int_equal(c.admitted, 1);
    table.slots[1] = (struct tg_shm_worker){0}; /* reaped */
    tg_capacity_count(&table, &c);
    assert_int_equal(c.alive, 1);
    assert_int_equal(c.threads_total, 3);
    assert_int_equal(c.admitted, 0);
    table.master_pid = 0; /* no master: nothing is "configured", nothing degraded */
    tg_capacity_count(&table, &c);
    assert_int_equal(c.configured, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(admits_the_sum_of_the_live_workers_threads, setup),
        cmocka_unit_test_setup(a_starting_or_dead_worker_adds_no_capacity, setup),
        cmocka_unit_test_setup(counts_sum_the_live_workers, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
