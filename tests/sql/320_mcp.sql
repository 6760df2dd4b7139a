-- 320_mcp: sql/017_mcp.sql — MCP grants (set, replace, revoke, audited),
-- mcp_identify (identity and grants in one row; no grant: no_mcp_access),
-- argument-constraint validation, limits (quota per tool and per key, a
-- bucket per server; all or none; windows roll), the audit batch
-- (idempotent) and chargeback_tools. Concurrency is tested by
-- tests/integration/test_mcp_access.py (200 parallel sessions).
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-05-10 08:00:30+00';

select tollgate.key_create(sha256('mcp-a'::bytea), 'tg-MCPa0001', 'a', 'mcp-ann', 'mcp-eng', null, 'test') as k_a,
       tollgate.key_create(sha256('mcp-b'::bytea), 'tg-MCPb0001', 'b', 'mcp-bob', 'mcp-ops', 'mcp-viewer', 'test') as k_b
\gset

-- No grant yet: identity ok, but no MCP access.
select status, user_id, group_id, role, grants
  from tollgate.mcp_identify(sha256('mcp-a'::bytea), null, null, null, false, null, null, '/mcp');
-- Unknown keys keep identify's statuses.
select status, grants from tollgate.mcp_identify(sha256('nope'::bytea), null, null, null, false, null, null, '/mcp');

-- Grants for a group, a role and a key; bad input refused.
select tollgate.mcp_grant_set('group', 'mcp-eng', 'github', array['get_*', 'list_*'], null, 'test') - 'updated_at' - 'id';
select tollgate.mcp_grant_set('role', 'mcp-viewer', 'docs*', array['search'],
       '{"lang": {"enum": ["en", "de"]}, "q": {"pattern": "^[a-z ]{1,20}$"}}', 'test') - 'updated_at' - 'id';
select tollgate.mcp_grant_set('key', 'tg-MCPb0001', 'github', array['create_issue'], null, 'test') - 'updated_at' - 'id';
select tollgate.mcp_grant_set('key', 'tg-nokey', 'github', array['x'], null, 'test');
select tollgate.mcp_grant_set('group', 'bad id!', 'github', array['x'], null, 'test');
select tollgate.mcp_grant_set('group', 'mcp-eng', 'github', array[]::text[], null, 'test');
select tollgate.mcp_grant_set('group', 'mcp-eng', 'github', array['x'], '{"a": {"regex": "x"}}', 'test');
select tollgate.mcp_grant_set('group', 'mcp-eng', 'github', array['x'], '{"a": {"pattern": "("}}', 'test');
select tollgate.mcp_grant_set('group', 'mcp-eng', 'github', array['x'], '[1]', 'test');
select tollgate.mcp_grant_set('group', 'mcp-eng', 'github', array['x'], '{"a": {"enum": []}}', 'test');
-- The same grant again with the same constraints: no new audit row; new constraints replace them.
select tollgate.mcp_grant_set('group', 'mcp-eng', 'github', array['get_*', 'list_*'], null, 'test') ->> 'server';
select tollgate.mcp_grant_set('group', 'mcp-eng', 'github', array['get_*', 'list_*'], '{"repo": {"enum": ["a/b"]}}', 'test') -> 'args';
select action, subject, before is null as created, after -> 'tools' as tools
  from tollgate.audit_log where action like 'mcp_grant.%' order by id;
select subject_kind, subject, server, tools, args from tollgate.mcp_grant_list order by id;

-- Identify: a key's grants are its group's, its role's and its own.
select status, user_id, group_id, role, jsonb_array_length(grants) as n, grants
  from tollgate.mcp_identify(sha256('mcp-b'::bytea), null, null, null, false, null, null, '/mcp');
select status, jsonb_array_length(grants) as n
  from tollgate.mcp_identify(sha256('mcp-a'::bytea), null, null, null, false, null, null, '/mcp');
-- A JWT principal: its group's and role's grants; an unknown user is still refused.
select tollgate.user_upsert('mcp-jwt', 'mcp-ops', 'test') is not null as user_made;
select status, jsonb_array_length(grants) as n
  from tollgate.mcp_identify(null, 'mcp-jwt', 'mcp-ops', 'mcp-viewer', false, null, null, '/mcp');
select status, grants
  from tollgate.mcp_identify(null, 'mcp-jwt', 'mcp-ops', 'user', false, null, null, '/mcp');
select status from tollgate.mcp_identify(null, 'mcp-ghost', 'mcp-ops', null, false, null, null, '/mcp');
-- RBAC on the endpoint applies as for the LLM endpoints.
select tollgate.group_upsert('mcp-eng', null, array['/v1/*'], 'test') is not null as restricted;
select status, denied_subject
  from tollgate.mcp_identify(sha256('mcp-a'::bytea), null, null, null, false, null, null, '/mcp');
select tollgate.group_upsert('mcp-eng', null, null, 'test') is not null as unrestricted;

-- Revoke: by subject and server (all tool lists), or one tool list.
select tollgate.mcp_grant_revoke('key', 'tg-MCPb0001', 'github', array['nothing'], 'test');
select tollgate.mcp_grant_revoke('key', 'tg-MCPb0001', 'github', null, 'test');
select action, subject, before -> 'tools' as tools, after from tollgate.audit_log
 where action = 'mcp_grant.revoke' order by id;

