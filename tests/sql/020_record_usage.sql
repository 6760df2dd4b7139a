-- 020_record_usage: pricing at the request's time, idempotence on
-- request_id, no dependency on key/user/group rows, last_used_at throttling.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

select tollgate.key_create(sha256('ru-key'::bytea), 'tg-RUkey001', 'usage test', 'ru-user', 'ru-group', null, 'test') as key_id
\gset

-- First record: sonnet 1000 in + 500 out = 10500 micros.
select tollgate.record_usage('00000000-0000-4000-8000-000000000001', '2025-06-01 12:00:00+00',
                             :key_id, 'ru-user', 'ru-group', 'anthropic', 'claude-sonnet-4-5',
                             1000, 500, 0, 0, 200, 1234, 1200, false, 'ok') as cost;

-- Same request_id again (retry / spool replay) with different numbers:
-- nothing is inserted and the stored cost is returned.
select tollgate.record_usage('00000000-0000-4000-8000-000000000001', '2025-06-01 12:00:05+00',
                             :key_id, 'ru-user', 'ru-group', 'anthropic', 'claude-opus-4-1',
                             99999, 99999, 0, 0, 500, 1, 1, true, 'error') as cost_again;

select request_id, ts, api_key_id = :key_id as key_ok, user_id, group_id, provider, model,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros,
       http_status, latency_ms, upstream_ms, stream, outcome
  from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000000001';
select count(*) as rows_for_request
  from tollgate.usage where request_id = '00000000-0000-4000-8000-000000000001';

-- last_used_at was set to the usage time (the key had never been used).
select last_used_at from tollgate.api_keys where id = :key_id;

-- Within 60 s of the last update: not touched.
select tollgate.record_usage('00000000-0000-4000-8000-000000000002', '2025-06-01 12:00:59+00',
                             :key_id, 'ru-user', 'ru-group', 'anthropic', 'claude-haiku-4-5',
                             10, 10, 0, 0, 200, 10, 9, true, 'ok') as cost;
select last_used_at from tollgate.api_keys where id = :key_id;

-- Exactly 60 s later: still not touched (must be strictly older than 60 s).
select tollgate.record_usage('00000000-0000-4000-8000-000000000003', '2025-06-01 12:01:00+00',
                             :key_id, 'ru-user', 'ru-group', 'anthropic', 'claude-haiku-4-5',
                             10, 10, 0, 0, 200, 10, 9, true, 'ok') as cost;
select last_used_at from tollgate.api_keys where id = :key_id;

-- More than 60 s later: updated.
select tollgate.record_usage('00000000-0000-4000-8000-000000000004', '2025-06-01 12:01:00.5+00',
                             :key_id, 'ru-user', 'ru-group', 'anthropic', 'claude-haiku-4-5',
                             10, 10, 0, 0, 200, 10, 9, true, 'ok') as cost;
select last_used_at from tollgate.api_keys where id = :key_id;

-- A late replay of an old request does not move last_used_at back.
select tollgate.record_usage('00000000-0000-4000-8000-000000000005', '2025-05-01 00:00:00+00',
                             :key_id, 'ru-user', 'ru-group', 'anthropic', 'claude-haiku-4-5',
                             10, 10, 0, 0, 200, 10, 9, true, 'ok') as cost;
select last_used_at from tollgate.api_keys where id = :key_id;

-- Priced at p_ts, not at now(): a later price change does not affect an
-- earlier request.
insert into tollgate.prices (model, effective_from, input_micros_per_mtok, output_micros_per_mtok,
                             cache_read_micros_per_mtok, cache_write_micros_per_mtok)
values ('claude-sonnet-4-5', '2026-01-01 00:00:00+00', 6000000, 30000000, 600000, 7500000);
select tollgate.record_usage('00000000-0000-4000-8000-000000000006', '2025-12-31 23:59:59+00',
                             :key_id, 'ru-user', 'ru-group', 'anthropic', 'claude-sonnet-4-5',
                             1000, 1000, 1000, 1000, 200, 10, 9, false, 'ok') as old_price,
       tollgate.record_usage('00000000-0000-4000-8000-000000000007', '2026-01-01 00:00:00+00',
                             :key_id, 'ru-user', 'ru-group', 'anthropic', 'claude-sonnet-4-5',
                             1000, 1000, 1000, 1000, 200, 10, 9, false, 'ok') as new_price;

-- Usage is stored even when the key, user and group do not exist, or are null.
select tollgate.record_usage('00000000-0000-4000-8000-000000000010', '2025-06-01 12:00:00+00',
                             987654321, 'ghost-user', 'ghost-group', 'anthropic', 'claude-sonnet-4-5',
                             1000, 0, 0, 0, 200, 5, 4, false, 'ok') as ghost_cost,
       tollgate.record_usage('00000000-0000-4000-8000-000000000011', '2025-06-01 12:00:00+00',
                             null, null, null, 'anthropic', 'claude-sonnet-4-5',
                             1000, 0, 0, 0, 401, 1, null, false, 'auth_failed') as anonymous_cost;
select request_id, api_key_id, user_id, group_id, cost_micros, http_status, upstream_ms, outcome
  from tollgate.usage
 where request_id in ('00000000-0000-4000-8000-000000000010', '00000000-0000-4000-8000-000000000011')
 order by request_id;

-- Unknown model: stored at cost 0. Null counts/texts/stream/time are defaulted.
select tollgate.record_usage('00000000-0000-4000-8000-000000000020', null,
                             null, 'ru-user', 'ru-group', null, 'mystery-model',
                             null, null, null, null, null, null, null, null, null) as cost;
select ts = now() as ts_is_now, provider, model, input_tokens, output_tokens, cache_read_tokens,
       cache_write_tokens, cost_micros, http_status, stream, outcome
  from tollgate.usage where request_id = '00000000-0000-4000-8000-000000000020';

-- Negative token counts are refused (and nothing is stored).
select tollgate.record_usage('00000000-0000-4000-8000-000000000030', '2025-06-01 12:00:00+00',
                             null, 'ru-user', 'ru-group', 'anthropic', 'claude-sonnet-4-5',
                             -1, 0, 0, 0, 200, 1, 1, false, 'ok');
select count(*) as stored
  from tollgate.usage where request_id = '00000000-0000-4000-8000-000000000030';

select count(*) as usage_rows from tollgate.usage
 where request_id::text like '00000000-0000-4000-8000-0000000000%';

rollback;
