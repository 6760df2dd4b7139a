/*
 * request.c — the FastCGI side of a request: accept, params, body, response.
 * The only includer of fcgiapp.h.
 */
#include "request.h"

#include "config.h"

#include <fcgiapp.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "jsafe.h"
#include "peer.h"

#define REQUEST_ARENA_BLOCK (64 * 1024)

/* A request asks the kernel about its client's connection at most this often (peer.h). */
#define PEER_CHECK_MS 100
#define RESP_HEADERS_CAP (8 * 1024)

int tg_request_init(struct tg_request *r, const struct tg_config *config, int listen_fd)
{
    memset(r, 0, sizeof(*r));
    r->config = config;
    r->arena = tg_arena_new(REQUEST_ARENA_BLOCK);
    FCGX_Request *req = calloc(1, sizeof(*req));
    if (r->arena == NULL || req == NULL) {
        tg_arena_free(r->arena);
        free(req);
        return TG_ERROR;
    }
    /* FCGI_FAIL_ACCEPT_ON_INTR: a signal wakes a thread waiting in accept (shutdown). */
    if (FCGX_InitRequest(req, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        tg_arena_free(r->arena);
        free(req);
        return TG_ERROR;
    }
    r->fcgx = req;
    return TG_OK;
}

void tg_request_release(struct tg_request *r)
{
    if (r->fcgx != NULL) {
        FCGX_Free(r->fcgx, 1);
        free(r->fcgx);
    }
    tg_arena_free(r->arena);
    r->fcgx = NULL;
    r->arena = NULL;
}

static void reset_state(struct tg_request *r)
{
    struct tg_arena *arena = r->arena;
    const struct tg_config *config = r->config;
    struct tg_upstream *upstream = r->upstream;
    void *fcgx = r->fcgx;
    memset(r, 0, sizeof(*r));
    r->arena = arena;
    r->config = config;
    r->upstream = upstream;
    r->fcgx = fcgx;
    r->cost_micros = -1;
    r->outcome = "ok";
    r->journal_slot = -1;
}

static int64_t stamp_wall_clock(char *out, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tg_request_accept(struct tg_request *r)
{
    reset_state(r);
    if (FCGX_Accept_r(r->fcgx) < 0)
        return TG_ERROR;
    r->t_start_ms = tg_now_ms();
    r->started_at_ms = stamp_wall_clock(r->started_at, sizeof(r->started_at));
    tg_crypto_uuid7(r->request_id);
    const char *method = tg_request_param(r, "REQUEST_METHOD");
    const char *uri = tg_request_param(r, "REQUEST_URI");
    r->method = method != NULL ? method : "GET";
    if (uri == NULL)
        uri = tg_request_param(r, "SCRIPT_NAME");
    if (uri == NULL)
        uri = "/";
    const char *q = strchr(uri, '?');
    r->path = q != NULL ? tg_arena_strndup(r->arena, uri, (size_t)(q - uri)) : uri;
    if (r->path == NULL)
        r->path = "/";
    return TG_OK;
}

void tg_request_finish(struct tg_request *r)
{
    FCGX_Finish_r(r->fcgx);
    tg_arena_reset(r->arena);
}

const char *tg_request_param(struct tg_request *r, const char *name)
{
    FCGX_Request *req = r->fcgx;
    return FCGX_GetParam(name, req->envp);
}

const char *tg_request_header(struct tg_request *r, const char *name)
{
    char param[128];
    size_t len = strlen(name);
    if (len + 6 > sizeof(param))
        return NULL;
    size_t at = 0;
    /* CGI names Content-Type and Content-Length without the HTTP_ prefix */
    if (strcmp(name, "content-type") != 0 && strcmp(name, "content-length") != 0) {
        memcpy(param, "HTTP_", 5);
        at = 5;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        param[at++] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    param[at] = '\0';
    return tg_request_param(r, param);
}

/* Appends up to want bytes from FastCGI stdin; returns the count read (0 at EOF). */
static size_t read_some(FCGX_Request *req, char *buf, size_t want)
{
    int n = FCGX_GetStr(buf, (int)want, req->in);
    return n > 0 ? (size_t)n : 0;
}

static void free_text(void *text)
{
    free(text);
}

int tg_request_body_from_doc(struct tg_request *r)
{
    char *text = tg_jsafe_dumps(r->doc, JSON_COMPACT);
    if (text == NULL || tg_arena_cleanup_add(r->arena, free_text, text) != TG_OK) {
        free(text);
        return TG_ERROR;
    }
    r->body = text;
    r->body_len = strlen(text);
    return TG_OK;
}

int tg_request_read_body(struct tg_request *r)
{
    FCGX_Request *req = r->fcgx;
    size_t cap = r->config->max_body_bytes;
    const char *cl = tg_request_param(r, "CONTENT_LENGTH");
    size_t declared = 0;
    if (cl != NULL && cl[0] != '\0') {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end != '\0') {
            tg_request_fail(r, 400, NULL, "invalid Content-Length header", NULL);
            return TG_ERROR;
        }
        if (n > cap) {
            tg_request_fail(r, 413, NULL, "request body is too large",
                            "Content-Length %llu exceeds server.max_body_bytes %zu", n, cap);
            return TG_ERROR;
        }
        declared = (size_t)n;
    }
    /*
     * Size the buffer by the declared length (+1 to notice a longer body); without
     * one, grow by doubling up to the cap. Either way, never more than cap + 1.
     */
    size_t size = declared > 0 ? declared + 1 : 4096;
    char *buf = tg_arena_alloc(r->arena, size + 1);
    size_t len = 0;
    while (buf != NULL) {
        size_t n = read_some(req, buf + len, size - len);
        len += n;
        if (len > cap) {
            tg_request_fail(r, 413, NULL, "request body is too large",
                            "body exceeds server.max_body_bytes %zu", cap);
            return TG_ERROR;
        }
        if (n == 0 || (declared > 0 && len >= declared))
            break;
        if (len == size) {
            size_t grown = size * 2 > cap + 1 ? cap + 1 : size * 2;
            char *fresh = tg_arena_alloc(r->arena, grown + 1);
            if (fresh != NULL)
                memcpy(fresh, buf, len);
            buf = fresh;
            size = grown;
        }
    }
    if (buf == NULL) {
        tg_request_fail(r, 500, NULL, "out of memory", NULL);
        return TG_ERROR;
    }
    buf[len] = '\0';
    r->body = buf;
    r->body_len = len;
    return TG_OK;
}

const char *tg_request_provider(const struct tg_request *r)
{
    if (r->backend != NULL)
        return r->backend->provider->name;
    return r->model != NULL ? r->model->provider->name : NULL;
}

const char *tg_request_error_type(enum tg_dialect dialect, int status)
{
    (void)dialect; /* the record keeps Anthropic's vocabulary; error_json maps it */
    switch (status) {
    case 400:
    case 405:
    case 411:
    case 415: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return "api_error";
    }
}

void tg_request_fail(struct tg_request *r, int status, const char *type, const char *message,
                     const char *detail_fmt, ...)
{
    if (r->error.status != 0)
        return;
    r->error.status = status;
    r->error.type = type != NULL ? type : tg_request_error_type(r->dialect, status);
    snprintf(r->error.message, sizeof(r->error.message), "%s", message);
    if (detail_fmt != NULL) {
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(r->error.detail, sizeof(r->error.detail), detail_fmt, ap);
        va_end(ap);
    }
}

void tg_request_add_header(struct tg_request *r, const char *name, const char *value)
{
    if (r->headers_sent)
        return;
    size_t need = strlen(name) + strlen(value) + 4;
    if (r->resp_headers == NULL) {
        r->resp_headers = tg_arena_alloc(r->arena, RESP_HEADERS_CAP);
        if (r->resp_headers == NULL)
            return;
    }
    if (r->resp_headers_len + need + 1 > RESP_HEADERS_CAP)
        return; /* capped: a header list this long is a bug, not a client's doing */
    /* a header value never carries CR/LF through to the web server */
    if (strpbrk(value, "\r\n") != NULL || strpbrk(name, "\r\n:") != NULL)
        return;
    int n = snprintf(r->resp_headers + r->resp_headers_len, RESP_HEADERS_CAP - r->resp_headers_len,
                     "%s: %s\r\n", name, value);
    if (n > 0)
        r->resp_headers_len += (size_t)n;
}

void tg_request_add_headerf(struct tg_request *r, const char *name, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    tg_request_add_header(r, name, value);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return "Status";
    }
}

static int put(struct tg_request *r, const char *data, size_t len)
{
    FCGX_Request *req = r->fcgx;
    if (r->client_gone)
        return TG_ERROR;
    while (len > 0) {
        int chunk = len > (1 << 30) ? (1 << 30) : (int)len;
        if (FCGX_PutStr(data, chunk, req->out) != chunk) {
            r->client_gone = true;
            return TG_ERROR;
        }
        data += chunk;
        len -= (size_t)chunk;
    }
    return TG_OK;
}

int tg_request_send_headers(struct tg_request *r)
{
    if (r->headers_sent)
        return r->client_gone ? TG_ERROR : TG_OK;
    if (r->before_headers != NULL) {
        void (*hook)(struct tg_request *) = r->before_headers;
        r->before_headers = NULL; /* once, whatever it does */
        hook(r);
    }
    r->headers_sent = true;
    if (r->status == 0)
        r->status = 200;
    char line[64];
    int n = snprintf(line, sizeof(line), "Status: %d %s\r\n", r->status, reason_phrase(r->status));
    if (put(r, line, (size_t)n) != TG_OK)
        return TG_ERROR;
    if (put(r, "x-request-id: ", 14) || put(r, r->request_id, strlen(r->request_id)) ||
        put(r, "\r\n", 2))
        return TG_ERROR;
    if (r->resp_headers_len > 0 && put(r, r->resp_headers, r->resp_headers_len) != TG_OK)
        return TG_ERROR;
    return put(r, "\r\n", 2);
}

int tg_request_write(struct tg_request *r, const char *data, size_t len)
{
    if (tg_request_send_headers(r) != TG_OK)
        return TG_ERROR;
    return put(r, data, len);
}

int tg_request_flush(struct tg_request *r)
{
    FCGX_Request *req = r->fcgx;
    if (r->client_gone)
        return TG_ERROR;
    if (FCGX_FFlush(req->out) != 0) {
        r->client_gone = true;
        return TG_ERROR;
    }
    return TG_OK;
}

/*
 * Whether SERVER_PORT is the port the client's connection came in on, so that a
 * lone listener there means the connection is gone (peer.h). lighttpd's is (the
 * shipped lighttpd.conf says so: TOLLGATE_SERVER_PORT=local); Apache's is the
 * Host header's, which may name another port. Clients cannot set params.
 */
static bool server_port_is_local(struct tg_request *r)
{
    const char *says = tg_request_param(r, "TOLLGATE_SERVER_PORT");
    return says != NULL && strcmp(says, "local") == 0;
}

bool tg_request_client_left(struct tg_request *r)
{
    FCGX_Request *req = r->fcgx;
    if (r->client_gone)
        return true;
    if (req == NULL || req->ipcFd < 0)
        return false;
    /* once the body was read to its end, anything more on the connection (end of
     * file, an FCGI_ABORT_REQUEST) means the web server gave the request up */
    struct pollfd p = {.fd = req->ipcFd, .events = POLLIN | POLLRDHUP};
    if (r->body != NULL && poll(&p, 1, 0) == 1 &&
        (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0)
        r->client_gone = true;
    /* the web server may keep that connection open for a client that left (lighttpd
     * takes its FIN for a half-close): when it runs on this host, ask the kernel */
    else if (tg_now_ms() - r->peer_checked_ms >= PEER_CHECK_MS) {
        r->peer_checked_ms = tg_now_ms();
        enum tg_peer_state peer =
            tg_peer_state(tg_request_param(r, "SERVER_ADDR"), tg_request_param(r, "SERVER_PORT"),
                          tg_request_param(r, "REMOTE_ADDR"), tg_request_param(r, "REMOTE_PORT"));
        if (peer == TG_PEER_OPEN)
            r->peer_seen_open = true;
        else if (peer == TG_PEER_GONE ||
                 (peer == TG_PEER_LISTENING && (r->peer_seen_open || server_port_is_local(r))))
            r->client_gone = true;
    }
    return r->client_gone;
}

int tg_request_respond(struct tg_request *r, int status, const char *content_type, const char *body,
                       size_t len)
{
    r->status = status;
    tg_request_add_header(r, "Content-Type", content_type);
    tg_request_add_headerf(r, "Content-Length", "%zu", len);
    return tg_request_write(r, body, len);
}

/* OpenAI's type and code for one of Anthropic's error types (code NULL: null). */
static void openai_error_type(const struct tg_error *e, const char **type, const char **code)
{
    static const struct {
        const char *anthropic, *type, *code;
    } map[] = {
        {"invalid_request_error", "invalid_request_error", NULL},
        {"authentication_error", "invalid_request_error", "invalid_api_key"},
        {"permission_error", "permission_error", "permission_denied"},
        {"not_found_error", "invalid_request_error", "not_found"},
        {"request_too_large", "invalid_request_error", "request_too_large"},
        {"rate_limit_error", "rate_limit_error", "rate_limit_exceeded"},
        {"overloaded_error", "server_error", "overloaded"},
    };
    *type = "server_error";
    *code = NULL;
    for (size_t i = 0; i < TG_ARRAY_LEN(map); i++) {
        if (strcmp(map[i].anthropic, e->type) == 0) {
            *type = map[i].type;
            *code = map[i].code;
        }
    }
    if (e->status == 404 && strncmp(e->message, "model", 5) == 0)
        *code = "model_not_found";
}

/*
 * Anthropic's error shape {"type":"error","error":{"type":T,"message":M}}, or
 * OpenAI's {"error":{"message":M,"type":T,"param":null,"code":C}}.
 */
static char *error_json(const struct tg_request *r)
{
    json_t *doc;
    if (r->dialect == TG_DIALECT_MCP) {
        /* JSON-RPC 2.0: invalid request, session not found, internal error, ... */
        int status = r->error.status, code = r->jsonrpc_code;
        if (code == 0)
            code = status == 404                                     ? -32001
                   : status >= 500                                   ? -32603
                   : status == 429 || status == 401 || status == 403 ? -32000
                                                                     : -32600;
        doc = json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", r->jsonrpc_id, "error",
                        "code", code, "message", r->error.message);
    } else if (r->dialect == TG_DIALECT_OPENAI || r->dialect == TG_DIALECT_HTTP) {
        const char *type, *code;
        openai_error_type(&r->error, &type, &code);
        doc = json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", r->error.message, "type",
                        type, "param", "code", code); /* s?: a NULL code is null */
    } else {
        doc = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", r->error.type,
                        "message", r->error.message);
    }
    if (doc == NULL)
        return NULL;
    char *text = tg_jsafe_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

