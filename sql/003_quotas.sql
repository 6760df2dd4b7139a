-- 003_quotas.sql — exact quotas, rate limits and dollar budgets (issue 3).
--
-- Quota rows (tokens / requests / usd per key, user or group and window),
-- the reservations that hold capacity while a request is in flight, the
-- global request token buckets, the alert log, and the functions the C
-- worker calls on every request:
--
--   reserve  before the upstream call: authenticate the caller and atomically
--            reserve the request's upper bound on every applicable quota
--            row (and take one token from each global bucket), all or none
--            (defined in 004_identity.sql, which adds JWT principals and RBAC);
--   settle   after it: store the usage row (idempotent on request_id) and
--            replace the reservation by the actual usage, raising alerts
--            (defined in 006_usage_partitions.sql, with the partitioned usage).
--
-- plus the sweeper (sweep_reservations, reservation_holders) and the admin
-- functions behind `tollgatectl quota` (quota_set, quota_adjust,
-- quota_reset, quota_rollover, the quota_list view).
--
-- Concurrency: every function that changes more than one quota row locks
-- them FOR UPDATE in id order before changing any (global buckets, when a
-- call uses them, first, in bucket-name order), so they cannot deadlock with
-- one another; a row lock is held for one short statement sequence and the
-- commit. A denial writes nothing. With a true upper bound reserved,
-- used + reserved <= limit_value holds on every row at every commit.
--
-- Time: every function reads the clock once, through tollgate.clock(), which
-- a session can pin with `set tollgate.now = '...'` (tests, tollgatectl's
-- TOLLGATE_NOW). Calendar windows (day, month) follow the time zone in
-- tollgate.settings ('timezone', UTC by default); minute and hour are UTC.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run. Money is bigint micro-dollars or numeric.
-- The quotas column "window" is a reserved word: quote it in SQL.

-- ---------------------------------------------------------------------------
-- Clock and settings.

-- clock: now(), unless the session setting tollgate.now holds a timestamp.
create or replace function tollgate.clock()
returns timestamptz
language sql stable
as $$
    select coalesce(nullif(current_setting('tollgate.now', true), '')::timestamptz, now())
$$;

create table if not exists tollgate.settings (
    key   text primary key,
    value text not null,
    -- An unknown zone name is refused here ("time zone ... not recognized"),
    -- not at the next request.
    constraint settings_timezone_valid
        check (key <> 'timezone' or (timestamptz '2000-01-01 00:00:00+00' at time zone value) is not null)
);

insert into tollgate.settings (key, value) values ('timezone', 'UTC')
on conflict (key) do nothing;

-- quota_timezone: the zone of calendar windows (day, month); 'UTC' if unset.
-- PL/pgSQL, not SQL: on PostgreSQL <= 17 a SQL function that cannot be
-- inlined (it has a subquery) is parsed and planned again at every call,
-- while PL/pgSQL keeps its plans for the session. Same for the price
-- functions below.
create or replace function tollgate.quota_timezone()
returns text
language plpgsql stable
as $$
declare
    v_tz text;
begin
    select s.value into v_tz from tollgate.settings s where s.key = 'timezone';
    return coalesce(v_tz, 'UTC');
end
$$;

-- ---------------------------------------------------------------------------
-- Windows.

-- window_start_tz / window_end_tz: window_start / window_end with the zone
-- given (callers that need several read the zone once). p_tz is only used
-- for 'day' and 'month'. Unknown windows give null.
create or replace function tollgate.window_start_tz(p_window text, p_at timestamptz, p_tz text)
returns timestamptz
language sql stable
as $$
    select case p_window
             when 'minute' then date_trunc('minute', p_at, 'UTC')
             when 'hour'   then date_trunc('hour', p_at, 'UTC')
             when 'day'    then date_trunc('day', p_at, p_tz)
             when 'month'  then date_trunc('month', p_at, p_tz)
             when 'total'  then timestamptz '1970-01-01 00:00:00+00'
           end
$$;

