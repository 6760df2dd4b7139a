/*
 * reports.c — tollgatectl report, report refresh and export usage: the options
 * they take and where they write. The reports and exports themselves (the
 * statements, the table, CSV and JSON) are report.c's; the chargeback views are
 * sql/007_reports.sql's.
 */
#include <stdio.h>

#include "ctl.h"
#include "db.h"
#include "report.h"
#include "report_doc.h"

#include <stdlib.h>
#include <string.h>

int tg_ctl_reports_refresh(struct tg_ctl *ctl, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, "SELECT tollgate.report_refresh()::text", 0, NULL, &rows) != TG_OK)
        return 1;
    printf("refreshed chargeback_daily and chargeback_monthly (complete up to %s)\n",
           rows.n_rows == 1 && rows.cells[0] != NULL ? rows.cells[0] : "?");
    return 0;
}

/* --by (group by default), --from, --to, --format (format_fallback by default). */
static int report_options(int argc, char **argv, const char *format_fallback,
                          struct tg_report_options *opt)
{
    const char *by = tg_ctl_option(argc, argv, "--by");
    const char *format = tg_ctl_option(argc, argv, "--format");
    opt->by = by != NULL ? by : "group";
    opt->from = tg_ctl_option(argc, argv, "--from");
    opt->to = tg_ctl_option(argc, argv, "--to");
    opt->format = format != NULL ? format : format_fallback;
    if (opt->to != NULL && opt->from == NULL)
        return tg_ctl_die("%s", "--to needs --from");
    return 0;
}

/*
 * A report of report_doc.c (--report, or --by model --with-latency for the
 * model comparison), rendered as the admin API renders it.
 */
static int doc_report(struct tg_ctl *ctl, struct tg_report_query *q)
{
    const char *param;
    if (tg_report_doc_check(q, true, &param, ctl->err, sizeof(ctl->err)) != TG_OK)
        return tg_ctl_die("--%s%s", param,
                          strchr(ctl->err, ':') != NULL ? strchr(ctl->err, ':') + 1 : ctl->err);
    struct tg_db_rows rows;
    char from[16], to[16];
    if (tg_report_doc_has_period(q->report)) {
        const char *period[] = {q->from, q->to};
        if (tg_ctl_query(ctl, tg_report_doc_period_sql, 2, period, &rows) != TG_OK)
            return 1;
        snprintf(from, sizeof(from), "%s", rows.cells[0]);
        snprintf(to, sizeof(to), "%s", rows.cells[1]);
        q->from = from;
        q->to = to;
        if (tg_report_doc_check_range(q, &param, ctl->err, sizeof(ctl->err)) != TG_OK)
            return tg_ctl_die("%s", ctl->err);
    }
    const char *params[5];
    int n_params;
    const char *sql = tg_report_doc_statement(q, params, &n_params);
    if (tg_ctl_query(ctl, sql, n_params, params, &rows) != TG_OK)
        return 1;
    char *text = tg_report_doc_render(q, &rows);
    if (text == NULL)
        return tg_ctl_die("%s", "could not write the report");
    fputs(text, stdout);
    free(text);
    return fflush(stdout) == 0 ? 0 : tg_ctl_die("%s", "could not write the report");
}

int tg_ctl_reports_report(struct tg_ctl *ctl, int argc, char **argv)
{
    struct tg_report_options opt;
    if (report_options(argc, argv, "table", &opt) != 0)
        return 1;
    struct tg_report_query q = {
        .report = tg_ctl_option(argc, argv, "--report"),
        .by = tg_ctl_option(argc, argv, "--by"),
        .group = tg_ctl_option(argc, argv, "--group"),
        .subject = tg_ctl_option(argc, argv, "--subject"),
        .id = tg_ctl_option(argc, argv, "--id"),
        .bucket = tg_ctl_option(argc, argv, "--bucket"),
        .from = opt.from,
        .to = opt.to,
        .format = tg_ctl_option(argc, argv, "--format"),
    };
    if (tg_ctl_has_flag(argc, argv, "--with-latency")) {
        if (q.by == NULL || strcmp(q.by, "model") != 0 || q.report != NULL)
            return tg_ctl_die("%s", "--with-latency needs --by model");
        q.report = "models";
        q.by = NULL;
    }
    q.report = q.report != NULL ? q.report : "chargeback";
    /* the chargeback's table by one grouping or by tool, for every group, keeps its total
     * line (report.c); the rest is shared with the admin API */
    if (q.group != NULL && strcmp(q.report, "chargeback") != 0)
        return tg_ctl_die("%s", "--group needs the chargeback report");
    if (strcmp(q.report, "chargeback") != 0 || strcmp(opt.format, "table") != 0 ||
        q.group != NULL || strchr(opt.by, ',') != NULL)
        return doc_report(ctl, &q);
    if (tg_report_write(ctl->db, &opt, stdout, ctl->err, sizeof(ctl->err)) != TG_OK)
        return tg_ctl_die("%s", ctl->err);
    return fflush(stdout) == 0 ? 0 : tg_ctl_die("%s", "could not write the report");
}

int tg_ctl_reports_export_usage(struct tg_ctl *ctl, int argc, char **argv)
{
    struct tg_report_options opt;
    if (report_options(argc, argv, "csv", &opt) != 0)
        return 1;
    if (tg_report_export_usage(ctl->db, &opt, stdout, ctl->err, sizeof(ctl->err)) != TG_OK)
        return tg_ctl_die("%s", ctl->err);
    return fflush(stdout) == 0 ? 0 : tg_ctl_die("%s", "could not write the export");
}
