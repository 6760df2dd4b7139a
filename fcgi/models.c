/*
 * models.c — GET /v1/models: the models the caller may use (RBAC, as reserve
 * applies it: tollgate.models_visible), each with its input and output price
 * per million tokens in force, in the caller's dialect: Anthropic's list when
 * the request carries anthropic-version or x-api-key (what Anthropic's SDK
 * sends), OpenAI's otherwise.
 */
#include "models.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "jsafe.h"
#include "request.h"
#include "usage.h"

static const char *const visible_sql =
    "SELECT model, canonical, input_micros_per_mtok, output_micros_per_mtok "
    "FROM tollgate.models_visible($1::bigint, $2, $3, $4::jsonb)";

/* [[name, canonical], ...] of every model name and alias the config serves. */
static char *config_models(const struct tg_config *c)
{
    json_t *pairs = json_array();
    for (size_t i = 0; pairs != NULL && i < c->n_models; i++) {
        const struct tg_model *m = &c->models[i];
        json_array_append_new(pairs, json_pack("[s,s]", m->name, m->name));
        for (size_t a = 0; a < m->n_aliases; a++)
            json_array_append_new(pairs, json_pack("[s,s]", m->aliases[a], m->name));
    }
    char *text = pairs != NULL ? tg_jsafe_dumps(pairs, JSON_COMPACT) : NULL;
    json_decref(pairs);
    return text;
}

/* {"input_usd_per_million_tokens": "3.000000", ...}, or null when unpriced. */
static json_t *pricing(const char *input_micros, const char *output_micros)
{
    if (input_micros == NULL || output_micros == NULL)
        return json_null();
    char input[32], output[32];
    tg_usage_format_usd(strtoll(input_micros, NULL, 10), input, sizeof(input));
    tg_usage_format_usd(strtoll(output_micros, NULL, 10), output, sizeof(output));
    return json_pack("{s:s, s:s}", "input_usd_per_million_tokens", input,
                     "output_usd_per_million_tokens", output);
}

static bool anthropic_client(struct tg_request *r)
{
    return tg_request_header(r, "anthropic-version") != NULL ||
           tg_request_header(r, "x-api-key") != NULL;
}

static json_t *entry(bool anthropic, const char *const *row)
{
    json_t *price = pricing(row[2], row[3]);
    if (anthropic)
        return json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", "model", "id", row[0], "display_name",
                         row[1], "created_at", "1970-01-01T00:00:00Z", "pricing", price);
    return json_pack("{s:s, s:s, s:i, s:s, s:o}", "id", row[0], "object", "model", "created", 0,
                     "owned_by", "tollgate", "pricing", price);
}

static json_t *listing(bool anthropic, json_t *data)
{
    size_t n = json_array_size(data);
    if (!anthropic)
        return json_pack("{s:s, s:o}", "object", "list", "data", data);
    return json_pack("{s:o, s:b, s:O, s:O}", "data", data, "has_more", 0, "first_id",
                     n > 0 ? json_object_get(json_array_get(data, 0), "id") : json_null(),
                     "last_id",
                     n > 0 ? json_object_get(json_array_get(data, n - 1), "id") : json_null());
}

void tg_models_dialect(struct tg_request *r)
{
    r->dialect = anthropic_client(r) ? TG_DIALECT_ANTHROPIC : TG_DIALECT_OPENAI;
}

int tg_models_handle(struct tg_request *r)
{
    bool anthropic = r->dialect == TG_DIALECT_ANTHROPIC;
    char *models = config_models(r->config);
    char key_id[24];
    snprintf(key_id, sizeof(key_id), "%" PRId64, r->identity.api_key_id);
    const char *params[] = {r->identity.api_key_id != 0 ? key_id : NULL, r->identity.group_id,
                            r->identity.role, models};
    struct tg_db_rows rows;
    char sqlstate[6], err[256];
    int rc = models != NULL
                 ? tg_db_call(r, visible_sql, 4, params, true, &rows, sqlstate, err, sizeof(err))
                 : TG_ERROR;
    free(models);
    if (rc != TG_OK) {
        tg_request_fail(r, 503, "api_error", "the gateway's database is unavailable",
                        "models_visible failed");
        return TG_ERROR;
    }
    json_t *data = json_array();
    for (int i = 0; data != NULL && i < rows.n_rows; i++)
        json_array_append_new(data, entry(anthropic, &rows.cells[i * rows.n_cols]));
    json_t *doc = data != NULL ? listing(anthropic, data) : NULL;
    char *text = doc != NULL ? tg_jsafe_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "could not build model list");
        return TG_ERROR;
    }
    tg_request_respond(r, 200, "application/json", text, strlen(text));
    free(text);
    return TG_OK;
}
