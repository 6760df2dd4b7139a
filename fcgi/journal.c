/*
 * journal.c — per-process journal of requests in flight (see journal.h).
 *
 * Records are small JSON objects in frames (frame.h), written with jansson;
 * P records, written for every chunk of a stream, hold only numbers and the
 * request id and are formatted directly.
 *
 * Files rotate: when the current file passes ROTATE_BYTES, new requests go to
 * a fresh one, and a file that is no longer current is deleted as soon as every
 * request begun in it is settled. A request's records all go to the file of its
 * B record (r->journal_slot), so recovery sees each request whole.
 */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "frame.h"
#include "holder.h"
#include "jsafe.h"
#include "log.h"
#include "quota.h"
#include "request.h"
#include "usage.h"

#define SLOTS 8
#define ROTATE_BYTES (4 * 1024 * 1024)
#define PREFIX "journal-"
#define SUFFIX ".tgj"

struct slot {
    int fd; /* -1: free */
    char path[4096];
    int64_t bytes;
    int64_t open;  /* requests begun here and not yet settled */
    bool unsynced; /* E records written since the last tg_journal_sync */
};

static struct {
    pthread_mutex_t mu;
    struct slot slots[SLOTS];
    int current;
    unsigned next_seq;
    const char *dir;
    bool fsync_end;
    bool ready;
    /* group sync: E records are numbered; one fdatasync covers all written before it */
    uint64_t written_seq;
    uint64_t synced_seq;
    bool syncing;
    pthread_cond_t synced;
} j = {.mu = PTHREAD_MUTEX_INITIALIZER, .current = -1, .synced = PTHREAD_COND_INITIALIZER};

/* ---- files ---- */

static bool own_name(const char *name)
{
    size_t n = strlen(name);
    return strncmp(name, PREFIX, strlen(PREFIX)) == 0 && n > strlen(SUFFIX) &&
           strcmp(name + n - strlen(SUFFIX), SUFFIX) == 0;
}

/*
 * A new file: created under a temporary name, locked, then renamed, so that no
 * recovery can ever find it unlocked. Called with j.mu held.
 */
static int open_slot(void)
{
    int free_slot = -1;
    for (int i = 0; i < SLOTS && free_slot < 0; i++)
        if (j.slots[i].fd < 0)
            free_slot = i;
    if (free_slot < 0)
        return -1;
    struct slot *s = &j.slots[free_slot];
    char tmp[4096];
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned seq = j.next_seq++;
        snprintf(s->path, sizeof(s->path), "%s/" PREFIX "%s-%ld-%u" SUFFIX, j.dir, tg_holder_host(),
                 (long)getpid(), seq);
        snprintf(tmp, sizeof(tmp), "%s.new", s->path);
        if (access(s->path, F_OK) == 0)
            continue; /* a dead namesake's file: recovery's to take */
        int fd = open(tmp, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0 && errno == EEXIST) {
            unlink(tmp); /* a leftover of a process that died between create and rename */
            continue;
        }
        if (fd < 0)
            return -1;
        if (tg_frame_try_lock(fd) != TG_OK || rename(tmp, s->path) != 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        tg_frame_sync_dir(j.dir);
        s->fd = fd;
        s->bytes = 0;
        s->open = 0;
        return free_slot;
    }
    return -1;
}

/* Deletes a file that is no longer current once nothing in it is open. j.mu held. */
static void retire_if_done(int i)
{
    struct slot *s = &j.slots[i];
    if (i == j.current || s->fd < 0 || s->open > 0)
        return;
    unlink(s->path);
    tg_frame_sync_dir(j.dir);
    close(s->fd);
    s->fd = -1;
}

int tg_journal_open(const struct tg_config *config)
{
    pthread_mutex_lock(&j.mu);
    for (int i = 0; i < SLOTS; i++)
        j.slots[i].fd = -1;
    j.dir = config->spool_dir;
    j.fsync_end = config->journal_fsync;
    j.current = open_slot();
    j.ready = j.current >= 0;
    pthread_mutex_unlock(&j.mu);
    return j.ready ? TG_OK : TG_ERROR;
}

void tg_journal_close(void)
{
    pthread_mutex_lock(&j.mu);
    j.current = -1; /* every file may now retire: those with nothing open do */
    for (int i = 0; i < SLOTS; i++)
        retire_if_done(i);
    j.ready = false;
    pthread_mutex_unlock(&j.mu);
}

/* ---- records ---- */

/* Appends one record to slot i and counts its bytes. j.mu held. */
static int append(int i, const char *payload, size_t len)
{
    struct slot *s = &j.slots[i];
    if (tg_frame_write(s->fd, payload, len) != TG_OK)
        return TG_ERROR;
    s->bytes += (int64_t)(len + TG_FRAME_HEADER);
    return TG_OK;
}

