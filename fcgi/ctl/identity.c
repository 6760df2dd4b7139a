/*
 * identity.c — tollgatectl user set, group set, role set, and user, group and
 * role delete: who belongs where and what a group's or a role's members may use
 * (tollgate.user_upsert, group_upsert, role_upsert and the *_delete functions,
 * sql/005_admin.sql). The group and role statements and the deletes are in the
 * command table (main.c); the lists are list commands.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "db.h"

int tg_ctl_identity_user_set(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *group = tg_ctl_option(argc, argv, "--group");
    if (group == NULL)
        return tg_ctl_usage(ctl->cmd, "user set needs --group");
    const char *params[] = {argv[0], group, ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl,
                     "SELECT u.id, u.group_id FROM jsonb_populate_record(NULL::tollgate.users,"
                     " tollgate.user_upsert($1, $2, $3)) u",
                     3, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL)
        return tg_ctl_die("could not set user \"%s\"", argv[0]);
    printf("user \"%s\" is in group \"%s\"\n", rows.cells[0], rows.cells[1]);
    return 0;
}

int tg_ctl_identity_allow_set(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *models, *endpoints;
    bool models_given, endpoints_given;
    if (tg_ctl_allow_list(argc, argv, "--models", "--all-models", &models, &models_given) != 0 ||
        tg_ctl_allow_list(argc, argv, "--endpoints", "--all-endpoints", &endpoints,
                          &endpoints_given) != 0)
        return 1;
    const char *params[] = {argv[0],
                            models,
                            models_given ? "false" : "true",
                            endpoints,
                            endpoints_given ? "false" : "true",
                            ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, ctl->cmd->sql, 6, params, &rows) != TG_OK)
        return 1;
    printf("%s \"%s\": models %s, endpoints %s\n", ctl->cmd->noun, argv[0], rows.cells[0],
           rows.cells[1]);
    return 0;
}

int tg_ctl_identity_delete(struct tg_ctl *ctl, int argc, char **argv)
{
    (void)argc;
    const char *params[] = {argv[0], ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, ctl->cmd->sql, 2, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL || strcmp(rows.cells[0], "t") != 0)
        return tg_ctl_die("no %s \"%s\"", ctl->cmd->noun, argv[0]);
    printf("deleted %s \"%s\"\n", ctl->cmd->noun, argv[0]);
    return 0;
}
