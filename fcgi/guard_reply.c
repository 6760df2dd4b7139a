/*
 * guard_reply.c — masking a non-stream reply's texts (see guard_reply.h).
 */
#include "guard_reply.h"
#include "jsafe.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct walk {
    const struct tg_guard_rules *rules;
    enum tg_guard_level level;
    tg_guard_finding_fn on_finding;
    void *ctx;
    bool masked;
};

/* The string member key of obj, masked in place. TG_OK, or TG_ERROR: it could not be checked. */
static int mask_member(struct walk *w, json_t *obj, const char *key)
{
    json_t *text = json_object_get(obj, key);
    if (!json_is_string(text))
        return TG_OK;
    size_t len = json_string_length(text), to = len, out_len = 0;
    char *out = tg_guard_mask_range(w->rules, w->level, json_string_value(text), len, 0, &to,
                                    w->on_finding, w->ctx, &out_len);
    if (out == NULL)
        return TG_ERROR;
    int rc = TG_OK;
    if (out_len != len || memcmp(out, json_string_value(text), len) != 0) {
        rc = json_object_set_new(obj, key, json_stringn(out, out_len)) == 0 ? TG_OK : TG_ERROR;
        w->masked = true;
    }
    free(out);
    return rc;
}

static int anthropic_texts(struct walk *w, json_t *reply)
{
    size_t i;
    json_t *block;
    json_array_foreach(json_object_get(reply, "content"), i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type != NULL && strcmp(type, "text") == 0 && mask_member(w, block, "text") != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

static int openai_texts(struct walk *w, json_t *reply)
{
    size_t i;
    json_t *choice;
    json_array_foreach(json_object_get(reply, "choices"), i, choice) {
        if (mask_member(w, json_object_get(choice, "message"), "content") != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

int tg_guard_reply_mask(const struct tg_guard_rules *rules, enum tg_guard_level level,
                        enum tg_guard_stream_dialect dialect, const char *body, size_t len,
                        tg_guard_finding_fn on_finding, void *ctx, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    json_t *reply = json_loadb(body, len, 0, NULL);
    if (!json_is_object(reply)) {
        json_decref(reply);
        return TG_ERROR;
    }
    struct walk w = {rules, level, on_finding, ctx, false};
    int rc =
        dialect == TG_GUARD_STREAM_OPENAI ? openai_texts(&w, reply) : anthropic_texts(&w, reply);
    if (rc == TG_OK && w.masked) {
        *out = tg_jsafe_dumps(reply, JSON_COMPACT);
        rc = *out != NULL ? TG_OK : TG_ERROR;
        if (*out != NULL)
            *out_len = strlen(*out);
    } else if (rc == TG_OK) {
        rc = TG_DECLINED;
    }
    json_decref(reply);
    return rc;
}
