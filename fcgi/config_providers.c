/*
 * config_providers.c — the config's "providers" and "models": each provider's
 * type, URL, credentials and deadlines, each model's pool of backends, its
 * aliases and its bounds. Every error names the JSON path of its field.
 *
 * Provider URLs come only from here: nothing a client sends picks a host.
 */
#include "config_load.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    enum tg_provider_type type;
    const char *default_base_url; /* NULL: base_url is required */
} provider_types[] = {
    {"anthropic", TG_PROVIDER_ANTHROPIC, "https://api.anthropic.com"},
    {"openai", TG_PROVIDER_OPENAI, "https://api.openai.com"},
    {"azure_openai", TG_PROVIDER_AZURE_OPENAI, NULL},
    {"bedrock", TG_PROVIDER_BEDROCK, NULL}, /* made from the region */
    {"gemini", TG_PROVIDER_GEMINI, "https://generativelanguage.googleapis.com"},
    {"vertex", TG_PROVIDER_VERTEX, NULL}, /* made from the location */
    {"http", TG_PROVIDER_HTTP, NULL},
};

static void field_name(char *out, size_t size, const char *path, const char *key)
{
    snprintf(out, size, "%s.%s", path, key);
}

static int parse_type(struct tg_config_loader *ld, json_t *obj, const char *path)
{
    const char *type = tg_config_load_string(ld, obj, "type", path, NULL, true);
    if (type == NULL)
        return -1;
    int found = -1;
    for (size_t i = 0; i < TG_ARRAY_LEN(provider_types); i++)
        if (strcmp(provider_types[i].name, type) == 0)
            found = (int)i;
    if (found < 0) {
        char field[192];
        field_name(field, sizeof(field), path, "type");
        tg_config_load_fail(ld, field,
                            "unsupported provider type \"%s\" (supported: anthropic, openai, "
                            "azure_openai, bedrock, gemini, vertex, http)",
                            type);
    }
    free((char *)type);
    return found;
}

/* base_url, or the type's default (bedrock and vertex: made from region / location). */
static char *load_base_url(struct tg_config_loader *ld, json_t *obj, const char *path,
                           int type_index, const struct tg_provider *p)
{
    char made[256] = "";
    const char *fallback = provider_types[type_index].default_base_url;
    if (p->type == TG_PROVIDER_BEDROCK && p->region != NULL) {
        snprintf(made, sizeof(made), "https://bedrock-runtime.%s.amazonaws.com", p->region);
        fallback = made;
    } else if (p->type == TG_PROVIDER_VERTEX && p->location != NULL) {
        snprintf(made, sizeof(made), "https://%s-aiplatform.googleapis.com", p->location);
        fallback = made;
    }
    char *url =
        (char *)tg_config_load_string(ld, obj, "base_url", path, fallback, fallback == NULL);
    if (url == NULL)
        return NULL;
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        url[--len] = '\0';
    if (!tg_config_load_is_http_url(url)) {
        char field[192];
        field_name(field, sizeof(field), path, "base_url");
        tg_config_load_fail(ld, field, "must be an http(s) URL");
    }
    return url;
}

/* A string the environment gives when the file does not: AWS_ACCESS_KEY_ID and the like. */
static const char *string_or_env(struct tg_config_loader *ld, json_t *obj, const char *key,
                                 const char *path, const char *env_name)
{
    if (json_object_get(obj, key) != NULL)
        return tg_config_load_string(ld, obj, key, path, NULL, true);
    const char *env = getenv(env_name);
    return env != NULL && env[0] != '\0' ? tg_config_load_strdup(ld, env) : NULL;
}

/* bedrock: an API key (sent as a bearer token), or SigV4 credentials. */
static void load_bedrock(struct tg_config_loader *ld, json_t *obj, const char *path,
                         struct tg_provider *p)
{
    char field[192];
    if (p->api_key != NULL)
        return;
    p->aws_access_key_id = string_or_env(ld, obj, "aws_access_key_id", path, "AWS_ACCESS_KEY_ID");
    p->aws_secret_access_key =
        string_or_env(ld, obj, "aws_secret_access_key", path, "AWS_SECRET_ACCESS_KEY");
    p->aws_session_token = string_or_env(ld, obj, "aws_session_token", path, "AWS_SESSION_TOKEN");
    if (p->aws_access_key_id == NULL || p->aws_secret_access_key == NULL) {
        field_name(field, sizeof(field), path, "aws_access_key_id");
        tg_config_load_fail(ld, field,
                            "is required (or api_key, or AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY in the environment)");
    }
}

