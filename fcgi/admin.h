/*
 * admin.h — the admin API: everything under /admin/ when the config has an
 * "admin" section (route.c sends it here).
 *
 * JSON over HTTP in front of the SQL admin functions (sql/005_admin.sql and
 * friends), which tollgatectl and psql call too: keys (create, change,
 * rotate, revoke), users, groups, roles, quotas, prices, and the audit log.
 * Each change is one statement, so one transaction, and the SQL function
 * writes its audit row with the caller as actor.
 *
 * Not here: the consumer credentials of /v1/ (auth.c) — an admin caller is
 * never looked up as a consumer key, and a consumer key is never an admin.
 */
#ifndef TG_ADMIN_H
#define TG_ADMIN_H

struct tg_request;

/*
 * Answers one /admin/ request end to end. The caller must present an admin
 * credential: a configured admin key (x-api-key or "Authorization: Bearer"),
 * compared by SHA-256 in constant time, or a JWT from a configured issuer
 * whose role is config->admin_jwt_role. Then the path and method pick the
 * operation; a body, when the operation takes one, is a JSON object read
 * within server.max_body_bytes.
 *
 * Returns TG_OK once a response was sent. Otherwise TG_ERROR with r->error
 * set (the pipeline answers it): 401 without a valid admin credential, 403
 * for a valid JWT without the admin role, 404 for an unknown path or
 * subject, 405 (with Allow) for a method the path does not take, 400 for a
 * bad body naming its field, 409 for a duplicate or a subject still in use,
 * 503 when the database is unavailable. No response or log line holds a
 * key, a key hash or a token, except the new secret that creating or
 * rotating a key answers once in "key".
 */
int tg_admin_handle(struct tg_request *r);

#endif
