/*
 * access_log.c — the access line written for every request: a small writer into
 * a fixed buffer (no allocation, no tree), escaped as jansson escapes log.c's
 * event lines, and written through log.c with the same single write(2).
 */
#include "access_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "request.h"
#include "usage.h"

/*
 * A client's own request id is logged only if it is a short, plain token, and
 * never if it looks like a credential (a Tollgate key "tg-…", a provider key
 * "sk-…"): a confused client must not get a key into the log this way.
 */
static bool is_safe_id(const char *id)
{
    size_t len = strlen(id);
    if (strncmp(id, "tg-", 3) == 0 || strncmp(id, "sk-", 3) == 0)
        return false;
    return len > 0 && len <= 128 &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == len;
}

/* The access line: a JSON object written into a fixed buffer. */
struct line {
    char buf[4096];
    size_t len;
    size_t complete; /* where the last complete field ends */
    bool full;       /* something did not fit: the line ends at the last complete field */
};

static void put_raw(struct line *l, const char *text, size_t n)
{
    if (l->full || l->len + n >= sizeof(l->buf) - 2) { /* keep room for "}\n" */
        l->full = true;
        return;
    }
    memcpy(l->buf + l->len, text, n);
    l->len += n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    size_t want = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (want == 0 || want > n || s[0] > 0xF4)
        return 0;
    for (size_t i = 1; i < want; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return want;
}

/* A JSON string: escaped as jansson does; a byte that is not UTF-8 becomes U+FFFD. */
static void put_string(struct line *l, const char *s)
{
    if (s == NULL) {
        put_raw(l, "null", 4);
        return;
    }
    put_raw(l, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n && !l->full;) {
        unsigned char c = p[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put_raw(l, esc, 2);
            i++;
        } else if (c < 0x20) {
            int k = snprintf(esc, sizeof(esc), "\\u%04x", c);
            put_raw(l, esc, (size_t)k);
            i++;
        } else if (c < 0x80) {
            put_raw(l, (const char *)p + i, 1);
            i++;
        } else {
            size_t k = utf8_char(p + i, n - i);
            if (k == 0) {
                put_raw(l, "\\ufffd", 6);
                i++;
            } else {
                put_raw(l, (const char *)p + i, k);
                i += k;
            }
        }
    }
    put_raw(l, "\"", 1);
}

static void put_key(struct line *l, const char *key)
{
    if (!l->full)
        l->complete = l->len;
    put_raw(l, l->len > 1 ? ",\"" : "\"", l->len > 1 ? 2 : 1);
    put_raw(l, key, strlen(key));
    put_raw(l, "\":", 2);
}

static void field_string(struct line *l, const char *key, const char *value)
{
    put_key(l, key);
    put_string(l, value);
}

static void field_int(struct line *l, const char *key, int64_t value)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%" PRId64, value);
    put_key(l, key);
    put_raw(l, digits, (size_t)n);
}

static void field_literal(struct line *l, const char *key, const char *literal)
{
    put_key(l, key);
    put_raw(l, literal, strlen(literal));
}

void tg_access_log_write(struct tg_request *r)
{
    struct line l = {.buf = "{", .len = 1, .complete = 1};
    char ts[TG_LOG_TS_SIZE];
    tg_log_timestamp(ts);
    const struct tg_usage *u = &r->usage;
    field_string(&l, "ts", ts);
    field_string(&l, "level", "info");
    field_string(&l, "event", "request");
    field_string(&l, "request_id", r->request_id);
    if (r->trace.trace_id[0] != '\0') {
        field_string(&l, "trace_id", r->trace.trace_id);
        field_string(&l, "span_id", r->trace.span_id);
        if (r->trace.parent_id[0] != '\0')
            field_string(&l, "parent_span_id", r->trace.parent_id);
    }
    field_string(&l, "method", r->method);
    field_string(&l, "path", r->path);
    field_int(&l, "http_status", r->status);
    field_string(&l, "api_key_id", r->identity.key_prefix);
    field_string(&l, "user_id", r->identity.user_id);
    field_string(&l, "group_id", r->identity.group_id);
    field_string(&l, "provider", tg_request_provider(r));
    field_string(&l, "model", r->model != NULL ? r->model->name : NULL);
    if (r->attempts > 0) { /* which backend of the pool answered, after how many tries */
        field_string(&l, "backend", r->backend->id);
        field_int(&l, "attempts", r->attempts);
    }
    field_int(&l, "input_tokens", u->input_tokens);
    field_int(&l, "output_tokens", u->output_tokens);
    field_int(&l, "cache_read_tokens", u->cache_read_tokens);
    field_int(&l, "cache_write_tokens", u->cache_write_tokens);
    field_int(&l, "total_tokens", tg_usage_total(u));
    char usd[32];
    if (r->cost_micros >= 0)
        tg_usage_format_usd(r->cost_micros, usd, sizeof(usd));
    field_string(&l, "cost_usd", r->cost_micros >= 0 ? usd : NULL);
    field_int(&l, "latency_ms", tg_now_ms() - r->t_start_ms);
    field_int(&l, "upstream_ms", r->upstream_ms);
    field_literal(&l, "stream", r->stream ? "true" : "false");
    field_string(&l, "outcome", r->outcome);
    if (r->guard_rule != NULL) {
        field_string(&l, "guard_rule", r->guard_rule);
    } else if (r->mcp_guard.rule != NULL) { /* MCP: what the guardrails did to a tool call */
        field_string(&l, "guard_rule", r->mcp_guard.rule);
        field_string(&l, "guard_action", r->mcp_guard.action);
        field_string(&l, "guard_where", r->mcp_guard.where);
    }
    if (r->usage_source != NULL)
        field_string(&l, "usage_source", r->usage_source);
    field_int(&l, "pid", tg_log_pid());
    const char *client_id = tg_request_header(r, "x-request-id");
    if (client_id != NULL && is_safe_id(client_id))
        field_string(&l, "client_request_id", client_id);
    if (r->error.status != 0) {
        field_string(&l, "error_type", r->error.type);
        if (r->error.detail[0] != '\0')
            field_string(&l, "error_detail", r->error.detail);
    }
    if (l.full) /* cut short: end it at the last complete field */
        l.len = l.complete;
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    tg_log_append(l.buf, l.len);
}
