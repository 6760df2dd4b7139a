/*
 * arena.c — a bump allocator over a chain of blocks, with cleanups.
 * Large allocations get a block of their own so a big body does not waste the
 * rest of a normal block.
 */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARENA_ALIGN 16

struct block {
    struct block *next;
    size_t size;
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *data;
};

struct tg_arena {
    struct block *first;
    struct block *current;
    struct cleanup *cleanups;
    size_t block_size;
    size_t handed_out;
};

int64_t tg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct block *block_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(struct block))
        return NULL;
    struct block *b = malloc(sizeof(*b) + size);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct tg_arena *tg_arena_new(size_t block_size)
{
    struct tg_arena *arena = calloc(1, sizeof(*arena));
    if (arena == NULL)
        return NULL;
    arena->block_size = block_size < 1024 ? 1024 : block_size;
    arena->first = arena->current = block_new(arena->block_size);
    if (arena->first == NULL) {
        free(arena);
        return NULL;
    }
    return arena;
}

static void run_cleanups(struct tg_arena *arena)
{
    while (arena->cleanups != NULL) {
        struct cleanup *c = arena->cleanups;
        arena->cleanups = c->next;
        c->fn(c->data); /* the node itself lives in the arena */
    }
}

void tg_arena_reset(struct tg_arena *arena)
{
    run_cleanups(arena);
    struct block *b = arena->first->next;
    while (b != NULL) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    arena->first->next = NULL;
    arena->first->used = 0;
    arena->current = arena->first;
    arena->handed_out = 0;
}

void tg_arena_free(struct tg_arena *arena)
{
    if (arena == NULL)
        return;
    tg_arena_reset(arena);
    free(arena->first);
    free(arena);
}

void *tg_arena_alloc(struct tg_arena *arena, size_t size)
{
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (rounded < size)
        return NULL; /* overflow */
    struct block *b = arena->current;
    if (b->size - b->used < rounded) {
        size_t want = rounded > arena->block_size / 4 ? rounded : arena->block_size;
        struct block *fresh = block_new(want);
        if (fresh == NULL)
            return NULL;
        if (want == rounded && rounded != arena->block_size) {
            /* a dedicated block: keep filling the current one afterwards */
            fresh->next = b->next;
            b->next = fresh;
            fresh->used = rounded;
            arena->handed_out += rounded;
            return fresh->data;
        }
        fresh->next = b->next;
        b->next = fresh;
        arena->current = b = fresh;
    }
    void *p = b->data + b->used;
    b->used += rounded;
    arena->handed_out += rounded;
    return p;
}

void *tg_arena_calloc(struct tg_arena *arena, size_t size)
{
    void *p = tg_arena_alloc(arena, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

char *tg_arena_strndup(struct tg_arena *arena, const char *s, size_t len)
{
    char *copy = tg_arena_alloc(arena, len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *tg_arena_strdup(struct tg_arena *arena, const char *s)
{
    return tg_arena_strndup(arena, s, strlen(s));
}

char *tg_arena_printf(struct tg_arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *out = tg_arena_alloc(arena, (size_t)len + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}

int tg_arena_cleanup_add(struct tg_arena *arena, void (*fn)(void *), void *data)
{
    struct cleanup *c = tg_arena_alloc(arena, sizeof(*c));
    if (c == NULL) {
        fn(data);
        return TG_ERROR;
    }
    c->fn = fn;
    c->data = data;
    c->next = arena->cleanups;
    arena->cleanups = c;
    return TG_OK;
}

size_t tg_arena_used(const struct tg_arena *arena)
{
    return arena->handed_out;
}
