/*
 * test_journal.c — journal.c: a dead worker's journal is settled whole (each
 * request from its E record, or as worker_lost at what it streamed, or at its
 * reserved bound) and then deleted; settled requests are left alone; a live
 * worker's journal is never touched; files rotate and retire once settled. A
 * request settled without going upstream (a guardrail's block) has only an E
 * record, recovered with its guard_rule; an E record of the previous version
 * (no guard_rule field) is recovered with none; nor ttft_ms: none.
 *
 * The dead worker is a forked child that writes its records and exits without
 * settling them (its flock goes with it, as with kill -9). Recovery settles
 * through the test's record_settled, which records what it was asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "frame.h"
#include "holder.h"
#include "journal.h"
#include "quota.h"
#include "request.h"
#include "usage.h"

/* ---- the stand-in for the group commit ---- */

#define MAX_SETTLED 16
static struct settled {
    char request_id[37];
    char outcome[32];
    char source[32];
    char guard_rule[72]; /* "(null)" for none */
    int64_t ttft_ms;     /* -1 for none */
    int64_t input, output;
    int status;
} settled[MAX_SETTLED];
static int n_settled;

static int record_settled(const char *log_id, const struct tg_usage_record *rec)
{
    (void)log_id;
    assert_true(n_settled < MAX_SETTLED);
    struct settled *s = &settled[n_settled++];
    snprintf(s->request_id, sizeof(s->request_id), "%s", rec->request_id);
    snprintf(s->outcome, sizeof(s->outcome), "%s", rec->outcome ? rec->outcome : "");
    snprintf(s->source, sizeof(s->source), "%s", rec->usage_source ? rec->usage_source : "");
    snprintf(s->guard_rule, sizeof(s->guard_rule), "%s",
             rec->guard_rule ? rec->guard_rule : "(null)");
    s->ttft_ms = rec->has_ttft ? rec->ttft_ms : -1;
    s->input = rec->usage.input_tokens;
    s->output = rec->usage.output_tokens;
    s->status = rec->http_status;
    return TG_OK;
}

static const struct settled *find(const char *request_id)
{
    for (int i = 0; i < n_settled; i++)
        if (strcmp(settled[i].request_id, request_id) == 0)
            return &settled[i];
    return NULL;
}

/* ---- a request, as the pipeline leaves it ---- */

static struct tg_provider provider = {.name = "anthropic"};
static struct tg_model model = {.name = "claude-haiku-4-5-20251001", .provider = &provider};
static struct tg_config config;
static char dir[64];

static void fake_request(struct tg_request *r, const char *id, bool stream)
{
    memset(r, 0, sizeof(*r));
    r->config = &config;
    r->model = &model;
    r->stream = stream;
    r->max_tokens = 500;
    r->input_bound_tokens = 1200;
    r->journal_slot = -1;
    r->identity.api_key_id = 7;
    r->identity.user_id = "ann";
    r->identity.group_id = "team \"a\""; /* escaped in the record, whole when read back */
    snprintf(r->request_id, sizeof(r->request_id), "%s", id);
    snprintf(r->started_at, sizeof(r->started_at), "2026-11-29T12:00:00.000000Z");
}

static void record_of(struct tg_request *r, struct tg_usage_record *rec, int64_t in, int64_t out)
{
    *rec = (struct tg_usage_record){.request_id = r->request_id,
                                    .ts = r->started_at,
                                    .api_key_id = 7,
                                    .user_id = "ann",
                                    .group_id = "team \"a\"",
                                    .provider = "anthropic",
                                    .model = model.name,
                                    .usage = {.input_tokens = in, .output_tokens = out},
                                    .http_status = 200,
                                    .outcome = "ok",
                                    .usage_source = "provider"};
}

static int count_journals(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "journal-", 8) == 0 && strstr(e->d_name, ".tgj") != NULL &&
             strstr(e->d_name, ".new") == NULL;
    if (d != NULL)
        closedir(d);
    return n;
}

#define STREAMED "00000000-0000-4000-8000-000000000001"
#define ENDED "00000000-0000-4000-8000-000000000002"
#define SETTLED "00000000-0000-4000-8000-000000000003"
#define BEGUN "00000000-0000-4000-8000-000000000004"
#define BLOCKED "00000000-0000-4000-8000-000000000005"
#define BLOCKED_SETTLED "00000000-0000-4000-8000-000000000006"
#define PREVIOUS "00000000-0000-4000-8000-000000000007"

