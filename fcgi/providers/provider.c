/*
 * provider.c — what every provider shares: the same-dialect body.
 */
#include "provider.h"
#include "jsafe.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void free_text(void *text)
{
    free(text);
}

const char *tg_provider_same_dialect_body(struct tg_request *r, size_t *len)
{
    const char *upstream_model = r->backend->upstream_model;
    if (r->doc == NULL || r->client_model == NULL || strcmp(r->client_model, upstream_model) == 0) {
        *len = r->body_len;
        return r->body; /* byte for byte */
    }
    /* an alias the backend does not know: the one documented rewrite of the body */
    if (json_object_set_new(r->doc, "model", json_string(upstream_model)) != 0)
        return NULL;
    char *text = tg_jsafe_dumps(r->doc, JSON_COMPACT);
    if (text == NULL || tg_arena_cleanup_add(r->arena, free_text, text) != TG_OK) {
        free(text);
        return NULL;
    }
    *len = strlen(text);
    return text;
}
