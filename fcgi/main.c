/*
 * main.c — tollgate-fcgi, the FastCGI master and its worker processes.
 *
 * spawn-fcgi starts one of these on the listening socket (fd 0): the master
 * (supervise.c), which forks server.processes workers that inherit the socket
 * and replaces any that dies. Each worker runs server.threads request threads
 * and one spare (capacity.h: the spare keeps /health, /metrics and quick 503s
 * answered when every request thread is busy); every thread owns a request
 * struct (with its arena) and a libcurl handle, and shares the process's
 * PostgreSQL pool.
 *
 * Shutdown: SIGTERM or SIGINT stops accepting. Threads that are idle in accept()
 * are woken with SIGUSR1 (the request was set up with FCGI_FAIL_ACCEPT_ON_INTR);
 * threads in the middle of a request finish it first. Then the refusal counts
 * not yet sent go to the database (denials.h), the spans still queued go to the
 * trace collector within otel.timeout_ms (otel.h), and the process exits 0.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "capacity.h"
#include "config.h"
#include "db.h"
#include "denials.h"
#include "holder.h"
#include "journal.h"
#include "log.h"
#include "otel.h"
#include "mcp_audit.h"
#include "pipeline.h"
#include "price.h"
#include "price_check.h"
#include "quota.h"
#include "ratelimit.h"
#include "response_cache.h"
#include "settle.h"
#include "request.h"
#include "spool.h"
#include "supervise.h"
#include "upstream.h"

/* spawn-fcgi hands the listening socket over as fd 0 (FastCGI spec) */
#define FCGI_LISTEN_FD 0

struct worker_thread {
    pthread_t id;
    const struct tg_config *config;
    atomic_bool idle; /* waiting in accept: safe to interrupt */
};

static atomic_bool shutting_down;
static atomic_int live_threads;

static void on_wakeup(int sig)
{
    (void)sig; /* only there so accept() returns EINTR */
}

static void *worker_main(void *arg)
{
    struct worker_thread *self = arg;
    struct tg_request r;
    if (tg_request_init(&r, self->config, FCGI_LISTEN_FD) != TG_OK) {
        tg_log_error(NULL, "could not set up a worker thread: out of memory");
        return NULL;
    }
    r.upstream = tg_upstream_new();
    if (r.upstream == NULL) {
        tg_log_error(NULL, "could not set up a worker thread: libcurl handle");
        tg_request_release(&r);
        return NULL;
    }
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
    while (!atomic_load(&shutting_down)) {
        atomic_store(&self->idle, true);
        if (atomic_load(&shutting_down))
            break;
        int rc = tg_request_accept(&r);
        atomic_store(&self->idle, false);
        if (rc == TG_OK)
            tg_capacity_busy(1);
        if (rc != TG_OK) {
            if (atomic_load(&shutting_down))
                break;
            if (errno == EINTR)
                continue;
            tg_log_error(NULL, "could not accept a FastCGI connection: %s", strerror(errno));
            /* the last thread to give up stops the process, so it can be restarted */
            if (atomic_fetch_sub(&live_threads, 1) == 1)
                kill(getpid(), SIGTERM);
            break;
        }
        tg_pipeline_run(&r);
        tg_request_finish(&r);
        tg_capacity_busy(-1);
    }
    tg_upstream_free(r.upstream);
    r.upstream = NULL;
    tg_request_release(&r);
    return NULL;
}

/*
 * The reservation sweeper: releases reservations that expired, and at once those
 * of worker processes of this host that died (kill -9, OOM) mid-request.
 */
static void sweep_once(void)
{
    char **holders = NULL;
    size_t n = 0;
    if (tg_db_reservation_holders(tg_holder_domain(), &holders, &n) != TG_OK)
        return;
    const char **dead = calloc(n + 1, sizeof(char *));
    size_t n_dead = 0;
    for (size_t i = 0; dead != NULL && i < n; i++)
        if (tg_holder_is_dead(holders[i]))
            dead[n_dead++] = holders[i];
    int64_t released = 0;
    if (dead != NULL && tg_db_sweep(dead, n_dead, &released) == TG_OK && released > 0)
        tg_log_info(NULL, "sweeper released %lld reservations", (long long)released);
    free(dead);
    for (size_t i = 0; i < n; i++)
        free(holders[i]);
    free(holders);
}

