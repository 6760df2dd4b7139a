/*
 * admin_reports.h — GET /admin/reports/{chargeback,series,quotas,keys,denials,models}:
 * the reports of tollgatectl (report_doc.h) over the admin API, after
 * admin.c checked the admin credential. Read only: nothing is written, not
 * even an audit row (as the other GETs of /admin/).
 */
#ifndef TG_ADMIN_REPORTS_H
#define TG_ADMIN_REPORTS_H

struct tg_request;

/* The path prefix this module answers. */
#define TG_ADMIN_REPORTS_PREFIX "/admin/reports/"

/*
 * Answers one report. The query string holds the report's parameters and
 * "format" (json or csv), each at most once; anything else, a bad value, a
 * reversed range or one over the cap answers 400 naming the parameter. 404
 * for an unknown report, 405 for a method other than GET, 503 when the
 * database is unavailable. The body equals `tollgatectl report --report NAME
 * --format json|csv` for the same parameters. TG_OK once answered, else
 * TG_ERROR with r->error set.
 */
int tg_admin_reports_handle(struct tg_request *r);

#endif
