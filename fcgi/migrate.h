/*
 * migrate.h — applying the schema migrations (sql/NNN_name.sql) in order,
 * each once, each inside its own transaction, recorded in
 * tollgate.schema_migrations (version = the file name without ".sql").
 * tollgatectl's `migrate` runs it; so can any tool holding a connection.
 */
#ifndef TG_MIGRATE_H
#define TG_MIGRATE_H

#include <stdio.h>

#include "common.h"

struct tg_db_conn;

/*
 * Applies the migrations of dir not yet recorded, in name order, printing
 * "applied VERSION" for each and a final "database is up to date (N
 * migrations)" to out. Stops at the first that fails (rolled back): TG_ERROR
 * with the reason, naming the migration, in err.
 */
int tg_migrate_run(struct tg_db_conn *db, const char *dir, FILE *out, char *err, size_t err_size);

#endif
