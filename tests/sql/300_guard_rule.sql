-- 300_guard_rule: a request a guardrail blocked is settled (settle_batch)
-- with its rule in usage.guard_rule; a record without the field (any other
-- row, or a record of the previous version from a spool or a journal) stores
-- null. A replay keeps the first row. The column's check (1 to 64 bytes)
-- refuses the batch; every partition has the column: the default one, one
-- attached before the migration and one created after it. Migration 015
-- applied again changes nothing.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-04-15 12:00:00+00';

-- A block (zero tokens, 400), an ordinary row with no guard_rule field, one
-- with an explicit null.
select ord, request_id, cost_micros
  from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300001',
                       'ts', '2026-04-15 11:59:58+00', 'user_id', 'gr-user',
                       'group_id', 'gr-group', 'provider', 'anthropic',
                       'model', 'claude-haiku-4-5', 'input_tokens', 0, 'output_tokens', 0,
                       'http_status', 400, 'stream', false, 'outcome', 'blocked',
                       'usage_source', 'provider', 'guard_rule', 'aws_access_key'),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300002',
                       'ts', '2026-04-15 11:59:59+00', 'user_id', 'gr-user',
                       'group_id', 'gr-group', 'provider', 'anthropic',
                       'model', 'claude-haiku-4-5', 'input_tokens', 1000, 'output_tokens', 100,
                       'http_status', 200, 'outcome', 'ok'),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300003',
                       'ts', '2026-04-15 11:59:59+00', 'user_id', 'gr-user',
                       'group_id', 'gr-group', 'provider', 'anthropic',
                       'model', 'claude-haiku-4-5', 'input_tokens', 10, 'output_tokens', 1,
                       'http_status', 200, 'outcome', 'ok', 'guard_rule', null)));
select request_id, outcome, http_status, cost_micros, guard_rule
  from tollgate.usage where request_id::text like '00000000-0000-4000-8000-00000030000_'
 order by request_id;

-- The block replayed (from the spool, say) with another rule: the row stays as it was.
select ord, cost_micros from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300001',
                       'ts', '2026-04-15 11:59:58+00', 'model', 'claude-haiku-4-5',
                       'outcome', 'blocked', 'guard_rule', 'us_ssn')));
select guard_rule, count(*) over () as rows_for_request from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000300001';

-- The check: an empty rule, or one over 64 bytes, refuses the batch (nothing written).
select * from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300004',
                       'ts', '2026-04-15 12:00:00+00', 'model', 'claude-haiku-4-5',
                       'outcome', 'blocked', 'guard_rule', '')));
select * from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300005',
                       'ts', '2026-04-15 12:00:00+00', 'model', 'claude-haiku-4-5',
                       'outcome', 'blocked', 'guard_rule', repeat('r', 65))));
-- the limit is in bytes, as guard.c's: 33 two-byte characters are refused, 64 bytes are fine
select * from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300006',
                       'ts', '2026-04-15 12:00:00+00', 'model', 'claude-haiku-4-5',
                       'outcome', 'blocked', 'guard_rule', repeat('é', 33))));
select ord, cost_micros from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300007',
                       'ts', '2026-04-15 12:00:00+00', 'model', 'claude-haiku-4-5',
                       'outcome', 'blocked', 'guard_rule', repeat('r', 64))));
select request_id, octet_length(guard_rule) as rule_bytes from tollgate.usage
 where request_id in ('00000000-0000-4000-8000-000000300004',
                      '00000000-0000-4000-8000-000000300005',
                      '00000000-0000-4000-8000-000000300006',
                      '00000000-0000-4000-8000-000000300007')
 order by request_id;

-- Partitions: a month without one (the default partition), then that month
-- created by usage_partitions_ensure after the migration: the column and its
-- check are there, and the parked row moved with its rule.
select ord, cost_micros from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000300008',
                       'ts', '2031-06-10 08:00:00+00', 'model', 'claude-haiku-4-5',
                       'outcome', 'blocked', 'guard_rule', 'instruction_override')));
select tableoid::regclass as partition, guard_rule from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000300008';
set local tollgate.now = '2031-06-01 00:00+00';
select tollgate.usage_partitions_ensure(0) as created;
select tableoid::regclass as partition, guard_rule from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000300008';
create temp view guard_rule_columns as
    select c.relname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull,
           exists (select 1 from pg_constraint k
                    where k.conrelid = c.oid and k.contype = 'c'
                      and pg_get_constraintdef(k.oid) like '%octet_length(guard_rule)%') as checked
      from pg_class c
      left join pg_attribute a on a.attrelid = c.oid and a.attname = 'guard_rule'
     where c.oid = 'tollgate.usage'::regclass
        or c.oid in (select inhrelid from pg_inherits
                      where inhparent = 'tollgate.usage'::regclass);
select * from guard_rule_columns
 where relname in ('usage', 'usage_default', 'usage_y2031m06') order by relname;
-- every partition, those of the months migrate created included
select count(*) > 3 as partitions, bool_and(type = 'text' and checked) as all_have_it
  from guard_rule_columns;
insert into tollgate.usage (request_id, ts, provider, model, cost_micros, outcome, guard_rule)
values ('00000000-0000-4000-8000-000000300009', '2031-06-11 08:00:00+00', 'anthropic',
        'claude-haiku-4-5', 0, 'blocked', repeat('x', 65));

-- Migration 015 again: nothing changes (settle_batch names guard_rule 4 times).
\i ../../sql/015_guard_rule.sql
select (length(d) - length(replace(d, 'guard_rule', ''))) / length('guard_rule') as mentions
  from pg_get_functiondef('tollgate.settle_batch(jsonb)'::regprocedure) d;
rollback;
