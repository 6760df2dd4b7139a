/*
 * response_cache.h — the pipeline's cache step: an exact-match cache of
 * non-stream replies (cache.c stores them in the host's shared memory).
 *
 * The key is the SHA-256 of the normalized request — the endpoint, the model
 * after aliasing, every other member of the (guarded) body with its keys sorted
 * and whitespace gone, less what does not change the answer (stream,
 * stream_options, metadata, user) — and of its scope: the key, the user or the
 * group (cache.scope), so that one consumer never sees another's answer
 * unless the operator says "global". Embeddings are always cacheable; chat
 * requests only with temperature 0, unless cache.nonzero_temperature. A hit
 * answers without calling the provider (x-tollgate-cache: hit), billed as a
 * usage row with outcome cache_hit, the original tokens and zero cost.
 *
 * Entries come from non-stream replies only. A stream request with the same
 * key hits them all the same: its answer is the stored reply replayed as
 * text/event-stream in the client's dialect (cache_stream.h); a stream miss is
 * forwarded and its reply not stored.
 */
#ifndef TG_RESPONSE_CACHE_H
#define TG_RESPONSE_CACHE_H

#include "common.h"

struct tg_request;
struct tg_config;

/* Maps the host's cache segment for scope when the config enables it. TG_OK also when off. */
int tg_response_cache_init(const struct tg_config *config, const char *scope);

/*
 * Looks r up. TG_OK: a hit — *body (r->arena), *len and *type are the reply
 * to send (for a stream request, the stored reply as a stream); r->usage, r->outcome ("cache_hit"),
 * r->cost_micros (0) and the x-tollgate-cache header are set. TG_DECLINED: a miss, or not cacheable
 * (then forward as usual; a cacheable miss is remembered for tg_response_cache_store).
 */
int tg_response_cache_lookup(struct tg_request *r, const char **body, size_t *len,
                             const char **type);

struct tg_cache_stats;

/* The host's cache counters into *out: TG_OK, or TG_DECLINED when the cache is off. */
int tg_response_cache_stats(struct tg_cache_stats *out);

/*
 * Drops the entries of scope ("key:7", "user:u", "group:g", "" for global;
 * NULL: every entry). TG_OK with *purged; TG_DECLINED when the cache is off.
 */
int tg_response_cache_purge(const char *scope, size_t *purged);

/*
 * Stores a cacheable non-stream miss's 200 reply (body as the client received
 * it, its type); nothing for a stream request.
 */
void tg_response_cache_store(struct tg_request *r, const char *body, size_t len,
                             const char *content_type);

#endif
