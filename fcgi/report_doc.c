/*
 * report_doc.c — the reports' parameters, statements and renderings, shared
 * by tollgatectl (report.c) and the admin API (admin_reports.c).
 */
#include "report_doc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "report.h"
#include "usage.h"

#define ID_MAX 128

/* One report: its statement, parameters and column types. */
struct def {
    const char *name;
    const char *sql;
    const char *params; /* " by from to " … the query parameters it takes, format aside */
    const char *ints;   /* " requests cost_micros " … columns written as JSON integers */
    const char *reals;  /* columns written as JSON reals (rates) */
    bool total;         /* a "total" object of the numeric columns' sums */
    const char *args;   /* the parameters the statement takes, in order; NULL: params */
    bool variant;       /* a form of the report before it (pick()), not a report of its own */
};

#define MONEY_TOKENS                                                                               \
    " requests input_tokens output_tokens cache_read_tokens cache_write_tokens cost_micros "

#define CHARGEBACK_SUMS                                                                            \
    " c.requests, c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens,"     \
    " c.cost_micros FROM tollgate.report_chargeback($1, $2, $3::date, $4::date) c"

static const struct def defs[] = {
    {"chargeback", "SELECT coalesce(c.subject, '-') AS subject," CHARGEBACK_SUMS,
     " by group from to ", MONEY_TOKENS, "", true, NULL, false},
    /* by=A,B: a row per pair of values */
    {"chargeback",
     "SELECT coalesce(c.subject, '-') AS subject, coalesce(c.subject2, '-') AS "
     "subject2," CHARGEBACK_SUMS,
     " by group from to ", MONEY_TOKENS, "", true, NULL, true},
    /* by=tool: MCP tool calls (`report --by tool`), the total's mean over every call */
    {"chargeback",
     "SELECT c.server, c.tool, c.calls, c.errors, c.bytes_in, c.bytes_out, c.duration_us,"
     " c.mean_us FROM tollgate.report_chargeback_tools($1, $2::date, $3::date) c",
     " by group from to ", " calls errors bytes_in bytes_out duration_us mean_us ", "", true,
     " group from to ", true},
    {"series", "SELECT * FROM tollgate.report_series($1, $2, $3, $4::date, $5::date)",
     " subject id bucket from to ", MONEY_TOKENS, "", true, NULL, false},
    {"quotas", "SELECT * FROM tollgate.report_quotas()", " ",
     " id limit_value used reserved remaining ", "", false, NULL, false},
    {"keys", "SELECT * FROM tollgate.report_keys()", " ", " ", "", false, NULL, false},
    {"denials", "SELECT * FROM tollgate.report_denials($1::date, $2::date)", " from to ",
     " http_status requests ", "", false, NULL, false},
    {"models", "SELECT * FROM tollgate.report_models($1::date, $2::date)", " from to ",
     MONEY_TOKENS "cost_per_request_micros cost_per_1k_output_micros latency_p50_ms"
                  " latency_p95_ms latency_p99_ms ttft_p50_ms ttft_p95_ms errors refusals ",
     " error_rate refusal_rate ", false, NULL, false},
};

const char tg_report_doc_period_sql[] =
    "WITH z AS (SELECT (now() AT TIME ZONE tollgate.quota_timezone())::date AS today) "
    "SELECT coalesce($1::date, date_trunc('month', today)::date)::text, "
    "       coalesce($2::date, today)::text FROM z";

static bool in_words(const char *words, const char *name)
{
    char word[80];
    if (strlen(name) + 3 > sizeof(word))
        return false;
    snprintf(word, sizeof(word), " %s ", name);
    return strstr(words, word) != NULL;
}

static const struct def *find(const char *name)
{
    for (size_t i = 0; name != NULL && i < TG_ARRAY_LEN(defs); i++)
        if (!defs[i].variant && strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

/* The form of q's report its parameters ask for: the chargeback by two groupings or by tool. */
static const struct def *pick(const struct tg_report_query *q)
{
    const struct def *d = find(q->report);
    if (d == NULL || strcmp(d->name, "chargeback") != 0 || q->by == NULL)
        return d;
    if (strchr(q->by, ',') != NULL)
        return d + 1;
    return strcmp(q->by, "tool") == 0 ? d + 2 : d;
}

bool tg_report_doc_known(const char *name)
{
    return find(name) != NULL;
}

bool tg_report_doc_takes(const char *report, const char *param)
{
    const struct def *d = find(report);
    return d != NULL && (strcmp(param, "format") == 0 || in_words(d->params, param));
}

bool tg_report_doc_has_period(const char *report)
{
    return tg_report_doc_takes(report, "from");
}

/* ---- checks ---- */

static int bad(const char **param, const char *name, char *err, size_t err_size,
               const char *problem)
{
    *param = name;
    snprintf(err, err_size, "\"%s\": %s", name, problem);
    return TG_ERROR;
}

static bool one_of(const char *value, const char *const *choices)
{
    for (size_t i = 0; choices[i] != NULL; i++)
        if (strcmp(value, choices[i]) == 0)
            return true;
    return false;
}

/* Days since 1970-01-01 of a valid YYYY-MM-DD, or false. */
static bool parse_date(const char *s, long *days)
{
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    long y = strtol(s, NULL, 10), m = strtol(s + 5, NULL, 10), d = strtol(s + 8, NULL, 10);
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > month_days[m - 1] + (m == 2 && leap))
        return false;
    /* days from civil (Howard Hinnant's algorithm) */
    y -= m <= 2;
    long era = y / 400, yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    *days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return true;
}

static bool is_id(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._@:-", c) != NULL))
            return false;
    }
    return true;
}