/* The file new requests go to, a fresh one once it passed ROTATE_BYTES. j.mu held, j.ready. */
static int current_locked(void)
{
    if (j.slots[j.current].bytes > ROTATE_BYTES) {
        int fresh = open_slot();
        if (fresh >= 0) {
            int old = j.current;
            j.current = fresh;
            retire_if_done(old);
        }
    }
    return j.current;
}

int tg_journal_begin(struct tg_request *r)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:I, s:s?, s:s?, s:s, s:s, s:b, s:I, s:I}", "k", "B", "id", r->request_id,
        "ts", r->started_at, "key", (json_int_t)r->identity.api_key_id, "u", r->identity.user_id,
        "g", r->identity.group_id, "p", tg_request_provider(r), "m", r->model->name, "s", r->stream,
        "in", (json_int_t)tg_quota_estimate_input(r), "out", (json_int_t)r->max_tokens);
    char buf[1024];
    size_t len = o != NULL ? json_dumpb(o, buf, sizeof(buf), JSON_COMPACT) : 0;
    json_decref(o);
    if (len == 0 || len > sizeof(buf)) {
        tg_log_error(r->request_id, "could not journal the request: record not encodable");
        return TG_ERROR;
    }
    pthread_mutex_lock(&j.mu);
    int rc = TG_ERROR;
    if (j.ready) {
        rc = append(current_locked(), buf, len);
        if (rc == TG_OK) {
            r->journal_slot = j.current;
            j.slots[j.current].open++;
        }
    }
    pthread_mutex_unlock(&j.mu);
    if (rc != TG_OK)
        tg_log_error(r->request_id, "could not journal the request: %s",
                     j.ready ? strerror(errno) : "no journal");
    return rc;
}

void tg_journal_progress(struct tg_request *r, int64_t output_tokens)
{
    if (r->journal_slot < 0)
        return;
    char buf[160];
    int n = snprintf(buf, sizeof(buf),
                     "{\"k\":\"P\",\"id\":\"%s\",\"in\":%" PRId64 ",\"out\":%" PRId64
                     ",\"cr\":%" PRId64 ",\"cw\":%" PRId64 "}",
                     r->request_id, r->usage.input_tokens, output_tokens,
                     r->usage.cache_read_tokens, r->usage.cache_write_tokens);
    pthread_mutex_lock(&j.mu);
    if (j.slots[r->journal_slot].fd >= 0 && append(r->journal_slot, buf, (size_t)n) != TG_OK)
        tg_log_warn(r->request_id, "could not journal the stream's progress: %s", strerror(errno));
    pthread_mutex_unlock(&j.mu);
}

void tg_journal_end(struct tg_request *r, const struct tg_usage_record *rec)
{
    json_t *o = json_object();
    /* out of memory: no E record rather than one without its usage */
    bool complete = o != NULL && json_object_set_new(o, "k", json_string("E")) == 0 &&
                    json_object_set_new(o, "id", json_string(r->request_id)) == 0 &&
                    json_object_set_new(o, "rec", tg_usage_record_json(rec, SIZE_MAX)) == 0;
    char *text = complete ? tg_jsafe_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        return;
    pthread_mutex_lock(&j.mu);
    int rc = TG_ERROR;
    bool own_begin = r->journal_slot >= 0;
    if (own_begin || j.ready) {
        /* no B (a block, a cache hit: never upstream): its E, its only record, opens it here */
        int slot = own_begin ? r->journal_slot : current_locked();
        struct slot *s = &j.slots[slot];
        rc = s->fd >= 0 ? append(slot, text, strlen(text)) : TG_ERROR;
        s->unsynced = s->unsynced || rc == TG_OK;
        j.written_seq += rc == TG_OK;
        if (rc == TG_OK && !own_begin) {
            r->journal_slot = slot;
            s->open++;
        }
    }
    pthread_mutex_unlock(&j.mu);
    free(text);
    if (rc != TG_OK && (own_begin || j.ready))
        tg_log_warn(r->request_id, "could not journal the usage: %s", strerror(errno));
}

/* One fdatasync of every file written since the last; j.mu held, released meanwhile. */
static void sync_locked(void)
{
    int fds[SLOTS];
    int n = 0;
    uint64_t target = j.written_seq;
    j.syncing = true;
    for (int i = 0; i < SLOTS; i++) {
        if (j.slots[i].fd >= 0 && j.slots[i].unsynced) {
            j.slots[i].unsynced = false;
            fds[n++] = dup(j.slots[i].fd); /* a retired slot's fd may close meanwhile */
        }
    }
    pthread_mutex_unlock(&j.mu);
    /* outside the lock: other threads' records go on while this one syncs */
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        if (tg_frame_sync(fds[i]) != TG_OK)
            tg_log_warn(NULL, "could not sync the journal: %s", strerror(errno));
        close(fds[i]);
    }
    pthread_mutex_lock(&j.mu);
    if (target > j.synced_seq)
        j.synced_seq = target;
    j.syncing = false;
    pthread_cond_broadcast(&j.synced);
}

