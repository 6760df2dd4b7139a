/*
 * mcp_rpc.c — JSON-RPC checks and the federation's names (see mcp_rpc.h).
 */
#include "mcp_rpc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "crypto.h"
#include "jsafe.h"

#define SEPARATOR "__"

bool tg_mcp_rpc_id_ok(const json_t *id)
{
    return id != NULL && (json_is_string(id) || json_is_integer(id));
}

static bool error_object_ok(const json_t *error)
{
    return json_is_object(error) && json_is_integer(json_object_get(error, "code")) &&
           json_is_string(json_object_get(error, "message"));
}

enum tg_mcp_rpc_kind tg_mcp_rpc_classify(const json_t *msg, const char **why)
{
    *why = NULL;
    if (!json_is_object(msg)) {
        *why = "a JSON-RPC message must be an object";
        return TG_MCP_RPC_INVALID;
    }
    const json_t *version = json_object_get(msg, "jsonrpc");
    if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0) {
        *why = "\"jsonrpc\" must be \"2.0\"";
        return TG_MCP_RPC_INVALID;
    }
    const json_t *method = json_object_get(msg, "method"), *id = json_object_get(msg, "id");
    if (id != NULL && !tg_mcp_rpc_id_ok(id)) {
        *why = "\"id\" must be a string or an integer";
        return TG_MCP_RPC_INVALID;
    }
    if (method != NULL) {
        if (!json_is_string(method) || json_string_length(method) == 0 ||
            json_string_length(method) > 128) {
            *why = "\"method\" must be a string of 1 to 128 characters";
            return TG_MCP_RPC_INVALID;
        }
        const json_t *params = json_object_get(msg, "params");
        if (params != NULL && !json_is_object(params)) {
            *why = "\"params\" must be an object";
            return TG_MCP_RPC_INVALID;
        }
        if (json_object_get(msg, "result") != NULL || json_object_get(msg, "error") != NULL) {
            *why = "a request holds no \"result\" or \"error\"";
            return TG_MCP_RPC_INVALID;
        }
        return id != NULL ? TG_MCP_RPC_REQUEST : TG_MCP_RPC_NOTIFICATION;
    }
    const json_t *result = json_object_get(msg, "result"), *error = json_object_get(msg, "error");
    if (id == NULL || (result == NULL) == (error == NULL) ||
        (error != NULL && !error_object_ok(error))) {
        *why = "a message needs a \"method\", or an \"id\" with one of \"result\" or \"error\"";
        return TG_MCP_RPC_INVALID;
    }
    return TG_MCP_RPC_RESPONSE;
}

json_t *tg_mcp_rpc_error(const json_t *id, int code, const char *message)
{
    char cut[513];
    size_t len = strlen(message);
    if (len >= sizeof(cut))
        len = sizeof(cut) - 1;
    memcpy(cut, message, len);
    cut[len] = '\0';
    json_t *id_value = tg_mcp_rpc_id_ok(id) ? json_copy((json_t *)id) : json_null();
    /* a cut inside a UTF-8 sequence is not a string jansson takes: said plainly then */
    json_t *text = json_string(cut);
    if (text == NULL)
        text = json_string("error");
    return json_pack("{s:s, s:o, s:{s:i, s:o}}", "jsonrpc", "2.0", "id", id_value, "error", "code",
                     code, "message", text);
}

json_t *tg_mcp_rpc_result(const json_t *id, json_t *result)
{
    json_t *id_value = tg_mcp_rpc_id_ok(id) ? json_copy((json_t *)id) : json_null();
    return json_pack("{s:s, s:o, s:o}", "jsonrpc", "2.0", "id", id_value, "result", result);
}

char *tg_mcp_rpc_join(struct tg_arena *a, const char *server, const char *name)
{
    return tg_arena_printf(a, "%s" SEPARATOR "%s", server, name);
}

static int copy_server(const char *start, size_t len, char *server_out)
{
    if (len == 0 || len > TG_MCP_MAX_NAME)
        return TG_ERROR;
    memcpy(server_out, start, len);
    server_out[len] = '\0';
    return TG_OK;
}

int tg_mcp_rpc_split(const char *prefixed, char *server_out, const char **name)
{
    const char *sep = strstr(prefixed, SEPARATOR);
    if (sep == NULL || sep[2] == '\0' ||
        copy_server(prefixed, (size_t)(sep - prefixed), server_out) != TG_OK)
        return TG_ERROR;
    *name = sep + 2;
    return TG_OK;
}

char *tg_mcp_rpc_uri_wrap(struct tg_arena *a, const char *server, const char *uri)
{
    return tg_arena_printf(a, TG_MCP_URI_SCHEME "%s/%s", server, uri);
}

int tg_mcp_rpc_uri_unwrap(const char *wrapped, char *server_out, const char **uri)
{
    size_t scheme = strlen(TG_MCP_URI_SCHEME);
    if (strncmp(wrapped, TG_MCP_URI_SCHEME, scheme) != 0)
        return TG_ERROR;
    const char *slash = strchr(wrapped + scheme, '/');
    if (slash == NULL || slash[1] == '\0' ||
        copy_server(wrapped + scheme, (size_t)(slash - wrapped - scheme), server_out) != TG_OK)
        return TG_ERROR;
    *uri = slash + 1;
    return TG_OK;
}

char *tg_mcp_rpc_cursor_encode(struct tg_arena *a, const char *server, const char *upstream)
{
    json_t *pair = json_pack("[s, s?]", server, upstream);
    char *text = pair != NULL ? tg_jsafe_dumps(pair, JSON_COMPACT) : NULL;
    json_decref(pair);
    if (text == NULL)
        return NULL;
    size_t len = strlen(text);
    char *out =
        len * 4 / 3 + 4 <= TG_MCP_MAX_CURSOR ? tg_arena_alloc(a, TG_MCP_MAX_CURSOR + 1) : NULL;
    if (out != NULL &&
        tg_crypto_base64url((const unsigned char *)text, len, out, TG_MCP_MAX_CURSOR + 1) < 0)
        out = NULL;
    free(text);
    return out;
}

int tg_mcp_rpc_cursor_decode(struct tg_arena *a, const char *cursor, char *server_out,
                             const char **upstream)
{
    size_t len = strlen(cursor);
    if (len == 0 || len > TG_MCP_MAX_CURSOR)
        return TG_ERROR;
    unsigned char raw[TG_MCP_MAX_CURSOR];
    long n = tg_crypto_base64url_decode(cursor, len, raw);
    if (n <= 0)
        return TG_ERROR;
    json_t *pair = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    const json_t *server = json_array_get(pair, 0), *inner = json_array_get(pair, 1);
    int rc = TG_ERROR;
    if (json_is_array(pair) && json_array_size(pair) == 2 && json_is_string(server) &&
        (json_is_null(inner) || json_is_string(inner)) &&
        copy_server(json_string_value(server), json_string_length(server), server_out) == TG_OK) {
        *upstream = json_is_string(inner) ? tg_arena_strdup(a, json_string_value(inner)) : NULL;
        rc = json_is_string(inner) && *upstream == NULL ? TG_ERROR : TG_OK;
    }
    json_decref(pair);
    return rc;
}

bool tg_mcp_rpc_version_ok(const char *version)
{
    return version != NULL &&
           (strcmp(version, "2025-06-18") == 0 || strcmp(version, "2025-03-26") == 0);
}
