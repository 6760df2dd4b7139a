/*
 * report.c — formatting tollgate.chargeback and streaming usage rows.
 */
#include "report.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "usage.h"

#define COLS 7 /* subject, requests, input, output, cache read, cache write, cost */

/* The period's bounds: the options' dates, or this month so far, in the report zone. */
static const char period_sql[] =
    "WITH z AS (SELECT (now() AT TIME ZONE tollgate.quota_timezone())::date AS today) "
    "SELECT coalesce($1::date, date_trunc('month', today)::date)::text, "
    "       coalesce($2::date, today)::text FROM z";

static const char chargeback_sql[] =
    "SELECT coalesce(c.subject, '-'), c.requests, c.input_tokens, c.output_tokens,"
    "       c.cache_read_tokens, c.cache_write_tokens, c.cost_micros"
    "  FROM tollgate.chargeback($1, $2::date, $3::date) c";

static const char *subject_field(const char *by)
{
    if (strcmp(by, "group") == 0)
        return "group_id";
    if (strcmp(by, "user") == 0)
        return "user_id";
    if (strcmp(by, "key") == 0)
        return "api_key_id";
    return strcmp(by, "provider") == 0 ? "provider" : "model";
}

struct report {
    const struct tg_report_options *opt;
    char from[16], to[16];
    FILE *out;
    bool header_seen;
    int64_t total[COLS]; /* [1..6] */
    json_t *rows;        /* json format */
    char **lines;        /* table format: cells kept to size the columns */
    size_t n_lines;
    size_t cap_lines;
};

static const char *const numeric_fields[COLS] = {NULL,
                                                 "requests",
                                                 "input_tokens",
                                                 "output_tokens",
                                                 "cache_read_tokens",
                                                 "cache_write_tokens",
                                                 "cost_micros"};

static int64_t number(const char *cell)
{
    return cell != NULL ? strtoll(cell, NULL, 10) : 0;
}

static json_t *json_row(const char *subject_key, const char *subject, const int64_t *v)
{
    json_t *row = json_object();
    char usd[32];
    if (subject_key != NULL)
        json_object_set_new(row, subject_key, subject != NULL ? json_string(subject) : json_null());
    for (int c = 1; c < COLS; c++)
        json_object_set_new(row, numeric_fields[c], json_integer(v[c]));
    tg_usage_format_usd(v[COLS - 1], usd, sizeof(usd));
    json_object_set_new(row, "cost_usd", json_string(usd));
    return row;
}

void tg_report_csv_field(FILE *out, const char *s, bool last)
{
    s = s != NULL ? s : "";
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
    } else {
        fputc('"', out);
        for (; *s != '\0'; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    }
    fputc(last ? '\n' : ',', out);
}

static int keep_line(struct report *rp, const char *const *cells)
{
    if (rp->n_lines + COLS > rp->cap_lines) {
        size_t cap = rp->cap_lines ? rp->cap_lines * 2 : 64 * COLS;
        char **grown = realloc(rp->lines, cap * sizeof(char *));
        if (grown == NULL)
            return TG_ERROR;
        rp->lines = grown;
        rp->cap_lines = cap;
    }
    for (int c = 0; c < COLS; c++)
        if ((rp->lines[rp->n_lines++] = strdup(cells[c] != NULL ? cells[c] : "")) == NULL)
            return TG_ERROR;
    return TG_OK;
}

static int on_report_row(void *arg, int n_cols, const char *const *cells)
{
    struct report *rp = arg;
    if (n_cols != COLS)
        return TG_ERROR;
    if (!rp->header_seen) {
        rp->header_seen = true;
        return TG_OK;
    }
    int64_t v[COLS] = {0};
    for (int c = 1; c < COLS; c++)
        rp->total[c] += v[c] = number(cells[c]);
    const char *format = rp->opt->format;
    if (strcmp(format, "json") == 0)
        return json_array_append_new(rp->rows, json_row(subject_field(rp->opt->by), cells[0], v)) ==
                       0
                   ? TG_OK
                   : TG_ERROR;
    if (strcmp(format, "csv") == 0) {
        char usd[32];
        tg_usage_format_usd(v[COLS - 1], usd, sizeof(usd));
        for (int c = 0; c < COLS; c++)
            tg_report_csv_field(rp->out, cells[c], false);
        tg_report_csv_field(rp->out, usd, true);
        return TG_OK;
    }
    return keep_line(rp, cells);
}

