/*
 * quotas.c — tollgatectl quota set, adjust, reset, delete, show, rollover and
 * sweep. A subject is --group G, --user U or --key PREFIX; USD amounts are
 * dollars on the command line and on screen, micro-dollars in the database
 * (usage.c converts). What a change does is tollgate.quota_set, quota_adjust,
 * quota_reset, quota_delete, quota_rollover and sweep_reservations'
 * (sql/003_quotas.sql, sql/005_admin.sql); the change statements are in the
 * command table (main.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "ctl.h"
#include "db.h"
#include "usage.h"

// clang-format off
/* quota show [SUBJECT] */
static const char quota_show_sql[] =
    "SELECT subject_kind, subject, metric, \"window\", limit_value, used, reserved,"
    " remaining, coalesce(" SQL_UTC("window_end") ", 'never') FROM tollgate.quota_list"
    " WHERE ($1::text IS NULL OR subject_kind = $1)"
    " AND ($2::text IS NULL OR subject = $2)"
    " ORDER BY subject_kind, subject, metric, \"window\"";
// clang-format on

/* --group G | --user U | --key PREFIX into kind and subject. */
static int quota_subject(int argc, char **argv, const char **kind, const char **subject)
{
    static const char *const flags[][2] = {
        {"--group", "group"}, {"--user", "user"}, {"--key", "key"}};
    *kind = *subject = NULL;
    for (size_t i = 0; i < TG_ARRAY_LEN(flags); i++) {
        const char *value = tg_ctl_option(argc, argv, flags[i][0]);
        if (value == NULL)
            continue;
        if (*kind != NULL)
            return tg_ctl_die("%s", "name one subject: --group, --user or --key");
        *kind = flags[i][1];
        *subject = value;
    }
    return *kind != NULL ? 0
                         : tg_ctl_die("%s", "name a subject: --group G, --user U or --key PREFIX");
}

/* An amount in the metric's unit: USD as dollars ("500.00"), else whole numbers. */
static int quota_amount(const char *metric, const char *text, char *out, size_t size)
{
    int64_t value;
    if (strcmp(metric, "usd") == 0) {
        if (tg_usage_parse_usd(text, &value) != TG_OK)
            return tg_ctl_die("invalid USD amount \"%s\" (dollars, at most 6 decimals)", text);
    } else if (tg_ctl_parse_whole(text, INT64_MIN, INT64_MAX, &value) != TG_OK) {
        return tg_ctl_die("invalid %s amount \"%s\" (a whole number)", metric, text);
    }
    snprintf(out, size, "%lld", (long long)value);
    return 0;
}

static int quota_show(struct tg_ctl *ctl, const char *kind, const char *subject)
{
    const char *params[] = {kind, subject};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, quota_show_sql, 2, params, &rows) != TG_OK)
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
    tg_ctl_print_table("KIND SUBJECT METRIC WINDOW >LIMIT >USED >RESERVED >REMAINING RESETS",
                       &rows);
    return 0;
}

int tg_ctl_quotas_show(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *kind = NULL, *subject = NULL;
    if (argc > 0 && quota_subject(argc, argv, &kind, &subject) != 0)
        return 1;
    return quota_show(ctl, kind, subject);
}

int tg_ctl_quotas_cron(struct tg_ctl *ctl, int argc, char **argv)
{
    (void)argc, (void)argv;
    const char *params[] = {ctl->actor};
    struct tg_db_rows rows;
    bool roll = strcmp(ctl->cmd->verb, "rollover") == 0;
    if (tg_ctl_query(ctl,
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

int tg_ctl_quotas_change(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *verb = ctl->cmd->verb;
    const char *kind, *subject;
    if (quota_subject(argc, argv, &kind, &subject) != 0)
        return 1;
    const char *metric = tg_ctl_option(argc, argv, "--metric");
    const char *window = tg_ctl_option(argc, argv, "--window");
    const char *amount_flag = strcmp(verb, "set") == 0      ? "--limit"
                              : strcmp(verb, "adjust") == 0 ? "--by"
                                                            : NULL;
    const char *amount_text = amount_flag != NULL ? tg_ctl_option(argc, argv, amount_flag) : NULL;
    if (metric == NULL || window == NULL || (amount_flag != NULL && amount_text == NULL)) {
        char problem[128];
        snprintf(problem, sizeof(problem), "quota %s needs --metric, --window%s%s", verb,
                 amount_flag != NULL ? " and " : "", amount_flag != NULL ? amount_flag : "");
        return tg_ctl_usage(ctl->cmd, problem);
    }
    char amount[32] = "";
    if (amount_text != NULL && quota_amount(metric, amount_text, amount, sizeof(amount)) != 0)
        return 1;
    /* the amount goes last so that reset and delete simply pass one parameter fewer */
    const char *params[] = {kind, subject, metric, window, ctl->actor, amount};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, ctl->cmd->sql, amount_flag != NULL ? 6 : 5, params, &rows) != TG_OK)
        return 1;
    if (strcmp(verb, "delete") == 0 &&
        (rows.n_rows == 0 || rows.cells[0] == NULL || strcmp(rows.cells[0], "t") != 0))
        return tg_ctl_die("no quota %s \"%s\" %s per %s", kind, subject, metric, window);
    printf("quota %s: %s \"%s\" %s per %s\n", verb, kind, subject, metric, window);
    return quota_show(ctl, kind, subject);
}