/* What each type needs besides base_url: credentials, api-version, region, project. */
static void load_type_fields(struct tg_config_loader *ld, json_t *obj, const char *path,
                             struct tg_provider *p)
{
    bool key_required = p->type == TG_PROVIDER_ANTHROPIC || p->type == TG_PROVIDER_AZURE_OPENAI ||
                        p->type == TG_PROVIDER_GEMINI;
    p->api_key = tg_config_load_string(ld, obj, "api_key", path, NULL, key_required);
    switch (p->type) {
    case TG_PROVIDER_AZURE_OPENAI:
        p->api_version = tg_config_load_string(ld, obj, "api_version", path, NULL, true);
        break;
    case TG_PROVIDER_BEDROCK:
        p->region = tg_config_load_string(ld, obj, "region", path, NULL, true);
        load_bedrock(ld, obj, path, p);
        break;
    case TG_PROVIDER_VERTEX:
        p->project = tg_config_load_string(ld, obj, "project", path, NULL, true);
        p->location = tg_config_load_string(ld, obj, "location", path, NULL, true);
        p->service_account_file =
            tg_config_load_string(ld, obj, "service_account_file", path, NULL, true);
        p->token_url = tg_config_load_string(ld, obj, "token_url", path, NULL, false);
        if (p->token_url != NULL && !tg_config_load_is_http_url(p->token_url)) {
            char field[192];
            field_name(field, sizeof(field), path, "token_url");
            tg_config_load_fail(ld, field, "must be an http(s) URL");
        }
        break;
    case TG_PROVIDER_HTTP:
        p->path = tg_config_load_string(ld, obj, "path", path, NULL, false);
        if (p->path != NULL && p->path[0] != '/') {
            char field[192];
            field_name(field, sizeof(field), path, "path");
            tg_config_load_fail(ld, field, "must begin with \"/\"");
        }
        break;
    default: break;
    }
}

static void load_provider(struct tg_config_loader *ld, const char *name, json_t *obj,
                          struct tg_provider *p)
{
    char path[160];
    snprintf(path, sizeof(path), "providers.%s", name);
    if (!json_is_object(obj)) {
        tg_config_load_fail(ld, path, "must be an object");
        return;
    }
    static const char *const known[] = {"type",
                                        "base_url",
                                        "api_key",
                                        "connect_timeout_ms",
                                        "timeout_ms",
                                        "first_byte_timeout_ms",
                                        "idle_timeout_ms",
                                        "api_version",
                                        "region",
                                        "aws_access_key_id",
                                        "aws_secret_access_key",
                                        "aws_session_token",
                                        "project",
                                        "location",
                                        "service_account_file",
                                        "token_url",
                                        "path",
                                        NULL};
    tg_config_load_keys(ld, obj, path, known);
    p->name = tg_config_load_strdup(ld, name);
    int type_index = parse_type(ld, obj, path);
    if (type_index < 0)
        return;
    p->type = provider_types[type_index].type;
    load_type_fields(ld, obj, path, p);
    p->base_url = load_base_url(ld, obj, path, type_index, p);
    p->connect_timeout_ms =
        tg_config_load_integer(ld, obj, "connect_timeout_ms", path, 5000, 100, 120000);
    p->timeout_ms = tg_config_load_integer(ld, obj, "timeout_ms", path, 600000, 100, 3600000);
    p->first_byte_timeout_ms = tg_config_load_integer(ld, obj, "first_byte_timeout_ms", path,
                                                      p->timeout_ms, 100, p->timeout_ms);
    p->idle_timeout_ms =
        tg_config_load_integer(ld, obj, "idle_timeout_ms", path, p->timeout_ms, 100, p->timeout_ms);
}

