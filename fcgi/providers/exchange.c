/*
 * exchange.c — one backend call with failover, for every dialect and provider:
 * the call built, the attempts, their errors; the reply's relay is relay.c's.
 */
#include "exchange.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balancer.h"
#include "crypto.h"
#include "guardrail.h"
#include "enrich.h"
#include "jsafe.h"
#include "log.h"
#include "otel.h"
#include "otel_span.h"
#include "provider.h"
#include "registry.h"
#include "translate_openai.h"
#include "translate_openai_reply.h"
#include "quota.h"
#include "relay.h"
#include "request.h"
#include "upstream.h"

#define MAX_CALL_HEADERS 32 /* the provider's own (at most 12) and enrich's 16 */

int tg_exchange_add_header(struct tg_exchange *x, const char *fmt, ...)
{
    if (x->headers == NULL) {
        x->headers = tg_arena_calloc(x->r->arena, sizeof(char *) * MAX_CALL_HEADERS);
        if (x->headers == NULL)
            return TG_ERROR;
    }
    if (x->n_headers >= MAX_CALL_HEADERS)
        return TG_ERROR;
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* a header that could split the request, or was cut, is never sent */
    if (n < 0 || (size_t)n >= sizeof(line) || strpbrk(line, "\r\n") != NULL)
        return TG_ERROR;
    const char *copy = tg_arena_strdup(x->r->arena, line);
    if (copy == NULL)
        return TG_ERROR;
    x->headers[x->n_headers++] = copy;
    return TG_OK;
}

static void free_text(void *text)
{
    free(text);
}

int tg_exchange_set_body(struct tg_exchange *x, json_t *body)
{
    char *text = body != NULL ? tg_jsafe_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL || tg_arena_cleanup_add(x->r->arena, free_text, text) != TG_OK) {
        free(text);
        return TG_ERROR;
    }
    x->body = text;
    x->body_len = strlen(text);
    return TG_OK;
}

int tg_exchange_set_translated_body(struct tg_exchange *x, int rc, json_t *body,
                                    const char *message)
{
    if (rc != TG_OK) {
        json_decref(body);
        tg_request_fail(x->r, 400, "invalid_request_error", message, NULL);
        return TG_DECLINED;
    }
    return tg_exchange_set_body(x, body);
}

int tg_exchange_add_common_headers(struct tg_exchange *x)
{
    int rc = tg_exchange_add_header(x, "content-type: application/json");
    rc |= tg_exchange_add_header(x, "traceparent: %s", x->r->trace.traceparent);
    rc |= tg_exchange_add_header(x, "user-agent: tollgate/" PACKAGE_VERSION);
    rc |= tg_exchange_add_header(x, "expect:"); /* no 100-continue round trip */
    return rc == TG_OK ? TG_OK : TG_ERROR;
}

/*
 * A 200 reply whose usage was not read (memory ran out parsing it; the body
 * over server.max_response_bytes, cut or reset after the status line): the
 * provider bills it all the same,
 * so the usage row gets the bound that was reserved, as a dead worker's
 * request does (journal.c), never zero.
 */
static void bound_unread_usage(struct tg_request *r, const struct tg_exchange *x)
{
    const struct tg_usage *u = &r->usage;
    if (x->streaming || x->status != 200 || u->input_tokens > 0 || u->output_tokens > 0 ||
        u->cache_read_tokens > 0 || u->cache_write_tokens > 0)
        return;
    r->usage.input_tokens = tg_quota_estimate_input(r);
    r->usage.output_tokens = r->max_tokens;
    r->usage_source = "reserved_bound";
    tg_log_warn(r->request_id,
                "the usage of provider \"%s\" could not be read: billed at the "
                "reserved bound",
                r->backend->provider->name);
}

static int fail_transport(struct tg_request *r, enum tg_upstream_result result,
                          const struct tg_upstream_call *call, const struct tg_exchange *x)
{
    const char *provider = r->backend->provider->name;
    char message[160];
    bound_unread_usage(r, x);
    if (x->relay_failed) {
        r->outcome = "upstream_error";
        return TG_ERROR; /* the error event is r->error's */
    }
    if (x->abort_at_ms != 0 && !x->timed_out) {
        r->outcome = "client_disconnected";
        return TG_ERROR; /* nobody is left to answer */
    }
    if (x->too_big) {
        r->outcome = "upstream_error";
        snprintf(message, sizeof(message), "response from provider \"%s\" is too large", provider);
        tg_request_fail(r, 502, "api_error", message, "reply exceeds server.max_response_bytes");
        return TG_ERROR;
    }
    if (result == TG_UPSTREAM_TIMEOUT) {
        r->outcome = "upstream_timeout";
        snprintf(message, sizeof(message), "provider \"%s\" did not answer in time", provider);
        tg_request_fail(r, 504, "api_error", message, "%s", call->error);
        return TG_ERROR;
    }
    r->outcome = result == TG_UPSTREAM_UNREACHABLE ? "upstream_unreachable" : "upstream_error";
    snprintf(message, sizeof(message), "could not reach provider \"%s\"", provider);
    tg_request_fail(r, 502, "api_error", message, "%s", call->error);
    return TG_ERROR;
}

