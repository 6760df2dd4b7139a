/*
 * otel_span.c — a request's spans: notes, sampling, building (otel_span.h).
 */
#include "otel_span.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "jscan.h"
#include "otel.h"
#include "request.h"
#include "trace.h"
#include "upstream.h"
#include "usage.h"

#define MAX_ATTEMPTS 8 /* failover.max_attempts is small; later ones are counted, not spanned */
#define MAX_SPANS (3 + MAX_ATTEMPTS)

struct attempt_note {
    int64_t start_ns, end_ns;
    const struct tg_backend *backend;
    long status;
    int result;
};

struct tg_otel_notes {
    int64_t start_ns;
    bool head_sampled; /* the decision at the start: the flag sent upstream */
    bool reserved_noted, settled_noted;
    int64_t reserve_start_ns, reserve_end_ns;
    int reserve_rc;
    int64_t settle_start_ns, settle_end_ns;
    const char *settle_result; /* a string literal */
    struct attempt_note attempts[MAX_ATTEMPTS];
    int n_attempts;
    char response_model[128];
    char finish_reasons[TG_OTEL_VALUE_MAX]; /* '\n'-separated */
};

void tg_otel_span_begin(struct tg_request *r)
{
    r->otel = tg_otel_enabled() ? tg_arena_calloc(r->arena, sizeof(*r->otel)) : NULL;
    if (r->otel == NULL)
        return;
    r->otel->start_ns = tg_otel_now_ns();
    r->otel->head_sampled = tg_otel_span_head_sampled(&r->trace, r->config->otel.sample_threshold);
    /* a trace Tollgate started: the provider is told what the ratio decided */
    if (r->trace.parent_id[0] == '\0')
        tg_trace_set_sampled(&r->trace, r->otel->head_sampled);
}

void tg_otel_span_reserve(struct tg_request *r, int64_t start_ns, int rc)
{
    if (r->otel == NULL)
        return;
    r->otel->reserved_noted = true;
    r->otel->reserve_start_ns = start_ns;
    r->otel->reserve_end_ns = tg_otel_now_ns();
    r->otel->reserve_rc = rc;
}

void tg_otel_span_attempt(struct tg_request *r, int64_t start_ns, long status, int result)
{
    if (r->otel == NULL || r->otel->n_attempts >= MAX_ATTEMPTS)
        return;
    r->otel->attempts[r->otel->n_attempts++] =
        (struct attempt_note){start_ns, tg_otel_now_ns(), r->backend, status, result};
}

void tg_otel_span_settle(struct tg_request *r, int64_t start_ns, const char *result)
{
    if (r->otel == NULL)
        return;
    r->otel->settled_noted = true;
    r->otel->settle_start_ns = start_ns;
    r->otel->settle_end_ns = tg_otel_now_ns();
    r->otel->settle_result = result;
}

static void add_reason(struct tg_otel_notes *n, const char *reason)
{
    size_t used = strlen(n->finish_reasons);
    if (reason == NULL || reason[0] == '\0' || strchr(reason, '\n') != NULL)
        return;
    snprintf(n->finish_reasons + used, sizeof(n->finish_reasons) - used, "%s%s",
             used > 0 ? "\n" : "", reason);
}

/* The reply's members alone are parsed (jscan): its content is skipped, never copied. */
void tg_otel_span_reply(struct tg_request *r, const char *reply, size_t len)
{
    const char *v;
    size_t v_len;
    if (r->otel == NULL || reply == NULL)
        return;
    if (tg_jscan_member(reply, len, "model", &v, &v_len) == TG_OK) {
        json_t *model = json_loadb(v, v_len, JSON_DECODE_ANY, NULL);
        if (json_is_string(model))
            snprintf(r->otel->response_model, sizeof(r->otel->response_model), "%s",
                     json_string_value(model));
        json_decref(model);
    }
    if (tg_jscan_member(reply, len, "stop_reason", &v, &v_len) == TG_OK) { /* Anthropic */
        json_t *reason = json_loadb(v, v_len, JSON_DECODE_ANY, NULL);
        add_reason(r->otel, json_string_value(reason));
        json_decref(reason);
    } else if (tg_jscan_member(reply, len, "choices", &v, &v_len) == TG_OK) { /* OpenAI */
        json_t *choices = json_loadb(v, v_len, 0, NULL);
        size_t i;
        json_t *choice;
        json_array_foreach(choices, i, choice)
            add_reason(r->otel, json_string_value(json_object_get(choice, "finish_reason")));
        json_decref(choices);
    }
}

