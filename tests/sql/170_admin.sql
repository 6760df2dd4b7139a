-- 170_admin: quota_set (create / update, keys by prefix, groups created on
-- first use), quota_adjust, quota_reset, each with its audit row; refused
-- inputs; the quota_list view.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-07-20 08:30:00+00';

select tollgate.key_create(sha256('ad-a'::bytea), 'tg-ADkeyA01', 'a', 'ad-user', 'ad-group', null, 'test') as ka
\gset
create temp view audits as
    select actor, action, subject,
           before - array['id', 'subject_id', 'created_at'] as before,
           after - array['id', 'subject_id', 'created_at'] as after
      from tollgate.audit_log where subject ~ '^(group:ad-|user:ad-|key:tg-ADkeyA01 )' order by id;

-- Create: a group quota of $500.00 a month (tollgatectl passes micros).
-- The group did not exist: it is created.
select count(*) as group_before from tollgate.groups where id = 'ad-eng';
select tollgate.quota_set('group', 'ad-eng', 'usd', 'month', 500000000, 'admin@example.com') as q1
\gset
select count(*) as group_after from tollgate.groups where id = 'ad-eng';
select subject_kind, subject_id, metric, "window", limit_value, used, reserved, window_start,
       warn_pct, alerted_pct, created_at, updated_at
  from tollgate.quotas where id = :q1;
select * from audits;

-- Update: same (kind, subject, metric, window) -> same row; warn_pct kept
-- when not given, changed when given.
select tollgate.quota_set('group', 'ad-eng', 'usd', 'month', 750000000, 'admin@example.com') = :q1 as same_id;
select tollgate.quota_set('group', 'ad-eng', 'usd', 'month', 750000000, 'admin@example.com', 90) = :q1 as same_id;
select limit_value, warn_pct from tollgate.quotas where id = :q1;
select * from audits;

-- Keys by display prefix; stored as the key id. Users are not created (a
-- user needs its group), only their id is checked.
select tollgate.quota_set('key', 'tg-ADkeyA01', 'requests', 'minute', 10, 'admin@example.com', 50) as q2
\gset
select subject_id = :'ka' as subject_is_key_id, metric, "window", limit_value, warn_pct
  from tollgate.quotas where id = :q2;
select tollgate.quota_set('user', 'ad-nobody', 'tokens', 'day', 200000, null) as q3
\gset
select count(*) as user_created from tollgate.users where id = 'ad-nobody';
select actor = session_user as null_actor_is_session_user
  from tollgate.audit_log where subject = 'user:ad-nobody tokens/day';

-- Refused, nothing written.
select tollgate.quota_set('key', 'tg-NOSUCH00', 'usd', 'month', 1, 'admin');
select tollgate.quota_set('team', 'ad-eng', 'usd', 'month', 1, 'admin');
select tollgate.quota_set('group', 'bad group', 'usd', 'month', 1, 'admin');
select tollgate.quota_set('user', null, 'usd', 'month', 1, 'admin');
select tollgate.quota_set('group', 'ad-eng', 'dollars', 'month', 1, 'admin');
select tollgate.quota_set('group', 'ad-eng', 'usd', 'week', 1, 'admin');
select tollgate.quota_set('group', 'ad-eng', 'usd', 'day', -1, 'admin');
select tollgate.quota_set('group', 'ad-eng', 'usd', 'day', null, 'admin');
select tollgate.quota_set('group', 'ad-eng', 'usd', 'day', 1, 'admin', 0);
select tollgate.quota_set('group', 'ad-eng', 'usd', 'day', 1, 'admin', 101);
select count(*) as quotas from tollgate.quotas
 where (subject_kind, subject_id) in (('group', 'ad-eng'), ('key', :'ka'), ('user', 'ad-nobody'));
select count(*) as audits from tollgate.audit_log where subject ~ '^(group:ad-|user:ad-|key:tg-ADkeyA01 )';

-- Adjust: limit_value += by; never below 0; audited.
select tollgate.quota_adjust('group', 'ad-eng', 'usd', 'month', 250000000, 'admin@example.com') = :q1 as adjusted;
select tollgate.quota_adjust('key', 'tg-ADkeyA01', 'requests', 'minute', -4, 'admin@example.com') = :q2 as adjusted;
select tollgate.quota_adjust('key', 'tg-ADkeyA01', 'requests', 'minute', -100, 'admin@example.com') = :q2 as adjusted;
select id = :q1 as is_q1, limit_value from tollgate.quotas where id in (:q1, :q2) order by id;
select tollgate.quota_adjust('group', 'ad-eng', 'usd', 'day', 1, 'admin');
select tollgate.quota_adjust('key', 'tg-NOSUCH00', 'usd', 'day', 1, 'admin');
select * from audits where action = 'quota.adjust';

-- Reset: used and alerted_pct to 0, window_start to the current window;
-- reserved is kept (in-flight requests still hold it).
update tollgate.quotas
   set used = 123456789, reserved = 1000, alerted_pct = 80, window_start = '2026-06-01 00:00:00+00'
 where id = :q1;
select tollgate.quota_reset('group', 'ad-eng', 'usd', 'month', 'admin@example.com') = :q1 as reset;
select used, reserved, alerted_pct, window_start, updated_at from tollgate.quotas where id = :q1;
select * from audits where action = 'quota.reset';
select tollgate.quota_reset('user', 'ad-user', 'usd', 'month', 'admin');

-- quota_list: its columns; subject is the prefix for keys; remaining never
-- below 0; a passed window shows rolled.
select column_name, data_type
  from information_schema.columns
 where table_schema = 'tollgate' and table_name = 'quota_list'
 order by ordinal_position;
update tollgate.quotas set used = 9, reserved = 3 where id = :q2;
select subject_kind, subject, metric, "window", limit_value, used, reserved, remaining,
       window_start, window_end, warn_pct
  from tollgate.quota_list where id in (:q1, :q2, :q3) order by id;
set local tollgate.now = '2026-07-20 08:31:00+00';
select subject, used, reserved, remaining, window_start, window_end
  from tollgate.quota_list where id = :q2;

rollback;
