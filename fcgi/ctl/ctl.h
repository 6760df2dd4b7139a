/*
 * ctl.h — what the files of tollgatectl, the admin CLI, share: the run's context,
 * a command's entry in the table, the option and output helpers (ctl.c) and one
 * function per command, grouped by file. Internal to tollgatectl: nothing in
 * libtollgate or the worker includes it.
 *
 * Every action is one of the SQL functions in sql/ (key_create, key_rotate,
 * user_upsert, quota_set, price_set, ...), so psql, cron, the admin API and this
 * tool share one implementation; these files only parse arguments, make key
 * material and print. What a change may do is the SQL functions' business.
 *
 *   main.c      the command table, checking a command line against it, dispatch,
 *               the usage text, connecting
 *   ctl.c       errors, options, queries, tables (tg_ctl_*)
 *   keys.c      key create, revoke, rotate, update (tg_ctl_keys_*)
 *   identity.c  user set, group set, role set, and their delete (tg_ctl_identity_*)
 *   quotas.c    quota set, adjust, reset, delete, show, rollover, sweep (tg_ctl_quotas_*)
 *   prices.c    price set, price check (tg_ctl_prices_*)
 *   reports.c   report, report refresh, export usage (tg_ctl_reports_*)
 *   ops.c       migrate, config show, usage maintain (tg_ctl_ops_*)
 *   mcp.c       mcp grant, revoke, grants; mcp limit set, delete, list (tg_ctl_mcp_*)
 *
 * A command function takes the arguments after its words (argc, argv), already
 * checked against its entry (its positional arguments are there, every option is
 * one it takes, with its value), and returns the exit status: 0, 1 after
 * tg_ctl_die, 2 after tg_ctl_usage.
 */
#ifndef TG_CTL_H
#define TG_CTL_H

#include <stdint.h>

#include "common.h"

struct tg_arena;
struct tg_db_conn;
struct tg_db_rows;
struct tg_ctl_command;

/* One run of tollgatectl. */
struct tg_ctl {
    struct tg_db_conn *db;  /* NULL for config show */
    struct tg_arena *arena; /* the run's; freed at exit */
    const char *actor;      /* "cli:USER", for the audit log */
    const char *config_path;
    const struct tg_ctl_command *cmd; /* the command being run */
    char err[1024];
};

/* A command: its words, its usage, the options it takes and what runs it. */
struct tg_ctl_command {
    const char *noun;
    const char *verb;    /* NULL: a one-word command (migrate) */
    int n_positional;    /* leading arguments (an ID, a PREFIX, a MODEL) */
    const char *args;    /* its usage, after its words */
    const char *options; /* the options it takes, space-separated; "--x=" takes a value */
    int (*run)(struct tg_ctl *ctl, int argc, char **argv);
    const char *sql;     /* the statement of a command run by a shared handler */
    const char *columns; /* a list's headers (tg_ctl_print_table) */
};

/* ---- SQL fragments the statements share ---- */

/* SQL: a timestamptz as "2026-01-31T12:00:00Z" (NULL stays NULL). */
#define SQL_UTC(ts) "to_char(" ts " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

// clang-format off
/* SQL: an allow-list (text[]) as "a,b"; NULL (no restriction) as "all", empty as "none". */
#define SQL_ALLOWED(list)                                                                      \
    "CASE WHEN " list " IS NULL THEN 'all' WHEN cardinality(" list ") = 0 THEN 'none'"         \
    " ELSE array_to_string(" list ", ',') END"
// clang-format on

/* ---- errors, options, queries, tables (ctl.c) ---- */

/* Prints "tollgatectl: error: " and the message to stderr; returns 1, the exit status. */
int tg_ctl_die(const char *fmt, ...) TG_PRINTF(1, 2);

/* Says what is wrong with the command line (problem), then how cmd is used; returns 2. */
int tg_ctl_usage(const struct tg_ctl_command *cmd, const char *problem);

/* The value after flag in argv (borrowed from argv), or NULL. */
const char *tg_ctl_option(int argc, char **argv, const char *flag);

/* Whether flag is one of argv. */
bool tg_ctl_has_flag(int argc, char **argv, const char *flag);

/*
 * An allow-list option: flag a,b (names or globs) or all_flag. *given when either
 * is there; *list is "a,b" ("" allows nothing, borrowed from argv), NULL for all.
 * 0, or 1 after tg_ctl_die (both given, an empty entry).
 */
int tg_ctl_allow_list(int argc, char **argv, const char *flag, const char *all_flag,
                      const char **list, bool *given);

/* text as a whole number in [min, max] into *value; TG_ERROR (value untouched) if not. */
int tg_ctl_parse_whole(const char *text, int64_t min, int64_t max, int64_t *value);

/*
 * Runs sql with n text parameters (NULL for SQL NULL); rows, if not NULL, get
 * its result, allocated in ctl->arena. TG_ERROR after tg_ctl_die with the
 * database's message (without its "ERROR:").
 */
int tg_ctl_query(struct tg_ctl *ctl, const char *sql, int n, const char *const *params,
                 struct tg_db_rows *rows);

/*
 * Prints rows (NULL cells as "-") under headers, the column names space-separated
 * ("KIND SUBJECT >USED": a leading '>' right-aligns a column of numbers); each
 * column is as wide as its widest cell.
 */