/* One of bys, "tool", or two different ones of bys joined by a comma. */
static bool valid_by(const char *by, const char *const *bys)
{
    const char *comma = strchr(by, ',');
    if (comma == NULL)
        return one_of(by, bys) || strcmp(by, "tool") == 0;
    char first[16];
    size_t len = (size_t)(comma - by);
    if (len >= sizeof(first))
        return false;
    memcpy(first, by, len);
    first[len] = '\0';
    return one_of(first, bys) && one_of(comma + 1, bys) && strcmp(first, comma + 1) != 0;
}

int tg_report_doc_check(struct tg_report_query *q, bool table_ok, const char **param, char *err,
                        size_t err_size)
{
    static const char *const bys[] = {"group", "user", "key", "model", "provider", NULL};
    static const char *const subjects[] = {"org", "group", "user", "key", "model", NULL};
    static const char *const buckets[] = {"day", "hour", NULL};
    long days;
    if (find(q->report) == NULL)
        return bad(param, "report", err, err_size,
                   "must be chargeback, series, quotas, keys, denials or models");
    q->format = q->format != NULL ? q->format : table_ok ? "table" : "json";
    if (strcmp(q->format, "json") != 0 && strcmp(q->format, "csv") != 0 &&
        !(table_ok && strcmp(q->format, "table") == 0))
        return bad(param, "format", err, err_size,
                   table_ok ? "must be table, csv or json" : "must be json or csv");
    if (strcmp(q->report, "chargeback") == 0) {
        q->by = q->by != NULL ? q->by : "group";
        if (!valid_by(q->by, bys))
            return bad(param, "by", err, err_size,
                       "must be group, user, key, model, provider or tool, or two of the first"
                       " five joined by a comma (group,model)");
        if (q->group != NULL && !is_id(q->group))
            return bad(param, "group", err, err_size, "must be 1 to 128 letters, digits or ._@:-");
    }
    if (strcmp(q->report, "series") == 0) {
        q->subject = q->subject != NULL ? q->subject : "org";
        q->bucket = q->bucket != NULL ? q->bucket : "day";
        if (!one_of(q->subject, subjects))
            return bad(param, "subject", err, err_size, "must be org, group, user, key or model");
        if (!one_of(q->bucket, buckets))
            return bad(param, "bucket", err, err_size, "must be day or hour");
        bool org = strcmp(q->subject, "org") == 0;
        if (org && q->id != NULL)
            return bad(param, "id", err, err_size, "is not taken by subject org");
        if (!org && (q->id == NULL || !is_id(q->id)))
            return bad(param, "id", err, err_size,
                       q->id == NULL ? "is required" : "must be 1 to 128 letters, digits or ._@:-");
    }
    if (q->from != NULL && !parse_date(q->from, &days))
        return bad(param, "from", err, err_size, "must be a date YYYY-MM-DD");
    if (q->to != NULL && !parse_date(q->to, &days))
        return bad(param, "to", err, err_size, "must be a date YYYY-MM-DD");
    if (q->to != NULL && q->from == NULL)
        return bad(param, "to", err, err_size, "needs \"from\"");
    return q->from != NULL && q->to != NULL ? tg_report_doc_check_range(q, param, err, err_size)
                                            : TG_OK;
}

