/*
 * fuzz.h — what the harnesses share: the libFuzzer entry points' prototypes,
 * splitting an input into a selector byte and the rest, and a process-lifetime
 * config parsed once. Header-only (static inline), as tests/unit/unit.h.
 */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A config the harness cannot run without: parsed once, aborts when it does not parse. */
static inline struct tg_config *fuzz_config(const char *text)
{
    struct tg_config *config = NULL;
    char err[512];
    if (tg_config_parse(text, &config, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz: the harness's config does not parse: %s\n", err);
        abort();
    }
    return config;
}

/*
 * The directory of this checkout's tests/: $SRCDIR/tests when SRCDIR is set (the
 * test runner sets it), else found from where this header was compiled.
 */
static inline const char *fuzz_tests_dir(void)
{
    static char dir[4096];
    const char *srcdir = getenv("SRCDIR");
    if (dir[0] == '\0' && srcdir != NULL && srcdir[0] != '\0')
        snprintf(dir, sizeof(dir), "%s/tests", srcdir);
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "%s", __FILE__);
        char *slash = dir + sizeof("") - 1;
        for (char *p = dir; *p != '\0'; p++)
            if (*p == '/')
                slash = p;
        *slash = '\0'; /* tests/fuzz */
        for (char *p = slash; p > dir; p--)
            if (*p == '/') {
                *p = '\0'; /* tests */
                break;
            }
    }
    return dir;
}

#endif
