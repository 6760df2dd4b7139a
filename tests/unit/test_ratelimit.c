/*
 * test_ratelimit.c — ratelimit.c's local buckets when the host's table is
 * full: a rule is never skipped (the request is refused: 429 in the client's
 * dialect, with retry-after), idle buckets (full again, or of a rule no longer
 * configured) are reused in place, and one request's buckets never take each
 * other's slot. The table is a private copy of the segment's layout
 * (tg_ratelimit_use), so nothing is left in /dev/shm.
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
#include <time.h>

#include "arena.h"
#include "config.h"
#include "ratelimit.h"
#include "request.h"
#include "shm.h"

#define FILL_MS 60000 /* one token a minute: nothing refills while a test runs */

static const char config_head[] =
    "{\"database\": {\"url\": \"postgresql:///x\"},"
    " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
    "                      \"api_key\": \"k\"}},"
    " \"models\": {\"m\": {\"provider\": \"p\"}},"
    " \"rate_limits\": ";

/* Two tokens per user; a second rule per group (three tokens) when asked. */
static const char per_user[] = "[{\"name\": \"per-user\", \"per\": \"user\", \"max_tokens\": 2,"
                               " \"tokens_per_fill\": 1, \"fill_interval_ms\": 60000}]";
static const char per_user_and_group[] =
    "[{\"name\": \"per-user\", \"per\": \"user\", \"max_tokens\": 2,"
    "  \"tokens_per_fill\": 1, \"fill_interval_ms\": 60000},"
    " {\"name\": \"per-group\", \"per\": \"group\", \"max_tokens\": 3,"
    "  \"tokens_per_fill\": 1, \"fill_interval_ms\": 60000}]";
static const char renamed[] = "[{\"name\": \"per-user-v2\", \"per\": \"user\", \"max_tokens\": 2,"
                              " \"tokens_per_fill\": 1, \"fill_interval_ms\": 60000}]";

struct fixture {
    struct tg_shm *table;
    struct tg_config *config;
    struct tg_request r;
};

static struct tg_config *parse(const char *rules)
{
    char text[2048], err[512] = "";
    snprintf(text, sizeof(text), "%s%s}", config_head, rules);
    struct tg_config *c = NULL;
    if (tg_config_parse(text, &c, err, sizeof(err)) != TG_OK)
        fail_msg("config: %s", err);
    return c;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->table = calloc(1, sizeof(*f->table));
    if (f->table == NULL || tg_shm_mutex_init(&f->table->lock) != TG_OK)
        return -1;
    tg_ratelimit_use(f->table);
    f->r.arena = tg_arena_new(4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tg_ratelimit_use(NULL);
    tg_arena_free(f->r.arena);
    tg_config_free(f->config);
    free(f->table);
    free(f);
    return 0;
}

static void use_config(struct fixture *f, const char *rules)
{
    tg_config_free(f->config);
    f->config = parse(rules);
}

/* One request of user (in group) through the local buckets: its return code. */
static int take(struct fixture *f, const char *user, const char *group)
{
    struct tg_request *r = &f->r;
    struct tg_arena *arena = r->arena;
    tg_arena_reset(arena);
    memset(r, 0, sizeof(*r));
    r->arena = arena;
    r->config = f->config;
    r->dialect = TG_DIALECT_OPENAI;
    r->outcome = "ok";
    r->identity.user_id = user;
    r->identity.group_id = group;
    r->path = "/v1/chat/completions";
    r->endpoint_path = "/v1/chat/completions";
    snprintf(r->request_id, sizeof(r->request_id), "00000000-0000-4000-8000-000000000001");
    return tg_ratelimit_take_local(r);
}

/* Fills every slot of the table with a bucket of its own user, each one token down. */
static void fill_table(struct fixture *f, const char *group)
{
    char user[32];
    for (int i = 0; i < TG_SHM_BUCKETS; i++) {
        snprintf(user, sizeof(user), "filler-%d", i);
        if (take(f, user, group) != TG_OK)
            fail_msg("filler %d refused: %s", i, f->r.error.message);
    }
    for (int i = 0; i < TG_SHM_BUCKETS; i++)
        assert_true(f->table->buckets[i].key[0] != '\0');
}

/* Makes every bucket look as if it was last used long ago: refilled, it is full. */
static void age_all(struct fixture *f)
{
    for (int i = 0; i < TG_SHM_BUCKETS; i++)
        f->table->buckets[i].last_fill_ms -= 10 * FILL_MS;
}

static void assert_table_full_refusal(struct tg_request *r)
{
    assert_int_equal(r->error.status, 429);
    assert_string_equal(r->error.type, "rate_limit_error");
    assert_non_null(strstr(r->error.message, "rate-limit table is full"));
    assert_string_equal(r->outcome, "rate_limited");
    assert_non_null(r->resp_headers);
    assert_non_null(strstr(r->resp_headers, "retry-after: "));
}

static void test_full_table_refuses_rather_than_skips(void **state)
{
    struct fixture *f = *state;
    use_config(f, per_user);
    fill_table(f, NULL);
    /* a new subject finds no slot: refused, and again, never admitted unlimited */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(take(f, "newcomer", NULL), TG_DECLINED);
        assert_table_full_refusal(&f->r);
    }
    /* those already in the table keep their buckets */
    assert_int_equal(take(f, "filler-7", NULL), TG_OK);
    assert_int_equal(take(f, "filler-7", NULL), TG_DECLINED);
    assert_non_null(strstr(f->r.error.message, "rate limit \"per-user\" exceeded"));
}

