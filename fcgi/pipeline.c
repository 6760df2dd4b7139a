/*
 * pipeline.c — the request pipeline. Each step lives in its own module; this file
 * only says in which order they run and what a failure means for the rest.
 */
#include "pipeline.h"

#include <string.h>

#include "access_log.h"
#include "admin.h"
#include "auth.h"
#include "capacity.h"
#include "denials.h"
#include "enrich.h"
#include "guardrail.h"
#include "response_cache.h"
#include "dialect.h"
#include "exchange.h"
#include "health.h"
#include "journal.h"
#include "mcp.h"
#include "metrics.h"
#include "models.h"
#include "otel_span.h"
#include "preauth.h"
#include "queue.h"
#include "quota.h"
#include "ratelimit.h"
#include "settle.h"
#include "request.h"
#include "route.h"
#include "routes.h"
#include "trace.h"
#include "usage.h"
#include "usage_report.h"

/*
 * A request whose body is bad still answers 401 first when its key is bad, as
 * Anthropic does; only then the body's 400/404.
 */
static int reject_body(struct tg_request *r)
{
    struct tg_error body_error = r->error;
    r->error.status = 0;
    if (tg_auth_identify(r) != TG_OK)
        return TG_ERROR;
    r->error = body_error;
    return TG_ERROR;
}

/*
 * POST /v1/messages, /v1/chat/completions, /v1/embeddings: any dialect, any
 * provider (the step numbers are README's; kept in a column)
 */
// clang-format off
static int llm_call(struct tg_request *r)
{
    struct tg_exchange *x = tg_arena_calloc(r->arena, sizeof(*x));
    if (x == NULL)
        return TG_ERROR;
    if (tg_request_read_body(r) != TG_OK)           /* 1. read (bounded) */
        return TG_ERROR;
    if (tg_queue_check(r) != TG_OK)                 /*    still wanted after its wait? */
        return TG_ERROR;
    if (tg_auth_read(r) != TG_OK)                   /* 3. identify: key hash, or JWT verified */
        return TG_ERROR;
    int parsed = tg_dialect_parse(r);               /*    the dialect: model, bounds */
    if (parsed == TG_DECLINED)                      /*    a rule answers for this model */
        return tg_routes_respond_direct(r, r->route);
    if (parsed != TG_OK)
        return reject_body(r);
    if (tg_quota_reserve(r) != TG_OK)               /* 4. reserve: identity + RBAC + quotas */
        return TG_ERROR;
    if (tg_ratelimit_take_local(r) == TG_DECLINED) { /*    this host's buckets */
        tg_quota_release(r);
        return TG_ERROR;
    }
    tg_quota_add_headers(r);
    int guarded = tg_guardrail_check(r);            /* 5. guard: the caller's role's rules */
    if (guarded != TG_OK) {
        r->status = r->error.status;
        if (guarded == TG_DECLINED)
            tg_settle_request(r);                   /*    a block is settled: zero cost, audited */
        else
            tg_quota_release(r);
        return TG_ERROR;
    }
    if (tg_enrich_apply(r) != TG_OK) {              /*    enrich: the operator's system text, headers */
        tg_quota_release(r);
        return TG_ERROR;
    }
    const char *cached, *cached_type;
    size_t cached_len;
    if (tg_response_cache_lookup(r, &cached, &cached_len, &cached_type) == TG_OK) {
        r->status = 200;                            /* 6. cache: a hit answers, billed at 0 */
        tg_settle_request(r);
        tg_request_add_header(r, "x-tollgate-cost-usd", "0.000000");
        return tg_request_respond(r, 200, cached_type, cached, cached_len);
    }
    if (tg_queue_check(r) != TG_OK) {               /*    still wanted? never forwarded, never billed */
        tg_quota_release(r);
        return TG_ERROR;
    }
    if (tg_journal_begin(r) != TG_OK) {             /*    on disk before it goes out */
        tg_quota_release(r);
        tg_request_fail(r, 503, "api_error", "the gateway cannot record requests right now",
                        "journal write failed");
        return TG_ERROR;
    }
    int rc = tg_exchange_forward(r, x);             /* 7. forward (streams as it goes) */
    tg_quota_check_bound(r);                        /*    usage within the bound? */
    /* the usage row records the status sent to the client (a begun stream: 200) */
    if (!r->headers_sent)
        r->status = rc != TG_OK ? r->error.status : (int)x->status;
    tg_settle_request(r);                           /* 8. settle: usage + quotas, grouped */
    if (x->streaming || x->translated)              /*    its model, finish reasons: the trace's */
        tg_otel_span_response(r, x->meter.model, x->meter.finish_reasons);
    else if (rc == TG_OK && x->status == 200)
        tg_otel_span_reply(r, x->reply, x->reply_len);
    if (rc != TG_OK)
        return TG_ERROR;
    if (!x->streaming && x->status == 200)          /*    a miss's reply, for the next */
        tg_response_cache_store(r, x->reply, x->reply_len, x->content_type);
    if (!x->streaming && r->cost_micros >= 0 && x->status == 200) {
        char usd[32];
        tg_usage_format_usd(r->cost_micros, usd, sizeof(usd));
        tg_request_add_header(r, "x-tollgate-cost-usd", usd);
    }
    return tg_exchange_respond(r, x);
}
// clang-format on

