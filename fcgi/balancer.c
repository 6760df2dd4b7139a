/*
 * balancer.c — backend choice by priority and weight, circuit breakers in the
 * host's shared memory, retry backoff and retry-after.
 *
 * Every decision about circuits is taken under the table's one robust mutex:
 * pick looks at every member, draws one and takes its probe in the same
 * critical section, so two processes cannot both see a circuit due a probe and
 * both take it. The section is short (a few hash lookups) and takes no
 * allocation or I/O; logging waits until the lock is released.
 */
#include "balancer.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* The policy with its values brought into range (see balancer.h). */
static struct tg_balancer_policy effective(const struct tg_balancer_policy *given)
{
    struct tg_balancer_policy p = given != NULL ? *given : TG_BALANCER_POLICY_DEFAULT;
    if (p.failure_threshold > TG_SHM_CIRCUIT_FAILURES)
        p.failure_threshold = TG_SHM_CIRCUIT_FAILURES;
    if (p.window_ms < 1)
        p.window_ms = 1;
    if (p.cooldown_ms < 0)
        p.cooldown_ms = 0;
    if (p.probe_timeout_ms <= 0)
        p.probe_timeout_ms = p.cooldown_ms;
    return p;
}

/* now_ms - since_ms, saturated (a released probe's time is far in the past). */
static int64_t elapsed(int64_t now_ms, int64_t since_ms)
{
    int64_t d;
    if (__builtin_sub_overflow(now_ms, since_ms, &d))
        return since_ms < 0 ? INT64_MAX : INT64_MIN;
    return d;
}

/* A uniform draw in [0, bound) from all 64 bits of random (bound > 0). */
static uint64_t draw(uint64_t random, uint64_t bound)
{
    return (uint64_t)(((unsigned __int128)random * bound) >> 64);
}

int tg_balancer_table_init(struct tg_shm_circuits *t)
{
    memset(t, 0, sizeof(*t));
    return tg_shm_mutex_init(&t->lock);
}

/*
 * The circuit of id (open addressing, FNV-1a), claiming a free slot when create
 * is set. NULL when there is none: not yet reported, the table full, or an id
 * that does not fit. Call with the lock held.
 */
static struct tg_shm_circuit *find(struct tg_shm_circuits *t, const char *id, bool create)
{
    size_t len = strnlen(id, TG_SHM_CIRCUIT_ID);
    if (len == 0 || len >= TG_SHM_CIRCUIT_ID)
        return NULL;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ULL;
    for (size_t probe = 0; probe < TG_SHM_CIRCUITS; probe++) {
        struct tg_shm_circuit *c = &t->circuits[(h + probe) % TG_SHM_CIRCUITS];
        if (c->id[0] == '\0') {
            if (!create)
                return NULL; /* slots are never freed: id would have been here */
            memset(c, 0, sizeof(*c));
            memcpy(c->id, id, len + 1);
            t->n_circuits++;
            return c;
        }
        if (strcmp(c->id, id) == 0)
            return c;
    }
    return NULL;
}

/* Whether c lets a request through now (NULL: untracked, closed). */
static bool admits(const struct tg_shm_circuit *c, const struct tg_balancer_policy *p,
                   int64_t now_ms)
{
    if (c == NULL || p->failure_threshold <= 0)
        return true;
    switch (c->state) {
    case TG_CIRCUIT_OPEN: return elapsed(now_ms, c->opened_at_ms) >= p->cooldown_ms;
    case TG_CIRCUIT_HALF_OPEN: return elapsed(now_ms, c->probe_at_ms) >= p->probe_timeout_ms;
    default: return true;
    }
}

/* Whether member i may serve; *c gets its circuit (NULL: untracked or no table). */
static bool usable(struct tg_shm_circuits *locked, const struct tg_balancer_member *m,
                   const bool *tried, size_t i, const struct tg_balancer_policy *p, int64_t now_ms,
                   struct tg_shm_circuit **c)
{
    *c = NULL;
    if ((tried != NULL && tried[i]) || m->weight <= 0 || m->id == NULL)
        return false;
    if (locked != NULL)
        *c = find(locked, m->id, false);
    return admits(*c, p, now_ms);
}

