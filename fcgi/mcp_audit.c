/*
 * mcp_audit.c — the audit rows' file and its flush to PostgreSQL (mcp_audit.h).
 */
#include "mcp_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "frame.h"
#include "log.h"

#define LOCK_TIMEOUT_MS 2000
#define BATCH_ROWS 500
#define BATCH_BYTES (1024 * 1024)

static struct {
    char dir[PATH_MAX];
    char pending[PATH_MAX + 32];
    char replay[PATH_MAX + 32];
    char dead[PATH_MAX + 32];
    char lock[PATH_MAX + 32];
    bool fsync_each;
} paths;

int tg_mcp_audit_init(const char *dir, bool fsync_each)
{
    if (dir == NULL || strlen(dir) >= PATH_MAX)
        return TG_ERROR;
    snprintf(paths.dir, sizeof(paths.dir), "%s", dir);
    snprintf(paths.pending, sizeof(paths.pending), "%s/mcp_calls.pending", dir);
    snprintf(paths.replay, sizeof(paths.replay), "%s/mcp_calls.replay", dir);
    snprintf(paths.dead, sizeof(paths.dead), "%s/mcp_calls.deadletter", dir);
    snprintf(paths.lock, sizeof(paths.lock), "%s/mcp_calls.lock", dir);
    paths.fsync_each = fsync_each;
    return access(dir, W_OK) == 0 ? TG_OK : TG_ERROR;
}

/* Appends one framed record to path under its lock (a flush renames it meanwhile: retried). */
static int append_to(const char *path, const char *row, bool sync)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return TG_ERROR;
        if (tg_frame_lock(fd, LOCK_TIMEOUT_MS) != TG_OK) {
            close(fd);
            errno = ETIMEDOUT;
            return TG_ERROR;
        }
        struct stat mine, named;
        if (fstat(fd, &mine) != 0 || stat(path, &named) != 0 || mine.st_ino != named.st_ino) {
            close(fd); /* renamed by a flush while we waited: append to the new one */
            continue;
        }
        int rc = tg_frame_write(fd, row, strlen(row));
        tg_frame_unlock(fd);
        if (rc == TG_OK && sync)
            rc = tg_frame_sync(fd);
        int saved = errno;
        close(fd);
        errno = saved;
        return rc;
    }
    errno = EAGAIN;
    return TG_ERROR;
}

int tg_mcp_audit_append(const char *row_json)
{
    if (paths.pending[0] == '\0') {
        errno = EINVAL;
        return TG_ERROR;
    }
    return append_to(paths.pending, row_json, paths.fsync_each);
}

/* Sends rows (a JSON array text of n rows); on a refusal, row by row (refused: dead letter). */
static int send_batch(char *array, size_t len, const char *const *rows, size_t n, int *stored)
{
    (void)len;
    int64_t inserted = 0;
    int rc = tg_db_mcp_calls_add(array, &inserted);
    if (rc == TG_OK) {
        *stored += (int)inserted;
        return TG_OK;
    }
    if (rc != TG_DECLINED)
        return TG_ERROR;
    for (size_t i = 0; i < n; i++) {
        size_t one_len = strlen(rows[i]) + 3;
        char *one = malloc(one_len);
        if (one == NULL)
            return TG_ERROR;
        snprintf(one, one_len, "[%s]", rows[i]);
        rc = tg_db_mcp_calls_add(one, &inserted);
        free(one);
        if (rc == TG_OK)
            *stored += (int)inserted;
        else if (rc == TG_DECLINED) {
            tg_log_error(NULL, "an MCP audit row was refused by the database: dead-lettered");
            if (append_to(paths.dead, rows[i], true) != TG_OK)
                return TG_ERROR;
        } else
            return TG_ERROR;
    }
    return TG_OK;
}

/* Sends mcp_calls.replay in batches; TG_OK once all of it is committed (file deleted). */
static int replay(int *stored)
{
    struct tg_frame_reader rd;
    int rc = tg_frame_reader_open(&rd, paths.replay);
    if (rc == TG_DECLINED)
        return TG_OK;
    if (rc != TG_OK)
        return TG_ERROR;
    char **rows = calloc(BATCH_ROWS, sizeof(char *));
    char *array = malloc(BATCH_BYTES + TG_FRAME_PAYLOAD_MAX + 4);
    size_t n = 0, len = 0;
    const void *payload;
    size_t plen;
    int result = rows != NULL && array != NULL ? TG_OK : TG_ERROR;
    while (result == TG_OK) {
        rc = tg_frame_reader_next(&rd, &payload, &plen);
        bool end = rc != TG_OK;
        if (rc == TG_ERROR)
            result = TG_ERROR;
        if (!end) {
            rows[n] = malloc(plen + 1);
            if (rows[n] == NULL) {
                result = TG_ERROR;
                break;
            }
            memcpy(rows[n], payload, plen);
            rows[n][plen] = '\0';
            array[len++] = n == 0 ? '[' : ',';
            memcpy(array + len, payload, plen);
            len += plen;
            n++;
        }
        if (n > 0 && (end || n == BATCH_ROWS || len >= BATCH_BYTES)) {
            array[len++] = ']';
            array[len] = '\0';
            if (result == TG_OK &&
                send_batch(array, len, (const char *const *)rows, n, stored) != TG_OK)
                result = TG_ERROR;
            for (size_t i = 0; i < n; i++)
                free(rows[i]);
            n = len = 0;
        }
        if (end)
            break;
    }
    for (size_t i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
    free(array);
    if (rd.skipped > 0)
        tg_log_error(NULL, "skipped %llu damaged records in \"%s\"", (unsigned long long)rd.skipped,
                     paths.replay);
    tg_frame_reader_release(&rd);
    /* idempotent by call id: a file half sent is simply sent again next time */
    if (result == TG_OK && (unlink(paths.replay) != 0 || tg_frame_sync_dir(paths.dir) != TG_OK))
        result = TG_ERROR;
    return result;
}

/* Renames mcp_calls.pending to mcp_calls.replay under the appenders' lock. */
static int take_pending(void)
{
    int fd = open(paths.pending, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? TG_DECLINED : TG_ERROR;
    int rc = tg_frame_lock(fd, LOCK_TIMEOUT_MS);
    struct stat mine;
    if (rc == TG_OK && (fstat(fd, &mine) != 0 || mine.st_size == 0))
        rc = TG_DECLINED;
    if (rc == TG_OK && rename(paths.pending, paths.replay) != 0)
        rc = TG_ERROR;
    close(fd);
    if (rc == TG_OK)
        rc = tg_frame_sync_dir(paths.dir);
    return rc;
}

int tg_mcp_audit_flush(void)
{
    if (paths.lock[0] == '\0')
        return TG_ERROR;
    int lock_fd = open(paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0)
        return TG_ERROR;
    if (tg_frame_try_lock(lock_fd) != TG_OK) {
        close(lock_fd);
        return 0; /* another process of the host is flushing */
    }
    int stored = 0, rc = TG_OK;
    struct stat sb;
    if (stat(paths.replay, &sb) == 0) /* the leftover of a flush cut short first */
        rc = replay(&stored);
    if (rc == TG_OK) {
        rc = take_pending();
        if (rc == TG_OK)
            rc = replay(&stored);
        else if (rc == TG_DECLINED)
            rc = TG_OK;
    }
    close(lock_fd);
    return rc == TG_OK ? stored : TG_ERROR;
}