static void free_json(void *doc)
{
    json_decref(doc);
}

/* An OpenAI chat request as the pivot, made once per request (the arena keeps it). */
static int openai_pivot(struct tg_request *r, json_t **pivot)
{
    if (r->pivot != NULL) {
        *pivot = r->pivot;
        return TG_OK;
    }
    char message[256];
    json_t *out = NULL;
    int rc =
        tg_translate_openai_request_to_pivot(r->doc, r->max_tokens, &out, message, sizeof(message));
    if (rc == TG_DECLINED) {
        tg_request_fail(r, 400, "invalid_request_error", message, NULL);
        return TG_ERROR;
    }
    if (rc != TG_OK || tg_arena_cleanup_add(r->arena, free_json, out) != TG_OK) {
        json_decref(out);
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory translating");
        return TG_ERROR;
    }
    r->pivot = out;
    *pivot = out;
    return TG_OK;
}

/*
 * The request as the pivot (Anthropic Messages) for a backend that does not
 * speak the client's dialect: *pivot borrowed (NULL when the backend speaks
 * it). TG_ERROR with r->error set when the backend cannot be reached from it.
 */
static int pivot_for(struct tg_request *r, json_t **pivot)
{
    const struct tg_provider_ops *ops = tg_registry_provider(r->backend->provider->type);
    *pivot = NULL;
    if (ops != NULL && ops->native == (int)r->dialect)
        return TG_OK;
    if (ops != NULL && ops->encode != NULL && r->dialect == TG_DIALECT_ANTHROPIC) {
        *pivot = r->doc;
        return TG_OK;
    }
    if (ops != NULL && ops->encode != NULL && r->endpoint == TG_EP_CHAT_COMPLETIONS)
        return openai_pivot(r, pivot);
    char message[200];
    snprintf(message, sizeof(message),
             "model \"%s\" is served by provider \"%s\", which this API cannot reach",
             r->model->name, r->backend->provider->name);
    tg_request_fail(r, 400, "invalid_request_error", message, NULL);
    return TG_ERROR;
}

/* A translated 200 reply: the pivot's usage, and the reply in the client's dialect. */
static int translate_reply(struct tg_request *r, struct tg_exchange *x)
{
    json_t *reply = NULL;
    if (x->ops->decode_reply(x, &reply) != TG_OK) {
        bound_unread_usage(r, x);
        r->outcome = "upstream_error";
        tg_request_fail(r, 502, "api_error", "the provider's reply could not be read",
                        "provider \"%s\": reply not understood", r->backend->provider->name);
        return TG_ERROR;
    }
    tg_pivot_take_usage(json_object_get(reply, "usage"), &r->usage);
    tg_pivot_observe_reply(&x->meter, reply); /* its model and stop reason, for the trace */
    if (r->dialect == TG_DIALECT_OPENAI) {
        char message[256];
        json_t *chat = NULL;
        int rc = tg_translate_pivot_reply_to_openai(reply, r->client_model, (int64_t)time(NULL),
                                                    &chat, message, sizeof(message));
        json_decref(reply);
        reply = rc == TG_OK ? chat : NULL;
    }
    char *text = reply != NULL ? tg_jsafe_dumps(reply, JSON_COMPACT) : NULL;
    json_decref(reply);
    if (text == NULL || tg_arena_cleanup_add(r->arena, free, text) != TG_OK) {
        free(text);
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory");
        return TG_ERROR;
    }
    x->reply = text;
    x->reply_len = strlen(text);
    x->content_type = "application/json";
    return TG_OK;
}

static bool more_backends(const struct tg_balancer_member *members, size_t n, const bool *tried)
{
    for (size_t i = 0; i < n; i++)
        if (!tried[i] && members[i].weight > 0)
            return true;
    return false;
}

