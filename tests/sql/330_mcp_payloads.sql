-- 330_mcp_payloads: sql/020_mcp_payloads.sql — the arguments and result
-- columns of tollgate.mcp_calls (nullable jsonb, on every partition),
-- mcp_calls_add storing them, a row of an earlier version (no payload keys)
-- and JSON null both stored as null, a truncation marker stored as it is, and
-- chargeback_tools (`report --by tool`) unchanged by them.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-05-10 08:00:30+00';

-- the columns: jsonb, nullable, on the parent, the default partition and a
-- month partition created after the migration
select tollgate.mcp_calls_partitions_ensure(0) >= 0 as ensured;
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull
  from pg_attribute a join pg_class c on c.oid = a.attrelid
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'tollgate' and a.attname in ('arguments', 'result')
   and (c.relname = 'mcp_calls' or c.relname = 'mcp_calls_default'
        or c.relname = 'mcp_calls_y' || to_char(tollgate.clock() at time zone 'UTC', 'YYYY"m"MM'))
 order by c.relname = 'mcp_calls' desc, c.relname = 'mcp_calls_default' desc, a.attname;

select tollgate.mcp_calls_add('[
 {"call_id": "00000000-0000-4000-8000-00000000c001", "request_id": "00000000-0000-4000-8000-0000000000b1",
  "ts": "2026-05-10T08:00:01Z", "user_id": "pay-ann", "group_id": "pay", "server": "own", "tool": "echo",
  "code": "ok", "duration_us": 1000, "bytes_in": 50, "bytes_out": 70,
  "arguments": {"text": "my SSN is <US_SSN>"},
  "result": {"content": [{"type": "text", "text": "own: my SSN is <US_SSN>"}]}},
 {"call_id": "00000000-0000-4000-8000-00000000c002", "request_id": "00000000-0000-4000-8000-0000000000b2",
  "ts": "2026-05-10T08:00:02Z", "user_id": "pay-ann", "group_id": "pay", "server": "own", "tool": "echo",
  "code": "ok", "duration_us": 3000, "bytes_in": 50, "bytes_out": 90000,
  "arguments": {"text": "long"}, "result": {"truncated": true, "bytes": 90000}},
 {"call_id": "00000000-0000-4000-8000-00000000c003", "request_id": "00000000-0000-4000-8000-0000000000b3",
  "ts": "2026-05-10T08:00:03Z", "user_id": "pay-ann", "group_id": "pay", "server": "own", "tool": "fail",
  "code": "refused", "jsonrpc_error": -32003, "duration_us": 0, "bytes_in": 40, "bytes_out": 0,
  "arguments": null, "result": {"code": -32003, "message": "tool \"fail\" of MCP server \"own\" is not allowed for this caller"}},
 {"call_id": "00000000-0000-4000-8000-00000000c004", "request_id": "00000000-0000-4000-8000-0000000000b4",
  "ts": "2026-05-10T08:00:04Z", "user_id": "pay-bob", "group_id": "pay", "server": "other", "tool": "echo",
  "code": "ok", "duration_us": 2000, "bytes_in": 60, "bytes_out": 80}]');
-- sent again (a replay): stored once
select tollgate.mcp_calls_add('[{"call_id": "00000000-0000-4000-8000-00000000c001", "request_id": "00000000-0000-4000-8000-0000000000b1",
  "ts": "2026-05-10T08:00:01Z", "server": "own", "tool": "echo", "code": "ok",
  "arguments": {"text": "another"}}]');
select tableoid::regclass as part, server, tool, code, arguments, result, arguments is null as args_null, result is null as result_null
  from tollgate.mcp_calls where call_id::text like '%c00_' order by ts;
-- report --by tool: the same columns, the payloads nowhere
select * from tollgate.chargeback_tools('2026-05-10', '2026-05-10');
rollback;