static void print_table(struct report *rp)
{
    static const char *const heads[COLS] = {NULL,         "REQUESTS",    "INPUT",   "OUTPUT",
                                            "CACHE_READ", "CACHE_WRITE", "COST_USD"};
    char totals[COLS][32], usd[32];
    size_t width[COLS];
    snprintf(totals[0], sizeof(totals[0]), "TOTAL");
    for (int c = 1; c < COLS - 1; c++)
        snprintf(totals[c], sizeof(totals[c]), "%" PRId64, rp->total[c]);
    tg_usage_format_usd(rp->total[COLS - 1], totals[COLS - 1], sizeof(totals[COLS - 1]));
    for (int c = 0; c < COLS; c++) {
        const char *head = c == 0 ? rp->opt->by : heads[c];
        width[c] = strlen(head) > strlen(totals[c]) ? strlen(head) : strlen(totals[c]);
    }
    /* the cost column holds dollars, not the micro-dollars of the query */
    for (size_t i = 0; i < rp->n_lines; i += COLS) {
        tg_usage_format_usd(number(rp->lines[i + COLS - 1]), usd, sizeof(usd));
        free(rp->lines[i + COLS - 1]);
        rp->lines[i + COLS - 1] = strdup(usd);
        for (int c = 0; c < COLS; c++) {
            size_t len = rp->lines[i + c] != NULL ? strlen(rp->lines[i + c]) : 0;
            if (len > width[c])
                width[c] = len;
        }
    }
    fprintf(rp->out, "%-*s", (int)width[0], rp->opt->by);
    for (int c = 1; c < COLS; c++)
        fprintf(rp->out, "  %*s", (int)width[c], heads[c]);
    fputc('\n', rp->out);
    for (size_t i = 0; i < rp->n_lines; i += COLS) {
        fprintf(rp->out, "%-*s", (int)width[0], rp->lines[i] ? rp->lines[i] : "");
        for (int c = 1; c < COLS; c++)
            fprintf(rp->out, "  %*s", (int)width[c], rp->lines[i + c] ? rp->lines[i + c] : "");
        fputc('\n', rp->out);
    }
    fprintf(rp->out, "%-*s", (int)width[0], totals[0]);
    for (int c = 1; c < COLS; c++)
        fprintf(rp->out, "  %*s", (int)width[c], totals[c]);
    fprintf(rp->out, "\n(%s .. %s)\n", rp->from, rp->to);
}

static int write_json(struct report *rp)
{
    json_t *doc = json_pack("{s:s, s:s, s:s, s:O, s:o}", "by", rp->opt->by, "from", rp->from, "to",
                            rp->to, "rows", rp->rows, "total", json_row(NULL, NULL, rp->total));
    if (doc == NULL || json_dumpf(doc, rp->out, JSON_INDENT(2)) != 0) {
        json_decref(doc);
        return TG_ERROR;
    }
    fputc('\n', rp->out);
    json_decref(doc);
    return TG_OK;
}

static int check_options(const struct tg_report_options *opt, bool export, char *err,
                         size_t err_size)
{
    const char *format = opt->format;
    bool table_ok = !export;
    if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0 &&
        !(table_ok && strcmp(format, "table") == 0)) {
        snprintf(err, err_size, "--format must be %s",
                 export ? "csv or json" : "table, csv or json");
        return TG_ERROR;
    }
    if (!export && strcmp(opt->by, "group") != 0 && strcmp(opt->by, "user") != 0 &&
        strcmp(opt->by, "key") != 0 && strcmp(opt->by, "model") != 0 &&
        strcmp(opt->by, "provider") != 0 && strcmp(opt->by, "tool") != 0) {
        snprintf(err, err_size, "--by must be group, user, key, model, provider or tool");
        return TG_ERROR;
    }
    return TG_OK;
}