void tg_otel_span_response(struct tg_request *r, const char *model, const char *finish_reasons)
{
    if (r->otel == NULL)
        return;
    if (model != NULL && model[0] != '\0')
        snprintf(r->otel->response_model, sizeof(r->otel->response_model), "%s", model);
    if (finish_reasons != NULL)
        snprintf(r->otel->finish_reasons, sizeof(r->otel->finish_reasons), "%s", finish_reasons);
}

bool tg_otel_span_head_sampled(const struct tg_trace *t, uint64_t threshold)
{
    if (t->parent_id[0] != '\0') /* the client decided: its sampled flag (bit 0) */
        return (tg_crypto_hex_value(t->flags[1]) & 1) != 0;
    uint64_t bits = 0;
    for (size_t i = 32 - 14; i < 32; i++)
        bits = (bits << 4) | (uint64_t)(tg_crypto_hex_value(t->trace_id[i]) & 0xf);
    return bits < threshold;
}

/* ---- building ---- */

static const char *gen_ai_system(const struct tg_provider *p)
{
    switch (p->type) {
    case TG_PROVIDER_ANTHROPIC: return "anthropic";
    case TG_PROVIDER_OPENAI: return "openai";
    case TG_PROVIDER_AZURE_OPENAI: return "azure.ai.openai";
    case TG_PROVIDER_BEDROCK: return "aws.bedrock";
    case TG_PROVIDER_GEMINI: return "gcp.gemini";
    case TG_PROVIDER_VERTEX: return "gcp.vertex_ai";
    case TG_PROVIDER_HTTP:
    default: return p->name;
    }
}

static const char *operation(const struct tg_request *r)
{
    switch (r->endpoint) {
    case TG_EP_EMBEDDINGS: return "embeddings";
    case TG_EP_COUNT_TOKENS: return "count_tokens";
    default: return "chat";
    }
}

static void child_of(struct tg_otel_span *s, const struct tg_request *r, const char *name,
                     enum tg_otel_kind kind, int64_t start_ns, int64_t end_ns)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->trace_id, sizeof(s->trace_id), "%s", r->trace.trace_id);
    snprintf(s->parent_id, sizeof(s->parent_id), "%s", r->trace.span_id);
    uint64_t id = tg_crypto_fast_random();
    snprintf(s->span_id, sizeof(s->span_id), "%016llx", (unsigned long long)(id != 0 ? id : 1));
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->kind = kind;
    s->start_ns = start_ns;
    s->end_ns = end_ns >= start_ns ? end_ns : start_ns;
}

static const char *const result_names[] = {"ok", "unreachable", "timeout", "failed", "aborted"};