create or replace function tollgate.window_end_tz(p_window text, p_start timestamptz, p_tz text)
returns timestamptz
language sql stable
as $$
    select case p_window
             when 'minute' then p_start + interval '1 minute'
             when 'hour'   then p_start + interval '1 hour'
             when 'day'    then ((p_start at time zone p_tz) + interval '1 day') at time zone p_tz
             when 'month'  then ((p_start at time zone p_tz) + interval '1 month') at time zone p_tz
             when 'total'  then timestamptz 'infinity'
           end
$$;

-- window_start: start of the window containing p_at. minute/hour: truncated
-- in UTC; day/month: midnight / the 1st at 00:00 in the configured zone;
-- total: the epoch.
create or replace function tollgate.window_start(p_window text, p_at timestamptz)
returns timestamptz
language sql stable
as $$
    select tollgate.window_start_tz(p_window, p_at, tollgate.quota_timezone())
$$;

-- window_end: end of the window that starts at p_start ('infinity' for
-- total; day and month are local calendar steps, so DST days are 23 or 25 h).
create or replace function tollgate.window_end(p_window text, p_start timestamptz)
returns timestamptz
language sql stable
as $$
    select tollgate.window_end_tz(p_window, p_start, tollgate.quota_timezone())
$$;

-- ---------------------------------------------------------------------------
-- Tables.

-- The enumerated text columns of quotas are domains over text rather than
-- table CHECKs: a domain is checked when a value is stored into the column
-- (quota_set, a direct INSERT or an UPDATE of that column), whereas every
-- table CHECK is evaluated (and its expression loaded) again at every
-- UPDATE of the row, and reserve and settle update quota rows on every
-- request. Clients see plain text.
do $$
begin
    if to_regtype('tollgate.quota_subject_kind') is null then
        create domain tollgate.quota_subject_kind as text
            constraint quota_subject_kind_valid check (value in ('key', 'user', 'group'));
    end if;
    if to_regtype('tollgate.quota_metric') is null then
        create domain tollgate.quota_metric as text
            constraint quota_metric_valid check (value in ('tokens', 'requests', 'usd'));
    end if;
    if to_regtype('tollgate.quota_window') is null then
        create domain tollgate.quota_window as text
            constraint quota_window_valid check (value in ('minute', 'hour', 'day', 'month', 'total'));
    end if;
    if to_regtype('tollgate.quota_warn_pct') is null then
        create domain tollgate.quota_warn_pct as integer
            constraint quota_warn_pct_range check (value between 1 and 100);
    end if;
end
$$;

create table if not exists tollgate.quotas (
    id           bigint      generated always as identity primary key,
    subject_kind tollgate.quota_subject_kind not null,     -- 'key' | 'user' | 'group'
    -- api_keys.id::text for 'key'; the user or group id otherwise. No
    -- foreign key: a quota may outlive (or precede) its subject.
    subject_id   text        not null,
    metric       tollgate.quota_metric not null,           -- 'tokens' | 'requests' | 'usd'
    "window"     tollgate.quota_window not null,           -- 'minute' | 'hour' | 'day' | 'month' | 'total'
    limit_value  bigint      not null
                 constraint quotas_limit_nonneg check (limit_value >= 0),   -- usd: micros
    used         bigint      not null default 0
                 constraint quotas_used_nonneg check (used >= 0),
    reserved     bigint      not null default 0
                 constraint quotas_reserved_nonneg check (reserved >= 0),
    window_start timestamptz not null,
    warn_pct     tollgate.quota_warn_pct not null default 80,   -- 1..100
    -- Highest alert threshold already raised in this window (0 = none).
    alerted_pct  integer     not null default 0
                 constraint quotas_alerted_pct_range check (alerted_pct between 0 and 100),
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    constraint quotas_subject_metric_window_key
        unique (subject_kind, subject_id, metric, "window")
) with (fillfactor = 50);   -- room for HOT updates of hot rows

