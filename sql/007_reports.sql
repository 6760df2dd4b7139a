-- 007_reports.sql — chargeback (issue 5): materialized views of usage by
-- day and month, the report function behind `tollgatectl report`, and the
-- caller's own summary behind GET /v1/usage.
--
-- chargeback_daily / chargeback_monthly group usage by (period, group,
-- user, api key, provider, model) in the calendar of tollgate.settings'
-- timezone (UTC by default). Each has a unique index, so
-- tollgate.report_refresh() can refresh them CONCURRENTLY while requests are
-- served (readers and settle are never blocked). The report reads the views
-- for the days they cover and usage for the rest, so it is exact whenever it
-- is run: report_state.covered_until is the first day a refresh did not
-- fully see (a day is "seen" once 15 minutes past its end, time for requests
-- in flight at midnight to settle). A usage row settled later than that (a
-- spool replay after a long outage) reaches the report at the next refresh.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run. Money is bigint micro-dollars.

create materialized view if not exists tollgate.chargeback_daily as
    select (u.ts at time zone tollgate.quota_timezone())::date as day,
           u.group_id, u.user_id, u.api_key_id, u.provider, u.model,
           count(*)::bigint                 as requests,
           sum(u.input_tokens)::bigint       as input_tokens,
           sum(u.output_tokens)::bigint      as output_tokens,
           sum(u.cache_read_tokens)::bigint  as cache_read_tokens,
           sum(u.cache_write_tokens)::bigint as cache_write_tokens,
           sum(u.cost_micros)::bigint        as cost_micros
      from tollgate.usage u
     group by 1, 2, 3, 4, 5, 6
with data;

-- NULLS NOT DISTINCT: a JWT caller has no api_key_id; its rows still have
-- one identity, which REFRESH ... CONCURRENTLY needs.
create unique index if not exists chargeback_daily_key
    on tollgate.chargeback_daily (day, group_id, user_id, api_key_id, provider, model)
    nulls not distinct;

create materialized view if not exists tollgate.chargeback_monthly as
    select date_trunc('month', d.day)::date as month,
           d.group_id, d.user_id, d.api_key_id, d.provider, d.model,
           sum(d.requests)::bigint           as requests,
           sum(d.input_tokens)::bigint       as input_tokens,
           sum(d.output_tokens)::bigint      as output_tokens,
           sum(d.cache_read_tokens)::bigint  as cache_read_tokens,
           sum(d.cache_write_tokens)::bigint as cache_write_tokens,
           sum(d.cost_micros)::bigint        as cost_micros
      from tollgate.chargeback_daily d
     group by 1, 2, 3, 4, 5, 6
with data;

create unique index if not exists chargeback_monthly_key
    on tollgate.chargeback_monthly (month, group_id, user_id, api_key_id, provider, model)
    nulls not distinct;

create table if not exists tollgate.report_state (
    name          text        primary key,
    refreshed_at  timestamptz not null,
    covered_until date        not null   -- the views hold every day before this one
);

-- report_refresh: refreshes both views concurrently (readers and writers go
-- on) and records what they cover. Returns covered_until.
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
    insert into tollgate.report_state as s (name, refreshed_at, covered_until)
    values ('chargeback', v_started, v_until)
    on conflict (name) do update
       set refreshed_at = excluded.refreshed_at, covered_until = excluded.covered_until;
    return v_until;
end
$$;

-- chargeback_rows: usage of the days p_from .. p_to inclusive (in the report
-- time zone), as rows of (day, group, user, key, provider, model, measures):
-- days before report_state.covered_until from chargeback_daily (one row per
-- group/user/key/provider/model and day), later days from usage (one row per
-- request). Summed, they equal summing usage directly. The building block of
-- every report (tollgate.chargeback, sql/reports/).
create or replace function tollgate.chargeback_rows(p_from date, p_to date)
returns table (day                date,
               group_id           text,
               user_id            text,
               api_key_id         bigint,
               provider           text,
               model              text,
               requests           bigint,
               input_tokens       bigint,
               output_tokens      bigint,
               cache_read_tokens  bigint,
               cache_write_tokens bigint,
               cost_micros        bigint)