/*
 * POST /v1/messages/count_tokens: free at the provider, so nothing is reserved
 * or billed; identity and RBAC (the model) still apply.
 */
static int count_tokens(struct tg_request *r)
{
    struct tg_exchange *x = tg_arena_calloc(r->arena, sizeof(*x));
    if (x == NULL || tg_request_read_body(r) != TG_OK || tg_auth_read(r) != TG_OK)
        return TG_ERROR;
    if (tg_dialect_parse(r) != TG_OK)
        return reject_body(r);
    if (tg_auth_identify_model(r, r->model->name) != TG_OK || tg_exchange_forward(r, x) != TG_OK)
        return TG_ERROR;
    return tg_exchange_respond(r, x);
}

void tg_pipeline_run(struct tg_request *r)
{
    const char *traceparent = tg_request_header(r, "traceparent");
    tg_trace_begin(&r->trace, traceparent); /*    trace context, for logs and provider */
    tg_otel_span_begin(r);                  /*    and its spans, when exported */
    int rc = tg_route_resolve(r);           /* 2. route */
    /* a thread is left for what is quick: beyond the host's capacity, a 503 now */
    bool quick = r->endpoint == TG_EP_HEALTH || r->endpoint == TG_EP_METRICS;
    bool admitted = false;
    if (rc == TG_OK && !quick) {
        rc = tg_capacity_admit(r) == TG_OK ? TG_OK : TG_ERROR;
        admitted = rc == TG_OK;
    }
    if (rc == TG_OK) {
        switch (r->endpoint) {
        case TG_EP_MESSAGES:
        case TG_EP_CHAT_COMPLETIONS:
        case TG_EP_EMBEDDINGS:
        case TG_EP_HTTP: rc = llm_call(r); break;
        case TG_EP_COUNT_TOKENS: rc = count_tokens(r); break;
        case TG_EP_DIRECT: rc = tg_routes_respond_direct(r, r->route); break;
        case TG_EP_MODELS:
            tg_models_dialect(r); /* errors too in the caller's dialect */
            rc = tg_auth_identify(r) == TG_OK ? tg_models_handle(r) : TG_ERROR;
            break;
        case TG_EP_USAGE: rc = tg_usage_report_handle(r); break;
        case TG_EP_HEALTH: rc = tg_health_handle(r); break;
        case TG_EP_METRICS: rc = tg_metrics_handle(r); break;
        case TG_EP_ADMIN: rc = tg_admin_handle(r); break;
        case TG_EP_MCP: rc = tg_mcp_handle(r); break;
        case TG_EP_MCP_METADATA: rc = tg_mcp_metadata(r); break;
        case TG_EP_NONE: rc = TG_ERROR; break;
        }
    }
    if (rc != TG_OK && r->error.status == 0 && !r->client_gone)
        tg_request_fail(r, 500, "api_error", "internal error", "handler failed without a reason");
    if (r->error.status != 0 && !r->client_gone) {
        if (strcmp(r->outcome, "ok") == 0)
            r->outcome = "rejected";
        tg_quota_add_headers(r); /* a 429 tells the client where it stands too */
        tg_request_send_error(r);
    }
    if (admitted)
        tg_capacity_leave();
    tg_access_log_write(r); /* 9. report */
    tg_metrics_record(r);   /*    and count it for /metrics */
    tg_denials_record(r);   /*    a refusal: counted for tollgate.denials */
    /* a failed authentication: counted for its address (preauth.h) */
    tg_preauth_record(r, tg_auth_key_hash_of(r));
    tg_otel_span_end(r); /* its spans to the exporter's queue (sampled, never waits) */
}
