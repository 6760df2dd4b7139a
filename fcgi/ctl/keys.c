/*
 * keys.c — tollgatectl key create, revoke, rotate and update. The key material
 * (secret, prefix, hash) is auth_key.c's; what a key may be changed to is
 * tollgate.key_create, key_rotate and key_update's (sql/). A new secret is
 * printed once and never stored. key list is a list command (main.c).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "auth_key.h"
#include "ctl.h"
#include "db.h"
#include "jsafe.h"

#define GRACE_MAX_S 2592000 /* 30 days, the admin API's limit too (admin.c) */

// clang-format off
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
// clang-format on

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
        return tg_ctl_die("could not use the %s given (not UTF-8?)", field);
    return 0;
}

/*
 * The key_update changes the options ask for, as jsonb text in the arena, or NULL
 * for none: --models/--all-models, --expires/--no-expiry,
 * --trusted-attribution on|off, and with identity also --name and --role.
 */
static int key_changes(struct tg_ctl *ctl, int argc, char **argv, bool identity, const char **text)
{
    const char *name = identity ? tg_ctl_option(argc, argv, "--name") : NULL;
    const char *role = identity ? tg_ctl_option(argc, argv, "--role") : NULL;
    const char *expires = tg_ctl_option(argc, argv, "--expires");
    const char *trusted = tg_ctl_option(argc, argv, "--trusted-attribution");
    bool no_expiry = tg_ctl_has_flag(argc, argv, "--no-expiry");
    const char *models;
    bool models_given;
    *text = NULL;
    if (tg_ctl_allow_list(argc, argv, "--models", "--all-models", &models, &models_given) != 0)
        return 1;
    if (expires != NULL && no_expiry)
        return tg_ctl_die("%s", "give --expires or --no-expiry, not both");
    if (trusted != NULL && strcmp(trusted, "on") != 0 && strcmp(trusted, "off") != 0)
        return tg_ctl_die("--trusted-attribution takes on or off, not \"%s\"", trusted);
    json_t *changes = json_object();
    int rc = changes != NULL ? 0 : tg_ctl_die("%s", "out of memory");
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
        char *dump = tg_jsafe_dumps(changes, JSON_COMPACT);
        *text = dump != NULL ? tg_arena_strdup(ctl->arena, dump) : NULL;
        free(dump);
        rc = *text != NULL ? 0 : tg_ctl_die("%s", "out of memory");
    }
    json_decref(changes);
    return rc;
}

static void print_new_key(int argc, char **argv, const struct tg_new_key *k)
{
    if (tg_ctl_has_flag(argc, argv, "--quiet"))
        printf("%s\n", k->key);
    else
        printf("key (shown once, store it now): %s\n", k->key);
}

int tg_ctl_keys_create(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *group = tg_ctl_option(argc, argv, "--group");
    const char *user = tg_ctl_option(argc, argv, "--user");
    const char *name = tg_ctl_option(argc, argv, "--name");
    const char *role = tg_ctl_option(argc, argv, "--role");
    const char *changes;
    if (group == NULL || user == NULL || name == NULL)
        return tg_ctl_usage(ctl->cmd, "key create needs --group, --user and --name");
    if (key_changes(ctl, argc, argv, false, &changes) != 0)
        return 1;
    struct tg_new_key k;
    if (tg_auth_key_generate(&k) != TG_OK)
        return tg_ctl_die("%s", "could not read random bytes from the OS");
    const char *params[] = {k.hash_bytea, k.prefix, name, user, group, role != NULL ? role : "user",
                            ctl->actor,   changes};
    /* the access options go in the same statement: the key never exists without them */
    const char *sql = changes == NULL
                          ? "SELECT tollgate.key_create($1::bytea, $2, $3, $4, $5, $6, $7)"
                          : "SELECT tollgate.key_create($1::bytea, $2, $3, $4, $5, $6, $7),"
                            " tollgate.key_update($2, $8::jsonb, $7)";
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, sql, changes == NULL ? 7 : 8, params, &rows) != TG_OK)
        return 1;
    if (!tg_ctl_has_flag(argc, argv, "--quiet"))
        printf("created key %s for user \"%s\" in group \"%s\" (role %s)\n", k.prefix, user, group,
               params[5]);
    print_new_key(argc, argv, &k);
    return 0;
}

int tg_ctl_keys_revoke(struct tg_ctl *ctl, int argc, char **argv)
{
    (void)argc;
    const char *params[] = {argv[0], ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, "SELECT tollgate.key_revoke($1, $2)", 2, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL || strcmp(rows.cells[0], "t") != 0)
        return tg_ctl_die("no key with prefix \"%s\"", argv[0]);
    printf("revoked key %s\n", argv[0]);
    return 0;
}

int tg_ctl_keys_rotate(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *grace = tg_ctl_option(argc, argv, "--grace-s");
    int64_t grace_s = 3600;
    if (grace != NULL && tg_ctl_parse_whole(grace, 0, GRACE_MAX_S, &grace_s) != TG_OK)
        return tg_ctl_die("invalid --grace-s \"%s\" (whole seconds, 0 to %d)", grace, GRACE_MAX_S);
    char grace_text[24];
    snprintf(grace_text, sizeof(grace_text), "%lld", (long long)grace_s);
    struct tg_new_key k;
    if (tg_auth_key_generate(&k) != TG_OK)
        return tg_ctl_die("%s", "could not read random bytes from the OS");
    const char *params[] = {argv[0], k.hash_bytea, k.prefix, grace_text, ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, key_rotate_sql, 5, params, &rows) != TG_OK)
        return 1;
    if (rows.n_rows == 0 || rows.cells[0] == NULL)
        return tg_ctl_die("no active key with prefix \"%s\"", argv[0]);
    if (!tg_ctl_has_flag(argc, argv, "--quiet")) {
        printf("rotated key %s: its new prefix is %s\n", argv[0], k.prefix);
        if (grace_s > 0)
            printf("the old key works until %s\n", rows.cells[1]);
        else
            printf("the old key no longer works\n");
    }
    print_new_key(argc, argv, &k);
    return 0;
}

int tg_ctl_keys_update(struct tg_ctl *ctl, int argc, char **argv)
{
    const char *changes;
    if (key_changes(ctl, argc, argv, true, &changes) != 0)
        return 1;
    if (changes == NULL)
        return tg_ctl_usage(ctl->cmd, "key update needs something to change");
    const char *params[] = {argv[0], changes, ctl->actor};
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, key_update_sql, 3, params, &rows) != TG_OK)
        return 1;
    const char **c = rows.cells;
    if (rows.n_rows == 0 || c[0] == NULL)
        return tg_ctl_die("no key with prefix \"%s\"", argv[0]);
    printf("updated key %s: name \"%s\", role %s, models %s, expires %s, trusted attribution %s\n",
           c[0], c[1], c[2], c[3], c[4], c[5]);
    return 0;
}
