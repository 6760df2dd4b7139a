/*
 * test_bound.c — the request's true upper bound (bound.c), its max_tokens and
 * anthropic-beta checks, and tg_quota_check_bound (quota.c) with the counter
 * it adds to (metrics.c over a real shared memory segment).
 *
 * Data-driven: each directory under tests/unit/data/bound is one case:
 *   request  the body, exactly (a final newline is dropped)
 *   beta     (optional) the anthropic-beta header's value
 *   config   (optional) a whole config replacing the suite's (base_config below)
 *   expect   "name = value" lines:
 *              error = <the 400's message>   (nothing else is checked then)
 *              input_tokens = <expression>   integers, BODY (the body's bytes),
 *                                            + - * and parentheses
 *              server_tool_uses, web_searches, images, documents = <expression>
 *              forward_beta = <value forwarded>, or "none"
 *            Fields not named are not checked, but for forward_beta ("none").
 * Adding a case is adding files.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "bound.h"
#include "config.h"
#include "crypto.h"
#include "log.h"
#include "metrics.h"
#include "quota.h"
#include "request.h"
#include "shm.h"
#include "unit.h"

#define ERR_SIZE 512

/* The suite's config: the numbers the expect files are written against. */
static const char base_config[] =
    "{\"database\": {\"url\": \"postgresql:///x\"},"
    " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
    "                      \"api_key\": \"k\"}},"
    " \"models\": {"
    "   \"claude-haiku-4-5-20251001\": {\"provider\": \"p\", \"aliases\": [\"claude-haiku-4-5\"],"
    "       \"max_output_tokens\": 64000, \"max_input_tokens\": 200000},"
    "   \"small-context\": {\"provider\": \"p\", \"max_output_tokens\": 4096,"
    "       \"max_input_tokens\": 5000}},"
    " \"bounds\": {\"allowed_betas\": [\"prompt-caching-2024-07-31\", \"files-api-2025-04-14\"],"
    "   \"image_max_tokens\": 1600, \"document_max_tokens\": 30000, \"tool_system_tokens\": 500,"
    "   \"builtin_tool_tokens\": 700, \"server_tool_default_uses\": 10,"
    "   \"server_tool_use_max_tokens\": 8000}}";

/* ---- a small expression evaluator for the expect files ---- */

struct expr {
    const char *p;
    int64_t body;
    bool bad;
};

static int64_t expr_sum(struct expr *e);

static void skip_space(struct expr *e)
{
    while (*e->p == ' ' || *e->p == '\t')
        e->p++;
}

static int64_t expr_atom(struct expr *e)
{
    skip_space(e);
    if (*e->p == '(') {
        e->p++;
        int64_t v = expr_sum(e);
        skip_space(e);
        if (*e->p != ')')
            e->bad = true;
        else
            e->p++;
        return v;
    }
    if (strncmp(e->p, "BODY", 4) == 0) {
        e->p += 4;
        return e->body;
    }
    if (!isdigit((unsigned char)*e->p)) {
        e->bad = true;
        return 0;
    }
    char *end;
    int64_t v = strtoll(e->p, &end, 10);
    e->p = end;
    return v;
}

static int64_t expr_product(struct expr *e)
{
    int64_t v = expr_atom(e);
    for (skip_space(e); *e->p == '*'; skip_space(e)) {
        e->p++;
        v *= expr_atom(e);
    }
    return v;
}

static int64_t expr_sum(struct expr *e)
{
    int64_t v = expr_product(e);
    for (skip_space(e); *e->p == '+' || *e->p == '-'; skip_space(e)) {
        char op = *e->p++;
        int64_t rhs = expr_product(e);
        v = op == '+' ? v + rhs : v - rhs;
    }
    return v;
}

static int64_t evaluate(const char *dir, const char *text, int64_t body)
{
    struct expr e = {text, body, false};
    int64_t v = expr_sum(&e);
    skip_space(&e);
    if (e.bad || *e.p != '\0')
        fail_msg("%s/expect: cannot evaluate \"%s\"", dir, text);
    return v;
}

/* ---- the data-driven cases ---- */

struct expectation {
    char *error;
    char *fields[16][2]; /* name, value */
    size_t n;
};

static void read_expect(const char *dir, char *text, struct expectation *x)
{
    memset(x, 0, sizeof(*x));
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strstr(line, " = ");
        if (eq == NULL)
            fail_msg("%s/expect: \"%s\" is not \"name = value\"", dir, line);
        *eq = '\0';
        if (strcmp(line, "error") == 0)
            x->error = eq + 3;
        else if (x->n < TG_ARRAY_LEN(x->fields)) {
            x->fields[x->n][0] = line;
            x->fields[x->n++][1] = eq + 3;
        }
    }
}

