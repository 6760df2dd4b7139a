/*
 * fuzz_journal.c — recovering a dead worker's journal (fcgi/journal.c) and the
 * framed-record reader under it (fcgi/frame.c), over a journal file made of
 * the input. The first byte's bit 0 clear: the rest is the file as it lies on
 * disk; set: the rest's lines are each framed right by tg_frame_write, so the
 * records' JSON (B, P, E and S records) is what gets read. The settle callback
 * answers as bit 1 says; fsync is skipped (-Wl,--wrap=tg_frame_sync*).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "frame.h"
#include "fuzz.h"
#include "holder.h"
#include "journal.h"
#include "quota.h"
#include "usage.h"

static char dir[256];
static struct tg_config config;
static int answer;

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

static int settle(const char *log_id, const struct tg_usage_record *rec)
{
    if (rec->request_id == NULL || rec->ts == NULL)
        abort(); /* recovery skips those */
    return answer;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fuzz_journal.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
    tg_quota_init();
    config.spool_dir = dir;
    config.estimator = TG_ESTIMATE_UPPER_BOUND;
    if (tg_journal_open(&config) != TG_OK) /* this process's own: locked, never recovered */
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int mode = data[0];
    answer = mode & 2 ? TG_ERROR : TG_OK;
    data++;
    size--;
    char path[1024];
    snprintf(path, sizeof(path), "%s/journal-%s-fuzz.tgj", dir, tg_holder_host());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    if (!(mode & 1)) {
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
    tg_journal_recover(settle);
    unlink(path); /* when a failed settle kept it */
    return 0;
}