static void *sweeper_main(void *arg)
{
    const struct tg_config *config = arg;
    while (!atomic_load(&shutting_down)) {
        tg_settle_flush();  /* usage whose waiters gave up */
        tg_price_refresh(); /* prices for the replies' x-tollgate-cost-usd */
        tg_journal_recover(
            tg_settle_recovered); /* requests of dead workers of this host, before their release */
        sweep_once();
        tg_denials_flush();   /* refusal counts: one statement, kept if the database is down */
        tg_mcp_audit_flush(); /* MCP tool calls' audit rows, in batches, from their file */
        /* spooled usage goes in as soon as the database is back, even on an idle gateway */
        if (tg_spool_pending())
            tg_spool_replay(NULL);
        for (long waited = 0; waited < config->sweep_interval_ms && !atomic_load(&shutting_down);
             waited += 100)
            usleep(100 * 1000);
    }
    return NULL;
}

/* The FastCGI socket's path names this deployment's shared memory. */
static void deployment_scope(const char *config_path, char *out, size_t size)
{
    struct sockaddr_un addr;
    socklen_t len = sizeof(addr);
    memset(&addr, 0, sizeof(addr));
    if (getsockname(FCGI_LISTEN_FD, (struct sockaddr *)&addr, &len) == 0 &&
        addr.sun_family == AF_UNIX && addr.sun_path[0] != '\0')
        snprintf(out, size, "unix:%s", addr.sun_path);
    else
        snprintf(out, size, "config:%s", config_path);
}

/* Waits for SIGTERM/SIGINT, then wakes idle threads until all have left. */
static void wait_for_shutdown(struct worker_thread *threads, int n)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    int sig = 0;
    sigwait(&stop, &sig);
    tg_log_info(NULL, "received signal %d: finishing in-flight requests", sig);
    atomic_store(&shutting_down, true);
    FCGX_ShutdownPending();
    for (int i = 0; i < n; i++) {
        /* the thread may be between its flag check and accept(): keep nudging */
        while (pthread_tryjoin_np(threads[i].id, NULL) == EBUSY) {
            if (atomic_load(&threads[i].idle))
                pthread_kill(threads[i].id, SIGUSR1);
            usleep(20 * 1000);
        }
    }
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s -c CONFIG.json [--check]\n", argv0);
    return 2;
}

