/*
 * arena.h — per-request (and process-lifetime) memory arenas.
 *
 * Handlers allocate from the request's arena and never call free(); the arena is
 * reset after each request. What the arena does not own (a json_t, a PGresult, a
 * curl_slist) is released by a cleanup registered on it, run at reset in reverse
 * order of registration (nginx's ngx_pool_cleanup_add). Not thread-safe: one
 * arena belongs to one thread at a time.
 */
#ifndef TG_ARENA_H
#define TG_ARENA_H

#include "common.h"

struct tg_arena;

/* Creates an arena whose first block holds block_size bytes; NULL when out of memory. */
struct tg_arena *tg_arena_new(size_t block_size);

/* Runs the cleanups and frees every block, then the arena itself. NULL is a no-op. */
void tg_arena_free(struct tg_arena *arena);

/* Runs the cleanups and frees all but the first block: the arena is empty again. */
void tg_arena_reset(struct tg_arena *arena);

/* Returns size bytes aligned for any type, or NULL when out of memory. */
void *tg_arena_alloc(struct tg_arena *arena, size_t size);

/* Like tg_arena_alloc, zero-filled. */
void *tg_arena_calloc(struct tg_arena *arena, size_t size);

/* Copies len bytes of s and NUL-terminates the copy; NULL when out of memory. */
char *tg_arena_strndup(struct tg_arena *arena, const char *s, size_t len);
char *tg_arena_strdup(struct tg_arena *arena, const char *s);

/* printf into a new arena string; NULL when out of memory. */
char *tg_arena_printf(struct tg_arena *arena, const char *fmt, ...) TG_PRINTF(2, 3);

/*
 * Registers fn(data) to run at the next reset or free. Returns TG_OK, or TG_ERROR
 * when out of memory — in which case fn(data) has already been run, so the caller
 * never leaks what it meant to hand over (jansson's "steals" convention).
 */
int tg_arena_cleanup_add(struct tg_arena *arena, void (*fn)(void *), void *data);

/* Bytes handed out since the last reset (for tests and caps). */
size_t tg_arena_used(const struct tg_arena *arena);

#endif
