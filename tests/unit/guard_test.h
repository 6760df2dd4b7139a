/*
 * guard_test.h — what the unit tests of the guard's reply and stream maskers
 * share: the shipped rule set (conf/guardrails.json) loaded once per group, as
 * cmocka setup and teardown. Header-only (static), as unit.h; include it after
 * cmocka.h, jansson.h, guard.h and unit.h.
 */
#ifndef TG_TEST_GUARD_TEST_H
#define TG_TEST_GUARD_TEST_H

#include <stdio.h>
#include <stdlib.h>

static struct tg_guard_rules *rules; /* the shipped set, for the group's tests */

/* Group setup: loads conf/guardrails.json into rules (0, or -1 with why on stderr). */
static int load_shipped(void **state)
{
    (void)state;
    char *dir = unit_data_dir("guard");
    char *conf_dir = dir != NULL ? unit_path(dir, "../../../../conf") : NULL;
    size_t len = 0;
    char *text = conf_dir != NULL ? unit_read_file(conf_dir, "guardrails.json", &len) : NULL;
    json_t *section = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
    char err[512] = "";
    rules = section != NULL ? tg_guard_load(section, err, sizeof(err)) : NULL;
    json_decref(section);
    free(text);
    free(conf_dir);
    free(dir);
    if (rules == NULL)
        fprintf(stderr, "conf/guardrails.json: %s\n", err);
    return rules != NULL ? 0 : -1;
}

/* Group teardown. */
static int free_rules(void **state)
{
    (void)state;
    tg_guard_free(rules);
    return 0;
}

#endif
