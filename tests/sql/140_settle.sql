-- 140_settle: settle stores the usage row like record_usage and replaces
-- the reservation by the actual usage; it is idempotent; usage without a
-- reservation (swept, or never reserved) still counts; alerts are raised
-- once per crossing of warn_pct and of 100%, and again after a rollover.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-04-15 12:00:00+00';

select tollgate.key_create(sha256('st-a'::bytea), 'tg-STkeyA01', 'a', 'st-user', 'st-group', null, 'test') as ka
\gset
select tollgate.quota_set('group', 'st-group',    'usd',      'month',  100000, 'test') as q1,
       tollgate.quota_set('user',  'st-user',     'tokens',   'day',    10000,  'test') as q2,
       tollgate.quota_set('key',   'tg-STkeyA01', 'requests', 'minute', 10,     'test') as q3
\gset
create temp view shown as
    select subject_kind, subject, metric, "window", limit_value, used, reserved, remaining
      from tollgate.quota_list
     where subject in ('st-group', 'st-user', 'tg-STkeyA01')
     order by id;

-- Reserve 1000 + 1000 sonnet tokens: 2000 tokens, 18750 micros, 1 request.
select status from tollgate.reserve('00000000-0000-4000-8000-000000050001', sha256('st-a'::bytea),
                                    'claude-sonnet-4-5', 1000, 1000, 'st-host:1', 60000);
select * from shown;

-- Settle with the provider's figures: 800 in, 300 out, 100 cache read, 50
-- cache write = 1250 tokens, 2400 + 4500 + 30 + 187.5 -> 7118 micros.
-- reserved goes back to 0, used takes the actual amounts.
select * from tollgate.settle('00000000-0000-4000-8000-000000050001', '2026-04-15 11:59:58+00',
                              :ka, 'st-user', 'st-group', 'anthropic', 'claude-sonnet-4-5',
                              800, 300, 100, 50, 200, 2100, 2000, true, 'ok');
select * from shown;
select count(*) as reservations from tollgate.reservations
 where request_id = '00000000-0000-4000-8000-000000050001';
-- The usage row is what record_usage would have written; last_used_at set.
select request_id, ts, api_key_id = :ka as key_ok, user_id, group_id, provider, model,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros,
       http_status, latency_ms, upstream_ms, stream, outcome
  from tollgate.usage where request_id = '00000000-0000-4000-8000-000000050001';
select last_used_at from tollgate.api_keys where id = :ka;

-- Idempotent: the same request_id again (retry, spool replay) returns the
-- stored cost and changes nothing, even with other numbers.
select * from tollgate.settle('00000000-0000-4000-8000-000000050001', '2026-04-15 11:59:59+00',
                              :ka, 'st-user', 'st-group', 'anthropic', 'claude-opus-4-1',
                              99999, 99999, 0, 0, 500, 1, 1, false, 'error');
select * from shown;
select count(*) as usage_rows from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000050001';

-- Usage with no reservation (never reserved, or already swept) still counts.
select * from tollgate.settle('00000000-0000-4000-8000-000000050002', null,
                              :ka, 'st-user', 'st-group', 'anthropic', 'claude-haiku-4-5',
                              1000, 100, 0, 0, 200, 10, 9, false, 'ok');
select * from shown;
select ts from tollgate.usage where request_id = '00000000-0000-4000-8000-000000050002';

-- Swept first (its worker died), settled afterwards: the sweep released
-- the reservation; settle counts the usage and releases nothing twice.
select status from tollgate.reserve('00000000-0000-4000-8000-000000050003', sha256('st-a'::bytea),
                                    'claude-sonnet-4-5', 100, 100, 'st-host:2', 60000);
select status from tollgate.reserve('00000000-0000-4000-8000-000000050004', sha256('st-a'::bytea),
                                    'claude-sonnet-4-5', 100, 100, 'st-host:1', 60000);
select * from shown;
select tollgate.sweep_reservations(array['st-host:2']) as swept;
select * from shown;
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000050003', null,
                              :ka, 'st-user', 'st-group', 'anthropic', 'claude-sonnet-4-5',
                              100, 100, 0, 0, 200, 10, 9, false, 'ok');
select * from shown;

-- The usage row names another user and no group (an end user the key
-- attributed it to): the rows the reservation held are released all the
-- same; used is added to the rows that apply to the usage row: the key's,
-- and (016) its owner's and the owner's group's, whoever the row names.
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000050004', null,
                              :ka, 'st-other', null, 'anthropic', 'claude-sonnet-4-5',
                              100, 100, 0, 0, 200, 10, 9, false, 'ok');
select * from shown;

-- Actual above the reservation (an estimator that is not an upper bound)
-- is counted in full; used may then pass the limit, and reserved floors at
-- 0 even if it was lowered meanwhile.
select status from tollgate.reserve('00000000-0000-4000-8000-000000050005', sha256('st-a'::bytea),
                                    'claude-sonnet-4-5', 10, 10, 'st-host:1', 60000);
update tollgate.quotas set reserved = 0 where id = :q2;
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000050005', null,
                              :ka, 'st-user', 'st-group', 'anthropic', 'claude-sonnet-4-5',
                              4000, 3000, 0, 0, 200, 10, 9, false, 'ok');
