/*
 * test_mcp_audit.c — mcp_audit.c: rows appended then flushed in one batch (the
 * files gone after), the database down (everything kept, rows appended meanwhile
 * too), a flush cut short after its commit (the replay file left behind is sent
 * again and stored once: the stand-in is idempotent by call id, as
 * tollgate.mcp_calls_add is), a torn record at the end of the file (a crash mid
 * append: the whole records before it are sent), and a row the database refuses
 * (the batch retried row by row, the refused row in mcp_calls.deadletter, the
 * others stored).
 *
 * The database is replaced by __wrap_tg_db_mcp_calls_add (the test links with
 * -Wl,--wrap=tg_db_mcp_calls_add). The real path is in
 * tests/integration/test_mcp_acl.py (tests/tools/mcp-record).
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "mcp_audit.h"

/* ---- the stand-in for the database ---- */

#define MAX_STORED 64
static char stored[MAX_STORED][40]; /* call ids stored, each once */
static int n_stored, n_calls;
static bool down;            /* every call fails: TG_ERROR */
static bool lose_the_answer; /* the next call stores, then fails (cut after commit) */

int __wrap_tg_db_mcp_calls_add(const char *rows_json, int64_t *inserted);
int __wrap_tg_db_mcp_calls_add(const char *rows_json, int64_t *inserted)
{
    n_calls++;
    if (down)
        return TG_ERROR;
    json_t *rows = json_loads(rows_json, 0, NULL);
    assert_true(json_is_array(rows));
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (json_object_get(row, "poison") != NULL) {
            json_decref(rows);
            return TG_DECLINED; /* the database refuses the whole statement */
        }
    }
    *inserted = 0;
    json_array_foreach(rows, i, row) {
        const char *id = json_string_value(json_object_get(row, "call_id"));
        assert_non_null(id);
        bool seen = false;
        for (int k = 0; k < n_stored; k++)
            seen = seen || strcmp(stored[k], id) == 0;
        if (!seen) {
            assert_true(n_stored < MAX_STORED);
            snprintf(stored[n_stored++], sizeof(stored[0]), "%s", id);
            ++*inserted;
        }
    }
    json_decref(rows);
    if (lose_the_answer) {
        lose_the_answer = false;
        return TG_ERROR;
    }
    return TG_OK;
}

/* ---- fixtures ---- */

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tg-mcp-audit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    n_stored = n_calls = 0;
    down = lose_the_answer = false;
    return tg_mcp_audit_init(dir, false) == TG_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const names[] = {"mcp_calls.pending", "mcp_calls.replay",
                                        "mcp_calls.deadletter", "mcp_calls.lock"};
    char path[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    return rmdir(dir);
}

static bool exists(const char *name)
{
    char path[128];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

static void append(int n, const char *extra)
{
    static int next_id;
    for (int i = 0; i < n; i++) {
        char row[256];
        snprintf(row, sizeof(row),
                 "{\"call_id\":\"00000000-0000-7000-8000-%012d\",\"server\":\"s\","
                 "\"tool\":\"t\",\"code\":\"ok\"%s}",
                 ++next_id, extra != NULL ? extra : "");
        assert_int_equal(tg_mcp_audit_append(row), TG_OK);
    }
}

/* ---- tests ---- */

static void test_append_then_flush(void **state)
{
    (void)state;
    append(3, NULL);
    assert_true(exists("mcp_calls.pending"));
    assert_int_equal(n_stored, 0); /* nothing is sent before a flush */
    assert_int_equal(tg_mcp_audit_flush(), 3);
    assert_int_equal(n_calls, 1); /* one batch */
    assert_int_equal(n_stored, 3);
    assert_false(exists("mcp_calls.pending"));
    assert_false(exists("mcp_calls.replay"));
    assert_int_equal(tg_mcp_audit_flush(), 0); /* nothing left */
    assert_int_equal(n_calls, 1);
}

static void test_database_down_keeps_everything(void **state)
{
    (void)state;
    append(2, NULL);
    down = true;
    assert_int_equal(tg_mcp_audit_flush(), TG_ERROR);
    assert_true(exists("mcp_calls.replay")); /* taken, not sent */
    append(1, NULL);                         /* appended meanwhile: a new pending file */
    assert_int_equal(tg_mcp_audit_flush(), TG_ERROR);
    down = false;
    assert_int_equal(tg_mcp_audit_flush(), 3);
    assert_int_equal(n_stored, 3);
    assert_false(exists("mcp_calls.replay"));
    assert_false(exists("mcp_calls.pending"));
}

static void test_cut_after_commit_is_sent_again_and_stored_once(void **state)
{
    (void)state;
    append(4, NULL);
    lose_the_answer = true; /* committed, but the flush never learns it */
    assert_int_equal(tg_mcp_audit_flush(), TG_ERROR);
    assert_int_equal(n_stored, 4);
    assert_true(exists("mcp_calls.replay"));
    /* the replay sends the same rows again: the database stores none twice */
    assert_int_equal(tg_mcp_audit_flush(), 0);
    assert_int_equal(n_stored, 4);
    assert_int_equal(n_calls, 2);
    assert_false(exists("mcp_calls.replay"));
}

static void test_torn_record_at_the_end(void **state)
{
    (void)state;
    append(2, NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/mcp_calls.pending", dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    /* the first bytes of a record whose append a crash cut short */
    static const char torn[] = "\x54\x47\x52\x31\x00\x00\x01";
    assert_int_equal(write(fd, torn, sizeof(torn) - 1), (ssize_t)(sizeof(torn) - 1));
    close(fd);
    assert_int_equal(tg_mcp_audit_flush(), 2);
    assert_int_equal(n_stored, 2);
    assert_false(exists("mcp_calls.pending"));
}

static void test_refused_row_goes_to_dead_letter(void **state)
{
    (void)state;
    append(2, NULL);
    append(1, ",\"poison\":true");
    append(2, NULL);
    assert_int_equal(tg_mcp_audit_flush(), 4);
    assert_int_equal(n_stored, 4);
    assert_int_equal(n_calls, 1 + 5); /* the batch, then each row alone */
    assert_false(exists("mcp_calls.replay"));
    char path[128];
    snprintf(path, sizeof(path), "%s/mcp_calls.deadletter", dir);
    struct tg_frame_reader rd;
    assert_int_equal(tg_frame_reader_open(&rd, path), TG_OK);
    const void *payload;
    size_t len;
    int n = 0;
    while (tg_frame_reader_next(&rd, &payload, &len) == TG_OK) {
        n++;
        assert_non_null(memmem(payload, len, "\"poison\":true", 13));
        assert_non_null(memmem(payload, len, "-000000000", 10));
    }
    tg_frame_reader_release(&rd);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_then_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_down_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_after_commit_is_sent_again_and_stored_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_record_at_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_row_goes_to_dead_letter, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
