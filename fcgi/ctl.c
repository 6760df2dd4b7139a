/*
 * ctl.c — tollgatectl, the admin CLI. Every action is one of the SQL functions in
 * sql/ (key_create, key_revoke, ...), so psql, cron and this tool share one
 * implementation; this file only parses arguments, makes key material and prints.
 *
 *   tollgatectl -c CONFIG migrate [--sql-dir DIR]
 *   tollgatectl -c CONFIG key create --group G --user U --name N [--role R] [--quiet]
 *   tollgatectl -c CONFIG key list
 *   tollgatectl -c CONFIG key revoke PREFIX
 */
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "usage.h"

#ifndef TG_SQL_DIR
#define TG_SQL_DIR "/usr/local/share/tollgate/sql"
#endif

#define KEY_RANDOM_BYTES 32
#define KEY_PREFIX_LEN 11 /* "tg-" + 8 */

struct ctl {
    struct tg_db_conn *db;
    struct tg_arena *arena;
    const char *actor;
    char err[1024];
};

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tollgatectl: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
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

static int query(struct ctl *ctl, const char *sql, int n, const char *const *params,
                 struct tg_db_rows *rows)
{
    if (tg_db_query(ctl->db, ctl->arena, sql, n, params, rows, ctl->err, sizeof(ctl->err)) !=
        TG_OK) {
        fprintf(stderr, "tollgatectl: %s\n", ctl->err);
        return TG_ERROR;
    }
    return TG_OK;
}

/* ---- migrate ---- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = NULL;
    size_t len = 0, cap = 0;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *grown = realloc(text, cap);
            if (grown == NULL) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = grown;
        }
        memcpy(text + len, buf, n);
        len += n;
    }
    fclose(f);
    if (text == NULL)
        text = calloc(1, 1);
    else
        text[len] = '\0';
    return text;
}

/* Migration files are "NNN_name.sql"; the version is the file name without .sql. */
static int list_migrations(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return TG_ERROR;
    size_t cap = 16;
    *names = malloc(cap * sizeof(char *));
    *n = 0;
    struct dirent *e;
    while (*names != NULL && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 8 || strcmp(e->d_name + len - 4, ".sql") != 0 ||
            e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (*n == cap) {
            cap *= 2;
            char **grown = realloc(*names, cap * sizeof(char *));
            if (grown == NULL)
                break;
            *names = grown;
        }
        (*names)[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*names == NULL)
        return TG_ERROR;
    qsort(*names, *n, sizeof(char *), by_name);
    return TG_OK;
}

static int apply_migration(struct ctl *ctl, const char *dir, const char *file)
{
    char version[256];
    snprintf(version, sizeof(version), "%.*s", (int)(strlen(file) - 4), file);
    const char *params[] = {version};
    struct tg_db_rows rows;
    if (query(ctl, "SELECT 1 FROM tollgate.schema_migrations WHERE version = $1", 1, params,
              &rows) != TG_OK)
        return TG_ERROR;
    if (rows.n_rows > 0)
        return TG_OK;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    char *sql = read_file(path);
    if (sql == NULL)
        return die("could not read migration \"%s\"", path);
    int rc = TG_ERROR;
    if (tg_db_exec_script(ctl->db, "BEGIN", ctl->err, sizeof(ctl->err)) == TG_OK &&
        tg_db_exec_script(ctl->db, sql, ctl->err, sizeof(ctl->err)) == TG_OK &&
        query(ctl, "INSERT INTO tollgate.schema_migrations(version) VALUES ($1)", 1, params,
              NULL) == TG_OK &&
        tg_db_exec_script(ctl->db, "COMMIT", ctl->err, sizeof(ctl->err)) == TG_OK) {
        printf("applied %s\n", version);
        rc = TG_OK;
    } else {
        fprintf(stderr, "tollgatectl: could not apply migration \"%s\": %s\n", version,
                ctl->err);
        tg_db_exec_script(ctl->db, "ROLLBACK", ctl->err, sizeof(ctl->err));
    }
    free(sql);
    return rc;
}

static int cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
    const char *dir = option(argc, argv, "--sql-dir");
    if (dir == NULL)
        dir = TG_SQL_DIR;
    if (tg_db_exec_script(ctl->db,
                          "SET client_min_messages = warning;"
                          "CREATE SCHEMA IF NOT EXISTS tollgate;"
                          "CREATE TABLE IF NOT EXISTS tollgate.schema_migrations ("
                          " version text PRIMARY KEY,"
                          " applied_at timestamptz NOT NULL DEFAULT now())",
                          ctl->err, sizeof(ctl->err)) != TG_OK)
        return die("could not prepare migrations: %s", ctl->err);
    char **files;
    size_t n;
    if (list_migrations(dir, &files, &n) != TG_OK)
        return die("could not read migrations directory \"%s\"", dir);
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        if (status == 0 && apply_migration(ctl, dir, files[i]) != TG_OK)
            status = 1;
        free(files[i]);
    }
    free(files);
    if (status == 0)
        printf("database is up to date (%zu migrations)\n", n);
    return status;
}