/* Returns once E record seq is on disk (one thread syncs, the others wait for it). */
static void sync_through(uint64_t seq)
{
    if (!j.fsync_end || seq == 0)
        return;
    pthread_mutex_lock(&j.mu);
    while (j.synced_seq < seq) {
        if (!j.syncing) {
            sync_locked();
            continue;
        }
        /* another thread's sync is under way: it may cover this record, or the next will */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        if (pthread_cond_timedwait(&j.synced, &j.mu, &deadline) == ETIMEDOUT) {
            tg_log_warn(NULL, "journal sync took over 10 s: going on without it");
            break;
        }
    }
    pthread_mutex_unlock(&j.mu);
}

void tg_journal_sync(void)
{
    pthread_mutex_lock(&j.mu);
    uint64_t seq = j.written_seq;
    pthread_mutex_unlock(&j.mu);
    sync_through(seq);
}

void tg_journal_settled(const char *const *ids, const int *slots, size_t n)
{
    pthread_mutex_lock(&j.mu);
    for (int slot = 0; slot < SLOTS; slot++) {
        char buf[32 + 40 * 64];
        size_t len = (size_t)snprintf(buf, sizeof(buf), "{\"k\":\"S\",\"ids\":[");
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            if (slots[i] != slot || j.slots[slot].fd < 0)
                continue;
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\"%s\"", count ? "," : "",
                                    ids[i]);
            count++;
            if (count == 64 || len + 48 > sizeof(buf)) { /* flush a full record */
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "]}");
                append(slot, buf, len);
                j.slots[slot].open -= (int64_t)count;
                len = (size_t)snprintf(buf, sizeof(buf), "{\"k\":\"S\",\"ids\":[");
                count = 0;
            }
        }
        if (count > 0) {
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "]}");
            append(slot, buf, len);
            j.slots[slot].open -= (int64_t)count;
        }
        retire_if_done(slot);
    }
    pthread_mutex_unlock(&j.mu);
}

