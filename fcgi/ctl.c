/*
 * ctl.c — tollgatectl, the admin CLI. Every action is one of the SQL functions in
 * sql/ (key_create, key_rotate, user_upsert, quota_set, price_set, ...), so psql,
 * cron, the admin API and this tool share one implementation; this file only
 * parses arguments, makes key material and prints. What a change may do is the
 * SQL functions' business, not this file's.
 *
 * The commands, their usage and the options each takes are the table `commands`
 * at the end; `tollgatectl` without arguments prints it. `config show` is the one
 * command that needs no database.
 */
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "auth_key.h"
#include "config.h"
#include "config_mask.h"
#include "db.h"
#include "migrate.h"
#include "price_check.h"
#include "report.h"
#include "usage.h"

#ifndef TG_SQL_DIR
#define TG_SQL_DIR "/usr/local/share/tollgate/sql"
#endif

struct command;

struct ctl {
    struct tg_db_conn *db;
    struct tg_arena *arena;
    const char *actor;
    const char *config_path;
    const struct command *cmd; /* the command being run */
    char err[1024];
};

struct command {
    const char *noun;
    const char *verb;    /* NULL: a one-word command (migrate) */
    int n_positional;    /* leading arguments (an ID, a PREFIX, a MODEL) */
    const char *args;    /* its usage, after its words */
    const char *options; /* the options it takes, space-separated; "--x=" takes a value */
    int (*run)(struct ctl *ctl, int argc, char **argv);
    const char *sql;     /* the statement of a command run by a shared handler */
    const char *columns; /* a list's headers (print_table) */
};

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tollgatectl: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* Says what is wrong with the command line, then how cmd is used; exit status 2. */
static int usage(const struct command *cmd, const char *problem)
{
    die("%s", problem);
    fprintf(stderr, "usage: tollgatectl -c CONFIG %s%s%s %s\n", cmd->noun, cmd->verb ? " " : "",
            cmd->verb ? cmd->verb : "", cmd->args);
    return 2;
}

/* The value after flag in argv, or NULL. */
static const char *option(int argc, char **argv, const char *flag)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return argv[i + 1];
    return NULL;
}

static bool has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return true;
    return false;
}

/* 1 if spec ("--name= --quiet") has arg taking a value, 0 if as a flag, -1 if not at all. */
static int option_arity(const char *spec, const char *arg)
{
    size_t len = strlen(arg);
    for (const char *p = spec; *p != '\0';) {
        size_t word = strcspn(p, " ");
        if (len > 0 && word >= len && strncmp(p, arg, len) == 0 &&
            (word == len || (word == len + 1 && p[len] == '=')))
            return word == len ? 0 : 1;
        p += word;
        p += *p == ' ';
    }
    return -1;
}

/* Refuses a missing positional argument, an option cmd does not take, a value left out. */
static int check_args(const struct command *cmd, int argc, char **argv)
{
    char problem[256];
    int i = 0;
    for (; i < cmd->n_positional; i++) {
        if (i >= argc || argv[i][0] == '-') {
            /* the usage names the positional arguments first: "PREFIX [--grace-s N]" */
            snprintf(problem, sizeof(problem), "%s %s needs %.*s", cmd->noun, cmd->verb,
                     (int)strcspn(cmd->args, " "), cmd->args);
            return usage(cmd, problem);
        }
    }
    for (; i < argc; i++) {
        int arity = option_arity(cmd->options, argv[i]);
        if (arity < 0 || (arity == 1 && i + 1 == argc)) {
            snprintf(problem, sizeof(problem),
                     arity < 0 ? "unexpected argument \"%s\"" : "%s needs a value", argv[i]);
            return usage(cmd, problem);
        }
        i += arity;
    }
    return 0;
}

/* text as a whole number in [min, max]. */
static int parse_whole(const char *text, int64_t min, int64_t max, int64_t *value)
{
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || parsed < min || parsed > max)
        return TG_ERROR;
    *value = parsed;
    return TG_OK;
}

static int query(struct ctl *ctl, const char *sql, int n, const char *const *params,
                 struct tg_db_rows *rows)
{
    if (tg_db_query(ctl->db, ctl->arena, sql, n, params, rows, ctl->err, sizeof(ctl->err)) !=
        TG_OK) {
        const char *message = ctl->err;
        if (strncmp(message, "ERROR:", 6) == 0)
            for (message += 6; *message == ' ';)
                message++;
        die("%s", message);
        return TG_ERROR;
    }
    return TG_OK;
}

/* ---- output ---- */

/* SQL: a timestamptz as "2026-01-31T12:00:00Z" (NULL stays NULL). */
#define SQL_UTC(ts) "to_char(" ts " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

// clang-format off
/* SQL: an allow-list (text[]) as "a,b"; NULL (no restriction) as "all", empty as "none". */
#define SQL_ALLOWED(list)                                                                      \
    "CASE WHEN " list " IS NULL THEN 'all' WHEN cardinality(" list ") = 0 THEN 'none'"         \
    " ELSE array_to_string(" list ", ',') END"
// clang-format on

/* ---- the SQL statements of the commands below (not reformatted: one clause a line) ---- */

// clang-format off
/* key list */
static const char key_list_sql[] =
    "SELECT prefix, name, user_id, group_id, role, status, " SQL_ALLOWED("allowed_models") ","
    " coalesce(" SQL_UTC("expires_at") ", 'never'), " SQL_UTC("created_at") ","
    " " SQL_UTC("last_used_at") " FROM tollgate.key_list ORDER BY created_at, prefix";

/* key rotate: the new prefix and until when the old secret works */
static const char key_rotate_sql[] =
    "SELECT k.prefix, " SQL_UTC("k.previous_expires_at") " FROM jsonb_populate_record("
    "NULL::tollgate.api_keys, tollgate.key_rotate($1, $2::bytea, $3, $4::int, $5)) k";

