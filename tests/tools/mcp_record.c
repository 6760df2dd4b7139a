/*
 * mcp_record.c — records MCP tool calls through the gateway's own audit path
 * (tg_mcp_access_record → the spool directory's mcp_calls.pending →
 * tg_mcp_audit_flush → tollgate.mcp_calls_add), for the integration tests
 * while no /mcp endpoint calls it (tests/integration/test_mcp_acl.py).
 *
 *   mcp-record CONFIG DIR USER GROUP SERVER:TOOL:CODE:BYTES_IN:BYTES_OUT:DURATION_US ...
 *
 * Each call is one row of a request of user USER in group GROUP; then one flush.
 * Prints "recorded N, flushed M"; exit status 1 on a failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "mcp_access.h"
#include "mcp_audit.h"
#include "request.h"

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: mcp-record CONFIG DIR USER GROUP "
                        "SERVER:TOOL:CODE:BYTES_IN:BYTES_OUT:DURATION_US ...\n");
        return 2;
    }
    struct tg_config *config = NULL;
    char err[512];
    if (tg_config_load(argv[1], &config, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "mcp-record: %s\n", err);
        return 1;
    }
    if (tg_db_pool_init(config) != TG_OK || tg_mcp_audit_init(argv[2], false) != TG_OK) {
        fprintf(stderr, "mcp-record: could not set up the pool or \"%s\"\n", argv[2]);
        return 1;
    }
    struct tg_request r;
    memset(&r, 0, sizeof(r));
    r.config = config;
    r.identity.user_id = argv[3];
    r.identity.group_id = argv[4];
    int recorded = 0;
    for (int i = 5; i < argc; i++) {
        char spec[512], *fields[6], *save = NULL;
        snprintf(spec, sizeof(spec), "%s", argv[i]);
        int n = 0;
        for (char *p = strtok_r(spec, ":", &save); p != NULL && n < 6;
             p = strtok_r(NULL, ":", &save))
            fields[n++] = p;
        if (n != 6) {
            fprintf(stderr, "mcp-record: bad call \"%s\"\n", argv[i]);
            return 2;
        }
        tg_crypto_uuid7(r.request_id);
        struct tg_mcp_call call = {.server = fields[0],
                                   .tool = fields[1],
                                   .code = fields[2],
                                   .duration_us = strtoll(fields[5], NULL, 10),
                                   .bytes_in = strtoll(fields[3], NULL, 10),
                                   .bytes_out = strtoll(fields[4], NULL, 10)};
        tg_mcp_access_record(&r, &call);
        recorded++;
    }
    int flushed = tg_mcp_audit_flush();
    printf("recorded %d, flushed %d\n", recorded, flushed);
    tg_db_pool_shutdown();
    tg_config_free(config);
    return flushed == recorded ? 0 : 1;
}
