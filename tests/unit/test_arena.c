/*
 * test_arena.c — the bump allocator: alignment, growth across blocks, large
 * allocations, the string helpers, cleanups (order, once only) and reset.
 *
 * Every allocation is written over its full length, so AddressSanitizer reports
 * any block that hands out less than it promised.
 *
 * Not covered: tg_arena_cleanup_add running fn itself when its node cannot be
 * allocated — the node is 24 bytes and malloc cannot be made to fail for it
 * without interposing malloc, which the sanitizer build already does.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "arena.h"

#define ALIGN 16

static int setup_arena(void **state)
{
    *state = tg_arena_new(1024);
    return *state == NULL ? -1 : 0;
}

static int teardown_arena(void **state)
{
    tg_arena_free(*state);
    return 0;
}

static void assert_aligned(const void *p)
{
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % ALIGN, 0);
}

static void test_alloc_is_aligned(void **state)
{
    struct tg_arena *a = *state;
    /* odd sizes first, so a bump that did not round up would misalign the next */
    static const size_t sizes[] = {1, 3, 7, 15, 16, 17, 31, 33, 100, 1, 255, 2, 600, 5};
    for (size_t i = 0; i < TG_ARRAY_LEN(sizes); i++) {
        unsigned char *p = tg_arena_alloc(a, sizes[i]);
        assert_aligned(p);
        memset(p, 0xa5, sizes[i]);
    }
}

static void test_small_allocations_span_blocks(void **state)
{
    struct tg_arena *a = *state;
    enum { N = 2000, SIZE = 24 }; /* ~64 KB with rounding: dozens of 1 KB blocks */
    unsigned char *ptrs[N];
    size_t requested = 0;
    for (int i = 0; i < N; i++) {
        ptrs[i] = tg_arena_alloc(a, SIZE);
        assert_aligned(ptrs[i]);
        memset(ptrs[i], i & 0xff, SIZE);
        requested += SIZE;
    }
    /* no allocation overlapped another: each still holds its own pattern */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < SIZE; j++)
            assert_int_equal(ptrs[i][j], i & 0xff);
    assert_true(tg_arena_used(a) >= requested);
}

static void test_large_allocation(void **state)
{
    struct tg_arena *a = *state;
    char *before = tg_arena_strdup(a, "before");
    size_t big_size = 1 << 20; /* a thousand times the block size */
    unsigned char *big = tg_arena_alloc(a, big_size);
    assert_aligned(big);
    memset(big, 0x5a, big_size);
    char *after = tg_arena_strdup(a, "after");
    assert_non_null(after);
    /* the small strings do not live inside the big one */
    assert_true(after < (char *)big || after >= (char *)big + big_size);
    assert_string_equal(before, "before");
    assert_string_equal(after, "after");
    assert_int_equal(big[0], 0x5a);
    assert_int_equal(big[big_size - 1], 0x5a);
    assert_true(tg_arena_used(a) >= big_size);
}

static void test_allocation_of_exactly_block_size(void **state)
{
    /* the edge between "fits a normal block" and "gets its own block" */
    struct tg_arena *a = *state;
    unsigned char *whole = tg_arena_alloc(a, 1024);
    assert_aligned(whole);
    memset(whole, 1, 1024);
    unsigned char *next = tg_arena_alloc(a, 1024);
    assert_aligned(next);
    memset(next, 2, 1024);
    unsigned char *small = tg_arena_alloc(a, 8);
    assert_aligned(small);
    memset(small, 3, 8);
    assert_int_equal(whole[1023], 1);
    assert_int_equal(next[0], 2);
}

static void test_tiny_block_size_still_serves(void **state)
{
    (void)state;
    struct tg_arena *a = tg_arena_new(1);
    assert_non_null(a);
    for (int i = 0; i < 50; i++) {
        unsigned char *p = tg_arena_alloc(a, 200);
        assert_aligned(p);
        memset(p, i, 200);
    }
    tg_arena_free(a);
}

