-- 006_usage_partitions.sql — usage at scale (issue 5): tollgate.usage becomes
-- a table partitioned by month of ts, with partitions created ahead and old
-- ones detachable by a retention setting; settle (moved here from 003)
-- inserts into it idempotently by (request_id, ts).
--
-- A partitioned table's unique keys must include its partition key, so the
-- primary key is (request_id, ts). That keeps settling and spool replays
-- idempotent because the worker fixes a request's ts once, when it starts,
-- and the spool stores it with the row. A default partition takes rows whose
-- month has no partition yet (a clock far off, a replay into a detached
-- month): a usage row is never refused for want of a partition, and
-- usage_partitions_ensure moves such rows into their month when it creates it.
--
-- Retention: tollgate.settings 'usage_retention_months' (unset: keep every
-- month). usage_partitions_detach() detaches months older than that; the
-- detached tables (tollgate.usage_yYYYYmMM) keep their rows until an operator
-- archives or drops them. `tollgatectl usage maintain` (cron, daily) runs both.
--
-- An existing unpartitioned usage table (and the views over it) is converted
-- here, rows included, in this migration's transaction.

do $$
declare
    v_from date;
begin
    if (select c.relkind from pg_class c where c.oid = 'tollgate.usage'::regclass) <> 'r' then
        return; -- already partitioned
    end if;
    -- views over usage are rebuilt by 007_reports.sql
    drop materialized view if exists tollgate.chargeback_monthly;
    drop materialized view if exists tollgate.chargeback_daily;
    alter table tollgate.usage rename to usage_unpartitioned;
    alter index tollgate.usage_pkey rename to usage_unpartitioned_pkey;
    alter index tollgate.usage_ts_idx rename to usage_unpartitioned_ts_idx;
    alter index tollgate.usage_group_id_ts_idx rename to usage_unpartitioned_group_id_ts_idx;
    alter index tollgate.usage_user_id_ts_idx rename to usage_unpartitioned_user_id_ts_idx;
    alter index tollgate.usage_api_key_id_ts_idx rename to usage_unpartitioned_api_key_id_ts_idx;

    create table tollgate.usage (like tollgate.usage_unpartitioned
                                 including defaults including constraints)
        partition by range (ts);
    alter table tollgate.usage add constraint usage_pkey primary key (request_id, ts);
    create index usage_ts_idx            on tollgate.usage (ts);
    create index usage_group_id_ts_idx   on tollgate.usage (group_id, ts);
    create index usage_user_id_ts_idx    on tollgate.usage (user_id, ts);
    create index usage_api_key_id_ts_idx on tollgate.usage (api_key_id, ts);
    create table tollgate.usage_default partition of tollgate.usage default;

    -- a partition for every month that has rows, then the rows
    v_from := date_trunc('month', coalesce((select min(u.ts) at time zone 'UTC'
                                              from tollgate.usage_unpartitioned u),
                                             now() at time zone 'UTC'))::date;
    while v_from <= current_date loop
        execute format('create table tollgate.%I partition of tollgate.usage'
                       ' for values from (%L) to (%L)',
                       'usage_y' || to_char(v_from, 'YYYY"m"MM'),
                       v_from::timestamp at time zone 'UTC',
                       (v_from + interval '1 month')::timestamp at time zone 'UTC');
        v_from := (v_from + interval '1 month')::date;
    end loop;
    insert into tollgate.usage select * from tollgate.usage_unpartitioned;
    drop table tollgate.usage_unpartitioned;
end
$$;

-- usage_partition_name: the partition of the month starting at p_month.
create or replace function tollgate.usage_partition_name(p_month date)
returns text
language sql immutable
as $$
    select 'usage_y' || to_char(date_trunc('month', p_month), 'YYYY"m"MM')
$$;

-- usage_partitions_ensure: creates the partitions of this month (by
-- tollgate.clock(), months in UTC) and of the p_ahead months after it that
-- do not exist yet, moving any row of those months out of the default
-- partition first. Returns how many it created. Safe to run at any time:
-- it takes a short lock on usage only when it creates a partition.
create or replace function tollgate.usage_partitions_ensure(p_ahead integer default 3)
returns integer
language plpgsql volatile
as $$
declare
    v_month   date := date_trunc('month', tollgate.clock() at time zone 'UTC')::date;
    v_name    text;
    v_lo      timestamptz;
    v_hi      timestamptz;
    v_created integer := 0;
