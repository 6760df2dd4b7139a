/*
 * config_guard.c — the config's "guardrails": the rule set (inline, or a
 * rules_file such as conf/guardrails.json), compiled once at start by guard.c,
 * the JSON fields of http routes' bodies it looks at, and whether replies are
 * guarded too (masked; a stream with a carry of response_window_bytes), and
 * what the rules do on the MCP gateway (mcp_guard.c: tools/call arguments,
 * tool results, the most an injection rule does to a result). Its "webhook"
 * and "moderation" members are config_guard_webhook.c's.
 *
 *   "guardrails": {"rules_file": "/etc/tollgate/guardrails.json",
 *                  "http_paths": ["message", "history[*].text"],
 *                  "responses": true, "response_window_bytes": 256,
 *                  "mcp": {"arguments": true, "results": true, "result_injection": "warn"}}
 */
#include "config_load.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "guard_stream.h"
#include "guard_texts.h"

#define MAX_HTTP_PATHS 32

static void load_http_paths(struct tg_config_loader *ld, json_t *paths, struct tg_config *c)
{
    if (paths == NULL)
        return;
    if (!json_is_array(paths) || json_array_size(paths) > MAX_HTTP_PATHS) {
        tg_config_load_fail(ld, "guardrails.http_paths", "must be an array of at most %d paths",
                            MAX_HTTP_PATHS);
        return;
    }
    c->guard_http_paths = calloc(json_array_size(paths) + 1, sizeof(char *));
    if (c->guard_http_paths == NULL) {
        tg_config_load_fail(ld, "guardrails.http_paths", "out of memory");
        return;
    }
    size_t i;
    json_t *path;
    json_array_foreach(paths, i, path) {
        char field[64];
        snprintf(field, sizeof(field), "guardrails.http_paths[%zu]", i);
        if (!json_is_string(path) || tg_guard_texts_path_check(json_string_value(path)) != TG_OK) {
            tg_config_load_fail(ld, field,
                                "must be a field path such as \"message\" or \"items[*].text\"");
            return;
        }
        c->guard_http_paths[c->n_guard_http_paths++] =
            tg_config_load_strdup(ld, json_string_value(path));
    }
}

static void load_responses(struct tg_config_loader *ld, json_t *g, struct tg_config *c)
{
    json_t *responses = json_object_get(g, "responses");
    json_t *window = json_object_get(g, "response_window_bytes");
    if (responses != NULL && !json_is_boolean(responses)) {
        tg_config_load_fail(ld, "guardrails.responses", "must be true or false");
        return;
    }
    c->guard_responses = json_is_true(responses);
    c->guard_response_window_bytes = TG_GUARD_STREAM_WINDOW_DEFAULT;
    if (window == NULL)
        return;
    if (!json_is_integer(window) || json_integer_value(window) < 16 ||
        json_integer_value(window) > TG_GUARD_STREAM_WINDOW_MAX) {
        tg_config_load_fail(ld, "guardrails.response_window_bytes",
                            "must be an integer from 16 to %d", TG_GUARD_STREAM_WINDOW_MAX);
        return;
    }
    c->guard_response_window_bytes = (size_t)json_integer_value(window);
}

static bool mcp_flag(struct tg_config_loader *ld, json_t *mcp, const char *key, bool *out)
{
    json_t *v = json_object_get(mcp, key);
    if (v != NULL && !json_is_boolean(v)) {
        char field[64];
        snprintf(field, sizeof(field), "guardrails.mcp.%s", key);
        tg_config_load_fail(ld, field, "must be true or false");
        return false;
    }
    *out = v == NULL || json_is_true(v); /* on unless turned off */
    return true;
}

