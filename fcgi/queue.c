/*
 * queue.c — the checks that keep a request nobody waits for any more from
 * reaching the provider (see queue.h).
 */
#include "queue.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t tg_queue_parse_start(const char *value)
{
    if (value == NULL)
        return -1;
    if (strncmp(value, "t=", 2) == 0)
        value += 2;
    int64_t whole = 0;
    size_t digits = 0;
    for (; *value >= '0' && *value <= '9'; value++, digits++) {
        if (digits >= 18)
            return -1; /* no clock of this era needs more */
        whole = whole * 10 + (*value - '0');
    }
    if (digits == 0)
        return -1;
    if (*value == '.') { /* seconds with a fraction: milliseconds are enough */
        if (digits > 11)
            return -1;
        int64_t ms = 0;
        size_t places = 0;
        for (value++; *value >= '0' && *value <= '9'; value++)
            if (places < 3) {
                ms = ms * 10 + (*value - '0');
                places++;
            }
        if (places == 0)
            return -1;
        for (; places < 3; places++)
            ms *= 10;
        return *value == '\0' ? whole * 1000 + ms : -1;
    }
    if (*value != '\0')
        return -1;
    if (digits <= 11)
        return whole * 1000;
    return digits <= 14 ? whole : whole / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long r has waited: since the web server's stamp when it is sane, else since accept. */
static int64_t waited_ms(struct tg_request *r, const char **since)
{
    int64_t accepted = tg_now_ms() - r->t_start_ms;
    int64_t arrived = tg_queue_parse_start(tg_request_header(r, "x-request-start"));
    int64_t now = wall_ms();
    /* a stamp from the future, or one a day old, is no web server's: ignored */
    if (arrived > 0 && arrived <= now + 1000 && now - arrived < 86400000 &&
        now - arrived > accepted) {
        *since = "X-Request-Start";
        return now - arrived;
    }
    *since = "accept";
    return accepted;
}

int tg_queue_check(struct tg_request *r)
{
    if (tg_request_client_left(r)) {
        r->outcome = "client_gone";
        r->status = 499;
        return TG_DECLINED;
    }
    long deadline = r->config->queue_deadline_ms;
    if (deadline <= 0)
        return TG_OK;
    const char *since;
    int64_t waited = waited_ms(r, &since);
    if (waited <= deadline)
        return TG_OK;
    r->outcome = "queue_timeout";
    tg_request_fail(r, 503, "overloaded_error",
                    "the gateway is overloaded: the request waited "
                    "too long to be served",
                    "waited %lld ms since %s, over server.queue_deadline_ms %ld", (long long)waited,
                    since, deadline);
    tg_request_add_header(r, "retry-after", "1");
    return TG_ERROR;
}
