-- 230_partitions: monthly usage partitions — created ahead by the clock,
-- rows parked in the default partition moved into their month when it is
-- created, retention detaching old months, settle idempotent by request id
-- across partitions.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

create temp view months as
    select c.relname
      from pg_inherits i join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'tollgate.usage'::regclass and c.relname <> 'usage_default'
       and c.relname >= 'usage_y2030m01'
     order by 1;

-- A row in a month without a partition lands in the default partition.
select tollgate.settle('00000000-0000-4000-8000-000000230001', '2030-02-10 08:00+00', null,
                       'pt-user', 'pt-group', 'anthropic', 'claude-haiku-4-5',
                       10, 10, 0, 0, 200, 1, 1, false, 'ok') is not null as settled;
select tableoid::regclass as partition from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000230001';

-- The clock reaches January 2030: January to April are created, and the
-- February row moves into its month.
set local tollgate.now = '2030-01-15 00:00+00';
select tollgate.usage_partitions_ensure(3) as created;
select * from months;
select tableoid::regclass as partition from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000230001';
select tollgate.usage_partitions_ensure(3) as created_again;

-- A replay of that request (same ts, or a ts a few seconds off) stores nothing more.
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000230001',
                       '2030-02-10 08:00:07+00', null, 'pt-user', 'pt-group', 'anthropic',
                       'claude-haiku-4-5', 999, 999, 0, 0, 200, 1, 1, false, 'ok');
select count(*) as rows_for_request from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000230001';

-- The worker's sessions (tollgate.fixed_ts = on) rely on the fixed ts alone:
-- the same (request_id, ts) stores nothing more; the day-wide lookup is skipped.
set local tollgate.fixed_ts = on;
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000230001',
                       '2030-02-10 08:00+00', null, 'pt-user', 'pt-group', 'anthropic',
                       'claude-haiku-4-5', 999, 999, 0, 0, 200, 1, 1, false, 'ok');
select count(*) as rows_for_request from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000230001';
reset tollgate.fixed_ts;

-- Retention: keep this month and 1 before; in April 2030 January and
-- February go (detached, their rows kept in the detached tables).
insert into tollgate.settings (key, value) values ('usage_retention_months', '1')
on conflict (key) do update set value = excluded.value;
insert into tollgate.settings (key, value) values ('usage_retention_months', 'ever');
set local tollgate.now = '2030-04-02 00:00+00';
select d as detached from tollgate.usage_partitions_detach() d where d >= 'usage_y2030m01';
select * from months;
select count(*) as still_in_usage from tollgate.usage
 where request_id = '00000000-0000-4000-8000-000000230001';
select count(*) as kept_in_detached_table from tollgate.usage_y2030m02;

rollback;
