/*
 * test_mcp_access.c — MCP grants: globs, the union of grants, argument
 * constraints (enum, pattern, absent arguments, alternatives between grants),
 * malformed grants, the audit row's encoding, and the bounded metrics table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arena.h"
#include "mcp_access.h"
#include "metrics_mcp.h"
#include "shm.h"

static void test_glob(void **state)
{
    (void)state;
    assert_true(tg_mcp_access_glob("*", ""));
    assert_true(tg_mcp_access_glob("get_*", "get_repo"));
    assert_true(tg_mcp_access_glob("get_*", "get_"));
    assert_false(tg_mcp_access_glob("get_*", "list_repo"));
    assert_true(tg_mcp_access_glob("?et", "get"));
    assert_false(tg_mcp_access_glob("?et", "et"));
    assert_true(tg_mcp_access_glob("a*b*c", "axxbyyc"));
    assert_false(tg_mcp_access_glob("a*b*c", "axxbyy"));
    assert_true(tg_mcp_access_glob("%_", "%_")); /* literal, unlike LIKE */
    assert_false(tg_mcp_access_glob("%_", "ab"));
    assert_false(tg_mcp_access_glob("search", "search2"));
}

static const char grants_json[] =
    "[{\"server\": \"github\", \"tools\": [\"get_*\", \"list_*\"], \"args\": null},"
    " {\"server\": \"docs*\", \"tools\": [\"search\"], \"args\":"
    "  {\"lang\": {\"enum\": [\"en\", \"de\", 3]}, \"q\": {\"pattern\": \"^[a-z ]{1,20}$\"}}},"
    " {\"server\": \"docs-int\", \"tools\": [\"search\"], \"args\": {\"lang\": {\"enum\": "
    "[\"fr\"]}}}]";

static void test_allows_and_args(void **state)
{
    (void)state;
    struct tg_arena *arena = tg_arena_new(4096);
    struct tg_mcp_grants *g = NULL;
    assert_int_equal(tg_mcp_access_parse(arena, grants_json, &g), TG_OK);
    assert_true(tg_mcp_access_allows(g, "github", "get_repo"));
    assert_true(tg_mcp_access_allows(g, "github", "list_issues"));
    assert_false(tg_mcp_access_allows(g, "github", "create_issue"));
    assert_false(tg_mcp_access_allows(g, "gitlab", "get_repo"));
    assert_true(tg_mcp_access_allows(g, "docs-public", "search"));
    assert_false(tg_mcp_access_allows(g, NULL, "search"));

    /* no constraints: any arguments */
    json_t *a = json_pack("{s:s}", "repo", "x");
    assert_true(tg_mcp_access_args_ok(g, "github", "get_repo", a));
    assert_true(tg_mcp_access_args_ok(g, "github", "get_repo", NULL));
    assert_false(tg_mcp_access_args_ok(g, "github", "create_issue", a));
    json_decref(a);
    /* enum and pattern */
    a = json_pack("{s:s, s:s}", "lang", "en", "q", "hello world");
    assert_true(tg_mcp_access_args_ok(g, "docs-public", "search", a));
    json_decref(a);
    a = json_pack("{s:i}", "lang", 3); /* an enum holds any JSON value */
    assert_true(tg_mcp_access_args_ok(g, "docs-public", "search", a));
    json_decref(a);
    a = json_pack("{s:s}", "lang", "it");
    assert_false(tg_mcp_access_args_ok(g, "docs-public", "search", a));
    json_decref(a);
    a = json_pack("{s:s}", "q", "DROP TABLE");
    assert_false(tg_mcp_access_args_ok(g, "docs-public", "search", a));
    json_decref(a);
    a = json_pack("{s:i}", "q", 5); /* a pattern takes strings only */
    assert_false(tg_mcp_access_args_ok(g, "docs-public", "search", a));
    json_decref(a);
    /* absent arguments are not checked */
    a = json_object();
    assert_true(tg_mcp_access_args_ok(g, "docs-public", "search", a));
    json_decref(a);
    /* two grants allow docs-int/search: either one's constraints will do */
    a = json_pack("{s:s}", "lang", "fr");
    assert_true(tg_mcp_access_args_ok(g, "docs-int", "search", a));
    json_decref(a);
    a = json_pack("{s:s}", "lang", "de");
    assert_true(tg_mcp_access_args_ok(g, "docs-int", "search", a));
    json_decref(a);
    a = json_pack("{s:s}", "lang", "es");
    assert_false(tg_mcp_access_args_ok(g, "docs-int", "search", a));
    json_decref(a);
    tg_arena_free(arena);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{}",
        "[{\"server\": \"a\"}]",
        "[{\"server\": \"a\", \"tools\": []}]",
        "[{\"server\": \"a\", \"tools\": [1]}]",
        "[{\"tools\": [\"x\"]}]",
        "[{\"server\": \"a\", \"tools\": [\"x\"], \"args\": {\"q\": {\"pattern\": \"(\"}}}]",
        "[{\"server\": \"a\", \"tools\": [\"x\"], \"args\": {\"q\": {\"other\": 1}}}]",
        "not json"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tg_arena *arena = tg_arena_new(4096);
        struct tg_mcp_grants *g = NULL;
        assert_int_equal(tg_mcp_access_parse(arena, bad[i], &g), TG_ERROR);
        tg_arena_free(arena);
    }
}