language sql stable
as $$
    with split as (
        -- days [p_from, day) come from the view, [day, p_to] from usage
        select greatest(p_from, least(coalesce((select s.covered_until
                                                  from tollgate.report_state s
                                                 where s.name = 'chargeback'), p_from),
                                      p_to + 1)) as day,
               tollgate.quota_timezone() as tz
    )
    select d.day, d.group_id, d.user_id, d.api_key_id, d.provider, d.model, d.requests,
           d.input_tokens, d.output_tokens, d.cache_read_tokens, d.cache_write_tokens,
           d.cost_micros
      from tollgate.chargeback_daily d, split s
     where d.day >= p_from and d.day < s.day
    union all
    select (u.ts at time zone s.tz)::date, u.group_id, u.user_id, u.api_key_id, u.provider,
           u.model, 1, u.input_tokens, u.output_tokens, u.cache_read_tokens,
           u.cache_write_tokens, u.cost_micros
      from tollgate.usage u, split s
     where u.ts >= (s.day::timestamp at time zone s.tz)
       and u.ts < ((p_to + 1)::timestamp at time zone s.tz)
$$;

-- chargeback: totals per p_by ('group' | 'user' | 'key' | 'model') over
-- chargeback_rows(p_from, p_to), most expensive first. subject is the group
-- id, user id, api key id (as text) or model; null for rows without one (a
-- JWT caller has no key).
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
    if p_by not in ('group', 'user', 'key', 'model') then
        raise exception 'chargeback: unknown grouping "%" (group, user, key or model)', p_by
              using errcode = 'invalid_parameter_value';
    end if;
    return query
    select case p_by when 'group' then r.group_id when 'user' then r.user_id
                     when 'key' then r.api_key_id::text else r.model end,
           sum(r.requests)::bigint, sum(r.input_tokens)::bigint,
           sum(r.output_tokens)::bigint, sum(r.cache_read_tokens)::bigint,
           sum(r.cache_write_tokens)::bigint, sum(r.cost_micros)::bigint
      from tollgate.chargeback_rows(p_from, p_to) r
     group by 1
     order by 7 desc, 1;
end
$$;

-- usage_summary: GET /v1/usage — the caller's own usage in [p_from, p_to):
-- by its key when p_api_key_id is given, else by its user (a JWT caller);
-- totals, per model, and every quota that applies to the key, the user and
-- the group with what remains of it now.
create or replace function tollgate.usage_summary(p_api_key_id bigint,
                                                  p_user_id    text,
                                                  p_group_id   text,
                                                  p_from       timestamptz,
                                                  p_to         timestamptz)
returns jsonb
language sql stable
as $$
    with mine as (
        select u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens,
               u.cache_write_tokens, u.cost_micros
          from tollgate.usage u
         where u.ts >= p_from and u.ts < p_to
           and case when p_api_key_id is not null then u.api_key_id = p_api_key_id
                    else u.user_id = p_user_id and u.api_key_id is null end
    ),
    per_model as (
        select m.model, count(*) as requests, sum(m.input_tokens) as input_tokens,
               sum(m.output_tokens) as output_tokens,
               sum(m.cache_read_tokens) as cache_read_tokens,
               sum(m.cache_write_tokens) as cache_write_tokens,
               sum(m.cost_micros) as cost_micros
          from mine m
         group by m.model
    )
    select jsonb_build_object(
        'from', p_from, 'to', p_to,
        'total', (select jsonb_build_object(
                      'requests', coalesce(sum(p.requests), 0),
                      'input_tokens', coalesce(sum(p.input_tokens), 0),
                      'output_tokens', coalesce(sum(p.output_tokens), 0),
                      'cache_read_tokens', coalesce(sum(p.cache_read_tokens), 0),
                      'cache_write_tokens', coalesce(sum(p.cache_write_tokens), 0),
                      'cost_micros', coalesce(sum(p.cost_micros), 0))
                    from per_model p),
        'by_model', (select coalesce(jsonb_agg(to_jsonb(p) order by p.cost_micros desc, p.model),
                                     '[]'::jsonb)
                       from per_model p),
        'quotas', (select coalesce(jsonb_agg(jsonb_build_object(
                              'subject_kind', q.subject_kind, 'metric', q.metric,
                              'window', q."window", 'limit', q.limit_value,
                              'used', case when rolled then 0 else q.used end,
                              'reserved', q.reserved,
                              'remaining', greatest(0, q.limit_value - q.reserved
                                                       - case when rolled then 0 else q.used end),
                              'resets_at', case when q."window" <> 'total' then
                                  tollgate.window_end(q."window",
                                      case when rolled then tollgate.window_start(q."window", tollgate.clock())
                                           else q.window_start end) end)
                              order by q.id), '[]'::jsonb)
                     from (select q.*, tollgate.window_start(q."window", tollgate.clock())
                                       > q.window_start as rolled
                             from tollgate.quotas q
                            where (q.subject_kind, q.subject_id) in
                                  (('key', p_api_key_id::text), ('user', p_user_id),
                                   ('group', p_group_id))) q))
$$;
