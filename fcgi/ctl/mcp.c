/*
 * mcp.c — tollgatectl mcp grant, revoke, grants and mcp limit set, delete, list:
 * who may call which MCP tool (tollgate.mcp_grant_set, mcp_grant_revoke, the
 * mcp_grant_list view) and the limits on tool calls (mcp_limit_set,
 * mcp_limit_delete, mcp_limit_list), all in sql/017_mcp.sql, which write the
 * audit rows. A subject is --group G, --role R or --key PREFIX; servers and tools
 * are names or globs ('*', '?'). Lists print as a table, CSV or JSON (--format).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "db.h"

// clang-format off
/* mcp grants [SUBJECT]: $1 kind, $2 subject (NULL: every one) */
#define GRANTS_FROM                                                                            \
    " FROM tollgate.mcp_grant_list g"                                                          \
    " WHERE ($1::text IS NULL OR g.subject_kind = $1) AND ($2::text IS NULL OR g.subject = $2)"
static const char grants_table_sql[] =
    "SELECT g.id, g.subject_kind, g.subject, g.server, array_to_string(g.tools, ','),"
    " g.args::text, " SQL_UTC("g.updated_at") GRANTS_FROM
    " ORDER BY g.subject_kind, g.subject, g.server, g.id";
static const char grants_json_sql[] =
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', g.id, 'subject_kind', g.subject_kind,"
    " 'subject', g.subject, 'server', g.server, 'tools', to_jsonb(g.tools), 'args', g.args,"
    " 'updated_at', " SQL_UTC("g.updated_at") ")"
    " ORDER BY g.subject_kind, g.subject, g.server, g.id), '[]')::text" GRANTS_FROM;

/* mcp limit list */
static const char limits_table_sql[] =
    "SELECT l.id, l.per, l.subject, l.kind, l.\"window\", l.limit_value, l.max_tokens,"
    " l.tokens_per_fill, l.fill_interval_ms FROM tollgate.mcp_limit_list l ORDER BY l.id";
static const char limits_json_sql[] =
    "SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.id), '[]')::text"
    " FROM tollgate.mcp_limit_list l";
// clang-format on

#define GRANT_HEADERS "ID KIND SUBJECT SERVER TOOLS ARGS UPDATED"
#define LIMIT_HEADERS                                                                              \
    ">ID PER SUBJECT KIND WINDOW >LIMIT >MAX_TOKENS >TOKENS_PER_FILL >FILL_INTERVAL_MS"

/* --group G | --role R | --key PREFIX into kind and name; required: one must be there. */
static int grant_subject(int argc, char **argv, bool required, const char **kind, const char **name)
{
    static const char *const flags[][2] = {
        {"--group", "group"}, {"--role", "role"}, {"--key", "key"}};
    *kind = *name = NULL;
    for (size_t i = 0; i < TG_ARRAY_LEN(flags); i++) {
        const char *value = tg_ctl_option(argc, argv, flags[i][0]);
        if (value == NULL)
            continue;
        if (*kind != NULL)
            return tg_ctl_die("%s", "name one subject: --group, --role or --key");
        if (value[0] == '\0')
            return tg_ctl_die("%s must not be empty", flags[i][0]);
        *kind = flags[i][1];
        *name = value;
    }
    if (*kind == NULL && required)
        return tg_ctl_die("%s", "name a subject: --group G, --role R or --key PREFIX");
    return 0;
}

/* --tools a,b: non-empty entries (NULL when absent and not required). */
static int tools_option(int argc, char **argv, bool required, const char **tools)
{
    *tools = tg_ctl_option(argc, argv, "--tools");
    if (*tools == NULL)
        return required ? tg_ctl_die("%s", "--tools is required (names or globs: a,b*)") : 0;
    size_t len = strlen(*tools);
    if (len == 0 || (*tools)[0] == ',' || (*tools)[len - 1] == ',' || strstr(*tools, ",,"))
        return tg_ctl_die("--tools \"%s\" has an empty entry", *tools);
    return 0;
}

/* The list's format: table (default), csv or json. */
static int format_option(int argc, char **argv, const char **format)
{
    *format = tg_ctl_option(argc, argv, "--format");
    if (*format == NULL)
        *format = "table";
    if (strcmp(*format, "table") != 0 && strcmp(*format, "csv") != 0 &&
        strcmp(*format, "json") != 0)
        return tg_ctl_die("--format must be table, csv or json, not \"%s\"", *format);
    return 0;
}

/* CSV field: quoted when it holds a comma, quote or line break (RFC 4180). */
static void csv_field(const char *s, bool last)
{
    s = s != NULL ? s : "";
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, stdout);
    } else {
        putchar('"');
        for (; *s != '\0'; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    }
    putchar(last ? '\n' : ',');
}