/* One attempt on r->backend: the call, and what its reply says of usage. */
static enum tg_upstream_result attempt(struct tg_request *r, struct tg_exchange *x,
                                       struct tg_upstream_call *call, json_t *pivot)
{
    const struct tg_provider *p = r->backend->provider;
    memset(x, 0, sizeof(*x));
    x->r = r;
    x->meter.usage = &r->usage;
    x->ops = tg_registry_provider(p->type);
    x->translated = x->ops->native != (int)r->dialect;
    int built = tg_relay_init(x);
    if (built == TG_OK)
        built = x->translated ? x->ops->encode(r, x, pivot) : x->ops->prepare(r, x);
    if (built == TG_OK && r->stream && tg_guardrail_replies(r)) /* event by event, masked */
        built = tg_relay_guard(x);
    if (built == TG_OK && r->n_enrich > 0 && x->headers != NULL) /* the operator's headers */
        built = tg_enrich_call_headers(r, x->headers, &x->n_headers, MAX_CALL_HEADERS);
    if (built == TG_DECLINED) {
        x->refused = true; /* the backend cannot express it: r->error says what */
        return TG_UPSTREAM_FAILED;
    }
    if (built != TG_OK) {
        snprintf(call->error, sizeof(call->error), "could not build the request");
        return TG_UPSTREAM_FAILED;
    }
    *call = (struct tg_upstream_call){
        .url = x->url,
        .headers = x->headers,
        .n_headers = x->n_headers,
        .body = x->body,
        .body_len = x->body_len,
        .connect_timeout_ms = p->connect_timeout_ms,
        .timeout_ms = p->timeout_ms,
    };
    tg_relay_attach(x, call);
    x->started_ms = tg_now_ms();
    enum tg_upstream_result result = tg_upstream_perform(r->upstream, call);
    r->upstream_ms = call->elapsed_ms;
    x->status = call->status;
    if (call->status > 0)
        r->upstream_contacted = true;
    if (x->timed_out && result == TG_UPSTREAM_ABORTED)
        result = TG_UPSTREAM_TIMEOUT;
    tg_relay_finish(x, result); /* a stream: its end, and its usage when it had none */
    return result;
}

/* Did this attempt fail in a way another backend may mend? */
static bool attempt_failed(const struct tg_request *r, const struct tg_exchange *x,
                           enum tg_upstream_result result)
{
    if (x->refused)
        return false; /* the request, not the backend */
    if (result == TG_UPSTREAM_ABORTED && !x->timed_out)
        return false; /* the client left, or the reply was too large: not the backend's fault */
    if (result != TG_UPSTREAM_OK)
        return !x->too_big;
    const struct tg_failover_config *f = &r->config->failover;
    for (size_t i = 0; i < f->n_retry_statuses; i++)
        if (x->status == f->retry_statuses[i])
            return true;
    return false;
}

static int no_backend(struct tg_request *r)
{
    char message[200];
    snprintf(message, sizeof(message), "no backend of model \"%s\" is available", r->model->name);
    r->outcome = "upstream_unavailable";
    tg_request_fail(r, 503, "overloaded_error", message, "every backend tried or open");
    return TG_ERROR;
}

/* Waits before the next attempt; false when the total deadline would pass. */
static bool back_off(struct tg_request *r, const struct tg_exchange *x, int64_t deadline_ms)
{
    const struct tg_failover_config *f = &r->config->failover;
    int64_t retry_after =
        x->retry_after != NULL
            ? tg_balancer_retry_after_ms(x->retry_after, time(NULL), f->backoff_max_ms)
            : 0;
    int64_t wait = tg_balancer_backoff_ms(r->attempts, f->backoff_base_ms, f->backoff_max_ms,
                                          tg_crypto_fast_random(), retry_after);
    if (tg_now_ms() + wait >= deadline_ms || r->client_gone)
        return false;
    struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return true;
}

static struct tg_balancer_policy breaker_policy(const struct tg_config *c)
{
    struct tg_balancer_policy policy = TG_BALANCER_POLICY_DEFAULT;
    policy.failure_threshold = c->failover.failure_threshold;
    policy.window_ms = c->failover.window_ms;
    policy.cooldown_ms = c->failover.cooldown_ms;
    policy.probe_timeout_ms = 0; /* the cooldown */
    return policy;
}

