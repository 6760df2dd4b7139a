-- 130_reserve: reserve's statuses (unknown_key, revoked, expired,
-- model_not_allowed, quota_exceeded, ok), the denial naming the first
-- denying row (subject, metric, window, limit, retry_after), all-or-nothing,
-- the reservation row, the header and warning columns, repeated calls.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-03-31 23:00:00+00';

select tollgate.key_create(sha256('rs-a'::bytea),       'tg-RSkeyA01', 'a',       'rs-alice', 'rs-eng', null, 'test') as ka,
       tollgate.key_create(sha256('rs-b'::bytea),       'tg-RSkeyB01', 'b',       'rs-bob',   'rs-eng', 'admin', 'test') as kb,
       tollgate.key_create(sha256('rs-revoked'::bytea), 'tg-RSrevo01', 'revoked', 'rs-erin',  'rs-free', null, 'test') as krev,
       tollgate.key_create(sha256('rs-expired'::bytea), 'tg-RSexpi01', 'expired', 'rs-erin',  'rs-free', null, 'test') as kexp,
       tollgate.key_create(sha256('rs-models'::bytea),  'tg-RSmodl01', 'models',  'rs-carol', 'rs-free', null, 'test') as kmod,
       tollgate.key_create(sha256('rs-free'::bytea),    'tg-RSfree01', 'free',    'rs-dave',  'rs-free', null, 'test') as kfree
\gset
select tollgate.key_revoke('tg-RSrevo01', 'test');
update tollgate.api_keys set expires_at = '2026-03-31 23:00:00+00' where id = :kexp;
update tollgate.api_keys set allowed_models = '{claude-haiku-4-5,gpt-4o}' where id = :kmod;

-- Quotas, created in this order (so ids ascend): group usd/month $0.10,
-- user tokens/minute 5000, key A requests/day 3, key B requests/day 1.
select tollgate.quota_set('group', 'rs-eng',      'usd',      'month',  100000, 'test') as q1,
       tollgate.quota_set('user',  'rs-alice',    'tokens',   'minute', 5000,   'test') as q2,
       tollgate.quota_set('key',   'tg-RSkeyA01', 'requests', 'day',    3,      'test') as q3,
       tollgate.quota_set('key',   'tg-RSkeyB01', 'requests', 'day',    1,      'test') as q4
\gset
create temp view shown as
    select subject_kind, subject, metric, "window", limit_value, used, reserved, remaining
      from tollgate.quota_list
     where subject in ('rs-eng', 'rs-alice', 'tg-RSkeyA01', 'tg-RSkeyB01')
     order by id;

-- Unknown key: every other column null. (Keys of rs-free have no quota.)
select * from tollgate.reserve('00000000-0000-4000-8000-0000000a0001', sha256('rs-nope'::bytea),
                               'claude-sonnet-4-5', 1000, 1000, 'h:1', 60000);

-- Revoked, expired (expires_at = clock: expired), allowed_models: the
-- identity columns are filled, nothing else.
select status, api_key_id = :krev as id_ok, key_prefix, user_id, group_id, role,
       denied_subject, retry_after_s, tokens_limit, requests_limit, warn_used_pct
  from tollgate.reserve('00000000-0000-4000-8000-0000000a0002', sha256('rs-revoked'::bytea),
                        'claude-sonnet-4-5', 1000, 1000, 'h:1', 60000);
select status, api_key_id = :kexp as id_ok, key_prefix, user_id, group_id, role, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-0000000a0003', sha256('rs-expired'::bytea),
                        'claude-sonnet-4-5', 1000, 1000, 'h:1', 60000);
-- One microsecond earlier it was still valid.
set local tollgate.now = '2026-03-31 22:59:59.999999+00';
select status from tollgate.reserve('00000000-0000-4000-8000-0000000a0004', sha256('rs-expired'::bytea),
                                    'claude-sonnet-4-5', 1, 1, 'h:1', 60000);
