/*
 * test_enrich.c — config_enrich.c and enrich.c: templates (checked, expanded,
 * sanitized, cut), the model pattern, the "enrich" section's errors naming the
 * field, and the step over a request: which entries match, the system text in
 * each dialect's shapes, the provider call's headers, the client's response
 * headers, and the bound's bytes.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_enrich.h"
#include "enrich.h"
#include "request.h"

/* ---- templates ---- */

static void test_expand(void **state)
{
    (void)state;
    const char *values[TG_ENRICH_N_VARS] = {
        [TG_ENRICH_USER_ID] = "alice",      [TG_ENRICH_GROUP_ID] = "research",
        [TG_ENRICH_MODEL] = "claude-haiku", [TG_ENRICH_ROUTE] = NULL,
        [TG_ENRICH_REQUEST_ID] = "rid-1",
    };
    char out[TG_ENRICH_VALUE_MAX + 1];
    assert_int_equal(tg_config_enrich_expand("{user_id}", values, out, sizeof(out)), 5);
    assert_string_equal(out, "alice");
    tg_config_enrich_expand("u={user_id} g={group_id} m={model} r=[{route}] {{x}} {request_id}",
                            values, out, sizeof(out));
    assert_string_equal(out, "u=alice g=research m=claude-haiku r=[] {x} rid-1");
    /* a value's CR, LF and other control bytes never reach a header */
    values[TG_ENRICH_USER_ID] = "a\r\nx-evil: 1\tb";
    tg_config_enrich_expand("{user_id}", values, out, sizeof(out));
    assert_string_equal(out, "ax-evil: 1b");
    /* cut at the cap, never inside a UTF-8 sequence */
    char small[6];
    values[TG_ENRICH_USER_ID] = "abcd\xc3\xa9z"; /* "abcdéz" */
    assert_int_equal(tg_config_enrich_expand("{user_id}", values, small, sizeof(small)), 4);
    assert_string_equal(small, "abcd");
    char tiny[8];
    values[TG_ENRICH_USER_ID] = "ab\xc3\xa9\xc3\xa9\xc3\xa9"; /* 2 + 3 x 2 bytes */
    size_t n = tg_config_enrich_expand("{user_id}", values, tiny, sizeof(tiny));
    assert_int_equal(n, 6);
    assert_string_equal(tiny, "ab\xc3\xa9\xc3\xa9");
    /* a long value is capped */
    char big[1000];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    values[TG_ENRICH_USER_ID] = big;
    assert_int_equal(tg_config_enrich_expand("{user_id}", values, out, sizeof(out)),
                     TG_ENRICH_VALUE_MAX);
}

static void test_check_template(void **state)
{
    (void)state;
    char problem[200];
    const char *good[] = {"",
                          "plain",
                          "{user_id}",
                          "{{literal}}",
                          "a}b",
                          "{request_id}-{model}",
                          "{key_prefix}{role}{backend}{provider}{route}{group_id}"};
    for (size_t i = 0; i < TG_ARRAY_LEN(good); i++)
        assert_int_equal(tg_config_enrich_check_template(good[i], problem, sizeof(problem)), TG_OK);
    assert_int_equal(tg_config_enrich_check_template("{user}", problem, sizeof(problem)), TG_ERROR);
    assert_non_null(strstr(problem, "unknown variable \"{user}\""));
    assert_int_equal(tg_config_enrich_check_template("x {model", problem, sizeof(problem)),
                     TG_ERROR);
    assert_int_equal(tg_config_enrich_check_template("a\nb", problem, sizeof(problem)), TG_ERROR);
    assert_int_equal(tg_config_enrich_check_template("{}", problem, sizeof(problem)), TG_ERROR);
}

static void test_glob(void **state)
{
    (void)state;
    assert_true(tg_config_enrich_glob("claude-*", "claude-haiku-4-5"));
    assert_true(tg_config_enrich_glob("*", ""));
    assert_true(tg_config_enrich_glob("*-4-?", "claude-haiku-4-5"));
    assert_true(tg_config_enrich_glob("c*h*5", "claude-haiku-4-5"));
    assert_false(tg_config_enrich_glob("claude-*", "gpt-4o"));
    assert_false(tg_config_enrich_glob("claude", "claude-haiku"));
    assert_false(tg_config_enrich_glob("?", ""));
}

/* ---- the section ---- */

#define CONFIG_HEAD                                                                                \
    "{\"database\": {\"url\": \"postgresql://x@db/t\"},"                                           \
    "\"providers\": {\"a\": {\"type\": \"anthropic\", \"api_key\": \"k\"}},"                       \
    "\"models\": {\"claude-haiku\": {\"provider\": \"a\"}, \"gpt-4o\": {\"provider\": \"a\"}},"    \
    "\"routes\": [{\"name\": \"eu\", \"match\": {\"path\": \"/eu\"}, \"model\": \"gpt-4o\"}],"