static void test_size_overflow_returns_null(void **state)
{
    /*
     * A size so close to SIZE_MAX that the block header makes malloc's argument
     * wrap: the arena must refuse it, not hand out a tiny block as a huge one.
     */
    struct tg_arena *a = *state;
    assert_null(tg_arena_alloc(a, SIZE_MAX));
    assert_null(tg_arena_alloc(a, SIZE_MAX - 8));
    assert_null(tg_arena_alloc(a, SIZE_MAX - 16));
    assert_null(tg_arena_alloc(a, SIZE_MAX - 40));
    /* and the arena is still usable */
    assert_non_null(tg_arena_strdup(a, "still here"));
}

static void test_strdup_strndup_printf(void **state)
{
    struct tg_arena *a = *state;
    const char *src = "hello, world";
    char *dup = tg_arena_strdup(a, src);
    assert_string_equal(dup, src);
    assert_ptr_not_equal(dup, src);

    char *part = tg_arena_strndup(a, src, 5);
    assert_string_equal(part, "hello");

    /* strndup copies exactly len bytes even when they hold a NUL or no NUL follows */
    const char raw[4] = {'a', 'b', 'c', 'd'};
    char *unterminated = tg_arena_strndup(a, raw, sizeof(raw));
    assert_int_equal(strlen(unterminated), 4);
    assert_memory_equal(unterminated, "abcd", 5);

    char *empty = tg_arena_strndup(a, src, 0);
    assert_string_equal(empty, "");

    char *fmt = tg_arena_printf(a, "%s/%d/%05.1f/%c", "x", -42, 3.14159, 'z');
    assert_string_equal(fmt, "x/-42/003.1/z");

    /* longer than a block: printf must size its buffer, not assume one fits */
    char long_arg[3000];
    memset(long_arg, 'q', sizeof(long_arg) - 1);
    long_arg[sizeof(long_arg) - 1] = '\0';
    char *longer = tg_arena_printf(a, "<%s>", long_arg);
    assert_int_equal(strlen(longer), sizeof(long_arg) + 1);
    assert_int_equal(longer[0], '<');
    assert_int_equal(longer[sizeof(long_arg)], '>');
}

static void test_calloc_zeroes(void **state)
{
    struct tg_arena *a = *state;
    /* dirty memory first, then reset so calloc gets the same bytes back */
    unsigned char *dirty = tg_arena_alloc(a, 512);
    memset(dirty, 0xff, 512);
    tg_arena_reset(a);
    unsigned char *zero = tg_arena_calloc(a, 512);
    assert_non_null(zero);
    for (size_t i = 0; i < 512; i++)
        assert_int_equal(zero[i], 0);
    unsigned char *big = tg_arena_calloc(a, 10000);
    assert_non_null(big);
    for (size_t i = 0; i < 10000; i++)
        assert_int_equal(big[i], 0);
}

/* ---- cleanups ---- */

struct trace {
    int order[16];
    int n;
};

struct cleanup_arg {
    struct trace *trace;
    int id;
};

static void record_cleanup(void *data)
{
    struct cleanup_arg *arg = data;
    assert_true(arg->trace->n < (int)TG_ARRAY_LEN(arg->trace->order));
    arg->trace->order[arg->trace->n++] = arg->id;
}

static void add_cleanups(struct tg_arena *a, struct trace *trace, struct cleanup_arg *args, int n)
{
    for (int i = 0; i < n; i++) {
        args[i] = (struct cleanup_arg){trace, i + 1};
        assert_int_equal(tg_arena_cleanup_add(a, record_cleanup, &args[i]), TG_OK);
        /* allocations between registrations must not disturb the list */
        assert_non_null(tg_arena_alloc(a, 700));
    }
}

