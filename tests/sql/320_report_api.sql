-- 320_report_api: usage.ttft_ms through settle_batch (absent or null: null),
-- and the report functions of the admin API and tollgatectl on known rows:
-- chargeback by provider, the series (empty buckets as zeros), denials, keys
-- (nothing secret), quotas, and the model comparison (exact micro-dollars,
-- percentiles of a known distribution, ttft nulls left out), the same before
-- and after report_refresh moves the days to the views. Bad parameters are
-- refused naming the parameter.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
delete from tollgate.report_state;

-- ttft_ms: a stream with it, a record without the field (an earlier version's), an explicit null.
select ord, cost_micros from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000320001',
                       'ts', '2026-03-02 10:00:00+00', 'provider', 'anthropic',
                       'model', 'claude-haiku-4-5', 'input_tokens', 1000, 'output_tokens', 100,
                       'http_status', 200, 'stream', true, 'outcome', 'ok', 'ttft_ms', 321),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000320002',
                       'ts', '2026-03-02 10:00:01+00', 'provider', 'anthropic',
                       'model', 'claude-haiku-4-5', 'input_tokens', 1000, 'output_tokens', 100,
                       'http_status', 200, 'outcome', 'ok'),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000320003',
                       'ts', '2026-03-02 10:00:02+00', 'provider', 'anthropic',
                       'model', 'claude-haiku-4-5', 'input_tokens', 1000, 'output_tokens', 100,
                       'http_status', 200, 'outcome', 'ok', 'ttft_ms', null)));
select request_id, stream, ttft_ms from tollgate.usage
 where request_id::text like '00000000-0000-4000-8000-00000032000_' order by request_id;
-- a negative one refuses the batch
select * from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000320004',
                       'ts', '2026-03-02 10:00:00+00', 'model', 'claude-haiku-4-5',
                       'outcome', 'ok', 'ttft_ms', -1)));
delete from tollgate.usage where request_id::text like '00000000-0000-4000-8000-00000032000_';

-- Known rows, 2026-03-01 .. 03-03: model A (100 requests, latency 1..100 ms,
-- 40 streams with ttft 10..400, 5 errors, 3 blocks, 1234 micros and 10 output
-- tokens each); model B on openai (10 requests, latency 1000..10900 step
-- 1100, no streams, 0 output tokens, 7 micros each).
insert into tollgate.usage (request_id, ts, api_key_id, user_id, group_id, provider, model,
                            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                            cost_micros, http_status, latency_ms, stream, outcome, ttft_ms)
select ('00000000-0000-4000-8000-' || lpad((320100 + i)::text, 12, '0'))::uuid,
       timestamptz '2026-03-01 00:30:00+00' + (i % 3) * interval '1 day' + (i % 2) * interval '1 hour',
       null::bigint, 'ra-user' || (i % 2), 'ra-eng', 'anthropic', 'ra-model-a',
       20, 10, 1, 2, 1234,
       case when i <= 5 then 529 when i <= 8 then 400 else 200 end, i, i <= 40,
       case when i <= 5 then 'upstream_error' when i <= 8 then 'blocked' else 'ok' end,
       case when i <= 40 then 10 * i end
  from generate_series(1, 100) as i
union all
select ('00000000-0000-4000-8000-' || lpad((320300 + i)::text, 12, '0'))::uuid,
       timestamptz '2026-03-03 12:00:00+00', null, 'ra-user9', 'ra-ops', 'openai', 'ra-model-b',
       5, 0, 0, 0, 7, 200, 1000 + 1100 * (i - 1), false, 'ok', null
  from generate_series(1, 10) as i;

create temp table models_before as
    select * from tollgate.report_models('2026-03-01', '2026-03-03');
select * from models_before;
select tollgate.latency_bucket(v) as bucket, v
  from unnest(array[0, 999, 1000, 1009, 10900, 123456]) v;

select * from tollgate.chargeback('provider', '2026-03-01', '2026-03-03')
 where subject in ('anthropic', 'openai');
select * from tollgate.report_series('group', 'ra-eng', 'day', '2026-02-28', '2026-03-04');
select * from tollgate.report_series('org', null, 'hour', '2026-03-03', '2026-03-03')
 where requests > 0;
select count(*) as hours from tollgate.report_series('user', 'ra-user9', 'hour', '2026-03-01', '2026-03-03');

-- After a refresh the days come from the views: the same figures.
select tollgate.report_refresh() >= date '2026-03-04' as covered;
select count(*) as differing from (
    (select * from models_before except select * from tollgate.report_models('2026-03-01', '2026-03-03'))
    union all
    (select * from tollgate.report_models('2026-03-01', '2026-03-03') except select * from models_before)) d;
select count(*) as model_daily_rows from tollgate.model_daily where model like 'ra-model-%';

-- Denials per reason and status (UTC days).
insert into tollgate.denials (day, group_id, user_id, api_key_id, reason, http_status, requests)
values ('2026-03-01', 'ra-eng', 'ra-user0', null, 'quota_exceeded', 429, 4),
       ('2026-03-02', 'ra-eng', 'ra-user1', null, 'quota_exceeded', 429, 3),
       ('2026-03-02', null, null, null, 'rejected', 401, 2),
       ('2026-03-05', null, null, null, 'rejected', 401, 50);
select * from tollgate.report_denials('2026-03-01', '2026-03-03')
 where reason in ('quota_exceeded', 'rejected');

-- Keys and quotas: the columns (no hash anywhere).
select proargnames from pg_proc where oid = 'tollgate.report_keys'::regproc;
select proargnames from pg_proc where oid = 'tollgate.report_quotas'::regproc;

-- Bad parameters: each refused, naming the parameter.
select * from tollgate.chargeback('tool', '2026-03-01', '2026-03-03');
select * from tollgate.report_models('2026-03-03', '2026-03-01');
select * from tollgate.report_models('2025-01-01', '2026-03-03');
select * from tollgate.report_denials(null, '2026-03-03');
select * from tollgate.report_series('team', 'x', 'day', '2026-03-01', '2026-03-03');
select * from tollgate.report_series('org', 'x', 'day', '2026-03-01', '2026-03-03');
select * from tollgate.report_series('group', null, 'day', '2026-03-01', '2026-03-03');
select * from tollgate.report_series('group', 'ra-eng', 'minute', '2026-03-01', '2026-03-03');
select * from tollgate.report_series('group', 'ra-eng', 'hour', '2026-03-01', '2026-04-03');
select * from tollgate.report_series('key', 'tg_nokey', 'day', '2026-03-01', '2026-03-03');

-- Migration 018 again: nothing changes (settle_batch names ttft_ms 4 times).
\set ECHO none
\i ../../sql/018_report_api.sql
\set ECHO all
select (length(d) - length(replace(d, 'ttft_ms', ''))) / length('ttft_ms') as mentions
  from pg_get_functiondef('tollgate.settle_batch(jsonb)'::regprocedure) d;
rollback;
