/*
 * test_spool.c — spool.c: append then replay (every field survives, the new
 * usage fields included), the database down (everything kept) or going down
 * mid-replay (the settled part gone, the rest replayed once later), records
 * refused or failing the C checks sent to the dead letter without stopping
 * the others, a blocked request's guard_rule kept (and NULL for a record of
 * the previous version, which has no such field), an unreadable payload and a torn record, the
 * earlier versions' JSON-lines spool, an appender racing a replay's rename, the appenders' lock
 * deadline, and one replay at a time.
 *
 * The database is replaced by __wrap_tg_usage_settle_record (the test links
 * with -Wl,--wrap=tg_usage_settle_record,--wrap=tg_db_settle_refusal): it
 * records each record it is given and answers from a script. The real path is
 * in tests/integration/test_spool.py.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "spool.h"
#include "usage.h"

/* ---- the stand-in for the database ---- */

#define MAX_SETTLED 64
static char settled_ids[MAX_SETTLED][40];
static struct tg_usage_record settled_first; /* the first record, strings copied below */
static char first_strings[9][64];
static int n_settled;
static int answers[MAX_SETTLED]; /* what the i-th call answers (0: TG_OK) */

int __wrap_tg_usage_settle_record(const char *log_id, const struct tg_usage_record *rec,
                                  int64_t *cost_micros);
int __wrap_tg_usage_settle_record(const char *log_id, const struct tg_usage_record *rec,
                                  int64_t *cost_micros)
{
    (void)log_id;
    assert_true(n_settled < MAX_SETTLED);
    int answer = answers[n_settled];
    if (answer == TG_OK) {
        snprintf(settled_ids[n_settled], sizeof(settled_ids[0]), "%s", rec->request_id);
        if (n_settled == 0) {
            settled_first = *rec;
            const char **fields[] = {
                &settled_first.request_id, &settled_first.ts,           &settled_first.user_id,
                &settled_first.group_id,   &settled_first.provider,     &settled_first.model,
                &settled_first.outcome,    &settled_first.usage_source, &settled_first.guard_rule};
            for (size_t i = 0; i < 9; i++) {
                if (*fields[i] != NULL) {
                    snprintf(first_strings[i], sizeof(first_strings[i]), "%s", *fields[i]);
                    *fields[i] = first_strings[i];
                }
            }
        }
    } else {
        settled_ids[n_settled][0] = '\0';
    }
    *cost_micros = 0;
    n_settled++;
    return answer;
}

const char *__wrap_tg_db_settle_refusal(void);
const char *__wrap_tg_db_settle_refusal(void)
{
    return "23514: new row violates check constraint \"test_poison\"";
}

/* ---- fixtures ---- */

static char dir[256];

static void path_of(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/test_spool.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    memset(answers, 0, sizeof(answers));
    memset(settled_ids, 0, sizeof(settled_ids));
    n_settled = 0;
    return tg_spool_init(dir) == TG_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *name)
{
    char p[300];
    path_of(p, sizeof(p), name);
    struct stat st;
    return stat(p, &st) == 0;
}