static void attempt_span(struct tg_otel_span *s, const struct tg_request *r,
                         const struct attempt_note *a, int retry)
{
    const char *upstream_model = a->backend != NULL ? a->backend->upstream_model : NULL;
    char name[96];
    snprintf(name, sizeof(name), "%s %s", operation(r),
             upstream_model != NULL ? upstream_model : "");
    child_of(s, r, name, TG_OTEL_KIND_CLIENT, a->start_ns, a->end_ns);
    if (a->backend != NULL) {
        tg_otel_attr_str(s, "gen_ai.system", gen_ai_system(a->backend->provider));
        tg_otel_attr_str(s, "gen_ai.provider.name", gen_ai_system(a->backend->provider));
        tg_otel_attr_str(s, "gen_ai.request.model", upstream_model);
        tg_otel_attr_str(s, "tollgate.backend", a->backend->id);
        tg_otel_attr_str(s, "tollgate.provider", a->backend->provider->name);
    }
    tg_otel_attr_str(s, "gen_ai.operation.name", operation(r));
    tg_otel_attr_int(s, "tollgate.retry", retry);
    if (a->status > 0)
        tg_otel_attr_int(s, "http.response.status_code", a->status);
    bool failed = a->result != TG_UPSTREAM_OK || a->status >= 400;
    if (a->result != TG_UPSTREAM_OK && a->result >= 0 &&
        a->result < (int)TG_ARRAY_LEN(result_names))
        tg_otel_attr_str(s, "error.type", result_names[a->result]);
    else if (a->status >= 400) {
        char code[16];
        snprintf(code, sizeof(code), "%ld", a->status);
        tg_otel_attr_str(s, "error.type", code);
    }
    s->status = failed ? TG_OTEL_STATUS_ERROR : TG_OTEL_STATUS_UNSET;
}

static void server_span(struct tg_otel_span *s, const struct tg_request *r, int64_t end_ns,
                        bool failed)
{
    const struct tg_otel_notes *n = r->otel;
    memset(s, 0, sizeof(*s));
    snprintf(s->trace_id, sizeof(s->trace_id), "%s", r->trace.trace_id);
    snprintf(s->span_id, sizeof(s->span_id), "%s", r->trace.span_id);
    snprintf(s->parent_id, sizeof(s->parent_id), "%s", r->trace.parent_id);
    const char *request_model = r->client_model != NULL ? r->client_model
                                : r->model != NULL      ? r->model->name
                                                        : "";
    snprintf(s->name, sizeof(s->name), "%s %s", operation(r), request_model);
    s->kind = TG_OTEL_KIND_SERVER;
    s->start_ns = n->start_ns;
    s->end_ns = end_ns;
    const struct tg_backend *b = r->backend;
    if (b == NULL && r->model != NULL && r->model->n_backends > 0)
        b = &r->model->backends[0];
    tg_otel_attr_str(s, "gen_ai.operation.name", operation(r));
    if (b != NULL) {
        tg_otel_attr_str(s, "gen_ai.system", gen_ai_system(b->provider));
        tg_otel_attr_str(s, "gen_ai.provider.name", gen_ai_system(b->provider));
    }
    if (request_model[0] != '\0')
        tg_otel_attr_str(s, "gen_ai.request.model", request_model);
    if (n->response_model[0] != '\0')
        tg_otel_attr_str(s, "gen_ai.response.model", n->response_model);
    else if (r->upstream_contacted && b != NULL)
        tg_otel_attr_str(s, "gen_ai.response.model", b->upstream_model);
    if (r->upstream_contacted || r->cost_micros >= 0) {
        tg_otel_attr_int(s, "gen_ai.usage.input_tokens", r->usage.input_tokens);
        tg_otel_attr_int(s, "gen_ai.usage.output_tokens", r->usage.output_tokens);
    }
    if (n->finish_reasons[0] != '\0') {
        tg_otel_attr_str(s, "gen_ai.response.finish_reasons", n->finish_reasons);
        s->attrs[s->n_attrs - 1].type = TG_OTEL_STRINGS;
    }
    if (r->model != NULL)
        tg_otel_attr_str(s, "tollgate.model", r->model->name);
    tg_otel_attr_str(s, "tollgate.user_id", r->identity.user_id);
    tg_otel_attr_str(s, "tollgate.group_id", r->identity.group_id);
    if (r->identity.api_key_id > 0)
        tg_otel_attr_int(s, "tollgate.api_key_id", r->identity.api_key_id);
    if (r->cost_micros >= 0) { /* exact: integer micro-dollars, and their decimal text */
        char usd[32];
        tg_usage_format_usd(r->cost_micros, usd, sizeof(usd));
        tg_otel_attr_int(s, "tollgate.cost_micros", r->cost_micros);
        tg_otel_attr_str(s, "tollgate.cost_usd", usd);
    }
    tg_otel_attr_str(s, "tollgate.outcome", r->outcome);
    tg_otel_attr_str(s, "tollgate.request_id", r->request_id);
    tg_otel_attr_bool(s, "tollgate.stream", r->stream);
    if (r->attempts > 0)
        tg_otel_attr_int(s, "tollgate.attempts", r->attempts);
    tg_otel_attr_str(s, "http.request.method", r->method);
    if (r->endpoint_path != NULL)
        tg_otel_attr_str(s, "http.route", r->endpoint_path);
    tg_otel_attr_int(s, "http.response.status_code", r->status);
    if (failed) {
        s->status = TG_OTEL_STATUS_ERROR;
        tg_otel_attr_str(s, "error.type", r->error.type != NULL ? r->error.type : r->outcome);
        /* the client's message: client-safe by the error record's contract */
        snprintf(s->status_message, sizeof(s->status_message), "%s",
                 r->error.message[0] != '\0' ? r->error.message : r->outcome);
    }
}

