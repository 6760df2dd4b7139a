/*
 * spool.c — durable JSON-lines spool for unsettled usage.
 *
 * Replay holds the file's exclusive lock while it writes rows, so appenders wait
 * (bounded by the database's statement timeout per row) rather than race a
 * truncate. Replays are rare — only after an outage — so simplicity wins here.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "usage.h"

#define SPOOL_LINE_MAX (16 * 1024)

static char spool_path[4096];

int tg_spool_init(const char *dir)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return TG_ERROR;
    if (access(dir, W_OK) != 0)
        return TG_ERROR;
    snprintf(spool_path, sizeof(spool_path), "%s/usage.spool", dir);
    return TG_OK;
}

static json_t *string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

char *tg_spool_encode(const struct tg_usage_record *rec)
{
    json_t *o = json_object();
    json_object_set_new(o, "request_id", json_string(rec->request_id));
    json_object_set_new(o, "ts", json_string(rec->ts));
    json_object_set_new(o, "api_key_id", json_integer(rec->api_key_id));
    json_object_set_new(o, "user_id", string_or_null(rec->user_id));
    json_object_set_new(o, "group_id", string_or_null(rec->group_id));
    json_object_set_new(o, "provider", string_or_null(rec->provider));
    json_object_set_new(o, "model", string_or_null(rec->model));
    json_object_set_new(o, "input_tokens", json_integer(rec->usage.input_tokens));
    json_object_set_new(o, "output_tokens", json_integer(rec->usage.output_tokens));
    json_object_set_new(o, "cache_read_tokens", json_integer(rec->usage.cache_read_tokens));
    json_object_set_new(o, "cache_write_tokens", json_integer(rec->usage.cache_write_tokens));
    json_object_set_new(o, "http_status", json_integer(rec->http_status));
    json_object_set_new(o, "latency_ms", json_integer(rec->latency_ms));
    json_object_set_new(o, "upstream_ms", json_integer(rec->upstream_ms));
    json_object_set_new(o, "stream", json_boolean(rec->stream));
    json_object_set_new(o, "outcome", string_or_null(rec->outcome));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* Parses one line into rec; strings borrow from *doc (caller json_decrefs it). */
static int decode(const char *line, struct tg_usage_record *rec, json_t **doc)
{
    *doc = json_loads(line, 0, NULL);
    if (*doc == NULL)
        return TG_ERROR;
    json_t *o = *doc;
    memset(rec, 0, sizeof(*rec));
    rec->request_id = json_string_value(json_object_get(o, "request_id"));
    rec->ts = json_string_value(json_object_get(o, "ts"));
    rec->api_key_id = json_integer_value(json_object_get(o, "api_key_id"));
    rec->user_id = json_string_value(json_object_get(o, "user_id"));
    rec->group_id = json_string_value(json_object_get(o, "group_id"));
    rec->provider = json_string_value(json_object_get(o, "provider"));
    rec->model = json_string_value(json_object_get(o, "model"));
    rec->usage.input_tokens = json_integer_value(json_object_get(o, "input_tokens"));
    rec->usage.output_tokens = json_integer_value(json_object_get(o, "output_tokens"));
    rec->usage.cache_read_tokens = json_integer_value(json_object_get(o, "cache_read_tokens"));
    rec->usage.cache_write_tokens = json_integer_value(json_object_get(o, "cache_write_tokens"));
    rec->http_status = (int)json_integer_value(json_object_get(o, "http_status"));
    rec->latency_ms = json_integer_value(json_object_get(o, "latency_ms"));
    rec->upstream_ms = json_integer_value(json_object_get(o, "upstream_ms"));
    rec->stream = json_is_true(json_object_get(o, "stream"));
    rec->outcome = json_string_value(json_object_get(o, "outcome"));
    return rec->request_id != NULL && rec->ts != NULL ? TG_OK : TG_ERROR;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return TG_ERROR;
        data += n;
        len -= (size_t)n;
    }
    return TG_OK;
}

int tg_spool_append(const struct tg_usage_record *rec)
{
    if (spool_path[0] == '\0')
        return TG_ERROR;
    char *line = tg_spool_encode(rec);
    if (line == NULL)
        return TG_ERROR;
    int rc = TG_ERROR;
    int fd = open(spool_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd >= 0 && flock(fd, LOCK_EX) == 0) {
        size_t len = strlen(line);
        line[len] = '\n'; /* replaces the NUL: json_dumps left room for it */
        if (write_all(fd, line, len + 1) == TG_OK && fsync(fd) == 0)
            rc = TG_OK;
    }
    if (fd >= 0)
        close(fd); /* also releases the lock */
    free(line);
    return rc;
}

bool tg_spool_pending(void)
{
    struct stat st;
    return spool_path[0] != '\0' && stat(spool_path, &st) == 0 && st.st_size > 0;
}

/* Writes the lines of f from offset on back to the start of the file. */
static void keep_rest(int fd, FILE *f, long offset)
{
    char *rest = NULL;
    size_t cap = 0;
    fseek(f, offset, SEEK_SET);
    size_t len = 0;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        char *grown = realloc(rest, cap + n);
        if (grown == NULL)
            break; /* keep the whole file: duplicates replay harmlessly */
        rest = grown;
        memcpy(rest + len, buf, n);
        len += n;
        cap += n;
    }
    if (n == 0 && ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0)
        write_all(fd, rest != NULL ? rest : "", len);
    fsync(fd);
    free(rest);
}

int tg_spool_replay(const char *log_id)
{
    int fd = open(spool_path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return TG_ERROR;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd); /* another process is replaying */
        return 0;
    }
    FILE *f = fdopen(dup(fd), "r");
    if (f == NULL) {
        close(fd);
        return TG_ERROR;
    }
    char *line = malloc(SPOOL_LINE_MAX);
    int replayed = 0;
    bool stopped = false;
    long done_offset = 0;
    while (line != NULL && fgets(line, SPOOL_LINE_MAX, f) != NULL) {
        struct tg_usage_record rec;
        json_t *doc = NULL;
        int64_t cost;
        if (decode(line, &rec, &doc) != TG_OK) {
            tg_log_error(log_id, "skipping an unreadable usage spool line");
        } else if (tg_usage_settle_record(log_id, &rec, &cost) != TG_OK) {
            json_decref(doc);
            stopped = true;
            break;
        } else {
            replayed++;
        }
        json_decref(doc);
        done_offset = ftell(f);
    }
    if (stopped)
        keep_rest(fd, f, done_offset);
    else if (ftruncate(fd, 0) == 0)
        fsync(fd);
    fclose(f);
    free(line);
    close(fd);
    if (replayed > 0)
        tg_log_info(log_id, "replayed %d spooled usage rows", replayed);
    return replayed;
}

int tg_spool_dead_letter(const struct tg_usage_record *rec, const char *why)
{
    char path[4200];
    const char *slash = strrchr(spool_path, '/');
    snprintf(path, sizeof(path), "%.*s/usage.deadletter",
             slash != NULL ? (int)(slash - spool_path) : 0, spool_path);
    char *line = tg_spool_encode(rec);
    if (line == NULL)
        return TG_ERROR;
    int rc = TG_ERROR;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd >= 0) {
        size_t len = strlen(line);
        line[len] = '\n';
        if (write_all(fd, line, len + 1) == TG_OK && fsync(fd) == 0)
            rc = TG_OK;
        close(fd);
    }
    free(line);
    tg_log_error(rec->request_id, "usage refused by the database, set aside in the dead letter: %s",
                 why);
    return rc;
}
