/*
 * config.c — parses and validates tollgate.json with jansson.
 *
 * Validation walks the JSON once, with the current JSON path kept in a small
 * struct so every error names the exact field. All strings are copied into the
 * config (strdup'd) so the json_t tree is dropped after loading.
 */
#include "config.h"
#include "config_load.h"

#include "auth_jwt.h"
#include "bound_config.h"
#include "config_field.h"
#include "crypto.h"
#include "shm.h"

#include <arpa/inet.h>

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef TG_UI_DIR
#define TG_UI_DIR "/usr/local/share/tollgate/ui"
#endif

static void load_server(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *server = tg_config_load_object(ld, root, "server", "", false);
    static const char *const known[] = {"processes",         "threads",
                                        "thread_stack_kib",  "queue_timeout_ms",
                                        "max_body_bytes",    "max_response_bytes",
                                        "drain_timeout_ms",  "drain_max_bytes",
                                        "queue_deadline_ms", NULL};
    if (server != NULL)
        tg_config_load_keys(ld, server, "server", known);
    /* sized for hundreds of streams per host: a stream holds a thread while it lasts */
    c->processes = (int)tg_config_load_integer(ld, server, "processes", "server", 4, 1, 64);
    c->threads = (int)tg_config_load_integer(ld, server, "threads", "server", 256, 1, 1024);
    c->queue_timeout_ms =
        tg_config_load_integer(ld, server, "queue_timeout_ms", "server", 0, 0, 600000);
    c->thread_stack_kib =
        tg_config_load_integer(ld, server, "thread_stack_kib", "server", 1024, 256, 65536);
    c->max_body_bytes = (size_t)tg_config_load_integer(ld, server, "max_body_bytes", "server",
                                                       1 << 20, 1024, 64L << 20);
    c->max_response_bytes = (size_t)tg_config_load_integer(ld, server, "max_response_bytes",
                                                           "server", 16L << 20, 4096, 256L << 20);
    /* a client that left mid-stream: how long and how much is still read for the usage */
    c->drain_timeout_ms =
        tg_config_load_integer(ld, server, "drain_timeout_ms", "server", 30000, 0, 3600000L);
    c->drain_max_bytes = (size_t)tg_config_load_integer(ld, server, "drain_max_bytes", "server",
                                                        8L << 20, 0, 1L << 30);
    /* a request that waited this long for a thread is not worth a provider's call any more */
    c->queue_deadline_ms =
        tg_config_load_integer(ld, server, "queue_deadline_ms", "server", 30000, 0, 3600000L);
}

static void load_database(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *db = tg_config_load_object(ld, root, "database", "", true);
    if (db == NULL)
        return;
    static const char *const known[] = {"url", "pool_size", "connect_timeout_ms",
                                        "statement_timeout_ms", NULL};
    tg_config_load_keys(ld, db, "database", known);
    const char *env_url = getenv("TOLLGATE_DATABASE_URL");
    if (env_url != NULL && env_url[0] != '\0')
        c->db_url = tg_config_load_strdup(ld, env_url);
    else
        c->db_url = tg_config_load_string(ld, db, "url", "database", NULL, true);
    c->db_pool_size = (int)tg_config_load_integer(ld, db, "pool_size", "database", 4, 1, 64);
    c->db_connect_timeout_ms =
        tg_config_load_integer(ld, db, "connect_timeout_ms", "database", 2000, 100, 60000);
    c->db_statement_timeout_ms =
        tg_config_load_integer(ld, db, "statement_timeout_ms", "database", 5000, 10, 600000);
}

static void load_log(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *log = tg_config_load_object(ld, root, "log", "", false);
    static const char *const known[] = {"file", NULL};
    if (log != NULL)
        tg_config_load_keys(ld, log, "log", known);
    const char *file = tg_config_load_string(ld, log, "file", "log", NULL, false);
    if (file != NULL && strcmp(file, "-") == 0) {
        free((char *)file);
        file = NULL;
    }
    c->log_file = file;
}