-- In-flight requests: what reserve added, so that settle or the sweeper can
-- take exactly that back.
create table if not exists tollgate.reservations (
    request_id uuid        primary key,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    holder     text        not null default '',     -- 'host:pid' of the worker
    api_key_id bigint,
    user_id    text,
    group_id   text,
    tokens     bigint      not null default 0,
    usd_micros bigint      not null default 0,
    quota_ids  bigint[]    not null default '{}',
    buckets    text[]      not null default '{}'   -- global buckets it took a token from
) with (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

create table if not exists tollgate.quota_alerts (
    id            bigint      generated always as identity primary key,
    ts            timestamptz not null default now(),
    quota_id      bigint      not null,
    window_start  timestamptz not null,
    threshold_pct integer     not null,
    used          bigint      not null,
    limit_value   bigint      not null,
    constraint quota_alerts_once unique (quota_id, window_start, threshold_pct)
);

-- Global request token buckets (issue 3 item 5, `global` mode); the bucket
-- parameters come from the config with every reserve call.
create table if not exists tollgate.rate_buckets (
    bucket     text        primary key,
    tokens     numeric     not null,
    updated_at timestamptz not null
) with (fillfactor = 50);

-- ---------------------------------------------------------------------------
-- Helpers.

-- quota_subject: display name of a quota's subject: the key's prefix for
-- kind 'key' (its id if the key is gone), else the id.
create or replace function tollgate.quota_subject(p_kind text, p_subject_id text)
returns text
language sql stable
as $$
    select case
             when p_kind = 'key' then
                 coalesce((select k.prefix from tollgate.api_keys k
                            where k.id = case when p_subject_id ~ '^[0-9]{1,18}$'
                                              then p_subject_id::bigint end),
                          p_subject_id)
             else p_subject_id
           end
$$;

-- price_upper_micros: a true upper bound of the cost of a request of
-- p_input prompt tokens (of any kind: plain, cache read or cache write) and
-- at most p_output output tokens: input at the highest of the input,
-- cache-write and cache-read rates, output at the output rate, rounded up to
-- the micro-dollar; price in force at p_at; 0 if none. Null counts are 0.
create or replace function tollgate.price_upper_micros(p_model  text,
                                                       p_at     timestamptz,
                                                       p_input  bigint,
                                                       p_output bigint)
returns bigint
language plpgsql stable
as $$
declare
    v_micros bigint;
begin
    select ceil((  coalesce(p_input, 0)::numeric
                     * greatest(p.input_micros_per_mtok, p.cache_write_micros_per_mtok,
                                p.cache_read_micros_per_mtok)
                 + coalesce(p_output, 0)::numeric * p.output_micros_per_mtok
                ) / 1000000)::bigint
      into v_micros
      from tollgate.prices p
     where p.model = p_model
       and p.effective_from <= p_at
     order by p.effective_from desc
     limit 1;
    return coalesce(v_micros, 0);
end
$$;

-- price_micros (sql/001_core.sql) again, same contract and formula, in
-- PL/pgSQL so that settle and record_usage, which call it on every
-- request, reuse its plan instead of re-parsing it (see quota_timezone).
create or replace function tollgate.price_micros(p_model       text,
                                                 p_at          timestamptz,
                                                 p_input       bigint,
                                                 p_output      bigint,
                                                 p_cache_read  bigint,
                                                 p_cache_write bigint)
returns bigint
language plpgsql stable
as $$
declare
    v_micros bigint;
begin
    select round((  coalesce(p_input, 0)::numeric       * p.input_micros_per_mtok
                  + coalesce(p_output, 0)::numeric      * p.output_micros_per_mtok
                  + coalesce(p_cache_read, 0)::numeric  * p.cache_read_micros_per_mtok
                  + coalesce(p_cache_write, 0)::numeric * p.cache_write_micros_per_mtok
                 ) / 1000000)::bigint
      into v_micros
      from tollgate.prices p
     where p.model = p_model
       and p.effective_from <= p_at
     order by p.effective_from desc
     limit 1;
    return coalesce(v_micros, 0);
end
$$;

-- ---------------------------------------------------------------------------
-- Sweeper.

-- sweep_reservations: releases every reservation that expired
-- (expires_at < clock) or whose holder is in p_dead_holders: its amounts
-- are taken back from the rows in its quota_ids (floor 0) and it is
-- deleted. Returns how many were released. Safe against a concurrent settle
-- of the same request: whichever deletes the reservation first releases it.
create or replace function tollgate.sweep_reservations(p_dead_holders text[] default null)
returns integer
language plpgsql volatile
as $$
declare
    v_now   timestamptz := tollgate.clock();
    v_count integer;
    v_ids   bigint[];
    v_tok   bigint[];
    v_usd   bigint[];
    v_req   bigint[];
begin
    with gone as (
        delete from tollgate.reservations rv
         where rv.expires_at < v_now
            or rv.holder = any (p_dead_holders)
        returning rv.tokens, rv.usd_micros, rv.quota_ids
    ), per_quota as (
        select qid, sum(g.tokens)::bigint as tok, sum(g.usd_micros)::bigint as usd,
               count(*)::bigint as req
          from gone g, unnest(g.quota_ids) as qid
         group by qid
    )
    select (select count(*) from gone),
           (select array_agg(p.qid order by p.qid) from per_quota p),
           (select array_agg(p.tok order by p.qid) from per_quota p),
           (select array_agg(p.usd order by p.qid) from per_quota p),
           (select array_agg(p.req order by p.qid) from per_quota p)
      into v_count, v_ids, v_tok, v_usd, v_req;

    if v_ids is not null then
        perform 1 from tollgate.quotas q where q.id = any (v_ids) order by q.id for update;
        update tollgate.quotas q
           set reserved   = greatest(0, q.reserved - case q.metric when 'tokens' then d.tok
                                                                   when 'requests' then d.req
                                                                   else d.usd end),
               updated_at = v_now
          from unnest(v_ids, v_tok, v_usd, v_req) as d(id, tok, usd, req)
         where q.id = any (v_ids) and q.id = d.id;
    end if;

    return v_count;
end
$$;

-- release: gives back at once the reservation of a request that never
-- reached the provider (nothing to settle: upstream unreachable, client
-- gone before the call): its amounts are taken back from the rows in its
-- quota_ids (floor 0) and it is deleted. Returns true if there was one,
-- false otherwise (already settled, swept or released: safe to repeat).
-- Not in the first interface sheet; fcgi/db.c prepares it.
create or replace function tollgate.release(p_request_id uuid)
returns boolean
language plpgsql volatile
as $$
declare
    v_now    timestamptz := tollgate.clock();
    v_tokens bigint;
    v_usd    bigint;
    v_qids   bigint[];
    v_bnames text[];
begin
    delete from tollgate.reservations rv
     where rv.request_id = p_request_id
    returning rv.tokens, rv.usd_micros, rv.quota_ids, rv.buckets
         into v_tokens, v_usd, v_qids, v_bnames;
    if v_qids is null then
        return false;
    end if;
    -- the request was refused after all: its bucket tokens go back (a refill
    -- caps the bucket at its max_tokens again)
    if cardinality(v_bnames) > 0 then
        perform 1 from tollgate.rate_buckets rb
         where rb.bucket = any (v_bnames) order by rb.bucket for update;
        update tollgate.rate_buckets rb
           set tokens = rb.tokens + 1
         where rb.bucket = any (v_bnames);
    end if;
    perform 1 from tollgate.quotas q where q.id = any (v_qids) order by q.id for update;
    update tollgate.quotas q
       set reserved   = greatest(0, q.reserved - case q.metric when 'tokens' then v_tokens
                                                               when 'requests' then 1
                                                               else v_usd end),
           updated_at = v_now
     where q.id = any (v_qids);
    return true;
end
$$;

-- reservation_holders: the distinct holders ('host:pid') of reservations
-- held by workers of host p_host, for the sweeper to check which are dead.
create or replace function tollgate.reservation_holders(p_host text)
returns setof text
language sql stable
as $$
    select distinct rv.holder
      from tollgate.reservations rv
     where left(rv.holder, length(p_host) + 1) = p_host || ':'
     order by 1
$$;

-- ---------------------------------------------------------------------------
-- Admin (tollgatectl quota ...). Each change writes one audit_log row:
-- subject '<kind>:<subject> <metric>/<window>', before/after = the row as
-- jsonb (before null for a new quota). A null actor is the session user.

-- quota_subject_id: the stored subject_id for (p_kind, p_subject): the key
-- id for a key prefix (error if unknown), the id itself for user and group.
create or replace function tollgate.quota_subject_id(p_kind text, p_subject text)
returns text
language plpgsql stable
as $$
declare
    v_id bigint;
begin
    if p_kind = 'key' then
        select k.id into v_id from tollgate.api_keys k where k.prefix = p_subject;
        if v_id is null then
            raise exception 'no key with prefix "%"', p_subject using errcode = 'no_data_found';
        end if;
        return v_id::text;
    elsif p_kind in ('user', 'group') then
        if p_subject is null or p_subject !~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$' then
            raise exception 'invalid % id "%"', p_kind, p_subject using errcode = 'invalid_parameter_value';
        end if;
        return p_subject;
    else
        raise exception 'unknown quota subject kind "%" (key, user or group)', p_kind
              using errcode = 'invalid_parameter_value';
    end if;
end
$$;

-- quota_set: creates or updates the quota (p_kind, p_subject, p_metric,
-- p_window) with limit p_limit (usd in micros) and, if given, warn_pct.
-- A new quota starts empty in the current window. Groups are created on
-- first use; users are not (a user row needs its group, and a user keeps
-- its first group, so key_create must be the one to create it), only their
-- id is checked. Returns the quota id.
create or replace function tollgate.quota_set(p_kind     text,
                                              p_subject  text,
                                              p_metric   text,
                                              p_window   text,
                                              p_limit    bigint,
                                              p_actor    text,
                                              p_warn_pct integer default null)
returns bigint
language plpgsql volatile
as $$
declare
    v_now    timestamptz := tollgate.clock();
    v_sid    text := tollgate.quota_subject_id(p_kind, p_subject);
    v_before tollgate.quotas;
    v_after  tollgate.quotas;
begin
    if p_kind = 'group' then
        insert into tollgate.groups (id) values (p_subject) on conflict (id) do nothing;
    end if;

    select * into v_before
      from tollgate.quotas q
     where q.subject_kind = p_kind and q.subject_id = v_sid
       and q.metric = p_metric and q."window" = p_window
       for update;

    if found then
        update tollgate.quotas q
           set limit_value = p_limit,
               warn_pct    = coalesce(p_warn_pct, q.warn_pct),
               updated_at  = v_now
         where q.id = v_before.id
        returning * into v_after;
    else
        insert into tollgate.quotas
               (subject_kind, subject_id, metric, "window", limit_value, window_start,
                warn_pct, created_at, updated_at)
        values (p_kind, v_sid, p_metric, p_window, p_limit,
                coalesce(tollgate.window_start(p_window, v_now), v_now),
                coalesce(p_warn_pct, 80), v_now, v_now)
        returning * into v_after;
        v_before := null;
    end if;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'quota.set',
            p_kind || ':' || p_subject || ' ' || p_metric || '/' || p_window,
            case when v_before.id is null then null else to_jsonb(v_before) end,
            to_jsonb(v_after));

    return v_after.id;
