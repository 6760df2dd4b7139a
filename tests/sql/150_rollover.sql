-- 150_rollover: windows roll at their next use (reserve or settle) with an
-- injected clock, keeping reserved; quota_rollover rolls every passed
-- window (the monthly cron on the 1st), in UTC and in another zone, with
-- one audit row per rolled quota.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-01-31 23:59:30+00';

-- quota_rollover acts on every quota in the database: set any others
-- aside for this test (the whole test is rolled back).
delete from tollgate.quotas;

select tollgate.key_create(sha256('ro-a'::bytea), 'tg-ROkeyA01', 'a', 'ro-user', 'ro-group', null, 'test') as ka
\gset
select tollgate.quota_set('key',   'tg-ROkeyA01', 'requests', 'minute', 2,      'test') as q1,
       tollgate.quota_set('user',  'ro-user',     'tokens',   'hour',   10000,  'test') as q2,
       tollgate.quota_set('group', 'ro-group',    'usd',      'month',  100000, 'test') as q3,
       tollgate.quota_set('group', 'ro-group',    'tokens',   'total',  1000000, 'test') as q4
\gset
create temp view shown as
    select subject, metric, "window", limit_value, used, reserved, window_start, window_end
      from tollgate.quota_list where subject in ('tg-ROkeyA01', 'ro-user', 'ro-group') order by id;
-- The stored rows (quota_list shows rolled values; this is the table).
create temp view stored as
    select metric, "window", used, reserved, window_start, alerted_pct
      from tollgate.quotas where id in (:q1, :q2, :q3, :q4) order by id;

-- Two requests fill the minute; the first is settled, the second is still
-- in flight.
select status from tollgate.reserve('00000000-0000-4000-8000-000000070001', sha256('ro-a'::bytea),
                                    'claude-haiku-4-5', 100, 100, 'ro:1', 600000);
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000070001', null,
                                        :ka, 'ro-user', 'ro-group', 'anthropic', 'claude-haiku-4-5',
                                        100, 100, 0, 0, 200, 1, 1, false, 'ok');
select status from tollgate.reserve('00000000-0000-4000-8000-000000070002', sha256('ro-a'::bytea),
                                    'claude-haiku-4-5', 100, 100, 'ro:1', 600000);
select status, denied_subject, denied_metric, denied_window, retry_after_s
  from tollgate.reserve('00000000-0000-4000-8000-000000070003', sha256('ro-a'::bytea),
                        'claude-haiku-4-5', 100, 100, 'ro:1', 600000);
select * from stored;

-- 29 s later the clock is at 23:59:59.999999: still the same minute.
set local tollgate.now = '2026-01-31 23:59:59.999999+00';
select status, retry_after_s
  from tollgate.reserve('00000000-0000-4000-8000-000000070004', sha256('ro-a'::bytea),
                        'claude-haiku-4-5', 100, 100, 'ro:1', 600000);

-- Midnight, February 1st: before anything touches them the stored rows
-- still hold January (quota_list already shows them rolled).
set local tollgate.now = '2026-02-01 00:00:00+00';
select * from stored;
select * from shown;
-- The next reserve rolls minute, hour and month (used = 0, alerted_pct = 0,
-- new window_start) but keeps reserved: the in-flight request still holds
-- its share. total never rolls.
update tollgate.quotas set alerted_pct = 80 where id = :q3;
select status, requests_remaining, requests_reset_s, tokens_limit, tokens_remaining, tokens_reset_s
  from tollgate.reserve('00000000-0000-4000-8000-000000070005', sha256('ro-a'::bytea),
                        'claude-haiku-4-5', 100, 100, 'ro:1', 600000);
select * from stored;
-- The request in flight since January settles into February's counters.
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000070002', null,
                                        :ka, 'ro-user', 'ro-group', 'anthropic', 'claude-haiku-4-5',
                                        50, 50, 0, 0, 200, 1, 1, false, 'ok');
select * from stored;

-- A clock that goes back never un-rolls a window.
set local tollgate.now = '2026-01-31 23:59:59+00';
select status from tollgate.reserve('00000000-0000-4000-8000-000000070006', sha256('ro-a'::bytea),
                                    'claude-haiku-4-5', 1, 1, 'ro:1', 600000);
select * from stored;

-- quota_rollover (the monthly cron): on March 1st at 00:00:10 every passed
-- window is rolled, minute/hour/month alike; total is not. One audit row
-- per rolled quota.
set local tollgate.now = '2026-03-01 00:00:10+00';
select tollgate.quota_rollover('cron') as rolled;
select * from stored;
select actor, action, subject,
       before->>'used' as before_used, after->>'used' as after_used,
       before->>'window_start' as before_start, after->>'window_start' as after_start,
       after->>'reserved' as after_reserved
  from tollgate.audit_log
 where action = 'quota.rollover'
   and subject in ('key:tg-ROkeyA01 requests/minute', 'user:ro-user tokens/hour',
                   'group:ro-group usd/month', 'group:ro-group tokens/total')
 order by id;
-- Run again at once: nothing left to roll, no audit row.
select tollgate.quota_rollover('cron') as rolled_again;
select count(*) as rollover_audits from tollgate.audit_log
 where action = 'quota.rollover' and (subject like 'key:tg-ROkeyA01 %' or subject like '%:ro-%');

-- In another zone the month turns at local midnight: America/New_York is
-- UTC-4 in April, so April starts at 04:00 UTC. The cron runs at 03:59:59
-- UTC: March is not over there, only minute and hour roll; at 04:00 the
-- month rolls too.
update tollgate.settings set value = 'America/New_York' where key = 'timezone';
set local tollgate.now = '2026-03-31 12:00:00+00';
select tollgate.quota_reset('group', 'ro-group', 'usd', 'month', 'test') = :q3 as reset_ok;
select * from stored;
set local tollgate.now = '2026-04-01 03:59:59+00';
select tollgate.quota_rollover('cron') as rolled_before_local_midnight;
select * from stored;
set local tollgate.now = '2026-04-01 04:00:00+00';
select tollgate.quota_rollover('cron') as rolled_at_local_midnight;
select * from stored;
select count(*) as reservations_left, sum(tokens) as tokens_held from tollgate.reservations
 where request_id::text like '00000000-0000-4000-8000-00000007%';

rollback;
