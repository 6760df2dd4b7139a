/*
 * supervise.c — the master process (see supervise.h).
 */
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "shm.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
#define QUICK_DEATH_MS 10000 /* a worker that dies sooner counts towards a crash loop */

struct slot {
    pid_t pid;          /* 0: none running */
    int64_t started_ms; /* when it was forked */
    int64_t due_ms;     /* when to fork the next one (pid 0) */
    int quick_deaths;   /* in a row */
};

static struct tg_shm_workers *table; /* NULL without the shared segment */

static void publish(int i, pid_t pid)
{
    if (table == NULL || tg_shm_mutex_lock(&table->lock) != TG_OK)
        return;
    struct tg_shm_worker *s = &table->slots[i];
    s->pid = (int32_t)pid;
    s->threads = 0; /* the worker sets it once its threads run */
    __atomic_store_n(&s->busy, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->admitted, 0, __ATOMIC_RELAXED);
    tg_shm_mutex_unlock(&table->lock);
}

/* Another live master on this segment (not a stale pid left by a killed one)? */
static pid_t other_master(void)
{
    if (table == NULL)
        return 0;
    pid_t pid = (pid_t)table->master_pid;
    if (pid <= 0 || pid == getpid())
        return 0;
    return kill(pid, 0) == 0 || errno == EPERM ? pid : 0;
}

/* Forks slot i's worker: TG_DECLINED in the child, TG_OK in the master (or fork failed). */
static int spawn(struct slot *slots, int i, const sigset_t *old_mask)
{
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        tg_log_error(NULL, "could not fork worker %d: %s", i, strerror(errno));
        slots[i].due_ms = tg_now_ms() + BACKOFF_MAX_MS;
        return TG_OK;
    }
    if (pid == 0) {
        tg_log_forked();
        /* the master gone (kill -9), its workers stop too, gracefully */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master)
            _exit(0);
        sigprocmask(SIG_SETMASK, old_mask, NULL);
        return TG_DECLINED;
    }
    slots[i].pid = pid;
    slots[i].started_ms = tg_now_ms();
    publish(i, pid);
    tg_log_info(NULL, "started worker %d (pid %d)", i, (int)pid);
    return TG_OK;
}

static void describe_exit(int status, char *out, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(out, size, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
}

/* Reaps what exited; schedules a replacement unless stopping. Returns the workers left. */
static int reap(struct slot *slots, int n, bool stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < n; i++) {
            if (slots[i].pid != pid)
                continue;
            int64_t now = tg_now_ms();
            char how[64];
            describe_exit(status, how, sizeof(how));
            slots[i].pid = 0;
            publish(i, 0);
            if (stopping) {
                tg_log_info(NULL, "worker %d (pid %d) %s", i, (int)pid, how);
                break;
            }
            slots[i].quick_deaths =
                now - slots[i].started_ms < QUICK_DEATH_MS ? slots[i].quick_deaths + 1 : 0;
            int64_t delay = 0;
            if (slots[i].quick_deaths > 0) {
                int shift = slots[i].quick_deaths - 1 < 10 ? slots[i].quick_deaths - 1 : 10;
                delay = (int64_t)BACKOFF_FIRST_MS << shift;
                if (delay > BACKOFF_MAX_MS)
                    delay = BACKOFF_MAX_MS;
            }
            slots[i].due_ms = now + delay;
            tg_log_error(NULL, "worker %d (pid %d) %s: replacing it in %lld ms", i, (int)pid, how,
                         (long long)delay);
            break;
        }
    }
    int left = 0;
    for (int i = 0; i < n; i++)
        left += slots[i].pid != 0;
    return left;
}

/* SIGTERM to every worker, then waits for all: they finish their requests first. */
static void stop_all(struct slot *slots, int n, int sig)
{
    tg_log_info(NULL, "received signal %d: stopping the workers", sig);
    for (int i = 0; i < n; i++)
        if (slots[i].pid != 0)
            kill(slots[i].pid, SIGTERM);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    while (reap(slots, n, true) > 0) {
        struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
        sigtimedwait(&chld, NULL, &tick);
    }
}

int tg_supervise_run(const struct tg_config *config, const char *scope, int *slot)
{
    struct tg_shm *shm = NULL;
    if (tg_shm_attach(scope, &shm) == TG_OK)
        table = &shm->workers;
    else
        tg_log_warn(NULL, "could not map shared memory (%s): workers are not reported",
                    strerror(errno));
    pid_t other = other_master();
    if (other != 0) {
        tg_log_error(NULL, "could not start: another master (pid %d) serves this socket",
                     (int)other);
        return TG_ERROR;
    }
    /* a stream holds two descriptors (FastCGI, provider) for its whole life */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    int n = config->processes;
    if (table != NULL && tg_shm_mutex_lock(&table->lock) == TG_OK) {
        table->master_pid = (int32_t)getpid();
        table->configured = n;
        for (int i = 0; i < TG_SHM_WORKERS; i++) /* left by a master killed before */
            table->slots[i] = (struct tg_shm_worker){0};
        tg_shm_mutex_unlock(&table->lock);
    }
    struct slot slots[TG_SHM_WORKERS];
    memset(slots, 0, sizeof(slots));
    sigset_t watched, old_mask;
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    sigaddset(&watched, SIGTERM);
    sigaddset(&watched, SIGINT);
    sigaddset(&watched, SIGHUP);
    sigprocmask(SIG_BLOCK, &watched, &old_mask);
    tg_log_info(NULL, "master started: %d workers of %d threads", n, config->threads);
    for (;;) {
        int64_t now = tg_now_ms(), next = now + 1000;
        for (int i = 0; i < n; i++) {
            if (slots[i].pid != 0)
                continue;
            if (slots[i].due_ms <= now) {
                bool respawn = slots[i].started_ms != 0;
                if (spawn(slots, i, &old_mask) == TG_DECLINED) {
                    *slot = i;
                    return TG_DECLINED;
                }
                if (respawn && table != NULL)
                    __atomic_add_fetch(&table->respawned_total, 1, __ATOMIC_RELAXED);
            } else if (slots[i].due_ms < next) {
                next = slots[i].due_ms;
            }
        }
        long wait_ms = next > now ? (long)(next - now) : 1;
        struct timespec timeout = {.tv_sec = wait_ms / 1000,
                                   .tv_nsec = (wait_ms % 1000) * 1000 * 1000};
        int sig = sigtimedwait(&watched, NULL, &timeout);
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            stop_all(slots, n, sig);
            break;
        }
        reap(slots, n, false);
    }
    if (table != NULL && tg_shm_mutex_lock(&table->lock) == TG_OK) {
        table->master_pid = 0;
        tg_shm_mutex_unlock(&table->lock);
    }
    tg_log_info(NULL, "master stopped");
    return TG_OK;
}
