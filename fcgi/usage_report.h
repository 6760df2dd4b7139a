/*
 * usage_report.h — GET /v1/usage: the caller's own usage and what is left of
 * its quotas.
 *
 *   GET /v1/usage?days=N            the last N days (1..3660, default 30)
 *   GET /v1/usage?from=D&to=D       calendar days D..D inclusive (YYYY-MM-DD, in
 *                                   the report time zone; to defaults to today)
 *
 * A key sees its own usage (by api_key_id); a JWT caller its user's usage made
 * without a key. The answer is tollgate.usage_summary's JSON: totals, per
 * model, and every quota of the key, the user and the group with what remains.
 */
#ifndef TG_USAGE_REPORT_H
#define TG_USAGE_REPORT_H

#include "common.h"

struct tg_request;

/* Identifies r (401/403 as any endpoint), reads its period (400 naming the bad
 * parameter), answers 200 with the summary, or 503 when the database is down. */
int tg_usage_report_handle(struct tg_request *r);

#endif