int tg_report_doc_check_range(const struct tg_report_query *q, const char **param, char *err,
                              size_t err_size)
{
    long from, to;
    if (!parse_date(q->from, &from) || !parse_date(q->to, &to))
        return bad(param, "from", err, err_size, "must be a date YYYY-MM-DD");
    if (from > to)
        return bad(param, "from", err, err_size, "must not be after \"to\"");
    bool hours = q->bucket != NULL && strcmp(q->bucket, "hour") == 0;
    long cap = hours ? TG_REPORT_MAX_HOUR_DAYS : TG_REPORT_MAX_DAYS;
    if (to - from + 1 > cap) {
        char problem[96];
        snprintf(problem, sizeof(problem), "the range \"from\" .. \"to\" is more than %ld days%s",
                 cap, hours ? " (by hour)" : "");
        return bad(param, "to", err, err_size, problem);
    }
    return TG_OK;
}

const char *tg_report_doc_statement(const struct tg_report_query *q, const char *params[5],
                                    int *n_params)
{
    const struct def *d = pick(q);
    *n_params = 0;
    if (d == NULL)
        return NULL;
    const char *given[] = {q->by, q->group, q->subject, q->id, q->bucket, q->from, q->to};
    const char *names[] = {"by", "group", "subject", "id", "bucket", "from", "to"};
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++)
        if (in_words(d->args != NULL ? d->args : d->params, names[i]))
            params[(*n_params)++] = given[i];
    return d->sql;
}

/* ---- rendering ---- */

static bool is_micros(const char *name, char *usd_name, size_t size)
{
    size_t len = strlen(name);
    if (len <= 7 || strcmp(name + len - 7, "_micros") != 0)
        return false;
    snprintf(usd_name, size, "%.*s_usd", (int)(len - 7), name);
    return true;
}

static json_t *cell_json(const struct def *d, const char *name, const char *cell)
{
    if (cell == NULL)
        return json_null();
    if (in_words(d->ints, name))
        return json_integer(strtoll(cell, NULL, 10));
    if (in_words(d->reals, name))
        return json_real(strtod(cell, NULL));
    return json_string(cell);
}

static const char *grouping_name(const char *by, size_t len)
{
    static const char *const names[][2] = {{"group", "group_id"},
                                           {"user", "user_id"},
                                           {"key", "api_key_id"},
                                           {"model", "model"},
                                           {"provider", "provider"}};
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++)
        if (strlen(names[i][0]) == len && strncmp(by, names[i][0], len) == 0)
            return names[i][1];
    return "subject";
}

/*
 * The name column c has in the rendering: chargeback's subject (and subject2,
 * by two groupings) is named after by ("group,model": group_id, model).
 */
static const char *column_name(const struct tg_report_query *q, const struct tg_db_rows *rows,
                               int c)
{
    const char *name = rows->col_names[c];
    if (strcmp(q->report, "chargeback") != 0 || q->by == NULL)
        return name;
    const char *comma = strchr(q->by, ',');
    if (strcmp(name, "subject") == 0)
        return grouping_name(q->by, comma != NULL ? (size_t)(comma - q->by) : strlen(q->by));
    if (strcmp(name, "subject2") == 0 && comma != NULL)
        return grouping_name(comma + 1, strlen(comma + 1));
    return name;
}

/* Adds name (and its "_usd" twin for micro-dollars) with value to obj. */
static int set_value(json_t *obj, const char *name, json_t *value)
{
    char usd_name[80], usd[32];
    if (value == NULL || json_object_set_new(obj, name, value) != 0)
        return TG_ERROR;
    if (!is_micros(name, usd_name, sizeof(usd_name)))
        return TG_OK;
    json_t *twin = json_null();
    if (json_is_integer(value)) {
        tg_usage_format_usd(json_integer_value(value), usd, sizeof(usd));
        twin = json_string(usd);
    }
    return twin != NULL && json_object_set_new(obj, usd_name, twin) == 0 ? TG_OK : TG_ERROR;
}

