/*
 * report.h — chargeback reports and raw usage exports for tollgatectl.
 *
 * A report is tollgate.chargeback (sql/007_reports.sql): totals per group,
 * user, key or model over calendar days, read from the materialized views
 * where they cover the range and from usage where they do not, so it is exact
 * to the micro-dollar whenever it runs. Formats: an aligned table with a total
 * line, CSV (one header line, one line per subject, no total line), or JSON:
 *   {"by": "group", "from": "2026-11-01", "to": "2026-11-30",
 *    "rows": [{"group_id": "eng", "requests": 3, "input_tokens": …, "output_tokens": …,
 *              "cache_read_tokens": …, "cache_write_tokens": …,
 *              "cost_micros": 1234, "cost_usd": "0.001234"}, …],
 *    "total": {same fields but the subject}}
 * --by tool reports MCP tool calls instead (tollgate.chargeback_tools,
 * sql/017_mcp.sql): per server and tool, calls, errors (calls that did not end
 * "ok"), bytes in and out, total and mean duration in microseconds; the table
 * ends with a TOTAL line, JSON is {"by": "tool", "from", "to", "rows": [{"server",
 * "tool", "calls", "errors", "bytes_in", "bytes_out", "duration_us", "mean_us"}],
 * "total": {the same but server and tool}}, CSV has no total line.
 * An export streams usage rows (CSV or a JSON array) without holding them in memory.
 */
#ifndef TG_REPORT_H
#define TG_REPORT_H

#include <stdio.h>

#include "common.h"

struct tg_db_conn;

/* A report's or export's options; from / to are dates (YYYY-MM-DD) or NULL for
 * the current month so far (in the report time zone), both inclusive. */
struct tg_report_options {
    const char *by; /* report: group, user, key, model or tool */
    const char *from, *to;
    const char *format; /* table, csv or json */
};

/* Writes the report to out. TG_ERROR with a message in err (bad option, database). */
int tg_report_write(struct tg_db_conn *db, const struct tg_report_options *opt, FILE *out,
                    char *err, size_t err_size);

/* Streams the usage rows of the period to out as CSV or a JSON array. */
int tg_report_export_usage(struct tg_db_conn *db, const struct tg_report_options *opt, FILE *out,
                           char *err, size_t err_size);

/* One CSV field (NULL: empty), quoted when it holds a comma, quote or line break (RFC 4180),
 * then a comma, or a newline when last. */
void tg_report_csv_field(FILE *out, const char *s, bool last);

#endif
