/*
 * models.c — the model list from the config.
 */
#include "models.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

static json_t *model_entry(const char *id, const char *display_name)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "type", "model", "id", id, "display_name",
                     display_name, "created_at", "1970-01-01T00:00:00Z");
}

int tg_models_handle(struct tg_request *r)
{
    const struct tg_config *c = r->config;
    json_t *data = json_array();
    for (size_t i = 0; i < c->n_models; i++) {
        const struct tg_model *m = &c->models[i];
        json_array_append_new(data, model_entry(m->name, m->name));
        for (size_t a = 0; a < m->n_aliases; a++)
            json_array_append_new(data, model_entry(m->aliases[a], m->name));
    }
    size_t n = json_array_size(data);
    json_t *doc =
        json_pack("{s:o, s:b, s:O, s:O}", "data", data, "has_more", 0, "first_id",
                  n > 0 ? json_object_get(json_array_get(data, 0), "id") : json_null(), "last_id",
                  n > 0 ? json_object_get(json_array_get(data, n - 1), "id") : json_null());
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "could not build model list");
        return TG_ERROR;
    }
    tg_request_respond(r, 200, "application/json", text, strlen(text));
    free(text);
    return TG_OK;
}
