/*
 * log.c — JSON-lines logging with jansson doing the escaping.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "request.h"

/* getpid(2) is a system call each time: the process keeps its pid, so ask once */
static long process_id(void)
{
    static _Thread_local long pid;
    if (pid == 0)
        pid = (long)getpid();
    return pid;
}
#include "usage.h"

static int log_fd = STDERR_FILENO;

int tg_log_open(const char *path)
{
    if (path == NULL) {
        log_fd = STDERR_FILENO;
        return TG_OK;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return TG_ERROR;
    log_fd = fd;
    return TG_OK;
}

static void iso8601_now(char out[32])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void emit(json_t *line)
{
    if (line == NULL)
        return;
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves room: we replace the NUL, write len + 1 */
    ssize_t written = write(log_fd, text, len + 1);
    (void)written; /* nowhere left to report a failed log write */
    free(text);
}

static const char *level_name(enum tg_log_level level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return names[level];
}

void tg_log_write(enum tg_log_level level, const char *file, int line, const char *request_id,
                  const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char ts[32];
    iso8601_now(ts);
    const char *base = strrchr(file, '/');
    json_t *obj = json_object();
    json_object_set_new(obj, "ts", json_string(ts));
    json_object_set_new(obj, "level", json_string(level_name(level)));
    json_object_set_new(obj, "msg", json_string(msg));
    json_object_set_new(obj, "file", json_string(base != NULL ? base + 1 : file));
    json_object_set_new(obj, "line", json_integer(line));
    if (request_id != NULL)
        json_object_set_new(obj, "request_id", json_string(request_id));
    json_object_set_new(obj, "pid", json_integer(process_id()));
    emit(obj);
}

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

static json_t *string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

void tg_log_access(struct tg_request *r)
{
    char ts[32];
    iso8601_now(ts);
    const struct tg_usage *u = &r->usage;
    json_t *obj = json_object();
    json_object_set_new(obj, "ts", json_string(ts));
    json_object_set_new(obj, "level", json_string("info"));
    json_object_set_new(obj, "event", json_string("request"));
    json_object_set_new(obj, "request_id", json_string(r->request_id));
    if (r->trace.trace_id[0] != '\0') {
        json_object_set_new(obj, "trace_id", json_string(r->trace.trace_id));
        json_object_set_new(obj, "span_id", json_string(r->trace.span_id));
        if (r->trace.parent_id[0] != '\0')
            json_object_set_new(obj, "parent_span_id", json_string(r->trace.parent_id));
    }
    json_object_set_new(obj, "method", string_or_null(r->method));
    json_object_set_new(obj, "path", string_or_null(r->path));
    json_object_set_new(obj, "http_status", json_integer(r->status));
    json_object_set_new(obj, "api_key_id", string_or_null(r->identity.key_prefix));
    json_object_set_new(obj, "user_id", string_or_null(r->identity.user_id));
    json_object_set_new(obj, "group_id", string_or_null(r->identity.group_id));
    json_object_set_new(obj, "provider",
                        string_or_null(r->model != NULL ? r->model->provider->name : NULL));
    json_object_set_new(obj, "model", string_or_null(r->model != NULL ? r->model->name : NULL));
    json_object_set_new(obj, "input_tokens", json_integer(u->input_tokens));
    json_object_set_new(obj, "output_tokens", json_integer(u->output_tokens));
    json_object_set_new(obj, "cache_read_tokens", json_integer(u->cache_read_tokens));
    json_object_set_new(obj, "cache_write_tokens", json_integer(u->cache_write_tokens));
    json_object_set_new(obj, "total_tokens", json_integer(tg_usage_total(u)));
    char usd[32];
    if (r->cost_micros >= 0) {
        tg_usage_format_usd(r->cost_micros, usd, sizeof(usd));
        json_object_set_new(obj, "cost_usd", json_string(usd));
    } else {
        json_object_set_new(obj, "cost_usd", json_null());
    }
    json_object_set_new(obj, "latency_ms", json_integer(tg_now_ms() - r->t_start_ms));
    json_object_set_new(obj, "upstream_ms", json_integer(r->upstream_ms));
    json_object_set_new(obj, "stream", json_boolean(r->stream));
    json_object_set_new(obj, "outcome", json_string(r->outcome));
    json_object_set_new(obj, "pid", json_integer(process_id()));
    const char *client_id = tg_request_header(r, "x-request-id");
    if (client_id != NULL && is_safe_id(client_id))
        json_object_set_new(obj, "client_request_id", json_string(client_id));
    if (r->error.status != 0) {
        json_object_set_new(obj, "error_type", json_string(r->error.type));
        if (r->error.detail[0] != '\0')
            json_object_set_new(obj, "error_detail", json_string(r->error.detail));
    }
    emit(obj);
}
