/*
 * mcp_audit.h — the audit rows of MCP tool calls on their way to
 * tollgate.mcp_calls, never lost once a call was served: each row is appended
 * (one framed record, frame.h) to the host's mcp_calls.pending in the spool
 * directory before tg_mcp_access_record returns — fdatasync'd when
 * spool.journal_fsync is on — and the sweeper moves the file's rows to
 * PostgreSQL in batches (tollgate.mcp_calls_add, idempotent by call id), the way
 * the usage spool is replayed: the file is renamed to mcp_calls.replay under the
 * appenders' lock, sent, and deleted once every batch is committed. A batch the
 * database refuses is retried row by row; a refused row goes to
 * mcp_calls.deadletter. Not here: what a row holds (mcp_access.c).
 */
#ifndef TG_MCP_AUDIT_H
#define TG_MCP_AUDIT_H

#include "common.h"

/* Per process: where the files live and whether appends are synced. TG_ERROR: dir unusable. */
int tg_mcp_audit_init(const char *dir, bool fsync_each);

/* Appends one row (a JSON object's text) durably. TG_OK, or TG_ERROR (errno set). */
int tg_mcp_audit_append(const char *row_json);

/*
 * Sends what waits to PostgreSQL in batches (one process of the host at a time).
 * Returns the rows committed, or TG_ERROR when the database or the files failed
 * (what was not committed stays for the next flush).
 */
int tg_mcp_audit_flush(void);

#endif
