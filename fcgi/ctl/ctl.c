/*
 * ctl.c — the helpers every tollgatectl command uses: errors on stderr, options
 * from the command line, queries that report the database's message, tables on
 * stdout, and the list commands, which are a statement and its columns (ctl.h).
 * Which commands there are and how a command line is checked is main.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "db.h"

int tg_ctl_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tollgatectl: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int tg_ctl_usage(const struct tg_ctl_command *cmd, const char *problem)
{
    tg_ctl_die("%s", problem);
    fprintf(stderr, "usage: tollgatectl -c CONFIG %s%s%s %s\n", cmd->noun, cmd->verb ? " " : "",
            cmd->verb ? cmd->verb : "", cmd->args);
    return 2;
}

/* ---- options ---- */

const char *tg_ctl_option(int argc, char **argv, const char *flag)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return argv[i + 1];
    return NULL;
}

bool tg_ctl_has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return true;
    return false;
}

int tg_ctl_allow_list(int argc, char **argv, const char *flag, const char *all_flag,
                      const char **list, bool *given)
{
    *list = tg_ctl_option(argc, argv, flag);
    bool all = tg_ctl_has_flag(argc, argv, all_flag);
    *given = *list != NULL || all;
    if (*list != NULL && all)
        return tg_ctl_die("give %s or %s, not both", flag, all_flag);
    size_t len = *list != NULL ? strlen(*list) : 0;
    if (len > 0 && ((*list)[0] == ',' || (*list)[len - 1] == ',' || strstr(*list, ",,")))
        return tg_ctl_die("%s \"%s\" has an empty entry", flag, *list);
    return 0;
}

int tg_ctl_parse_whole(const char *text, int64_t min, int64_t max, int64_t *value)
{
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || parsed < min || parsed > max)
        return TG_ERROR;
    *value = parsed;
    return TG_OK;
}

/* ---- queries ---- */

int tg_ctl_query(struct tg_ctl *ctl, const char *sql, int n, const char *const *params,
                 struct tg_db_rows *rows)
{
    if (tg_db_query(ctl->db, ctl->arena, sql, n, params, rows, ctl->err, sizeof(ctl->err)) !=
        TG_OK) {
        const char *message = ctl->err;
        if (strncmp(message, "ERROR:", 6) == 0)
            for (message += 6; *message == ' ';)
                message++;
        tg_ctl_die("%s", message);
        return TG_ERROR;
    }
    return TG_OK;
}

/* ---- tables ---- */

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

void tg_ctl_print_table(const char *headers, const struct tg_db_rows *rows)
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

int tg_ctl_list(struct tg_ctl *ctl, int argc, char **argv)
{
    (void)argc, (void)argv;
    struct tg_db_rows rows;
    if (tg_ctl_query(ctl, ctl->cmd->sql, 0, NULL, &rows) != TG_OK)
        return 1;
    tg_ctl_print_table(ctl->cmd->columns, &rows);
    return 0;
}