/* Prints a list as a table (headers), CSV (the headers lowercased) or JSON (json_sql's text). */
static int print_list(struct tg_ctl *ctl, const char *format, const char *table_sql,
                      const char *json_sql, const char *headers, int n, const char *const *params)
{
    struct tg_db_rows rows;
    bool json = strcmp(format, "json") == 0;
    if (tg_ctl_query(ctl, json ? json_sql : table_sql, n, params, &rows) != TG_OK)
        return 1;
    if (json) {
        printf("%s\n", rows.n_rows == 1 && rows.cells[0] != NULL ? rows.cells[0] : "[]");
        return 0;
    }
    if (strcmp(format, "table") == 0) {
        tg_ctl_print_table(headers, &rows);
        return 0;
    }
    char names[256];
    int n_names = 0;
    snprintf(names, sizeof(names), "%s", headers);
    for (char *p = names; *p != '\0'; n_names++) {
        p += *p == '>';
        size_t len = strcspn(p, " ");
        bool last = p[len] == '\0';
        p[len] = '\0';
        for (char *c = p; *c != '\0'; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        csv_field(p, last);
        p += len + !last;
    }
    for (int i = 0; i < rows.n_rows; i++)
        for (int c = 0; c < rows.n_cols && c < n_names; c++)
            csv_field(rows.cells[i * rows.n_cols + c], c + 1 == rows.n_cols || c + 1 == n_names);
    return 0;
}

int tg_ctl_mcp_grant(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *kind, *name, *tools;
    const char *server = tg_ctl_option(argc, argv, "--server");
    const char *args = tg_ctl_option(argc, argv, "--args");
    if (grant_subject(argc, argv, true, &kind, &name) != 0)
        return 1;
    if (server == NULL)
        return tg_ctl_usage(ctl->cmd, "mcp grant needs --server");
    if (server[0] == '\0')
        return tg_ctl_die("%s", "--server must not be empty");
    if (tools_option(argc, argv, true, &tools) != 0)
        return 1;
    if (args != NULL) {
        json_error_t jerr;
        json_t *parsed = json_loads(args, JSON_DECODE_ANY, &jerr);
        bool object = json_is_object(parsed) || json_is_null(parsed);
        json_decref(parsed);
        if (parsed == NULL)
            return tg_ctl_die("--args is not JSON: %s", jerr.text);
        if (!object)
            return tg_ctl_die(
                "%s", "--args must be a JSON object "
                      "({\"arg\": {\"enum\": [...]}} or {\"arg\": {\"pattern\": \"...\"}})");
    }
    const char *params[] = {kind, name, server, tools, args, ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl,
                     "SELECT tollgate.mcp_grant_set($1, $2, $3, string_to_array($4, ','),"
                     " $5::jsonb, $6)::text",
                     6, params, &rows) != TG_OK)
        return 1;
    printf("mcp grant: %s \"%s\" server \"%s\" tools %s%s%s\n", kind, name, server, tools,
           args != NULL ? " args " : "", args != NULL ? args : "");
    const char *list_params[] = {kind, name};
    return print_list(ctl, "table", grants_table_sql, grants_json_sql, GRANT_HEADERS, 2,
                      list_params);
}

int tg_ctl_mcp_revoke(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *kind, *name, *tools;
    const char *server = tg_ctl_option(argc, argv, "--server");
    if (grant_subject(argc, argv, true, &kind, &name) != 0)
        return 1;
    if (server == NULL)
        return tg_ctl_usage(ctl->cmd, "mcp revoke needs --server");
    if (tools_option(argc, argv, false, &tools) != 0)
        return 1;
    const char *params[] = {kind, name, server, tools, ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl,
                     "SELECT tollgate.mcp_grant_revoke($1, $2, $3, string_to_array($4, ','), $5)",
                     5, params, &rows) != TG_OK)
        return 1;
    const char *n = rows.n_rows == 1 && rows.cells[0] != NULL ? rows.cells[0] : "0";
    if (strcmp(n, "0") == 0)
        return tg_ctl_die("no MCP grant of %s \"%s\" on server \"%s\"%s%s", kind, name, server,
                          tools != NULL ? " with tools " : "", tools != NULL ? tools : "");
    printf("mcp revoke: %s \"%s\" server \"%s\": %s grant%s revoked\n", kind, name, server, n,
           strcmp(n, "1") == 0 ? "" : "s");
    return 0;
}

int tg_ctl_mcp_grants(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *kind, *name, *format;
    if (grant_subject(argc, argv, false, &kind, &name) != 0 ||
        format_option(argc, argv, &format) != 0)
        return 1;
    const char *params[] = {kind, name};
    return print_list(ctl, format, grants_table_sql, grants_json_sql, GRANT_HEADERS, 2, params);
}