int tg_balancer_pick(struct tg_shm_circuits *t, const struct tg_balancer_member *members, size_t n,
                     const bool *tried, const struct tg_balancer_policy *policy, int64_t now_ms,
                     uint64_t random, uint64_t *probe)
{
    struct tg_balancer_policy p = effective(policy);
    struct tg_shm_circuit *c;
    if (probe != NULL)
        *probe = 0;
    /* no table, or a lock that cannot be taken: serve rather than refuse every backend */
    struct tg_shm_circuits *locked = t != NULL && tg_shm_mutex_lock(&t->lock) == TG_OK ? t : NULL;

    bool found = false;
    int best = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!usable(locked, &members[i], tried, i, &p, now_ms, &c))
            continue;
        if (!found || members[i].priority < best) {
            found = true;
            best = members[i].priority;
            total = 0;
        }
        if (members[i].priority == best)
            total += (uint64_t)members[i].weight;
    }

    int chosen = -1;
    if (found) {
        uint64_t target = draw(random, total);
        for (size_t i = 0; i < n && chosen < 0; i++) {
            if (members[i].priority != best ||
                !usable(locked, &members[i], tried, i, &p, now_ms, &c))
                continue;
            if (target < (uint64_t)members[i].weight)
                chosen = (int)i;
            else
                target -= (uint64_t)members[i].weight;
        }
        /* c is the chosen member's circuit: take its probe if it is due one */
        if (chosen >= 0 && c != NULL && p.failure_threshold > 0 && c->state != TG_CIRCUIT_CLOSED) {
            c->state = TG_CIRCUIT_HALF_OPEN;
            c->probe_at_ms = now_ms;
            if (++c->probe_token == 0)
                c->probe_token = 1;
            if (probe != NULL)
                *probe = c->probe_token;
        }
    }
    if (locked != NULL)
        tg_shm_mutex_unlock(&locked->lock);
    return chosen;
}

static void open_circuit(struct tg_shm_circuit *c, int64_t now_ms)
{
    c->state = TG_CIRCUIT_OPEN;
    c->opened_at_ms = now_ms;
    c->opened_total++;
}

static void clear_failures(struct tg_shm_circuit *c)
{
    c->n_failures = 0;
    c->next_failure = 0;
}

/* Failures held by c within window_ms of now_ms. */
static uint32_t recent_failures(const struct tg_shm_circuit *c, int64_t window_ms, int64_t now_ms)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < c->n_failures && i < TG_SHM_CIRCUIT_FAILURES; i++)
        if (elapsed(now_ms, c->failure_ms[i]) < window_ms)
            count++;
    return count;
}

/* A failure in the closed state: remembered, and the circuit opens at the threshold. */
static void add_failure(struct tg_shm_circuit *c, const struct tg_balancer_policy *p,
                        int64_t now_ms)
{
    c->failure_ms[c->next_failure % TG_SHM_CIRCUIT_FAILURES] = now_ms;
    c->next_failure = (c->next_failure + 1) % TG_SHM_CIRCUIT_FAILURES;
    if (c->n_failures < TG_SHM_CIRCUIT_FAILURES)
        c->n_failures++;
    /*
     * Counted rather than read off the ring's order: processes report with
     * clocks read a little apart, so arrival order is not quite time order.
     */
    if (recent_failures(c, p->window_ms, now_ms) >= (uint32_t)p->failure_threshold)
        open_circuit(c, now_ms);
}

void tg_balancer_report(struct tg_shm_circuits *t, const char *id, bool success, uint64_t probe,
                        const struct tg_balancer_policy *policy, int64_t now_ms)
{
    if (t == NULL || id == NULL)
        return;
    struct tg_balancer_policy p = effective(policy);
    if (tg_shm_mutex_lock(&t->lock) != TG_OK) {
        tg_log_error(NULL, "could not lock the circuit table: report on backend \"%s\" lost", id);
        return;
    }
    bool log_untracked = false;
    struct tg_shm_circuit *c = find(t, id, true);
    if (c == NULL) {
        t->untracked_reports++;
        log_untracked = t->untracked_logged == 0;
        t->untracked_logged = 1;
    } else {
        if (!success)
            c->failures_total++;
        bool current_probe =
            probe != 0 && c->state == TG_CIRCUIT_HALF_OPEN && probe == c->probe_token;
        if (p.failure_threshold <= 0) {
            /* the breaker is off: totals only */
        } else if (current_probe && success) {
            c->state = TG_CIRCUIT_CLOSED;
            clear_failures(c);
        } else if (current_probe) {
            open_circuit(c, now_ms);
        } else if (c->state == TG_CIRCUIT_CLOSED && success) {
            if (p.success_resets)
                clear_failures(c);
        } else if (c->state == TG_CIRCUIT_CLOSED) {
            add_failure(c, &p, now_ms);
        }
        /* open or half-open: only the current probe decides */
    }
    tg_shm_mutex_unlock(&t->lock);
    if (log_untracked)
        tg_log_warn(NULL,
                    "could not track the circuit of backend \"%.128s\": %s; it counts as closed "
                    "(logged once)",
                    id,
                    strnlen(id, TG_SHM_CIRCUIT_ID) >= TG_SHM_CIRCUIT_ID ? "id longer than 128 bytes"
                                                                        : "circuit table full");
}

void tg_balancer_release(struct tg_shm_circuits *t, const char *id, uint64_t probe)
{
    if (t == NULL || id == NULL || probe == 0 || tg_shm_mutex_lock(&t->lock) != TG_OK)
        return;
    struct tg_shm_circuit *c = find(t, id, false);
    if (c != NULL && c->state == TG_CIRCUIT_HALF_OPEN && c->probe_token == probe)
        c->probe_at_ms = INT64_MIN / 2; /* as if lost long ago: the next pick may probe */
    tg_shm_mutex_unlock(&t->lock);
}

