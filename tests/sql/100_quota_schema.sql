-- 100_quota_schema: the objects of sql/003_quotas.sql with the signatures
-- the C code calls; constraints on the quota tables; reserve and settle
-- reach every table through an index (no sequential scan when the planner
-- is told to avoid them).
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

-- Tables and views of 003.
select c.relname, c.relkind
  from pg_class c
 where c.relnamespace = 'tollgate'::regnamespace and c.relkind in ('r', 'p', 'v')
   and c.relname in ('settings', 'quotas', 'reservations', 'quota_alerts', 'rate_buckets', 'quota_list')
 order by c.relname;

-- Function signatures (the interface the C code and tollgatectl call).
select p.oid::regprocedure as function, pg_get_function_result(p.oid) as returns,
       p.provolatile as volatility
  from pg_proc p
 where p.pronamespace = 'tollgate'::regnamespace
   and p.proname in ('clock', 'quota_timezone', 'window_start', 'window_end', 'window_start_tz',
                     'window_end_tz', 'price_upper_micros', 'reserve', 'settle',
                     'sweep_reservations', 'reservation_holders', 'release', 'quota_set', 'quota_adjust',
                     'quota_reset', 'quota_rollover', 'quota_subject', 'quota_subject_id',
                     'quota_change')
 order by p.proname;
-- Defaults: reserve's p_buckets, sweep's p_dead_holders, quota_set's p_warn_pct.
select p.proname, pg_get_function_arguments(p.oid) ~ 'DEFAULT NULL' as has_null_default
  from pg_proc p
 where p.pronamespace = 'tollgate'::regnamespace
   and p.proname in ('reserve', 'sweep_reservations', 'quota_set')
 order by p.proname;
-- reserve's parameters after p_ttl_ms (the identity ones added by 004)
-- all have defaults: a call with 003's parameters only is still valid.
select regexp_replace(pg_get_function_arguments('tollgate.reserve'::regproc), '^.*p_ttl_ms integer, ', '')
       as reserve_optional_parameters;
-- settle takes exactly record_usage's parameters.
select pg_get_function_arguments('tollgate.settle'::regproc) = pg_get_function_arguments('tollgate.record_usage'::regproc)
       as same_parameters;

-- Columns.
select c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default
  from information_schema.columns c
 where c.table_schema = 'tollgate'
   and c.table_name in ('settings', 'quotas', 'reservations', 'quota_alerts', 'rate_buckets')
 order by c.table_name, c.ordinal_position;

-- Indexes and unique keys.
select tablename, indexname, indexdef
  from pg_indexes
 where schemaname = 'tollgate'
   and tablename in ('settings', 'quotas', 'reservations', 'quota_alerts', 'rate_buckets')
 order by tablename, indexname;

-- CHECK constraints (of the table and of its domains) refuse bad rows
-- written directly.
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start)
values ('team', 'x', 'usd', 'day', 1, now());
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start)
values ('group', 'x', 'euros', 'day', 1, now());
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start)
values ('group', 'x', 'usd', 'fortnight', 1, now());
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start)
values ('group', 'x', 'usd', 'day', -1, now());
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start, reserved)
values ('group', 'x', 'usd', 'day', 1, now(), -1);
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start, used)
values ('group', 'x', 'usd', 'day', 1, now(), -1);
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start, warn_pct)
values ('group', 'x', 'usd', 'day', 1, now(), 0);
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start, alerted_pct)
values ('group', 'x', 'usd', 'day', 1, now(), 101);
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start)
values ('group', 'x', 'usd', 'day', 1, null);
-- One quota per (kind, subject, metric, window).
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start)
values ('group', 'sc-x', 'usd', 'day', 1, now()), ('group', 'sc-x', 'usd', 'day', 2, now());
select count(*) as quotas from tollgate.quotas where subject_id in ('x', 'sc-x');

-- Index use. With some 5000 quota rows and sequential scans disabled for
-- the small tables, one reserve and one settle (planned afresh in this
-- session) scan no table sequentially.
insert into tollgate.quotas (subject_kind, subject_id, metric, "window", limit_value, window_start)
select k, 'sc-' || i, m, 'day', 1000, '2026-01-01'
  from generate_series(1, 834) as i,
       unnest(array['user', 'group']) as k, unnest(array['usd', 'tokens', 'requests']) as m;
select tollgate.key_create(sha256('sc-key'::bytea), 'tg-SCkey001', 'n', 'sc-user', 'sc-group', null, 'test') as k
\gset
select tollgate.quota_set('group', 'sc-group', 'usd', 'month', 100000, 'test') > 0 as q1,
       tollgate.quota_set('user', 'sc-user', 'tokens', 'day', 100000, 'test') > 0 as q2,
       tollgate.quota_set('key', 'tg-SCkey001', 'requests', 'minute', 10, 'test') > 0 as q3;
set local enable_seqscan = off;
create temp table scans_before as
    select relname, seq_scan, idx_scan from pg_stat_xact_user_tables where schemaname = 'tollgate';
select status from tollgate.reserve('00000000-0000-4000-8000-0000000f0001', sha256('sc-key'::bytea),
                                    'claude-sonnet-4-5', 1000, 1000, 'h:1', 60000);
select cost_micros from tollgate.settle('00000000-0000-4000-8000-0000000f0001', null,
                                        :k, 'sc-user', 'sc-group', 'anthropic', 'claude-sonnet-4-5',
                                        800, 500, 0, 0, 200, 1, 1, false, 'ok');
select case when s.relname ~ '^usage_' then 'usage (its partitions)' else s.relname end as relname,
       sum(s.seq_scan - coalesce(b.seq_scan, 0)) as seq_scans,
       bool_or(s.idx_scan - coalesce(b.idx_scan, 0) > 0) as used_index
  from pg_stat_xact_user_tables s left join scans_before b using (relname)
 where s.schemaname = 'tollgate'
   and (s.relname in ('api_keys', 'prices', 'settings', 'quotas', 'reservations')
        or s.relname ~ '^usage_(y[0-9]{4}m[0-9]{2}|default)$')
 group by 1
 order by 1;
-- The statements reserve and settle lock the quota rows with, as the
-- generic plans they use (both run with plan_cache_mode =
-- force_generic_plan): lookups on the unique key (and, for settle, the
-- reservation's ids on the primary key), rows locked in id order.
set local plan_cache_mode = force_generic_plan;
prepare reserve_lock(text, text, text) as
select q.id from tollgate.quotas q
 where (q.subject_kind, q.subject_id) in (('key', $1), ('user', $2), ('group', $3))
 order by q.id
   for update;
explain (costs off) execute reserve_lock('1', 'u', 'g');
prepare settle_lock(text, text, text, bigint[]) as
select q.id from tollgate.quotas q
 where (q.subject_kind, q.subject_id) in (('key', $1), ('user', $2), ('group', $3))
    or q.id = any ($4)
 order by q.id
   for update;
explain (costs off) execute settle_lock('1', 'u', 'g', '{1,2,3}');
deallocate reserve_lock;
deallocate settle_lock;
select proname, proconfig from pg_proc
 where pronamespace = 'tollgate'::regnamespace and proname in ('reserve', 'settle') order by proname;

rollback;
