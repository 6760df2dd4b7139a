-- 020_mcp_payloads.sql — the arguments and results of tool calls in their
-- audit rows, for the MCP servers whose operator turned that on (issue 13,
-- item 5: mcp.servers.NAME.audit_payloads, off unless set).
--
-- mcp_calls.arguments: the tools/call arguments as the server received them
-- (after the guardrails masked them); mcp_calls.result: the response's result
-- or error as the client got it (masked, or withheld). Either is null for a
-- server without audit_payloads (every row before this version too), null
-- when the call had none (a refused call has no arguments), or
-- {"truncated": true, "bytes": N} when its compact JSON was over
-- mcp.audit_payload_bytes (the gateway decides, mcp_access.c). Nothing else
-- reads them: chargeback_tools (`report --by tool`) and every report keep
-- their columns; only a deliberate select of these columns shows them.
--
-- ADD COLUMN on the partitioned table reaches every attached partition, the
-- default one included; mcp_calls_partitions_ensure (017) copies the table's
-- shape to the months it creates. mcp_calls_add is replaced in full (017
-- created it in full): a row without "arguments" or "result" (an audit file
-- written by an earlier version, waiting for its flush) stores null.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run.

alter table tollgate.mcp_calls
    add column if not exists arguments jsonb,
    add column if not exists result jsonb;

create or replace function tollgate.mcp_calls_add(p_rows jsonb)
returns integer
language sql volatile
as $$
    with ins as (
        insert into tollgate.mcp_calls as c
               (call_id, request_id, ts, api_key_id, key_prefix, user_id, group_id, role,
                server, tool, code, jsonrpc_error, duration_us, bytes_in, bytes_out,
                arguments, result)
        select x.call_id, x.request_id, x.ts, x.api_key_id, x.key_prefix, x.user_id, x.group_id,
               x.role, x.server, x.tool, x.code, x.jsonrpc_error, coalesce(x.duration_us, 0),
               coalesce(x.bytes_in, 0), coalesce(x.bytes_out, 0),
               nullif(x.arguments, 'null'::jsonb), nullif(x.result, 'null'::jsonb)
          from jsonb_to_recordset(p_rows)
               as x(call_id uuid, request_id uuid, ts timestamptz, api_key_id bigint,
                    key_prefix text, user_id text, group_id text, role text, server text,
                    tool text, code text, jsonrpc_error integer, duration_us bigint,
                    bytes_in bigint, bytes_out bigint, arguments jsonb, result jsonb)
        on conflict (call_id, ts) do nothing
        returning 1
    )
    select count(*)::integer from ins
$$;

comment on column tollgate.mcp_calls.arguments is
    'tools/call arguments after the guardrails; only for servers with audit_payloads';
comment on column tollgate.mcp_calls.result is
    'the result or error the client got; only for servers with audit_payloads';