static int64_t field_of(const struct tg_bound *b, const char *dir, const char *name)
{
    if (strcmp(name, "input_tokens") == 0)
        return b->input_tokens;
    if (strcmp(name, "server_tool_uses") == 0)
        return b->server_tool_uses;
    if (strcmp(name, "web_searches") == 0)
        return b->max_web_searches;
    if (strcmp(name, "images") == 0)
        return b->images;
    if (strcmp(name, "documents") == 0)
        return b->documents;
    fail_msg("%s/expect: unknown field \"%s\"", dir, name);
    return 0;
}

static void test_bound_case(void **state)
{
    const char *dir = *state;
    size_t body_len = 0;
    char *body = unit_read_file(dir, "request", &body_len);
    char *expect = unit_read_file(dir, "expect", NULL);
    if (body == NULL || expect == NULL)
        fail_msg("%s: needs request and expect", dir);
    while (body_len > 0 && body[body_len - 1] == '\n')
        body[--body_len] = '\0';
    char *beta = unit_read_file(dir, "beta", NULL);
    if (beta != NULL)
        unit_chomp(beta);
    char *config_text = unit_read_file(dir, "config", NULL);

    struct tg_config *config = NULL;
    char err[ERR_SIZE];
    if (tg_config_parse(config_text != NULL ? config_text : base_config, &config, err,
                        sizeof(err)) != TG_OK)
        fail_msg("%s: config: %s", dir, err);
    json_error_t jerr;
    json_t *doc = json_loadb(body, body_len, 0, &jerr);
    if (doc == NULL)
        fail_msg("%s/request: not JSON: %s", dir, jerr.text);
    const struct tg_model *model =
        tg_config_find_model(config, json_string_value(json_object_get(doc, "model")));
    assert_non_null(model);
    json_t *max_tokens = json_object_get(doc, "max_tokens");
    assert_true(json_is_integer(max_tokens));

    struct tg_arena *arena = tg_arena_new(4096);
    assert_non_null(arena);
    struct tg_bound b;
    char message[256];
    memset(message, 0, sizeof(message));
    int rc = tg_bound_request(config, model, doc, body_len, json_integer_value(max_tokens), beta,
                              arena, &b, message, sizeof(message));

    struct expectation x;
    read_expect(dir, expect, &x);
    if (x.error != NULL) {
        if (rc != TG_DECLINED || strcmp(message, x.error) != 0)
            fail_msg("%s:\n  want TG_DECLINED \"%s\"\n  got  %d \"%s\"", dir, x.error, rc, message);
    } else {
        if (rc != TG_OK)
            fail_msg("%s: want TG_OK, got %d \"%s\"", dir, rc, message);
        bool beta_checked = false;
        for (size_t i = 0; i < x.n; i++) {
            const char *name = x.fields[i][0], *value = x.fields[i][1];
            if (strcmp(name, "forward_beta") == 0) {
                beta_checked = true;
                const char *got = b.betas != NULL ? b.betas : "none";
                if (strcmp(got, value) != 0)
                    fail_msg("%s: forward_beta \"%s\", want \"%s\"", dir, got, value);
                continue;
            }
            int64_t want = evaluate(dir, value, (int64_t)body_len);
            int64_t got = field_of(&b, dir, name);
            if (got != want)
                fail_msg("%s: %s = %" PRId64 ", want %s = %" PRId64 " (body %zu bytes)", dir, name,
                         got, value, want, body_len);
        }
        if (!beta_checked && b.betas != NULL)
            fail_msg("%s: forwards \"%s\", want none", dir, b.betas);
    }
    tg_arena_free(arena);
    json_decref(doc);
    tg_config_free(config);
    free(config_text);
    free(beta);
    free(expect);
    free(body);
}

/* ---- fixed tests ---- */

static struct tg_config *parse_ok(const char *text)
{
    struct tg_config *config = NULL;
    char err[ERR_SIZE];
    if (tg_config_parse(text, &config, err, sizeof(err)) != TG_OK)
        fail_msg("config: %s", err);
    return config;
}

/* The arena allocations tg_bound_request makes; failing the next one when asked. */
void *__real_tg_arena_alloc(struct tg_arena *arena, size_t size);
void *__wrap_tg_arena_alloc(struct tg_arena *arena, size_t size);
static bool fail_next_alloc;