/* key update: the key as it is now */
static const char key_update_sql[] =
    "SELECT k.prefix, k.name, k.role, " SQL_ALLOWED("k.allowed_models") ","
    " coalesce(" SQL_UTC("k.expires_at") ", 'never'),"
    " CASE WHEN k.trusted_attribution THEN 'on' ELSE 'off' END"
    " FROM jsonb_populate_record(NULL::tollgate.api_keys,"
    " tollgate.key_update($1, $2::jsonb, $3)) k";

/* quota show [SUBJECT] */
static const char quota_show_sql[] =
    "SELECT subject_kind, subject, metric, \"window\", limit_value, used, reserved,"
    " remaining, coalesce(" SQL_UTC("window_end") ", 'never') FROM tollgate.quota_list"
    " WHERE ($1::text IS NULL OR subject_kind = $1)"
    " AND ($2::text IS NULL OR subject = $2)"
    " ORDER BY subject_kind, subject, metric, \"window\"";

/* price set: the row as stored (a null 1-hour rate is the cache-write rate) */
static const char price_set_sql[] =
    "SELECT p.model, " SQL_UTC("p.effective_from") ", p.input_micros_per_mtok,"
    " p.output_micros_per_mtok, p.cache_read_micros_per_mtok,"
    " p.cache_write_micros_per_mtok,"
    " coalesce(p.cache_write_1h_micros_per_mtok, p.cache_write_micros_per_mtok),"
    " p.web_search_micros_per_use, p.long_context_threshold_tokens,"
    " p.long_input_micros_per_mtok, p.long_output_micros_per_mtok,"
    " p.long_cache_read_micros_per_mtok, p.long_cache_write_micros_per_mtok,"
    " p.long_cache_write_1h_micros_per_mtok"
    " FROM jsonb_populate_record(NULL::tollgate.prices,"
    " tollgate.price_set($1, $2::timestamptz, $3::bigint, $4::bigint, $5::bigint,"
    " $6::bigint, $7, p_cache_write_1h => $8::bigint, p_web_search => $9::bigint,"
    " p_long_context_threshold => $10::bigint, p_long_input => $11::bigint,"
    " p_long_output => $12::bigint, p_long_cache_read => $13::bigint,"
    " p_long_cache_write => $14::bigint, p_long_cache_write_1h => $15::bigint)) p";

/* price list: LONG_CONTEXT is "-" or "THRESHOLD:in/out/read/write/write_1h" */
static const char price_list_sql[] =
    "SELECT model, " SQL_UTC("effective_from") ", input_micros_per_mtok,"
    " output_micros_per_mtok, cache_read_micros_per_mtok, cache_write_micros_per_mtok,"
    " coalesce(cache_write_1h_micros_per_mtok, cache_write_micros_per_mtok),"
    " web_search_micros_per_use,"
    " long_context_threshold_tokens || ':' || concat_ws('/', long_input_micros_per_mtok,"
    " long_output_micros_per_mtok, long_cache_read_micros_per_mtok,"
    " long_cache_write_micros_per_mtok, long_cache_write_1h_micros_per_mtok),"
    " CASE WHEN in_force THEN 'yes' ELSE 'no' END FROM tollgate.price_list"
    " ORDER BY model, effective_from";
// clang-format on

#define MAX_COLUMNS 16

static void print_row(int n_cols, const bool *right, const size_t *width, const char *const *cells)
{
    for (int c = 0; c < n_cols; c++) {
        const char *cell = cells[c] != NULL ? cells[c] : "-";
        const char *sep = c + 1 < n_cols ? "  " : "\n";
        if (right[c])
            printf("%*s%s", (int)width[c], cell, sep);
        else
            printf("%-*s%s", c + 1 < n_cols ? (int)width[c] : 0, cell, sep);
    }
}

/*
 * Prints rows (NULL cells as "-") under headers, the column names space-separated
 * ("KIND SUBJECT >USED": a leading '>' right-aligns a column of numbers); each
 * column is as wide as its widest cell.
 */
static void print_table(const char *headers, const struct tg_db_rows *rows)
{
    char names[256];
    const char *name[MAX_COLUMNS];
    bool right[MAX_COLUMNS];
    size_t width[MAX_COLUMNS];
    int n_cols = 0;
    snprintf(names, sizeof(names), "%s", headers);
    for (char *p = names; *p != '\0' && n_cols < MAX_COLUMNS; n_cols++) {
        right[n_cols] = *p == '>';
        p += right[n_cols];
        name[n_cols] = p;
        p += strcspn(p, " ");
        if (*p == ' ')
            *p++ = '\0';
        width[n_cols] = strlen(name[n_cols]);
    }
    if (n_cols > rows->n_cols)
        n_cols = rows->n_cols;
    for (int i = 0; i < rows->n_rows; i++)
        for (int c = 0; c < n_cols; c++) {
            const char *cell = rows->cells[i * rows->n_cols + c];
            size_t len = cell != NULL ? strlen(cell) : 1;
            if (len > width[c])
                width[c] = len;
        }
    print_row(n_cols, right, width, name);
    for (int i = 0; i < rows->n_rows; i++)
        print_row(n_cols, right, width, rows->cells + i * rows->n_cols);
}

/* A list command: its statement's rows under its columns. */
static int cmd_list(struct ctl *ctl, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct tg_db_rows rows;
    if (query(ctl, ctl->cmd->sql, 0, NULL, &rows) != TG_OK)
        return 1;
    print_table(ctl->cmd->columns, &rows);
    return 0;
}

/* ---- migrate ---- */

/* The config's models without a price in force (rows of one column); 0, or 1 after die(). */
static int unpriced_models(struct ctl *ctl, struct tg_db_rows *rows)
{
    char *models = tg_price_check_models_json_file(ctl->config_path, ctl->err, sizeof(ctl->err));
    if (models == NULL)
        return die("%s", ctl->err);
    const char *params[] = {models};
    int status = query(ctl, tg_price_check_sql, 1, params, rows) == TG_OK ? 0 : 1;
    free(models);
    return status;
}

