/*
 * admin_cache.c — GET and DELETE /admin/cache.
 */
#include "admin_cache.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "request.h"
#include "response_cache.h"

static int respond_json(struct tg_request *r, json_t *doc)
{
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory");
        return TG_ERROR;
    }
    int rc = tg_request_respond(r, 200, "application/json", text, strlen(text));
    free(text);
    return rc;
}

int tg_admin_cache_show(struct tg_request *r)
{
    struct tg_cache_stats st;
    if (tg_response_cache_stats(&st) != TG_OK)
        return respond_json(r, json_pack("{s:b}", "enabled", 0));
    return respond_json(
        r, json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", 1, "entries",
                     (json_int_t)st.entries, "bytes", (json_int_t)st.bytes, "capacity_bytes",
                     (json_int_t)st.capacity_bytes, "hits", (json_int_t)st.hits, "misses",
                     (json_int_t)st.misses, "evictions", (json_int_t)st.evictions, "expirations",
                     (json_int_t)st.expirations));
}

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The scope query parameter, decoded (%XX, +) into out; false when absent or malformed. */
static bool scope_param(struct tg_request *r, char *out, size_t size, bool *bad)
{
    const char *q = tg_request_param(r, "QUERY_STRING");
    *bad = false;
    for (const char *p = q; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len >= 6 && strncmp(p, "scope=", 6) == 0) {
            size_t o = 0;
            for (size_t i = 6; i < len; i++) {
                char c = p[i];
                if (c == '%' && i + 2 < len + 1 && hex(p[i + 1]) >= 0 && hex(p[i + 2]) >= 0) {
                    c = (char)(hex(p[i + 1]) * 16 + hex(p[i + 2]));
                    i += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (o + 1 >= size || c == '\0') {
                    *bad = true;
                    return false;
                }
                out[o++] = c;
            }
            out[o] = '\0';
            return true;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

int tg_admin_cache_purge(struct tg_request *r)
{
    char scope[128];
    bool bad;
    bool given = scope_param(r, scope, sizeof(scope), &bad);
    if (bad) {
        tg_request_fail(r, 400, "invalid_request_error", "scope: too long or malformed", NULL);
        return TG_ERROR;
    }
    if (given && strcmp(scope, "global") == 0)
        scope[0] = '\0'; /* the global scope's entries */
    size_t purged = 0;
    if (tg_response_cache_purge(given ? scope : NULL, &purged) != TG_OK) {
        tg_request_fail(r, 409, "invalid_request_error", "the response cache is off", NULL);
        return TG_ERROR;
    }
    tg_log_info(r->request_id, "response cache purged by %s: %zu entries of %s",
                r->identity.user_id, purged,
                given ? (scope[0] ? scope : "the global scope") : "every scope");
    return respond_json(r, json_pack("{s:I}", "purged", (json_int_t)purged));
}
