/*
 * main.c — tollgatectl, the admin CLI: the command table, checking a command
 * line against it, dispatch, the usage text and the connection to the config's
 * database. The commands themselves are in the files ctl.h lists, one group a
 * file.
 *
 * The commands, their usage and the options each takes are the table `commands`
 * below; `tollgatectl` without arguments prints it. `config show` is the one
 * command that needs no database.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "ctl.h"
#include "db.h"

/* 1 if spec ("--name= --quiet") has arg taking a value, 0 if as a flag, -1 if not at all. */
static int option_arity(const char *spec, const char *arg)
{
    size_t len = strlen(arg);
    for (const char *p = spec; *p != '\0';) {
        size_t word = strcspn(p, " ");
        if (len > 0 && word >= len && strncmp(p, arg, len) == 0 &&
            (word == len || (word == len + 1 && p[len] == '=')))
            return word == len ? 0 : 1;
        p += word;
        p += *p == ' ';
    }
    return -1;
}

/* Refuses a missing positional argument, an option cmd does not take, a value left out. */
static int check_args(const struct tg_ctl_command *cmd, int argc, char **argv)
{
    char problem[256];
    int i = 0;
    for (; i < cmd->n_positional; i++) {
        if (i >= argc || argv[i][0] == '-') {
            /* the usage names the positional arguments first: "PREFIX [--grace-s N]" */
            snprintf(problem, sizeof(problem), "%s %s needs %.*s", cmd->noun, cmd->verb,
                     (int)strcspn(cmd->args, " "), cmd->args);
            return tg_ctl_usage(cmd, problem);
        }
    }
    for (; i < argc; i++) {
        int arity = option_arity(cmd->options, argv[i]);
        if (arity < 0 || (arity == 1 && i + 1 == argc)) {
            snprintf(problem, sizeof(problem),
                     arity < 0 ? "unexpected argument \"%s\"" : "%s needs a value", argv[i]);
            return tg_ctl_usage(cmd, problem);
        }
        i += arity;
    }
    return 0;
}

/* ---- the statements of shared handlers' commands (not reformatted: one clause a line) ---- */

// clang-format off
/* key list */
static const char key_list_sql[] =
    "SELECT prefix, name, user_id, group_id, role, status, " SQL_ALLOWED("allowed_models") ","
    " coalesce(" SQL_UTC("expires_at") ", 'never'), " SQL_UTC("created_at") ","
    " " SQL_UTC("last_used_at") " FROM tollgate.key_list ORDER BY created_at, prefix";

/* price list: LONG_CONTEXT is "-" or "THRESHOLD:in/out/read/write/write_1h" */
static const char price_list_sql[] =
    "SELECT model, " SQL_UTC("effective_from") ", input_micros_per_mtok,"
    " output_micros_per_mtok, cache_read_micros_per_mtok, cache_write_micros_per_mtok,"
    " coalesce(cache_write_1h_micros_per_mtok, cache_write_micros_per_mtok),"
    " web_search_micros_per_use,"
    " long_context_threshold_tokens || ':' || concat_ws('/', long_input_micros_per_mtok,"
    " long_output_micros_per_mtok, long_cache_read_micros_per_mtok,"
    " long_cache_write_micros_per_mtok, long_cache_write_1h_micros_per_mtok),"
    " CASE WHEN in_force THEN 'yes' ELSE 'no' END FROM tollgate.price_list"
    " ORDER BY model, effective_from";

/*
 * group_upsert or role_upsert for table: both lists are replaced, so a list not
 * given ($3, $5 true) passes the one stored.
 */
#define SQL_ALLOW_SET(function, table)                                                         \
    "SELECT " SQL_ALLOWED("r.allowed_models") ", " SQL_ALLOWED("r.allowed_endpoints")          \
    " FROM jsonb_populate_record(NULL::tollgate." table ", tollgate." function "($1,"          \
    " CASE WHEN $3::boolean THEN (SELECT x.allowed_models FROM tollgate." table " x"           \
    " WHERE x.id = $1) ELSE string_to_array($2, ',') END,"                                     \
    " CASE WHEN $5::boolean THEN (SELECT x.allowed_endpoints FROM tollgate." table " x"        \
    " WHERE x.id = $1) ELSE string_to_array($4, ',') END, $6)) r"
// clang-format on

/* ---- the commands ---- */

#define SUBJECT_OPTIONS "--group= --user= --key= "
#define ALLOW_ARGS "ID [--models M1,M2 | --all-models] [--endpoints E1,E2 | --all-endpoints]"
#define MCP_SUBJECT_OPTIONS "--group= --role= --key= "
#define ALLOW_OPTIONS "--models= --all-models --endpoints= --all-endpoints"