void tg_config_load_providers(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *providers = tg_config_load_object(ld, root, "providers", "", true);
    if (providers == NULL)
        return;
    if (json_object_size(providers) == 0) {
        tg_config_load_fail(ld, "providers", "must name at least one provider");
        return;
    }
    c->providers = calloc(json_object_size(providers), sizeof(*c->providers));
    if (c->providers == NULL) {
        tg_config_load_fail(ld, "providers", "out of memory");
        return;
    }
    const char *name;
    json_t *obj;
    json_object_foreach(providers, name, obj) {
        load_provider(ld, name, obj, &c->providers[c->n_providers++]);
    }
}

static const struct tg_provider *find_provider(const struct tg_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_providers; i++)
        if (c->providers[i].name != NULL && strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    return NULL;
}

static void load_aliases(struct tg_config_loader *ld, json_t *obj, const char *path,
                         struct tg_model *m)
{
    json_t *aliases = json_object_get(obj, "aliases");
    char field[192];
    snprintf(field, sizeof(field), "%s.aliases", path);
    if (aliases == NULL)
        return;
    if (!json_is_array(aliases)) {
        tg_config_load_fail(ld, field, "must be an array of strings");
        return;
    }
    m->aliases = calloc(json_array_size(aliases) + 1, sizeof(*m->aliases));
    if (m->aliases == NULL) {
        tg_config_load_fail(ld, field, "out of memory");
        return;
    }
    size_t i;
    json_t *alias;
    json_array_foreach(aliases, i, alias) {
        if (!json_is_string(alias) || json_string_length(alias) == 0) {
            snprintf(field, sizeof(field), "%s.aliases[%zu]", path, i);
            tg_config_load_fail(ld, field, "must be a non-empty string");
            return;
        }
        m->aliases[m->n_aliases++] = tg_config_load_strdup(ld, json_string_value(alias));
    }
}

/* One backend: {provider, model, priority, weight} at path (obj may be the model itself). */
static void load_backend(struct tg_config_loader *ld, const struct tg_config *c, json_t *obj,
                         const char *path, const char *model_key, const struct tg_model *m,
                         struct tg_backend *b)
{
    char field[256];
    const char *provider = tg_config_load_string(ld, obj, "provider", path, NULL, true);
    if (provider != NULL) {
        b->provider = find_provider(c, provider);
        if (b->provider == NULL) {
            field_name(field, sizeof(field), path, "provider");
            tg_config_load_fail(ld, field, "no provider named \"%s\" in providers", provider);
        }
    }
    free((char *)provider);
    b->upstream_model = tg_config_load_string(ld, obj, model_key, path, m->name, false);
    b->priority = (int)tg_config_load_integer(ld, obj, "priority", path, 1, 1, 10);
    b->weight = (int)tg_config_load_integer(ld, obj, "weight", path, 1, 0, 1000);
    if (b->provider != NULL && b->upstream_model != NULL) {
        char id[512];
        snprintf(id, sizeof(id), "%s/%s", b->provider->name, b->upstream_model);
        b->id = tg_config_load_strdup(ld, id);
    }
}

/* "provider" (one backend) or "backends" (a pool), never both. */
static void load_pool(struct tg_config_loader *ld, const struct tg_config *c, json_t *obj,
                      const char *path, struct tg_model *m)
{
    char field[256];
    json_t *pool = json_object_get(obj, "backends");
    bool single = json_object_get(obj, "provider") != NULL;
    field_name(field, sizeof(field), path, "backends");
    if (pool != NULL && single) {
        tg_config_load_fail(ld, field, "cannot be given with provider (give one or the other)");
        return;
    }
    if (pool == NULL) {
        m->backends = calloc(1, sizeof(*m->backends));
        if (m->backends == NULL) {
            tg_config_load_fail(ld, path, "out of memory");
            return;
        }
        m->n_backends = 1;
        load_backend(ld, c, obj, path, "upstream_model", m, &m->backends[0]);
    } else {
        if (!json_is_array(pool) || json_array_size(pool) == 0 || json_array_size(pool) > 16) {
            tg_config_load_fail(ld, field, "must be an array of 1 to 16 backends");
            return;
        }
        m->backends = calloc(json_array_size(pool), sizeof(*m->backends));
        if (m->backends == NULL) {
            tg_config_load_fail(ld, field, "out of memory");
            return;
        }
        size_t i;
        json_t *item;
        json_array_foreach(pool, i, item) {
            char item_path[256];
            snprintf(item_path, sizeof(item_path), "%s.backends[%zu]", path, i);
            static const char *const known[] = {"provider", "model", "priority", "weight", NULL};
            if (!json_is_object(item)) {
                tg_config_load_fail(ld, item_path, "must be an object");
                return;
            }
            tg_config_load_keys(ld, item, item_path, known);
            load_backend(ld, c, item, item_path, "model", m, &m->backends[m->n_backends++]);
        }
    }
    m->provider = m->backends[0].provider;
}

