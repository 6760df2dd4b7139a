/*
 * admin_cache.h — the admin API's view of the response cache (response_cache.c):
 * GET /admin/cache shows its counters, DELETE /admin/cache[?scope=S] purges
 * every entry, or those of one scope ("key:<id>", "user:<id>", "group:<id>",
 * "global"). The caller (admin.c) has authenticated the admin.
 */
#ifndef TG_ADMIN_CACHE_H
#define TG_ADMIN_CACHE_H

struct tg_request;

/* {"enabled", "entries", "bytes", "capacity_bytes", "hits", "misses", "evictions", "expirations"}.
 */
int tg_admin_cache_show(struct tg_request *r);

/* {"purged": N}; 409 when the cache is off. A log line names the admin and the scope. */
int tg_admin_cache_purge(struct tg_request *r);

#endif