size_t tg_balancer_snapshot(struct tg_shm_circuits *t, const struct tg_balancer_policy *policy,
                            int64_t now_ms, struct tg_balancer_circuit_view *out, size_t cap,
                            uint64_t *untracked)
{
    if (untracked != NULL)
        *untracked = 0;
    if (t == NULL || tg_shm_mutex_lock(&t->lock) != TG_OK)
        return 0;
    struct tg_balancer_policy p = effective(policy);
    size_t copied = 0;
    for (size_t i = 0; i < TG_SHM_CIRCUITS && copied < cap; i++) {
        const struct tg_shm_circuit *c = &t->circuits[i];
        if (c->id[0] == '\0')
            continue;
        struct tg_balancer_circuit_view *v = &out[copied++];
        memcpy(v->id, c->id, sizeof(v->id));
        v->id[sizeof(v->id) - 1] = '\0';
        v->state = (enum tg_shm_circuit_state)c->state;
        v->failures_in_window = recent_failures(c, p.window_ms, now_ms);
        v->failures_total = c->failures_total;
        v->opened_total = c->opened_total;
    }
    size_t held = t->n_circuits;
    if (untracked != NULL)
        *untracked = t->untracked_reports;
    tg_shm_mutex_unlock(&t->lock);
    return held;
}

const char *tg_balancer_state_name(enum tg_shm_circuit_state state)
{
    switch (state) {
    case TG_CIRCUIT_OPEN: return "open";
    case TG_CIRCUIT_HALF_OPEN: return "half_open";
    default: return "closed";
    }
}

/* ---- retry timing ---- */

int64_t tg_balancer_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint64_t random,
                               int64_t retry_after_ms)
{
    if (base_ms < 0)
        base_ms = 0;
    if (max_ms < 0)
        max_ms = 0;
    int64_t ceiling = base_ms < max_ms ? base_ms : max_ms;
    /* doubling stops at max_ms, so a large attempt costs at most 63 rounds */
    for (int i = 1; i < attempt && ceiling > 0 && ceiling < max_ms; i++)
        ceiling = ceiling > max_ms / 2 ? max_ms : ceiling * 2;
    int64_t delay = (int64_t)draw(random, (uint64_t)ceiling + 1);
    if (retry_after_ms > 0) {
        int64_t floor_ms = retry_after_ms < max_ms ? retry_after_ms : max_ms;
        if (delay < floor_ms)
            delay = floor_ms;
    }
    return delay;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* delta-seconds (with an optional fraction) in ms, saturated; -1 unless all of s is one. */
static int64_t delta_ms(const char *s)
{
    int64_t seconds = 0, ms = 0;
    for (; is_digit(*s); s++)
        if (seconds < 1000000000000LL) /* 10^12 s: past any cap, and no overflow in ms */
            seconds = seconds * 10 + (*s - '0');
    if (*s == '.') {
        s++;
        if (!is_digit(*s))
            return -1;
        for (int scale = 100; is_digit(*s); s++, scale /= 10)
            ms += (*s - '0') * scale; /* digits past the millisecond add 0 */
    }
    return *skip_space(s) == '\0' ? seconds * 1000 + ms : -1;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* An HTTP-date in seconds since the epoch; -1 when s is none of its three forms. */
static int64_t http_date(const char *s)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char month[4] = "";
    int day = 0, year = 0, hour = 0, minute = 0, second = 0, used = -1;
    /* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (sscanf(s, "%*[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &day, month, &year, &hour,
               &minute, &second, &used) != 6 ||
        used < 0) {
        used = -1;
        /* RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" */
        if (sscanf(s, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", &day, month, &year, &hour,
                   &minute, &second, &used) == 6 &&
            used >= 0)
            year += year < 70 ? 2000 : 1900;
        /* asctime "Sun Nov  6 08:49:37 1994" */
        else if (sscanf(s, "%*[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", month, &day, &hour,
                        &minute, &second, &year, &used) != 6)
            used = -1;
    }
    if (used < 0 || *skip_space(s + used) != '\0')
        return -1;
    int m = 0;
    while (m < 12 && strcasecmp(month, months[m]) != 0)
        m++;
    if (m == 12 || day < 1 || day > 31 || year < 1900 || hour < 0 || hour > 23 || minute < 0 ||
        minute > 59 || second < 0 || second > 60)
        return -1;
    return days_from_civil(year, m + 1, day) * 86400 + hour * 3600 + minute * 60 + second;
}

int64_t tg_balancer_retry_after_ms(const char *value, int64_t now_unix_s, int64_t cap_ms)
{
    if (value == NULL)
        return -1;
    if (cap_ms < 0)
        cap_ms = 0;
    const char *s = skip_space(value);
    int64_t ms;
    if (is_digit(*s)) {
        ms = delta_ms(s);
    } else {
        int64_t at = http_date(s);
        if (at < 0)
            return -1;
        /* dates are at most year 9999: the difference in ms cannot overflow */
        ms = at > now_unix_s ? (at - now_unix_s) * 1000 : 0;
    }
    if (ms < 0)
        return -1;
    return ms < cap_ms ? ms : cap_ms;
}