end
$$;

-- quota_change: shared by quota_adjust and quota_reset (p_action).
create or replace function tollgate.quota_change(p_action  text,
                                                 p_kind    text,
                                                 p_subject text,
                                                 p_metric  text,
                                                 p_window  text,
                                                 p_by      bigint,
                                                 p_actor   text)
returns bigint
language plpgsql volatile
as $$
declare
    v_now    timestamptz := tollgate.clock();
    v_sid    text := tollgate.quota_subject_id(p_kind, p_subject);
    v_label  text := p_kind || ':' || p_subject || ' ' || p_metric || '/' || p_window;
    v_before tollgate.quotas;
    v_after  tollgate.quotas;
begin
    select * into v_before
      from tollgate.quotas q
     where q.subject_kind = p_kind and q.subject_id = v_sid
       and q.metric = p_metric and q."window" = p_window
       for update;
    if not found then
        raise exception 'no quota %', v_label using errcode = 'no_data_found';
    end if;

    if p_action = 'quota.adjust' then
        update tollgate.quotas q
           set limit_value = greatest(0, q.limit_value + coalesce(p_by, 0)),
               updated_at  = v_now
         where q.id = v_before.id
        returning * into v_after;
    else
        update tollgate.quotas q
           set used         = 0,
               alerted_pct  = 0,
               window_start = tollgate.window_start(q."window", v_now),
               updated_at   = v_now
         where q.id = v_before.id
        returning * into v_after;
    end if;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), p_action, v_label,
            to_jsonb(v_before), to_jsonb(v_after));

    return v_after.id;
