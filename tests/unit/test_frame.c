/*
 * test_frame.c — frame.c: CRC-32C, round trips (single and batched, every
 * payload size class), torn tails, a corrupt record in the middle, a garbage
 * length field, a torn write followed by good appends, seeded random damage
 * over a file larger than the reader's window (only damaged records lost),
 * the payload cap, and the lock's deadline.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"

struct fixture {
    char dir[256];
    char path[300];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/test_frame.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/records", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int open_append(const struct fixture *f)
{
    int fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    return fd;
}

/* Payload i: len bytes that differ from every other payload's. */
static void make_payload(unsigned char *out, size_t len, unsigned i)
{
    for (size_t k = 0; k < len; k++)
        out[k] = (unsigned char)(i * 131 + k * 7 + (k >> 8));
}

static off_t file_size(const struct fixture *f)
{
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    return st.st_size;
}

/* Flips byte at of the file. */
static void flip_byte(const struct fixture *f, off_t at)
{
    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x5A;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void write_bytes_at(const struct fixture *f, off_t at, const void *data, size_t len)
{
    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
    close(fd);
}

/* Reads every record; checks each is payload expect[k] (its index i, its size). */
static void expect_records(const struct fixture *f, const unsigned *ids, const size_t *sizes,
                           size_t n, uint64_t skipped)
{
    struct tg_frame_reader rd;
    assert_int_equal(tg_frame_reader_open(&rd, f->path), TG_OK);
    unsigned char *want = malloc(TG_FRAME_PAYLOAD_MAX);
    const void *p;
    size_t len;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(tg_frame_reader_next(&rd, &p, &len), TG_OK);
        assert_int_equal(len, sizes[k]);
        make_payload(want, len, ids[k]);
        assert_memory_equal(p, want, len);
    }
    assert_int_equal(tg_frame_reader_next(&rd, &p, &len), TG_DECLINED);
    assert_int_equal(tg_frame_reader_next(&rd, &p, &len), TG_DECLINED); /* and stays there */
    assert_int_equal(rd.records, n);
    assert_int_equal(rd.skipped, skipped);
    free(want);
    tg_frame_reader_release(&rd);
}