static struct tg_config *parse(const char *enrich, char *err, size_t err_size)
{
    char text[4096];
    snprintf(text, sizeof(text), CONFIG_HEAD "\"enrich\": %s}", enrich);
    struct tg_config *c = NULL;
    tg_config_parse(text, &c, err, err_size);
    return c;
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *enrich, *message;
    } cases[] = {
        {"[{\"request_headers\": {\"set\": {\"authorization\": \"Bearer {user_id}\"}}}]",
         "config: enrich[0].request_headers.set.authorization: carries a credential"},
        {"[{}, {\"request_headers\": {\"set\": {\"x-user-id\": \"{user}\"}}}]",
         "config: enrich[1].request_headers.set.x-user-id: unknown variable \"{user}\""},
        {"[{\"request_headers\": {\"remove\": [\"X-Api-Key\"]}}]",
         "config: enrich[0].request_headers.remove[0]: carries a credential"},
        {"[{\"request_headers\": {\"set\": {\"x-amz-date\": \"1\"}}}]",
         "config: enrich[0].request_headers.set.x-amz-date: carries"},
        {"[{\"request_headers\": {\"remove\": [\"anthropic-beta\"]}}]",
         "config: enrich[0].request_headers.remove[0]: carries"},
        {"[{\"response_headers\": {\"set\": {\"content-length\": \"1\"}}}]",
         "config: enrich[0].response_headers.set.content-length: carries"},
        {"[{\"response_headers\": {\"remove\": [\"x-request-id\"]}}]",
         "config: enrich[0].response_headers.remove[0]: carries"},
        {"[{\"response_headers\": {\"set\": {\"bad name\": \"1\"}}}]",
         "config: enrich[0].response_headers.set.bad name: is not a header name"},
        {"[{\"response_headers\": {\"set\": {\"x-a\": 1}}}]",
         "config: enrich[0].response_headers.set.x-a: must be a template"},
        {"[{\"response_headers\": {\"add\": {}}}]",
         "config: enrich[0].response_headers.add: unknown field"},
        {"[{\"system_prepend\": \"\"}]", "config: enrich[0].system_prepend: must be a non-empty"},
        {"[{\"system_append\": 3}]", "config: enrich[0].system_append: must be a non-empty"},
        {"[{\"match\": {\"team\": \"x\"}}]", "config: enrich[0].match.team: unknown field"},
        {"[{\"match\": {\"route\": \"nowhere\"}}]",
         "config: enrich[0].match.route: no rule of routes is named \"nowhere\""},
        {"[{\"extra\": 1}]", "config: enrich[0].extra: unknown field"},
        {"{}", "config: enrich: must be an array"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        char err[512] = "";
        struct tg_config *c = parse(cases[i].enrich, err, sizeof(err));
        if (c != NULL || strncmp(err, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, cases[i].message);
    }
    /* more than 16 headers set on one direction, all entries together */
    char many[2048] = "[";
    for (int i = 0; i < 17; i++) {
        char entry[96];
        snprintf(entry, sizeof(entry), "%s{\"request_headers\": {\"set\": {\"x-h%d\": \"v\"}}}",
                 i > 0 ? "," : "", i);
        strncat(many, entry, sizeof(many) - strlen(many) - 1);
    }
    strncat(many, "]", sizeof(many) - strlen(many) - 1);
    char err[512] = "";
    assert_null(parse(many, err, sizeof(err)));
    assert_non_null(strstr(err, "enrich[16].request_headers.set: at most 16"));
}

static void test_config_loaded(void **state)
{
    (void)state;
    char err[512] = "";
    struct tg_config *c = parse(
        "[{\"match\": {\"group\": \"g\", \"role\": \"r\", \"model\": \"claude-*\", \"route\": "
        "\"eu\"}, \"system_prepend\": \"P\", \"system_append\": \"A\","
        " \"request_headers\": {\"set\": {\"X-User-Id\": \"{user_id}\"}, \"remove\": "
        "[\"User-Agent\"]},"
        " \"response_headers\": {\"set\": {\"x-tollgate-model\": \"{model}\"}}}]",
        err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_int_equal(c->enrich.n_entries, 1);
    const struct tg_enrich_entry *e = &c->enrich.entries[0];
    assert_string_equal(e->group, "g");
    assert_string_equal(e->route, "eu");
    assert_string_equal(e->request_headers.set[0].name, "x-user-id"); /* lower-cased */
    assert_string_equal(e->request_headers.remove[0], "user-agent");
    assert_string_equal(e->response_headers.set[0].template, "{model}");
    tg_config_free(c);
}

/* ---- the step over a request ---- */

struct fixture {
    struct tg_config *config;
    struct tg_request r;
};

static const char step_config[] =
    "[{\"system_prepend\": \"FIRST\"},"
    " {\"match\": {\"group\": \"research\"}, \"system_append\": \"LAST\","
    "  \"request_headers\": {\"set\": {\"x-user-id\": \"{user_id}\", \"user-agent\": "
    "\"tg/{group_id}\"}, \"remove\": [\"traceparent\"]},"
    "  \"response_headers\": {\"set\": {\"x-tollgate-model\": \"{model}\"}, \"remove\": "
    "[\"x-ratelimit-limit-tokens\"]}},"
    " {\"match\": {\"model\": \"gpt-*\"}, \"system_append\": \"GPT\"},"
    " {\"match\": {\"role\": \"admin\"}, \"system_append\": \"ADMIN\"}]";

static struct fixture *fixture_new(enum tg_endpoint endpoint, const char *model, const char *body)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    char err[512] = "";
    f->config = parse(step_config, err, sizeof(err));
    if (f->config == NULL)
        fail_msg("%s", err);
    struct tg_request *r = &f->r;
    r->arena = tg_arena_new(4096);
    r->config = f->config;
    r->endpoint = endpoint;
    r->model = tg_config_find_model(f->config, model);
    r->backend = &r->model->backends[0];
    r->identity.user_id = "alice";
    r->identity.group_id = "research";
    r->identity.role = "member";
    snprintf(r->request_id, sizeof(r->request_id), "00000000-0000-4000-8000-000000000001");
    r->doc = json_loads(body, 0, NULL);
    assert_non_null(r->doc);
    r->body = (char *)body;
    r->body_len = strlen(body);
    return f;
}

static void fixture_free(struct fixture *f)
{
    json_decref(f->r.doc);
    tg_arena_free(f->r.arena);
    tg_config_free(f->config);
    free(f);
}

/* r->body, parsed, says the same as r->doc; returns member key of it as compact JSON. */
static char *body_member(struct tg_request *r, const char *key)
{
    json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(body);
    assert_true(json_equal(body, r->doc));
    char *text = json_dumps(json_object_get(body, key), JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    return text;
}

static void expect_system(const char *body, const char *group, const char *want)
{
    struct fixture *f = fixture_new(TG_EP_MESSAGES, "claude-haiku", body);
    f->r.identity.group_id = group;
    assert_int_equal(tg_enrich_apply(&f->r), TG_OK);
    char *got = body_member(&f->r, "system");
    if (strcmp(got, want) != 0)
        fail_msg("system: got %s, want %s", got, want);
    free(got);
    fixture_free(f);
}

static void test_anthropic_system(void **state)
{
    (void)state;
    const char *msgs = "\"model\":\"claude-haiku\",\"max_tokens\":5,\"messages\":[]";
    char body[512];
    /* a string: joined with blank lines */
    snprintf(body, sizeof(body), "{%s,\"system\":\"Be brief.\"}", msgs);
    expect_system(body, "research", "\"FIRST\\n\\nBe brief.\\n\\nLAST\"");
    /* another group: only the entry without a group */
    expect_system(body, "sales", "\"FIRST\\n\\nBe brief.\"");
    /* blocks: one text block first, one last, the client's untouched */
    snprintf(body, sizeof(body),
             "{%s,\"system\":[{\"type\":\"text\",\"text\":\"S\",\"cache_control\":{\"type\":"
             "\"ephemeral\"}}]}",
             msgs);
    expect_system(body, "research",
                  "[{\"type\":\"text\",\"text\":\"FIRST\"},{\"type\":\"text\",\"text\":\"S\","
                  "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":"
                  "\"LAST\"}]");
    /* none: made */
    snprintf(body, sizeof(body), "{%s}", msgs);
    expect_system(body, "research", "\"FIRST\\n\\nLAST\"");
    snprintf(body, sizeof(body), "{%s,\"system\":\"\"}", msgs);
    expect_system(body, "sales", "\"FIRST\"");
}

static void test_openai_messages(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
        "{\"role\":\"developer\",\"content\":\"D\"},{\"role\":\"user\",\"content\":"
        "\"hi\"},{\"role\":\"system\",\"content\":\"late\"}]}";
    struct fixture *f = fixture_new(TG_EP_CHAT_COMPLETIONS, "gpt-4o", body);
    f->r.identity.role = "admin";
    assert_int_equal(tg_enrich_apply(&f->r), TG_OK);
    assert_int_equal(f->r.n_enrich, 4);
    char *got = body_member(&f->r, "messages");
    assert_string_equal(
        got, "[{\"role\":\"system\",\"content\":\"FIRST\"},{\"role\":\"system\",\"content\":\"S\"},"
             "{\"role\":\"developer\",\"content\":\"D\"},{\"role\":\"system\",\"content\":"
             "\"LAST\\n\\nGPT\\n\\nADMIN\"},{\"role\":\"user\",\"content\":\"hi\"},{\"role\":"
             "\"system\",\"content\":\"late\"}]");
    free(got);
    fixture_free(f);
}

static void test_embeddings_untouched(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"gpt-4o\",\"input\":\"x\"}";
    struct fixture *f = fixture_new(TG_EP_EMBEDDINGS, "gpt-4o", body);
    assert_int_equal(tg_enrich_bound_bytes(&f->r), 0);
    assert_int_equal(tg_enrich_apply(&f->r), TG_OK);
    assert_ptr_equal(f->r.body, body);    /* not written again */
    assert_non_null(f->r.before_headers); /* headers still apply */
    fixture_free(f);
}

static void test_bound_bytes(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"claude-haiku\",\"max_tokens\":5,\"messages\":[]}";
    struct fixture *f = fixture_new(TG_EP_MESSAGES, "claude-haiku", body);
    /* group and role are not known yet: every entry that may apply counts */
    int64_t want = 5 + 4 + 5 + 3 * TG_ENRICH_TEXT_OVERHEAD; /* FIRST, LAST, ADMIN; not GPT */
    assert_int_equal(tg_enrich_bound_bytes(&f->r), want);
    /* and it holds what is applied */
    f->r.identity.role = "admin";
    assert_int_equal(tg_enrich_apply(&f->r), TG_OK);
    assert_true((int64_t)f->r.body_len <= (int64_t)strlen(body) + want);
    fixture_free(f);
}

static void test_call_headers(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(TG_EP_MESSAGES, "claude-haiku", "{\"messages\":[]}");
    assert_int_equal(tg_enrich_apply(&f->r), TG_OK);
    const char *headers[8] = {"x-api-key: secret", "User-Agent: tollgate/1", "traceparent: 00-abc",
                              "accept: application/json"};
    size_t n = 4;
    assert_int_equal(tg_enrich_call_headers(&f->r, headers, &n, 8), TG_OK);
    assert_int_equal(n, 4);
    assert_string_equal(headers[0], "x-api-key: secret");
    assert_string_equal(headers[1], "accept: application/json");
    assert_string_equal(headers[2], "x-user-id: alice");
    assert_string_equal(headers[3], "user-agent: tg/research");
    /* a value that expands to nothing is not sent */
    f->r.identity.user_id = NULL;
    n = 1;
    assert_int_equal(tg_enrich_call_headers(&f->r, headers, &n, 8), TG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(headers[1], "user-agent: tg/research");
    /* no room: an error, never a header dropped silently */
    n = 8;
    for (size_t i = 0; i < 8; i++)
        headers[i] = "accept: x";
    assert_int_equal(tg_enrich_call_headers(&f->r, headers, &n, 8), TG_ERROR);
    fixture_free(f);
}

static void test_response_headers(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(TG_EP_MESSAGES, "claude-haiku", "{\"messages\":[]}");
    struct tg_request *r = &f->r;
    char *buf = tg_arena_alloc(r->arena, 8192); /* request.c's cap */
    assert_non_null(buf);
    r->resp_headers = buf;
    const char *queued = "x-ratelimit-limit-tokens: 10\r\nX-Tollgate-Model: spoofed\r\n"
                         "x-ratelimit-remaining-tokens: 9\r\n";
    snprintf(buf, 8192, "%s", queued);
    r->resp_headers_len = strlen(queued);
    assert_int_equal(tg_enrich_apply(r), TG_OK);
    assert_non_null(r->before_headers);
    r->before_headers(r);
    assert_string_equal(buf,
                        "x-ratelimit-remaining-tokens: 9\r\nx-tollgate-model: claude-haiku\r\n");
    assert_int_equal(r->resp_headers_len, strlen(buf));
    /* another group: no entry with response headers applies */
    struct fixture *g = fixture_new(TG_EP_MESSAGES, "claude-haiku", "{\"messages\":[]}");
    g->r.identity.group_id = "sales";
    assert_int_equal(tg_enrich_apply(&g->r), TG_OK);
    assert_null(g->r.before_headers);
    fixture_free(g);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_check_template),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_loaded),
        cmocka_unit_test(test_anthropic_system),
        cmocka_unit_test(test_openai_messages),
        cmocka_unit_test(test_embeddings_untouched),
        cmocka_unit_test(test_bound_bytes),
        cmocka_unit_test(test_call_headers),
        cmocka_unit_test(test_response_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