static void test_cleanups_reverse_on_reset(void **state)
{
    struct tg_arena *a = *state;
    struct trace trace = {{0}, 0};
    struct cleanup_arg args[4];
    add_cleanups(a, &trace, args, 4);
    assert_int_equal(trace.n, 0); /* nothing runs before the reset */
    tg_arena_reset(a);
    assert_int_equal(trace.n, 4);
    assert_int_equal(trace.order[0], 4);
    assert_int_equal(trace.order[1], 3);
    assert_int_equal(trace.order[2], 2);
    assert_int_equal(trace.order[3], 1);
    /* a second reset and the final free run nothing again */
    tg_arena_reset(a);
    assert_int_equal(trace.n, 4);
}

static void test_cleanups_reverse_on_free(void **state)
{
    (void)state;
    struct tg_arena *a = tg_arena_new(1024);
    assert_non_null(a);
    struct trace trace = {{0}, 0};
    struct cleanup_arg args[3];
    add_cleanups(a, &trace, args, 3);
    tg_arena_free(a);
    assert_int_equal(trace.n, 3);
    assert_int_equal(trace.order[0], 3);
    assert_int_equal(trace.order[1], 2);
    assert_int_equal(trace.order[2], 1);
}

static void test_cleanups_once_across_reset_and_free(void **state)
{
    (void)state;
    struct tg_arena *a = tg_arena_new(1024);
    assert_non_null(a);
    struct trace trace = {{0}, 0};
    struct cleanup_arg first[2], second[1];
    add_cleanups(a, &trace, first, 2);
    tg_arena_reset(a);
    assert_int_equal(trace.n, 2);
    /* registered after the reset: runs at free, alone */
    second[0] = (struct cleanup_arg){&trace, 9};
    assert_int_equal(tg_arena_cleanup_add(a, record_cleanup, &second[0]), TG_OK);
    tg_arena_free(a);
    assert_int_equal(trace.n, 3);
    assert_int_equal(trace.order[2], 9);
}

static void test_reset_empties(void **state)
{
    struct tg_arena *a = *state;
    assert_int_equal(tg_arena_used(a), 0);
    assert_non_null(tg_arena_alloc(a, 10));
    assert_true(tg_arena_used(a) >= 10);
    for (int i = 0; i < 100; i++)
        assert_non_null(tg_arena_alloc(a, 100));
    assert_non_null(tg_arena_alloc(a, 50000));
    assert_true(tg_arena_used(a) >= 10 + 100 * 100 + 50000);
    tg_arena_reset(a);
    assert_int_equal(tg_arena_used(a), 0);
    /* the arena serves again after a reset, from and beyond its first block */
    for (int i = 0; i < 100; i++) {
        unsigned char *p = tg_arena_alloc(a, 100);
        assert_aligned(p);
        memset(p, i, 100);
    }
    assert_true(tg_arena_used(a) >= 100 * 100);
}

static void test_free_null_is_noop(void **state)
{
    (void)state;
    tg_arena_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alloc_is_aligned, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_small_allocations_span_blocks, setup_arena,
                                        teardown_arena),
        cmocka_unit_test_setup_teardown(test_large_allocation, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_allocation_of_exactly_block_size, setup_arena,
                                        teardown_arena),
        cmocka_unit_test(test_tiny_block_size_still_serves),
        cmocka_unit_test_setup_teardown(test_strdup_strndup_printf, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_calloc_zeroes, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_cleanups_reverse_on_reset, setup_arena,
                                        teardown_arena),
        cmocka_unit_test(test_cleanups_reverse_on_free),
        cmocka_unit_test(test_cleanups_once_across_reset_and_free),
        cmocka_unit_test_setup_teardown(test_reset_empties, setup_arena, teardown_arena),
        cmocka_unit_test(test_free_null_is_noop),
        /* last: until arena.c checks the header addition, ASan aborts the binary here */
        cmocka_unit_test_setup_teardown(test_size_overflow_returns_null, setup_arena,
                                        teardown_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