// clang-format off
static const struct tg_ctl_command commands[] = {
    {"migrate", NULL, 0, "[--sql-dir DIR]", "--sql-dir=", tg_ctl_ops_migrate, NULL, NULL},
    {"key", "create", 0,
     "--group G --user U --name N [--role R] [--models M1,M2] [--expires TIME]\n"
     "        [--trusted-attribution on] [--quiet]",
     "--group= --user= --name= --role= --models= --expires= --trusted-attribution= --quiet",
     tg_ctl_keys_create, NULL, NULL},
    {"key", "list", 0, "", "", tg_ctl_list, key_list_sql,
     "PREFIX NAME USER GROUP ROLE STATUS MODELS EXPIRES CREATED LAST_USED"},
    {"key", "revoke", 1, "PREFIX", "", tg_ctl_keys_revoke, NULL, NULL},
    {"key", "rotate", 1, "PREFIX [--grace-s N] [--quiet]   (N seconds, 3600 by default)",
     "--grace-s= --quiet", tg_ctl_keys_rotate, NULL, NULL},
    {"key", "update", 1,
     "PREFIX [--name N] [--role R] [--models M1,M2 | --all-models]\n"
     "        [--expires TIME | --no-expiry] [--trusted-attribution on|off]",
     "--name= --role= --models= --all-models --expires= --no-expiry --trusted-attribution=",
     tg_ctl_keys_update, NULL, NULL},
    {"user", "set", 1, "ID --group G", "--group=", tg_ctl_identity_user_set, NULL, NULL},
    {"user", "delete", 1, "ID", "", tg_ctl_identity_delete,
     "SELECT tollgate.user_delete($1, $2)", NULL},
    {"user", "list", 0, "", "", tg_ctl_list,
     "SELECT id, group_id, active_keys, " SQL_UTC("created_at")
     " FROM tollgate.user_list ORDER BY id",
     "USER GROUP >ACTIVE_KEYS CREATED"},
    {"group", "set", 1, ALLOW_ARGS, ALLOW_OPTIONS, tg_ctl_identity_allow_set,
     SQL_ALLOW_SET("group_upsert", "groups"), NULL},
    {"group", "delete", 1, "ID", "", tg_ctl_identity_delete,
     "SELECT tollgate.group_delete($1, $2)", NULL},
    {"group", "list", 0, "", "", tg_ctl_list,
     "SELECT id, " SQL_ALLOWED("allowed_models") ", " SQL_ALLOWED("allowed_endpoints") ","
     " users, active_keys, " SQL_UTC("created_at") " FROM tollgate.group_list ORDER BY id",
     "GROUP MODELS ENDPOINTS >USERS >ACTIVE_KEYS CREATED"},
    {"role", "set", 1, ALLOW_ARGS, ALLOW_OPTIONS, tg_ctl_identity_allow_set,
     SQL_ALLOW_SET("role_upsert", "roles"), NULL},
    {"role", "delete", 1, "ID", "", tg_ctl_identity_delete,
     "SELECT tollgate.role_delete($1, $2)", NULL},
    {"role", "list", 0, "", "", tg_ctl_list,
     "SELECT id, " SQL_ALLOWED("allowed_models") ", " SQL_ALLOWED("allowed_endpoints") ","
     " active_keys, " SQL_UTC("created_at") " FROM tollgate.role_list ORDER BY id",
     "ROLE MODELS ENDPOINTS >ACTIVE_KEYS CREATED"},
    {"quota", "set", 0, "SUBJECT --metric M --window W --limit N",
     SUBJECT_OPTIONS "--metric= --window= --limit=", tg_ctl_quotas_change,
     "SELECT tollgate.quota_set($1, $2, $3, $4, $6::bigint, $5)", NULL},
    {"quota", "adjust", 0, "SUBJECT --metric M --window W --by +N|-N",
     SUBJECT_OPTIONS "--metric= --window= --by=", tg_ctl_quotas_change,
     "SELECT tollgate.quota_adjust($1, $2, $3, $4, $6::bigint, $5)", NULL},
    {"quota", "reset", 0, "SUBJECT --metric M --window W",
     SUBJECT_OPTIONS "--metric= --window=", tg_ctl_quotas_change,
     "SELECT tollgate.quota_reset($1, $2, $3, $4, $5)", NULL},
    {"quota", "delete", 0, "SUBJECT --metric M --window W",
     SUBJECT_OPTIONS "--metric= --window=", tg_ctl_quotas_change,
     "SELECT tollgate.quota_delete($1, $2, $3, $4, $5)", NULL},
    {"quota", "show", 0, "[SUBJECT]", SUBJECT_OPTIONS, tg_ctl_quotas_show, NULL, NULL},
    {"quota", "rollover", 0, "   (cron: roll every window that passed)", "", tg_ctl_quotas_cron,
     NULL, NULL},
    {"quota", "sweep", 0, "      (release expired reservations)", "", tg_ctl_quotas_cron, NULL,
     NULL},
    {"price", "set", 1,
     "MODEL --input N --output N [--cache-read N] [--cache-write N] [--cache-write-1h N]\n"
     "        [--web-search N] [--long-context-threshold T --long-input N --long-output N\n"
     "        --long-cache-read N --long-cache-write N --long-cache-write-1h N] [--from TIME]",
     "--input= --output= --cache-read= --cache-write= --cache-write-1h= --web-search="
     " --long-context-threshold= --long-input= --long-output= --long-cache-read="
     " --long-cache-write= --long-cache-write-1h= --from=",
     tg_ctl_prices_set, NULL, NULL},
    {"price", "list", 0, "", "", tg_ctl_list, price_list_sql,
     "MODEL FROM >INPUT >OUTPUT >CACHE_READ >CACHE_WRITE >CACHE_WRITE_1H >WEB_SEARCH"
     " LONG_CONTEXT IN_FORCE"},
    {"price", "check", 0, "   (the config's models without a price in force; exit 1 if any)",
     "", tg_ctl_prices_check, NULL, NULL},
    {"config", "show", 0, "[-c CONFIG]   (secrets masked)", "-c=", tg_ctl_ops_config_show, NULL,
     NULL},
    {"usage", "maintain", 0,
     "[--ahead N]   (cron: partitions for N months ahead, 3 by default; retention)",
     "--ahead=", tg_ctl_ops_usage_maintain, NULL, NULL},
    {"report", "refresh", 0, "   (cron: refresh the chargeback views, concurrently)", "",
     tg_ctl_reports_refresh, NULL, NULL},
    {"report", NULL, 0,
     "[--report chargeback|series|quotas|keys|denials|models] [--by group|user|key|model|provider|tool]"
     " [--by A,B (two of group|user|key|model|provider)] [--group G]"
     " [--with-latency] [--subject org|group|user|key|model --id ID --bucket day|hour]"
     " [--from DATE --to DATE] [--format table|csv|json]",
     "--report= --by= --group= --subject= --id= --bucket= --with-latency --from= --to= --format=",
     tg_ctl_reports_report, NULL, NULL},
    {"mcp", "grant", 0,
     "SUBJECT --server GLOB --tools GLOB[,GLOB] [--args JSON]",
     MCP_SUBJECT_OPTIONS "--server= --tools= --args=", tg_ctl_mcp_grant, NULL, NULL},
    {"mcp", "revoke", 0, "SUBJECT --server GLOB [--tools GLOB[,GLOB]]",
     MCP_SUBJECT_OPTIONS "--server= --tools=", tg_ctl_mcp_revoke, NULL, NULL},
    {"mcp", "grants", 0, "[SUBJECT] [--format table|csv|json]",
     MCP_SUBJECT_OPTIONS "--format=", tg_ctl_mcp_grants, NULL, NULL},
    {"mcp", "limit set", 0,
     "--per key|user|group|server|tool [--subject S]\n"
     "        (--requests N --window W | --bucket N [--refill N] [--every-ms MS])",
     "--per= --subject= --requests= --window= --bucket= --refill= --every-ms=",
     tg_ctl_mcp_limit_set, NULL, NULL},
    {"mcp", "limit delete", 1, "ID", "", tg_ctl_mcp_limit_delete, NULL, NULL},
    {"mcp", "limit list", 0, "[--format table|csv|json]", "--format=", tg_ctl_mcp_limit_list,
     NULL, NULL},
    {"export", "usage", 0, "[--from DATE --to DATE] [--format csv|json]   (raw rows, streamed)",
     "--from= --to= --format=", tg_ctl_reports_export_usage, NULL, NULL},
};
// clang-format on

