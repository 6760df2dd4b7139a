/*
 * test_holder.c — holder.c: this process's name and domain, and which holder
 * names the sweeper may judge dead (a gone pid, a reused pid) and which never
 * (another host's, another PID namespace's, the old "host:pid" form, garbage).
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "holder.h"

static int setup(void **state)
{
    (void)state;
    return tg_holder_init() == TG_OK ? 0 : -1;
}

static void test_name_is_domain_pid_start(void **state)
{
    (void)state;
    const char *domain = tg_holder_domain(), *name = tg_holder_name();
    size_t dlen = strlen(domain);
    assert_int_equal(strncmp(name, domain, dlen), 0);
    char want[64];
    snprintf(want, sizeof(want), ":%ld:", (long)getpid());
    assert_int_equal(strncmp(name + dlen, want, strlen(want)), 0);
    assert_true(strtoll(name + dlen + strlen(want), NULL, 10) > 0); /* the start time */
    assert_non_null(strstr(domain, tg_holder_host()));
    assert_null(strchr(domain, ':'));
    assert_int_equal(domain[strlen(tg_holder_host())], '/');
}

static void test_own_name_is_alive(void **state)
{
    (void)state;
    assert_false(tg_holder_is_dead(tg_holder_name()));
}

static void test_gone_and_reused_pids_are_dead(void **state)
{
    (void)state;
    char name[400];
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    assert_true(child > 0);
    assert_int_equal(waitpid(child, NULL, 0), child); /* reaped: no such pid now */
    snprintf(name, sizeof(name), "%s:%ld:12345", tg_holder_domain(), (long)child);
    assert_true(tg_holder_is_dead(name));
    /* this very pid, started at another time: a reused pid */
    snprintf(name, sizeof(name), "%s:%ld:1", tg_holder_domain(), (long)getpid());
    assert_true(tg_holder_is_dead(name));
}

static void test_other_domains_and_garbage_are_never_dead(void **state)
{
    (void)state;
    char name[400];
    const char *host = tg_holder_host();
    snprintf(name, sizeof(name), "%s:4194303", host); /* the old form */
    assert_false(tg_holder_is_dead(name));
    snprintf(name, sizeof(name), "%s/00000000-0000-0000-0000-000000000000/1:4194303:1", host);
    assert_false(tg_holder_is_dead(name)); /* same host name, another boot */
    snprintf(name, sizeof(name), "%sx:4194303:1", tg_holder_domain());
    assert_false(tg_holder_is_dead(name)); /* a domain that only starts like ours */
    const char *garbage[] = {"", ":", "x", "::", "a:b:c"};
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
        assert_false(tg_holder_is_dead(garbage[i]));
    const char *ours_bad[] = {":", ":0:1", ":-5:1", ":12", ":12:", ":12:1x", ":x:1"};
    for (size_t i = 0; i < sizeof(ours_bad) / sizeof(ours_bad[0]); i++) {
        snprintf(name, sizeof(name), "%s%s", tg_holder_domain(), ours_bad[i]);
        assert_false(tg_holder_is_dead(name));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_is_domain_pid_start),
        cmocka_unit_test(test_own_name_is_alive),
        cmocka_unit_test(test_gone_and_reused_pids_are_dead),
        cmocka_unit_test(test_other_domains_and_garbage_are_never_dead),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
