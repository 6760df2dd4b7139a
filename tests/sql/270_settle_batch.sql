-- 270_settle_batch: settle_batch settles many records in one statement with
-- settle's contract per record: usage rows written once (a replayed record,
-- or the same record twice in a batch, gets its stored cost and counts once),
-- reservations given back, used taken from what the rows report, alerts raised
-- once per threshold for the whole batch; a negative count or an unpriced
-- model refuses the whole batch, leaving nothing written.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-04-15 12:00:00+00';

select tollgate.key_create(sha256('sb-a'::bytea), 'tg-SBkeyA01', 'a', 'sb-user', 'sb-group', null, 'test') as ka
\gset
select tollgate.quota_set('group', 'sb-group',    'usd',      'month',  40000, 'test', 50) as q1,
       tollgate.quota_set('user',  'sb-user',     'tokens',   'day',    10000, 'test') as q2,
       tollgate.quota_set('key',   'tg-SBkeyA01', 'requests', 'minute', 10,    'test') as q3
\gset
create temp view shown as
    select subject_kind, subject, metric, "window", limit_value, used, reserved, remaining
      from tollgate.quota_list
     where subject in ('sb-group', 'sb-user', 'tg-SBkeyA01')
     order by id;

-- Two requests reserve (1000 + 1000 sonnet tokens each: 2000 tokens, 18750 micros).
select status from tollgate.reserve('00000000-0000-4000-8000-000000270001', sha256('sb-a'::bytea),
                                    'claude-sonnet-4-5', 1000, 1000, 'sb-host:1', 60000);
select status from tollgate.reserve('00000000-0000-4000-8000-000000270002', sha256('sb-a'::bytea),
                                    'claude-sonnet-4-5', 1000, 1000, 'sb-host:1', 60000);
select * from shown;

-- One batch: both reserved requests (800 in + 300 out = 6900 micros; 100 in +
-- 10 out = 450 micros), one never reserved (haiku, 1000 in + 100 out = 1500
-- micros), and the first record again (a duplicate: counted once).
select ord, request_id, cost_micros, alerts
  from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270001',
                       'ts', '2026-04-15 11:59:58+00', 'api_key_id', :ka,
                       'user_id', 'sb-user', 'group_id', 'sb-group', 'provider', 'anthropic',
                       'model', 'claude-sonnet-4-5', 'input_tokens', 800, 'output_tokens', 300,
                       'cache_read_tokens', 0, 'cache_write_tokens', 0, 'http_status', 200,
                       'latency_ms', 2100, 'upstream_ms', 2000, 'stream', true,
                       'outcome', 'client_disconnected', 'usage_source', 'provider'),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270002',
                       'ts', '2026-04-15 11:59:59+00', 'api_key_id', :ka,
                       'user_id', 'sb-user', 'group_id', 'sb-group', 'provider', 'anthropic',
                       'model', 'claude-sonnet-4-5', 'input_tokens', 100, 'output_tokens', 10,
                       'http_status', 200, 'stream', false, 'outcome', 'worker_lost',
                       'usage_source', 'estimated'),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270003',
                       'ts', '2026-04-15 11:59:59+00', 'api_key_id', :ka,
                       'user_id', 'sb-user', 'group_id', 'sb-group', 'provider', 'anthropic',
                       'model', 'claude-haiku-4-5', 'input_tokens', 1000, 'output_tokens', 100,
                       'http_status', 200, 'outcome', 'ok'),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270001',
                       'ts', '2026-04-15 11:59:58+00', 'api_key_id', :ka,
                       'user_id', 'sb-user', 'group_id', 'sb-group', 'provider', 'anthropic',
                       'model', 'claude-sonnet-4-5', 'input_tokens', 99999, 'output_tokens', 99999,
                       'http_status', 500, 'outcome', 'ok')));
-- used: 3 requests, 1210 + 1100 + 110 = 2420 tokens... per subject: tokens
-- 1100 + 110 + 1100 = 2310, usd 6900 + 450 + 1500 = 8850; nothing reserved.
select * from shown;
select request_id, input_tokens, output_tokens, cost_micros, outcome, usage_source
  from tollgate.usage where request_id::text like '00000000-0000-4000-8000-00000027000_'
 order by request_id;
select count(*) as reservations from tollgate.reservations
 where request_id::text like '00000000-0000-4000-8000-00000027000_';
select quota_id = :q1 as usd_quota, threshold_pct, used, limit_value
  from tollgate.quota_alerts where quota_id in (:q1, :q2, :q3);

-- The whole batch replayed: stored costs, nothing counted twice, no new alerts.
select ord, cost_micros, alerts
  from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270003',
                       'ts', '2026-04-15 11:59:59+00', 'api_key_id', :ka,
                       'user_id', 'sb-user', 'group_id', 'sb-group',
                       'model', 'claude-haiku-4-5', 'input_tokens', 1, 'output_tokens', 1),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270002',
                       'ts', '2026-04-15 11:59:59+00', 'api_key_id', :ka,
                       'user_id', 'sb-user', 'group_id', 'sb-group',
                       'model', 'claude-sonnet-4-5', 'input_tokens', 1, 'output_tokens', 1)));
select * from shown;

-- Past 50% and 100% in one batch (2 x 24000 micros): both alerts, once.
select ord, cost_micros,
       (select jsonb_agg(a - 'quota_id') from jsonb_array_elements(alerts) a) as alerts
  from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270004',
                       'ts', '2026-04-15 12:00:00+00', 'user_id', 'sb-user',
                       'group_id', 'sb-group', 'model', 'claude-sonnet-4-5',
                       'input_tokens', 3000, 'output_tokens', 1000),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270005',
                       'ts', '2026-04-15 12:00:00+00', 'user_id', 'sb-user',
                       'group_id', 'sb-group', 'model', 'claude-sonnet-4-5',
                       'input_tokens', 3000, 'output_tokens', 1000)));
select * from shown;
-- further usage in the same window raises nothing again
select alerts from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270009',
                       'ts', '2026-04-15 12:00:00+00', 'group_id', 'sb-group',
                       'model', 'claude-haiku-4-5', 'input_tokens', 10, 'output_tokens', 1)));
select threshold_pct, used, limit_value from tollgate.quota_alerts where quota_id = :q1
 order by threshold_pct;

-- Refused as a whole, nothing written: a negative count, an unpriced model.
select * from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270006',
                       'ts', '2026-04-15 12:00:00+00', 'group_id', 'sb-group',
                       'model', 'claude-haiku-4-5', 'input_tokens', 10, 'output_tokens', 1),
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270007',
                       'ts', '2026-04-15 12:00:00+00', 'group_id', 'sb-group',
                       'model', 'claude-haiku-4-5', 'input_tokens', -5, 'output_tokens', 1)));
select * from tollgate.settle_batch(jsonb_build_array(
    jsonb_build_object('request_id', '00000000-0000-4000-8000-000000270008',
                       'ts', '2026-04-15 12:00:00+00', 'group_id', 'sb-group',
                       'model', 'no-such-model', 'input_tokens', 10, 'output_tokens', 1)));
select count(*) as written from tollgate.usage
 where request_id in ('00000000-0000-4000-8000-000000270006',
                      '00000000-0000-4000-8000-000000270007',
                      '00000000-0000-4000-8000-000000270008');
select * from shown;
rollback;