static void test_encode(void **state)
{
    (void)state;
    struct tg_mcp_audit_who who = {"0190a000-0000-7000-8000-000000000001",
                                   "0190a000-0000-7000-8000-0000000000a1",
                                   "2026-05-10T08:00:01.000000Z",
                                   42,
                                   "tg-AbCdEfGh",
                                   "ann",
                                   "eng",
                                   NULL};
    struct tg_mcp_call call = {.server = "github",
                               .tool = "get_repo",
                               .code = "refused",
                               .jsonrpc_error = -32602,
                               .duration_us = 1500,
                               .bytes_in = 100,
                               .bytes_out = 200};
    char *row = tg_mcp_access_encode(&who, &call);
    assert_non_null(row);
    assert_string_equal(
        row,
        "{\"api_key_id\":42,\"bytes_in\":100,\"bytes_out\":200,"
        "\"call_id\":\"0190a000-0000-7000-8000-000000000001\",\"code\":\"refused\","
        "\"duration_us\":1500,\"group_id\":\"eng\",\"jsonrpc_error\":-32602,"
        "\"key_prefix\":\"tg-AbCdEfGh\",\"request_id\":\"0190a000-0000-7000-8000-0000000000a1\","
        "\"role\":null,"
        "\"server\":\"github\",\"tool\":\"get_repo\",\"ts\":\"2026-05-10T08:00:01.000000Z\","
        "\"user_id\":\"ann\"}");
    free(row);
    /* a JWT caller: no key id, no error code */
    who.api_key_id = 0;
    who.key_prefix = NULL;
    call.jsonrpc_error = 0;
    call.code = "ok";
    row = tg_mcp_access_encode(&who, &call);
    assert_null(strstr(row, "api_key_id"));
    assert_null(strstr(row, "jsonrpc_error"));
    assert_non_null(strstr(row, "\"key_prefix\":null"));
    free(row);
}