/* A blocked request's record: settled at zero, naming the rule; never upstream, so no B. */
static void blocked_record(struct tg_request *r, struct tg_usage_record *rec)
{
    record_of(r, rec, 0, 0);
    rec->http_status = 400;
    rec->outcome = "blocked";
    rec->guard_rule = "aws_access_key";
}

/* The dead worker: four requests in flight, one of them settled, then gone. */
static void dead_worker(void)
{
    struct tg_request r;
    struct tg_usage_record rec;
    if (tg_journal_open(&config) != TG_OK)
        _exit(2);
    fake_request(&r, STREAMED, true); /* streamed 40 then 90 tokens' worth, no end */
    tg_journal_begin(&r);
    r.usage.input_tokens = 321; /* message_start's */
    tg_journal_progress(&r, 40);
    tg_journal_progress(&r, 90);
    fake_request(&r, ENDED, false); /* the provider answered; its settle never ran */
    tg_journal_begin(&r);
    record_of(&r, &rec, 11, 22);
    rec.has_ttft = true; /* a stream's time to first token goes through the E record */
    rec.ttft_ms = 345;
    tg_journal_end(&r, &rec);
    fake_request(&r, SETTLED, false);
    tg_journal_begin(&r);
    record_of(&r, &rec, 5, 5);
    tg_journal_end(&r, &rec);
    const char *ids[] = {SETTLED};
    int slots[] = {r.journal_slot};
    tg_journal_settled(ids, slots, 1);
    fake_request(&r, BLOCKED, false); /* blocked: its E record is its only one */
    blocked_record(&r, &rec);
    tg_journal_end(&r, &rec);
    if (r.journal_slot < 0)
        _exit(3);
    fake_request(&r, BLOCKED_SETTLED, false);
    blocked_record(&r, &rec);
    tg_journal_end(&r, &rec);
    const char *blocked_ids[] = {BLOCKED_SETTLED};
    int blocked_slots[] = {r.journal_slot};
    tg_journal_settled(blocked_ids, blocked_slots, 1);
    fake_request(&r, BEGUN, false); /* sent upstream, nothing known */
    tg_journal_begin(&r);
    _exit(0); /* no cleanup: as a kill -9 */
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tollgate-journal-test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    config = (struct tg_config){
        .spool_dir = dir, .journal_fsync = true, .estimator = TG_ESTIMATE_UPPER_BOUND};
    tg_quota_init();
    n_settled = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    return system(command) == 0 ? 0 : -1;
}

static void test_dead_worker_settled_from_its_journal(void **state)
{
    (void)state;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        dead_worker();
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(count_journals(), 1);

    assert_int_equal(tg_journal_open(&config), TG_OK); /* this process's own journal */
    assert_int_equal(tg_journal_recover(record_settled), 4);
    assert_int_equal(n_settled, 4);

    const struct settled *s = find(STREAMED);
    assert_non_null(s);
    assert_string_equal(s->outcome, "worker_lost");
    assert_string_equal(s->source, "estimated");
    assert_int_equal(s->input, 321); /* what message_start said */
    assert_int_equal(s->output, 90); /* the last progress: never less than what was streamed */
    assert_int_equal(s->status, 200);

    s = find(ENDED);
    assert_non_null(s);
    assert_string_equal(s->outcome, "ok"); /* its own record, as it would have settled */
    assert_string_equal(s->source, "provider");
    assert_int_equal(s->input, 11);
    assert_int_equal(s->output, 22);
    assert_string_equal(s->guard_rule, "(null)");
    assert_int_equal(s->ttft_ms, 345);

    s = find(BLOCKED);
    assert_non_null(s);
    assert_string_equal(s->outcome, "blocked");
    assert_string_equal(s->guard_rule, "aws_access_key");
    assert_int_equal(s->status, 400);
    assert_int_equal(s->input + s->output, 0);
    assert_null(find(BLOCKED_SETTLED));

    s = find(BEGUN);
    assert_non_null(s);
    assert_string_equal(s->outcome, "worker_lost");
    assert_string_equal(s->source, "reserved_bound");
    assert_int_equal(s->input, 1200); /* the reserved bound: input bound and max_tokens */
    assert_int_equal(s->output, 500);

    assert_null(find(SETTLED));
    /* the dead worker's file is gone; this process's own stays, and is not recovered */
    assert_int_equal(count_journals(), 1);
    n_settled = 0;
    assert_int_equal(tg_journal_recover(record_settled), 0);
    assert_int_equal(n_settled, 0);
    tg_journal_close();
    assert_int_equal(count_journals(), 0); /* nothing open: a clean exit leaves nothing */
}

