/*
 * mcp_session.c — session tokens: JSON payload, base64url, HMAC-SHA256 (see mcp_session.h).
 *
 * The payload: {"v":"2025-06-18","p":"","c":"<caller digest>","e":1767225600,
 *               "u":[["github","<session id>","2025-06-18"], ...]}
 */
#include "mcp_session.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "jsafe.h"

#define PREFIX "tg1."

void tg_mcp_session_caller(const char *caller, char out[TG_MCP_CALLER_LEN + 1])
{
    unsigned char digest[TG_SHA256_LEN];
    tg_crypto_sha256(caller, strlen(caller), digest);
    tg_crypto_hex(digest, TG_MCP_CALLER_LEN / 2, out);
}

static json_t *payload(const struct tg_mcp_session *s)
{
    json_t *ups = json_array();
    for (size_t i = 0; ups != NULL && i < s->n; i++)
        if (json_array_append_new(ups, json_pack("[s,s,s]", s->up[i].server, s->up[i].session_id,
                                                 s->up[i].version)) != 0) {
            json_decref(ups);
            return NULL;
        }
    return json_pack("{s:s, s:s, s:s, s:I, s:o*}", "v", s->version, "p", s->scope, "c", s->caller,
                     "e", (json_int_t)s->expires_s, "u", ups);
}

static int sign(const char *secret, const char *data, size_t len, char *out, size_t out_size)
{
    unsigned char mac[TG_SHA256_LEN];
    if (tg_crypto_hmac_sha256(secret, strlen(secret), data, len, mac) != TG_OK)
        return TG_ERROR;
    return tg_crypto_base64url(mac, sizeof(mac), out, out_size);
}

int tg_mcp_session_encode(const struct tg_mcp_session *s, const char *secret, char *out,
                          size_t out_size)
{
    json_t *doc = payload(s);
    char *text = doc != NULL ? tg_jsafe_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return TG_ERROR;
    size_t at = strlen(PREFIX);
    int rc = TG_ERROR;
    if (out_size > at) {
        memcpy(out, PREFIX, at);
        int n =
            tg_crypto_base64url((const unsigned char *)text, strlen(text), out + at, out_size - at);
        if (n >= 0 && at + (size_t)n + 1 < out_size) {
            at += (size_t)n;
            int m = sign(secret, out, at, out + at + 1, out_size - at - 1);
            if (m >= 0) {
                out[at] = '.';
                rc = (int)(at + 1 + (size_t)m);
            }
        }
    }
    free(text);
    return rc;
}

static bool copy_field(const json_t *value, char *out, size_t size, bool visible_ascii)
{
    const char *s = json_string_value(value);
    if (s == NULL || json_string_length(value) >= size || strlen(s) != json_string_length(value))
        return false;
    for (const char *p = s; visible_ascii && *p != '\0'; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    memcpy(out, s, json_string_length(value) + 1);
    return true;
}

/* The payload doc into out; false when a field is missing or out of bounds. */
static bool read_payload(const json_t *doc, struct tg_mcp_session *out)
{
    const json_t *ups = json_object_get(doc, "u"), *expires = json_object_get(doc, "e");
    if (!copy_field(json_object_get(doc, "v"), out->version, sizeof(out->version), true) ||
        !copy_field(json_object_get(doc, "p"), out->scope, sizeof(out->scope), false) ||
        !copy_field(json_object_get(doc, "c"), out->caller, sizeof(out->caller), true) ||
        !json_is_integer(expires) || !json_is_array(ups) ||
        json_array_size(ups) > TG_MCP_MAX_SERVERS)
        return false;
    out->expires_s = json_integer_value(expires);
    size_t i;
    const json_t *up;
    json_array_foreach(ups, i, up) {
        struct tg_mcp_upstream_session *u = &out->up[i];
        if (!json_is_array(up) || json_array_size(up) != 3 ||
            !copy_field(json_array_get(up, 0), u->server, sizeof(u->server), true) ||
            !copy_field(json_array_get(up, 1), u->session_id, sizeof(u->session_id), false) ||
            !copy_field(json_array_get(up, 2), u->version, sizeof(u->version), false))
            return false;
        for (const char *p = u->session_id; *p != '\0'; p++)
            if (*p < 0x21 || *p > 0x7e)
                return false;
    }
    out->n = json_array_size(ups);
    return true;
}

int tg_mcp_session_decode(const char *token, const char *secret, int64_t now_s,
                          struct tg_mcp_session *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(token), at = strlen(PREFIX);
    const char *dot = strrchr(token, '.');
    if (len > TG_MCP_MAX_TOKEN || strncmp(token, PREFIX, at) != 0 || dot == NULL ||
        dot < token + at) {
        *why = "not a session token";
        return TG_DECLINED;
    }
    char mac[64];
    int m = sign(secret, token, (size_t)(dot - token), mac, sizeof(mac));
    if (m < 0 || strlen(dot + 1) != (size_t)m || !tg_crypto_equal(mac, dot + 1, (size_t)m)) {
        *why = "bad signature";
        return TG_DECLINED;
    }
    size_t body_len = (size_t)(dot - token) - at;
    unsigned char *raw = malloc(body_len * 3 / 4 + 4);
    long n = raw != NULL ? tg_crypto_base64url_decode(token + at, body_len, raw) : -1;
    json_t *doc =
        n > 0 ? json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(raw);
    bool ok = doc != NULL && read_payload(doc, out);
    json_decref(doc);
    if (!ok) {
        *why = "malformed session token";
        return TG_DECLINED;
    }
    if (out->expires_s <= now_s) {
        *why = "session expired";
        return TG_DECLINED;
    }
    return TG_OK;
}

const struct tg_mcp_upstream_session *tg_mcp_session_find(const struct tg_mcp_session *s,
                                                          const char *server)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->up[i].server, server) == 0)
            return &s->up[i];
    return NULL;
}
