/*
 * log.c — JSON-lines logging: event lines built with jansson, and the shared
 * parts (timestamp, pid, one write(2) per line) of access_log.c's access line.
 */
#include "log.h"
#include "jsafe.h"

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

/* getpid(2) is a system call each time: the process keeps its pid, so ask once */
static _Thread_local long pid;

long tg_log_pid(void)
{
    if (pid == 0)
        pid = (long)getpid();
    return pid;
}

void tg_log_forked(void)
{
    pid = 0;
}

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

void tg_log_timestamp(char out[TG_LOG_TS_SIZE])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, TG_LOG_TS_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, TG_LOG_TS_SIZE - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void emit(json_t *line)
{
    if (line == NULL)
        return;
    char *text = tg_jsafe_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
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
    char ts[TG_LOG_TS_SIZE];
    tg_log_timestamp(ts);
    const char *base = strrchr(file, '/');
    json_t *obj = json_object();
    json_object_set_new(obj, "ts", json_string(ts));
    json_object_set_new(obj, "level", json_string(level_name(level)));
    json_object_set_new(obj, "msg", json_string(msg));
    json_object_set_new(obj, "file", json_string(base != NULL ? base + 1 : file));
    json_object_set_new(obj, "line", json_integer(line));
    if (request_id != NULL)
        json_object_set_new(obj, "request_id", json_string(request_id));
    json_object_set_new(obj, "pid", json_integer(tg_log_pid()));
    emit(obj);
}

void tg_log_append(const char *line, size_t len)
{
    ssize_t written = write(log_fd, line, len);
    (void)written; /* nowhere left to report a failed log write */
}