static void test_crc32c(void **state)
{
    (void)state;
    /* the check value of CRC-32C (RFC 3720's polynomial) */
    assert_int_equal(tg_frame_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(tg_frame_crc32c("", 0), 0);
    /* the slice-by-8 path and the byte path agree at every alignment */
    unsigned char buf[64];
    make_payload(buf, sizeof(buf), 3);
    for (size_t start = 0; start < 8; start++) {
        uint32_t whole = tg_frame_crc32c(buf + start, 40);
        uint32_t c = 0xFFFFFFFFu;
        for (size_t k = start; k < start + 40; k++) {
            c ^= buf[k];
            for (int b = 0; b < 8; b++)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        assert_int_equal(whole, c ^ 0xFFFFFFFFu);
    }
}

static const size_t sizes[] = {0, 1, 7, 8, 9, 100, 4084, 4085, 20000, TG_FRAME_PAYLOAD_MAX};

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    int fd = open_append(f);
    unsigned char *buf = malloc(TG_FRAME_PAYLOAD_MAX);
    unsigned ids[TG_ARRAY_LEN(sizes)];
    off_t total = 0;
    for (unsigned i = 0; i < TG_ARRAY_LEN(sizes); i++) {
        make_payload(buf, sizes[i], i);
        assert_int_equal(tg_frame_write(fd, buf, sizes[i]), TG_OK);
        ids[i] = i;
        total += TG_FRAME_HEADER + (off_t)sizes[i];
    }
    assert_int_equal(tg_frame_sync(fd), TG_OK);
    assert_int_equal(tg_frame_sync_dir(f->dir), TG_OK);
    close(fd);
    assert_int_equal(file_size(f), total);
    expect_records(f, ids, sizes, TG_ARRAY_LEN(sizes), 0);

    /* offsets: after each good record, ending at the file's size */
    struct tg_frame_reader rd;
    assert_int_equal(tg_frame_reader_open(&rd, f->path), TG_OK);
    const void *p;
    size_t len;
    off_t at = 0;
    while (tg_frame_reader_next(&rd, &p, &len) == TG_OK) {
        at += TG_FRAME_HEADER + (off_t)len;
        assert_int_equal(rd.offset, at);
    }
    assert_int_equal(rd.offset, total);
    tg_frame_reader_release(&rd);
    free(buf);
}

static void test_batch(void **state)
{
    struct fixture *f = *state;
    int fd = open_append(f);
    unsigned char *bufs[TG_ARRAY_LEN(sizes)];
    struct tg_frame_part parts[TG_ARRAY_LEN(sizes)];
    unsigned ids[TG_ARRAY_LEN(sizes)];
    for (unsigned i = 0; i < TG_ARRAY_LEN(sizes); i++) {
        bufs[i] = malloc(sizes[i] + 1);
        make_payload(bufs[i], sizes[i], i);
        parts[i] = (struct tg_frame_part){bufs[i], sizes[i]};
        ids[i] = i;
    }
    assert_int_equal(tg_frame_write_batch(fd, parts, 0), TG_OK); /* nothing */
    assert_int_equal(tg_frame_write_batch(fd, parts, 3), TG_OK);
    assert_int_equal(tg_frame_write_batch(fd, parts + 3, TG_ARRAY_LEN(sizes) - 3), TG_OK);
    /* one oversized part refuses the whole batch */
    struct tg_frame_part bad[2] = {parts[1], {bufs[0], TG_FRAME_PAYLOAD_MAX + 1}};
    off_t before = file_size(f);
    assert_int_equal(tg_frame_write_batch(fd, bad, 2), TG_ERROR);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(file_size(f), before);
    close(fd);
    expect_records(f, ids, sizes, TG_ARRAY_LEN(sizes), 0);
    for (unsigned i = 0; i < TG_ARRAY_LEN(sizes); i++)
        free(bufs[i]);
}

/* Writes n records of size len (ids 0..n-1); returns each one's start in *starts. */
static void write_records(const struct fixture *f, unsigned n, size_t len, off_t *starts)
{
    int fd = open_append(f);
    unsigned char *buf = malloc(len + 1);
    for (unsigned i = 0; i < n; i++) {
        if (starts != NULL)
            starts[i] = lseek(fd, 0, SEEK_END);
        make_payload(buf, len, i);
        assert_int_equal(tg_frame_write(fd, buf, len), TG_OK);
    }
    free(buf);
    close(fd);
}

static void test_torn_tail(void **state)
{
    struct fixture *f = *state;
    write_records(f, 3, 200, NULL);
    off_t good = file_size(f);
    /* a record cut short by a crash: its header and a part of its payload */
    unsigned char rec[TG_FRAME_HEADER + 200];
    int fd = open(f->path, O_RDWR | O_APPEND);
    unsigned char payload[200];
    make_payload(payload, sizeof(payload), 3);
    assert_int_equal(tg_frame_write(fd, payload, sizeof(payload)), TG_OK);
    assert_int_equal(pread(fd, rec, sizeof(rec), good), (ssize_t)sizeof(rec));
    assert_int_equal(ftruncate(fd, good + 90), 0);
    close(fd);

    unsigned ids[] = {0, 1, 2};
    size_t lens[] = {200, 200, 200};
    expect_records(f, ids, lens, 3, 1);
    struct tg_frame_reader rd;
    assert_int_equal(tg_frame_reader_open(&rd, f->path), TG_OK);
    const void *p;
    size_t len;
    while (tg_frame_reader_next(&rd, &p, &len) == TG_OK)
        ;
    assert_int_equal(rd.offset, good); /* what was consumed ends before the torn tail */
    assert_int_equal(rd.skipped_bytes, 90);
    tg_frame_reader_release(&rd);

    /* shorter than a header */
    fd = open(f->path, O_RDWR);
    assert_int_equal(ftruncate(fd, good + 5), 0);
    close(fd);
    expect_records(f, ids, lens, 3, 1);

    /* the next append after a torn tail is still found */
    fd = open_append(f);
    make_payload(payload, sizeof(payload), 9);
    assert_int_equal(tg_frame_write(fd, payload, sizeof(payload)), TG_OK);
    close(fd);
    unsigned ids2[] = {0, 1, 2, 9};
    size_t lens2[] = {200, 200, 200, 200};
    expect_records(f, ids2, lens2, 4, 1);
}

static void test_corrupt_middle(void **state)
{
    struct fixture *f = *state;
    off_t starts[5];
    write_records(f, 5, 300, starts);
    flip_byte(f, starts[2] + TG_FRAME_HEADER + 150); /* a payload byte of record 2 */
    unsigned ids[] = {0, 1, 3, 4};
    size_t lens[] = {300, 300, 300, 300};
    expect_records(f, ids, lens, 4, 1);

    struct tg_frame_reader rd;
    assert_int_equal(tg_frame_reader_open(&rd, f->path), TG_OK);
    const void *p;
    size_t len;
    while (tg_frame_reader_next(&rd, &p, &len) == TG_OK)
        ;
    assert_int_equal(rd.skipped_bytes, TG_FRAME_HEADER + 300);
    tg_frame_reader_release(&rd);

    /* a damaged checksum or magic loses only that record too */
    flip_byte(f, starts[2] + TG_FRAME_HEADER + 150); /* repaired */
    flip_byte(f, starts[0] + 9);                     /* record 0's crc */
    flip_byte(f, starts[4] + 1);                     /* record 4's magic */
    unsigned ids2[] = {1, 2, 3};
    expect_records(f, ids2, lens, 3, 2);
}

static void test_garbage_length(void **state)
{
    struct fixture *f = *state;
    off_t starts[5];
    write_records(f, 5, 300, starts);
    unsigned char huge[4] = {0xF0, 0xFF, 0xFF, 0xFF}; /* past the cap */
    write_bytes_at(f, starts[2] + 4, huge, sizeof(huge));
    unsigned ids[] = {0, 1, 3, 4};
    size_t lens[] = {300, 300, 300, 300};
    expect_records(f, ids, lens, 4, 1);

    /* a length under the cap that runs over the following records */
    unsigned char long_len[4] = {0x00, 0x90, 0x00, 0x00}; /* 36864 */
    write_bytes_at(f, starts[2] + 4, long_len, sizeof(long_len));
    expect_records(f, ids, lens, 4, 1);
    /* and one that runs past the end of the file */
    unsigned char past_end[4] = {0x00, 0x00, 0x01, 0x00}; /* 65536 */
    write_bytes_at(f, starts[2] + 4, past_end, sizeof(past_end));
    expect_records(f, ids, lens, 4, 1);
}

static void test_torn_then_appended(void **state)
{
    struct fixture *f = *state;
    write_records(f, 1, 500, NULL);
    off_t cut = file_size(f);
    /* record 1 torn by a crash (its header says 500 bytes, 100 made it) */
    int fd = open_append(f);
    unsigned char payload[500];
    make_payload(payload, sizeof(payload), 1);
    assert_int_equal(tg_frame_write(fd, payload, sizeof(payload)), TG_OK);
    assert_int_equal(ftruncate(fd, cut + TG_FRAME_HEADER + 100), 0);
    /* then the writers carried on */
    for (unsigned i = 2; i < 4; i++) {
        make_payload(payload, sizeof(payload), i);
        assert_int_equal(tg_frame_write(fd, payload, sizeof(payload)), TG_OK);
    }
    close(fd);
    unsigned ids[] = {0, 2, 3};
    size_t lens[] = {500, 500, 500};
    expect_records(f, ids, lens, 3, 1);
}

/*
 * Seeded random damage over a file several times the reader's window: records
 * of random sizes, some with a random byte flipped, some torn (cut) with the
 * rest appended after them, garbage between some. Every undamaged record comes
 * back, in order, and nothing else.
 */
static void test_random_damage(void **state)
{
    struct fixture *f = *state;
    enum { N = 1500 };
    unsigned ids[N];
    size_t lens[N];
    size_t n_good = 0, n_bad_stretches = 0;
    unsigned seed = 12345;
    unsigned char *buf = malloc(TG_FRAME_PAYLOAD_MAX + TG_FRAME_HEADER);
    int fd = open(f->path, O_RDWR | O_APPEND | O_CREAT, 0600);
    bool last_bad = false;
    for (unsigned i = 0; i < N; i++) {
        size_t len = (size_t)(rand_r(&seed) % 4 == 0 ? rand_r(&seed) % TG_FRAME_PAYLOAD_MAX
                                                     : rand_r(&seed) % 700);
        make_payload(buf, len, i);
        off_t start = lseek(fd, 0, SEEK_END);
        assert_int_equal(tg_frame_write(fd, buf, len), TG_OK);
        int what = rand_r(&seed) % 20;
        bool bad = true;
        if (what == 0) {
            close(fd);
            flip_byte(f, start + (off_t)(rand_r(&seed) % (TG_FRAME_HEADER + len)));
            fd = open(f->path, O_RDWR | O_APPEND);
        } else if (what == 1) {
            /* at least one byte stays, or there would be nothing to skip */
            off_t cut = 1 + (off_t)(rand_r(&seed) % (TG_FRAME_HEADER + len - 1));
            assert_int_equal(ftruncate(fd, start + cut), 0);
        } else if (what == 2) {
            /* garbage after a good record: its own bad stretch */
            ids[n_good] = i;
            lens[n_good++] = len;
            if (last_bad)
                n_bad_stretches++;
            unsigned char junk[37];
            for (size_t k = 0; k < sizeof(junk); k++)
                junk[k] = (unsigned char)rand_r(&seed);
            junk[5] = 0xFF; /* a partial magic in the junk */
            junk[6] = 0xFE;
            junk[7] = 'T';
            assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
        } else {
            bad = false;
            ids[n_good] = i;
            lens[n_good++] = len;
            if (last_bad)
                n_bad_stretches++;
        }
        last_bad = bad;
    }
    if (last_bad)
        n_bad_stretches++;
    close(fd);
    free(buf);
    assert_true(file_size(f) > 4 * (TG_FRAME_HEADER + TG_FRAME_PAYLOAD_MAX));
    assert_true(n_good < N && n_bad_stretches > 10);
    expect_records(f, ids, lens, n_good, n_bad_stretches);
}

static void test_oversize_refused(void **state)
{
    struct fixture *f = *state;
    int fd = open_append(f);
    unsigned char *buf = calloc(1, TG_FRAME_PAYLOAD_MAX + 1);
    errno = 0;
    assert_int_equal(tg_frame_write(fd, buf, TG_FRAME_PAYLOAD_MAX + 1), TG_ERROR);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(file_size(f), 0);
    assert_int_equal(tg_frame_write(fd, buf, TG_FRAME_PAYLOAD_MAX), TG_OK);
    close(fd);
    free(buf);
}

static void test_reader_at_offset(void **state)
{
    struct fixture *f = *state;
    off_t starts[4];
    write_records(f, 4, 50, starts);
    int fd = open(f->path, O_RDONLY);
    struct tg_frame_reader rd;
    assert_int_equal(tg_frame_reader_init(&rd, fd, starts[2]), TG_OK);
    const void *p;
    size_t len;
    assert_int_equal(tg_frame_reader_next(&rd, &p, &len), TG_OK);
    assert_int_equal(rd.offset, starts[3]);
    assert_int_equal(tg_frame_reader_next(&rd, &p, &len), TG_OK);
    assert_int_equal(tg_frame_reader_next(&rd, &p, &len), TG_DECLINED);
    tg_frame_reader_release(&rd);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 0); /* the borrowed fd's position untouched */
    assert_int_equal(close(fd), 0);              /* and still open */

    char missing[320];
    snprintf(missing, sizeof(missing), "%s/none", f->dir);
    assert_int_equal(tg_frame_reader_open(&rd, missing), TG_DECLINED);
}