void tg_ctl_print_table(const char *headers, const struct tg_db_rows *rows);

/* A list command (key list, user list, ...): ctl->cmd->sql's rows under ctl->cmd->columns. */
int tg_ctl_list(struct tg_ctl *ctl, int argc, char **argv);

/* ---- keys (keys.c) ---- */

/* key create: a new key, with its access options in the same statement; prints it once. */
int tg_ctl_keys_create(struct tg_ctl *ctl, int argc, char **argv);

/* key revoke PREFIX. */
int tg_ctl_keys_revoke(struct tg_ctl *ctl, int argc, char **argv);

/* key rotate PREFIX: a new secret for the same key; the old one works for --grace-s. */
int tg_ctl_keys_rotate(struct tg_ctl *ctl, int argc, char **argv);

/* key update PREFIX: name, role, models, expiry, trusted attribution. */
int tg_ctl_keys_update(struct tg_ctl *ctl, int argc, char **argv);

/* ---- users, groups, roles (identity.c) ---- */

/* user set ID --group G: creates the user, or moves it to another group. */
int tg_ctl_identity_user_set(struct tg_ctl *ctl, int argc, char **argv);

/*
 * group set, role set: what a group's or a role's members may use. ctl->cmd->sql
 * takes ($1 id, $2 models "a,b", $3 keep the stored models, $4 endpoints, $5 keep
 * the stored endpoints, $6 actor) and answers the two lists as stored.
 */
int tg_ctl_identity_allow_set(struct tg_ctl *ctl, int argc, char **argv);

/*
 * user, group, role delete: ctl->cmd->sql takes ($1 id, $2 actor) and answers
 * whether there was one.
 */
int tg_ctl_identity_delete(struct tg_ctl *ctl, int argc, char **argv);

/* ---- quotas (quotas.c) ---- */

/*
 * quota set, adjust, reset, delete: ctl->cmd->sql takes ($1 kind, $2 subject,
 * $3 metric, $4 window, $5 actor) and for set and adjust $6 the amount; prints
 * the subject's quotas after.
 */
int tg_ctl_quotas_change(struct tg_ctl *ctl, int argc, char **argv);

/* quota show [SUBJECT]. */
int tg_ctl_quotas_show(struct tg_ctl *ctl, int argc, char **argv);

/* quota rollover, quota sweep (cron). */
int tg_ctl_quotas_cron(struct tg_ctl *ctl, int argc, char **argv);

/* ---- prices (prices.c) ---- */

/* price set MODEL: the rates from a time on; prints the row as stored. */
int tg_ctl_prices_set(struct tg_ctl *ctl, int argc, char **argv);

/* price check: the config's models without a price in force; exit status 1 if any. */
int tg_ctl_prices_check(struct tg_ctl *ctl, int argc, char **argv);

/*
 * The config's models without a price in force, into rows (one column, in
 * ctl->arena); 0, or 1 after tg_ctl_die.
 */
int tg_ctl_prices_unpriced(struct tg_ctl *ctl, struct tg_db_rows *rows);

/* ---- reports (reports.c) ---- */

/* report refresh (cron): the chargeback views, concurrently. */
int tg_ctl_reports_refresh(struct tg_ctl *ctl, int argc, char **argv);

/* report: chargeback per group, user, key or model (report.c). */
int tg_ctl_reports_report(struct tg_ctl *ctl, int argc, char **argv);

/* export usage: raw usage rows, streamed (report.c). */
int tg_ctl_reports_export_usage(struct tg_ctl *ctl, int argc, char **argv);

/* ---- MCP access (mcp.c) ---- */

/* mcp grant SUBJECT --server GLOB --tools GLOB[,GLOB] [--args JSON]; prints the subject's grants.
 */
int tg_ctl_mcp_grant(struct tg_ctl *ctl, int argc, char **argv);

/* mcp revoke SUBJECT --server GLOB [--tools GLOB[,GLOB]]: exit status 1 when there was none. */
int tg_ctl_mcp_revoke(struct tg_ctl *ctl, int argc, char **argv);

/* mcp grants [SUBJECT] [--format table|csv|json]. */
int tg_ctl_mcp_grants(struct tg_ctl *ctl, int argc, char **argv);

/* mcp limit set --per P [--subject S] (--requests N --window W | --bucket N [--refill N]
 * [--every-ms MS]). */
int tg_ctl_mcp_limit_set(struct tg_ctl *ctl, int argc, char **argv);

/* mcp limit delete ID. */
int tg_ctl_mcp_limit_delete(struct tg_ctl *ctl, int argc, char **argv);

/* mcp limit list [--format table|csv|json]. */
int tg_ctl_mcp_limit_list(struct tg_ctl *ctl, int argc, char **argv);

/* ---- operations (ops.c) ---- */

/* migrate: applies sql/, then warns about each unpriced model of the config. */
int tg_ctl_ops_migrate(struct tg_ctl *ctl, int argc, char **argv);

/* config show: the config with its secrets masked; the one command without a database. */
int tg_ctl_ops_config_show(struct tg_ctl *ctl, int argc, char **argv);

/* usage maintain (cron): usage and mcp_calls partitions ahead, retention. */
int tg_ctl_ops_usage_maintain(struct tg_ctl *ctl, int argc, char **argv);

#endif