/* A worker process: its threads serve requests until SIGTERM. */
static int run(const struct tg_config *config, const char *scope)
{
    if (tg_spool_init(config->spool_dir) != TG_OK) {
        tg_log_error(NULL, "could not use spool directory \"%s\": %s", config->spool_dir,
                     strerror(errno));
        return 1;
    }
    if (tg_mcp_audit_init(config->spool_dir, config->journal_fsync) != TG_OK)
        tg_log_warn(NULL, "could not use spool directory \"%s\" for MCP audit rows",
                    config->spool_dir);
    if (tg_ratelimit_init(scope) != TG_OK)
        tg_log_warn(NULL, "could not map shared memory (%s): local rate limits are off",
                    strerror(errno));
    if (tg_response_cache_init(config, scope) != TG_OK)
        tg_log_warn(NULL, "could not map the response cache (%s): it is off", strerror(errno));
    if (tg_quota_init() != TG_OK || tg_upstream_global_init() != TG_OK ||
        tg_db_pool_init(config) != TG_OK || FCGX_Init() != 0) {
        tg_log_error(NULL, "could not initialise libraries");
        return 1;
    }
    tg_settle_init(config);
    if (tg_journal_open(config) != TG_OK) {
        tg_log_error(NULL, "could not create a journal in \"%s\": %s", config->spool_dir,
                     strerror(errno));
        return 1;
    }
    tg_journal_recover(
        tg_settle_recovered); /* what a previous worker of this host left in flight */
    tg_price_refresh();
    struct sigaction sa = {.sa_handler = on_wakeup};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: accept() must return */
    signal(SIGPIPE, SIG_IGN);
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGHUP);
    sigaddset(&blocked, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL); /* threads inherit; only sigwait takes them */

    if (tg_otel_start(&config->otel) == TG_ERROR) /* before the threads that feed it */
        tg_log_error(NULL, "could not start the span exporter: traces are not exported");
    int n_threads = config->threads + 1; /* the spare: see capacity.h */
    struct worker_thread *threads = calloc((size_t)n_threads, sizeof(*threads));
    if (threads == NULL)
        return 1;
    /* small explicit stacks: hundreds of threads per worker, whatever ulimit -s says */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)config->thread_stack_kib * 1024);
    int started = 0, create_rc = 0;
    atomic_store(&live_threads, n_threads);
    for (int i = 0; i < n_threads; i++) {
        threads[i].config = config;
        create_rc = pthread_create(&threads[i].id, &attr, worker_main, &threads[i]);
        if (create_rc != 0)
            break;
        started++;
    }
    pthread_attr_destroy(&attr);
    if (started < n_threads) {
        tg_log_error(NULL, "could not start worker thread %d of %d: %s", started + 1, n_threads,
                     strerror(create_rc));
        atomic_fetch_sub(&live_threads, n_threads - started);
        if (started == 0)
            kill(getpid(), SIGTERM); /* nothing to serve with: exit, the master retries */
    }
    tg_capacity_ready(started > 1 ? started - 1 : 0);
    pthread_t sweeper;
    bool sweeping = pthread_create(&sweeper, NULL, sweeper_main, (void *)config) == 0;
    tg_log_info(NULL, "worker started with %d threads", started);
    tg_price_check_log(config); /* names each unpriced model: reserve refuses its requests */
    wait_for_shutdown(threads, started);
    if (sweeping)
        pthread_join(sweeper, NULL);
    tg_settle_flush();    /* usage whose waiters gave up: settled or spooled before exit */
    tg_mcp_audit_flush(); /* what stays in the file waits for the next worker's sweep */
    tg_otel_stop();       /* every request has ended: its spans go out, within a deadline */
    tg_journal_close();
    /* every request has been counted by now: send what the last sweep did not */
    if (tg_denials_flush() != TG_OK)
        tg_log_error(NULL,
                     "database unavailable: %llu refused requests not recorded in "
                     "tollgate.denials",
                     (unsigned long long)tg_denials_unsent());
    free(threads);
    tg_db_pool_shutdown();
    tg_upstream_global_cleanup();
    tg_log_info(NULL, "worker stopped");
    return 0;
}

/* The master, then in each forked worker run(). */
static int serve(const struct tg_config *config, const char *config_path)
{
    if (tg_log_open(config->log_file) != TG_OK) {
        fprintf(stderr, "could not open log file \"%s\": %s\n", config->log_file, strerror(errno));
        return 1;
    }
    char scope[256];
    deployment_scope(config_path, scope, sizeof(scope));
    int slot = -1;
    int rc = tg_supervise_run(config, scope, &slot);
    if (rc == TG_OK)
        return 0;
    if (rc == TG_ERROR)
        return 1;
    tg_capacity_set_slot(slot);
    return run(config, scope);
}

int main(int argc, char **argv)
{
    const char *config_path = getenv("TOLLGATE_CONFIG");
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strcmp(argv[i], "--check") == 0)
            check_only = true;
        else
            return usage(argv[0]);
    }
    if (config_path == NULL)
        return usage(argv[0]);
    struct tg_config *config = NULL;
    char err[512];
    if (tg_config_load(config_path, &config, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int status = 0;
    if (!check_only)
        status = serve(config, config_path);
    tg_config_free(config);
    return status;
}