static char *render_json(const struct def *d, const struct tg_report_query *q,
                         const struct tg_db_rows *rows)
{
    json_t *doc = json_object(), *list = json_array(), *total = d->total ? json_object() : NULL;
    int64_t sums[64] = {0};
    int failed = doc == NULL || list == NULL || (d->total && total == NULL) || rows->n_cols > 64;
    const char *given[] = {q->by, q->group, q->subject, q->id, q->bucket, q->from, q->to};
    const char *names[] = {"by", "group", "subject", "id", "bucket", "from", "to"};
    for (size_t i = 0; !failed && i < TG_ARRAY_LEN(names); i++)
        /* group (a filter) is written only when given: the chargeback's document is as before */
        if (in_words(d->params, names[i]) && (given[i] != NULL || strcmp(names[i], "group") != 0))
            failed |= json_object_set_new(doc, names[i],
                                          given[i] != NULL ? json_string(given[i]) : json_null());
    for (int r = 0; !failed && r < rows->n_rows; r++) {
        json_t *obj = json_object();
        failed |= obj == NULL || json_array_append_new(list, obj) != 0;
        for (int c = 0; !failed && c < rows->n_cols; c++) {
            const char *name = column_name(q, rows, c);
            const char *cell = rows->cells[r * rows->n_cols + c];
            failed |= set_value(obj, name, cell_json(d, name, cell)) != TG_OK;
            if (cell != NULL && in_words(d->ints, name))
                sums[c] += strtoll(cell, NULL, 10);
        }
    }
    failed = failed || json_object_set(doc, "rows", list) != 0;
    for (int c = 0; !failed && total != NULL && c < rows->n_cols; c++) {
        const char *name = column_name(q, rows, c);
        if (in_words(d->ints, name))
            failed |= set_value(total, name, json_integer(sums[c])) != TG_OK;
    }
    /* by tool: the total's mean_us is the mean over every call, not a sum of means */
    json_t *calls = total != NULL ? json_object_get(total, "calls") : NULL;
    if (!failed && calls != NULL && json_object_get(total, "mean_us") != NULL) {
        json_int_t n = json_integer_value(calls);
        json_int_t duration = json_integer_value(json_object_get(total, "duration_us"));
        failed |= json_object_set_new(total, "mean_us", json_integer(n > 0 ? duration / n : 0));
    }
    if (!failed && total != NULL)
        failed |= json_object_set(doc, "total", total) != 0;
    char *text = failed ? NULL : json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    json_decref(list);
    json_decref(total);
    char *line = text != NULL ? malloc(strlen(text) + 2) : NULL;
    if (line != NULL)
        snprintf(line, strlen(text) + 2, "%s\n", text);
    free(text);
    return line;
}

static void render_csv(const struct tg_report_query *q, const struct tg_db_rows *rows, FILE *out)
{
    char usd_name[80], usd[32];
    for (int c = 0; c < rows->n_cols; c++) {
        const char *name = column_name(q, rows, c);
        bool micros = is_micros(name, usd_name, sizeof(usd_name));
        tg_report_csv_field(out, name, c + 1 == rows->n_cols && !micros);
        if (micros)
            tg_report_csv_field(out, usd_name, c + 1 == rows->n_cols);
    }
    for (int r = 0; r < rows->n_rows; r++) {
        for (int c = 0; c < rows->n_cols; c++) {
            const char *cell = rows->cells[r * rows->n_cols + c];
            bool micros = is_micros(column_name(q, rows, c), usd_name, sizeof(usd_name));
            tg_report_csv_field(out, cell, c + 1 == rows->n_cols && !micros);
            if (micros) {
                if (cell != NULL)
                    tg_usage_format_usd(strtoll(cell, NULL, 10), usd, sizeof(usd));
                tg_report_csv_field(out, cell != NULL ? usd : NULL, c + 1 == rows->n_cols);
            }
        }
    }
}

/* Columns aligned, numbers to the right; a dash for nulls. */
static void render_table(const struct def *d, const struct tg_report_query *q,
                         const struct tg_db_rows *rows, FILE *out)
{
    size_t width[64] = {0};
    int n = rows->n_cols < 64 ? rows->n_cols : 64;
    for (int c = 0; c < n; c++) {
        width[c] = strlen(column_name(q, rows, c));
        for (int r = 0; r < rows->n_rows; r++) {
            const char *cell = rows->cells[r * rows->n_cols + c];
            size_t len = cell != NULL ? strlen(cell) : 1;
            width[c] = len > width[c] ? len : width[c];
        }
    }
    for (int c = 0; c < n; c++)
        fprintf(out, "%s%-*s", c > 0 ? "  " : "", (int)width[c], column_name(q, rows, c));
    fputc('\n', out);
    for (int r = 0; r < rows->n_rows; r++) {
        for (int c = 0; c < n; c++) {
            const char *cell = rows->cells[r * rows->n_cols + c];
            bool right =
                in_words(d->ints, rows->col_names[c]) || in_words(d->reals, rows->col_names[c]);
            fprintf(out, "%s%*s", c > 0 ? "  " : "", right ? (int)width[c] : -(int)width[c],
                    cell != NULL ? cell : "-");
        }
        fputc('\n', out);
    }
    if (q->from != NULL)
        fprintf(out, "(%s .. %s)\n", q->from, q->to != NULL ? q->to : "");
}

char *tg_report_doc_render(const struct tg_report_query *q, const struct tg_db_rows *rows)
{
    const struct def *d = pick(q);
    if (d == NULL)
        return NULL;
    if (strcmp(q->format, "json") == 0)
        return render_json(d, q, rows);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return NULL;
    if (strcmp(q->format, "csv") == 0)
        render_csv(q, rows, out);
    else
        render_table(d, q, rows, out);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