/*
 * Migrates, then warns about each model of the config without a price in force
 * (reserve refuses its requests). The exit status is the migration's: an
 * unpriced model is for `price set` to fix once the schema is there.
 */
static int cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
    const char *dir = option(argc, argv, "--sql-dir");
    if (tg_migrate_run(ctl->db, dir != NULL ? dir : TG_SQL_DIR, stdout, ctl->err,
                       sizeof(ctl->err)) != TG_OK)
        return die("%s", ctl->err);
    struct tg_db_rows rows;
    if (unpriced_models(ctl, &rows) != 0) {
        fprintf(stderr, "tollgatectl: warning: could not check that every model has a price\n");
        return 0;
    }
    for (int i = 0; i < rows.n_rows; i++)
        fprintf(stderr,
                "tollgatectl: warning: model \"%s\" has no price in force: its requests are"
                " refused until one is set (tollgatectl price set)\n",
                rows.cells[i]);
    return 0;
}

/* ---- keys ---- */

/*
 * An allow-list option: --NAME a,b (names or globs) or --all-NAME. *given when
 * either is there; *list is "a,b" ("" allows nothing), NULL for all.
 */
static int allow_list(int argc, char **argv, const char *flag, const char *all_flag,
                      const char **list, bool *given)
{
    *list = option(argc, argv, flag);
    bool all = has_flag(argc, argv, all_flag);
    *given = *list != NULL || all;
    if (*list != NULL && all)
        return die("give %s or %s, not both", flag, all_flag);
    size_t len = *list != NULL ? strlen(*list) : 0;
    if (len > 0 && ((*list)[0] == ',' || (*list)[len - 1] == ',' || strstr(*list, ",,")))
        return die("%s \"%s\" has an empty entry", flag, *list);
    return 0;
}

/* "a,b" as ["a", "b"]; NULL when out of memory or not UTF-8. */
static json_t *csv_array(const char *csv)
{
    json_t *list = json_array();
    for (const char *p = csv; list != NULL && *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (json_array_append_new(list, json_stringn(p, len)) != 0) {
            json_decref(list);
            list = NULL;
        }
        p += len;
        p += *p == ',';
    }
    return list;
}

/* changes[field] = value (stolen, NULL when it could not be made). */
static int set_change(json_t *changes, const char *field, json_t *value)
{
    if (json_object_set_new(changes, field, value) != 0)
        return die("could not use the %s given (not UTF-8?)", field);
    return 0;
}

/*
 * The key_update changes the options ask for, as jsonb text in the arena, or NULL
 * for none: --models/--all-models, --expires/--no-expiry,
 * --trusted-attribution on|off, and with identity also --name and --role.
 */
static int key_changes(struct ctl *ctl, int argc, char **argv, bool identity, const char **text)
{
    const char *name = identity ? option(argc, argv, "--name") : NULL;
    const char *role = identity ? option(argc, argv, "--role") : NULL;
    const char *expires = option(argc, argv, "--expires");
    const char *trusted = option(argc, argv, "--trusted-attribution");
    bool no_expiry = has_flag(argc, argv, "--no-expiry");
    const char *models;
    bool models_given;
    *text = NULL;
    if (allow_list(argc, argv, "--models", "--all-models", &models, &models_given) != 0)
        return 1;
    if (expires != NULL && no_expiry)
        return die("%s", "give --expires or --no-expiry, not both");
    if (trusted != NULL && strcmp(trusted, "on") != 0 && strcmp(trusted, "off") != 0)
        return die("--trusted-attribution takes on or off, not \"%s\"", trusted);
    json_t *changes = json_object();
    int rc = changes != NULL ? 0 : die("%s", "out of memory");
    if (rc == 0 && name != NULL)
        rc = set_change(changes, "name", json_string(name));
    if (rc == 0 && role != NULL)
        rc = set_change(changes, "role", json_string(role));
    if (rc == 0 && models_given)
        rc = set_change(changes, "allowed_models", models ? csv_array(models) : json_null());
    if (rc == 0 && (expires != NULL || no_expiry))
        rc = set_change(changes, "expires_at", expires ? json_string(expires) : json_null());
    if (rc == 0 && trusted != NULL)
        rc = set_change(changes, "trusted_attribution", json_boolean(strcmp(trusted, "on") == 0));
    if (rc == 0 && json_object_size(changes) > 0) {
        char *dump = json_dumps(changes, JSON_COMPACT);
        *text = dump != NULL ? tg_arena_strdup(ctl->arena, dump) : NULL;
        free(dump);
        rc = *text != NULL ? 0 : die("%s", "out of memory");
    }
    json_decref(changes);
    return rc;
}

static void print_new_key(int argc, char **argv, const struct tg_new_key *k)
{
    if (has_flag(argc, argv, "--quiet"))
        printf("%s\n", k->key);
    else
        printf("key (shown once, store it now): %s\n", k->key);
}

static int cmd_key_create(struct ctl *ctl, int argc, char **argv)
{
    const char *group = option(argc, argv, "--group");
    const char *user = option(argc, argv, "--user");
    const char *name = option(argc, argv, "--name");
    const char *role = option(argc, argv, "--role");
    const char *changes;
    if (group == NULL || user == NULL || name == NULL)
        return usage(ctl->cmd, "key create needs --group, --user and --name");
    if (key_changes(ctl, argc, argv, false, &changes) != 0)
        return 1;
    struct tg_new_key k;
    if (tg_auth_key_generate(&k) != TG_OK)
        return die("%s", "could not read random bytes from the OS");
    const char *params[] = {k.hash_bytea, k.prefix, name, user, group, role != NULL ? role : "user",
                            ctl->actor,   changes};
    /* the access options go in the same statement: the key never exists without them */
    const char *sql = changes == NULL
                          ? "SELECT tollgate.key_create($1::bytea, $2, $3, $4, $5, $6, $7)"
                          : "SELECT tollgate.key_create($1::bytea, $2, $3, $4, $5, $6, $7),"
                            " tollgate.key_update($2, $8::jsonb, $7)";
    struct tg_db_rows rows;
    if (query(ctl, sql, changes == NULL ? 7 : 8, params, &rows) != TG_OK)
        return 1;
    if (!has_flag(argc, argv, "--quiet"))
        printf("created key %s for user \"%s\" in group \"%s\" (role %s)\n", k.prefix, user, group,
               params[5]);
    print_new_key(argc, argv, &k);
    return 0;
}

