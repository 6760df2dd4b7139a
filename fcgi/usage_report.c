/*
 * usage_report.c — GET /v1/usage.
 */
#include "usage_report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "db.h"
#include "request.h"

#define MAX_DAYS 3660

struct period {
    char from[11], to[11]; /* "YYYY-MM-DD" or "" */
    char days[8];          /* "30" or "" */
};

static bool is_date(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    return true;
}

static bool is_days(const char *s, size_t len)
{
    if (len == 0 || len > 4 || strspn(s, "0123456789") < len)
        return false;
    long n = strtol(s, NULL, 10);
    return n >= 1 && n <= MAX_DAYS;
}

static int bad_parameter(struct tg_request *r, const char *name, const char *want)
{
    char message[160];
    snprintf(message, sizeof(message), "query parameter \"%s\": %s", name, want);
    tg_request_fail(r, 400, "invalid_request_error", message, NULL);
    return TG_ERROR;
}

/* One "name=value" of the query string into p. */
static int read_parameter(struct tg_request *r, const char *item, size_t len, struct period *p)
{
    const char *eq = memchr(item, '=', len);
    size_t name_len = eq != NULL ? (size_t)(eq - item) : len;
    const char *value = eq != NULL ? eq + 1 : item + len;
    size_t value_len = len - name_len - (eq != NULL ? 1 : 0);
    if (name_len == 4 && strncmp(item, "from", 4) == 0) {
        if (!is_date(value, value_len))
            return bad_parameter(r, "from", "must be a date YYYY-MM-DD");
        memcpy(p->from, value, 10);
    } else if (name_len == 2 && strncmp(item, "to", 2) == 0) {
        if (!is_date(value, value_len))
            return bad_parameter(r, "to", "must be a date YYYY-MM-DD");
        memcpy(p->to, value, 10);
    } else if (name_len == 4 && strncmp(item, "days", 4) == 0) {
        if (!is_days(value, value_len))
            return bad_parameter(r, "days", "must be a whole number of days from 1 to 3660");
        memcpy(p->days, value, value_len);
    } else {
        return bad_parameter(r, "(unknown)", "only from, to and days are understood");
    }
    return TG_OK;
}

static int read_period(struct tg_request *r, struct period *p)
{
    memset(p, 0, sizeof(*p));
    const char *q = tg_request_param(r, "QUERY_STRING");
    while (q != NULL && *q != '\0') {
        size_t len = strcspn(q, "&");
        if (len > 0 && read_parameter(r, q, len, p) != TG_OK)
            return TG_ERROR;
        q += len + (q[len] == '&' ? 1 : 0);
    }
    if (p->days[0] != '\0' && (p->from[0] != '\0' || p->to[0] != '\0'))
        return bad_parameter(r, "days", "give either days, or from and to");
    if (p->to[0] != '\0' && p->from[0] == '\0')
        return bad_parameter(r, "from", "is required with to");
    if (p->from[0] == '\0' && p->days[0] == '\0')
        snprintf(p->days, sizeof(p->days), "30");
    return TG_OK;
}

/* Period bounds are computed by PostgreSQL in the report time zone. */
static const char *const summary_sql =
    "WITH tz AS (SELECT tollgate.quota_timezone() AS name) "
    "SELECT tollgate.usage_summary($1::bigint, $2, $3, "
    "  coalesce($4::date::timestamp AT TIME ZONE tz.name, now() - $6::int * interval '1 day'), "
    "  CASE WHEN $4 IS NULL THEN now() "
    "       ELSE (coalesce($5::date, (now() AT TIME ZONE tz.name)::date) + 1)::timestamp "
    "            AT TIME ZONE tz.name END)::text FROM tz";

int tg_usage_report_handle(struct tg_request *r)
{
    struct period p;
    if (tg_auth_identify(r) != TG_OK || read_period(r, &p) != TG_OK)
        return TG_ERROR;
    char key_id[24];
    snprintf(key_id, sizeof(key_id), "%" PRId64, r->identity.api_key_id);
    const char *params[] = {r->identity.api_key_id != 0 ? key_id : NULL,
                            r->identity.user_id,
                            r->identity.group_id,
                            p.from[0] ? p.from : NULL,
                            p.to[0] ? p.to : NULL,
                            p.days[0] ? p.days : NULL};
    struct tg_db_rows rows;
    char sqlstate[6], err[256];
    int rc = tg_db_call(r, summary_sql, 6, params, true, &rows, sqlstate, err, sizeof(err));
    if (rc == TG_DECLINED && strncmp(sqlstate, "22", 2) == 0)
        return bad_parameter(r, "from", "is not a valid date"); /* e.g. 2026-02-30 */
    if (rc != TG_OK || rows.n_rows != 1 || rows.cells[0] == NULL) {
        tg_request_fail(r, 503, "api_error", "the gateway's database is unavailable",
                        "usage summary failed: %s", err);
        return TG_ERROR;
    }
    tg_request_respond(r, 200, "application/json", rows.cells[0], strlen(rows.cells[0]));
    return TG_OK;
}
