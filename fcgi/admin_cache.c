/*
 * admin_cache.c — GET and DELETE /admin/cache.
 */
#include "admin_cache.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_body.h"
#include "cache.h"
#include "log.h"
#include "request.h"
#include "response_cache.h"

#define SCOPE_MAX 128 /* the longest scope an entry carries */

int tg_admin_cache_show(struct tg_request *r)
{
    struct tg_cache_stats st;
    if (tg_response_cache_stats(&st) != TG_OK)
        return tg_admin_body_respond_doc(r, 200, json_pack("{s:b}", "enabled", 0));
    return tg_admin_body_respond_doc(
        r, 200,
        json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", 1, "entries",
                  (json_int_t)st.entries, "bytes", (json_int_t)st.bytes, "capacity_bytes",
                  (json_int_t)st.capacity_bytes, "hits", (json_int_t)st.hits, "misses",
                  (json_int_t)st.misses, "evictions", (json_int_t)st.evictions, "expirations",
                  (json_int_t)st.expirations));
}

/* The scope query parameter, %XX-decoded (admin_body.c), or NULL: absent; *bad: malformed. */
static const char *scope_param(struct tg_request *r, bool *bad)
{
    const char *q = tg_request_param(r, "QUERY_STRING");
    *bad = false;
    for (const char *p = q; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len >= 6 && strncmp(p, "scope=", 6) == 0) {
            const char *scope =
                len - 6 < SCOPE_MAX ? tg_admin_body_decode(r->arena, p + 6, len - 6) : NULL;
            *bad = scope == NULL;
            return scope;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

int tg_admin_cache_purge(struct tg_request *r)
{
    bool bad;
    const char *scope = scope_param(r, &bad);
    if (bad) {
        tg_request_fail(r, 400, "invalid_request_error", "scope: too long or malformed", NULL);
        return TG_ERROR;
    }
    if (scope != NULL && strcmp(scope, "global") == 0)
        scope = ""; /* the global scope's entries */
    size_t purged = 0;
    if (tg_response_cache_purge(scope, &purged) != TG_OK) {
        tg_request_fail(r, 409, "invalid_request_error", "the response cache is off", NULL);
        return TG_ERROR;
    }
    tg_log_info(r->request_id, "response cache purged by %s: %zu entries of %s",
                r->identity.user_id, purged,
                scope != NULL ? (scope[0] ? scope : "the global scope") : "every scope");
    return tg_admin_body_respond_doc(r, 200, json_pack("{s:I}", "purged", (json_int_t)purged));
}
