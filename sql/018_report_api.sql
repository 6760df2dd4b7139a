-- 018_report_api.sql — time to first token per request, and the reports of
-- the admin API and tollgatectl (issue 14): one SQL function per report.
--
-- usage.ttft_ms: for a stream, the milliseconds from the request's start to
-- the first byte relayed to the client (exchange.c's start_stream, the same
-- instant as the TTFT histogram of /metrics); null for a request that is not
-- a stream or whose stream never started. ADD COLUMN reaches every attached
-- partition; usage_partitions_ensure (006) copies it to the months it
-- creates. settle_batch (010, 013, 014, 015) stores the record's ttft_ms
-- (absent: null, as in the records of earlier versions waiting in a spool or
-- a journal); it is rewritten from its own definition, as 015 does, and a
-- definition without one of the expected fragments, exactly once, fails this
-- migration.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run. Money is bigint micro-dollars, never float.

alter table tollgate.usage
    add column if not exists ttft_ms integer
        constraint usage_ttft_ms_range check (ttft_ms >= 0);

do $$
declare
    v_def  text := pg_get_functiondef('tollgate.settle_batch(jsonb)'::regprocedure);
    v_edit text[][] := array[
        array['usage_source text, guard_rule text))',
              'usage_source text, guard_rule text, ttft_ms integer))'],
        array['stream, outcome, usage_source, guard_rule, ord)',
              'stream, outcome, usage_source, guard_rule, ttft_ms, ord)'],
        array['stream, outcome, usage_source, guard_rule)',
              'stream, outcome, usage_source, guard_rule, ttft_ms)'],
        array['coalesce(s.usage_source, ''provider''), s.guard_rule',
              'coalesce(s.usage_source, ''provider''), s.guard_rule, s.ttft_ms']];
    v_old  text;
begin
    if position('ttft_ms' in v_def) > 0 then
        return; -- applied already
    end if;
    for i in 1 .. array_length(v_edit, 1) loop
        v_old := v_edit[i][1];
        if (length(v_def) - length(replace(v_def, v_old, ''))) / length(v_old) <> 1 then
            raise exception 'settle_batch: "%" was not found once; migration 018 needs updating',
                            v_old;
        end if;
        v_def := replace(v_def, v_old, v_edit[i][2]);
    end loop;
    execute v_def;
end
$$;

-- ---------------------------------------------------------------------------
-- The reports. Each takes the calendar days p_from .. p_to inclusive, in the
-- time zone of tollgate.settings (as the chargeback does), and checks its
-- parameters itself (invalid_parameter_value, the message naming the
-- parameter), so psql, tollgatectl and the admin API refuse the same input.
-- Times leave as text in UTC ISO 8601, whatever the session's time zone.

-- report_check_range: p_from .. p_to is a range of at most p_max_days days.
create or replace function tollgate.report_check_range(p_from date, p_to date, p_max_days integer)
returns void
language plpgsql immutable
as $$
begin
    if p_from is null or p_to is null then
        raise exception 'report: "from" and "to" are required' using errcode = 'invalid_parameter_value';
    end if;
    if p_from > p_to then
        raise exception 'report: "from" (%) is after "to" (%)', p_from, p_to
              using errcode = 'invalid_parameter_value';
    end if;
    if p_to - p_from + 1 > p_max_days then
        raise exception 'report: "from" .. "to" spans % days, more than %', p_to - p_from + 1,
              p_max_days using errcode = 'invalid_parameter_value';
    end if;
end
$$;

