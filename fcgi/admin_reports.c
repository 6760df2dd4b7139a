/*
 * admin_reports.c — the admin API's reports: the query string read into a
 * tg_report_query, checked by report_doc.c, the period resolved and the
 * report's one statement run on the pool (read only), its rows rendered by
 * report_doc.c as tollgatectl renders them.
 */
#include "admin_reports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_body.h"
#include "db.h"
#include "report_doc.h"
#include "request.h"

#define QUERY_MAX 1024 /* the longest query string read */
#define VALUE_MAX 160  /* the longest value of one parameter */

static int bad_request(struct tg_request *r, const char *message)
{
    tg_request_fail(r, 400, "invalid_request_error", message, NULL);
    return TG_ERROR;
}

/* The query parameters into q: each known to the report, at most once. */
static int read_query(struct tg_request *r, struct tg_report_query *q)
{
    const char *query = tg_request_param(r, "QUERY_STRING");
    if (query == NULL || query[0] == '\0')
        return TG_OK;
    if (strlen(query) > QUERY_MAX)
        return bad_request(r, "the query string is too long");
    const char *names[] = {"by", "group", "subject", "id", "bucket", "from", "to", "format"};
    const char **slots[] = {&q->by,     &q->group, &q->subject, &q->id,
                            &q->bucket, &q->from,  &q->to,      &q->format};
    for (const char *p = query; p != NULL;) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq != NULL ? (size_t)(eq - p) : len;
        char *name = tg_admin_body_decode(r->arena, p, name_len);
        char *value = eq != NULL ? tg_admin_body_decode(r->arena, eq + 1, len - name_len - 1)
                                 : tg_admin_body_decode(r->arena, "", 0);
        if (name == NULL || value == NULL)
            return bad_request(r, "the query string is malformed");
        size_t i = 0;
        while (i < TG_ARRAY_LEN(names) && strcmp(names[i], name) != 0)
            i++;
        if (i == TG_ARRAY_LEN(names) || !tg_report_doc_takes(q->report, name)) {
            char message[96];
            snprintf(message, sizeof(message), "unknown parameter \"%.40s\" for report %s", name,
                     q->report);
            return bad_request(r, message);
        }
        if (*slots[i] != NULL)
            return tg_admin_body_bad_field(r, names[i], "is given more than once");
        if (strlen(value) > VALUE_MAX)
            return tg_admin_body_bad_field(r, names[i], "is too long");
        *slots[i] = value;
        p = end != NULL ? end + 1 : NULL;
    }
    return TG_OK;
}

/* A statement the report runs: TG_OK with rows, or TG_ERROR with r->error set. */
static int call(struct tg_request *r, const char *sql, int n, const char *const *params,
                struct tg_db_rows *rows)
{
    char sqlstate[6], message[200];
    int rc = tg_db_call(r, sql, n, params, true, rows, sqlstate, message, sizeof(message));
    if (rc == TG_DECLINED && strcmp(sqlstate, "22023") == 0) /* the function's own check */
        return bad_request(r, message);
    if (rc == TG_DECLINED) {
        tg_request_fail(r, 500, "api_error", "internal error",
                        "report statement failed: SQLSTATE %s: %s", sqlstate, message);
        return TG_ERROR;
    }
    if (rc != TG_OK) {
        tg_request_fail(r, 503, "api_error", "the gateway's database is unavailable",
                        "report statement failed");
        r->outcome = "database_unavailable";
        return TG_ERROR;
    }
    return TG_OK;
}

int tg_admin_reports_handle(struct tg_request *r)
{
    struct tg_report_query q = {0};
    const char *name = r->path + strlen(TG_ADMIN_REPORTS_PREFIX);
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '/')
        len--;
    q.report = tg_admin_body_decode(r->arena, name, len);
    if (q.report == NULL || !tg_report_doc_known(q.report)) {
        tg_request_fail(r, 404, "not_found_error", "not found", "no admin report at %s", r->path);
        return TG_ERROR;
    }
    if (strcmp(r->method, "GET") != 0) {
        tg_request_add_header(r, "Allow", "GET");
        tg_request_fail(r, 405, "invalid_request_error", "method not allowed", "%s %s", r->method,
                        r->path);
        return TG_ERROR;
    }
    const char *param;
    char err[200];
    if (read_query(r, &q) != TG_OK)
        return TG_ERROR;
    if (tg_report_doc_check(&q, false, &param, err, sizeof(err)) != TG_OK)
        return bad_request(r, err);
    struct tg_db_rows rows;
    if (tg_report_doc_has_period(q.report)) {
        const char *period[] = {q.from, q.to};
        if (call(r, tg_report_doc_period_sql, 2, period, &rows) != TG_OK)
            return TG_ERROR;
        if (rows.n_rows != 1 || rows.n_cols != 2) {
            tg_request_fail(r, 500, "api_error", "internal error", "no report period");
            return TG_ERROR;
        }
        q.from = rows.cells[0];
        q.to = rows.cells[1];
        if (tg_report_doc_check_range(&q, &param, err, sizeof(err)) != TG_OK)
            return bad_request(r, err);
    }
    const char *params[5];
    int n_params;
    const char *sql = tg_report_doc_statement(&q, params, &n_params);
    if (call(r, sql, n_params, params, &rows) != TG_OK)
        return TG_ERROR;
    char *text = tg_report_doc_render(&q, &rows);
    if (text == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "could not render the report");
        return TG_ERROR;
    }
    bool csv = strcmp(q.format, "csv") == 0;
    tg_request_respond(r, 200, csv ? "text/csv; charset=utf-8" : "application/json", text,
                       strlen(text));
    free(text);
    return TG_OK;
}
