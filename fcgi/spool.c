/*
 * spool.c — the usage spool and the dead letter, on framed files (frame.c).
 *
 * Appenders hold usage.pending's lock only for their write(2) (and wait for it
 * at most TG_SPOOL_LOCK_TIMEOUT_MS); they fsync after releasing it, so that
 * concurrent appenders share the disk's flushes. A replay holds that lock only
 * to rename the file to usage.replay; it settles from there without it. An
 * appender that opened usage.pending just before a rename finds, once it holds
 * the lock, that its descriptor no longer is the file of that name, and opens
 * the new one: nothing is ever appended to a file a replay took.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "frame.h"
#include "jsafe.h"
#include "log.h"
#include "shm.h"
#include "usage.h"

#define LEGACY_LINE_MAX TG_FRAME_PAYLOAD_MAX
#define COPY_CHUNK (1024 * 1024) /* payload bytes per batched write when copying */
#define COPY_PARTS 4096

static struct {
    char dir[3800];
    char pending[4096];
    char replay[4096];
    char replay_tmp[4096];
    char deadletter[4096];
    char lock[4096];
    char legacy[4096];
} paths;

/* An earlier version's usage.spool held lines when this process started. */
static atomic_bool legacy_pending;

static bool file_has_data(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

int tg_spool_init(const char *dir)
{
    if (strlen(dir) >= sizeof(paths.dir)) {
        errno = ENAMETOOLONG;
        return TG_ERROR;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return TG_ERROR;
    if (access(dir, W_OK) != 0)
        return TG_ERROR;
    snprintf(paths.dir, sizeof(paths.dir), "%s", dir);
    snprintf(paths.pending, sizeof(paths.pending), "%s/usage.pending", dir);
    snprintf(paths.replay, sizeof(paths.replay), "%s/usage.replay", dir);
    snprintf(paths.replay_tmp, sizeof(paths.replay_tmp), "%s/usage.replay.tmp", dir);
    snprintf(paths.deadletter, sizeof(paths.deadletter), "%s/usage.deadletter", dir);
    snprintf(paths.lock, sizeof(paths.lock), "%s/replay.lock", dir);
    snprintf(paths.legacy, sizeof(paths.legacy), "%s/usage.spool", dir);
    atomic_store(&legacy_pending, file_has_data(paths.legacy));
    return TG_OK;
}

/* ---- the record as JSON (tg_usage_record_json) ---- */

char *tg_spool_encode(const struct tg_usage_record *rec)
{
    json_t *o = tg_usage_record_json(rec, SIZE_MAX);
    if (o == NULL)
        return NULL;
    char *text = tg_jsafe_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static const char *string_or_null(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Parses one payload into rec; strings borrow from *doc (caller json_decrefs it). */
static int decode(const void *payload, size_t len, struct tg_usage_record *rec, json_t **doc)
{
    *doc = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
    if (*doc == NULL || !json_is_object(*doc))
        return TG_ERROR;
    json_t *o = *doc;
    memset(rec, 0, sizeof(*rec));
    rec->request_id = string_or_null(o, "request_id");
    rec->ts = string_or_null(o, "ts");
    rec->api_key_id = json_integer_value(json_object_get(o, "api_key_id"));
    rec->user_id = string_or_null(o, "user_id");
    rec->group_id = string_or_null(o, "group_id");
    rec->provider = string_or_null(o, "provider");
    rec->model = string_or_null(o, "model");
    rec->usage.input_tokens = json_integer_value(json_object_get(o, "input_tokens"));
    rec->usage.output_tokens = json_integer_value(json_object_get(o, "output_tokens"));
    rec->usage.cache_read_tokens = json_integer_value(json_object_get(o, "cache_read_tokens"));
    rec->usage.cache_write_tokens = json_integer_value(json_object_get(o, "cache_write_tokens"));
    rec->usage.cache_write_1h_tokens =
        json_integer_value(json_object_get(o, "cache_write_1h_tokens"));
    rec->usage.web_search_requests = json_integer_value(json_object_get(o, "web_search_requests"));
    json_int_t status = json_integer_value(json_object_get(o, "http_status"));
    rec->http_status = status < -1 || status > 999 ? -1 : (int)status; /* the check refuses -1 */
    rec->latency_ms = json_integer_value(json_object_get(o, "latency_ms"));
    rec->upstream_ms = json_integer_value(json_object_get(o, "upstream_ms"));
    rec->stream = json_is_true(json_object_get(o, "stream"));
    rec->outcome = string_or_null(o, "outcome");
    rec->usage_source = string_or_null(o, "usage_source");
    rec->guard_rule = string_or_null(o, "guard_rule"); /* absent in earlier versions' records */
    json_t *ttft = json_object_get(o, "ttft_ms");      /* absent too: none */
    rec->has_ttft = json_is_integer(ttft);
    rec->ttft_ms = json_integer_value(ttft);
    return TG_OK;
}

/* ---- appending ---- */

static atomic_uint created_files; /* makes each process's private file names unique */

/*
 * Opens path for appending. When it does not exist, creates it under a private
 * name, locks it, links it into place and fsyncs the directory while still
 * holding the lock, so that no one appends to a file whose name a crash could
 * lose; *locked then tells the caller the lock is already held. -1 on failure.
 */
static int open_for_append(const char *path, bool *locked)
{
    *locked = false;
    for (int attempt = 0; attempt < 4; attempt++) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        char fresh[4200];
        snprintf(fresh, sizeof(fresh), "%s.new.%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&created_files, 1));
        fd = open(fresh, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
        int rc = tg_frame_try_lock(fd); /* no one else knows this file yet */
        int linked = rc == TG_OK ? link(fresh, path) : -1;
        int saved = errno;
        unlink(fresh);
        if (linked == 0 && tg_frame_sync_dir(paths.dir) == TG_OK) {
            *locked = true;
            return fd;
        }
        saved = linked == 0 ? errno : saved;
        close(fd);
        if (linked != 0 && saved == EEXIST)
            continue; /* another appender created it first: use theirs */
        errno = saved;
        return -1;
    }
    errno = EAGAIN;
    return -1;
}

static int fail_with(int fd, int err)
{
    close(fd);
    errno = err;
    return TG_ERROR;
}

/*
 * Appends parts to path (created if missing) holding its lock for the write
 * only, then fsyncs it: concurrent appenders share the disk's flushes. TG_OK,
 * or TG_ERROR with errno set (ETIMEDOUT when the lock was not free in time).
 */
static int append_framed(const char *path, const struct tg_frame_part *parts, size_t n)
{
    int64_t deadline = tg_now_ms() + TG_SPOOL_LOCK_TIMEOUT_MS;
    for (int attempt = 0; attempt < 16; attempt++) {
        bool locked;
        int fd = open_for_append(path, &locked);
        if (fd < 0)
            return TG_ERROR;
        if (!locked) {
            int rc = tg_frame_lock(fd, deadline - tg_now_ms());
            if (rc != TG_OK)
                return fail_with(fd, rc == TG_DECLINED ? ETIMEDOUT : errno);
            struct stat mine, named;
            if (fstat(fd, &mine) != 0)
                return fail_with(fd, errno);
            if (stat(path, &named) != 0 || named.st_ino != mine.st_ino ||
                named.st_dev != mine.st_dev) {
                close(fd); /* a replay took this file while we waited: use the new one */
                continue;
            }
        }
        int rc = tg_frame_write_batch(fd, parts, n);
        tg_frame_unlock(fd);
        if (rc != TG_OK || tg_frame_sync(fd) != TG_OK)
            return fail_with(fd, errno);
        close(fd);
        return TG_OK;
    }
    errno = ETIMEDOUT;
    return TG_ERROR;
}

int tg_spool_append(const struct tg_usage_record *rec)
{
    if (paths.pending[0] == '\0') {
        errno = EINVAL;
        return TG_ERROR;
    }
    char why[256];
    if (tg_usage_record_check(rec, why, sizeof(why)) != TG_OK)
        return tg_spool_dead_letter(rec->request_id, rec, why);
    char *text = tg_spool_encode(rec);
    if (text == NULL) {
        errno = ENOMEM;
        return TG_ERROR;
    }
    struct tg_frame_part part = {text, strlen(text)};
    int rc = append_framed(paths.pending, &part, 1);
    int saved = errno;
    free(text);
    errno = saved;
    return rc;
}

bool tg_spool_pending(void)
{
    if (paths.pending[0] == '\0')
        return false;
    struct stat st;
    return atomic_load(&legacy_pending) || file_has_data(paths.pending) ||
           stat(paths.replay, &st) == 0;
}

/* ---- the dead letter ---- */

static void utc_now(char *out, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Writes o plus error and dead_lettered_at to the dead letter; steals o. */
static int dead_letter_json(json_t *o, const char *why)
{
    char now[32];
    utc_now(now, sizeof(now));
    if (o == NULL || json_object_set_new(o, "error", tg_usage_json_string(why, 1024)) != 0 ||
        json_object_set_new(o, "dead_lettered_at", json_string(now)) != 0) {
        json_decref(o);
        errno = ENOMEM;
        return TG_ERROR;
    }
    char *text = tg_jsafe_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL) {
        errno = ENOMEM;
        return TG_ERROR;
    }
    struct tg_frame_part part = {text, strlen(text)};
    int rc = append_framed(paths.deadletter, &part, 1);
    int saved = errno;
    free(text);
    if (rc == TG_OK)
        tg_shm_count_dead_letter();
    errno = saved;
    return rc;
}

int tg_spool_dead_letter(const char *log_id, const struct tg_usage_record *rec, const char *why)
{
    /* 8 strings of at most 1 KiB (4 KiB escaped) keep a record well inside one frame */
    int rc = dead_letter_json(tg_usage_record_json(rec, TG_USAGE_STRING_MAX), why);
    if (rc == TG_OK)
        tg_log_error(
            log_id,
            "usage of request \"%s\" refused: %s; kept in the dead letter \"%s\" "
            "(model \"%s\", input_tokens %lld, output_tokens %lld)",
            rec->request_id != NULL && strlen(rec->request_id) <= 36 ? rec->request_id : "?", why,
            paths.deadletter, rec->model != NULL && strlen(rec->model) <= 128 ? rec->model : "?",
            (long long)rec->usage.input_tokens, (long long)rec->usage.output_tokens);
    else
        tg_log_error(log_id, "could not write the usage dead letter \"%s\": %s", paths.deadletter,
                     strerror(errno));
    return rc;
}

/* A payload that is not a usage record at all (its bytes are kept, cut to 16 KiB). */
static int dead_letter_raw(const char *log_id, const void *payload, size_t len)
{
    json_t *o = json_object();
    char *copy = malloc(len + 1);
    if (o == NULL || copy == NULL) {
        json_decref(o);
        free(copy);
        errno = ENOMEM;
        return TG_ERROR;
    }
    memcpy(copy, payload, len);
    copy[len] = '\0';
    json_object_set_new(o, "payload", tg_usage_json_string(copy, 16 * 1024));
    free(copy);
    int rc = dead_letter_json(o, "not a usage record (unreadable JSON)");
    if (rc == TG_OK)
        tg_log_error(log_id,
                     "unreadable usage spool record (%zu bytes) kept in the dead letter "
                     "\"%s\"",
                     len, paths.deadletter);
    return rc;
}

/* ---- replay ---- */

struct replay_stats {
    int settled;
    int dead;
    uint64_t damaged, damaged_bytes;
};

/*
 * What to do with one record: TG_OK (settled or dead-lettered: consumed),
 * TG_ERROR (the database is unavailable, or the dead letter could not be
 * written: keep it and stop).
 */
static int replay_one(const char *log_id, const void *payload, size_t len, struct replay_stats *st)
{
    struct tg_usage_record rec;
    json_t *doc = NULL;
    int rc;
    if (decode(payload, len, &rec, &doc) != TG_OK) {
        rc = dead_letter_raw(log_id, payload, len);
        st->dead += rc == TG_OK;
        json_decref(doc);
        return rc;
    }
    char why[256];
    int64_t cost;
    if (tg_usage_record_check(&rec, why, sizeof(why)) != TG_OK) {
        rc = tg_spool_dead_letter(log_id, &rec, why);
        st->dead += rc == TG_OK;
    } else {
        rc = tg_usage_settle_record(log_id, &rec, &cost);
        if (rc == TG_OK) {
            st->settled++;
        } else if (rc == TG_DECLINED) {
            rc = tg_spool_dead_letter(log_id, &rec, tg_db_settle_refusal());
            st->dead += rc == TG_OK;
        }
    }
    json_decref(doc);
    return rc;
}

/* Copies payload and every good record after it in rd into fd, in batched writes. */
static int copy_rest(int fd, struct tg_frame_reader *rd, const void *payload, size_t len)
{
    unsigned char *buf = malloc(COPY_CHUNK);
    struct tg_frame_part *parts = malloc(sizeof(*parts) * COPY_PARTS);
    int rc = buf != NULL && parts != NULL ? TG_OK : TG_ERROR;
    size_t used = 0, n = 0;
    while (rc == TG_OK && payload != NULL) {
        if (n == COPY_PARTS || len > COPY_CHUNK - used) {
            rc = tg_frame_write_batch(fd, parts, n);
            used = n = 0;
            if (rc != TG_OK)
                break;
        }
        if (len > 0)
            memcpy(buf + used, payload, len);
        parts[n++] = (struct tg_frame_part){buf + used, len};
        used += len;
        int next = tg_frame_reader_next(rd, &payload, &len);
        if (next == TG_DECLINED)
            payload = NULL;
        else if (next != TG_OK)
            rc = TG_ERROR;
    }
    if (rc == TG_OK)
        rc = tg_frame_write_batch(fd, parts, n);
    int saved = buf == NULL || parts == NULL ? ENOMEM : errno;
    free(buf);
    free(parts);
    errno = saved;
    return rc;
}

/*
 * Keeps payload and what follows it in rd as the new usage.replay (written
 * beside it, fsync'd, renamed over it): what was consumed is gone from it.
 */
static int keep_rest(struct tg_frame_reader *rd, const void *payload, size_t len)
{
    int fd = open(paths.replay_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return TG_ERROR;
    int rc = copy_rest(fd, rd, payload, len);
    if (rc == TG_OK)
        rc = tg_frame_sync(fd);
    close(fd);
    if (rc == TG_OK && rename(paths.replay_tmp, paths.replay) != 0)
        rc = TG_ERROR;
    if (rc != TG_OK) {
        unlink(paths.replay_tmp);
        return TG_ERROR;
    }
    return tg_frame_sync_dir(paths.dir);
}

/*
 * Replays usage.replay: TG_OK when all of it was consumed (the file is gone),
 * TG_DECLINED when the database became unavailable (the rest is kept),
 * TG_ERROR when the files could not be read or written.
 */
static int replay_file(const char *log_id, struct replay_stats *st)
{
    struct tg_frame_reader rd;
    int rc = tg_frame_reader_open(&rd, paths.replay);
    if (rc == TG_DECLINED)
        return TG_OK;
    if (rc != TG_OK)
        return TG_ERROR;
    const void *payload;
    size_t len;
    bool consumed = false;
    while ((rc = tg_frame_reader_next(&rd, &payload, &len)) == TG_OK) {
        if (replay_one(log_id, payload, len, st) != TG_OK)
            break;
        consumed = true;
    }
    uint64_t skipped = rd.skipped, skipped_bytes = rd.skipped_bytes;
    int result;
    if (rc == TG_DECLINED) {
        result =
            unlink(paths.replay) == 0 && tg_frame_sync_dir(paths.dir) == TG_OK ? TG_OK : TG_ERROR;
    } else if (rc == TG_OK) {
        /* stopped at payload: nothing to rewrite unless something before it is done */
        result = !consumed && rd.skipped == 0            ? TG_DECLINED
                 : keep_rest(&rd, payload, len) == TG_OK ? TG_DECLINED
                                                         : TG_ERROR;
        skipped = rd.skipped; /* the copy read the rest: its damage was dropped too */
        skipped_bytes = rd.skipped_bytes;
    } else {
        result = TG_ERROR;
    }
    if (result == TG_ERROR)
        tg_log_error(log_id, "could not replay the usage spool \"%s\": %s", paths.replay,
                     strerror(errno));
    if (skipped > 0 && result != TG_ERROR) {
        st->damaged += skipped;
        st->damaged_bytes += skipped_bytes;
    }
    tg_frame_reader_release(&rd);
    return result;
}

/* Renames usage.pending to usage.replay under the appenders' lock. TG_DECLINED: nothing. */
static int take_pending(void)
{
    int fd = open(paths.pending, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? TG_DECLINED : TG_ERROR;
    int rc = tg_frame_lock(fd, TG_SPOOL_LOCK_TIMEOUT_MS);
    struct stat mine, named;
    if (rc == TG_OK && (fstat(fd, &mine) != 0 || stat(paths.pending, &named) != 0 ||
                        mine.st_ino != named.st_ino || mine.st_size == 0))
        rc = TG_DECLINED;
    if (rc == TG_OK && rename(paths.pending, paths.replay) != 0)
        rc = TG_ERROR;
    close(fd);
    if (rc == TG_OK)
        rc = tg_frame_sync_dir(paths.dir);
    return rc;
}

/*
 * Moves the lines of an earlier version's usage.spool into usage.pending as
 * framed records, under that file's lock (those versions' appenders wait for
 * it), then truncates it as those versions' replay did.
 */
static void convert_legacy(const char *log_id)
{
    int fd = open(paths.legacy, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        atomic_store(&legacy_pending, false);
        return;
    }
    if (tg_frame_lock(fd, TG_SPOOL_LOCK_TIMEOUT_MS) != TG_OK) {
        close(fd);
        return;
    }
    FILE *f = fdopen(dup(fd), "r");
    char *line = malloc(LEGACY_LINE_MAX + 2);
    int moved = 0, dropped = 0, rc = f != NULL && line != NULL ? TG_OK : TG_ERROR;
    while (rc == TG_OK && fgets(line, LEGACY_LINE_MAX + 2, f) != NULL) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
            dropped++; /* longer than any record: skip the rest of it */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        struct tg_frame_part part = {line, len};
        rc = append_framed(paths.pending, &part, 1);
        moved += rc == TG_OK;
    }
    if (f != NULL)
        fclose(f);
    free(line);
    if (rc == TG_OK && moved == 0 && dropped == 0) {
        atomic_store(&legacy_pending, false); /* another process moved it already */
    } else if (rc == TG_OK && ftruncate(fd, 0) == 0 && tg_frame_sync(fd) == TG_OK) {
        atomic_store(&legacy_pending, false);
        tg_log_info(log_id, "moved %d lines of the earlier usage spool \"%s\" to \"%s\"%s", moved,
                    paths.legacy, paths.pending, dropped > 0 ? " (overlong lines dropped)" : "");
    } else {
        tg_log_error(log_id, "could not move the earlier usage spool \"%s\": %s", paths.legacy,
                     strerror(errno));
    }
    close(fd);
}

int tg_spool_replay(const char *log_id)
{
    if (paths.lock[0] == '\0')
        return TG_ERROR;
    int lock_fd = open(paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0)
        return TG_ERROR;
    if (tg_frame_try_lock(lock_fd) != TG_OK) {
        close(lock_fd);
        return 0; /* another thread or process is replaying */
    }
    if (atomic_load(&legacy_pending))
        convert_legacy(log_id);
    struct replay_stats st = {0};
    int rc = TG_OK;
    /* the leftover of an earlier replay first, then what was appended since */
    for (int round = 0; round < 2 && rc == TG_OK; round++) {
        struct stat sb;
        if (stat(paths.replay, &sb) != 0) {
            rc = take_pending();
            if (rc != TG_OK)
                break;
        }
        rc = replay_file(log_id, &st);
    }
    close(lock_fd);
    if (st.settled > 0 || st.dead > 0)
        tg_log_info(log_id, "replayed the usage spool: %d rows settled, %d dead-lettered",
                    st.settled, st.dead);
    if (st.damaged > 0)
        tg_log_error(log_id,
                     "skipped %llu damaged records (%llu bytes) in the usage spool \"%s\": "
                     "their usage is lost, the records around them were replayed",
                     (unsigned long long)st.damaged, (unsigned long long)st.damaged_bytes,
                     paths.replay);
    return rc == TG_ERROR ? TG_ERROR : st.settled;
}