static void load_model(struct tg_config_loader *ld, struct tg_config *c, const char *name,
                       json_t *obj, struct tg_model *m)
{
    char path[192];
    snprintf(path, sizeof(path), "models.%s", name);
    if (!json_is_object(obj)) {
        tg_config_load_fail(ld, path, "must be an object");
        return;
    }
    static const char *const known[] = {
        "provider",          "upstream_model",   "backends", "aliases",
        "max_output_tokens", "max_input_tokens", "kind",     NULL};
    tg_config_load_keys(ld, obj, path, known);
    m->name = tg_config_load_strdup(ld, name);
    const char *kind = tg_config_load_string(ld, obj, "kind", path, "chat", false);
    if (kind != NULL && strcmp(kind, "embeddings") == 0) {
        m->kind = TG_MODEL_EMBEDDINGS;
    } else if (kind != NULL && strcmp(kind, "chat") != 0) {
        char field[224];
        field_name(field, sizeof(field), path, "kind");
        tg_config_load_fail(ld, field, "must be \"chat\" or \"embeddings\"");
    }
    free((char *)kind);
    /* the largest output any Claude model accepts, and Claude's usual context window */
    m->max_output_tokens =
        tg_config_load_integer(ld, obj, "max_output_tokens", path, 128000, 1, 10000000);
    m->max_input_tokens =
        tg_config_load_integer(ld, obj, "max_input_tokens", path, 200000, 1, 100000000);
    m->max_input_tokens_set = json_object_get(obj, "max_input_tokens") != NULL;
    load_pool(ld, c, obj, path, m);
    load_aliases(ld, obj, path, m);
}

/*
 * Every name and alias must resolve to one model only: an alias may not be
 * another model's name, nor an alias of an earlier model.
 */
static void check_model_names(struct tg_config_loader *ld, const struct tg_config *c)
{
    for (size_t i = 0; i < c->n_models && !ld->failed; i++) {
        const struct tg_model *m = &c->models[i];
        for (size_t a = 0; a < m->n_aliases; a++) {
            for (size_t j = 0; j < c->n_models; j++) {
                const struct tg_model *other = &c->models[j];
                bool clash = j != i && strcmp(other->name, m->aliases[a]) == 0;
                for (size_t b = 0; j < i && b < other->n_aliases && !clash; b++)
                    clash = strcmp(other->aliases[b], m->aliases[a]) == 0;
                if (clash) {
                    char field[256];
                    snprintf(field, sizeof(field), "models.%s.aliases[%zu]", m->name, a);
                    tg_config_load_fail(ld, field, "\"%s\" is already the name of another model",
                                        m->aliases[a]);
                    return;
                }
            }
        }
    }
}

void tg_config_load_models(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *models = tg_config_load_object(ld, root, "models", "", true);
    if (models == NULL || ld->failed)
        return;
    if (json_object_size(models) == 0) {
        tg_config_load_fail(ld, "models", "must name at least one model");
        return;
    }
    c->models = calloc(json_object_size(models), sizeof(*c->models));
    if (c->models == NULL) {
        tg_config_load_fail(ld, "models", "out of memory");
        return;
    }
    const char *name;
    json_t *obj;
    json_object_foreach(models, name, obj) {
        load_model(ld, c, name, obj, &c->models[c->n_models++]);
        if (ld->failed)
            return;
    }
    check_model_names(ld, c);
}