/* A dead journal written by the previous version: its E record has no guard_rule. */
static void test_previous_version_end_record(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/journal-%s-1-0.tgj", dir, tg_holder_host());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
    assert_true(fd >= 0);
    const char *records[] = {
        "{\"k\":\"B\",\"id\":\"" PREVIOUS "\",\"ts\":\"2026-11-29T12:00:00.000000Z\","
        "\"key\":7,\"u\":\"ann\",\"g\":\"a\",\"p\":\"anthropic\",\"m\":\"m\",\"s\":false,"
        "\"in\":1200,\"out\":500}",
        "{\"k\":\"E\",\"id\":\"" PREVIOUS "\",\"rec\":{\"request_id\":\"" PREVIOUS "\","
        "\"ts\":\"2026-11-29T12:00:00.000000Z\",\"user_id\":\"ann\",\"group_id\":\"a\","
        "\"provider\":\"anthropic\",\"model\":\"m\",\"outcome\":\"ok\","
        "\"usage_source\":\"provider\",\"input_tokens\":31,\"output_tokens\":4,"
        "\"cache_read_tokens\":0,\"cache_write_tokens\":0,\"cache_write_1h_tokens\":0,"
        "\"web_search_requests\":0,\"http_status\":200,\"latency_ms\":9,\"upstream_ms\":8,"
        "\"stream\":false,\"api_key_id\":7}}",
    };
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(tg_frame_write(fd, records[i], strlen(records[i])), TG_OK);
    close(fd);
    assert_int_equal(tg_journal_open(&config), TG_OK);
    assert_int_equal(tg_journal_recover(record_settled), 1);
    const struct settled *s = find(PREVIOUS);
    assert_non_null(s);
    assert_string_equal(s->outcome, "ok");
    assert_int_equal(s->input, 31);
    assert_int_equal(s->output, 4);
    assert_string_equal(s->guard_rule, "(null)");
    assert_int_equal(s->ttft_ms, -1); /* no ttft_ms field: none */
    tg_journal_close();
    assert_int_equal(count_journals(), 0);
}

/* A block's lone E record holds its file open until its S, like any request. */
static void test_blocked_request_journaled_and_retired(void **state)
{
    (void)state;
    assert_int_equal(tg_journal_open(&config), TG_OK);
    struct tg_request r;
    struct tg_usage_record rec;
    fake_request(&r, BLOCKED, false);
    blocked_record(&r, &rec);
    tg_journal_end(&r, &rec);
    assert_true(r.journal_slot >= 0);
    tg_journal_close(); /* still open: the file stays for recovery */
    assert_int_equal(count_journals(), 1);
    const char *ids[] = {BLOCKED};
    int slots[] = {r.journal_slot};
    tg_journal_settled(ids, slots, 1);
    assert_int_equal(count_journals(), 0); /* retired once its S was written */
}

static void test_files_rotate_and_retire_once_settled(void **state)
{
    (void)state;
    assert_int_equal(tg_journal_open(&config), TG_OK);
    struct tg_request held;
    fake_request(&held, "00000000-0000-4000-8000-0000000000ff", false);
    assert_int_equal(tg_journal_begin(&held), TG_OK); /* stays open across the rotation */
    struct tg_request r;
    struct tg_usage_record rec;
    char id[37];
    /* about 5 MiB of records: past the 4 MiB rotation */
    for (int i = 0; i < 12000; i++) {
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", 1000 + i);
        fake_request(&r, id, false);
        assert_int_equal(tg_journal_begin(&r), TG_OK);
        record_of(&r, &rec, 1, 1);
        tg_journal_end(&r, &rec);
        const char *ids[] = {id};
        int slots[] = {r.journal_slot};
        tg_journal_settled(ids, slots, 1);
    }
    assert_int_equal(count_journals(), 2); /* the old file holds one request open */
    const char *ids[] = {held.request_id};
    int slots[] = {held.journal_slot};
    tg_journal_settled(ids, slots, 1);
    assert_int_equal(count_journals(), 1); /* retired as soon as nothing was open in it */
    tg_journal_close();
    assert_int_equal(count_journals(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dead_worker_settled_from_its_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_rotate_and_retire_once_settled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_version_end_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocked_request_journaled_and_retired, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