/* ---- keys ---- */

static int cmd_key_create(struct ctl *ctl, int argc, char **argv)
{
    const char *group = option(argc, argv, "--group");
    const char *user = option(argc, argv, "--user");
    const char *name = option(argc, argv, "--name");
    const char *role = option(argc, argv, "--role");
    if (group == NULL || user == NULL || name == NULL)
        return die("%s", "usage: key create --group G --user U --name N [--role R] [--quiet]");
    unsigned char raw[KEY_RANDOM_BYTES];
    if (tg_crypto_random(raw, sizeof(raw)) != TG_OK)
        return die("%s", "could not read random bytes from the OS");
    char key[3 + 64] = "tg-";
    tg_crypto_base64url(raw, sizeof(raw), key + 3, sizeof(key) - 3);
    unsigned char hash[TG_SHA256_LEN];
    tg_crypto_sha256(key, strlen(key), hash);
    char hash_hex[2 + 2 * TG_SHA256_LEN + 1] = "\\x";
    tg_crypto_hex(hash, sizeof(hash), hash_hex + 2);
    char prefix[KEY_PREFIX_LEN + 1];
    snprintf(prefix, sizeof(prefix), "%s", key);
    const char *params[] = {hash_hex, prefix, name, user, group, role != NULL ? role : "user",
                            ctl->actor};
    struct tg_db_rows rows;
    if (query(ctl, "SELECT tollgate.key_create($1::bytea, $2, $3, $4, $5, $6, $7)", 7, params,
              &rows) != TG_OK)
        return 1;
    if (has_flag(argc, argv, "--quiet")) {
        printf("%s\n", key);
    } else {
        printf("created key %s for user \"%s\" in group \"%s\" (role %s)\n", prefix, user, group,
               params[5]);
        printf("key (shown once, store it now): %s\n", key);
    }
    return 0;
}

static int cmd_key_list(struct ctl *ctl)
{
    struct tg_db_rows rows;
    if (query(ctl,
              "SELECT prefix, name, user_id, group_id, role, status,"
              " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
              " coalesce(to_char(last_used_at AT TIME ZONE 'UTC',"
              " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-')"
              " FROM tollgate.key_list ORDER BY created_at, prefix",
              0, NULL, &rows) != TG_OK)
        return 1;
    printf("%-12s %-24s %-16s %-16s %-8s %-8s %-20s %s\n", "PREFIX", "NAME", "USER", "GROUP",
           "ROLE", "STATUS", "CREATED", "LAST_USED");
    for (int i = 0; i < rows.n_rows; i++) {
        const char **c = rows.cells + i * rows.n_cols;
        printf("%-12s %-24s %-16s %-16s %-8s %-8s %-20s %s\n", c[0], c[1], c[2], c[3], c[4],
               c[5], c[6], c[7]);
    }
    return 0;
}

static int cmd_key_revoke(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 1)
        return die("%s", "usage: key revoke PREFIX");
    const char *params[] = {argv[0], ctl->actor};
    struct tg_db_rows rows;
    if (query(ctl, "SELECT tollgate.key_revoke($1, $2)", 2, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL || strcmp(rows.cells[0], "t") != 0)
        return die("no key with prefix \"%s\"", argv[0]);
    printf("revoked key %s\n", argv[0]);
    return 0;
}