void *__wrap_tg_arena_alloc(struct tg_arena *arena, size_t size)
{
    if (fail_next_alloc) {
        fail_next_alloc = false;
        return NULL;
    }
    return __real_tg_arena_alloc(arena, size);
}

/* Out of memory is TG_ERROR: neither a refusal (400) nor a bound. */
static void test_out_of_memory(void **state)
{
    (void)state;
    struct tg_config *config = parse_ok(base_config);
    json_t *doc =
        json_loads("{\"model\":\"claude-haiku-4-5\",\"max_tokens\":1,\"messages\":[]}", 0, NULL);
    struct tg_arena *arena = tg_arena_new(1024);
    assert_non_null(arena);
    const struct tg_model *model = tg_config_find_model(config, "claude-haiku-4-5");
    struct tg_bound b;
    char message[256] = "";
    fail_next_alloc = true;
    assert_int_equal(tg_bound_request(config, model, doc, 60, 1, "files-api-2025-04-14", arena, &b,
                                      message, sizeof(message)),
                     TG_ERROR);
    assert_false(fail_next_alloc);
    assert_string_equal(message, "");
    /* without a header nothing is allocated */
    fail_next_alloc = true;
    assert_int_equal(
        tg_bound_request(config, model, doc, 60, 1, NULL, arena, &b, message, sizeof(message)),
        TG_OK);
    fail_next_alloc = false;
    tg_arena_free(arena);
    json_decref(doc);
    tg_config_free(config);
}

/* A value that is no beta name is refused without being echoed, however long. */
static void test_beta_value_not_echoed(void **state)
{
    (void)state;
    struct tg_config *config = parse_ok(base_config);
    json_t *doc =
        json_loads("{\"model\":\"claude-haiku-4-5\",\"max_tokens\":1,\"messages\":[]}", 0, NULL);
    struct tg_arena *arena = tg_arena_new(64);
    assert_non_null(arena);
    const struct tg_model *model = tg_config_find_model(config, "claude-haiku-4-5");
    static char header[8192];
    memset(header, 'a', sizeof(header) - 1);
    struct tg_bound b;
    char message[256];
    assert_int_equal(
        tg_bound_request(config, model, doc, 60, 1, header, arena, &b, message, sizeof(message)),
        TG_DECLINED);
    assert_string_equal(message, "anthropic-beta: a value is not a beta name");
    tg_arena_free(arena);
    json_decref(doc);
    tg_config_free(config);
}

/* With no bounds section no beta is allowed, and a plain body's bound is its bytes. */
static void test_defaults(void **state)
{
    (void)state;
    struct tg_config *c = parse_ok(
        "{\"database\": {\"url\": \"postgresql:///x\"},"
        " \"providers\": {\"p\": {\"type\": \"anthropic\", \"base_url\": \"https://x.test\","
        "                      \"api_key\": \"k\"}},"
        " \"models\": {\"m\": {\"provider\": \"p\"}}}");
    json_t *doc = json_loads("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}", 0, NULL);
    struct tg_arena *arena = tg_arena_new(1024);
    assert_non_null(arena);
    struct tg_bound b;
    char message[256];
    assert_int_equal(tg_bound_request(c, &c->models[0], doc, 50, 1, "prompt-caching-2024-07-31",
                                      arena, &b, message, sizeof(message)),
                     TG_DECLINED);
    assert_string_equal(message,
                        "anthropic-beta: \"prompt-caching-2024-07-31\" is not allowed by this "
                        "gateway");
    assert_int_equal(
        tg_bound_request(c, &c->models[0], doc, 50, 1, NULL, arena, &b, message, sizeof(message)),
        TG_OK);
    assert_int_equal(b.input_tokens, 50);
    assert_null(b.betas);
    /* 128000 is the default maximum output */
    assert_int_equal(tg_bound_request(c, &c->models[0], doc, 50, 128001, NULL, arena, &b, message,
                                      sizeof(message)),
                     TG_DECLINED);
    assert_string_equal(message, "max_tokens: 128001 > 128000, which is the maximum allowed "
                                 "number of output tokens for m");
    tg_arena_free(arena);
    json_decref(doc);
    tg_config_free(c);
}

/* ---- tg_quota_check_bound, over a real segment ---- */

struct segment {
    char scope[64];
    char name[64];
    struct tg_shm *shm;
    char log_path[64];
};

