-- 260_reserve_fast: sql/011_reserve_fast.sql — reserve's fast path (no
-- quota row and no bucket rule for the identity: ok with the identity, no
-- reservation, nothing written), the quota path still taken
-- whenever a row of the identity exists (key, user, group; the attributed
-- end user's and team's), denials writing nothing, and what keeps it cheap:
-- no SQL function left un-inlined on the way.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-05-10 08:00:00+00';

-- What this transaction wrote to tollgate's tables so far (inserted,
-- updated or deleted rows).
create temp view writes as
    select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) as n
      from pg_stat_xact_user_tables where schemaname = 'tollgate';

select tollgate.key_create(sha256('rf-free'::bytea),  'tg-RFfree01', 'free',  'rf-ann',  'rf-open',  null, 'test') as k_free,
       tollgate.key_create(sha256('rf-quota'::bytea), 'tg-RFquot01', 'quota', 'rf-bob',  'rf-open',  null, 'test') as k_quota,
       tollgate.key_create(sha256('rf-user'::bytea),  'tg-RFuser01', 'user',  'rf-cat',  'rf-open',  null, 'test') as k_user,
       tollgate.key_create(sha256('rf-grp'::bytea),   'tg-RFgrp001', 'grp',   'rf-dan',  'rf-teamq', null, 'test') as k_grp,
       tollgate.key_create(sha256('rf-attr'::bytea),  'tg-RFattr01', 'attr',  'rf-svc',  'rf-open',  null, 'test') as k_attr
\gset
update tollgate.api_keys set trusted_attribution = true where id = :k_attr;
insert into tollgate.users (id, group_id) values ('rf-jwt', 'rf-open');
-- One quota row on each kind of subject: a key's, a user's, a group's, and
-- an end user's that only attribution names.
select tollgate.quota_set('key',   'tg-RFquot01', 'requests', 'day',   100,     'test') as q_key,
       tollgate.quota_set('user',  'rf-cat',      'tokens',   'hour',  1000000, 'test') as q_user,
       tollgate.quota_set('group', 'rf-teamq',    'usd',      'month', 1000000, 'test') as q_group,
       tollgate.quota_set('user',  'rf-end',      'requests', 'day',   100,     'test') as q_end
\gset
select n as w0 from writes \gset

-- The fast path: a key none of whose subjects has a quota row, without
-- bucket rules (null or an empty list): ok with the identity, no header
-- column, nothing written.
select status, api_key_id = :k_free as key_ok, key_prefix, user_id, group_id, role,
       denied_subject, tokens_limit, requests_limit, warn_used_pct, attribution
  from tollgate.reserve('00000000-0000-4000-8000-00000f000001', sha256('rf-free'::bytea),
                        'claude-haiku-4-5', 1000, 1000, 'h:1', 60000);
select status, key_prefix
  from tollgate.reserve('00000000-0000-4000-8000-00000f000002', sha256('rf-free'::bytea),
                        'claude-haiku-4-5', 1000, 1000, 'h:1', 60000, '[]');
-- ... a JWT principal the same way.
select status, api_key_id, user_id, group_id, role
  from tollgate.reserve('00000000-0000-4000-8000-00000f000003', null, 'claude-haiku-4-5',
                        1000, 1000, 'h:1', 60000, null, 'rf-jwt', null, null, false);
-- ... and bucket rules none of which applies to this identity: nothing written either.
select status
  from tollgate.reserve('00000000-0000-4000-8000-00000f000004', sha256('rf-free'::bytea),
                        'claude-haiku-4-5', 1000, 1000, 'h:1', 60000,
                        '[{"bucket": "only-other", "per": "key", "match_group": "rf-other",
                           "max_tokens": 5, "tokens_per_fill": 1, "fill_interval_ms": 1000}]');
select (select n from writes) - :w0 as rows_written,
       (select count(*) from tollgate.reservations
         where request_id::text like '00000000-0000-4000-8000-00000f%') as reservations,
       (select count(*) from tollgate.rate_buckets where bucket like 'only-other%') as buckets;
-- A quota row of the key, of the user, or of the group: the quota path,
-- a reservation on exactly that row.
create temp table quota_path as
    select k.name, k.rid, k.qid, r.status, r.requests_limit, r.tokens_limit
      from (values ('key',   'rf-quota', '00000000-0000-4000-8000-00000f000011'::uuid, :q_key::bigint),
                   ('user',  'rf-user',  '00000000-0000-4000-8000-00000f000012', :q_user),
                   ('group', 'rf-grp',   '00000000-0000-4000-8000-00000f000013', :q_group))
           as k(name, secret, rid, qid),
           lateral tollgate.reserve(k.rid, sha256(convert_to(k.secret, 'UTF8')), 'claude-haiku-4-5',
                                    1000, 1000, 'h:1', 60000) as r;