struct unlocker {
    int fd;
    int64_t after_ms;
};

static void *unlock_later(void *arg)
{
    struct unlocker *u = arg;
    usleep((useconds_t)u->after_ms * 1000);
    tg_frame_unlock(u->fd);
    return NULL;
}

static void test_lock_deadline(void **state)
{
    struct fixture *f = *state;
    int a = open_append(f), b = open_append(f); /* two open file descriptions */
    assert_int_equal(tg_frame_lock(a, 1000), TG_OK);
    int64_t t0 = tg_now_ms();
    assert_int_equal(tg_frame_try_lock(b), TG_DECLINED);
    assert_true(tg_now_ms() - t0 < 50);
    t0 = tg_now_ms();
    assert_int_equal(tg_frame_lock(b, 300), TG_DECLINED);
    int64_t waited = tg_now_ms() - t0;
    assert_true(waited >= 300);
    assert_true(waited < 1000);
    /* released while waiting: taken well before the deadline */
    struct unlocker u = {a, 100};
    pthread_t t;
    pthread_create(&t, NULL, unlock_later, &u);
    t0 = tg_now_ms();
    assert_int_equal(tg_frame_lock(b, 5000), TG_OK);
    waited = tg_now_ms() - t0;
    pthread_join(t, NULL);
    assert_true(waited >= 90 && waited < 1000);
    assert_int_equal(tg_frame_try_lock(a), TG_DECLINED);
    close(b); /* closing releases */
    assert_int_equal(tg_frame_try_lock(a), TG_OK);
    close(a);
    assert_int_equal(tg_frame_lock(-1, 10), TG_ERROR);
    assert_int_equal(errno, EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_then_appended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_at_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_deadline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