begin
    for i in 0 .. greatest(p_ahead, 0) loop
        v_name := tollgate.usage_partition_name((v_month + i * interval '1 month')::date);
        v_lo := (v_month + i * interval '1 month')::timestamp at time zone 'UTC';
        v_hi := (v_month + (i + 1) * interval '1 month')::timestamp at time zone 'UTC';
        continue when to_regclass('tollgate.' || v_name) is not null;
        execute format('create table tollgate.%I (like tollgate.usage including defaults'
                       ' including constraints)', v_name);
        execute format('with moved as (delete from tollgate.usage_default d'
                       ' where d.ts >= %L and d.ts < %L returning d.*)'
                       ' insert into tollgate.%I select * from moved', v_lo, v_hi, v_name);
        execute format('alter table tollgate.usage attach partition tollgate.%I'
                       ' for values from (%L) to (%L)', v_name, v_lo, v_hi);
        v_created := v_created + 1;
    end loop;
    return v_created;
end
$$;

-- usage_partitions_detach: detaches the monthly partitions that ended
-- before the retention window (settings 'usage_retention_months': the
-- current month and that many before it are kept), and returns their names.
-- Nothing when the setting is absent. Detached tables keep their rows.
create or replace function tollgate.usage_partitions_detach()
returns setof text
language plpgsql volatile
as $$
declare
    v_keep   integer := (select s.value::integer from tollgate.settings s
                          where s.key = 'usage_retention_months');
    v_before timestamptz;
    r        record;
begin
    if v_keep is null then
        return;
    end if;
    v_before := (date_trunc('month', tollgate.clock() at time zone 'UTC')
                 - v_keep * interval '1 month') at time zone 'UTC';
    for r in
        select c.relname
          from pg_inherits i
          join pg_class c on c.oid = i.inhrelid
         where i.inhparent = 'tollgate.usage'::regclass
           and c.relname ~ '^usage_y[0-9]{4}m[0-9]{2}$'
         order by c.relname
    loop
        -- the partition's upper bound is the first day of the next month
        if (to_date(substr(r.relname, 8, 4) || substr(r.relname, 13, 2), 'YYYYMM')
            + interval '1 month')::timestamp at time zone 'UTC' <= v_before then
            execute format('alter table tollgate.usage detach partition tollgate.%I', r.relname);
            return next r.relname;
        end if;
    end loop;
end
$$;

-- The retention setting must be a whole number of months.
alter table tollgate.settings drop constraint if exists settings_usage_retention_valid;
alter table tollgate.settings add constraint settings_usage_retention_valid
    check (key <> 'usage_retention_months' or value ~ '^[1-9][0-9]{0,3}$');

select tollgate.usage_partitions_ensure(3);

-- ---------------------------------------------------------------------------
-- settle: record_usage's parameters and usage row (same pricing, same
-- defaults, same last_used_at throttle), plus the quota accounting, in one
-- transaction. Idempotent by request_id: the worker fixes ts when the
-- request starts and the spool keeps it, so its retries and replays name the
-- same (request_id, ts) key (its sessions say so: tollgate.fixed_ts = on);
-- for other callers a p_ts up to a day away from the stored one is
-- recognised too (a null p_ts takes the clock). Returns the stored cost and the alerts raised (a jsonb
-- array, '[]' if none). If the usage row already existed (retry, spool
-- replay) nothing else is changed and alerts is '[]'. The applicable rows are
-- those of p_api_key_id / p_user_id / p_group_id (nulls match nothing);
-- rows named by the reservation but no longer applicable get their
-- reservation back all the same. Windows roll by tollgate.clock(), not p_ts;
-- null p_ts means tollgate.clock().
create or replace function tollgate.settle(p_request_id         uuid,
                                           p_ts                 timestamptz,
                                           p_api_key_id         bigint,
                                           p_user_id            text,
                                           p_group_id           text,
                                           p_provider           text,
                                           p_model              text,
                                           p_input_tokens       integer,
                                           p_output_tokens      integer,
                                           p_cache_read_tokens  integer,
                                           p_cache_write_tokens integer,
                                           p_http_status        integer,
                                           p_latency_ms         integer,
                                           p_upstream_ms        integer,
                                           p_stream             boolean,
                                           p_outcome            text)
