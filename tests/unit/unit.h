/*
 * unit.h — small helpers the unit tests share: finding tests/unit/data, reading a
 * case file whole, listing the case directories of a suite, running a suite. Header-only (static
 * inline) because each test binary is built from its one .c file.
 *
 * Data lives in $SRCDIR/tests/unit/data (make check sets SRCDIR); run by hand from
 * the build directory, the path is taken from where this file was compiled.
 */
#ifndef TG_TEST_UNIT_H
#define TG_TEST_UNIT_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The directory of the data suite name ("sse", "config"), malloc'd. */
static inline char *unit_data_dir(const char *suite)
{
    const char *srcdir = getenv("SRCDIR");
    char base[4096];
    if (srcdir != NULL && srcdir[0] != '\0') {
        snprintf(base, sizeof(base), "%s/tests/unit", srcdir);
    } else {
        /* __FILE__ is this header's path as the compiler was given it */
        snprintf(base, sizeof(base), "%s", __FILE__);
        char *slash = strrchr(base, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(base, sizeof(base), ".");
    }
    size_t need = strlen(base) + strlen(suite) + sizeof("/data/");
    char *dir = malloc(need);
    if (dir != NULL)
        snprintf(dir, need, "%s/data/%s", base, suite);
    return dir;
}

/* dir/name joined, malloc'd. */
static inline char *unit_path(const char *dir, const char *name)
{
    size_t need = strlen(dir) + strlen(name) + 2;
    char *path = malloc(need);
    if (path != NULL)
        snprintf(path, need, "%s/%s", dir, name);
    return path;
}

/*
 * The whole of dir/name, NUL-terminated, malloc'd; *len gets its length (may be
 * NULL). NULL when the file does not exist or cannot be read.
 */
static inline char *unit_read_file(const char *dir, const char *name, size_t *len)
{
    char *path = unit_path(dir, name);
    if (path == NULL)
        return NULL;
    FILE *f = fopen(path, "rb");
    free(path);
    if (f == NULL)
        return NULL;
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (cap - used == 1) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + used, 1, cap - used - 1, f);
        if (got == 0)
            break;
        used += got;
    }
    bool failed = ferror(f);
    fclose(f);
    if (buf == NULL || failed) {
        free(buf);
        return NULL;
    }
    buf[used] = '\0';
    if (len != NULL)
        *len = used;
    return buf;
}

static inline int unit_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The names of the case directories under dir (entries not starting with '.'),
 * sorted, malloc'd (free each and the array). Returns the count, or -1 when dir
 * cannot be read.
 */
static inline int unit_list_cases(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    size_t n = 0, cap = 16;
    char **list = malloc(cap * sizeof(*list));
    struct dirent *e;
    while (list != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **grown = realloc(list, cap * 2 * sizeof(*list));
            if (grown == NULL)
                break;
            list = grown;
            cap *= 2;
        }
        list[n] = strdup(e->d_name);
        if (list[n] != NULL)
            n++;
    }
    closedir(d);
    if (list == NULL)
        return -1;
    qsort(list, n, sizeof(*list), unit_cmp_names);
    *names = list;
    return (int)n;
}

/* Drops trailing newlines (an editor's final newline is not part of a value). */
/*
 * Runs a data-driven suite: one cmocka test per case directory of data suite
 * `suite` (sorted), each calling fn with *state = that directory's path (borrowed;
 * a per-case setup may replace it with its own state), then the fixed tests.
 * Returns the failure count, or 1 when the suite has no cases. Include this
 * header after <cmocka.h> to use it.
 */
#ifdef cmocka_unit_test
static inline int unit_run_suite(const char *group, const char *suite, CMUnitTestFunction fn,
                                 CMFixtureFunction setup, CMFixtureFunction teardown,
                                 const struct CMUnitTest *fixed, size_t n_fixed,
                                 CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    char *dir = unit_data_dir(suite);
    char **names = NULL;
    int n = dir != NULL ? unit_list_cases(dir, &names) : -1;
    if (n <= 0) {
        fprintf(stderr, "%s: no cases in %s (set SRCDIR to the source tree)\n", group,
                dir != NULL ? dir : "(null)");
        free(dir);
        return 1;
    }
    size_t total = (size_t)n + n_fixed;
    struct CMUnitTest *tests = calloc(total, sizeof(*tests));
    char **dirs = calloc((size_t)n, sizeof(*dirs));
    if (tests == NULL || dirs == NULL)
        return 1;
    for (int i = 0; i < n; i++) {
        dirs[i] = unit_path(dir, names[i]);
        tests[i] = (struct CMUnitTest){names[i], fn, setup, teardown, dirs[i]};
    }
    if (n_fixed > 0)
        memcpy(tests + n, fixed, n_fixed * sizeof(*fixed));
    int failed = _cmocka_run_group_tests(group, tests, total, group_setup, group_teardown);
    for (int i = 0; i < n; i++) {
        free(dirs[i]);
        free(names[i]);
    }
    free(names);
    free(dirs);
    free(tests);
    free(dir);
    return failed;
}
#endif

static inline void unit_chomp(char *s)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
}

#endif
