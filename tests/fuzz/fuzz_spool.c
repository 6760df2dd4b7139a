/*
 * fuzz_spool.c — the usage spool's replay (fcgi/spool.c) and the framed-record
 * reader under it (fcgi/frame.c), over a spool file made of the input. The
 * first byte picks the file: bit 0 clear, the rest is usage.replay as it lies
 * on disk (frames, CRC32C and all); set, the rest's lines are each framed
 * right by tg_frame_write, so the records' JSON decoding and checks are reached;
 * bit 1 set, the rest is an earlier version's line spool (usage.spool) instead.
 * Bits 2-3 say what the database answers. Settling is the harness's stand-in
 * (-Wl,--wrap=tg_usage_settle_record), and fsync is skipped (--wrap=tg_frame_sync*).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "frame.h"
#include "fuzz.h"
#include "spool.h"
#include "usage.h"

static char dir[256];
static int answer;

int __wrap_tg_usage_settle_record(const char *log_id, const struct tg_usage_record *rec,
                                  int64_t *cost_micros);
int __wrap_tg_usage_settle_record(const char *log_id, const struct tg_usage_record *rec,
                                  int64_t *cost_micros)
{
    if (rec->request_id == NULL)
        abort(); /* tg_usage_record_check lets none through without one */
    *cost_micros = 0;
    return answer;
}

const char *__wrap_tg_db_settle_refusal(void);
const char *__wrap_tg_db_settle_refusal(void)
{
    return "23514: new row violates check constraint \"fuzz\"";
}

int __wrap_tg_frame_sync(int fd);
int __wrap_tg_frame_sync(int fd)
{
    return TG_OK;
}

int __wrap_tg_frame_sync_dir(const char *path);
int __wrap_tg_frame_sync_dir(const char *path)
{
    return TG_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fuzz_spool.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
    return 0;
}

static void path_of(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void remove_all(void)
{
    static const char *const names[] = {"usage.pending", "usage.replay", "usage.replay.tmp",
                                        "usage.deadletter", "usage.spool"};
    char path[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_of(path, sizeof(path), names[i]);
        unlink(path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const int answers[] = {TG_OK, TG_DECLINED, TG_ERROR, TG_OK};
    int mode = data[0];
    answer = answers[mode >> 2 & 3];
    data++;
    size--;
    remove_all();
    char path[512];
    path_of(path, sizeof(path), mode & 2 ? "usage.spool" : "usage.replay");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    if (!(mode & 1) || mode & 2) {
        if (size > 0 && write(fd, data, size) != (ssize_t)size)
            abort();
    } else {
        const uint8_t *line = data, *end = data + size;
        while (line < end) {
            const uint8_t *nl = memchr(line, '\n', (size_t)(end - line));
            const uint8_t *stop = nl != NULL ? nl : end;
            if (stop > line)
                tg_frame_write(fd, line, (size_t)(stop - line));
            line = stop + 1;
        }
    }
    close(fd);
    if (tg_spool_init(dir) != TG_OK)
        abort();
    tg_spool_replay("fuzz");
    tg_spool_pending();
    return 0;
}