static bool is_model_call(const struct tg_request *r)
{
    return r->endpoint == TG_EP_MESSAGES || r->endpoint == TG_EP_CHAT_COMPLETIONS ||
           r->endpoint == TG_EP_EMBEDDINGS || r->endpoint == TG_EP_HTTP ||
           r->endpoint == TG_EP_COUNT_TOKENS;
}

void tg_otel_span_end(struct tg_request *r)
{
    struct tg_otel_notes *n = r->otel;
    if (n == NULL || !is_model_call(r))
        return;
    const struct tg_otel_config *c = &r->config->otel;
    bool failed =
        r->status >= 400 || r->error.status >= 400 || strncmp(r->outcome, "upstream_", 9) == 0;
    /* an error may still be kept when the start said no (its traceparent said 00) */
    bool keep = n->head_sampled || (failed && c->always_sample_errors);
    if (!keep)
        return;
    if (!tg_otel_accepting()) { /* the collector failed: nothing is built while it backs off */
        tg_otel_count_dropped(1 + (size_t)n->n_attempts + n->reserved_noted + n->settled_noted);
        return;
    }
    struct tg_otel_span *spans = tg_arena_alloc(r->arena, MAX_SPANS * sizeof(*spans));
    if (spans == NULL)
        return;
    size_t k = 0;
    server_span(&spans[k++], r, tg_otel_now_ns(), failed);
    if (n->reserved_noted) {
        struct tg_otel_span *s = &spans[k++];
        child_of(s, r, "tollgate.reserve", TG_OTEL_KIND_INTERNAL, n->reserve_start_ns,
                 n->reserve_end_ns);
        if (r->quota != NULL && r->quota->status != NULL)
            tg_otel_attr_str(s, "tollgate.reserve.status", r->quota->status);
        if (n->reserve_rc != TG_OK)
            s->status = TG_OTEL_STATUS_ERROR;
    }
    for (int i = 0; i < n->n_attempts; i++)
        attempt_span(&spans[k++], r, &n->attempts[i], i);
    if (n->settled_noted) {
        struct tg_otel_span *s = &spans[k++];
        child_of(s, r, "tollgate.settle", TG_OTEL_KIND_INTERNAL, n->settle_start_ns,
                 n->settle_end_ns);
        tg_otel_attr_str(s, "tollgate.settle.result", n->settle_result);
        if (n->settle_result != NULL && strcmp(n->settle_result, "lost") == 0)
            s->status = TG_OTEL_STATUS_ERROR;
    }
    tg_otel_submit(spans, k);
}