static off_t size_of(const char *name)
{
    char p[300];
    path_of(p, sizeof(p), name);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static char ids[16][37];

static struct tg_usage_record record(int i)
{
    snprintf(ids[i], sizeof(ids[i]), "00000000-0000-4000-8000-%012d", i);
    return (struct tg_usage_record){
        .request_id = ids[i],
        .ts = "2026-03-15T10:00:00.123456Z",
        .api_key_id = 42,
        .user_id = "alice",
        .group_id = "eng",
        .provider = "anthropic",
        .model = "claude-haiku-4-5",
        .usage = {.input_tokens = 100 + i,
                  .output_tokens = 20,
                  .cache_read_tokens = 3,
                  .cache_write_tokens = 9,
                  .cache_write_1h_tokens = 4,
                  .web_search_requests = 2},
        .http_status = 200,
        .latency_ms = 1234,
        .upstream_ms = 1200,
        .stream = true,
        .outcome = "ok",
        .usage_source = "estimated",
    };
}

static void append_n(int from, int to)
{
    for (int i = from; i < to; i++) {
        struct tg_usage_record rec = record(i);
        assert_int_equal(tg_spool_append(&rec), TG_OK);
    }
}

/* The dead letter's records as JSON objects (caller decrefs); returns the count. */
static int dead_letters(json_t **out, int max)
{
    char p[300];
    path_of(p, sizeof(p), "usage.deadletter");
    struct tg_frame_reader rd;
    if (tg_frame_reader_open(&rd, p) != TG_OK)
        return 0;
    const void *payload;
    size_t len;
    int n = 0;
    while (n < max && tg_frame_reader_next(&rd, &payload, &len) == TG_OK) {
        out[n] = json_loadb(payload, len, 0, NULL);
        assert_non_null(out[n]);
        n++;
    }
    assert_int_equal(rd.skipped, 0);
    tg_frame_reader_release(&rd);
    return n;
}

/* ---- tests ---- */

static void test_append_replay(void **state)
{
    (void)state;
    assert_false(tg_spool_pending());
    append_n(0, 3);
    assert_true(tg_spool_pending());
    assert_int_equal(tg_spool_replay("test"), 3);
    assert_int_equal(n_settled, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(settled_ids[i], ids[i]);
    struct tg_usage_record want = record(0);
    struct tg_usage_record *got = &settled_first;
    assert_string_equal(got->ts, want.ts);
    assert_int_equal(got->api_key_id, 42);
    assert_string_equal(got->user_id, "alice");
    assert_string_equal(got->group_id, "eng");
    assert_string_equal(got->provider, "anthropic");
    assert_string_equal(got->model, "claude-haiku-4-5");
    assert_memory_equal(&got->usage, &want.usage, sizeof(want.usage));
    assert_int_equal(got->http_status, 200);
    assert_int_equal(got->latency_ms, 1234);
    assert_int_equal(got->upstream_ms, 1200);
    assert_true(got->stream);
    assert_string_equal(got->outcome, "ok");
    assert_string_equal(got->usage_source, "estimated");
    assert_null(got->guard_rule);
    assert_false(tg_spool_pending());
    assert_false(exists("usage.replay"));
    assert_int_equal(tg_spool_replay("test"), 0);
    assert_int_equal(n_settled, 3);
}

static void test_null_strings_survive(void **state)
{
    (void)state;
    struct tg_usage_record rec = record(0);
    rec.user_id = rec.group_id = rec.usage_source = NULL;
    rec.api_key_id = 0;
    assert_int_equal(tg_spool_append(&rec), TG_OK);
    assert_int_equal(tg_spool_replay("test"), 1);
    assert_null(settled_first.user_id);
    assert_null(settled_first.group_id);
    assert_null(settled_first.usage_source);
    assert_int_equal(settled_first.api_key_id, 0);
}

/* A blocked request's record: its rule goes through the spool, and to the dead letter. */
static void test_guard_rule_survives(void **state)
{
    (void)state;
    struct tg_usage_record rec = record(0);
    rec.outcome = "blocked";
    rec.guard_rule = "aws_access_key";
    rec.has_ttft = true; /* and a time to first token */
    rec.ttft_ms = 217;
    rec.usage = (struct tg_usage){0};
    rec.http_status = 400;
    assert_int_equal(tg_spool_append(&rec), TG_OK);
    rec = record(1);
    rec.outcome = "blocked";
    rec.guard_rule = "instruction_override";
    assert_int_equal(tg_spool_append(&rec), TG_OK);
    answers[1] = TG_DECLINED;
    assert_int_equal(tg_spool_replay("test"), 1); /* one settled, one dead-lettered */
    assert_string_equal(settled_ids[0], ids[0]);
    assert_string_equal(settled_first.outcome, "blocked");
    assert_string_equal(settled_first.guard_rule, "aws_access_key");
    assert_true(settled_first.has_ttft);
    assert_int_equal(settled_first.ttft_ms, 217);
    assert_int_equal(settled_first.http_status, 400);
    json_t *dl[2];
    assert_int_equal(dead_letters(dl, 2), 1);
    assert_string_equal(json_string_value(json_object_get(dl[0], "guard_rule")),
                        "instruction_override");
    assert_null(json_object_get(dl[0], "ttft_ms")); /* none: no field */
    json_decref(dl[0]);
}

/* A framed record of the previous version (no guard_rule field) replays with NULL. */
static void test_previous_version_record(void **state)
{
    (void)state;
    char p[300];
    path_of(p, sizeof(p), "usage.pending");
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0640);
    assert_true(fd >= 0);
    const char *old =
        "{\"request_id\":\"00000000-0000-4000-8000-000000000007\",\"ts\":"
        "\"2026-03-15T10:00:00.123456Z\",\"user_id\":\"alice\",\"group_id\":\"eng\","
        "\"provider\":\"anthropic\",\"model\":\"claude-haiku-4-5\",\"outcome\":\"blocked\","
        "\"usage_source\":\"provider\",\"input_tokens\":0,\"output_tokens\":0,"
        "\"cache_read_tokens\":0,\"cache_write_tokens\":0,\"cache_write_1h_tokens\":0,"
        "\"web_search_requests\":0,\"http_status\":400,\"latency_ms\":3,\"upstream_ms\":0,"
        "\"stream\":false,\"api_key_id\":42}";
    assert_int_equal(tg_frame_write(fd, old, strlen(old)), TG_OK);
    close(fd);
    assert_true(tg_spool_pending());
    assert_int_equal(tg_spool_replay("test"), 1);
    assert_string_equal(settled_ids[0], "00000000-0000-4000-8000-000000000007");
    assert_string_equal(settled_first.outcome, "blocked");
    assert_int_equal(settled_first.http_status, 400);
    assert_int_equal(settled_first.api_key_id, 42);
    assert_null(settled_first.guard_rule);
    assert_false(settled_first.has_ttft); /* no ttft_ms field either: none */
}

static void test_database_down(void **state)
{
    (void)state;
    append_n(0, 4);
    off_t size = size_of("usage.pending");
    for (int i = 0; i < MAX_SETTLED; i++)
        answers[i] = TG_ERROR;
    assert_int_equal(tg_spool_replay("test"), 0);
    assert_int_equal(n_settled, 1); /* stopped at the first */
    assert_true(tg_spool_pending());
    assert_int_equal(size_of("usage.replay"), size); /* kept whole, not rewritten */
    /* appended meanwhile: waits in usage.pending */
    append_n(4, 5);
    assert_int_equal(tg_spool_replay("test"), 0);
    memset(answers, 0, sizeof(answers));
    n_settled = 0;
    assert_int_equal(tg_spool_replay("test"), 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(settled_ids[i], ids[i]);
    assert_false(tg_spool_pending());
}

static void test_down_mid_replay(void **state)
{
    (void)state;
    append_n(0, 5);
    answers[2] = TG_ERROR;
    assert_int_equal(tg_spool_replay("test"), 2);
    assert_true(tg_spool_pending());
    assert_true(exists("usage.replay"));
    assert_false(exists("usage.replay.tmp"));
    /* the rest, once: never the two already settled */
    n_settled = 0;
    answers[2] = TG_OK;
    assert_int_equal(tg_spool_replay("test"), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(settled_ids[i], ids[2 + i]);
    assert_false(tg_spool_pending());
}

static void test_refused_goes_to_dead_letter(void **state)
{
    (void)state;
    append_n(0, 4);
    answers[1] = TG_DECLINED;
    assert_int_equal(tg_spool_replay("test"), 3);
    assert_int_equal(n_settled, 4);
    assert_string_equal(settled_ids[2], ids[2]);
    assert_string_equal(settled_ids[3], ids[3]);
    json_t *dl[4];
    assert_int_equal(dead_letters(dl, 4), 1);
    assert_string_equal(json_string_value(json_object_get(dl[0], "request_id")), ids[1]);
    assert_int_equal(json_integer_value(json_object_get(dl[0], "input_tokens")), 101);
    assert_string_equal(json_string_value(json_object_get(dl[0], "error")),
                        "23514: new row violates check constraint \"test_poison\"");
    assert_non_null(json_string_value(json_object_get(dl[0], "dead_lettered_at")));
    json_decref(dl[0]);
    assert_false(tg_spool_pending());
}

static void test_invalid_never_sent(void **state)
{
    (void)state;
    /* appended invalid: straight to the dead letter */
    struct tg_usage_record bad = record(0);
    bad.usage.output_tokens = -1;
    assert_int_equal(tg_spool_append(&bad), TG_OK);
    assert_int_equal(size_of("usage.pending"), -1);
    /* written by hand (an earlier version, an edit) past the append check */
    append_n(1, 2);
    char p[300];
    path_of(p, sizeof(p), "usage.pending");
    int fd = open(p, O_WRONLY | O_APPEND);
    const char *huge = "{\"request_id\":\"00000000-0000-4000-8000-000000000009\","
                       "\"ts\":\"2026-03-15T10:00:00Z\",\"input_tokens\":2147483648}";
    assert_int_equal(tg_frame_write(fd, huge, strlen(huge)), TG_OK);
    const char *not_json = "not a record";
    assert_int_equal(tg_frame_write(fd, not_json, strlen(not_json)), TG_OK);
    close(fd);
    append_n(2, 3);
    assert_int_equal(tg_spool_replay("test"), 2);
    assert_int_equal(n_settled, 2); /* only the valid ones reached the database */
    json_t *dl[4];
    assert_int_equal(dead_letters(dl, 4), 3);
    assert_string_equal(json_string_value(json_object_get(dl[0], "error")),
                        "output_tokens -1 is out of range (0 to 2147483647)");
    assert_string_equal(json_string_value(json_object_get(dl[1], "error")),
                        "input_tokens 2147483648 is out of range (0 to 2147483647)");
    assert_string_equal(json_string_value(json_object_get(dl[2], "payload")), "not a record");
    for (int i = 0; i < 3; i++)
        json_decref(dl[i]);
}

static void test_dead_letter_cuts_long_strings(void **state)
{
    (void)state;
    struct tg_usage_record rec = record(0);
    size_t n = 100000;
    char *long_model = malloc(n + 1);
    memset(long_model, 'm', n);
    long_model[n] = '\0';
    long_model[5] = (char)0xFF; /* not UTF-8 either */
    rec.model = long_model;
    assert_int_equal(tg_spool_append(&rec), TG_OK);
    free(long_model);
    json_t *dl[1];
    assert_int_equal(dead_letters(dl, 1), 1);
    const char *model = json_string_value(json_object_get(dl[0], "model"));
    assert_non_null(model);
    assert_int_equal(strncmp(model, "mmmmm\\xFFmm", 11), 0);
    assert_true(strlen(model) <= 4 * TG_USAGE_STRING_MAX);
    json_decref(dl[0]);
}

static void test_torn_record_skipped(void **state)
{
    (void)state;
    append_n(0, 2);
    off_t cut = size_of("usage.pending");
    append_n(2, 3);
    char p[300];
    path_of(p, sizeof(p), "usage.pending");
    /* tear record 2 (a crash mid-write), then more appends follow it */
    assert_int_equal(truncate(p, cut + 40), 0);
    append_n(3, 5);
    assert_int_equal(tg_spool_replay("test"), 4);
    const int want[] = {0, 1, 3, 4};
    for (int i = 0; i < 4; i++)
        assert_string_equal(settled_ids[i], ids[want[i]]);
    assert_false(tg_spool_pending());
}

static void test_legacy_spool(void **state)
{
    (void)state;
    char p[300];
    path_of(p, sizeof(p), "usage.spool");
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"request_id\":\"00000000-0000-4000-8000-000000000001\",\"ts\":"
               "\"2026-03-15T10:00:00Z\",\"api_key_id\":7,\"user_id\":null,\"group_id\":null,"
               "\"provider\":\"anthropic\",\"model\":\"m\",\"input_tokens\":11,"
               "\"output_tokens\":7,\"cache_read_tokens\":0,\"cache_write_tokens\":0,"
               "\"http_status\":200,\"latency_ms\":5,\"upstream_ms\":4,\"stream\":false,"
               "\"outcome\":\"ok\"}\n");
    fprintf(f, "{\"request_id\":\"garbage\n");
    fprintf(f, "{\"request_id\":\"00000000-0000-4000-8000-000000000002\",\"ts\":"
               "\"2026-03-15T10:00:01Z\",\"input_tokens\":1}\n");
    fclose(f);
    assert_int_equal(tg_spool_init(dir), TG_OK); /* a new process finds it */
    assert_true(tg_spool_pending());
    assert_int_equal(tg_spool_replay("test"), 2);
    assert_string_equal(settled_ids[0], "00000000-0000-4000-8000-000000000001");
    assert_int_equal(settled_first.usage.input_tokens, 11);
    assert_int_equal(settled_first.usage.output_tokens, 7);
    assert_null(settled_first.usage_source);
    assert_string_equal(settled_ids[1], "00000000-0000-4000-8000-000000000002");
    assert_int_equal(size_of("usage.spool"), 0); /* truncated, as earlier versions did */
    json_t *dl[2];
    assert_int_equal(dead_letters(dl, 2), 1);
    assert_string_equal(json_string_value(json_object_get(dl[0], "payload")),
                        "{\"request_id\":\"garbage");
    json_decref(dl[0]);
    assert_false(tg_spool_pending());
}

struct appender {
    int index;
    int rc;
};

static void *append_thread(void *arg)
{
    struct appender *a = arg;
    struct tg_usage_record rec = record(a->index);
    a->rc = tg_spool_append(&rec);
    return NULL;
}

/* Counts the records of a file in dir. */
static int records_in(const char *name)
{
    char p[300];
    path_of(p, sizeof(p), name);
    struct tg_frame_reader rd;
    if (tg_frame_reader_open(&rd, p) != TG_OK)
        return 0;
    const void *payload;
    size_t len;
    int n = 0;
    while (tg_frame_reader_next(&rd, &payload, &len) == TG_OK)
        n++;
    tg_frame_reader_release(&rd);
    return n;
}

static void test_appender_follows_rename(void **state)
{
    (void)state;
    append_n(0, 1);
    char p[300], q[300];
    path_of(p, sizeof(p), "usage.pending");
    path_of(q, sizeof(q), "usage.replay");
    /* play the replay: hold the lock, let an appender open the file and wait */
    int fd = open(p, O_RDONLY);
    assert_int_equal(tg_frame_lock(fd, 100), TG_OK);
    struct appender a = {1, 99};
    pthread_t t;
    pthread_create(&t, NULL, append_thread, &a);
    usleep(200 * 1000);
    assert_int_equal(rename(p, q), 0);
    close(fd);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, TG_OK);
    assert_int_equal(records_in("usage.replay"), 1); /* nothing appended to the taken file */
    assert_int_equal(records_in("usage.pending"), 1);
    assert_int_equal(tg_spool_replay("test"), 2);
}

static void test_append_deadline(void **state)
{
    (void)state;
    append_n(0, 1);
    char p[300];
    path_of(p, sizeof(p), "usage.pending");
    int fd = open(p, O_RDONLY);
    assert_int_equal(tg_frame_lock(fd, 100), TG_OK);
    int64_t t0 = tg_now_ms();
    struct tg_usage_record rec = record(1);
    errno = 0;
    assert_int_equal(tg_spool_append(&rec), TG_ERROR);
    assert_int_equal(errno, ETIMEDOUT);
    int64_t waited = tg_now_ms() - t0;
    assert_true(waited >= TG_SPOOL_LOCK_TIMEOUT_MS && waited < TG_SPOOL_LOCK_TIMEOUT_MS + 1000);
    close(fd);
    assert_int_equal(tg_spool_append(&rec), TG_OK);
}

static void test_one_replay_at_a_time(void **state)
{
    (void)state;
    append_n(0, 2);
    char p[300];
    path_of(p, sizeof(p), "replay.lock");
    int fd = open(p, O_RDWR | O_CREAT, 0600);
    assert_int_equal(tg_frame_lock(fd, 100), TG_OK);
    int64_t t0 = tg_now_ms();
    assert_int_equal(tg_spool_replay("test"), 0);
    assert_true(tg_now_ms() - t0 < 100); /* does not wait for the other */
    assert_int_equal(n_settled, 0);
    close(fd);
    assert_int_equal(tg_spool_replay("test"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_strings_survive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard_rule_survives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_version_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_down_mid_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_goes_to_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_never_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_cuts_long_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_record_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appender_follows_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_replay_at_a_time, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