/* A whole-number option in [min, max] as text into out ("" when absent). */
static int count_option(int argc, char **argv, const char *flag, int64_t min, int64_t max,
                        char *out, size_t size)
{
    const char *text = tg_ctl_option(argc, argv, flag);
    int64_t value;
    out[0] = '\0';
    if (text == NULL)
        return 0;
    if (tg_ctl_parse_whole(text, min, max, &value) != TG_OK)
        return tg_ctl_die("%s must be a whole number from %lld to %lld, not \"%s\"", flag,
                          (long long)min, (long long)max, text);
    snprintf(out, size, "%lld", (long long)value);
    return 0;
}

int tg_ctl_mcp_limit_set(struct tg_ctl *ctl, int argc, char **argv)
{
    static const char *const pers[] = {"key", "user", "group", "server", "tool"};
    static const char *const windows[] = {"minute", "hour", "day", "month", "total"};
    const char *per = tg_ctl_option(argc, argv, "--per");
    const char *subject = tg_ctl_option(argc, argv, "--subject");
    const char *window = tg_ctl_option(argc, argv, "--window");
    char requests[24], bucket[24], refill[24], every[24];
    if (per == NULL)
        return tg_ctl_usage(ctl->cmd, "mcp limit set needs --per");
    bool known = false;
    for (size_t i = 0; i < TG_ARRAY_LEN(pers); i++)
        known = known || strcmp(per, pers[i]) == 0;
    if (!known)
        return tg_ctl_die("--per must be key, user, group, server or tool, not \"%s\"", per);
    if (subject != NULL && subject[0] == '\0')
        return tg_ctl_die("%s", "--subject must not be empty (leave it out for each one)");
    if (count_option(argc, argv, "--requests", 0, INT64_MAX, requests, sizeof(requests)) ||
        count_option(argc, argv, "--bucket", 1, INT64_MAX, bucket, sizeof(bucket)) ||
        count_option(argc, argv, "--refill", 1, INT64_MAX, refill, sizeof(refill)) ||
        count_option(argc, argv, "--every-ms", 1, INT64_MAX, every, sizeof(every)))
        return 1;
    bool quota = requests[0] != '\0', is_bucket = bucket[0] != '\0';
    if (quota == is_bucket)
        return tg_ctl_usage(ctl->cmd, "give --requests N --window W (a quota) or --bucket N "
                                      "(a token bucket), not both");
    if (quota && (refill[0] != '\0' || every[0] != '\0'))
        return tg_ctl_die("%s", "--refill and --every-ms go with --bucket, not --requests");
    if (is_bucket && window != NULL)
        return tg_ctl_die("%s", "--window goes with --requests, not --bucket");
    if (quota && window == NULL)
        return tg_ctl_die("%s", "--requests needs --window");
    known = !quota;
    for (size_t i = 0; quota && i < TG_ARRAY_LEN(windows); i++)
        known = known || strcmp(window, windows[i]) == 0;
    if (!known)
        return tg_ctl_die("--window must be minute, hour, day, month or total, not \"%s\"", window);
    const char *params[] = {per,
                            subject,
                            quota ? window : NULL,
                            quota ? requests : NULL,
                            is_bucket ? bucket : NULL,
                            refill[0] ? refill : NULL,
                            every[0] ? every : NULL,
                            ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl,
                     "SELECT tollgate.mcp_limit_set($1, $2, $3, $4::bigint, $5::bigint,"
                     " $6::bigint, $7::bigint, $8)->>'id'",
                     8, params, &rows) != TG_OK)
        return 1;
    printf("mcp limit set: id %s, per %s%s%s%s: ",
           rows.n_rows == 1 && rows.cells[0] ? rows.cells[0] : "?", per,
           subject != NULL ? " \"" : "", subject != NULL ? subject : "",
           subject != NULL ? "\"" : " (each one)");
    if (quota)
        printf("%s requests per %s\n", requests, window);
    else
        printf("bucket of %s, %s every %s ms\n", bucket, refill[0] ? refill : "1",
               every[0] ? every : "1000");
    return 0;
}

int tg_ctl_mcp_limit_delete(struct tg_ctl *ctl, int argc, char **argv)
{
    (void)argc;
    int64_t id;
    if (tg_ctl_parse_whole(argv[0], 1, INT64_MAX, &id) != TG_OK)
        return tg_ctl_die("ID must be a limit's id (mcp limit list), not \"%s\"", argv[0]);
    const char *params[] = {argv[0], ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, "SELECT tollgate.mcp_limit_delete($1::bigint, $2)", 2, params, &rows) !=
        TG_OK)
        return 1;
    if (rows.n_rows != 1 || rows.cells[0] == NULL || strcmp(rows.cells[0], "t") != 0)
        return tg_ctl_die("no MCP limit %s", argv[0]);
    printf("mcp limit delete: %s\n", argv[0]);
    return 0;
}

int tg_ctl_mcp_limit_list(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *format;
    if (format_option(argc, argv, &format) != 0)
        return 1;
    return print_list(ctl, format, limits_table_sql, limits_json_sql, LIMIT_HEADERS, 0, NULL);
}
