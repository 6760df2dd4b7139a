/*
 * ops.c — tollgatectl's operations on the installation rather than on what it
 * accounts for: migrate (the runner is migrate.c), usage maintain (the usage
 * partitions, sql/006_usage_partitions.sql) and config show (the masking is
 * config_mask.c's), the one command that needs no database.
 */
#include <jansson.h>
#include <stdio.h>

#include "config_mask.h"
#include "ctl.h"
#include "db.h"
#include "migrate.h"

#ifndef TG_SQL_DIR
#define TG_SQL_DIR "/usr/local/share/tollgate/sql"
#endif

/*
 * Migrates, then warns about each model of the config without a price in force
 * (reserve refuses its requests). The exit status is the migration's: an
 * unpriced model is for `price set` to fix once the schema is there.
 */
int tg_ctl_ops_migrate(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *dir = tg_ctl_option(argc, argv, "--sql-dir");
    if (tg_migrate_run(ctl->db, dir != NULL ? dir : TG_SQL_DIR, stdout, ctl->err,
                       sizeof(ctl->err)) != TG_OK)
        return tg_ctl_die("%s", ctl->err);
    struct tg_db_rows rows;
    if (tg_ctl_prices_unpriced(ctl, &rows) != 0) {
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

int tg_ctl_ops_usage_maintain(struct tg_ctl *ctl, int argc, char **argv)
{
    int64_t ahead = 3;
    const char *text = tg_ctl_option(argc, argv, "--ahead");
    if (text != NULL && tg_ctl_parse_whole(text, 0, 120, &ahead) != TG_OK)
        return tg_ctl_die("%s", "--ahead must be a whole number of months from 0 to 120");
    char ahead_text[8];
    snprintf(ahead_text, sizeof(ahead_text), "%d", (int)ahead);
    const char *params[] = {ahead_text};
    struct tg_db_rows created, detached, mcp_created;
    if (tg_ctl_query(ctl, "SELECT tollgate.usage_partitions_ensure($1::int)", 1, params,
                     &created) != TG_OK ||
        tg_ctl_query(ctl, "SELECT tollgate.mcp_calls_partitions_ensure($1::int)", 1, params,
                     &mcp_created) != TG_OK ||
        tg_ctl_query(ctl, "SELECT tollgate.usage_partitions_detach()", 0, NULL, &detached) != TG_OK)
        return 1;
    printf("usage partitions: %s created\n", created.n_rows == 1 ? created.cells[0] : "?");
    printf("mcp_calls partitions: %s created\n",
           mcp_created.n_rows == 1 ? mcp_created.cells[0] : "?");
    for (int i = 0; i < detached.n_rows; i++)
        printf("detached %s (its rows are kept in tollgate.%s until you drop it)\n",
               detached.cells[i], detached.cells[i]);
    return 0;
}

int tg_ctl_ops_config_show(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *path = tg_ctl_option(argc, argv, "-c");
    if (path == NULL)
        path = ctl->config_path;
    if (path == NULL)
        return tg_ctl_die("%s", "which config? give -c CONFIG or set TOLLGATE_CONFIG");
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return tg_ctl_die("could not read config \"%s\": %s (line %d)", path, jerr.text, jerr.line);
    int status = 0;
    if (tg_config_mask(root) != TG_OK)
        status = tg_ctl_die("%s", "out of memory");
    else if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
             putchar('\n') == EOF)
        status = tg_ctl_die("%s", "could not write the config");
    json_decref(root);
    return status;
}