/* With payloads (a server that opted in): the arguments and result, each capped. */
static void test_encode_payloads(void **state)
{
    (void)state;
    struct tg_mcp_audit_who who = {"0190a000-0000-7000-8000-000000000002",
                                   "0190a000-0000-7000-8000-0000000000a2",
                                   "2026-05-10T08:00:02.000000Z",
                                   0,
                                   NULL,
                                   "ann",
                                   "eng",
                                   "user"};
    json_t *args = json_pack("{s:s}", "text", "my SSN is <US_SSN>");
    json_t *result = json_pack("{s:[{s:s, s:s}]}", "content", "type", "text", "text", "own: hi");
    struct tg_mcp_call call = {.server = "own",
                               .tool = "echo",
                               .code = "ok",
                               .payloads = true,
                               .arguments = args,
                               .result = result,
                               .payload_cap = 64};
    char *row = tg_mcp_access_encode(&who, &call);
    assert_non_null(row);
    assert_non_null(strstr(row, "\"arguments\":{\"text\":\"my SSN is <US_SSN>\"}"));
    assert_non_null(strstr(row, "\"result\":{\"content\":[{\"text\":\"own: hi\","));
    free(row);

    /* over the cap (compact JSON bytes): a marker with the size; at the cap: kept */
    size_t args_bytes = strlen("{\"text\":\"my SSN is <US_SSN>\"}");
    call.payload_cap = args_bytes;
    row = tg_mcp_access_encode(&who, &call);
    assert_non_null(strstr(row, "\"arguments\":{\"text\""));
    char marker[80];
    snprintf(marker, sizeof(marker), "\"result\":{\"bytes\":%zu,\"truncated\":true}",
             strlen("{\"content\":[{\"text\":\"own: hi\",\"type\":\"text\"}]}"));
    assert_non_null(strstr(row, marker));
    free(row);
    call.payload_cap = args_bytes - 1;
    row = tg_mcp_access_encode(&who, &call);
    snprintf(marker, sizeof(marker), "\"arguments\":{\"bytes\":%zu,\"truncated\":true}",
             args_bytes);
    assert_non_null(strstr(row, marker));
    json_t *parsed = json_loads(row, 0, NULL); /* still one valid JSON object */
    assert_non_null(parsed);
    json_decref(parsed);
    free(row);

    /* absent: null (a refused call has no arguments) */
    call.arguments = NULL;
    call.payload_cap = 16384;
    row = tg_mcp_access_encode(&who, &call);
    assert_non_null(strstr(row, "\"arguments\":null"));
    free(row);

    /* off (the default): neither key, whatever is passed */
    call.payloads = false;
    call.arguments = args;
    row = tg_mcp_access_encode(&who, &call);
    assert_null(strstr(row, "arguments"));
    assert_null(strstr(row, "result"));
    assert_null(strstr(row, "SSN"));
    free(row);

    /* a row that would not fit one audit-file record: both payloads become markers */
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    char *user = malloc(30000);
    memset(user, 'u', 29999);
    user[29999] = '\0';
    json_t *big_args = json_pack("{s:s}", "text", big);
    call = (struct tg_mcp_call){.server = "own",
                                .tool = "echo",
                                .code = "ok",
                                .payloads = true,
                                .arguments = big_args,
                                .result = big_args,
                                .payload_cap = 24576};
    row = tg_mcp_access_encode(&who, &call);
    assert_non_null(strstr(row, big)); /* each under the cap, the two together fit */
    free(row);
    who.user_id = user;
    row = tg_mcp_access_encode(&who, &call);
    assert_true(strlen(row) <= TG_MCP_ACCESS_ROW_MAX);
    assert_null(strstr(row, big));
    assert_non_null(strstr(row, "\"arguments\":{\"bytes\":20010,\"truncated\":true}"));
    free(row);
    json_decref(big_args);
    free(big);
    free(user);
    json_decref(args);
    json_decref(result);
}

static void test_metrics_bounded(void **state)
{
    (void)state;
    struct tg_shm_mcp *m = calloc(1, sizeof(*m));
    assert_int_equal(tg_shm_mutex_init(&m->lock), TG_OK);
    char tool[32];
    for (int i = 0; i < 2 * TG_SHM_MCP_SERIES; i++) {
        snprintf(tool, sizeof(tool), "t%d", i);
        assert_int_equal(tg_metrics_mcp_add(m, "s", tool, "ok", 2000), TG_OK);
    }
    tg_metrics_mcp_add(m, "s", "t0", "timeout", 70000000);
    tg_metrics_mcp_add(m, "s", "t0", "bogus", 1);
    size_t len = 0;
    char *text = tg_metrics_mcp_text(m, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_non_null(
        strstr(text, "tollgate_mcp_calls_total{server=\"s\",tool=\"t0\",code=\"ok\"} 1\n"));
    /* the table's free part holds TG_SHM_MCP_SERIES - RESERVED tools; the rest are "_other" */
    char other[128];
    snprintf(other, sizeof(other),
             "tollgate_mcp_calls_total{server=\"s\",tool=\"_other\",code=\"ok\"} %d\n",
             2 * TG_SHM_MCP_SERIES - (TG_SHM_MCP_SERIES - TG_SHM_MCP_RESERVED));
    assert_non_null(strstr(text, other));
    assert_non_null(strstr(text, "tool=\"_other\",code=\"timeout\"} 1\n"));
    assert_non_null(strstr(text, "tool=\"_other\",code=\"error\"} 1\n"));
    assert_non_null(strstr(text, "tollgate_mcp_call_duration_seconds_bucket{le=\"0.005\"} 1025\n"));
    assert_non_null(strstr(text, "tollgate_mcp_call_duration_seconds_bucket{le=\"+Inf\"} 1026\n"));
    assert_non_null(strstr(text, "tollgate_mcp_call_duration_seconds_count 1026\n"));
    free(text);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_allows_and_args),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_payloads),
        cmocka_unit_test(test_metrics_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