set local tollgate.now = '2026-03-31 23:00:00+00';
-- allowed_models: exact names (or globs), case-sensitive; a null model is not
-- checked (identify's contract: endpoints without a model).
select m as model, r.status, r.key_prefix
  from unnest(array['claude-sonnet-4-5', 'claude-haiku-4-5', 'gpt-4o', 'CLAUDE-HAIKU-4-5', null]) with ordinality as v(m, i),
       lateral tollgate.reserve(('00000000-0000-4000-8000-0000000b000' || i)::uuid, sha256('rs-models'::bytea),
                                m, 10, 10, 'h:1', 60000) as r
 order by i;

-- A key to which no quota applies: ok, no header columns, no reservation.
select status, role, denied_subject, tokens_limit, tokens_remaining, requests_limit, warn_used_pct
  from tollgate.reserve('00000000-0000-4000-8000-0000000a0005', sha256('rs-free'::bytea),
                        'claude-sonnet-4-5', 1000, 1000, 'h:1', 60000);
select count(*) as reservations from tollgate.reservations
 where request_id::text like '00000000-0000-4000-8000-0000000%';

-- R1: 1000 in + 1000 out of sonnet = 2000 tokens, 18750 micros, 1 request.
select status, api_key_id = :ka as key_ok, key_prefix, user_id, group_id, role,
       denied_subject, denied_metric, denied_window, denied_limit, retry_after_s,
       tokens_limit, tokens_remaining, tokens_reset_s,
       requests_limit, requests_remaining, requests_reset_s,
       warn_used_pct, warn_limit, warn_metric, warn_reset
  from tollgate.reserve('00000000-0000-4000-8000-0000000c0001', sha256('rs-a'::bytea),
                        'claude-sonnet-4-5', 1000, 1000, 'host-a:101', 90000) \gx
select * from shown;
select request_id, created_at, expires_at, holder, api_key_id = :ka as key_ok, user_id, group_id,
       tokens, usd_micros, quota_ids = array[:q1, :q2, :q3]::bigint[] as quota_ids_ok
  from tollgate.reservations where request_id = '00000000-0000-4000-8000-0000000c0001';

-- R2: 1000 in + 2000 out = 3000 tokens brings the user's minute to exactly
-- its limit (allowed: only "more than the limit" denies); 33750 micros.
-- The tokens quota is now 100% used: the warning columns name it.
select status, api_key_id = :ka as key_ok, key_prefix, user_id, group_id, role,
       denied_subject, denied_metric, denied_window, denied_limit, retry_after_s,
       tokens_limit, tokens_remaining, tokens_reset_s,
       requests_limit, requests_remaining, requests_reset_s,
       warn_used_pct, warn_limit, warn_metric, warn_reset
  from tollgate.reserve('00000000-0000-4000-8000-0000000c0002', sha256('rs-a'::bytea),
                        'claude-sonnet-4-5', 1000, 2000, 'host-a:101', 90000) \gx
select * from shown;

-- R3: 2 more tokens: the group (usd) would admit it but the user's minute
-- quota denies; retry in 60 s. All or nothing: nothing is reserved anywhere.
-- The headers show the state without this request.
select status, api_key_id = :ka as key_ok, key_prefix, user_id, group_id, role,
       denied_subject, denied_metric, denied_window, denied_limit, retry_after_s,
       tokens_limit, tokens_remaining, tokens_reset_s,
       requests_limit, requests_remaining, requests_reset_s,
       warn_used_pct, warn_limit, warn_metric, warn_reset
  from tollgate.reserve('00000000-0000-4000-8000-0000000c0003', sha256('rs-a'::bytea),
                        'claude-sonnet-4-5', 1, 1, 'host-a:101', 90000) \gx
select * from shown;
select count(*) as reservation_rows from tollgate.reservations
 where request_id = '00000000-0000-4000-8000-0000000c0003';

-- R4: 10000 output tokens: both the group's usd (52500 + 153750 > 100000)
-- and the user's tokens would deny; the first in id order is named: the
-- group, retry at the end of the month (1 h away).
select status, denied_subject, denied_metric, denied_window, denied_limit, retry_after_s
  from tollgate.reserve('00000000-0000-4000-8000-0000000c0004', sha256('rs-a'::bytea),
                        'claude-sonnet-4-5', 1000, 10000, 'host-a:101', 90000);

-- All or nothing: key B's request fits its group but its key quota
-- (requests/day 1) denies the second one; the group's row is untouched.
select status, denied_subject, requests_limit, requests_remaining, requests_reset_s
  from tollgate.reserve('00000000-0000-4000-8000-0000000c0005', sha256('rs-b'::bytea),
                        'claude-sonnet-4-5', 10, 10, 'host-b:7', 90000);
select * from shown;
select status, denied_subject, denied_metric, denied_window, denied_limit, retry_after_s,
       requests_limit, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-0000000c0006', sha256('rs-b'::bytea),
                        'claude-sonnet-4-5', 10, 10, 'host-b:7', 90000);