static void load_retry_statuses(struct tg_config_loader *ld, json_t *obj,
                                struct tg_failover_config *f)
{
    static const int defaults[] = {429, 500, 502, 503, 504, 529};
    json_t *list = json_object_get(obj, "retry_statuses");
    if (list == NULL) {
        for (size_t i = 0; i < TG_ARRAY_LEN(defaults); i++)
            f->retry_statuses[f->n_retry_statuses++] = defaults[i];
        return;
    }
    if (!json_is_array(list) || json_array_size(list) > TG_MAX_RETRY_STATUSES) {
        tg_config_load_fail(ld, "failover.retry_statuses",
                            "must be an array of at most %d statuses", TG_MAX_RETRY_STATUSES);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 400 || json_integer_value(v) > 599) {
            char field[64];
            snprintf(field, sizeof(field), "failover.retry_statuses[%zu]", i);
            tg_config_load_fail(ld, field, "must be an HTTP status from 400 to 599");
            return;
        }
        f->retry_statuses[f->n_retry_statuses++] = (int)json_integer_value(v);
    }
}

void tg_config_load_failover(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    struct tg_failover_config *f = &c->failover;
    json_t *obj = tg_config_load_object(ld, root, "failover", "", false);
    static const char *const known[] = {"max_attempts",      "backoff_base_ms", "backoff_max_ms",
                                        "total_deadline_ms", "retry_statuses",  "failure_threshold",
                                        "window_ms",         "cooldown_ms",     NULL};
    if (obj != NULL)
        tg_config_load_keys(ld, obj, "failover", known);
    f->max_attempts = (int)tg_config_load_integer(ld, obj, "max_attempts", "failover", 3, 1, 16);
    f->backoff_base_ms =
        tg_config_load_integer(ld, obj, "backoff_base_ms", "failover", 100, 0, 60000);
    f->backoff_max_ms =
        tg_config_load_integer(ld, obj, "backoff_max_ms", "failover", 2000, 0, 600000);
    f->total_deadline_ms =
        tg_config_load_integer(ld, obj, "total_deadline_ms", "failover", 30000, 0, 3600000);
    f->failure_threshold =
        (int)tg_config_load_integer(ld, obj, "failure_threshold", "failover", 5, 0, 32);
    f->window_ms = tg_config_load_integer(ld, obj, "window_ms", "failover", 60000, 1, 3600000);
    f->cooldown_ms = tg_config_load_integer(ld, obj, "cooldown_ms", "failover", 30000, 0, 3600000);
    load_retry_statuses(ld, obj, f);
}

void tg_config_providers_release(struct tg_config *c)
{
    for (size_t i = 0; i < c->n_providers; i++) {
        struct tg_provider *p = &c->providers[i];
        const char *owned[] = {p->name,
                               p->base_url,
                               p->api_key,
                               p->api_version,
                               p->region,
                               p->aws_access_key_id,
                               p->aws_secret_access_key,
                               p->aws_session_token,
                               p->project,
                               p->location,
                               p->service_account_file,
                               p->token_url,
                               p->path};
        for (size_t k = 0; k < TG_ARRAY_LEN(owned); k++)
            free((char *)owned[k]);
    }
    for (size_t i = 0; i < c->n_models; i++) {
        struct tg_model *m = &c->models[i];
        free((char *)m->name);
        for (size_t a = 0; a < m->n_aliases; a++)
            free((char *)m->aliases[a]);
        free(m->aliases);
        for (size_t b = 0; b < m->n_backends; b++) {
            free((char *)m->backends[b].upstream_model);
            free((char *)m->backends[b].id);
        }
        free(m->backends);
    }
    free(c->providers);
    free(c->models);
    c->providers = NULL;
    c->models = NULL;
}

const struct tg_model *tg_config_find_model(const struct tg_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++) {
        const struct tg_model *m = &c->models[i];
        if (m->name != NULL && strcmp(m->name, name) == 0)
            return m;
        for (size_t a = 0; a < m->n_aliases; a++)
            if (strcmp(m->aliases[a], name) == 0)
                return m;
    }
    return NULL;
}