static int print_usage(void)
{
    fprintf(stderr, "usage: tollgatectl -c CONFIG.json COMMAND ...\n");
    for (size_t i = 0; i < TG_ARRAY_LEN(commands); i++) {
        const struct tg_ctl_command *c = &commands[i];
        fprintf(stderr, "  %s%s%s%s%s\n", c->noun, c->verb ? " " : "", c->verb ? c->verb : "",
                c->args[0] ? " " : "", c->args);
    }
    fprintf(stderr,
            "quotas: SUBJECT is --group G, --user U or --key PREFIX; M is usd, tokens or\n"
            "  requests; W minute, hour, day, month or total; usd amounts in dollars (500.00)\n"
            "prices: micro-dollars per million tokens ($3/MTok is 3000000); --web-search in\n"
            "  micro-dollars per search ($10 per 1,000 is 10000); without --cache-write-1h,\n"
            "  1-hour cache writes cost the --cache-write rate; above T prompt tokens (input\n"
            "  and cache), every token costs its --long-* rate (LONG_CONTEXT in price list:\n"
            "  T:input/output/cache read/cache write/cache write 1h)\n"
            "reports: DATE is YYYY-MM-DD, both ends included; the default is this month\n"
            "lists (--models, --endpoints): comma-separated names or globs (claude-haiku-*)\n"
            "mcp: SUBJECT is --group G, --role R or --key PREFIX; --server and --tools take\n"
            "  names or globs (github, create_*); --args {\"ARG\": {\"enum\": [..]}} or\n"
            "  {\"ARG\": {\"pattern\": \"^re$\"}}; limit --per tool counts per server/tool,\n"
            "  --subject names one key (PREFIX), user, group, server or server/tool\n"
            "environment: TOLLGATE_CONFIG names the config when there is no -c,\n"
            "  TOLLGATE_NOW overrides the clock (tests)\n");
    return 2;
}

