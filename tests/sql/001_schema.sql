-- 001_schema: the objects the C code relies on exist with the agreed
-- signatures; no floating point anywhere; usage has no foreign keys.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

-- Tables (monthly usage partitions, named after the current month, apart).
select c.relname, c.relkind
  from pg_class c
 where c.relnamespace = 'tollgate'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
   and c.relname !~ '^(usage|mcp_calls)_y[0-9]{4}m[0-9]{2}$'
 order by c.relname;
-- usage is partitioned by month: this month and three ahead exist.
select count(*) as months_ready
  from pg_inherits i join pg_class c on c.oid = i.inhrelid
 where i.inhparent = 'tollgate.usage'::regclass
   and c.relname in (select tollgate.usage_partition_name((date_trunc('month', now()) + k * interval '1 month')::date)
                       from generate_series(0, 3) k);

-- Function signatures (the interface the C code calls).
select p.oid::regprocedure as function, pg_get_function_result(p.oid) as returns,
       p.provolatile as volatility
  from pg_proc p
 where p.pronamespace = 'tollgate'::regnamespace
 order by p.proname, p.oid::regprocedure::text;

-- Money and token columns: no float/double/real anywhere.
select c.table_name, c.column_name, c.data_type
  from information_schema.columns c
 where c.table_schema = 'tollgate'
   and c.data_type in ('real', 'double precision');
select p.proname
  from pg_proc p
 where p.pronamespace = 'tollgate'::regnamespace
   and (pg_get_function_arguments(p.oid) ~ '(real|double precision)'
        or pg_get_function_result(p.oid) ~ '(real|double precision)');

-- Column types of usage, prices and api_keys.
select c.table_name, c.column_name, c.data_type, c.is_nullable
  from information_schema.columns c
 where c.table_schema = 'tollgate' and c.table_name in ('usage', 'prices', 'api_keys')
 order by c.table_name, c.ordinal_position;

-- usage never depends on other rows.
select count(*) as usage_foreign_keys
  from pg_constraint
 where conrelid = 'tollgate.usage'::regclass and contype = 'f';

-- Indexes on usage.
select indexname, indexdef
  from pg_indexes
 where schemaname = 'tollgate' and tablename = 'usage'
 order by indexname;

-- identify finds a key by one unique-index lookup on its current secret's
-- hash, then (only if none) one on its previous secret's: no sequential scan
-- of api_keys, as the generic plans identify uses.
set local enable_seqscan = off;
set local plan_cache_mode = force_generic_plan;
prepare by_hash(bytea) as select k.id from tollgate.api_keys k where k.key_hash = $1;
explain (costs off) execute by_hash('\x01'::bytea);
prepare by_previous_hash(bytea) as select k.id from tollgate.api_keys k where k.previous_key_hash = $1;
explain (costs off) execute by_previous_hash('\x01'::bytea);
deallocate by_hash;
deallocate by_previous_hash;

rollback;
