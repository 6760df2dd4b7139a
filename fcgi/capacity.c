/*
 * capacity.c — admission against the host's free threads, and the worker
 * slots' counts (see capacity.h).
 */
#include "capacity.h"

#include <stdio.h>
#include <time.h>

#include "request.h"
#include "shm.h"

/* How often a request waiting for a slot checks that its client is still there. */
#define CLIENT_CHECK_MS 100

static int own_slot = -1;

void tg_capacity_set_slot(int slot)
{
    own_slot = slot >= 0 && slot < TG_SHM_WORKERS ? slot : -1;
}

/* The host's table and this process's slot in it, or NULL. */
static struct tg_shm_worker *own(struct tg_shm_workers **w)
{
    struct tg_shm *shm = tg_shm_get();
    if (shm == NULL || own_slot < 0)
        return NULL;
    *w = &shm->workers;
    return &shm->workers.slots[own_slot];
}

void tg_capacity_ready(int n)
{
    struct tg_shm_workers *w;
    struct tg_shm_worker *slot = own(&w);
    if (slot == NULL || tg_shm_mutex_lock(&w->lock) != TG_OK)
        return;
    slot->threads = n;
    tg_shm_mutex_unlock(&w->lock);
}

void tg_capacity_busy(int delta)
{
    struct tg_shm_workers *w;
    struct tg_shm_worker *slot = own(&w);
    if (slot != NULL)
        __atomic_add_fetch(&slot->busy, delta, __ATOMIC_RELAXED);
}

/* Requests the live workers may serve at once, and how many they serve; lock held. */
static void sum_locked(const struct tg_shm_workers *w, int *capacity, int *admitted)
{
    *capacity = *admitted = 0;
    for (int i = 0; i < TG_SHM_WORKERS; i++) {
        const struct tg_shm_worker *s = &w->slots[i];
        if (s->pid == 0)
            continue;
        *capacity += s->threads;
        *admitted += __atomic_load_n(&s->admitted, __ATOMIC_RELAXED);
    }
}

int tg_capacity_admit_slot(struct tg_shm_workers *w, int slot)
{
    if (slot < 0 || slot >= TG_SHM_WORKERS || tg_shm_mutex_lock(&w->lock) != TG_OK)
        return TG_OK; /* nothing to count in: no worse than without the gate */
    int capacity, admitted;
    sum_locked(w, &capacity, &admitted);
    /* a leave may run at any time (no lock): it only makes the sum smaller */
    bool room = admitted < capacity;
    if (room)
        __atomic_add_fetch(&w->slots[slot].admitted, 1, __ATOMIC_RELAXED);
    tg_shm_mutex_unlock(&w->lock);
    return room ? TG_OK : TG_DECLINED;
}

void tg_capacity_leave_slot(struct tg_shm_workers *w, int slot)
{
    if (slot >= 0 && slot < TG_SHM_WORKERS)
        __atomic_sub_fetch(&w->slots[slot].admitted, 1, __ATOMIC_RELAXED);
}

int tg_capacity_admit(struct tg_request *r)
{
    struct tg_shm_workers *w;
    if (own(&w) == NULL || tg_capacity_admit_slot(w, own_slot) == TG_OK)
        return TG_OK;
    /* server.queue_timeout_ms: wait for a slot (holding this thread), then refuse;
     * a client that leaves meanwhile frees the thread at once */
    int64_t checked = tg_now_ms();
    for (int64_t until = checked + r->config->queue_timeout_ms; tg_now_ms() < until;) {
        struct timespec tick = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};
        nanosleep(&tick, NULL);
        if (tg_capacity_admit_slot(w, own_slot) == TG_OK)
            return TG_OK;
        if (tg_now_ms() - checked >= CLIENT_CHECK_MS) {
            checked = tg_now_ms();
            if (tg_request_client_left(r)) {
                r->outcome = "client_gone";
                r->status = 499;
                return TG_DECLINED;
            }
        }
    }
    __atomic_add_fetch(&w->refused_total, 1, __ATOMIC_RELAXED);
    char retry[16];
    snprintf(retry, sizeof(retry), "%d", TG_CAPACITY_RETRY_AFTER_S);
    tg_request_add_header(r, "retry-after", retry);
    r->outcome = "overloaded";
    tg_request_fail(r, 503, "overloaded_error",
                    "the gateway is serving as many requests as it can; retry shortly",
                    "every request thread of the host is busy");
    return TG_DECLINED;
}

void tg_capacity_leave(void)
{
    struct tg_shm_workers *w;
    if (own(&w) != NULL)
        tg_capacity_leave_slot(w, own_slot);
}

void tg_capacity_count(struct tg_shm_workers *w, struct tg_capacity_counts *out)
{
    *out = (struct tg_capacity_counts){0};
    if (w == NULL) {
        struct tg_shm *shm = tg_shm_get();
        if (shm == NULL)
            return;
        w = &shm->workers;
    }
    if (tg_shm_mutex_lock(&w->lock) != TG_OK)
        return;
    out->configured = w->master_pid != 0 ? w->configured : 0;
    for (int i = 0; i < TG_SHM_WORKERS; i++) {
        const struct tg_shm_worker *s = &w->slots[i];
        if (s->pid == 0 || s->threads == 0)
            continue;
        out->alive++;
        out->threads_total += s->threads + 1;
        out->threads_busy += __atomic_load_n(&s->busy, __ATOMIC_RELAXED);
        out->capacity += s->threads;
        out->admitted += __atomic_load_n(&s->admitted, __ATOMIC_RELAXED);
    }
    tg_shm_mutex_unlock(&w->lock);
    out->refused = __atomic_load_n(&w->refused_total, __ATOMIC_RELAXED);
    out->respawned = __atomic_load_n(&w->respawned_total, __ATOMIC_RELAXED);
}