static int segment_setup(void **state)
{
    struct segment *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    snprintf(s->scope, sizeof(s->scope), "unit:test_bound:%ld", (long)getpid());
    /* shm.c names the segment after the first 8 bytes of the scope's SHA-256 */
    unsigned char hash[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_crypto_sha256(s->scope, strlen(s->scope), hash);
    tg_crypto_hex(hash, 8, hex);
    snprintf(s->name, sizeof(s->name), "/tollgate-%s", hex);
    snprintf(s->log_path, sizeof(s->log_path), "/tmp/tollgate-unit-bound-XXXXXX");
    int fd = mkstemp(s->log_path);
    if (fd < 0 || tg_shm_attach(s->scope, &s->shm) != TG_OK || tg_log_open(s->log_path) != TG_OK) {
        if (fd >= 0)
            close(fd);
        free(s);
        return -1;
    }
    close(fd);
    *state = s;
    return 0;
}

static int segment_teardown(void **state)
{
    struct segment *s = *state;
    tg_log_open(NULL);
    unlink(s->log_path);
    shm_unlink(s->name);
    free(s);
    return 0;
}

static uint64_t exceeded_count(struct tg_shm *shm)
{
    size_t len = 0;
    char *text = tg_metrics_render(&shm->metrics, 0, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE tollgate_reservation_exceeded_total counter\n"));
    const char *line = strstr(text, "\ntollgate_reservation_exceeded_total ");
    assert_non_null(line);
    uint64_t n = strtoull(line + strlen("\ntollgate_reservation_exceeded_total "), NULL, 10);
    free(text);
    return n;
}

static void test_check_bound(void **state)
{
    struct segment *s = *state;
    struct tg_config *config = parse_ok(base_config);
    struct tg_request *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->config = config;
    r->model = tg_config_find_model(config, "claude-haiku-4-5");
    snprintf(r->request_id, sizeof(r->request_id), "00000000-0000-4000-8000-000000000001");
    r->identity.key_prefix = "tg-AbCdEfGh";
    r->identity.group_id = "research";
    r->max_tokens = 100;
    r->input_bound_tokens = 1000;
    r->max_web_searches = 2;
    uint64_t before = exceeded_count(s->shm);

    /* exactly at the bound, split across input and cache: nothing */
    r->usage = (struct tg_usage){.input_tokens = 400,
                                 .cache_read_tokens = 300,
                                 .cache_write_tokens = 300,
                                 .output_tokens = 100,
                                 .web_search_requests = 2};
    tg_quota_check_bound(r);
    assert_int_equal(exceeded_count(s->shm), before);

    /* each way of passing it counts once */
    struct tg_usage over[] = {
        {.input_tokens = 400, .cache_read_tokens = 300, .cache_write_tokens = 301},
        {.output_tokens = 101},
        {.web_search_requests = 3},
        {.input_tokens = INT64_MAX, .cache_write_tokens = INT64_MAX}, /* no overflow */
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(over); i++) {
        r->usage = over[i];
        tg_quota_check_bound(r);
        assert_int_equal(exceeded_count(s->shm), before + i + 1);
    }

    /* a request that was not bounded promised nothing */
    r->input_bound_tokens = 0;
    tg_quota_check_bound(r);
    assert_int_equal(exceeded_count(s->shm), before + TG_ARRAY_LEN(over));

    /* the warning names the request and the numbers, nothing else */
    char *dir_log = strdup(s->log_path);
    char *slash = strrchr(dir_log, '/');
    *slash = '\0';
    char *log = unit_read_file(dir_log, slash + 1, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"request_id\":\"00000000-0000-4000-8000-000000000001\""));
    assert_non_null(strstr(log, "reservation exceeded: provider \\\"p\\\" reported 1001 input "
                                "tokens (bound 1000), 0 output tokens (max_tokens 100), 0 web "
                                "searches (bound 2) for model \\\"claude-haiku-4-5-20251001\\\", "
                                "key tg-AbCdEfGh, group research"));
    assert_non_null(strstr(log, "101 output tokens (max_tokens 100)"));
    assert_non_null(strstr(log, "3 web searches (bound 2)"));
    size_t lines = 0;
    for (const char *p = log; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, TG_ARRAY_LEN(over));
    free(log);
    free(dir_log);
    free(r);
    tg_config_free(config);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_beta_value_not_echoed),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_check_bound, segment_setup, segment_teardown),
    };
    return unit_run_suite("bound", "bound", test_bound_case, NULL, NULL, fixed, TG_ARRAY_LEN(fixed),
                          NULL, NULL);
}