static int parse_enum(struct tg_config_loader *ld, const char *value, const char *field,
                      const char *const *names, int fallback)
{
    if (value == NULL)
        return fallback;
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], value) == 0)
            return i;
    tg_config_load_fail(ld, field, "unknown value \"%s\"", value);
    return fallback;
}

static void load_rate_limit(struct tg_config_loader *ld, json_t *obj, const char *path,
                            struct tg_rate_limit *rl)
{
    static const char *const known[] = {
        "name", "per", "mode", "match", "max_tokens", "tokens_per_fill", "fill_interval_ms", NULL};
    static const char *const pers[] = {"key", "user", "group", "route", NULL};
    static const char *const modes[] = {"local", "global", NULL};
    static const char *const match_known[] = {"key", "user", "group", NULL};
    char field[192];
    if (!json_is_object(obj)) {
        tg_config_load_fail(ld, path, "must be an object");
        return;
    }
    tg_config_load_keys(ld, obj, path, known);
    rl->name = tg_config_load_string(ld, obj, "name", path, NULL, true);
    const char *per = tg_config_load_string(ld, obj, "per", path, "key", false);
    snprintf(field, sizeof(field), "%s.per", path);
    rl->per = (enum tg_rate_limit_per)parse_enum(ld, per, field, pers, TG_RL_PER_KEY);
    free((char *)per);
    const char *mode = tg_config_load_string(ld, obj, "mode", path, "local", false);
    snprintf(field, sizeof(field), "%s.mode", path);
    rl->mode = (enum tg_rate_limit_mode)parse_enum(ld, mode, field, modes, TG_RL_LOCAL);
    free((char *)mode);
    json_t *match = json_object_get(obj, "match");
    snprintf(field, sizeof(field), "%s.match", path);
    if (match != NULL && !json_is_object(match))
        tg_config_load_fail(ld, field, "must be an object");
    if (json_is_object(match)) {
        tg_config_load_keys(ld, match, field, match_known);
        rl->match_key = tg_config_load_string(ld, match, "key", field, NULL, false);
        rl->match_user = tg_config_load_string(ld, match, "user", field, NULL, false);
        rl->match_group = tg_config_load_string(ld, match, "group", field, NULL, false);
    }
    rl->max_tokens = tg_config_load_integer(ld, obj, "max_tokens", path, 0, 1, 1000000000L);
    rl->tokens_per_fill =
        tg_config_load_integer(ld, obj, "tokens_per_fill", path, 0, 1, 1000000000L);
    rl->fill_interval_ms =
        tg_config_load_integer(ld, obj, "fill_interval_ms", path, 0, 1, 86400000L);
    if (!ld->failed &&
        (rl->max_tokens == 0 || rl->tokens_per_fill == 0 || rl->fill_interval_ms == 0)) {
        tg_config_load_fail(ld, path, "needs max_tokens, tokens_per_fill and fill_interval_ms");
    }
    if (rl->name != NULL &&
        (strlen(rl->name) == 0 || strlen(rl->name) > 40 ||
         strspn(rl->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
             strlen(rl->name))) {
        snprintf(field, sizeof(field), "%s.name", path);
        tg_config_load_fail(ld, field, "must be 1 to 40 letters, digits, '.', '_' or '-'");
    }
}

static void load_rate_limits(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *list = json_object_get(root, "rate_limits");
    if (list == NULL)
        return;
    if (!json_is_array(list)) {
        tg_config_load_fail(ld, "rate_limits", "must be an array");
        return;
    }
    c->rate_limits = calloc(json_array_size(list) + 1, sizeof(*c->rate_limits));
    if (c->rate_limits == NULL) {
        tg_config_load_fail(ld, "rate_limits", "out of memory");
        return;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(list, i, obj) {
        char path[64];
        snprintf(path, sizeof(path), "rate_limits[%zu]", i);
        load_rate_limit(ld, obj, path, &c->rate_limits[c->n_rate_limits++]);
        for (size_t j = 0; j + 1 < c->n_rate_limits && !ld->failed; j++) {
            if (c->rate_limits[j].name != NULL && c->rate_limits[i].name != NULL &&
                strcmp(c->rate_limits[j].name, c->rate_limits[i].name) == 0) {
                char field[96];
                snprintf(field, sizeof(field), "%s.name", path);
                tg_config_load_fail(ld, field, "\"%s\" is already the name of another rate limit",
                                    c->rate_limits[i].name);
            }
        }
    }
}

static void load_quotas(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    static const char *const known[] = {"estimator", "on_database_down", "sweep_interval_ms",
                                        "reservation_ttl_ms", NULL};
    static const char *const estimators[] = {"upper_bound", "approximate", NULL};
    static const char *const policies[] = {"deny", "local_only", NULL};
    json_t *q = tg_config_load_object(ld, root, "quotas", "", false);
    if (q != NULL)
        tg_config_load_keys(ld, q, "quotas", known);
    const char *estimator = tg_config_load_string(ld, q, "estimator", "quotas", NULL, false);
    c->estimator = (enum tg_estimator)parse_enum(ld, estimator, "quotas.estimator", estimators,
                                                 TG_ESTIMATE_UPPER_BOUND);
    free((char *)estimator);
    const char *policy = tg_config_load_string(ld, q, "on_database_down", "quotas", NULL, false);
    c->on_db_down = (enum tg_db_down_policy)parse_enum(ld, policy, "quotas.on_database_down",
                                                       policies, TG_DB_DOWN_DENY);
    free((char *)policy);
    c->sweep_interval_ms =
        tg_config_load_integer(ld, q, "sweep_interval_ms", "quotas", 10000, 100, 3600000);
    /* by default a reservation outlives the slowest provider call by a minute */
    long slowest = 0;
    for (size_t i = 0; i < c->n_providers; i++)
        if (c->providers[i].timeout_ms > slowest)
            slowest = c->providers[i].timeout_ms;
    c->reservation_ttl_ms = tg_config_load_integer(ld, q, "reservation_ttl_ms", "quotas",
                                                   slowest + 60000, 1000, 86400000L);
}

/* bounds: bound_config.c reads the section; the models' context windows must fit its betas. */
static void load_bounds(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *bounds = json_object_get(root, "bounds");
    if (ld->failed)
        return;
    if (tg_bound_config_load(bounds, &c->bounds, ld->err, ld->err_size) != TG_OK) {
        ld->failed = true; /* the message is already in ld->err */
        return;
    }
    const char *beta = tg_bound_config_context_beta(&c->bounds);
    for (size_t i = 0; beta != NULL && i < c->n_models; i++) {
        if (!c->models[i].max_input_tokens_set) {
            char field[224];
            snprintf(field, sizeof(field), "models.%s.max_input_tokens", c->models[i].name);
            tg_config_load_fail(ld, field, "is required when bounds.allowed_betas allows \"%s\"",
                                beta);
        }
    }
}

/* enrich: config_enrich.c reads the section; a route it names must be one of routes. */
static void load_enrich(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    if (ld->failed)
        return;
    if (tg_config_enrich_load(json_object_get(root, "enrich"), &c->enrich, ld->err, ld->err_size) !=
        TG_OK) {
        ld->failed = true; /* the message is already in ld->err */
        return;
    }
    for (size_t i = 0; i < c->enrich.n_entries; i++) {
        const char *route = c->enrich.entries[i].route;
        bool found = route == NULL;
        for (size_t j = 0; !found && j < c->n_routes; j++)
            found = c->routes[j].name != NULL && strcmp(c->routes[j].name, route) == 0;
        if (!found) {
            char field[64];
            snprintf(field, sizeof(field), "enrich[%zu].match.route", i);
            tg_config_load_fail(ld, field, "no rule of routes is named \"%.100s\"", route);
        }
    }
}

static void load_spool(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *spool = tg_config_load_object(ld, root, "spool", "", false);
    static const char *const known[] = {"dir", "journal_fsync", NULL};
    if (spool != NULL)
        tg_config_load_keys(ld, spool, "spool", known);
    c->spool_dir =
        tg_config_load_string(ld, spool, "dir", "spool", "/var/lib/tollgate/spool", false);
    c->journal_fsync = true;
    json_t *fsync_flag = spool != NULL ? json_object_get(spool, "journal_fsync") : NULL;
    if (fsync_flag != NULL && !json_is_boolean(fsync_flag))
        tg_config_load_fail(ld, "spool.journal_fsync", "must be true or false");
    else if (fsync_flag != NULL)
        c->journal_fsync = json_is_true(fsync_flag);
}

/* auth.jwt: the identity providers whose tokens are accepted (auth_jwt.c parses each). */
static void load_jwt(struct tg_config_loader *ld, json_t *auth, struct tg_config *c)
{
    json_t *list = json_object_get(auth, "jwt");
    if (list == NULL || ld->failed)
        return;
    if (!json_is_array(list)) {
        tg_config_load_fail(ld, "auth.jwt", "must be an array");
        return;
    }
    c->jwt_issuers = calloc(json_array_size(list) + 1, sizeof(*c->jwt_issuers));
    if (c->jwt_issuers == NULL) {
        tg_config_load_fail(ld, "auth.jwt", "out of memory");
        return;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(list, i, obj) {
        char path[64];
        snprintf(path, sizeof(path), "auth.jwt[%zu]", i);
        struct tg_jwt_issuer *iss = NULL;
        if (tg_jwt_issuer_load(obj, path, &iss, ld->err, ld->err_size) != TG_OK) {
            ld->failed = true; /* the message is already in ld->err */
            return;
        }
        c->jwt_issuers[c->n_jwt_issuers++] = iss;
    }
}

/* A header name: lower-case letters, digits and '-', as FastCGI params carry them. */
static bool is_header_name(const char *s)
{
    return s[0] != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(s);
}

static const char *get_header_name(struct tg_config_loader *ld, json_t *obj, const char *key,
                                   const char *fallback)
{
    const char *name = tg_config_load_string(ld, obj, key, "auth.attribution", fallback, false);
    if (name != NULL && !is_header_name(name))
        tg_config_load_fail(
            ld, key[0] == 'u' ? "auth.attribution.user_header" : "auth.attribution.group_header",
            "must be a lower-case header name (letters, digits, '-')");
    return name;
}

/* auth.attribution: the headers through which a trusted key names its end user. */
static void load_attribution(struct tg_config_loader *ld, json_t *auth, struct tg_config *c)
{
    json_t *attr =
        auth != NULL ? tg_config_load_object(ld, auth, "attribution", "auth", false) : NULL;
    static const char *const known[] = {"user_header", "group_header", NULL};
    if (attr != NULL)
        tg_config_load_keys(ld, attr, "auth.attribution", known);
    c->attribution_user_header = get_header_name(ld, attr, "user_header", "x-tollgate-user");
    c->attribution_group_header = get_header_name(ld, attr, "group_header", "x-tollgate-group");
}

/*
 * auth.failure_limit ({"max", "per_ms"}, or false: off) and
 * auth.unknown_key_cache_ms (0: off): pre-authentication (preauth.h).
 */
static void load_preauth(struct tg_config_loader *ld, json_t *auth, struct tg_config *c)
{
    json_t *limit = auth != NULL ? json_object_get(auth, "failure_limit") : NULL;
    c->auth_failure_max = 20;
    c->auth_failure_per_ms = 60000;
    if (json_is_false(limit)) {
        c->auth_failure_max = 0;
    } else if (limit != NULL) {
        static const char *const known[] = {"max", "per_ms", NULL};
        if (!json_is_object(limit)) {
            tg_config_load_fail(ld, "auth.failure_limit", "must be an object or false");
            return;
        }
        tg_config_load_keys(ld, limit, "auth.failure_limit", known);
        c->auth_failure_max =
            tg_config_load_integer(ld, limit, "max", "auth.failure_limit", 20, 1, 1000000);
        c->auth_failure_per_ms = tg_config_load_integer(ld, limit, "per_ms", "auth.failure_limit",
                                                        60000, 1000, 86400000);
    }
    c->auth_unknown_key_ttl_ms =
        tg_config_load_integer(ld, auth, "unknown_key_cache_ms", "auth", 3000, 0, 60000);
}

static void load_auth(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *auth = tg_config_load_object(ld, root, "auth", "", false);
    static const char *const known[] = {"jwt", "attribution", "failure_limit",
                                        "unknown_key_cache_ms", NULL};
    if (auth != NULL)
        tg_config_load_keys(ld, auth, "auth", known);
    if (ld->failed)
        return;
    load_jwt(ld, auth, c);
    load_attribution(ld, auth, c);
    load_preauth(ld, auth, c);
}

/*
 * SECTION.allow: an array of "ADDRESS" or "ADDRESS/PREFIX" (IPv4 or IPv6) into
 * *list (owned); absent: loopback only.
 */
static void load_allow_list(struct tg_config_loader *ld, json_t *section, const char *name,
                            struct tg_netaddr **list, size_t *n_list)
{
    static const char *const loopback[] = {"127.0.0.1", "::1"};
    char field[64];
    snprintf(field, sizeof(field), "%s.allow", name);
    json_t *allow = json_object_get(section, "allow");
    if (allow != NULL && !json_is_array(allow)) {
        tg_config_load_fail(ld, field, "must be an array of addresses");
        return;
    }
    size_t n = allow != NULL ? json_array_size(allow) : TG_ARRAY_LEN(loopback);
    *list = calloc(n + 1, sizeof(**list));
    if (*list == NULL) {
        tg_config_load_fail(ld, field, "out of memory");
        return;
    }
    for (size_t i = 0; i < n && !ld->failed; i++) {
        snprintf(field, sizeof(field), "%s.allow[%zu]", name, i);
        json_t *v = allow != NULL ? json_array_get(allow, i) : NULL;
        const char *text = allow != NULL ? json_string_value(v) : loopback[i];
        if (text == NULL)
            tg_config_load_fail(ld, field, "must be a string");
        else if (tg_netaddr_parse(text, &(*list)[*n_list]) != TG_OK)
            tg_config_load_fail(ld, field,
                                "\"%s\" is not an IP address or network (\"10.0.0.0/8\")", text);
        else
            ++*n_list;
    }
}

/* admin: its own credentials, kept only as SHA-256 hashes. */
static void load_admin_keys(struct tg_config_loader *ld, json_t *keys, struct tg_config *c)
{
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        tg_config_load_fail(ld, "admin.keys", "must be a non-empty array of strings");
        return;
    }
    c->admin_key_hashes = calloc(json_array_size(keys), sizeof(*c->admin_key_hashes));
    if (c->admin_key_hashes == NULL) {
        tg_config_load_fail(ld, "admin.keys", "out of memory");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(keys, i, v) {
        char field[64];
        snprintf(field, sizeof(field), "admin.keys[%zu]", i);
        const char *key = json_is_string(v) ? json_string_value(v) : NULL;
        if (key == NULL) {
            tg_config_load_fail(ld, field, "must be a string");
            return;
        }
        char later[256];
        key = tg_config_field_resolve_env(key, field, ld->failed ? later : ld->err,
                                          ld->failed ? sizeof(later) : ld->err_size);
        if (key == NULL) {
            ld->failed = true;
            return;
        }
        if (strlen(key) < 24) {
            tg_config_load_fail(ld, field, "must be at least 24 characters long");
            return;
        }
        tg_crypto_sha256(key, strlen(key), c->admin_key_hashes[c->n_admin_keys++]);
    }
}

/*
 * admin.jwt_issuers: the "iss" of the issuers whose tokens may carry the admin
 * role; any other issuer's token is a consumer's, whatever its role claim says.
 */
static void load_admin_issuers(struct tg_config_loader *ld, json_t *names, struct tg_config *c)
{
    if (!json_is_array(names) || json_array_size(names) == 0) {
        tg_config_load_fail(ld, "admin.jwt_issuers",
                            "must list the auth.jwt issuers (their \"issuer\") that may grant "
                            "the admin role");
        return;
    }
    c->admin_jwt_issuers = calloc(json_array_size(names), sizeof(char *));
    if (c->admin_jwt_issuers == NULL) {
        tg_config_load_fail(ld, "admin.jwt_issuers", "out of memory");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        char field[64];
        snprintf(field, sizeof(field), "admin.jwt_issuers[%zu]", i);
        const char *name = json_string_value(v);
        bool known = false;
        for (size_t j = 0; name != NULL && j < c->n_jwt_issuers; j++)
            known = known || strcmp(tg_jwt_issuer_name(c->jwt_issuers[j]), name) == 0;
        if (!known) {
            tg_config_load_fail(ld, field, "must be the \"issuer\" of an entry of auth.jwt");
            return;
        }
        c->admin_jwt_issuers[c->n_admin_jwt_issuers++] = tg_config_load_strdup(ld, name);
    }
}

/*
 * admin.ui_dir: the dashboard's files (ui/ of the source tree). When set it
 * must be an absolute path to a directory holding index.html; when absent the
 * install's ($(pkgdatadir)/ui), and /admin/ui/ answers 404 if that is missing.
 */
static void load_admin_ui_dir(struct tg_config_loader *ld, json_t *admin, struct tg_config *c)
{
    const char *dir = tg_config_load_string(ld, admin, "ui_dir", "admin", NULL, false);
    if (ld->failed)
        return;
    if (dir == NULL) {
        c->admin_ui_dir = tg_config_load_strdup(ld, TG_UI_DIR);
        return;
    }
    char index[4096];
    struct stat st;
    if (dir[0] != '/' ||
        snprintf(index, sizeof(index), "%s/index.html", dir) >= (int)sizeof(index) ||
        stat(index, &st) != 0 || !S_ISREG(st.st_mode)) {
        tg_config_load_fail(ld, "admin.ui_dir",
                            "must be an absolute path to a directory holding index.html: \"%s\"",
                            dir);
        free((char *)dir);
        return;
    }
    c->admin_ui_dir = dir;
}

static void load_admin(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *admin = tg_config_load_object(ld, root, "admin", "", false);
    static const char *const known[] = {"keys", "jwt_role", "jwt_issuers", "allow", "ui_dir", NULL};
    if (admin == NULL || ld->failed)
        return;
    load_allow_list(ld, admin, "admin", &c->admin_allow, &c->n_admin_allow);
    tg_config_load_keys(ld, admin, "admin", known);
    json_t *keys = json_object_get(admin, "keys");
    if (keys != NULL)
        load_admin_keys(ld, keys, c);
    c->admin_jwt_role = tg_config_load_string(ld, admin, "jwt_role", "admin", NULL, false);
    if (!ld->failed && c->n_admin_keys == 0 && c->admin_jwt_role == NULL)
        tg_config_load_fail(ld, "admin", "needs \"keys\" or a \"jwt_role\"");
    if (!ld->failed && c->admin_jwt_role != NULL && c->n_jwt_issuers == 0)
        tg_config_load_fail(ld, "admin.jwt_role", "needs an issuer in auth.jwt");
    if (!ld->failed && c->admin_jwt_role != NULL)
        load_admin_issuers(ld, json_object_get(admin, "jwt_issuers"), c);
    else if (!ld->failed && json_object_get(admin, "jwt_issuers") != NULL)
        tg_config_load_fail(ld, "admin.jwt_issuers", "only means something with a \"jwt_role\"");
    if (!ld->failed)
        load_admin_ui_dir(ld, admin, c);
    c->admin_enabled = !ld->failed;
}

/* metrics: label cardinality and who may read GET /metrics. */
static void load_metrics(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    static const char *const known[] = {"max_series", "allow", "token", NULL};
    json_t *metrics = tg_config_load_object(ld, root, "metrics", "", false);
    if (metrics != NULL)
        tg_config_load_keys(ld, metrics, "metrics", known);
    c->metrics_max_series = (size_t)tg_config_load_integer(ld, metrics, "max_series", "metrics",
                                                           2000, 1, TG_SHM_SERIES);
    load_allow_list(ld, metrics, "metrics", &c->metrics_allow, &c->n_metrics_allow);
    const char *token = tg_config_load_string(ld, metrics, "token", "metrics", NULL, false);
    if (token != NULL && strlen(token) >= 16) {
        tg_crypto_sha256(token, strlen(token), c->metrics_token_hash);
        c->metrics_token_set = true;
    } else if (token != NULL) {
        tg_config_load_fail(ld, "metrics.token", "must be at least 16 characters long");
    }
    free((char *)token);
    if (!ld->failed && c->n_metrics_allow == 0 && !c->metrics_token_set)
        tg_config_load_fail(ld, "metrics",
                            "needs an address in \"allow\" or a \"token\": nobody could read it");
}

/* cache: the response cache (response_cache.c). */
static void load_cache(struct tg_config_loader *ld, json_t *root, struct tg_config *c)
{
    json_t *obj = tg_config_load_object(ld, root, "cache", "", false);
    if (obj == NULL)
        return;
    static const char *const known[] = {
        "enabled", "scope", "ttl_ms", "max_bytes", "nonzero_temperature", NULL};
    tg_config_load_keys(ld, obj, "cache", known);
    json_t *enabled = json_object_get(obj, "enabled");
    json_t *nonzero = json_object_get(obj, "nonzero_temperature");
    if ((enabled != NULL && !json_is_boolean(enabled)) ||
        (nonzero != NULL && !json_is_boolean(nonzero))) {
        tg_config_load_fail(ld,
                            enabled != NULL && !json_is_boolean(enabled)
                                ? "cache.enabled"
                                : "cache.nonzero_temperature",
                            "must be true or false");
        return;
    }
    c->cache.enabled = enabled == NULL || json_is_true(enabled);
    c->cache.nonzero_temperature = json_is_true(nonzero);
    c->cache.ttl_ms = tg_config_load_integer(ld, obj, "ttl_ms", "cache", 300000, 1000, 86400000L);
    c->cache.max_bytes = (size_t)tg_config_load_integer(ld, obj, "max_bytes", "cache", 64L << 20,
                                                        1L << 20, 4L << 30);
    const char *scope = tg_config_load_string(ld, obj, "scope", "cache", "key", false);
    static const char *const scopes[] = {"key", "user", "group", "global"};
    bool found = false;
    for (size_t i = 0; scope != NULL && i < TG_ARRAY_LEN(scopes); i++) {
        if (strcmp(scope, scopes[i]) == 0) {
            c->cache.scope = (enum tg_cache_scope)i;
            found = true;
        }
    }
    if (scope != NULL && !found)
        tg_config_load_fail(ld, "cache.scope",
                            "must be \"key\", \"user\", \"group\" or \"global\"");
    free((char *)scope);
}

static int load_root(json_t *root, struct tg_config **out, struct tg_config_loader *ld)
{
    if (!json_is_object(root)) {
        tg_config_load_fail(ld, "(root)", "must be a JSON object");
        return TG_ERROR;
    }
    struct tg_config *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        tg_config_load_fail(ld, "(root)", "out of memory");
        return TG_ERROR;
    }
    static const char *const known[] = {
        "server",     "database", "providers", "models",  "log",    "spool",    "rate_limits",
        "quotas",     "auth",     "admin",     "metrics", "bounds", "failover", "routes",
        "guardrails", "cache",    "enrich",    "otel",    "mcp",    NULL};
    tg_config_load_keys(ld, root, "", known);
    load_server(ld, root, c);
    load_database(ld, root, c);
    tg_config_load_providers(ld, root, c);
    tg_config_load_models(ld, root, c);
    tg_config_load_failover(ld, root, c);
    tg_config_load_routes(ld, root, c);
    tg_config_load_guard(ld, root, c);
    load_cache(ld, root, c);
    load_log(ld, root, c);
    load_spool(ld, root, c);
    load_rate_limits(ld, root, c);
    load_quotas(ld, root, c);
    load_bounds(ld, root, c);
    load_enrich(ld, root, c);
    load_auth(ld, root, c);
    load_admin(ld, root, c);
    load_metrics(ld, root, c);
    tg_config_otel_load(ld, root, &c->otel);
    tg_config_load_mcp(ld, root, c);
    if (ld->failed) {
        tg_config_free(c);
        return TG_ERROR;
    }
    *out = c;
    return TG_OK;
}

int tg_config_parse(const char *text, struct tg_config **out, char *err, size_t err_size)
{
    struct tg_config_loader ld = {err, err_size, false};
    json_error_t jerr;
    *out = NULL;
    err[0] = '\0';
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, err_size, "config: line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return TG_ERROR;
    }
    int rc = load_root(root, out, &ld);
    json_decref(root);
    return rc;
}

int tg_config_load(const char *path, struct tg_config **out, char *err, size_t err_size)
{
    struct tg_config_loader ld = {err, err_size, false};
    json_error_t jerr;
    *out = NULL;
    err[0] = '\0';
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (jerr.line < 0)
            snprintf(err, err_size, "config: could not read \"%s\": %s", path, jerr.text);
        else
            snprintf(err, err_size, "config: %s: line %d, column %d: %s", path, jerr.line,
                     jerr.column, jerr.text);
        return TG_ERROR;
    }
    int rc = load_root(root, out, &ld);
    json_decref(root);
    return rc;
}