static int by_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_idle_buckets_are_reused(void **state)
{
    struct fixture *f = *state;
    use_config(f, per_user);
    fill_table(f, NULL);
    age_all(f);
    /* every bucket is full again, so carries nothing: the newcomer gets one, enforced */
    assert_int_equal(take(f, "newcomer", NULL), TG_OK);
    assert_int_equal(take(f, "newcomer", NULL), TG_OK);
    assert_int_equal(take(f, "newcomer", NULL), TG_DECLINED);
    assert_non_null(strstr(f->r.error.message, "rate limit \"per-user\" exceeded"));
    /* a filler whose idle bucket is still there finds it (one token down again) */
    int kept = 0;
    char user[32];
    for (int i = 0; i < TG_SHM_BUCKETS && kept < 3; i++) {
        snprintf(user, sizeof(user), "per-user:filler-%d", i);
        for (int s = 0; s < TG_SHM_BUCKETS; s++) {
            if (strcmp(f->table->buckets[s].key, user) != 0)
                continue;
            assert_int_equal(take(f, user + strlen("per-user:"), NULL), TG_OK);
            assert_int_equal(f->table->buckets[s].tokens, 1);
            kept++;
        }
    }
    assert_int_equal(kept, 3);
    /* one key, one slot: nothing was duplicated */
    static char keys[TG_SHM_BUCKETS][TG_SHM_BUCKET_KEY];
    for (int s = 0; s < TG_SHM_BUCKETS; s++)
        memcpy(keys[s], f->table->buckets[s].key, TG_SHM_BUCKET_KEY);
    qsort(keys, TG_SHM_BUCKETS, TG_SHM_BUCKET_KEY, by_key);
    for (int s = 1; s < TG_SHM_BUCKETS; s++)
        assert_string_not_equal(keys[s - 1], keys[s]);
}

static void test_buckets_of_a_removed_rule_are_reused(void **state)
{
    struct fixture *f = *state;
    use_config(f, per_user);
    fill_table(f, NULL); /* none idle: every bucket is one token down */
    use_config(f, renamed);
    assert_int_equal(take(f, "newcomer", NULL), TG_OK);
    assert_int_equal(take(f, "newcomer", NULL), TG_OK);
    assert_int_equal(take(f, "newcomer", NULL), TG_DECLINED);
    assert_non_null(strstr(f->r.error.message, "rate limit \"per-user-v2\" exceeded"));
}

static void test_one_requests_buckets_keep_their_own_slots(void **state)
{
    struct fixture *f = *state;
    use_config(f, per_user);
    fill_table(f, NULL);
    age_all(f);
    use_config(f, per_user_and_group);
    /* both buckets are new: each must get a slot of its own and keep it */
    assert_int_equal(take(f, "alice", "team"), TG_OK);
    assert_int_equal(take(f, "alice", "team"), TG_OK);
    assert_int_equal(take(f, "alice", "team"), TG_DECLINED);
    assert_non_null(strstr(f->r.error.message, "rate limit \"per-user\" exceeded"));
    assert_int_equal(take(f, "bob", "team"), TG_OK);
    assert_int_equal(take(f, "carol", "team"), TG_DECLINED);
    assert_non_null(strstr(f->r.error.message, "rate limit \"per-group\" exceeded"));
    /* a refused request took nothing: bob still has his second token */
    assert_int_equal(take(f, "bob", "other"), TG_OK);
}

/* Measured: a request of a new subject against a full table (the longest probe). */
static void test_full_table_cost(void **state)
{
    struct fixture *f = *state;
    use_config(f, per_user);
    fill_table(f, NULL);
    struct timespec t0, t1;
    int rounds = 200;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < rounds; i++)
        assert_int_equal(take(f, "newcomer", NULL), TG_DECLINED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / rounds;
    printf("# rate-limit table full (%d slots): a refusal takes %.1f us under the lock\n",
           TG_SHM_BUCKETS, us);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_table_refuses_rather_than_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_buckets_are_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buckets_of_a_removed_rule_are_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_requests_buckets_keep_their_own_slots, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_table_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