/* ---- quotas ---- */

/* --group G | --user U | --key PREFIX into kind and subject. */
static int quota_subject(int argc, char **argv, const char **kind, const char **subject)
{
    static const char *const flags[][2] = {{"--group", "group"}, {"--user", "user"},
                                           {"--key", "key"}};
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
    } else {
        char *end;
        errno = 0;
        value = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0')
            return die("invalid %s amount \"%s\" (a whole number)", metric, text);
    }
    snprintf(out, size, "%lld", (long long)value);
    return 0;
}

static int quota_show(struct ctl *ctl, const char *kind, const char *subject)
{
    const char *params[] = {kind, subject};
    struct tg_db_rows rows;
    if (query(ctl,
              "SELECT subject_kind, subject, metric, \"window\", limit_value, used, reserved,"
              " remaining, to_char(window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
              " FROM tollgate.quota_list"
              " WHERE ($1::text IS NULL OR subject_kind = $1) AND ($2::text IS NULL OR subject = $2)"
              " ORDER BY subject_kind, subject, metric, \"window\"",
              2, params, &rows) != TG_OK)
        return 1;
    printf("%-6s %-20s %-8s %-6s %16s %16s %16s %16s %s\n", "KIND", "SUBJECT", "METRIC",
           "WINDOW", "LIMIT", "USED", "RESERVED", "REMAINING", "RESETS");
    for (int i = 0; i < rows.n_rows; i++) {
        const char **c = rows.cells + i * rows.n_cols;
        char limit[32], used[32], reserved[32], remaining[32];
        const char *in[] = {c[4], c[5], c[6], c[7]};
        char *out[] = {limit, used, reserved, remaining};
        for (int k = 0; k < 4; k++) {
            if (strcmp(c[2], "usd") == 0 && in[k] != NULL)
                tg_usage_format_usd(strtoll(in[k], NULL, 10), out[k], 32);
            else
                snprintf(out[k], 32, "%s", in[k] != NULL ? in[k] : "-");
        }
        printf("%-6s %-20s %-8s %-6s %16s %16s %16s %16s %s\n", c[0], c[1], c[2], c[3], limit,
               used, reserved, remaining, c[8] != NULL ? c[8] : "never");
    }
    return 0;
}

static int cmd_quota(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 1)
        return die("%s", "usage: quota set|adjust|reset|show|rollover|sweep ...");
    const char *verb = argv[0];
    if (strcmp(verb, "rollover") == 0 || strcmp(verb, "sweep") == 0) {
        const char *params[] = {ctl->actor};
        struct tg_db_rows rows;
        bool roll = strcmp(verb, "rollover") == 0;
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
    const char *kind, *subject;
    if (strcmp(verb, "show") == 0) {
        kind = subject = NULL;
        if (argc > 1 && quota_subject(argc, argv, &kind, &subject) != 0)
            return 1;
        return quota_show(ctl, kind, subject);
    }
    if (quota_subject(argc, argv, &kind, &subject) != 0)
        return 1;
    const char *metric = option(argc, argv, "--metric");
    const char *window = option(argc, argv, "--window");
    if (metric == NULL || window == NULL)
        return die("%s", "quota needs --metric usd|tokens|requests and --window "
                         "minute|hour|day|month|total");
    char amount[32] = "";
    const char *sql;
    if (strcmp(verb, "set") == 0) {
        const char *limit = option(argc, argv, "--limit");
        if (limit == NULL)
            return die("%s", "quota set needs --limit N");
        if (quota_amount(metric, limit, amount, sizeof(amount)) != 0)
            return 1;
        sql = "SELECT tollgate.quota_set($1, $2, $3, $4, $6::bigint, $5)";
    } else if (strcmp(verb, "adjust") == 0) {
        const char *by = option(argc, argv, "--by");
        if (by == NULL)
            return die("%s", "quota adjust needs --by +N or --by -N");
        if (quota_amount(metric, by, amount, sizeof(amount)) != 0)
            return 1;
        sql = "SELECT tollgate.quota_adjust($1, $2, $3, $4, $6::bigint, $5)";
    } else if (strcmp(verb, "reset") == 0) {
        sql = "SELECT tollgate.quota_reset($1, $2, $3, $4, $5)";
    } else {
        return die("unknown quota command \"%s\"", verb);
    }
    /* the amount goes last so that reset simply passes one parameter fewer */
    const char *params[] = {kind, subject, metric, window, ctl->actor, amount};
    int n_params = strcmp(verb, "reset") == 0 ? 5 : 6;
    struct tg_db_rows rows;
    if (query(ctl, sql, n_params, params, &rows) != TG_OK)
        return 1;
    printf("quota %s: %s \"%s\" %s per %s\n", verb, kind, subject, metric, window);
    return quota_show(ctl, kind, subject);
}

