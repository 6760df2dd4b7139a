/*
 * test_report_doc.c — the chargeback's forms in report_doc.c: by one or two
 * groupings or by tool, the group filter's checks, the statement and the
 * parameters each form sends, the subject columns' names, and the tool
 * total's mean over every call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "report_doc.h"

static int check(const char *by, const char *group, const char **param)
{
    struct tg_report_query q = {.report = "chargeback", .by = by, .group = group};
    char err[200];
    return tg_report_doc_check(&q, false, param, err, sizeof(err));
}

static void test_by_and_group_checked(void **state)
{
    (void)state;
    const char *param = NULL;
    const char *good[] = {"group", "user",        "key",        "model",       "provider",
                          "tool",  "group,model", "user,model", "model,group", "key,provider"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(check(good[i], NULL, &param), TG_OK);
    const char *bad[] = {"team",       "group,group",      "group,tool",
                         "tool,group", "group,model,user", "group,",
                         ",model",     "groupmodel,user",  ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        param = NULL;
        assert_int_equal(check(bad[i], NULL, &param), TG_ERROR);
        assert_string_equal(param, "by");
    }
    assert_int_equal(check("user", "team-eng.1", &param), TG_OK);
    const char *bad_groups[] = {"", "a'b", "a b", "x;drop"};
    for (size_t i = 0; i < sizeof(bad_groups) / sizeof(bad_groups[0]); i++) {
        param = NULL;
        assert_int_equal(check("user", bad_groups[i], &param), TG_ERROR);
        assert_string_equal(param, "group");
    }
    assert_true(tg_report_doc_takes("chargeback", "group"));
    assert_false(tg_report_doc_takes("series", "group"));
    assert_false(tg_report_doc_known("chargeback by tool"));
}

static void test_statement_per_form(void **state)
{
    (void)state;
    const char *params[5];
    int n;
    struct tg_report_query q = {.report = "chargeback",
                                .by = "user,model",
                                .group = "eng",
                                .from = "2026-03-01",
                                .to = "2026-03-31",
                                .format = "json"};
    const char *sql = tg_report_doc_statement(&q, params, &n);
    assert_non_null(strstr(sql, "report_chargeback($1, $2"));
    assert_non_null(strstr(sql, "subject2"));
    assert_int_equal(n, 4);
    assert_string_equal(params[0], "user,model");
    assert_string_equal(params[1], "eng");
    q.by = "model";
    q.group = NULL;
    sql = tg_report_doc_statement(&q, params, &n);
    assert_null(strstr(sql, "subject2"));
    assert_int_equal(n, 4);
    assert_null(params[1]);
    q.by = "tool";
    sql = tg_report_doc_statement(&q, params, &n);
    assert_non_null(strstr(sql, "report_chargeback_tools($1, $2::date, $3::date)"));
    assert_int_equal(n, 3); /* no "by" */
    assert_null(params[0]);
    assert_string_equal(params[1], "2026-03-01");
}

static void test_rendering(void **state)
{
    (void)state;
    const char *names[] = {
        "subject",       "subject2",          "requests",           "input_tokens",
        "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_micros"};
    const char *cells[] = {"eng", "haiku", "2", "10", "5", "0", "0", "1500001"};
    struct tg_db_rows rows = {.n_rows = 1, .n_cols = 8, .col_names = names, .cells = cells};
    struct tg_report_query q = {.report = "chargeback",
                                .by = "group,model",
                                .group = "eng",
                                .from = "2026-03-01",
                                .to = "2026-03-31",
                                .format = "csv"};
    char *text = tg_report_doc_render(&q, &rows);
    assert_string_equal(text, "group_id,model,requests,input_tokens,output_tokens,"
                              "cache_read_tokens,cache_write_tokens,cost_micros,cost_usd\n"
                              "eng,haiku,2,10,5,0,0,1500001,1.500001\n");
    free(text);
    q.format = "json";
    text = tg_report_doc_render(&q, &rows);
    assert_non_null(strstr(text, "\"group\": \"eng\""));
    assert_non_null(strstr(text, "\"group_id\": \"eng\",\n      \"model\": \"haiku\""));
    free(text);
    q.group = NULL; /* not given: not written */
    text = tg_report_doc_render(&q, &rows);
    assert_null(strstr(text, "\"group\""));
    free(text);

    const char *tool_names[] = {"server",   "tool",      "calls",       "errors",
                                "bytes_in", "bytes_out", "duration_us", "mean_us"};
    const char *tool_cells[] = {"gh", "search", "3", "1", "0", "0", "3000", "1000",
                                "gh", "fetch",  "1", "0", "0", "0", "9000", "9000"};
    struct tg_db_rows tools = {
        .n_rows = 2, .n_cols = 8, .col_names = tool_names, .cells = tool_cells};
    q.by = "tool";
    text = tg_report_doc_render(&q, &tools);
    /* the total's mean: 12000 us over 4 calls, not 1000 + 9000 */
    assert_non_null(strstr(text, "\"duration_us\": 12000,\n    \"mean_us\": 3000"));
    assert_non_null(strstr(text, "\"server\": \"gh\""));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_and_group_checked),
        cmocka_unit_test(test_statement_per_form),
        cmocka_unit_test(test_rendering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