/* How many words of argv after the noun spell verb ("limit set" is two), 0 if they do not. */
static int verb_words(const char *verb, int argc, char **argv)
{
    int words = 0;
    for (const char *p = verb; *p != '\0'; words++) {
        size_t len = strcspn(p, " ");
        if (words + 1 >= argc || strlen(argv[words + 1]) != len ||
            strncmp(argv[words + 1], p, len) != 0)
            return 0;
        p += len;
        p += *p == ' ';
    }
    return words;
}

/* The command argv names and, in *words, how many of argv's words name it. */
static const struct tg_ctl_command *find_command(int argc, char **argv, int *words)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(commands); i++) {
        const struct tg_ctl_command *c = &commands[i];
        if (strcmp(argv[0], c->noun) != 0)
            continue;
        int n = c->verb != NULL ? verb_words(c->verb, argc, argv) : 0;
        if (c->verb == NULL || n > 0) {
            *words = 1 + n;
            return c;
        }
    }
    return NULL;
}

static const char *who_am_i(void)
{
    const char *sudo_user = getenv("SUDO_USER");
    if (sudo_user != NULL)
        return sudo_user;
    struct passwd *pw = getpwuid(getuid());
    return pw != NULL ? pw->pw_name : "unknown";
}

/* Connects to the config's database, pinning the clock to TOLLGATE_NOW if set. */
static int connect_db(struct tg_ctl *ctl)
{
    char *db_url = NULL;
    char err[512];
    if (tg_config_load_db_url(ctl->config_path, &db_url, err, sizeof(err)) != TG_OK)
        return tg_ctl_die("%s", err);
    ctl->db = tg_db_connect(db_url, ctl->err, sizeof(ctl->err));
    free(db_url);
    if (ctl->db == NULL)
        return tg_ctl_die("%s", ctl->err);
    const char *now = getenv("TOLLGATE_NOW");
    if (now != NULL && now[0] != '\0' &&
        tg_ctl_query(ctl, "SELECT set_config('tollgate.now', $1, false)", 1,
                     (const char *const[]){now}, NULL) != TG_OK)
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    struct tg_ctl ctl = {0};
    ctl.config_path = getenv("TOLLGATE_CONFIG");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            ctl.config_path = argv[++i];
        else
            return tg_ctl_die("unknown option \"%s\"", argv[i]);
    }
    int words = 0;
    ctl.cmd = i < argc ? find_command(argc - i, argv + i, &words) : NULL;
    if (ctl.cmd == NULL) {
        if (i < argc)
            tg_ctl_die("unknown command \"%s%s%s\"", argv[i], i + 1 < argc ? " " : "",
                       i + 1 < argc ? argv[i + 1] : "");
        return print_usage();
    }
    int cargc = argc - i - words;
    char **cargv = argv + i + words;
    if (check_args(ctl.cmd, cargc, cargv) != 0)
        return 2;
    if (ctl.cmd->run == tg_ctl_ops_config_show)
        return tg_ctl_ops_config_show(&ctl, cargc, cargv);
    if (ctl.config_path == NULL) {
        tg_ctl_die("%s", "which config? give -c CONFIG or set TOLLGATE_CONFIG");
        return 2;
    }
    char actor[128];
    snprintf(actor, sizeof(actor), "cli:%s", who_am_i());
    ctl.actor = actor;
    ctl.arena = tg_arena_new(64 * 1024);
    int status = connect_db(&ctl);
    if (status == 0)
        status = ctl.cmd->run(&ctl, cargc, cargv);
    tg_db_close(ctl.db);
    tg_arena_free(ctl.arena);
    return status;
}
