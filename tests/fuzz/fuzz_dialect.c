/*
 * fuzz_dialect.c — the request path from the FastCGI params to the pipeline's
 * request struct: a client's headers (as CGI params) and body are read by the
 * endpoint's dialect (providers/dialect*.c: JSON, the model and its route, the
 * bounds, the translation of an OpenAI body to the pivot for an Anthropic,
 * Gemini or Bedrock backend). The input is the first byte, picking the
 * endpoint; then "NAME=value" param lines up to an empty line
 * ("HTTP_ANTHROPIC_BETA=..."); then the body. The config has a model of each
 * provider kind and a routing rule.
 */
#include <fcgiapp.h>
#include <string.h>

#include "arena.h"
#include "common.h"
#include "config.h"
#include "dialect.h"
#include "fuzz.h"
#include "request.h"

#define MAX_PARAMS 16

static struct tg_config *config;

static const char config_text[] =
    "{\"database\": {\"url\": \"postgresql:///x\"},"
    " \"providers\": {"
    "   \"anthropic\": {\"type\": \"anthropic\", \"base_url\": \"https://a.test\", \"api_key\": "
    "\"k\"},"
    "   \"openai\": {\"type\": \"openai\", \"base_url\": \"https://o.test\", \"api_key\": \"k\"},"
    "   \"gemini\": {\"type\": \"gemini\", \"base_url\": \"https://g.test\", \"api_key\": \"k\"},"
    "   \"bedrock\": {\"type\": \"bedrock\", \"base_url\": \"https://b.test\","
    "                \"region\": \"us-east-1\", \"api_key\": \"k\"}},"
    " \"models\": {"
    "   \"claude-haiku-4-5-20251001\": {\"provider\": \"anthropic\","
    "       \"aliases\": [\"claude-haiku-4-5\"], \"max_output_tokens\": 64000,"
    "       \"max_input_tokens\": 200000},"
    "   \"gpt-4o\": {\"provider\": \"openai\"},"
    "   \"text-embedding-3-small\": {\"provider\": \"openai\", \"kind\": \"embeddings\"},"
    "   \"gemini-2.5-flash\": {\"provider\": \"gemini\"},"
    "   \"claude-bedrock\": {\"provider\": \"bedrock\","
    "       \"upstream_model\": \"anthropic.claude-3-haiku-20240307-v1:0\"}},"
    " \"bounds\": {\"allowed_betas\": [\"prompt-caching-2024-07-31\"],"
    "   \"image_max_tokens\": 1600, \"document_max_tokens\": 30000, \"tool_system_tokens\": 500,"
    "   \"builtin_tool_tokens\": 700, \"server_tool_default_uses\": 10,"
    "   \"server_tool_use_max_tokens\": 8000}}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    config = fuzz_config(config_text);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const enum tg_endpoint endpoints[] = {TG_EP_MESSAGES, TG_EP_CHAT_COMPLETIONS,
                                                 TG_EP_EMBEDDINGS, TG_EP_COUNT_TOKENS};
    enum tg_endpoint endpoint = endpoints[data[0] % 4];
    const char *in = (const char *)data + 1, *end = (const char *)data + size;

    /* the params: NUL-terminated copies, as libfcgi keeps them */
    char *envp[MAX_PARAMS + 1] = {NULL};
    size_t n = 0;
    while (in < end) {
        const char *nl = memchr(in, '\n', (size_t)(end - in));
        const char *stop = nl != NULL ? nl : end;
        if (stop == in) {
            in++;
            break;
        }
        if (n < MAX_PARAMS && memchr(in, '=', (size_t)(stop - in)) != NULL) {
            envp[n] = strndup(in, (size_t)(stop - in));
            if (envp[n] != NULL)
                n++;
        }
        in = stop + 1;
    }
    FCGX_Request fcgx;
    memset(&fcgx, 0, sizeof(fcgx));
    fcgx.envp = envp;

    struct tg_request *r = calloc(1, sizeof(*r));
    r->arena = tg_arena_new(16384);
    r->config = config;
    r->fcgx = &fcgx;
    r->endpoint = endpoint;
    r->dialect = endpoint == TG_EP_CHAT_COMPLETIONS || endpoint == TG_EP_EMBEDDINGS
                     ? TG_DIALECT_OPENAI
                     : TG_DIALECT_ANTHROPIC;
    snprintf(r->request_id, sizeof(r->request_id), "00000000-0000-4000-8000-000000000001");
    /* the body: its own allocation, NUL-terminated as tg_request_read_body leaves it */
    size_t body_len = in <= end ? (size_t)(end - in) : 0;
    r->body = tg_arena_alloc(r->arena, body_len + 1);
    memcpy(r->body, in, body_len);
    r->body[body_len] = '\0';
    r->body_len = body_len;

    int rc = tg_dialect_parse(r);
    if (rc == TG_ERROR && r->error.status == 0)
        abort(); /* a refusal always says why */
    tg_arena_free(r->arena);
    free(r);
    for (size_t i = 0; i < n; i++)
        free(envp[i]);
    return 0;
}