select * from shown;

-- record_usage is settle without alerts: the usage row counts towards the quotas too.
select tollgate.record_usage('00000000-0000-4000-8000-000000050006', null,
                             :ka, 'st-user', 'st-group', 'anthropic', 'claude-sonnet-4-5',
                             1000, 0, 0, 0, 200, 10, 9, false, 'ok') as record_usage_cost;
select * from shown;

-- No identity and no reservation: just the usage row.
select * from tollgate.settle('00000000-0000-4000-8000-000000050007', null,
                              null, null, null, 'anthropic', 'claude-sonnet-4-5',
                              1000, 0, 0, 0, 401, 1, null, false, 'auth_failed');

-- Negative counts are refused; nothing is stored.
select * from tollgate.settle('00000000-0000-4000-8000-000000050008', null,
                              :ka, 'st-user', 'st-group', 'anthropic', 'claude-sonnet-4-5',
                              0, -1, 0, 0, 200, 1, 1, false, 'ok');
select count(*) as stored from tollgate.usage where request_id = '00000000-0000-4000-8000-000000050008';

-- Alerts. Group st-al: usd/month 10000 micros (warn 80); user st-alu:
-- tokens/month 10000 (warn 80). gpt-4o input is 2.5 micros a token.
select tollgate.key_create(sha256('st-al'::bytea), 'tg-STalrt01', 'al', 'st-alu', 'st-al', null, 'test') as kal
\gset
select tollgate.quota_set('group', 'st-al',  'usd',    'month', 10000, 'test') as qa1,
       tollgate.quota_set('user',  'st-alu', 'tokens', 'month', 10000, 'test') as qa2
\gset
create temp table steps (n int, input int, cost bigint, alerts jsonb);
-- 2000 tokens = 5000 micros (50%), +1200 = 8000 (80%: alert), +400 = 9000
-- (no alert), +400 = 10000 (100%: alert), +400 = 11000 (none),
-- then 6000 gpt-4o-mini tokens take tokens from 44% to 104%: both
-- thresholds at once (two alerts).
insert into steps
select s.n, s.input, r.cost_micros,
       (select coalesce(jsonb_agg(e - 'quota_id' order by (e->>'threshold_pct')::int), '[]')
          from jsonb_array_elements(r.alerts) e)
  from (values (1, 2000, 'gpt-4o'), (2, 1200, 'gpt-4o'), (3, 400, 'gpt-4o'), (4, 400, 'gpt-4o'),
               (5, 400, 'gpt-4o'), (6, 6000, 'gpt-4o-mini')) as s(n, input, model),
       lateral tollgate.settle(('00000000-0000-4000-8000-00000006000' || s.n)::uuid, null,
                               :kal, 'st-alu', 'st-al', 'openai', s.model,
                               s.input, 0, 0, 0, 200, 1, 1, false, 'ok') as r
 order by s.n;
select n, input, cost, alerts from steps order by n;
select subject, metric, "window", limit_value, used, reserved
  from tollgate.quota_list where subject in ('st-al', 'st-alu') order by id;
select q.subject_kind, a.ts, a.window_start, a.threshold_pct, a.used, a.limit_value
  from tollgate.quota_alerts a join tollgate.quotas q on q.id = a.quota_id
 where a.quota_id in (:qa1, :qa2) order by a.id;
select id = :qa1 as is_usd, alerted_pct from tollgate.quotas where id in (:qa1, :qa2) order by id;

-- Next month: the windows roll at their next use; crossing 80% again
-- raises a new alert for the new window.
set local tollgate.now = '2026-05-01 00:00:05+00';
select cost_micros,
       (select jsonb_agg(e - 'quota_id') from jsonb_array_elements(alerts) e) as alerts,
       (select bool_and((e->>'quota_id')::bigint = :qa1) from jsonb_array_elements(alerts) e) as quota_id_ok
  from tollgate.settle('00000000-0000-4000-8000-000000060007', null,
                       :kal, 'st-alu', 'st-al', 'openai', 'gpt-4o',
                       3200, 0, 0, 0, 200, 1, 1, false, 'ok');
select q.subject_kind, a.ts, a.window_start, a.threshold_pct, a.used, a.limit_value
  from tollgate.quota_alerts a join tollgate.quotas q on q.id = a.quota_id
 where a.quota_id in (:qa1, :qa2) order by a.id;
select subject, metric, used, window_start from tollgate.quota_list
 where subject in ('st-al', 'st-alu') order by id;

-- A manual reset within the window clears alerted_pct, but each (quota,
-- window, threshold) alerts at most once: no duplicate alert row.
select tollgate.quota_reset('group', 'st-al', 'usd', 'month', 'test') = :qa1 as reset_ok;
select alerts from tollgate.settle('00000000-0000-4000-8000-000000060008', null,
                       :kal, 'st-alu', 'st-al', 'openai', 'gpt-4o',
                       3600, 0, 0, 0, 200, 1, 1, false, 'ok');
select count(*) as alert_rows from tollgate.quota_alerts where quota_id in (:qa1, :qa2);

rollback;