end
$$;

-- quota_adjust: limit_value += p_by (floor 0). Error if no such quota.
create or replace function tollgate.quota_adjust(p_kind    text,
                                                 p_subject text,
                                                 p_metric  text,
                                                 p_window  text,
                                                 p_by      bigint,
                                                 p_actor   text)
returns bigint
language sql volatile
as $$
    select tollgate.quota_change('quota.adjust', p_kind, p_subject, p_metric, p_window, p_by, p_actor)
$$;

-- quota_reset: used = 0, alerted_pct = 0, window_start = the current
-- window's start; reserved is kept (in-flight requests still hold it).
-- Error if no such quota.
create or replace function tollgate.quota_reset(p_kind    text,
                                                p_subject text,
                                                p_metric  text,
                                                p_window  text,
                                                p_actor   text)
returns bigint
language sql volatile
as $$
    select tollgate.quota_change('quota.reset', p_kind, p_subject, p_metric, p_window, null, p_actor)
$$;

-- quota_rollover: rolls every quota whose window has passed (used = 0,
-- alerted_pct = 0, window_start = current start; reserved kept), locking
-- them in id order; one 'quota.rollover' audit row each. Returns how many.
create or replace function tollgate.quota_rollover(p_actor text)
returns integer
language plpgsql volatile
as $$
declare
    v_now   timestamptz := tollgate.clock();
    v_tz    text := tollgate.quota_timezone();
    v_count integer;