select * from shown;
select request_id, tokens, usd_micros from tollgate.reservations
 where request_id::text like '00000000-0000-4000-8000-0000000c%' order by request_id;

-- A repeated request_id whose reservation is held: 'ok', nothing more
-- reserved (a retried call after a lost reply is safe).
select status, tokens_remaining, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-0000000c0001', sha256('rs-a'::bytea),
                        'claude-sonnet-4-5', 1, 1, 'host-a:101', 90000);
select * from shown;

-- Warning columns: the most-used usd/tokens quota among those at or above
-- their own warn_pct. Group rs-w: usd/total 4000 micros, warn 50; user
-- rs-wu: tokens/hour 1000, warn 90.
select tollgate.key_create(sha256('rs-w'::bytea), 'tg-RSwarn01', 'w', 'rs-wu', 'rs-w', null, 'test') as kw
\gset
select tollgate.quota_set('group', 'rs-w',  'usd',    'total', 4000,  'test', 50) as qw1,
       tollgate.quota_set('user',  'rs-wu', 'tokens', 'hour',  1000,  'test', 90) as qw2
\gset
-- 200 + 200 tokens of gpt-4o-mini: 40% of tokens, 150 micros (3%): below
-- both thresholds: no warning.
select status, tokens_limit, tokens_remaining, tokens_reset_s, warn_used_pct, warn_metric
  from tollgate.reserve('00000000-0000-4000-8000-0000000d0001', sha256('rs-w'::bytea),
                        'gpt-4o-mini', 200, 200, 'h:1', 60000);
-- +450 tokens of sonnet: tokens at 85% (under its 90); usd 150 + 2250 =
-- 2400 (60%, over its 50): the usd quota is named; window total: reset
-- 'infinity'.
select status, tokens_remaining, warn_used_pct, warn_limit, warn_metric, warn_reset
  from tollgate.reserve('00000000-0000-4000-8000-0000000d0002', sha256('rs-w'::bytea),
                        'claude-sonnet-4-5', 400, 50, 'h:1', 60000);
-- +60 tokens of gpt-4o-mini: tokens at 91% (>= 90), above usd's 60%
-- (2423 micros): tokens is named, reset at the end of the hour.
select status, tokens_remaining, tokens_reset_s, warn_used_pct, warn_limit, warn_metric, warn_reset
  from tollgate.reserve('00000000-0000-4000-8000-0000000d0003', sha256('rs-w'::bytea),
                        'gpt-4o-mini', 30, 30, 'h:1', 60000);
select subject, metric, "window", limit_value, used, reserved, remaining
  from tollgate.quota_list where subject in ('rs-w', 'rs-wu') order by id;

-- Null ttl: 10 minutes; null holder: ''.
select status from tollgate.reserve('00000000-0000-4000-8000-0000000d0004', sha256('rs-w'::bytea),
                                    'gpt-4o-mini', 1, 1, null, null);
select expires_at, holder = '' as holder_empty from tollgate.reservations
 where request_id = '00000000-0000-4000-8000-0000000d0004';

-- Negative counts are refused.
select status from tollgate.reserve('00000000-0000-4000-8000-0000000d0005', sha256('rs-w'::bytea),
                                    'gpt-4o-mini', -1, 1, 'h:1', 60000);

rollback;