static int cmd_key_revoke(struct ctl *ctl, int argc, char **argv)
{
    (void)argc;
    const char *params[] = {argv[0], ctl->actor};
    struct tg_db_rows rows;
    if (query(ctl, "SELECT tollgate.key_revoke($1, $2)", 2, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL || strcmp(rows.cells[0], "t") != 0)
        return die("no key with prefix \"%s\"", argv[0]);
    printf("revoked key %s\n", argv[0]);
    return 0;
}

#define GRACE_MAX_S 2592000 /* 30 days, the admin API's limit too (admin.c) */

static int cmd_key_rotate(struct ctl *ctl, int argc, char **argv)
{
    const char *grace = option(argc, argv, "--grace-s");
    int64_t grace_s = 3600;
    if (grace != NULL && parse_whole(grace, 0, GRACE_MAX_S, &grace_s) != TG_OK)
        return die("invalid --grace-s \"%s\" (whole seconds, 0 to %d)", grace, GRACE_MAX_S);
    char grace_text[24];
    snprintf(grace_text, sizeof(grace_text), "%lld", (long long)grace_s);
    struct tg_new_key k;
    if (tg_auth_key_generate(&k) != TG_OK)
        return die("%s", "could not read random bytes from the OS");
    const char *params[] = {argv[0], k.hash_bytea, k.prefix, grace_text, ctl->actor};
    struct tg_db_rows rows;
    if (query(ctl, key_rotate_sql, 5, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL)
        return die("no active key with prefix \"%s\"", argv[0]);
    if (!has_flag(argc, argv, "--quiet")) {
        printf("rotated key %s: its new prefix is %s\n", argv[0], k.prefix);
        if (grace_s > 0)
            printf("the old key works until %s\n", rows.cells[1]);
        else
            printf("the old key no longer works\n");
    }
    print_new_key(argc, argv, &k);
    return 0;
}

static int cmd_key_update(struct ctl *ctl, int argc, char **argv)
{
    const char *changes;
    if (key_changes(ctl, argc, argv, true, &changes) != 0)
        return 1;
    if (changes == NULL)
        return usage(ctl->cmd, "key update needs something to change");
    const char *params[] = {argv[0], changes, ctl->actor};
    struct tg_db_rows rows;
    if (query(ctl, key_update_sql, 3, params, &rows) != TG_OK)
        return 1;
    const char **c = rows.cells;
    if (rows.n_rows == 0 || c[0] == NULL)
        return die("no key with prefix \"%s\"", argv[0]);
    printf("updated key %s: name \"%s\", role %s, models %s, expires %s, trusted attribution %s\n",
           c[0], c[1], c[2], c[3], c[4], c[5]);
    return 0;
}

/* ---- users, groups, roles ---- */

static int cmd_user_set(struct ctl *ctl, int argc, char **argv)
{
    const char *group = option(argc, argv, "--group");
    if (group == NULL)
        return usage(ctl->cmd, "user set needs --group");
    const char *params[] = {argv[0], group, ctl->actor};
    struct tg_db_rows rows;
    if (query(ctl,
              "SELECT u.id, u.group_id FROM jsonb_populate_record(NULL::tollgate.users,"
              " tollgate.user_upsert($1, $2, $3)) u",
              3, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL)
        return die("could not set user \"%s\"", argv[0]);
    printf("user \"%s\" is in group \"%s\"\n", rows.cells[0], rows.cells[1]);
    return 0;
}

// clang-format off
/*
 * group_upsert or role_upsert for table: both lists are replaced, so a list not
 * given ($3, $5 true) passes the one stored.
 */
#define SQL_ALLOW_SET(function, table)                                                         \
    "SELECT " SQL_ALLOWED("r.allowed_models") ", " SQL_ALLOWED("r.allowed_endpoints")          \
    " FROM jsonb_populate_record(NULL::tollgate." table ", tollgate." function "($1,"          \
    " CASE WHEN $3::boolean THEN (SELECT x.allowed_models FROM tollgate." table " x"           \
    " WHERE x.id = $1) ELSE string_to_array($2, ',') END,"                                     \
    " CASE WHEN $5::boolean THEN (SELECT x.allowed_endpoints FROM tollgate." table " x"        \
    " WHERE x.id = $1) ELSE string_to_array($4, ',') END, $6)) r"
// clang-format on

/* group set, role set: what a group's or a role's members may use. */
static int cmd_allow_set(struct ctl *ctl, int argc, char **argv)
{
    const char *models, *endpoints;
    bool models_given, endpoints_given;
    if (allow_list(argc, argv, "--models", "--all-models", &models, &models_given) != 0 ||
        allow_list(argc, argv, "--endpoints", "--all-endpoints", &endpoints, &endpoints_given) != 0)
        return 1;
    const char *params[] = {argv[0],
                            models,
                            models_given ? "false" : "true",
                            endpoints,
                            endpoints_given ? "false" : "true",
                            ctl->actor};
    struct tg_db_rows rows;
    if (query(ctl, ctl->cmd->sql, 6, params, &rows) != TG_OK)
        return 1;
    printf("%s \"%s\": models %s, endpoints %s\n", ctl->cmd->noun, argv[0], rows.cells[0],
           rows.cells[1]);
    return 0;
}

/* user, group, role delete: the statement answers whether there was one. */
static int cmd_delete(struct ctl *ctl, int argc, char **argv)
{
    (void)argc;
    const char *params[] = {argv[0], ctl->actor};
    struct tg_db_rows rows;
    if (query(ctl, ctl->cmd->sql, 2, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL || strcmp(rows.cells[0], "t") != 0)
        return die("no %s \"%s\"", ctl->cmd->noun, argv[0]);
    printf("deleted %s \"%s\"\n", ctl->cmd->noun, argv[0]);
    return 0;
}

/* ---- quotas ---- */

/* --group G | --user U | --key PREFIX into kind and subject. */
static int quota_subject(int argc, char **argv, const char **kind, const char **subject)
{
    static const char *const flags[][2] = {
        {"--group", "group"}, {"--user", "user"}, {"--key", "key"}};
    *kind = *subject = NULL;
    for (size_t i = 0; i < TG_ARRAY_LEN(flags); i++) {
        const char *value = option(argc, argv, flags[i][0]);
        if (value == NULL)
            continue;
        if (*kind != NULL)
            return die("%s", "name one subject: --group, --user or --key");
        *kind = flags[i][1];
        *subject = value;
    }
    return *kind != NULL ? 0 : die("%s", "name a subject: --group G, --user U or --key PREFIX");
}

/* An amount in the metric's unit: USD as dollars ("500.00"), else whole numbers. */
static int quota_amount(const char *metric, const char *text, char *out, size_t size)
{
    int64_t value;
    if (strcmp(metric, "usd") == 0) {
        if (tg_usage_parse_usd(text, &value) != TG_OK)
            return die("invalid USD amount \"%s\" (dollars, at most 6 decimals)", text);
    } else if (parse_whole(text, INT64_MIN, INT64_MAX, &value) != TG_OK) {
        return die("invalid %s amount \"%s\" (a whole number)", metric, text);
    }
    snprintf(out, size, "%lld", (long long)value);
    return 0;
}

static int quota_show(struct ctl *ctl, const char *kind, const char *subject)
{
    const char *params[] = {kind, subject};
    struct tg_db_rows rows;
    if (query(ctl, quota_show_sql, 2, params, &rows) != TG_OK)
        return 1;
    /* usd amounts are micros in the database, dollars on screen */
    for (int i = 0; i < rows.n_rows; i++) {
        const char **c = rows.cells + i * rows.n_cols;
        for (int k = 4; k < 8 && strcmp(c[2], "usd") == 0; k++) {
            char usd[32];
            if (c[k] == NULL)
                continue;
            tg_usage_format_usd(strtoll(c[k], NULL, 10), usd, sizeof(usd));
            c[k] = tg_arena_strdup(ctl->arena, usd);
        }
    }
    print_table("KIND SUBJECT METRIC WINDOW >LIMIT >USED >RESERVED >REMAINING RESETS", &rows);
    return 0;
}

static int cmd_quota_show(struct ctl *ctl, int argc, char **argv)
{
    const char *kind = NULL, *subject = NULL;
    if (argc > 0 && quota_subject(argc, argv, &kind, &subject) != 0)
        return 1;
    return quota_show(ctl, kind, subject);
}

static int cmd_quota_cron(struct ctl *ctl, int argc, char **argv)
{
    (void)argc, (void)argv;
    const char *params[] = {ctl->actor};
    struct tg_db_rows rows;
    bool roll = strcmp(ctl->cmd->verb, "rollover") == 0;
    if (query(ctl,
              roll ? "SELECT tollgate.quota_rollover($1)"
                   : "SELECT tollgate.sweep_reservations(NULL)",
              roll ? 1 : 0, roll ? params : NULL, &rows) != TG_OK)
        return 1;
    const char *count = rows.n_rows > 0 && rows.cells[0] ? rows.cells[0] : "0";
    if (roll)
        printf("rolled over %s quotas\n", count);
    else
        printf("released %s reservations\n", count);
    return 0;
}

/* quota set, adjust, reset, delete: the statement is the command's. */
static int cmd_quota_change(struct ctl *ctl, int argc, char **argv)
{
    const char *verb = ctl->cmd->verb;
    const char *kind, *subject;
    if (quota_subject(argc, argv, &kind, &subject) != 0)
        return 1;
    const char *metric = option(argc, argv, "--metric");
    const char *window = option(argc, argv, "--window");
    const char *amount_flag = strcmp(verb, "set") == 0      ? "--limit"
                              : strcmp(verb, "adjust") == 0 ? "--by"
                                                            : NULL;
    const char *amount_text = amount_flag != NULL ? option(argc, argv, amount_flag) : NULL;
    if (metric == NULL || window == NULL || (amount_flag != NULL && amount_text == NULL)) {
        char problem[128];
        snprintf(problem, sizeof(problem), "quota %s needs --metric, --window%s%s", verb,
                 amount_flag != NULL ? " and " : "", amount_flag != NULL ? amount_flag : "");
        return usage(ctl->cmd, problem);
    }
    char amount[32] = "";
    if (amount_text != NULL && quota_amount(metric, amount_text, amount, sizeof(amount)) != 0)
        return 1;
    /* the amount goes last so that reset and delete simply pass one parameter fewer */
    const char *params[] = {kind, subject, metric, window, ctl->actor, amount};
    struct tg_db_rows rows;
    if (query(ctl, ctl->cmd->sql, amount_flag != NULL ? 6 : 5, params, &rows) != TG_OK)
        return 1;
    if (strcmp(verb, "delete") == 0 &&
        (rows.n_rows == 0 || rows.cells[0] == NULL || strcmp(rows.cells[0], "t") != 0))
        return die("no quota %s \"%s\" %s per %s", kind, subject, metric, window);
    printf("quota %s: %s \"%s\" %s per %s\n", verb, kind, subject, metric, window);
    return quota_show(ctl, kind, subject);
}

/* ---- prices ---- */

/* The price set options after the base rates, in price_set_sql's parameter order ($8..$15). */
static const char *const price_options[] = {
    "--cache-write-1h", "--web-search",      "--long-context-threshold", "--long-input",
    "--long-output",    "--long-cache-read", "--long-cache-write",       "--long-cache-write-1h",
};

static int cmd_price_set(struct ctl *ctl, int argc, char **argv)
{
    static const char *const base[] = {"--input", "--output", "--cache-read", "--cache-write"};
    const char *params[15] = {argv[0], option(argc, argv, "--from")};
    for (size_t i = 0; i < TG_ARRAY_LEN(base) + TG_ARRAY_LEN(price_options); i++) {
        const char *flag = i < 4 ? base[i] : price_options[i - 4];
        int64_t value;
        const char *text = option(argc, argv, flag);
        bool threshold = strcmp(flag, "--long-context-threshold") == 0;
        if (text != NULL && parse_whole(text, threshold ? 1 : 0, INT64_MAX, &value) != TG_OK)
            return die("invalid %s \"%s\" (%s, a whole number)", flag, text,
                       threshold                           ? "prompt tokens, at least 1"
                       : strcmp(flag, "--web-search") == 0 ? "micro-dollars per search"
                                                           : "micro-dollars per million tokens");
        params[i < 4 ? 2 + i : 3 + i] = text; /* $7 is the actor */
    }
    params[6] = ctl->actor;
    if (params[2] == NULL || params[3] == NULL)
        return usage(ctl->cmd, "price set needs --input and --output");
    struct tg_db_rows rows;
    if (query(ctl, price_set_sql, 15, params, &rows) != TG_OK)
        return 1;
    const char **c = rows.cells;
    if (rows.n_rows == 0 || c[0] == NULL)
        return die("could not set the price of \"%s\"", argv[0]);
    printf("price of \"%s\" from %s, in micro-dollars per million tokens: input %s, output %s,"
           " cache read %s, cache write %s, cache write 1h %s; web search %s micro-dollars per"
           " search",
           c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
    if (c[8] != NULL)
        printf("; above %s prompt tokens: input %s, output %s, cache read %s, cache write %s,"
               " cache write 1h %s",
               c[8], c[9], c[10], c[11], c[12], c[13]);
    printf("\n");
    return 0;
}

/* Lists the config's models without a price in force; exit status 1 if there are any. */
static int cmd_price_check(struct ctl *ctl, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct tg_db_rows rows;
    if (unpriced_models(ctl, &rows) != 0)
        return 1;
    if (rows.n_rows == 0) {
        printf("every model of the config has a price in force\n");
        return 0;
    }
    for (int i = 0; i < rows.n_rows; i++)
        printf("%s\n", rows.cells[i]);
    return die("%d of the config's models %s no price in force: their requests are refused",
               rows.n_rows, rows.n_rows == 1 ? "has" : "have");
}

/* ---- config show ---- */

static int cmd_config_show(struct ctl *ctl, int argc, char **argv)
{
    const char *path = option(argc, argv, "-c");
    if (path == NULL)
        path = ctl->config_path;
    if (path == NULL)
        return die("%s", "which config? give -c CONFIG or set TOLLGATE_CONFIG");
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return die("could not read config \"%s\": %s (line %d)", path, jerr.text, jerr.line);
    int status = 0;
    if (tg_config_mask(root) != TG_OK)
        status = die("%s", "out of memory");
    else if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
             putchar('\n') == EOF)
        status = die("%s", "could not write the config");
    json_decref(root);
    return status;
}

/* ---- the commands ---- */

#define SUBJECT_OPTIONS "--group= --user= --key= "
#define ALLOW_ARGS "ID [--models M1,M2 | --all-models] [--endpoints E1,E2 | --all-endpoints]"
#define ALLOW_OPTIONS "--models= --all-models --endpoints= --all-endpoints"

/* ---- reports ---- */

static int cmd_report_refresh(struct ctl *ctl, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct tg_db_rows rows;
    if (query(ctl, "SELECT tollgate.report_refresh()::text", 0, NULL, &rows) != TG_OK)
        return 1;
    printf("refreshed chargeback_daily and chargeback_monthly (complete up to %s)\n",
           rows.n_rows == 1 && rows.cells[0] != NULL ? rows.cells[0] : "?");
    return 0;
}

static int cmd_usage_maintain(struct ctl *ctl, int argc, char **argv)
{
    int64_t ahead = 3;
    const char *text = option(argc, argv, "--ahead");
    if (text != NULL && parse_whole(text, 0, 120, &ahead) != TG_OK)
        return die("%s", "--ahead must be a whole number of months from 0 to 120");
    char ahead_text[8];
    snprintf(ahead_text, sizeof(ahead_text), "%d", (int)ahead);
    const char *params[] = {ahead_text};
    struct tg_db_rows created, detached;
    if (query(ctl, "SELECT tollgate.usage_partitions_ensure($1::int)", 1, params, &created) !=
            TG_OK ||
        query(ctl, "SELECT tollgate.usage_partitions_detach()", 0, NULL, &detached) != TG_OK)
        return 1;
    printf("usage partitions: %s created\n", created.n_rows == 1 ? created.cells[0] : "?");
    for (int i = 0; i < detached.n_rows; i++)
        printf("detached %s (its rows are kept in tollgate.%s until you drop it)\n",
               detached.cells[i], detached.cells[i]);
    return 0;
}

static int report_options(int argc, char **argv, const char *format_fallback,
                          struct tg_report_options *opt)
{
    const char *by = option(argc, argv, "--by");
    const char *format = option(argc, argv, "--format");
    opt->by = by != NULL ? by : "group";
    opt->from = option(argc, argv, "--from");
    opt->to = option(argc, argv, "--to");
    opt->format = format != NULL ? format : format_fallback;
    if (opt->to != NULL && opt->from == NULL)
        return die("%s", "--to needs --from");
    return 0;
}

static int cmd_report(struct ctl *ctl, int argc, char **argv)
{
    struct tg_report_options opt;
    if (report_options(argc, argv, "table", &opt) != 0)
        return 1;
    if (tg_report_write(ctl->db, &opt, stdout, ctl->err, sizeof(ctl->err)) != TG_OK)
        return die("%s", ctl->err);
    return fflush(stdout) == 0 ? 0 : die("%s", "could not write the report");
}

static int cmd_export_usage(struct ctl *ctl, int argc, char **argv)
{
    struct tg_report_options opt;
    if (report_options(argc, argv, "csv", &opt) != 0)
        return 1;
    if (tg_report_export_usage(ctl->db, &opt, stdout, ctl->err, sizeof(ctl->err)) != TG_OK)
        return die("%s", ctl->err);
    return fflush(stdout) == 0 ? 0 : die("%s", "could not write the export");
}

// clang-format off
static const struct command commands[] = {
    {"migrate", NULL, 0, "[--sql-dir DIR]", "--sql-dir=", cmd_migrate, NULL, NULL},
    {"key", "create", 0,
     "--group G --user U --name N [--role R] [--models M1,M2] [--expires TIME]\n"
     "        [--trusted-attribution on] [--quiet]",
     "--group= --user= --name= --role= --models= --expires= --trusted-attribution= --quiet",
     cmd_key_create, NULL, NULL},
    {"key", "list", 0, "", "", cmd_list, key_list_sql,
     "PREFIX NAME USER GROUP ROLE STATUS MODELS EXPIRES CREATED LAST_USED"},
    {"key", "revoke", 1, "PREFIX", "", cmd_key_revoke, NULL, NULL},
    {"key", "rotate", 1, "PREFIX [--grace-s N] [--quiet]   (N seconds, 3600 by default)",
     "--grace-s= --quiet", cmd_key_rotate, NULL, NULL},
    {"key", "update", 1,
     "PREFIX [--name N] [--role R] [--models M1,M2 | --all-models]\n"
     "        [--expires TIME | --no-expiry] [--trusted-attribution on|off]",
     "--name= --role= --models= --all-models --expires= --no-expiry --trusted-attribution=",
     cmd_key_update, NULL, NULL},
    {"user", "set", 1, "ID --group G", "--group=", cmd_user_set, NULL, NULL},
    {"user", "delete", 1, "ID", "", cmd_delete, "SELECT tollgate.user_delete($1, $2)", NULL},
    {"user", "list", 0, "", "", cmd_list,
     "SELECT id, group_id, active_keys, " SQL_UTC("created_at")
     " FROM tollgate.user_list ORDER BY id",
     "USER GROUP >ACTIVE_KEYS CREATED"},
    {"group", "set", 1, ALLOW_ARGS, ALLOW_OPTIONS, cmd_allow_set,
     SQL_ALLOW_SET("group_upsert", "groups"), NULL},
    {"group", "delete", 1, "ID", "", cmd_delete, "SELECT tollgate.group_delete($1, $2)", NULL},
    {"group", "list", 0, "", "", cmd_list,
     "SELECT id, " SQL_ALLOWED("allowed_models") ", " SQL_ALLOWED("allowed_endpoints") ","
     " users, active_keys, " SQL_UTC("created_at") " FROM tollgate.group_list ORDER BY id",
     "GROUP MODELS ENDPOINTS >USERS >ACTIVE_KEYS CREATED"},
    {"role", "set", 1, ALLOW_ARGS, ALLOW_OPTIONS, cmd_allow_set,
     SQL_ALLOW_SET("role_upsert", "roles"), NULL},
    {"role", "delete", 1, "ID", "", cmd_delete, "SELECT tollgate.role_delete($1, $2)", NULL},
    {"role", "list", 0, "", "", cmd_list,
     "SELECT id, " SQL_ALLOWED("allowed_models") ", " SQL_ALLOWED("allowed_endpoints") ","
     " active_keys, " SQL_UTC("created_at") " FROM tollgate.role_list ORDER BY id",
     "ROLE MODELS ENDPOINTS >ACTIVE_KEYS CREATED"},
    {"quota", "set", 0, "SUBJECT --metric M --window W --limit N",
     SUBJECT_OPTIONS "--metric= --window= --limit=", cmd_quota_change,
     "SELECT tollgate.quota_set($1, $2, $3, $4, $6::bigint, $5)", NULL},
    {"quota", "adjust", 0, "SUBJECT --metric M --window W --by +N|-N",
     SUBJECT_OPTIONS "--metric= --window= --by=", cmd_quota_change,
     "SELECT tollgate.quota_adjust($1, $2, $3, $4, $6::bigint, $5)", NULL},
    {"quota", "reset", 0, "SUBJECT --metric M --window W",
     SUBJECT_OPTIONS "--metric= --window=", cmd_quota_change,
     "SELECT tollgate.quota_reset($1, $2, $3, $4, $5)", NULL},
    {"quota", "delete", 0, "SUBJECT --metric M --window W",
     SUBJECT_OPTIONS "--metric= --window=", cmd_quota_change,
     "SELECT tollgate.quota_delete($1, $2, $3, $4, $5)", NULL},
    {"quota", "show", 0, "[SUBJECT]", SUBJECT_OPTIONS, cmd_quota_show, NULL, NULL},
    {"quota", "rollover", 0, "   (cron: roll every window that passed)", "", cmd_quota_cron,
     NULL, NULL},
    {"quota", "sweep", 0, "      (release expired reservations)", "", cmd_quota_cron, NULL,
     NULL},
    {"price", "set", 1,
     "MODEL --input N --output N [--cache-read N] [--cache-write N] [--cache-write-1h N]\n"
     "        [--web-search N] [--long-context-threshold T --long-input N --long-output N\n"
     "        --long-cache-read N --long-cache-write N --long-cache-write-1h N] [--from TIME]",
     "--input= --output= --cache-read= --cache-write= --cache-write-1h= --web-search="
     " --long-context-threshold= --long-input= --long-output= --long-cache-read="
     " --long-cache-write= --long-cache-write-1h= --from=",
     cmd_price_set, NULL, NULL},
    {"price", "list", 0, "", "", cmd_list, price_list_sql,
     "MODEL FROM >INPUT >OUTPUT >CACHE_READ >CACHE_WRITE >CACHE_WRITE_1H >WEB_SEARCH"
     " LONG_CONTEXT IN_FORCE"},
    {"price", "check", 0, "   (the config's models without a price in force; exit 1 if any)",
     "", cmd_price_check, NULL, NULL},
    {"config", "show", 0, "[-c CONFIG]   (secrets masked)", "-c=", cmd_config_show, NULL, NULL},
    {"usage", "maintain", 0,
     "[--ahead N]   (cron: partitions for N months ahead, 3 by default; retention)",
     "--ahead=", cmd_usage_maintain, NULL, NULL},
    {"report", "refresh", 0, "   (cron: refresh the chargeback views, concurrently)", "",
     cmd_report_refresh, NULL, NULL},
    {"report", NULL, 0,
     "[--by group|user|key|model] [--from DATE --to DATE] [--format table|csv|json]",
     "--by= --from= --to= --format=", cmd_report, NULL, NULL},
    {"export", "usage", 0, "[--from DATE --to DATE] [--format csv|json]   (raw rows, streamed)",
     "--from= --to= --format=", cmd_export_usage, NULL, NULL},
};
// clang-format on

static int print_usage(void)
{
    fprintf(stderr, "usage: tollgatectl -c CONFIG.json COMMAND ...\n");
    for (size_t i = 0; i < TG_ARRAY_LEN(commands); i++) {
        const struct command *c = &commands[i];
        fprintf(stderr, "  %s%s%s%s%s\n", c->noun, c->verb ? " " : "", c->verb ? c->verb : "",
                c->args[0] ? " " : "", c->args);
    }
    fprintf(stderr,
            "quotas: SUBJECT is --group G, --user U or --key PREFIX; M is usd, tokens or\n"
            "  requests; W minute, hour, day, month or total; usd amounts in dollars (500.00)\n"
            "prices: micro-dollars per million tokens ($3/MTok is 3000000); --web-search in\n"
            "  micro-dollars per search ($10 per 1,000 is 10000); without --cache-write-1h,\n"
            "  1-hour cache writes cost the --cache-write rate; above T prompt tokens (input\n"
            "  and cache), every token costs its --long-* rate (LONG_CONTEXT in price list:\n"
            "  T:input/output/cache read/cache write/cache write 1h)\n"
            "reports: DATE is YYYY-MM-DD, both ends included; the default is this month\n"
            "lists (--models, --endpoints): comma-separated names or globs (claude-haiku-*)\n"
            "environment: TOLLGATE_CONFIG names the config when there is no -c,\n"
            "  TOLLGATE_NOW overrides the clock (tests)\n");
    return 2;
}

static const struct command *find_command(int argc, char **argv)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(commands); i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[0], c->noun) == 0 &&
            (c->verb == NULL || (argc > 1 && strcmp(argv[1], c->verb) == 0)))
            return c;
    }
    return NULL;
}