/* ---- recovery ---- */

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t num(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* The usage record an E record holds; strings borrowed from e. */
static void record_from_end(json_t *e, struct tg_usage_record *rec)
{
    json_t *o = json_object_get(e, "rec");
    *rec = (struct tg_usage_record){
        .request_id = str(o, "request_id"),
        .ts = str(o, "ts"),
        .api_key_id = num(o, "api_key_id"),
        .user_id = str(o, "user_id"),
        .group_id = str(o, "group_id"),
        .provider = str(o, "provider"),
        .model = str(o, "model"),
        .usage = {.input_tokens = num(o, "input_tokens"),
                  .output_tokens = num(o, "output_tokens"),
                  .cache_read_tokens = num(o, "cache_read_tokens"),
                  .cache_write_tokens = num(o, "cache_write_tokens"),
                  .cache_write_1h_tokens = num(o, "cache_write_1h_tokens"),
                  .web_search_requests = num(o, "web_search_requests")},
        .http_status = (int)num(o, "http_status"),
        .latency_ms = num(o, "latency_ms"),
        .upstream_ms = num(o, "upstream_ms"),
        .stream = json_is_true(json_object_get(o, "stream")),
        .outcome = str(o, "outcome"),
        .usage_source = str(o, "usage_source"),
        .guard_rule = str(o, "guard_rule"), /* absent in earlier versions' records: NULL */
        .has_ttft = json_is_integer(json_object_get(o, "ttft_ms")), /* absent too: none */
        .ttft_ms = num(o, "ttft_ms"),
    };
}

/*
 * A request whose worker died before its usage was known: billed at what it
 * streamed (P), never less than the client saw; with no P at all, at the bound
 * that was reserved for it (B).
 */
static void record_from_begin(json_t *b, json_t *p, struct tg_usage_record *rec)
{
    *rec = (struct tg_usage_record){
        .request_id = str(b, "id"),
        .ts = str(b, "ts"),
        .api_key_id = num(b, "key"),
        .user_id = str(b, "u"),
        .group_id = str(b, "g"),
        .provider = str(b, "p"),
        .model = str(b, "m"),
        .stream = json_is_true(json_object_get(b, "s")),
        .outcome = "worker_lost",
    };
    if (p != NULL) {
        rec->usage.input_tokens = num(p, "in") > 0 ? num(p, "in") : num(b, "in");
        rec->usage.output_tokens = num(p, "out");
        rec->usage.cache_read_tokens = num(p, "cr");
        rec->usage.cache_write_tokens = num(p, "cw");
        rec->http_status = 200; /* the stream had begun */
        rec->usage_source = "estimated";
    } else {
        rec->usage.input_tokens = num(b, "in");
        rec->usage.output_tokens = num(b, "out");
        rec->http_status = 502;
        rec->usage_source = "reserved_bound";
    }
}

/* Reads a journal into {id: {"b":…, "p":…, "e":…, "s":true}}. */
static json_t *read_requests(int fd, uint64_t *skipped)
{
    json_t *by_id = json_object();
    struct tg_frame_reader rd;
    if (by_id == NULL || tg_frame_reader_init(&rd, fd, 0) != TG_OK) {
        json_decref(by_id);
        return NULL;
    }
    const void *payload;
    size_t len;
    while (tg_frame_reader_next(&rd, &payload, &len) == TG_OK) {
        json_t *rec = json_loadb(payload, len, 0, NULL);
        const char *kind = str(rec, "k");
        if (kind != NULL && strcmp(kind, "S") == 0) {
            size_t i;
            json_t *id;
            json_array_foreach(json_object_get(rec, "ids"), i, id) {
                if (!json_is_string(id))
                    continue;
                json_t *entry = json_object_get(by_id, json_string_value(id));
                if (entry == NULL)
                    json_object_set_new(by_id, json_string_value(id), entry = json_object());
                json_object_set_new(entry, "s", json_true());
            }
        } else if (kind != NULL && str(rec, "id") != NULL && strlen(kind) == 1 &&
                   strchr("BPE", kind[0]) != NULL) {
            json_t *entry = json_object_get(by_id, str(rec, "id"));
            if (entry == NULL)
                json_object_set_new(by_id, str(rec, "id"), entry = json_object());
            char field[2] = {(char)(kind[0] - 'A' + 'a'), '\0'}; /* "b", "p" or "e" */
            json_object_set(entry, field, rec);
        }
        json_decref(rec);
    }
    *skipped = rd.skipped;
    tg_frame_reader_release(&rd);
    return by_id;
}

/* Settles what one dead journal left open. TG_OK when every request is safe. */
static int recover_file(const char *path, int fd, tg_journal_settle_fn settle, int *settled)
{
    uint64_t skipped = 0;
    json_t *by_id = read_requests(fd, &skipped);
    if (by_id == NULL)
        return TG_ERROR;
    if (skipped > 0)
        tg_log_warn(NULL, "journal \"%s\": skipped %" PRIu64 " damaged records", path, skipped);
    int rc = TG_OK;
    const char *id;
    json_t *entry;
    json_object_foreach(by_id, id, entry) {
        if (json_is_true(json_object_get(entry, "s")))
            continue;
        json_t *b = json_object_get(entry, "b");
        json_t *e = json_object_get(entry, "e");
        struct tg_usage_record rec;
        if (e != NULL)
            record_from_end(e, &rec);
        else if (b != NULL)
            record_from_begin(b, json_object_get(entry, "p"), &rec);
        else
            continue; /* only P records (its B was damaged): nothing to bill it on */
        if (rec.request_id == NULL || rec.ts == NULL)
            continue;
        if (settle(id, &rec) != TG_OK) {
            rc = TG_ERROR;
            continue;
        }
        (*settled)++;
        tg_log_warn(id,
                    "recovered from a dead worker's journal: outcome \"%s\", usage_source \"%s\"",
                    rec.outcome != NULL ? rec.outcome : "",
                    rec.usage_source != NULL ? rec.usage_source : "provider");
    }
    json_decref(by_id);
    return rc;
}

int tg_journal_recover(tg_journal_settle_fn settle)
{
    if (j.dir == NULL)
        return 0;
    DIR *dir = opendir(j.dir);
    if (dir == NULL)
        return TG_ERROR;
    char host_prefix[256];
    snprintf(host_prefix, sizeof(host_prefix), PREFIX "%s-", tg_holder_host());
    int settled = 0;
    int rc = TG_OK;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!own_name(de->d_name) || strncmp(de->d_name, host_prefix, strlen(host_prefix)) != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", j.dir, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* held by its (live) owner, or by a sibling recovering it: not ours */
        if (tg_frame_try_lock(fd) == TG_OK) {
            if (recover_file(path, fd, settle, &settled) == TG_OK) {
                unlink(path);
                tg_frame_sync_dir(j.dir);
            } else {
                rc = TG_ERROR;
            }
        }
        close(fd);
    }
    closedir(dir);
    if (settled > 0)
        tg_log_info(NULL, "settled %d requests from dead workers' journals", settled);
    return rc == TG_OK ? settled : TG_ERROR;
}