/* Resolves the period (defaults, and PostgreSQL's check of the dates). */
static int resolve_period(struct tg_db_conn *db, const struct tg_report_options *opt, char *from,
                          char *to, char *err, size_t err_size)
{
    struct tg_arena *arena = tg_arena_new(4096);
    struct tg_db_rows rows;
    const char *params[] = {opt->from, opt->to};
    int rc = arena != NULL ? tg_db_query(db, arena, period_sql, 2, params, &rows, err, err_size)
                           : TG_ERROR;
    if (rc == TG_OK && rows.n_rows == 1) {
        snprintf(from, 16, "%s", rows.cells[0]);
        snprintf(to, 16, "%s", rows.cells[1]);
    }
    tg_arena_free(arena);
    return rc;
}

/* ---- report --by tool: MCP tool calls (tollgate.chargeback_tools) ---- */

#define TOOL_COLS 8 /* server, tool, calls, errors, bytes in, bytes out, duration, mean */

static const char chargeback_tools_sql[] =
    "SELECT c.server, c.tool, c.calls, c.errors, c.bytes_in, c.bytes_out, c.duration_us,"
    "       c.mean_us FROM tollgate.chargeback_tools($1::date, $2::date) c";

static const char *const tool_fields[TOOL_COLS] = {
    "server", "tool", "calls", "errors", "bytes_in", "bytes_out", "duration_us", "mean_us"};

/* The rows as JSON objects (few: one per tool), the column names skipped. */
static int on_tool_row(void *arg, int n_cols, const char *const *cells)
{
    json_t *rows = arg;
    if (n_cols != TOOL_COLS)
        return TG_ERROR;
    if (json_object_get(rows, "header") == NULL) /* the column names come first */
        return json_object_set_new(rows, "header", json_true()) == 0 ? TG_OK : TG_ERROR;
    json_t *row = json_object();
    for (int c = 0; c < TOOL_COLS; c++)
        json_object_set_new(row, tool_fields[c],
                            c < 2 ? json_string(cells[c] != NULL ? cells[c] : "")
                                  : json_integer(number(cells[c])));
    return json_array_append_new(json_object_get(rows, "rows"), row) == 0 ? TG_OK : TG_ERROR;
}

/* The total line: sums, and the mean over every call. */
static json_t *tool_total(json_t *rows)
{
    int64_t sum[TOOL_COLS] = {0};
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        for (int c = 2; c < TOOL_COLS - 1; c++)
            sum[c] += json_integer_value(json_object_get(row, tool_fields[c]));
    }
    sum[TOOL_COLS - 1] = sum[2] > 0 ? sum[TOOL_COLS - 2] / sum[2] : 0;
    json_t *total = json_object();
    for (int c = 2; c < TOOL_COLS; c++)
        json_object_set_new(total, tool_fields[c], json_integer(sum[c]));
    return total;
}

static void tool_cells(json_t *row, char cells[TOOL_COLS][64])
{
    for (int c = 0; c < TOOL_COLS; c++) {
        json_t *v = json_object_get(row, tool_fields[c]);
        if (json_is_string(v))
            snprintf(cells[c], 64, "%s", json_string_value(v));
        else if (json_is_integer(v))
            snprintf(cells[c], 64, "%" PRId64, (int64_t)json_integer_value(v));
        else
            snprintf(cells[c], 64, "%s", c == 0 ? "TOTAL" : "");
    }
}

