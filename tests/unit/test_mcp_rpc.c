/*
 * test_mcp_rpc.c — the MCP gateway's pure parts: JSON-RPC message checks and
 * error objects (mcp_rpc.c), federated names, URIs and cursors, and the
 * session token (mcp_session.c): round trip, tampering, expiry, bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "mcp_rpc.h"
#include "mcp_session.h"

#define SECRET "0123456789abcdef0123456789abcdef"

static enum tg_mcp_rpc_kind classify_text(const char *text)
{
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    const char *why = NULL;
    enum tg_mcp_rpc_kind kind = tg_mcp_rpc_classify(doc, &why);
    assert_true(kind != TG_MCP_RPC_INVALID || why != NULL);
    json_decref(doc);
    return kind;
}

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum tg_mcp_rpc_kind kind;
    } cases[] = {
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", TG_MCP_RPC_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/list\",\"params\":{}}",
         TG_MCP_RPC_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", TG_MCP_RPC_NOTIFICATION},
        {"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}", TG_MCP_RPC_RESPONSE},
        {"{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-1,\"message\":\"x\"}}",
         TG_MCP_RPC_RESPONSE},
        {"[]", TG_MCP_RPC_INVALID},
        {"{\"id\":1,\"method\":\"ping\"}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":3}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":[1]}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,\"message\":\"\"}}",
         TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"result\":{}}", TG_MCP_RPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"x\",\"message\":\"m\"}}",
         TG_MCP_RPC_INVALID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (classify_text(cases[i].text) != cases[i].kind)
            fail_msg("case %zu: %s", i, cases[i].text);
    }
}

static void test_error_object(void **state)
{
    (void)state;
    json_t *id = json_integer(4);
    json_t *e = tg_mcp_rpc_error(id, TG_MCP_METHOD_NOT_FOUND, "method not found");
    char *text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"error\":{\"code\":-32601,\"message\":\"method not found\"},"
                              "\"id\":4,\"jsonrpc\":\"2.0\"}");
    free(text);
    json_decref(e);
    /* an unusable id is null; a long message is cut */
    char long_message[2000];
    memset(long_message, 'x', sizeof(long_message) - 1);
    long_message[sizeof(long_message) - 1] = '\0';
    json_t *bad = json_real(1.5);
    e = tg_mcp_rpc_error(bad, TG_MCP_INVALID_REQUEST, long_message);
    assert_true(json_is_null(json_object_get(e, "id")));
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_object_get(e, "error"), "message"))), 512);
    json_decref(e);
    json_decref(bad);
    json_decref(id);
}

static void test_names(void **state)
{
    (void)state;
    struct tg_arena *a = tg_arena_new(4096);
    char server[TG_MCP_MAX_NAME + 1];
    const char *name;
    char *joined = tg_mcp_rpc_join(a, "git-hub", "create__issue");
    assert_string_equal(joined, "git-hub__create__issue");
    assert_int_equal(tg_mcp_rpc_split(joined, server, &name), TG_OK);
    assert_string_equal(server, "git-hub");
    assert_string_equal(name, "create__issue"); /* a tool's own "__" stays */
    assert_int_equal(tg_mcp_rpc_split("a_b__c", server, &name), TG_OK);
    assert_string_equal(server, "a_b");
    assert_int_equal(tg_mcp_rpc_split("plain", server, &name), TG_ERROR);
    assert_int_equal(tg_mcp_rpc_split("__x", server, &name), TG_ERROR);
    assert_int_equal(tg_mcp_rpc_split("s__", server, &name), TG_ERROR);
    assert_int_equal(tg_mcp_rpc_split("an_overly_long_server_name_beyond_32__x", server, &name),
                     TG_ERROR);

    char *uri = tg_mcp_rpc_uri_wrap(a, "docs", "file:///etc/x?y=1");
    assert_string_equal(uri, "tollgate://docs/file:///etc/x?y=1");
    assert_int_equal(tg_mcp_rpc_uri_unwrap(uri, server, &name), TG_OK);
    assert_string_equal(server, "docs");
    assert_string_equal(name, "file:///etc/x?y=1");
    assert_int_equal(tg_mcp_rpc_uri_unwrap("file:///x", server, &name), TG_ERROR);
    assert_int_equal(tg_mcp_rpc_uri_unwrap("tollgate://docs/", server, &name), TG_ERROR);
    assert_int_equal(tg_mcp_rpc_uri_unwrap("tollgate:///x", server, &name), TG_ERROR);
    tg_arena_free(a);
}

