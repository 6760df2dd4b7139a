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

int tg_ctl_reports_report(struct tg_ctl *ctl, int argc, char **argv)
{
    struct tg_report_options opt;
    if (report_options(argc, argv, "table", &opt) != 0)
        return 1;
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