-- Limits: a quota of 2 per minute on each tool, of 3 per total on key a,
-- a bucket of 2 tokens (1 per 10 s) on server "docs".
select tollgate.mcp_limit_set('tool', null, 'minute', 2, null, null, null, 'test') - 'id' - 'created_at';
select tollgate.mcp_limit_set('key', 'tg-MCPa0001', 'total', 3, null, null, null, 'test') ->> 'kind';
select tollgate.mcp_limit_set('server', 'docs', null, null, 2, 1, 10000, 'test') - 'id' - 'created_at';
select tollgate.mcp_limit_set('server', null, 'bad', 1, null, null, null, 'test');
select per, subject, kind, "window", limit_value, max_tokens from tollgate.mcp_limit_list order by id;
-- Nothing applies to a call of another server by a JWT caller with no key limit... except the per-tool quota.
select * from tollgate.mcp_admit(:k_a, 'mcp-ann', 'mcp-eng', 'github', 'get_repo');
select * from tollgate.mcp_admit(:k_a, 'mcp-ann', 'mcp-eng', 'github', 'get_repo');
-- third call of the same tool in the minute: refused, nothing written
select * from tollgate.mcp_admit(:k_a, 'mcp-ann', 'mcp-eng', 'github', 'get_repo');
select replace(subject, :'k_a', 'KEY_A') as subject, used from tollgate.mcp_quota_counters order by limit_id, subject;
-- another tool: the key's total quota (3) is the tightest now; then it is spent
select * from tollgate.mcp_admit(:k_a, 'mcp-ann', 'mcp-eng', 'github', 'list_repos');
select status, replace(denied_subject, :'k_a', 'KEY_A') as denied_subject, denied_window, denied_limit from tollgate.mcp_admit(:k_a, 'mcp-ann', 'mcp-eng', 'github', 'list_issues');
-- key b: the bucket on "docs" admits 2, then says when the next token comes
select status, denied_subject, denied_window, retry_after_s from tollgate.mcp_admit(:k_b, 'mcp-bob', 'mcp-ops', 'docs', 'search');
select status, denied_subject, denied_window, retry_after_s from tollgate.mcp_admit(:k_b, 'mcp-bob', 'mcp-ops', 'docs', 'search2');
select status, denied_subject, denied_window, retry_after_s from tollgate.mcp_admit(:k_b, 'mcp-bob', 'mcp-ops', 'docs', 'search3');
-- a refused bucket took nothing from the tool quota
select subject, used from tollgate.mcp_quota_counters where subject like 'docs/%' order by subject;
-- a minute later: the tool window rolled, the bucket refilled by 6 (capped at 2)
set local tollgate.now = '2026-05-10 08:01:31+00';
select status from tollgate.mcp_admit(:k_b, 'mcp-bob', 'mcp-ops', 'docs', 'search3');
select status, requests_remaining from tollgate.mcp_admit(:k_b, 'mcp-bob', 'mcp-ops', 'github', 'get_repo');
select replace(subject, :'k_a', 'KEY_A') as subject, used, window_start from tollgate.mcp_quota_counters order by limit_id, subject;
select tollgate.mcp_limit_delete(id, 'test') from tollgate.mcp_limits where per = 'server';
select tollgate.mcp_limit_delete(-1, 'test');
select action, subject from tollgate.audit_log where action like 'mcp_limit.%' order by id;

-- Audit rows: a batch, sent twice, stored once; arguments have no column.
select tollgate.mcp_calls_add('[
 {"call_id": "00000000-0000-4000-8000-000000000001", "request_id": "00000000-0000-4000-8000-0000000000a1",
  "ts": "2026-05-10T08:00:01Z", "api_key_id": 1, "key_prefix": "tg-MCPa0001", "user_id": "mcp-ann",
  "group_id": "mcp-eng", "role": "user", "server": "github", "tool": "get_repo", "code": "ok",
  "jsonrpc_error": null, "duration_us": 1500, "bytes_in": 100, "bytes_out": 2000},
 {"call_id": "00000000-0000-4000-8000-000000000002", "request_id": "00000000-0000-4000-8000-0000000000a2",
  "ts": "2026-05-10T08:00:02Z", "user_id": "mcp-ann", "group_id": "mcp-eng", "server": "github",
  "tool": "get_repo", "code": "refused", "jsonrpc_error": -32602, "duration_us": 500, "bytes_in": 80, "bytes_out": 120},
 {"call_id": "00000000-0000-4000-8000-000000000003", "request_id": "00000000-0000-4000-8000-0000000000a3",
  "ts": "2026-05-31T23:59:59Z", "user_id": "mcp-bob", "group_id": "mcp-ops", "server": "docs",
  "tool": "search", "code": "ok", "duration_us": 4000, "bytes_in": 10, "bytes_out": 30}]');
select tollgate.mcp_calls_add('[{"call_id": "00000000-0000-4000-8000-000000000001", "request_id": "00000000-0000-4000-8000-0000000000a1",
  "ts": "2026-05-10T08:00:01Z", "server": "github", "tool": "get_repo", "code": "ok"}]');
select tableoid::regclass as part, server, tool, code, jsonrpc_error, duration_us from tollgate.mcp_calls order by ts;
select * from tollgate.chargeback_tools('2026-05-01', '2026-05-31');
select * from tollgate.chargeback_tools('2026-05-11', '2026-05-31');
rollback;