static void test_cursor(void **state)
{
    (void)state;
    struct tg_arena *a = tg_arena_new(4096);
    char server[TG_MCP_MAX_NAME + 1];
    const char *inner = "x";
    char *c = tg_mcp_rpc_cursor_encode(a, "everything", "page-2 \"quoted\"");
    assert_non_null(c);
    assert_int_equal(tg_mcp_rpc_cursor_decode(a, c, server, &inner), TG_OK);
    assert_string_equal(server, "everything");
    assert_string_equal(inner, "page-2 \"quoted\"");
    c = tg_mcp_rpc_cursor_encode(a, "own", NULL);
    assert_int_equal(tg_mcp_rpc_cursor_decode(a, c, server, &inner), TG_OK);
    assert_string_equal(server, "own");
    assert_null(inner);
    assert_int_equal(tg_mcp_rpc_cursor_decode(a, "not base64 !", server, &inner), TG_ERROR);
    assert_int_equal(tg_mcp_rpc_cursor_decode(a, "", server, &inner), TG_ERROR);
    assert_int_equal(tg_mcp_rpc_cursor_decode(a, "WzFd", server, &inner), TG_ERROR); /* [1] */
    char big[3000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(tg_mcp_rpc_cursor_encode(a, "own", big)); /* over TG_MCP_MAX_CURSOR */
    assert_int_equal(tg_mcp_rpc_cursor_decode(a, big, server, &inner), TG_ERROR);
    tg_arena_free(a);
}

static struct tg_mcp_session sample(void)
{
    struct tg_mcp_session s = {.version = "2025-06-18", .scope = "", .expires_s = 2000, .n = 2};
    tg_mcp_session_caller("key:42", s.caller);
    snprintf(s.up[0].server, sizeof(s.up[0].server), "own");
    snprintf(s.up[0].session_id, sizeof(s.up[0].session_id), "abc-123");
    snprintf(s.up[0].version, sizeof(s.up[0].version), "2025-06-18");
    snprintf(s.up[1].server, sizeof(s.up[1].server), "everything");
    snprintf(s.up[1].version, sizeof(s.up[1].version), "2025-03-26");
    return s;
}

static void test_session_round_trip(void **state)
{
    (void)state;
    struct tg_mcp_session s = sample(), back;
    char token[TG_MCP_MAX_TOKEN + 1];
    int n = tg_mcp_session_encode(&s, SECRET, token, sizeof(token));
    assert_true(n > 0);
    assert_int_equal(strlen(token), (size_t)n);
    assert_memory_equal(token, "tg1.", 4);
    for (const char *p = token; *p != '\0'; p++) /* a header value: visible ASCII */
        assert_true(*p >= 0x21 && *p <= 0x7e);
    const char *why = NULL;
    assert_int_equal(tg_mcp_session_decode(token, SECRET, 1000, &back, &why), TG_OK);
    assert_string_equal(back.version, "2025-06-18");
    assert_string_equal(back.scope, "");
    assert_string_equal(back.caller, s.caller);
    assert_int_equal(back.n, 2);
    assert_string_equal(tg_mcp_session_find(&back, "own")->session_id, "abc-123");
    assert_string_equal(tg_mcp_session_find(&back, "everything")->session_id, "");
    assert_string_equal(tg_mcp_session_find(&back, "everything")->version, "2025-03-26");
    assert_null(tg_mcp_session_find(&back, "other"));
    char other[TG_MCP_CALLER_LEN + 1];
    tg_mcp_session_caller("key:43", other);
    assert_string_not_equal(other, back.caller);
}

static void test_session_refused(void **state)
{
    (void)state;
    struct tg_mcp_session s = sample(), back;
    char token[TG_MCP_MAX_TOKEN + 1];
    assert_true(tg_mcp_session_encode(&s, SECRET, token, sizeof(token)) > 0);
    const char *why = NULL;
    /* expired */
    assert_int_equal(tg_mcp_session_decode(token, SECRET, 2000, &back, &why), TG_DECLINED);
    assert_string_equal(why, "session expired");
    /* another secret */
    assert_int_equal(
        tg_mcp_session_decode(token, "another secret, just as long......", 1000, &back, &why),
        TG_DECLINED);
    assert_string_equal(why, "bad signature");
    /* every byte of the payload changed in turn: refused */
    size_t dot = (size_t)(strrchr(token, '.') - token);
    for (size_t i = 4; i < dot; i++) {
        char tampered[TG_MCP_MAX_TOKEN + 1];
        memcpy(tampered, token, strlen(token) + 1);
        tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
        assert_int_equal(tg_mcp_session_decode(tampered, SECRET, 1000, &back, &why), TG_DECLINED);
    }
    /* a payload another caller signed differently: caller changed, MAC kept */
    assert_int_equal(tg_mcp_session_decode("tg1.e30.AAAA", SECRET, 1000, &back, &why), TG_DECLINED);
    assert_int_equal(tg_mcp_session_decode("garbage", SECRET, 1000, &back, &why), TG_DECLINED);
    assert_int_equal(tg_mcp_session_decode("", SECRET, 1000, &back, &why), TG_DECLINED);
    /* too small a buffer: refused, not cut */
    char small[64];
    assert_int_equal(tg_mcp_session_encode(&s, SECRET, small, sizeof(small)), TG_ERROR);
}

static void test_session_bounded(void **state)
{
    (void)state;
    /* the largest session: every server with the longest session id fits the cap */
    struct tg_mcp_session s = {.version = "2025-06-18", .expires_s = 2000, .n = TG_MCP_MAX_SERVERS};
    snprintf(s.scope, sizeof(s.scope), "%s", "");
    tg_mcp_session_caller("user:someone", s.caller);
    for (size_t i = 0; i < s.n; i++) {
        snprintf(s.up[i].server, sizeof(s.up[i].server), "server-%02zu-with-a-long-name-x", i);
        memset(s.up[i].session_id, 'z', TG_MCP_MAX_SESSION_ID);
        s.up[i].session_id[TG_MCP_MAX_SESSION_ID] = '\0';
        snprintf(s.up[i].version, sizeof(s.up[i].version), "2025-06-18");
    }
    char token[TG_MCP_MAX_TOKEN + 1];
    int n = tg_mcp_session_encode(&s, SECRET, token, sizeof(token));
    assert_true(n > 0 && n <= TG_MCP_MAX_TOKEN);
    printf("# the largest session token: %d bytes\n", n);
    struct tg_mcp_session back;
    const char *why;
    assert_int_equal(tg_mcp_session_decode(token, SECRET, 1000, &back, &why), TG_OK);
    assert_int_equal(back.n, TG_MCP_MAX_SERVERS);
}

static void test_versions(void **state)
{
    (void)state;
    assert_true(tg_mcp_rpc_version_ok("2025-06-18"));
    assert_true(tg_mcp_rpc_version_ok("2025-03-26"));
    assert_false(tg_mcp_rpc_version_ok("2024-11-05"));
    assert_false(tg_mcp_rpc_version_ok(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_error_object),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_session_round_trip),
        cmocka_unit_test(test_session_refused),
        cmocka_unit_test(test_session_bounded),
        cmocka_unit_test(test_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