/* guardrails.mcp: the rules on tools/call arguments and tool results (both on by default). */
static void load_mcp(struct tg_config_loader *ld, json_t *g, struct tg_config *c)
{
    static const char *const actions[] = {"warn", "mask", "block"};
    json_t *mcp = json_object_get(g, "mcp");
    c->guard_mcp_arguments = c->guard_mcp_results = true;
    c->guard_mcp_result_injection = TG_GUARD_WARN;
    if (mcp == NULL)
        return;
    if (!json_is_object(mcp)) {
        tg_config_load_fail(ld, "guardrails.mcp", "must be an object");
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(mcp, key, v) {
        if (strcmp(key, "arguments") != 0 && strcmp(key, "results") != 0 &&
            strcmp(key, "result_injection") != 0) {
            char field[96];
            snprintf(field, sizeof(field), "guardrails.mcp.%.60s", key);
            tg_config_load_fail(ld, field, "unknown field");
            return;
        }
    }
    if (!mcp_flag(ld, mcp, "arguments", &c->guard_mcp_arguments) ||
        !mcp_flag(ld, mcp, "results", &c->guard_mcp_results))
        return;
    json_t *injection = json_object_get(mcp, "result_injection");
    if (injection == NULL)
        return;
    for (size_t i = 0; i < TG_ARRAY_LEN(actions); i++)
        if (json_is_string(injection) && strcmp(json_string_value(injection), actions[i]) == 0) {
            c->guard_mcp_result_injection = (int)i; /* enum tg_guard_action's order */
            return;
        }
    tg_config_load_fail(ld, "guardrails.mcp.result_injection",
                        "must be \"warn\", \"mask\" or \"block\"");
}

/* The rule set's own section: the file's, or the inline one without this file's keys. */
static json_t *rules_section(struct tg_config_loader *ld, json_t *g)
{
    json_t *file = json_object_get(g, "rules_file");
    if (file == NULL) {
        json_t *copy = json_deep_copy(g);
        json_object_del(copy, "http_paths");
        json_object_del(copy, "enabled");
        json_object_del(copy, "webhook");
        json_object_del(copy, "moderation");
        json_object_del(copy, "responses");
        json_object_del(copy, "response_window_bytes");
        json_object_del(copy, "mcp");
        return copy;
    }
    if (!json_is_string(file) || json_object_get(g, "rules") != NULL) {
        tg_config_load_fail(ld, "guardrails.rules_file",
                            "must be a path (and then no inline \"rules\")");
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_load_file(json_string_value(file), JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        tg_config_load_fail(ld, "guardrails.rules_file", "could not read \"%s\": %s",
                            json_string_value(file), jerr.text);
    return doc;
}

void tg_config_load_guard(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *g = tg_config_load_object(ld, root, "guardrails", "", false);
    if (g == NULL || ld->failed)
        return;
    json_t *enabled = json_object_get(g, "enabled");
    if (enabled != NULL && !json_is_boolean(enabled)) {
        tg_config_load_fail(ld, "guardrails.enabled", "must be true or false");
        return;
    }
    if (json_is_false(enabled))
        return;
    load_http_paths(ld, json_object_get(g, "http_paths"), c);
    load_responses(ld, g, c);
    load_mcp(ld, g, c);
    tg_config_load_guard_hooks(ld, g, c);
    if (ld->failed)
        return;
    bool hooks = c->guard_webhook.url != NULL || c->guard_moderation.url != NULL;
    if (hooks && json_object_get(g, "rules") == NULL && json_object_get(g, "rules_file") == NULL)
        return; /* remote checks only: no local rule set */
    json_t *section = rules_section(ld, g);
    if (section == NULL)
        return;
    char err[512];
    c->guard = tg_guard_load(section, err, sizeof(err));
    json_decref(section);
    if (c->guard == NULL)
        tg_config_load_fail(ld, "guardrails", "%s", err);
}

void tg_config_guard_release(struct tg_config *c)
{
    tg_guard_free(c->guard);
    for (size_t i = 0; i < c->n_guard_http_paths; i++)
        free(c->guard_http_paths[i]);
    free(c->guard_http_paths);
    c->guard = NULL;
    c->guard_http_paths = NULL;
    tg_config_guard_hooks_release(c);
}