begin
    with due as materialized (
        select q.id, to_jsonb(q) as before
          from tollgate.quotas q
         where tollgate.window_start_tz(q."window", v_now, v_tz) > q.window_start
         order by q.id
           for update
    ), rolled as (
        update tollgate.quotas q
           set used         = 0,
               alerted_pct  = 0,
               window_start = tollgate.window_start_tz(q."window", v_now, v_tz),
               updated_at   = v_now
          from due
         where q.id = due.id
        returning q.*, due.before
    ), audited as (
        insert into tollgate.audit_log (actor, action, subject, before, after)
        select coalesce(p_actor, session_user), 'quota.rollover',
               r.subject_kind || ':' || tollgate.quota_subject(r.subject_kind, r.subject_id)
                   || ' ' || r.metric || '/' || r."window",
               r.before,
               to_jsonb(r) - 'before'
          from rolled r
         order by r.id
        returning 1
    )
    select count(*) into v_count from audited;
    return v_count;
end
$$;

-- quota_list: every quota as of tollgate.clock() (a passed window shows as
-- rolled: used 0 in the current window), for `tollgatectl quota show`.
-- subject is the key prefix for keys; usd amounts are micros.
create or replace view tollgate.quota_list as
    select q.id, q.subject_kind,
           tollgate.quota_subject(q.subject_kind, q.subject_id) as subject,
           q.metric, q."window", q.limit_value,
           e.used, q.reserved,
           greatest(0, q.limit_value - e.used - q.reserved) as remaining,
           e.window_start,
           tollgate.window_end_tz(q."window", e.window_start, c.tz) as window_end,
           q.warn_pct
      from tollgate.quotas q
     cross join (select tollgate.clock() as now, tollgate.quota_timezone() as tz) c
     cross join lateral (
           select tollgate.window_start_tz(q."window", c.now, c.tz) as cur) w
     cross join lateral (
           select case when w.cur > q.window_start then 0 else q.used end as used,
                  greatest(w.cur, q.window_start) as window_start) e;

