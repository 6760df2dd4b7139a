/*
 * price_check.c — the config's models without a price in force: the list of
 * names (from the loaded config or straight from the file), and the worker's
 * one check at start.
 */
#include "price_check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "db.h"
#include "jsafe.h"
#include "log.h"
#include "request.h"

const char tg_price_check_sql[] =
    "SELECT u.model FROM tollgate.unpriced_models(ARRAY(SELECT m.name FROM"
    " jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS m(name, ord)"
    " ORDER BY m.ord)) AS u(model)";

/* names (a JSON array, stolen) as compact text; NULL when out of memory. */
static char *dump_names(json_t *names)
{
    char *text = names != NULL ? tg_jsafe_dumps(names, JSON_COMPACT) : NULL;
    json_decref(names);
    return text;
}

char *tg_price_check_models_json(const struct tg_config *config)
{
    json_t *names = json_array();
    for (size_t i = 0; names != NULL && i < config->n_models; i++) {
        if (json_array_append_new(names, json_string(config->models[i].name)) != 0) {
            json_decref(names);
            names = NULL;
        }
    }
    return dump_names(names);
}

char *tg_price_check_models_json_file(const char *path, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, err_size, "could not read config \"%s\": %s (line %d)", path, jerr.text,
                 jerr.line);
        return NULL;
    }
    json_t *models = json_object_get(root, "models");
    if (!json_is_object(models) || json_object_size(models) == 0) {
        snprintf(err, err_size, "config \"%s\": models: must name at least one model", path);
        json_decref(root);
        return NULL;
    }
    json_t *names = json_array();
    const char *name;
    json_t *value;
    json_object_foreach(models, name, value) {
        (void)value;
        if (names != NULL && json_array_append_new(names, json_string(name)) != 0) {
            json_decref(names);
            names = NULL;
        }
    }
    json_decref(root);
    char *text = dump_names(names);
    if (text == NULL)
        snprintf(err, err_size, "%s", "out of memory");
    return text;
}

int tg_price_check_log(const struct tg_config *config)
{
    /* A call made outside any request: tg_db_call only needs an arena for the
     * rows and an id for its log lines. */
    struct tg_request r;
    memset(&r, 0, sizeof(r));
    r.config = config;
    snprintf(r.request_id, sizeof(r.request_id), "%s", "price-check");
    r.arena = tg_arena_new(4096);
    char *models = tg_price_check_models_json(config);
    int rc = TG_ERROR;
    char sqlstate[6] = "", message[200] = "";
    struct tg_db_rows rows = {0};
    const char *params[1] = {models};
    if (r.arena != NULL && models != NULL)
        rc = tg_db_call(&r, tg_price_check_sql, 1, params, true, &rows, sqlstate, message,
                        sizeof(message));
    if (rc != TG_OK) {
        tg_log_warn(NULL, "could not check that every model has a price: %s",
                    rc == TG_DECLINED ? message : "database unavailable");
        rc = TG_ERROR;
    } else {
        for (int i = 0; i < rows.n_rows; i++)
            tg_log_error(NULL,
                         "model \"%s\" has no price in force: its requests are refused until "
                         "one is set (tollgatectl price set)",
                         rows.cells[i * rows.n_cols]);
        rc = rows.n_rows > 0 ? TG_DECLINED : TG_OK;
    }
    free(models);
    tg_arena_free(r.arena);
    return rc;
}