select p.name, p.status, p.requests_limit, p.tokens_limit, rv.quota_ids = array[p.qid] as reserved_that_row
  from quota_path p left join tollgate.reservations rv on rv.request_id = p.rid
 order by p.rid;
-- An attributed end user's row applies (as the key's own user's and
-- group's would: none here; see 310): the quota path again.
select status, user_id, group_id, attribution, requests_limit, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-00000f000014', sha256('rf-attr'::bytea),
                        'claude-haiku-4-5', 1000, 1000, 'h:1', 60000, null, null, null, null,
                        false, 'rf-end', null);
select quota_ids = array[:q_end]::bigint[] as reserved_that_row, user_id, group_id
  from tollgate.reservations where request_id = '00000000-0000-4000-8000-00000f000014';
-- ... and without attribution the same key takes the fast path.
select n as w1 from writes \gset
select status, user_id, attribution, requests_limit
  from tollgate.reserve('00000000-0000-4000-8000-00000f000015', sha256('rf-attr'::bytea),
                        'claude-haiku-4-5', 1000, 1000, 'h:1', 60000);
select (select n from writes) - :w1 as rows_written;

-- A denial writes nothing: quota_exceeded (the key's daily requests set to
-- what is already used), and every identity refusal.
update tollgate.quotas set limit_value = 1 where id = :q_key;
select n as w2 from writes \gset
select status, denied_subject, denied_metric, denied_window, denied_limit, retry_after_s,
       requests_limit, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-00000f000021', sha256('rf-quota'::bytea),
                        'claude-haiku-4-5', 1000, 1000, 'h:1', 60000);
select status
  from tollgate.reserve('00000000-0000-4000-8000-00000f000022', sha256('rf-nokey'::bytea),
                        'claude-haiku-4-5', 1000, 1000, 'h:1', 60000);
select (select n from writes) - :w2 as rows_written,
       (select count(*) from tollgate.reservations
         where request_id in ('00000000-0000-4000-8000-00000f000021',
                              '00000000-0000-4000-8000-00000f000022')) as reservations;
-- The retried call of an admitted request is still ok (its reservation is
-- held), even though the row is now full; nothing more is taken.
select status, denied_subject, requests_limit, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-00000f000011', sha256('rf-quota'::bytea),
                        'claude-haiku-4-5', 1000, 1000, 'h:1', 60000);
select used, reserved from tollgate.quotas where id = :q_key;

-- Negative counts are refused before anything, web searches too.
select status from tollgate.reserve('00000000-0000-4000-8000-00000f000031', sha256('rf-free'::bytea),
                                    'claude-haiku-4-5', 10, 10, 'h:1', 60000, null, null, null,
                                    null, false, null, null, '/v1/messages', -1);
-- (for an unknown key the identity answers first, as before)
select status from tollgate.reserve('00000000-0000-4000-8000-00000f000032', sha256('rf-nokey'::bytea),
                                    'claude-haiku-4-5', -10, 10, 'h:1', 60000);

-- Cheap by construction: every SQL function on reserve's way is inlined
-- (a function left as a call is parsed and planned again at each call);
-- track_functions counts the calls of those that are not.
set local track_functions = 'all';
select pg_stat_clear_snapshot();
create temp table calls_before as
    select p.proname, coalesce(pg_stat_get_xact_function_calls(p.oid), 0) as calls
      from pg_proc p where p.pronamespace = 'tollgate'::regnamespace 
       and p.prolang = (select l.oid from pg_language l where l.lanname = 'sql');
select count(*) > 0 as has_sql_functions from calls_before;
select pg_stat_clear_snapshot();
select r.status
  from (values ('rf-free', '00000000-0000-4000-8000-00000f000041'::uuid),
               ('rf-user', '00000000-0000-4000-8000-00000f000042'),
               ('rf-grp',  '00000000-0000-4000-8000-00000f000043')) as k(secret, rid),
       lateral tollgate.reserve(k.rid, sha256(convert_to(k.secret, 'UTF8')), 'claude-haiku-4-5',
                                10, 10, 'h:1', 60000) as r;
select pg_stat_clear_snapshot();
select b.proname as called_not_inlined
  from calls_before b
  join pg_proc p on p.proname = b.proname and p.pronamespace = 'tollgate'::regnamespace
 where coalesce(pg_stat_get_xact_function_calls(p.oid), 0) > b.calls
 order by 1;

rollback;