static void print_tools_table(FILE *out, json_t *rows, json_t *total, const char *from,
                              const char *to)
{
    static const char *const heads[TOOL_COLS] = {"server",   "tool",      "CALLS",       "ERRORS",
                                                 "BYTES_IN", "BYTES_OUT", "DURATION_US", "MEAN_US"};
    char cells[TOOL_COLS][64];
    size_t width[TOOL_COLS], i;
    json_t *row;
    for (int c = 0; c < TOOL_COLS; c++)
        width[c] = strlen(heads[c]);
    for (i = 0; i <= json_array_size(rows); i++) {
        tool_cells(i < json_array_size(rows) ? json_array_get(rows, i) : total, cells);
        for (int c = 0; c < TOOL_COLS; c++)
            if (strlen(cells[c]) > width[c])
                width[c] = strlen(cells[c]);
    }
    for (int c = 0; c < TOOL_COLS; c++)
        fprintf(out, c < 2 ? "%s%-*s" : "%s%*s", c > 0 ? "  " : "", (int)width[c], heads[c]);
    fputc('\n', out);
    for (i = 0; i <= json_array_size(rows); i++) {
        row = i < json_array_size(rows) ? json_array_get(rows, i) : total;
        tool_cells(row, cells);
        for (int c = 0; c < TOOL_COLS; c++)
            fprintf(out, c < 2 ? "%s%-*s" : "%s%*s", c > 0 ? "  " : "", (int)width[c], cells[c]);
        fputc('\n', out);
    }
    fprintf(out, "(%s .. %s)\n", from, to);
}

/* report --by tool: one line per MCP server and tool, most called first. */
static int write_tools(struct tg_db_conn *db, const struct tg_report_options *opt, const char *from,
                       const char *to, FILE *out, char *err, size_t err_size)
{
    json_t *acc = json_pack("{s:[]}", "rows");
    if (acc == NULL)
        return TG_ERROR;
    const char *params[] = {from, to};
    int rc = tg_db_query_each(db, chargeback_tools_sql, 2, params, on_tool_row, acc, err, err_size);
    json_t *rows = json_object_get(acc, "rows");
    json_t *total = rc == TG_OK ? tool_total(rows) : NULL;
    if (rc == TG_OK && strcmp(opt->format, "json") == 0) {
        json_t *doc = json_pack("{s:s, s:s, s:s, s:O, s:O}", "by", "tool", "from", from, "to", to,
                                "rows", rows, "total", total);
        rc = doc != NULL && json_dumpf(doc, out, JSON_INDENT(2)) == 0 ? TG_OK : TG_ERROR;
        fputc('\n', out);
        json_decref(doc);
    } else if (rc == TG_OK && strcmp(opt->format, "csv") == 0) {
        char cells[TOOL_COLS][64];
        size_t i;
        json_t *row;
        for (int c = 0; c < TOOL_COLS; c++)
            tg_report_csv_field(out, tool_fields[c], c + 1 == TOOL_COLS);
        json_array_foreach(rows, i, row) {
            tool_cells(row, cells);
            for (int c = 0; c < TOOL_COLS; c++)
                tg_report_csv_field(out, cells[c], c + 1 == TOOL_COLS);
        }
    } else if (rc == TG_OK) {
        print_tools_table(out, rows, total, from, to);
    }
    json_decref(total);
    json_decref(acc);
    if (rc != TG_OK && err[0] == '\0')
        snprintf(err, err_size, "could not write the report");
    return rc;
}

int tg_report_write(struct tg_db_conn *db, const struct tg_report_options *opt, FILE *out,
                    char *err, size_t err_size)
{
    struct report rp = {.opt = opt, .out = out};
    if (check_options(opt, false, err, err_size) != TG_OK ||
        resolve_period(db, opt, rp.from, rp.to, err, err_size) != TG_OK)
        return TG_ERROR;
    if (strcmp(opt->by, "tool") == 0)
        return write_tools(db, opt, rp.from, rp.to, out, err, err_size);
    bool json = strcmp(opt->format, "json") == 0;
    rp.rows = json ? json_array() : NULL;
    if (strcmp(opt->format, "csv") == 0)
        fprintf(out,
                "%s,requests,input_tokens,output_tokens,cache_read_tokens,"
                "cache_write_tokens,cost_micros,cost_usd\n",
                subject_field(opt->by));
    const char *params[] = {opt->by, rp.from, rp.to};
    int rc = tg_db_query_each(db, chargeback_sql, 3, params, on_report_row, &rp, err, err_size);
    if (rc == TG_OK && json)
        rc = write_json(&rp);
    else if (rc == TG_OK && strcmp(opt->format, "table") == 0)
        print_table(&rp);
    json_decref(rp.rows);
    for (size_t i = 0; i < rp.n_lines; i++)
        free(rp.lines[i]);
    free(rp.lines);
    if (rc != TG_OK && err[0] == '\0')
        snprintf(err, err_size, "could not write the report");
    return rc;
}