void tg_config_free(struct tg_config *c)
{
    if (c == NULL)
        return;
    tg_config_routes_release(c);
    tg_config_mcp_release(c);
    tg_config_guard_release(c);
    tg_config_providers_release(c);
    free((char *)c->db_url);
    free((char *)c->log_file);
    free((char *)c->spool_dir);
    for (size_t i = 0; i < c->n_rate_limits; i++) {
        free((char *)c->rate_limits[i].name);
        free((char *)c->rate_limits[i].match_key);
        free((char *)c->rate_limits[i].match_user);
        free((char *)c->rate_limits[i].match_group);
    }
    free(c->rate_limits);
    for (size_t i = 0; i < c->n_jwt_issuers; i++)
        tg_jwt_issuer_free(c->jwt_issuers[i]);
    free(c->jwt_issuers);
    free((char *)c->attribution_user_header);
    free((char *)c->attribution_group_header);
    free(c->admin_key_hashes);
    free(c->metrics_allow);
    free((char *)c->admin_jwt_role);
    free((char *)c->admin_ui_dir);
    for (size_t i = 0; i < c->n_admin_jwt_issuers; i++)
        free((char *)c->admin_jwt_issuers[i]);
    free(c->admin_jwt_issuers);
    free(c->admin_allow);
    tg_bound_config_release(&c->bounds);
    tg_config_enrich_release(&c->enrich);
    tg_config_otel_release(&c->otel);
    free(c);
}

int tg_config_load_db_url(const char *path, char **url, char *err, size_t err_size)
{
    struct tg_config_loader ld = {err, err_size, false};
    json_error_t jerr;
    *url = NULL;
    err[0] = '\0';
    const char *env_url = getenv("TOLLGATE_DATABASE_URL");
    if (env_url != NULL && env_url[0] != '\0') {
        *url = tg_config_load_strdup(&ld, env_url);
        return *url != NULL ? TG_OK : TG_ERROR;
    }
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, err_size, "config: could not read \"%s\": %s", path, jerr.text);
        return TG_ERROR;
    }
    json_t *db = tg_config_load_object(&ld, root, "database", "", true);
    if (db != NULL)
        *url = (char *)tg_config_load_string(&ld, db, "url", "database", NULL, true);
    json_decref(root);
    return ld.failed ? TG_ERROR : TG_OK;
}