int tg_exchange_forward(struct tg_request *r, struct tg_exchange *x)
{
    const struct tg_model *m = r->model;
    struct tg_balancer_member members[TG_MAX_BACKENDS];
    bool tried[TG_MAX_BACKENDS] = {false};
    size_t n = m->n_backends < TG_MAX_BACKENDS ? m->n_backends : TG_MAX_BACKENDS;
    for (size_t i = 0; i < n; i++)
        members[i] = (struct tg_balancer_member){m->backends[i].id, m->backends[i].priority,
                                                 m->backends[i].weight};
    struct tg_shm *shm = tg_shm_get();
    struct tg_shm_circuits *circuits = shm != NULL ? &shm->circuits : NULL;
    struct tg_balancer_policy policy = breaker_policy(r->config);
    int64_t deadline = tg_now_ms() + r->config->failover.total_deadline_ms;
    struct tg_upstream_call call = {0};
    enum tg_upstream_result result = TG_UPSTREAM_FAILED;
    for (;;) {
        uint64_t probe = 0;
        int chosen = tg_balancer_pick(circuits, members, n, tried, &policy, tg_now_ms(),
                                      tg_crypto_fast_random(), &probe);
        if (chosen < 0 && r->attempts == 0) {
            /* every circuit is open: rather than fail the model, try as if all were closed
             * (Envoy's panic routing) — the breaker steers away from a failing backend
             * when there is another, it does not take a model down */
            chosen = tg_balancer_pick(NULL, members, n, tried, &policy, tg_now_ms(),
                                      tg_crypto_fast_random(), NULL);
            if (chosen >= 0 && n > 1) /* one backend: nothing to steer, nothing to say */
                tg_log_warn(r->request_id, "every backend of model \"%s\" is open: trying \"%s\"",
                            m->name, m->backends[chosen].id);
        }
        if (chosen < 0 && r->attempts == 0)
            return no_backend(r);
        if (chosen < 0)
            break; /* the others are open: the last attempt's failure answers */
        tried[chosen] = true;
        r->backend = &m->backends[chosen];
        json_t *pivot = NULL;
        if (pivot_for(r, &pivot) != TG_OK) {
            tg_balancer_release(circuits, r->backend->id, probe);
            return TG_ERROR;
        }
        r->attempts++;
        r->error.status = 0; /* an earlier attempt's failure is not this one's */
        int64_t attempt_ns = tg_otel_now_ns();
        result = attempt(r, x, &call, pivot);
        if (!x->refused) /* a refused one was never sent: no span */
            tg_otel_span_attempt(r, attempt_ns, x->status, (int)result);
        if (x->refused) {
            tg_balancer_release(circuits, r->backend->id, probe);
            r->attempts--; /* nothing was sent */
            return TG_ERROR;
        }
        bool failed = attempt_failed(r, x, result);
        tg_balancer_report(circuits, r->backend->id, !failed, probe, &policy, tg_now_ms());
        if (!failed || x->streaming || r->attempts >= r->config->failover.max_attempts ||
            !more_backends(members, n, tried) || !back_off(r, x, deadline))
            break;
        tg_log_warn(r->request_id, "backend \"%s\" failed (%s), trying another", r->backend->id,
                    result == TG_UPSTREAM_OK ? "an error status" : call.error);
    }
    if (result != TG_UPSTREAM_OK) {
        bound_unread_usage(r, x);
        return fail_transport(r, result, &call, x);
    }
    if (x->streaming) {
        if (x->meter.stream_error && x->abort_at_ms == 0)
            r->outcome = "upstream_error";
        return TG_OK;
    }
    if (x->status != 200) {
        r->outcome = "upstream_error";
        return TG_OK;
    }
    if (!x->translated)
        x->ops->read_usage(r, x->reply, x->reply_len); /* same dialect: it has one */
    else if (translate_reply(r, x) != TG_OK)
        return TG_ERROR;
    bound_unread_usage(r, x);
    /* the reply as the client will get it (and the cache keep it), its usage read already */
    return tg_guardrail_replies(r) ? tg_guardrail_reply(r, &x->reply, &x->reply_len) : TG_OK;
}

int tg_exchange_respond(struct tg_request *r, struct tg_exchange *x)
{
    if (x->streaming)
        return TG_OK; /* already sent as it arrived */
    int status = (int)x->status;
    if (status >= 400 &&
        (x->reply == NULL || x->ops->native != (int)r->dialect || x->ops->is_error_body == NULL ||
         !x->ops->is_error_body(x->reply, x->reply_len))) {
        char message[160];
        snprintf(message, sizeof(message), "provider \"%s\" answered HTTP %d",
                 r->backend->provider->name, status);
        tg_request_fail(r, status, NULL, message, NULL);
        if (x->retry_after != NULL)
            tg_request_add_header(r, "retry-after", x->retry_after);
        tg_request_send_error(r);
        return TG_OK;
    }
    if (x->retry_after != NULL)
        tg_request_add_header(r, "retry-after", x->retry_after);
    if (x->provider_request_id != NULL)
        tg_request_add_header(r, "request-id", x->provider_request_id);
    const char *type = x->content_type != NULL ? x->content_type : "application/json";
    return tg_request_respond(r, status, type, x->reply != NULL ? x->reply : "", x->reply_len);
}