static int dispatch(struct ctl *ctl, int argc, char **argv)
{
    if (strcmp(argv[0], "quota") == 0)
        return cmd_quota(ctl, argc - 1, argv + 1);
    if (strcmp(argv[0], "migrate") == 0)
        return cmd_migrate(ctl, argc - 1, argv + 1);
    if (strcmp(argv[0], "key") == 0 && argc >= 2) {
        if (strcmp(argv[1], "create") == 0)
            return cmd_key_create(ctl, argc - 2, argv + 2);
        if (strcmp(argv[1], "list") == 0)
            return cmd_key_list(ctl);
        if (strcmp(argv[1], "revoke") == 0)
            return cmd_key_revoke(ctl, argc - 2, argv + 2);
    }
    return die("unknown command \"%s\" (try: migrate, key create|list|revoke, quota ...)",
               argv[0]);
}

static const char *who_am_i(void)
{
    const char *sudo_user = getenv("SUDO_USER");
    if (sudo_user != NULL)
        return sudo_user;
    struct passwd *pw = getpwuid(getuid());
    return pw != NULL ? pw->pw_name : "unknown";
}

int main(int argc, char **argv)
{
    const char *config_path = getenv("TOLLGATE_CONFIG");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else
            return die("unknown option \"%s\"", argv[i]);
    }
    if (i >= argc || config_path == NULL) {
        fprintf(stderr, "usage: tollgatectl -c CONFIG.json COMMAND ...\n"
                        "  migrate [--sql-dir DIR]\n"
                        "  key create --group G --user U --name N [--role R] [--quiet]\n"
                        "  key list\n"
                        "  key revoke PREFIX\n"
                        "  quota set|adjust|reset --group G | --user U | --key PREFIX\n"
                        "        --metric usd|tokens|requests --window minute|hour|day|month|total\n"
                        "        [--limit N | --by +-N]   (usd in dollars, e.g. 500.00)\n"
                        "  quota show [--group G | --user U | --key PREFIX]\n"
                        "  quota rollover        (cron: roll every window that passed)\n"
                        "  quota sweep           (release expired reservations)\n"
                        "environment: TOLLGATE_NOW overrides the clock (tests)\n");
        return 2;
    }
    char *db_url = NULL;
    char err[512];
    if (tg_config_load_db_url(config_path, &db_url, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct ctl ctl = {0};
    ctl.arena = tg_arena_new(64 * 1024);
    char actor[128];
    snprintf(actor, sizeof(actor), "cli:%s", who_am_i());
    ctl.actor = actor;
    ctl.db = tg_db_connect(db_url, ctl.err, sizeof(ctl.err));
    int status;
    const char *now = getenv("TOLLGATE_NOW");
    if (ctl.db == NULL) {
        status = die("%s", ctl.err);
    } else if (now != NULL && now[0] != '\0' &&
               query(&ctl, "SELECT set_config('tollgate.now', $1, false)", 1,
                     (const char *const[]){now}, NULL) != TG_OK) {
        status = 1;
    } else {
        status = dispatch(&ctl, argc - i, argv + i);
    }
    tg_db_close(ctl.db);
    tg_arena_free(ctl.arena);
    free(db_url);
    return status;
}