create or replace function tollgate.report_utc(p_ts timestamptz)
returns text
language sql immutable
as $$ select to_char(p_ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

-- chargeback (007) groups by provider too now; the same function behind
-- `tollgatectl report` and GET /admin/reports/chargeback.
create or replace function tollgate.chargeback(p_by text, p_from date, p_to date)
returns table (subject            text,
               requests           bigint,
               input_tokens       bigint,
               output_tokens      bigint,
               cache_read_tokens  bigint,
               cache_write_tokens bigint,
               cost_micros        bigint)
language plpgsql stable
as $$
begin
    if p_by is null or p_by not in ('group', 'user', 'key', 'model', 'provider') then
        raise exception 'chargeback: unknown grouping "%" (group, user, key, model or provider)', p_by
              using errcode = 'invalid_parameter_value';
    end if;
    return query
    select case p_by when 'group' then r.group_id when 'user' then r.user_id
                     when 'key' then r.api_key_id::text when 'provider' then r.provider
                     else r.model end,
           sum(r.requests)::bigint, sum(r.input_tokens)::bigint,
           sum(r.output_tokens)::bigint, sum(r.cache_read_tokens)::bigint,
           sum(r.cache_write_tokens)::bigint, sum(r.cost_micros)::bigint
      from tollgate.chargeback_rows(p_from, p_to) r
     group by 1
     order by 7 desc, 1;
end
$$;

-- report_series: requests, tokens by kind and cost per day or hour of
-- p_from .. p_to (every bucket, empty ones as zeros) for the organization
-- (p_subject 'org', p_id null) or one group, user, key (p_id its prefix) or
-- model. Days come from chargeback_rows (the views where they cover), hours
-- from usage. At most 366 days by day, 31 by hour.
create or replace function tollgate.report_series(p_subject text, p_id text, p_bucket text,
                                                  p_from date, p_to date)
returns table (bucket             text,
               requests           bigint,
               input_tokens       bigint,
               output_tokens      bigint,
               cache_read_tokens  bigint,
               cache_write_tokens bigint,
               cost_micros        bigint)
language plpgsql stable
as $$
declare
    v_tz  text := tollgate.quota_timezone();
    v_key bigint;
begin
    if p_subject is null or p_subject not in ('org', 'group', 'user', 'key', 'model') then
        raise exception 'report: unknown "subject" "%" (org, group, user, key or model)', p_subject
              using errcode = 'invalid_parameter_value';
    end if;
    if (p_subject = 'org') <> (p_id is null) then
        raise exception 'report: "id" is %', case when p_id is null then 'required' else
              'not taken by subject org' end using errcode = 'invalid_parameter_value';
    end if;
    if p_bucket is null or p_bucket not in ('day', 'hour') then
        raise exception 'report: unknown "bucket" "%" (day or hour)', p_bucket
              using errcode = 'invalid_parameter_value';
    end if;
    perform tollgate.report_check_range(p_from, p_to, case p_bucket when 'day' then 366 else 31 end);
    if p_subject = 'key' then
        select k.id into v_key from tollgate.api_keys k where k.prefix = p_id;
        if not found then
            raise exception 'report: "id": no key "%"', p_id using errcode = 'invalid_parameter_value';
        end if;
    end if;
    if p_bucket = 'day' then
        return query
        select b.d::date::text, coalesce(sum(r.requests), 0)::bigint,
               coalesce(sum(r.input_tokens), 0)::bigint, coalesce(sum(r.output_tokens), 0)::bigint,
               coalesce(sum(r.cache_read_tokens), 0)::bigint,
               coalesce(sum(r.cache_write_tokens), 0)::bigint, coalesce(sum(r.cost_micros), 0)::bigint
          from generate_series(p_from::timestamp, p_to::timestamp, interval '1 day') b(d)
          left join tollgate.chargeback_rows(p_from, p_to) r
                 on r.day = b.d::date
                and case p_subject when 'org' then true when 'group' then r.group_id = p_id
                                   when 'user' then r.user_id = p_id
                                   when 'key' then r.api_key_id = v_key
                                   else r.model = p_id end
         group by b.d order by b.d;
    else
        return query
        with u as (
            select date_trunc('hour', x.ts at time zone v_tz) as h, x.input_tokens,
                   x.output_tokens, x.cache_read_tokens, x.cache_write_tokens, x.cost_micros
              from tollgate.usage x
             where x.ts >= (p_from::timestamp at time zone v_tz)
               and x.ts < ((p_to + 1)::timestamp at time zone v_tz)
               and case p_subject when 'org' then true when 'group' then x.group_id = p_id
                                  when 'user' then x.user_id = p_id
                                  when 'key' then x.api_key_id = v_key
                                  else x.model = p_id end
        )
        select to_char(b.h, 'YYYY-MM-DD"T"HH24:00'), count(u.h)::bigint,
               coalesce(sum(u.input_tokens), 0)::bigint, coalesce(sum(u.output_tokens), 0)::bigint,
               coalesce(sum(u.cache_read_tokens), 0)::bigint,
               coalesce(sum(u.cache_write_tokens), 0)::bigint, coalesce(sum(u.cost_micros), 0)::bigint
          from generate_series(p_from::timestamp, (p_to + 1)::timestamp - interval '1 hour',
                               interval '1 hour') b(h)
          left join u on u.h = b.h
         group by b.h order by b.h;
    end if;
end
$$;

-- report_quotas: every quota with its use now (quota_list: a passed window
-- reads as rolled), what is reserved by requests in flight, its limit, and
-- when it resets (null for a 'total' window).
create or replace function tollgate.report_quotas()
returns table (id bigint, subject_kind text, subject text, metric text, "window" text,
               limit_value bigint, used bigint, reserved bigint, remaining bigint,
               window_start text, resets_at text)
language sql stable
as $$
    select q.id::bigint, q.subject_kind::text, q.subject::text, q.metric::text, q."window"::text,
           q.limit_value::bigint, q.used::bigint, q.reserved::bigint, q.remaining::bigint,
           tollgate.report_utc(q.window_start), tollgate.report_utc(q.window_end)
      from tollgate.quota_list q
     order by q.subject_kind, q.subject, q.metric, q."window", q.id
$$;

-- report_keys: every key without anything secret (no hash): its prefix,
-- name, owner, role, status, and when it was created, last used (to the
-- minute: authenticate writes it at most once a minute), expires, was revoked.
create or replace function tollgate.report_keys()
returns table (prefix text, name text, user_id text, group_id text, role text, status text,
               created_at text, last_used_at text, expires_at text, revoked_at text)
language sql stable
as $$
    select k.prefix::text, k.name::text, k.user_id::text, k.group_id::text, k.role::text,
           k.status::text, tollgate.report_utc(k.created_at), tollgate.report_utc(k.last_used_at),
           tollgate.report_utc(k.expires_at), tollgate.report_utc(k.revoked_at)
      from tollgate.key_list k
     order by k.created_at, k.prefix
$$;

-- report_denials: requests refused before the provider (tollgate.denials,
-- 008: UTC days, late by at most one sweep interval) per reason and status.
create or replace function tollgate.report_denials(p_from date, p_to date)
returns table (reason text, http_status integer, requests bigint)
language plpgsql stable
as $$
begin
    perform tollgate.report_check_range(p_from, p_to, 366);
    return query
    select d.reason, d.http_status, sum(d.requests)::bigint
      from tollgate.denials d
     where d.day between p_from and p_to
     group by 1, 2
     order by 3 desc, 1, 2;
end
$$;

-- ---------------------------------------------------------------------------
-- The model comparison.

-- latency_bucket: a latency in milliseconds kept to three significant
-- digits (exact below 1 s, within 1% above): the histograms of
-- model_latency_daily hold one row per bucket, not per request.
create or replace function tollgate.latency_bucket(p_ms integer)
returns integer
language sql immutable parallel safe
as $$
    select case when p_ms is null then null
                when p_ms < 1000 then greatest(p_ms, 0)
                else p_ms - p_ms % (10 ^ (length(p_ms::text) - 3))::integer end
$$;

-- model_daily: per day, provider and model, what the comparison sums;
-- errors are answers of 500 or more, refusals the guardrails' blocks
-- (outcome 'blocked'). Refusals before the provider (401, 403, 429) name no
-- model: they are in tollgate.denials, not here.
create materialized view if not exists tollgate.model_daily as
    select (u.ts at time zone tollgate.quota_timezone())::date as day, u.provider, u.model,
           count(*)::bigint                                     as requests,
           sum(u.input_tokens)::bigint                          as input_tokens,
           sum(u.output_tokens)::bigint                         as output_tokens,
           sum(u.cache_read_tokens)::bigint                     as cache_read_tokens,
           sum(u.cache_write_tokens)::bigint                    as cache_write_tokens,
           sum(u.cost_micros)::bigint                           as cost_micros,
           count(*) filter (where u.http_status >= 500)::bigint as errors,
           count(*) filter (where u.outcome = 'blocked')::bigint as refusals
      from tollgate.usage u
     group by 1, 2, 3
with data;

create unique index if not exists model_daily_key
    on tollgate.model_daily (day, provider, model) nulls not distinct;

-- model_latency_daily: histograms of latency_ms and ttft_ms (kind
-- 'latency' or 'ttft') per day, provider and model, in latency_bucket's buckets.
create materialized view if not exists tollgate.model_latency_daily as
    select (u.ts at time zone tollgate.quota_timezone())::date as day, u.provider, u.model,
           k.kind, k.bucket, count(*)::bigint as n
      from tollgate.usage u
     cross join lateral (values ('latency', tollgate.latency_bucket(u.latency_ms)),
                                ('ttft', tollgate.latency_bucket(u.ttft_ms))) k(kind, bucket)
     where k.bucket is not null
     group by 1, 2, 3, 4, 5
with data;

create unique index if not exists model_latency_daily_key
    on tollgate.model_latency_daily (day, provider, model, kind, bucket) nulls not distinct;

-- report_refresh (007) refreshes the comparison's views too, concurrently.
create or replace function tollgate.report_refresh()
returns date
language plpgsql volatile
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_until   date := ((v_started - interval '15 minutes') at time zone tollgate.quota_timezone())::date;
begin
    refresh materialized view concurrently tollgate.chargeback_daily;
    refresh materialized view concurrently tollgate.chargeback_monthly;
    refresh materialized view concurrently tollgate.model_daily;
    refresh materialized view concurrently tollgate.model_latency_daily;
    insert into tollgate.report_state as s (name, refreshed_at, covered_until)
    values ('chargeback', v_started, v_until)
    on conflict (name) do update
       set refreshed_at = excluded.refreshed_at, covered_until = excluded.covered_until;
    return v_until;
end
$$;

-- report_models: per provider and model over p_from .. p_to (at most 366
-- days): requests, tokens, cost, cost per request and per 1,000 output
-- tokens (micro-dollars, rounded to the nearest; null without output),
-- latency p50 / p95 / p99 and time to first token p50 / p95 (ms, the
-- lower bound of latency_bucket's bucket holding the percentile:
-- percentile_disc's value below 1 s; null when no request had one), error
-- and refusal rates (a share of requests, 4 decimals). As chargeback_rows,
-- the days the views cover come from them, later days from usage.
create or replace function tollgate.report_models(p_from date, p_to date)
returns table (provider text, model text, requests bigint, input_tokens bigint,
               output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
               cost_micros bigint, cost_per_request_micros bigint,
               cost_per_1k_output_micros bigint, latency_p50_ms integer,
               latency_p95_ms integer, latency_p99_ms integer, ttft_p50_ms integer,
               ttft_p95_ms integer, errors bigint, refusals bigint, error_rate numeric,
               refusal_rate numeric)
language plpgsql stable
as $$
declare
    v_tz    text := tollgate.quota_timezone();
    v_split date;
begin
    perform tollgate.report_check_range(p_from, p_to, 366);
    v_split := greatest(p_from, least(coalesce((select s.covered_until from tollgate.report_state s
                                                  where s.name = 'chargeback'), p_from), p_to + 1));
    return query
    with raw as (
        select u.provider, u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens,
               u.cache_write_tokens, u.cost_micros, u.http_status, u.outcome, u.latency_ms,
               u.ttft_ms
          from tollgate.usage u
         where u.ts >= (v_split::timestamp at time zone v_tz)
           and u.ts < ((p_to + 1)::timestamp at time zone v_tz)
    ),
    totals as (
        select t.provider, t.model, sum(t.requests)::bigint as requests,
               sum(t.input_tokens)::bigint as input_tokens,
               sum(t.output_tokens)::bigint as output_tokens,
               sum(t.cache_read_tokens)::bigint as cache_read_tokens,
               sum(t.cache_write_tokens)::bigint as cache_write_tokens,
               sum(t.cost_micros)::bigint as cost_micros, sum(t.errors)::bigint as errors,
               sum(t.refusals)::bigint as refusals
          from (select d.provider, d.model, d.requests, d.input_tokens, d.output_tokens,
                       d.cache_read_tokens, d.cache_write_tokens, d.cost_micros, d.errors,
                       d.refusals
                  from tollgate.model_daily d
                 where d.day >= p_from and d.day < v_split
                union all
                select r.provider, r.model, 1, r.input_tokens, r.output_tokens,
                       r.cache_read_tokens, r.cache_write_tokens, r.cost_micros,
                       (r.http_status >= 500)::int, (r.outcome = 'blocked')::int
                  from raw r) t
         group by 1, 2
    ),
    hist as (
        select h.provider, h.model, h.kind, h.bucket, sum(h.n) as n
          from (select l.provider, l.model, l.kind, l.bucket, l.n
                  from tollgate.model_latency_daily l
                 where l.day >= p_from and l.day < v_split
                union all
                select r.provider, r.model, k.kind, k.bucket, 1
                  from raw r
                 cross join lateral (values ('latency', tollgate.latency_bucket(r.latency_ms)),
                                            ('ttft', tollgate.latency_bucket(r.ttft_ms))) k(kind, bucket)
                 where k.bucket is not null) h
         group by 1, 2, 3, 4
    ),
    cum as (
        select c.*, sum(c.n) over (partition by c.provider, c.model, c.kind order by c.bucket) as below,
               sum(c.n) over (partition by c.provider, c.model, c.kind) as total
          from hist c
    ),
    pct as (
        select c.provider, c.model,
               min(c.bucket) filter (where c.kind = 'latency' and c.below >= 0.50 * c.total) as l50,
               min(c.bucket) filter (where c.kind = 'latency' and c.below >= 0.95 * c.total) as l95,
               min(c.bucket) filter (where c.kind = 'latency' and c.below >= 0.99 * c.total) as l99,
               min(c.bucket) filter (where c.kind = 'ttft' and c.below >= 0.50 * c.total) as t50,
               min(c.bucket) filter (where c.kind = 'ttft' and c.below >= 0.95 * c.total) as t95
          from cum c
         group by 1, 2
    )
    select t.provider, t.model, t.requests, t.input_tokens, t.output_tokens, t.cache_read_tokens,
           t.cache_write_tokens, t.cost_micros,
           round(t.cost_micros::numeric / t.requests)::bigint,
           case when t.output_tokens > 0
                then round(t.cost_micros::numeric * 1000 / t.output_tokens)::bigint end,
           p.l50, p.l95, p.l99, p.t50, p.t95, t.errors, t.refusals,
           round(t.errors::numeric / t.requests, 4), round(t.refusals::numeric / t.requests, 4)
      from totals t
      left join pct p on p.provider is not distinct from t.provider
                     and p.model is not distinct from t.model
     order by t.cost_micros desc, t.provider, t.model;
end
$$;
