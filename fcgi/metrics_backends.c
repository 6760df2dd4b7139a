/*
 * metrics_backends.c — circuits and guardrail actions as Prometheus text.
 */
#include "metrics_backends.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "config.h"
#include "cache.h"
#include "guard.h"
#include "prom.h"
#include "response_cache.h"

#define MAX_SHOWN 256 /* circuits listed at most (the table holds up to TG_SHM_CIRCUITS) */

struct out {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void put(struct out *o, const char *fmt, ...) TG_PRINTF(2, 3);

static void put(struct out *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->failed = true; /* the buffer is sized for MAX_SHOWN circuits: never cut a line */
    else
        o->len += (size_t)n;
}

/* tollgate_guardrail_actions_total{rule,action}: every rule of the config, every action. */
static void put_guard_actions(struct out *o, struct tg_shm *shm, const struct tg_config *c)
{
    const struct tg_guard_hook *hooks[TG_SHM_GUARD_HOOKS] = {&c->guard_webhook,
                                                             &c->guard_moderation};
    if (c->guard == NULL && hooks[0]->url == NULL && hooks[1]->url == NULL)
        return;
    put(o, "# HELP tollgate_guardrail_actions_total Guardrail findings acted on by this host, "
           "by rule and effective action.\n# TYPE tollgate_guardrail_actions_total counter\n");
    /* the remote checks, as pseudo-rules named after their kind */
    static const char *const hook_names[TG_SHM_GUARD_HOOKS] = {"webhook", "moderation"};
    for (int h = 0; h < TG_SHM_GUARD_HOOKS; h++)
        for (int a = 0; hooks[h]->url != NULL && a < TG_SHM_GUARD_ACTIONS; a++)
            put(o, "tollgate_guardrail_actions_total{rule=\"%s\",action=\"%s\"} %" PRIu64 "\n",
                hook_names[h], tg_guard_action_name((enum tg_guard_action)a),
                shm != NULL ? __atomic_load_n(&shm->guard_hook_actions[h][a], __ATOMIC_RELAXED)
                            : 0);
    size_t n = c->guard != NULL ? tg_guard_count(c->guard) : 0;
    for (size_t i = 0; i < n && i < TG_SHM_GUARD_RULES; i++) {
        char rule[2 * TG_SHM_CIRCUIT_ID];
        tg_prom_escape_label(tg_guard_rule_name(c->guard, i), rule, sizeof(rule));
        for (int a = 0; a < TG_SHM_GUARD_ACTIONS; a++) {
            uint64_t v =
                shm != NULL ? __atomic_load_n(&shm->guard_actions[i][a], __ATOMIC_RELAXED) : 0;
            put(o, "tollgate_guardrail_actions_total{rule=\"%s\",action=\"%s\"} %" PRIu64 "\n",
                rule, tg_guard_action_name((enum tg_guard_action)a), v);
        }
    }
}

/* The response cache's counters (response_cache.c), when it is on. */
static void put_cache(struct out *o)
{
    struct tg_cache_stats st;
    if (tg_response_cache_stats(&st) != TG_OK)
        return;
    const struct {
        const char *name, *type, *help;
        uint64_t value;
    } rows[] = {
        {"tollgate_cache_hits_total", "counter", "Requests answered from the response cache.",
         st.hits},
        {"tollgate_cache_misses_total", "counter", "Cacheable requests not found in it.",
         st.misses},
        {"tollgate_cache_evictions_total", "counter", "Live entries dropped to make room.",
         st.evictions},
        {"tollgate_cache_expirations_total", "counter", "Entries dropped at their TTL.",
         st.expirations},
        {"tollgate_cache_entries", "gauge", "Entries held now.", st.entries},
        {"tollgate_cache_bytes", "gauge", "Reply bytes held now.", st.bytes},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++)
        put(o, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", rows[i].name, rows[i].help,
            rows[i].name, rows[i].type, rows[i].name, rows[i].value);
}

char *tg_metrics_backends_text(struct tg_shm *shm, const struct tg_config *c, size_t *len)
{
    static struct tg_balancer_circuit_view views[MAX_SHOWN]; /* large: not on a thread stack */
    static pthread_mutex_t views_lock = PTHREAD_MUTEX_INITIALIZER;
    struct tg_balancer_policy policy = TG_BALANCER_POLICY_DEFAULT;
    policy.failure_threshold = c->failover.failure_threshold;
    policy.window_ms = c->failover.window_ms;
    policy.cooldown_ms = c->failover.cooldown_ms;
    struct out o = {.cap =
                        4096 + MAX_SHOWN * 1024 + TG_SHM_GUARD_RULES * TG_SHM_GUARD_ACTIONS * 384};
    o.buf = malloc(o.cap);
    if (o.buf == NULL)
        return NULL;
    pthread_mutex_lock(&views_lock);
    uint64_t untracked = 0;
    size_t n = tg_balancer_snapshot(shm != NULL ? &shm->circuits : NULL, &policy, tg_now_ms(),
                                    views, MAX_SHOWN, &untracked);
    if (n > MAX_SHOWN)
        n = MAX_SHOWN;
    static const char *const families[][3] = {
        {"tollgate_backend_circuit_state", "gauge",
         "1 for the state each backend's circuit is in (closed, open, half_open) on this host."},
        {"tollgate_backend_failures_total", "counter",
         "Attempts on each backend that failed (unreachable, timed out, or a retry status)."},
        {"tollgate_backend_circuit_opened_total", "counter",
         "Times each backend's circuit opened on this host."},
    };
    for (size_t f = 0; f < TG_ARRAY_LEN(families); f++) {
        put(&o, "# HELP %s %s\n# TYPE %s %s\n", families[f][0], families[f][2], families[f][0],
            families[f][1]);
        for (size_t i = 0; i < n; i++) {
            char id[2 * TG_SHM_CIRCUIT_ID];
            tg_prom_escape_label(views[i].id, id, sizeof(id));
            if (f == 0)
                put(&o, "%s{backend=\"%s\",state=\"%s\"} 1\n", families[f][0], id,
                    tg_balancer_state_name(views[i].state));
            else
                put(&o, "%s{backend=\"%s\"} %" PRIu64 "\n", families[f][0], id,
                    f == 1 ? views[i].failures_total : views[i].opened_total);
        }
    }
    pthread_mutex_unlock(&views_lock);
    put_guard_actions(&o, shm, c);
    put_cache(&o);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
