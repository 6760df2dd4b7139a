/*
 * report_doc.h — the reports of tollgatectl and the admin API
 * (/admin/reports/), shared: which parameters each takes and their checks,
 * the one SQL function behind each (sql/018_report_api.sql, 007's
 * chargeback), and the JSON, CSV or table made of its rows. Both callers run
 * the same statement and render the rows with the same code, so their
 * answers are equal byte for byte. No database access here: callers run the
 * statements (tollgatectl on its connection, the admin API on the pool).
 *
 * The reports: chargeback (by group, user, key, model or provider, by two of
 * them joined by a comma, "group,model", or by MCP tool; "group" restricts it
 * to the usage rows, or tool calls, of one group), series
 * (per day or hour, for the organization or a group, user, key or model),
 * quotas, keys, denials (by reason) and models (the comparison). JSON is
 *   {<the parameters: "by", "subject", "id", "bucket", "from", "to" as the
 *    report takes them; "group" when given>, "rows": [{column: value, …}, …],
 *    "total": {…} (chargeback and series: the sums of the numeric columns)}
 * CSV is a header line and one line per row (RFC 4180 quoting). Every
 * "<x>_micros" column (integer micro-dollars) is followed by "<x>_usd", the
 * same amount as a decimal string with six places.
 */
#ifndef TG_REPORT_DOC_H
#define TG_REPORT_DOC_H

#include "common.h"

struct tg_db_rows;

/* The longest range, in days, of a report by day; hours: TG_REPORT_MAX_HOUR_DAYS. */
#define TG_REPORT_MAX_DAYS 366
#define TG_REPORT_MAX_HOUR_DAYS 31

/* One report's parameters (borrowed strings); NULL: not given. */
struct tg_report_query {
    const char *report;  /* chargeback, series, quotas, keys, denials, models */
    const char *by;      /* chargeback: group (default), user, key, model, provider, tool,
                          * or two of the first five joined by a comma (group,model) */
    const char *group;   /* chargeback: only this group's usage rows (or tool calls) */
    const char *subject; /* series: org (default), group, user, key, model */
    const char *id;      /* series: the subject's id (a key's prefix); none for org */
    const char *bucket;  /* series: day (default) or hour */
    const char *from;    /* YYYY-MM-DD, both included; none: this month so far */
    const char *to;      /* needs from */
    const char *format;  /* json (default), csv; table for tollgatectl */
};

/* Whether name is a report. */
bool tg_report_doc_known(const char *name);

/* Whether the report takes the query parameter param ("format" for every one). */
bool tg_report_doc_takes(const char *report, const char *param);

/*
 * Checks q and fills its defaults (by, subject, bucket, format). On a bad
 * value returns TG_ERROR with *param naming the parameter and a message in
 * err ("\"from\": must be a date YYYY-MM-DD"). table_ok: whether format
 * table is allowed (tollgatectl). Dates are checked as dates (2026-02-30 is
 * refused); the range against its cap once resolved (tg_report_doc_check_range).
 */
int tg_report_doc_check(struct tg_report_query *q, bool table_ok, const char **param, char *err,
                        size_t err_size);

/* The statement resolving from / to (both $1, $2 may be NULL): one row of two dates. */
extern const char tg_report_doc_period_sql[];

/* Whether the report takes a period (from, to). */
bool tg_report_doc_has_period(const char *report);

/* Checks the resolved from .. to (order, cap) as tg_report_doc_check does. */
int tg_report_doc_check_range(const struct tg_report_query *q, const char **param, char *err,
                              size_t err_size);

/* The report's statement and its parameters (from q, borrowed), at most 5. */
const char *tg_report_doc_statement(const struct tg_report_query *q, const char *params[5],
                                    int *n_params);

/*
 * The rows of the statement (column names included) rendered in q->format:
 * a NUL-terminated malloc'd text (the caller frees), NULL when out of memory.
 */
char *tg_report_doc_render(const struct tg_report_query *q, const struct tg_db_rows *rows);

#endif
