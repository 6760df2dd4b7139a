/*
 * shm.c — POSIX shared memory: shm_open + mmap, one-time initialisation.
 */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

#define SHM_MAGIC                                                                                  \
    0x746f6c6c6761740cULL /* "tollgat" + layout version 12 (OpenTelemetry export counters, MCP     \
                             call metrics) */

static void segment_name(const char *scope, char *out, size_t size)
{
    unsigned char hash[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_crypto_sha256(scope, strlen(scope), hash);
    tg_crypto_hex(hash, 8, hex);
    snprintf(out, size, "/tollgate-%s", hex);
}

int tg_shm_mutex_init(pthread_mutex_t *mutex)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc == 0 ? TG_OK : TG_ERROR;
}

static int init_segment(struct tg_shm *shm)
{
    if (tg_shm_mutex_init(&shm->lock) != TG_OK || tg_shm_mutex_init(&shm->metrics.lock) != TG_OK ||
        tg_shm_mutex_init(&shm->circuits.lock) != TG_OK ||
        tg_shm_mutex_init(&shm->preauth.lock) != TG_OK ||
        tg_shm_mutex_init(&shm->workers.lock) != TG_OK ||
        tg_shm_mutex_init(&shm->mcp.lock) != TG_OK)
        return TG_ERROR;
    shm->size = sizeof(*shm);
    atomic_thread_fence(memory_order_release);
    __atomic_store_n(&shm->magic, SHM_MAGIC, __ATOMIC_RELEASE);
    return TG_OK;
}

/* Waits (bounded) until the creating process has initialised the segment. */
static int wait_ready(struct tg_shm *shm)
{
    for (int i = 0; i < 200; i++) {
        uint64_t magic = __atomic_load_n(&shm->magic, __ATOMIC_ACQUIRE);
        if (magic == SHM_MAGIC)
            return shm->size == sizeof(*shm) ? TG_OK : TG_ERROR;
        if (magic != 0)
            break; /* initialised by another version of Tollgate */
        usleep(10 * 1000);
    }
    errno = ETIMEDOUT;
    return TG_ERROR;
}

static struct tg_shm *attached;

struct tg_shm *tg_shm_get(void)
{
    return attached;
}

void tg_shm_count_alert(void)
{
    if (attached != NULL)
        __atomic_add_fetch(&attached->quota_alerts_total, 1, __ATOMIC_RELAXED);
}

void tg_shm_count_guard_action(size_t rule, int action)
{
    if (attached == NULL || action < 0 || action >= TG_SHM_GUARD_ACTIONS)
        return;
    size_t slot = rule < TG_SHM_GUARD_RULES ? rule : TG_SHM_GUARD_RULES - 1;
    __atomic_add_fetch(&attached->guard_actions[slot][action], 1, __ATOMIC_RELAXED);
}

void tg_shm_count_guard_hook(int hook, int action)
{
    if (attached == NULL || hook < 0 || hook >= TG_SHM_GUARD_HOOKS || action < 0 ||
        action >= TG_SHM_GUARD_ACTIONS)
        return;
    __atomic_add_fetch(&attached->guard_hook_actions[hook][action], 1, __ATOMIC_RELAXED);
}

void tg_shm_count_dead_letter(void)
{
    if (attached != NULL)
        __atomic_add_fetch(&attached->usage_dead_letters_total, 1, __ATOMIC_RELAXED);
}

/* Opens (or creates) the segment; *created tells which. -1 on failure. */
static int open_segment(const char *name, bool *created)
{
    *created = true;
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        *created = false;
        fd = shm_open(name, O_RDWR, 0600);
    }
    if (fd >= 0 && *created && ftruncate(fd, sizeof(struct tg_shm)) != 0) {
        close(fd);
        shm_unlink(name);
        return -1;
    }
    return fd;
}

/* Maps an opened segment once it has the right size (a creator may still be sizing it). */
static struct tg_shm *map_segment(int fd)
{
    struct stat st;
    for (int i = 0; i < 100; i++) {
        if (fstat(fd, &st) != 0)
            return NULL;
        if ((size_t)st.st_size == sizeof(struct tg_shm))
            break;
        usleep(10 * 1000);
    }
    if ((size_t)st.st_size != sizeof(struct tg_shm)) {
        errno = EINVAL; /* another layout: mapping it could fault past its end */
        return NULL;
    }
    void *base = mmap(NULL, sizeof(struct tg_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return base == MAP_FAILED ? NULL : base;
}

int tg_shm_attach(const char *scope, struct tg_shm **out)
{
    char name[64];
    segment_name(scope, name, sizeof(name));
    /*
     * A segment left by an older build (another layout) or by a creator that died
     * before initialising it is stale: unlink it and start afresh, once.
     */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool created;
        int fd = open_segment(name, &created);
        if (fd < 0)
            return TG_ERROR;
        struct tg_shm *shm = map_segment(fd);
        close(fd);
        int rc = TG_ERROR;
        if (shm != NULL)
            rc = created ? init_segment(shm) : wait_ready(shm);
        if (rc == TG_OK) {
            *out = attached = shm;
            return TG_OK;
        }
        if (shm != NULL)
            munmap(shm, sizeof(struct tg_shm));
        if (created)
            return TG_ERROR;
        shm_unlink(name);
    }
    return TG_ERROR;
}

int tg_shm_mutex_lock(pthread_mutex_t *mutex)
{
    int rc = pthread_mutex_lock(mutex);
    if (rc == EOWNERDEAD) {
        /* the holder died mid-update: a count may be a little off, never corrupt */
        pthread_mutex_consistent(mutex);
        return TG_OK;
    }
    return rc == 0 ? TG_OK : TG_ERROR;
}

void tg_shm_mutex_unlock(pthread_mutex_t *mutex)
{
    pthread_mutex_unlock(mutex);
}

int tg_shm_lock(struct tg_shm *shm)
{
    return tg_shm_mutex_lock(&shm->lock);
}

void tg_shm_unlock(struct tg_shm *shm)
{
    tg_shm_mutex_unlock(&shm->lock);
}