returns table (cost_micros bigint, alerts jsonb)
language plpgsql volatile
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_now      timestamptz := tollgate.clock();
    v_ts       timestamptz := coalesce(p_ts, v_now);
    v_tz       text;
    v_cost     bigint;
    v_stored   bigint;           -- the cost of a row recorded before
    v_inserted uuid;
    v_kid      text := p_api_key_id::text;
    v_tokens   bigint;
    v_found    boolean;
    v_rtokens  bigint;
    v_rusd     bigint;
    v_rqids    bigint[];
    r          record;
    n          integer := 0;
    q_id       bigint[];
    q_used     bigint[];
    q_res      bigint[];
    q_start    timestamptz[];
    q_alerted  integer[];
    v_used     bigint;
    v_start    timestamptz;
    v_alerted  integer;
    v_t        integer;
    na         integer := 0;
    a_qid      bigint[];
    a_start    timestamptz[];
    a_pct      integer[];
    a_used     bigint[];
    a_limit    bigint[];
    a_subject  text[];
    a_metric   text[];
    a_window   text[];
    v_alerts   jsonb := '[]';
begin
    if least(p_input_tokens, p_output_tokens, p_cache_read_tokens, p_cache_write_tokens) < 0 then
        raise exception 'settle: negative token count for request %', p_request_id
              using errcode = 'check_violation';
    end if;

    v_cost := tollgate.price_micros(p_model, v_ts,
                                    p_input_tokens, p_output_tokens,
                                    p_cache_read_tokens, p_cache_write_tokens);

    -- Already recorded under another ts (a caller that does not fix it)? A
    -- day either side prunes the search to at most three partitions. The
    -- worker's sessions set tollgate.fixed_ts = on: it fixes ts, so its
    -- retries and spool replays meet the (request_id, ts) key below, and this
    -- lookup stays off the hot path.
    if current_setting('tollgate.fixed_ts', true) is distinct from 'on' then
        select u.cost_micros into v_stored
          from tollgate.usage u
         where u.request_id = p_request_id
           and u.ts between v_ts - interval '1 day' and v_ts + interval '1 day';
    end if;
    if v_stored is not null then
        cost_micros := v_stored;
        alerts := '[]'::jsonb;
        return next;
        return;
    end if;

    insert into tollgate.usage as u
           (request_id, ts, api_key_id, user_id, group_id, provider, model,
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
            cost_micros, http_status, latency_ms, upstream_ms, stream, outcome)
    values (p_request_id, v_ts, p_api_key_id, p_user_id, p_group_id,
            coalesce(p_provider, ''), coalesce(p_model, ''),
            coalesce(p_input_tokens, 0), coalesce(p_output_tokens, 0),
            coalesce(p_cache_read_tokens, 0), coalesce(p_cache_write_tokens, 0),
            v_cost, p_http_status, p_latency_ms, p_upstream_ms,
            coalesce(p_stream, false), coalesce(p_outcome, ''))
    on conflict (request_id, ts) do nothing
    returning u.request_id into v_inserted;

    if v_inserted is null then
        select u.cost_micros into v_cost
          from tollgate.usage u
         where u.request_id = p_request_id and u.ts = v_ts;
        cost_micros := v_cost;
        alerts := '[]'::jsonb;
        return next;
        return;
    end if;

    if p_api_key_id is not null then
        update tollgate.api_keys k
           set last_used_at = v_ts
         where k.id = p_api_key_id
           and (k.last_used_at is null or k.last_used_at < v_ts - interval '60 s');
    end if;

    delete from tollgate.reservations rv
     where rv.request_id = p_request_id
    returning rv.tokens, rv.usd_micros, rv.quota_ids
         into v_rtokens, v_rusd, v_rqids;
    v_found := v_rqids is not null;

    v_tokens := coalesce(p_input_tokens, 0)::bigint + coalesce(p_output_tokens, 0)
              + coalesce(p_cache_read_tokens, 0) + coalesce(p_cache_write_tokens, 0);

    for r in
        select q.id, q.subject_kind, q.subject_id, q.metric, q."window" as win, q.limit_value,
               q.used, q.reserved, q.window_start, q.warn_pct, q.alerted_pct
          from tollgate.quotas q
         where (q.subject_kind, q.subject_id) in (('key', v_kid),
                                                  ('user', p_user_id),
                                                  ('group', p_group_id))
            or q.id = any (v_rqids)
         order by q.id
           for update
    loop
        n := n + 1;
        if v_tz is null and r.win in ('day', 'month') then
            v_tz := tollgate.quota_timezone();
        end if;
        v_start := tollgate.window_start_tz(r.win, v_now, v_tz);
        if v_start > r.window_start then
            v_used := 0;
            v_alerted := 0;
        else
            v_used := r.used;
            v_alerted := r.alerted_pct;
            v_start := r.window_start;
        end if;
        q_id[n] := r.id;
        q_res[n] := r.reserved;
        if v_found and r.id = any (v_rqids) then
            q_res[n] := greatest(0, r.reserved - case r.metric when 'tokens' then v_rtokens
                                                               when 'requests' then 1
                                                               else v_rusd end);
        end if;
        if (r.subject_kind = 'key' and r.subject_id = v_kid)
           or (r.subject_kind = 'user' and r.subject_id = p_user_id)
           or (r.subject_kind = 'group' and r.subject_id = p_group_id) then
            v_used := v_used + case r.metric when 'tokens' then v_tokens
                                             when 'requests' then 1
                                             else v_cost end;
            -- Alerts: each threshold (warn_pct, 100) reached and not yet
            -- raised in this window.
            if r.metric <> 'requests' and v_used > 0 then
                foreach v_t in array array[r.warn_pct, 100] loop
                    if v_t > v_alerted and v_used * 100::numeric >= v_t * r.limit_value::numeric then
                        v_alerted := v_t;
                        na := na + 1;
                        a_qid[na]     := r.id;
                        a_start[na]   := v_start;
                        a_pct[na]     := v_t;
                        a_used[na]    := v_used;
                        a_limit[na]   := r.limit_value;
                        a_subject[na] := r.subject_kind || ' "'
                                         || tollgate.quota_subject(r.subject_kind, r.subject_id) || '"';
                        a_metric[na]  := r.metric;
                        a_window[na]  := r.win;
                    end if;
                end loop;
            end if;
        end if;
        q_used[n]    := v_used;
        q_start[n]   := v_start;
        q_alerted[n] := v_alerted;
    end loop;

    if n > 0 then
        update tollgate.quotas q
           set used         = q_used[array_position(q_id, q.id)],
               reserved     = q_res[array_position(q_id, q.id)],
               window_start = q_start[array_position(q_id, q.id)],
               alerted_pct  = q_alerted[array_position(q_id, q.id)],
               updated_at   = v_now
         where q.id = any (q_id);
    end if;

    if na > 0 then
        -- The unique key makes each (quota, window, threshold) alert once,
        -- even after a manual reset within the same window.
        with ins as (
            insert into tollgate.quota_alerts as qa
                   (ts, quota_id, window_start, threshold_pct, used, limit_value)
            select v_now, a.qid, a.start, a.pct, a.used, a.lim
              from unnest(a_qid, a_start, a_pct, a_used, a_limit)
                   as a(qid, start, pct, used, lim)
            on conflict (quota_id, window_start, threshold_pct) do nothing
            returning qa.quota_id, qa.threshold_pct
        )
        select coalesce(jsonb_agg(jsonb_build_object(
                   'quota_id', a.qid, 'subject', a.subject, 'metric', a.metric,
                   'window', a.win, 'threshold_pct', a.pct, 'used', a.used,
                   'limit', a.lim) order by a.ord), '[]'::jsonb)
          into v_alerts
          from unnest(a_qid, a_pct, a_used, a_limit, a_subject, a_metric, a_window)
               with ordinality as a(qid, pct, used, lim, subject, metric, win, ord)
          join ins on ins.quota_id = a.qid and ins.threshold_pct = a.pct;
    end if;

    cost_micros := v_cost;
    alerts := v_alerts;
    return next;
end
$$;

-- record_usage (sql/001_core.sql) now settles: a usage row written by any path
-- also counts towards the quotas that apply, and the insert lives in one place.
-- Same signature and contract: returns the row's cost, idempotent by request id.
create or replace function tollgate.record_usage(p_request_id         uuid,
                                                 p_ts                 timestamptz,
                                                 p_api_key_id         bigint,
                                                 p_user_id            text,
                                                 p_group_id           text,
                                                 p_provider           text,
                                                 p_model              text,
                                                 p_input_tokens       integer,
                                                 p_output_tokens      integer,
                                                 p_cache_read_tokens  integer,
                                                 p_cache_write_tokens integer,
                                                 p_http_status        integer,
                                                 p_latency_ms         integer,
                                                 p_upstream_ms        integer,
                                                 p_stream             boolean,
                                                 p_outcome            text)
returns bigint
language sql volatile
as $$
    select s.cost_micros
      from tollgate.settle(p_request_id, p_ts, p_api_key_id, p_user_id, p_group_id,
                           p_provider, p_model, p_input_tokens, p_output_tokens,
                           p_cache_read_tokens, p_cache_write_tokens, p_http_status,
                           p_latency_ms, p_upstream_ms, p_stream, p_outcome) s
$$;