static const char *who_am_i(void)
{
    const char *sudo_user = getenv("SUDO_USER");
    if (sudo_user != NULL)
        return sudo_user;
    struct passwd *pw = getpwuid(getuid());
    return pw != NULL ? pw->pw_name : "unknown";
}

/* Connects to the config's database, pinning the clock to TOLLGATE_NOW if set. */
static int connect_db(struct ctl *ctl)
{
    char *db_url = NULL;
    char err[512];
    if (tg_config_load_db_url(ctl->config_path, &db_url, err, sizeof(err)) != TG_OK)
        return die("%s", err);
    ctl->db = tg_db_connect(db_url, ctl->err, sizeof(ctl->err));
    free(db_url);
    if (ctl->db == NULL)
        return die("%s", ctl->err);
    const char *now = getenv("TOLLGATE_NOW");
    if (now != NULL && now[0] != '\0' &&
        query(ctl, "SELECT set_config('tollgate.now', $1, false)", 1, (const char *const[]){now},
              NULL) != TG_OK)
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    struct ctl ctl = {0};
    ctl.config_path = getenv("TOLLGATE_CONFIG");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            ctl.config_path = argv[++i];
        else
            return die("unknown option \"%s\"", argv[i]);
    }
    ctl.cmd = i < argc ? find_command(argc - i, argv + i) : NULL;
    if (ctl.cmd == NULL) {
        if (i < argc)
            die("unknown command \"%s%s%s\"", argv[i], i + 1 < argc ? " " : "",
                i + 1 < argc ? argv[i + 1] : "");
        return print_usage();
    }
    int words = ctl.cmd->verb != NULL ? 2 : 1;
    int cargc = argc - i - words;
    char **cargv = argv + i + words;
    if (check_args(ctl.cmd, cargc, cargv) != 0)
        return 2;
    if (ctl.cmd->run == cmd_config_show)
        return cmd_config_show(&ctl, cargc, cargv);
    if (ctl.config_path == NULL) {
        die("%s", "which config? give -c CONFIG or set TOLLGATE_CONFIG");
        return 2;
    }
    char actor[128];
    snprintf(actor, sizeof(actor), "cli:%s", who_am_i());
    ctl.actor = actor;
    ctl.arena = tg_arena_new(64 * 1024);
    int status = connect_db(&ctl);
    if (status == 0)
        status = ctl.cmd->run(&ctl, cargc, cargv);
    tg_db_close(ctl.db);
    tg_arena_free(ctl.arena);
    return status;
}