void tg_request_send_error(struct tg_request *r)
{
    if (r->error.status == 0)
        return;
    char *text = error_json(r);
    /* out of memory: still an error the client's SDK can read */
    bool openai = r->dialect == TG_DIALECT_OPENAI || r->dialect == TG_DIALECT_HTTP;
    const char *body = text != NULL ? text
                       : openai     ? "{\"error\":{\"message\":\"internal error\",\"type\":"
                                      "\"server_error\",\"param\":null,\"code\":null}}"
                                    : "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                                      "\"message\":\"internal error\"}}";
    if (!r->headers_sent) {
        tg_request_respond(r, r->error.status, "application/json", body, strlen(body));
    } else if (r->dialect == TG_DIALECT_MCP) {
        /* an MCP stream began: its last message is the JSON-RPC error */
        if (put(r, "event: message\ndata: ", 21) == TG_OK && put(r, body, strlen(body)) == TG_OK &&
            put(r, "\n\n", 2) == TG_OK)
            tg_request_flush(r);
    } else if (r->dialect != TG_DIALECT_ANTHROPIC) {
        /* a stream already began: OpenAI's streams end with an error chunk */
        if (put(r, "data: ", 6) == TG_OK && put(r, body, strlen(body)) == TG_OK &&
            put(r, "\n\n", 2) == TG_OK)
            tg_request_flush(r);
    } else {
        /* a stream already began: end it with an error event, as Anthropic does */
        if (put(r, "event: error\ndata: ", 19) == TG_OK && put(r, body, strlen(body)) == TG_OK &&
            put(r, "\n\n", 2) == TG_OK)
            tg_request_flush(r);
    }
    free(text);
}
