/*
 * migrate.c — the migration runner.
 */
#include "migrate.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "db.h"

static const char prepare_sql[] = "SET client_min_messages = warning;"
                                  "CREATE SCHEMA IF NOT EXISTS tollgate;"
                                  "CREATE TABLE IF NOT EXISTS tollgate.schema_migrations ("
                                  " version text PRIMARY KEY,"
                                  " applied_at timestamptz NOT NULL DEFAULT now())";

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

/* Migration files are "NNN_name.sql"; sorted by name. Caller frees each and the array. */
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
        if (len < 8 || strcmp(e->d_name + len - 4, ".sql") != 0 || e->d_name[0] < '0' ||
            e->d_name[0] > '9')
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

/* Applies file unless its version is recorded; inside one transaction with its record. */
static int apply(struct tg_db_conn *db, struct tg_arena *arena, const char *dir, const char *file,
                 FILE *out, char *err, size_t err_size)
{
    char version[256], path[4096], why[1024];
    snprintf(version, sizeof(version), "%.*s", (int)(strlen(file) - 4), file);
    const char *params[] = {version};
    struct tg_db_rows rows;
    if (tg_db_query(db, arena, "SELECT 1 FROM tollgate.schema_migrations WHERE version = $1", 1,
                    params, &rows, err, err_size) != TG_OK)
        return TG_ERROR;
    if (rows.n_rows > 0)
        return TG_OK;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    char *sql = read_file(path);
    if (sql == NULL) {
        snprintf(err, err_size, "could not read migration \"%s\"", path);
        return TG_ERROR;
    }
    int rc = TG_ERROR;
    if (tg_db_exec_script(db, "BEGIN", why, sizeof(why)) == TG_OK &&
        tg_db_exec_script(db, sql, why, sizeof(why)) == TG_OK &&
        tg_db_query(db, arena, "INSERT INTO tollgate.schema_migrations(version) VALUES ($1)", 1,
                    params, NULL, why, sizeof(why)) == TG_OK &&
        tg_db_exec_script(db, "COMMIT", why, sizeof(why)) == TG_OK) {
        fprintf(out, "applied %s\n", version);
        rc = TG_OK;
    } else {
        snprintf(err, err_size, "could not apply migration \"%s\": %s", version, why);
        tg_db_exec_script(db, "ROLLBACK", why, sizeof(why));
    }
    free(sql);
    return rc;
}

int tg_migrate_run(struct tg_db_conn *db, const char *dir, FILE *out, char *err, size_t err_size)
{
    char why[1024];
    if (tg_db_exec_script(db, prepare_sql, why, sizeof(why)) != TG_OK) {
        snprintf(err, err_size, "could not prepare migrations: %s", why);
        return TG_ERROR;
    }
    char **files;
    size_t n;
    if (list_migrations(dir, &files, &n) != TG_OK) {
        snprintf(err, err_size, "could not read migrations directory \"%s\"", dir);
        return TG_ERROR;
    }
    struct tg_arena *arena = tg_arena_new(4096);
    int rc = arena != NULL ? TG_OK : TG_ERROR;
    for (size_t i = 0; i < n; i++) {
        if (rc == TG_OK)
            rc = apply(db, arena, dir, files[i], out, err, err_size);
        free(files[i]);
    }
    free(files);
    tg_arena_free(arena);
    if (rc == TG_OK)
        fprintf(out, "database is up to date (%zu migrations)\n", n);
    return rc;
}