/* ---- export ---- */

static const char export_sql[] =
    "SELECT request_id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS ts,"
    "       api_key_id, user_id, group_id, provider, model, input_tokens, output_tokens,"
    "       cache_read_tokens, cache_write_tokens, cost_micros, http_status, latency_ms,"
    "       upstream_ms, stream, outcome, guard_rule"
    "  FROM tollgate.usage"
    " WHERE ts >= $1::date::timestamp AT TIME ZONE tollgate.quota_timezone()"
    "   AND ts < ($2::date + 1)::timestamp AT TIME ZONE tollgate.quota_timezone()"
    " ORDER BY ts, request_id";

#define EXPORT_COLS 18

/* Columns written as JSON numbers / booleans rather than strings. */
static const char *const export_numbers =
    " api_key_id input_tokens output_tokens cache_read_tokens cache_write_tokens cost_micros"
    " http_status latency_ms upstream_ms ";

struct export
{
    FILE *out;
    bool json;
    long rows;
    char names[EXPORT_COLS][32];
};

static bool is_number_column(const char *name)
{
    char word[40];
    snprintf(word, sizeof(word), " %s ", name);
    return strstr(export_numbers, word) != NULL;
}

static json_t *export_value(const char *name, const char *cell)
{
    if (cell == NULL)
        return json_null();
    if (strcmp(name, "stream") == 0)
        return json_boolean(strcmp(cell, "t") == 0);
    if (is_number_column(name))
        return json_integer(strtoll(cell, NULL, 10));
    return json_string(cell);
}

static int on_export_row(void *arg, int n_cols, const char *const *cells)
{
    struct export *ex = arg;
    if (n_cols != EXPORT_COLS)
        return TG_ERROR;
    if (ex->rows++ == 0) { /* the column names */
        for (int c = 0; c < n_cols; c++)
            snprintf(ex->names[c], sizeof(ex->names[c]), "%s", cells[c]);
        if (!ex->json)
            for (int c = 0; c < n_cols; c++)
                tg_report_csv_field(ex->out, cells[c], c + 1 == n_cols);
        return TG_OK;
    }
    if (!ex->json) {
        for (int c = 0; c < n_cols; c++)
            tg_report_csv_field(ex->out, cells[c], c + 1 == n_cols);
        return ferror(ex->out) ? TG_ERROR : TG_OK;
    }
    json_t *obj = json_object();
    for (int c = 0; c < n_cols; c++)
        json_object_set_new(obj, ex->names[c], export_value(ex->names[c], cells[c]));
    fputs(ex->rows > 2 ? ",\n" : "\n", ex->out);
    int rc = json_dumpf(obj, ex->out, JSON_COMPACT) == 0 ? TG_OK : TG_ERROR;
    json_decref(obj);
    return rc == TG_OK && !ferror(ex->out) ? TG_OK : TG_ERROR;
}

int tg_report_export_usage(struct tg_db_conn *db, const struct tg_report_options *opt, FILE *out,
                           char *err, size_t err_size)
{
    char from[16], to[16];
    if (check_options(opt, true, err, err_size) != TG_OK ||
        resolve_period(db, opt, from, to, err, err_size) != TG_OK)
        return TG_ERROR;
    struct export ex = {.out = out, .json = strcmp(opt->format, "json") == 0};
    if (ex.json)
        fputc('[', out);
    const char *params[] = {from, to};
    int rc = tg_db_query_each(db, export_sql, 2, params, on_export_row, &ex, err, err_size);
    if (ex.json)
        fputs("\n]\n", out);
    if (rc != TG_OK && err[0] == '\0')
        snprintf(err, err_size, "could not write the export");
    return rc;
}
