-- 010_settle_batch.sql — settle for many requests in one statement (issue 9).
--
-- The worker settles through a group commit (fcgi/settle.c): whatever usage
-- records are waiting when a batch starts go to tollgate.settle_batch in one
-- round trip and one commit. Same contract as tollgate.settle (006), per
-- record: the usage row is written once (idempotent by (request_id, ts)), it
-- is priced by tollgate.price_micros (009), and only a row actually inserted
-- counts towards the quotas of its key, user and group, gives back its
-- reservation and may raise threshold alerts. Set-based: the rows are
-- inserted by one INSERT, the quota rows they touch are locked in id order
-- (as reserve, release and sweep lock them: no deadlock) and updated by one
-- UPDATE, whatever the batch's size.
--
-- A record with a negative token count, or for a model without a price,
-- makes the whole call fail with nothing written: the worker then settles
-- the batch's records one at a time, and the refused one goes to its dead
-- letter. Applied like the others inside one transaction; safe to re-run.
--
-- enable_seqscan = off: every lookup here is by a key (quotas by id or by
-- subject, reservations and usage by request id), but the generic plans
-- otherwise scan the whole quotas table once per join (measured: 2.2 ms per
-- batch over 951 quota rows, against 0.1 ms by index).

-- unpriced: raises the error a usage row of an unpriced model gets (used in
-- an expression, so that the message names the model).
create or replace function tollgate.unpriced(p_model text)
returns bigint
language plpgsql immutable
as $$
begin
    raise exception 'model "%" has no price: its usage cannot be settled', p_model
          using errcode = 'check_violation',
                hint = 'set one with tollgatectl price set, then replay the dead letter';
end
$$;

-- settle_batch: p_rows is a JSON array of usage records, each an object with
-- the keys request_id, ts (null: the clock), api_key_id, user_id, group_id,
-- provider, model, input_tokens, output_tokens, cache_read_tokens,
-- cache_write_tokens (every cache write), cache_write_1h_tokens (the part of
-- them at the 1-hour rate), web_search_requests, http_status, latency_ms,
-- upstream_ms, stream, outcome, usage_source. Returns one row per record:
-- its position in p_rows (ord, from 1), request id and stored cost (the
-- earlier row's cost for a record already settled); alerts is the JSON
-- array of the thresholds the batch crossed, on the first row only ('[]'
-- if none; null on the others).
create or replace function tollgate.settle_batch(p_rows jsonb)
returns table (ord integer, request_id uuid, cost_micros bigint, alerts jsonb)
language plpgsql volatile
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_now     timestamptz := tollgate.clock();
    v_tz      text;
    v_ids     uuid[];          -- the rows inserted by this call
    v_keys    bigint[];
    v_users   text[];
    v_groups  text[];
    v_tokens  bigint[];
    v_costs   bigint[];
    v_last    timestamptz[];
    v_alerts  jsonb := '[]';
begin
    -- 1. The usage rows, priced; a replayed record meets its earlier row.
    with src as (
        select x.*
          from rows from (jsonb_to_recordset(p_rows) as (
                   request_id uuid, ts timestamptz, api_key_id bigint, user_id text,
                   group_id text, provider text, model text, input_tokens integer,
                   output_tokens integer, cache_read_tokens integer,
                   cache_write_tokens integer, cache_write_1h_tokens integer,
                   web_search_requests integer, http_status integer, latency_ms integer,
                   upstream_ms integer, stream boolean, outcome text, usage_source text))
               with ordinality as x(request_id, ts, api_key_id, user_id, group_id, provider,
                                    model, input_tokens, output_tokens, cache_read_tokens,
                                    cache_write_tokens, cache_write_1h_tokens,
                                    web_search_requests, http_status, latency_ms, upstream_ms,
                                    stream, outcome, usage_source, ord)
    ), ins as (
        insert into tollgate.usage as u
               (request_id, ts, api_key_id, user_id, group_id, provider, model,
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                cache_write_1h_tokens, web_search_requests, cost_micros, http_status,
                latency_ms, upstream_ms, stream, outcome, usage_source)
        select s.request_id, coalesce(s.ts, v_now), s.api_key_id, s.user_id, s.group_id,
               coalesce(s.provider, ''), coalesce(s.model, ''),
               coalesce(s.input_tokens, 0), coalesce(s.output_tokens, 0),
               coalesce(s.cache_read_tokens, 0), coalesce(s.cache_write_tokens, 0),
               coalesce(s.cache_write_1h_tokens, 0), coalesce(s.web_search_requests, 0),
               coalesce(tollgate.price_micros(s.model, coalesce(s.ts, v_now),
                                              s.input_tokens, s.output_tokens,
                                              s.cache_read_tokens, s.cache_write_tokens,
                                              s.cache_write_1h_tokens, s.web_search_requests),
                        tollgate.unpriced(s.model)),
               s.http_status, s.latency_ms, s.upstream_ms, coalesce(s.stream, false),
               coalesce(s.outcome, ''), coalesce(s.usage_source, 'provider')
          from src s
         order by s.ord
        on conflict (request_id, ts) do nothing
        returning u.request_id, u.ts, u.api_key_id, u.user_id, u.group_id, u.cost_micros,
                  u.input_tokens::bigint + u.output_tokens + u.cache_read_tokens
                      + u.cache_write_tokens as tokens
    )
    select array_agg(i.request_id), array_agg(i.api_key_id), array_agg(i.user_id),
           array_agg(i.group_id), array_agg(i.tokens), array_agg(i.cost_micros),
           array_agg(i.ts)
      into v_ids, v_keys, v_users, v_groups, v_tokens, v_costs, v_last
      from ins i;

    if v_ids is not null then
        -- 2. Keys' last use, at most once a minute each.
        update tollgate.api_keys k
           set last_used_at = m.ts
          from (select l.key_id, max(l.ts) as ts
                  from unnest(v_keys, v_last) as l(key_id, ts)
                 where l.key_id is not null
                 group by l.key_id) m
         where k.id = m.key_id
           and (k.last_used_at is null or k.last_used_at < m.ts - interval '60 s');

        -- 3. Quotas: what the inserted rows used, and the reservations they
        -- give back, applied to every row they touch in one update.
        if exists (select 1 from tollgate.quotas limit 1) then
            if exists (select 1 from tollgate.quotas q where q."window" in ('day', 'month')) then
                v_tz := tollgate.quota_timezone();
            end if;
            with inserted as (
                select * from unnest(v_ids, v_keys, v_users, v_groups, v_tokens, v_costs)
                              as i(request_id, key_id, user_id, group_id, tokens, cost)
            ), gone as (
                delete from tollgate.reservations rv
                 where rv.request_id = any (v_ids)
                returning rv.tokens, rv.usd_micros, rv.quota_ids
            ), used_add as (
                -- the rows of each inserted row's key, user and group: three
                -- equality probes of quotas' unique (subject_kind, subject_id, ...)
                select q.id,
                       sum(case q.metric when 'tokens' then i.tokens
                                         when 'requests' then 1
                                         else i.cost end)::bigint as amount
                  from inserted i
                 cross join lateral (
                           select k.id, k.metric from tollgate.quotas k
                            where k.subject_kind = 'key' and k.subject_id = i.key_id::text
                           union all
                           select u.id, u.metric from tollgate.quotas u
                            where u.subject_kind = 'user' and u.subject_id = i.user_id
                           union all
                           select g.id, g.metric from tollgate.quotas g
                            where g.subject_kind = 'group' and g.subject_id = i.group_id) q
                 group by q.id
            ), reserved_back as (
                select q.id,
                       sum(case q.metric when 'tokens' then g.tokens
                                         when 'requests' then 1
                                         else g.usd_micros end)::bigint as amount
                  from gone g
                  cross join lateral unnest(g.quota_ids) as qid
                  join tollgate.quotas q on q.id = qid
                 group by q.id
            ), touched as (
                select q.id, q.metric, q."window" as win, q.limit_value, q.warn_pct,
                       q.used, q.window_start, q.alerted_pct, q.subject_kind, q.subject_id,
                       coalesce(ua.amount, 0) as add_used,
                       coalesce(rb.amount, 0) as give_back,
                       tollgate.window_start_tz(q."window", v_now, v_tz) as cur_start
                  from tollgate.quotas q
                  left join used_add ua on ua.id = q.id
                  left join reserved_back rb on rb.id = q.id
                 where q.id in (select id from used_add union select id from reserved_back)
                 order by q.id
                   for update of q
            ), next as (
                select t.*,
                       case when t.cur_start > t.window_start then t.add_used
                            else t.used + t.add_used end as new_used,
                       case when t.cur_start > t.window_start then 0
                            else t.alerted_pct end as old_alerted,
                       greatest(t.cur_start, t.window_start) as new_start
                  from touched t
            ), leveled as (
                select n.*,
                       case when n.metric = 'requests' or n.new_used <= 0 or n.add_used = 0
                                 then n.old_alerted
                            when n.new_used * 100::numeric >= 100 * n.limit_value::numeric
                                 then greatest(n.old_alerted, 100)
                            when n.new_used * 100::numeric >= n.warn_pct * n.limit_value::numeric
                                 then greatest(n.old_alerted, n.warn_pct)
                            else n.old_alerted end as new_alerted
                  from next n
            ), upd as (
                update tollgate.quotas q
                   set used         = l.new_used,
                       reserved     = greatest(0, q.reserved - l.give_back),
                       window_start = l.new_start,
                       alerted_pct  = l.new_alerted,
                       updated_at   = v_now
                  from leveled l
                 where q.id = l.id
                returning q.id
            ), crossed as (
                -- each threshold (warn_pct, 100) now reached and not raised before
                select l.id, l.new_start, t.pct, l.new_used, l.limit_value, l.subject_kind,
                       l.subject_id, l.metric, l.win
                  from leveled l
                  cross join lateral (values (l.warn_pct), (100)) as t(pct)
                 where t.pct > l.old_alerted and t.pct <= l.new_alerted
                   and l.id in (select id from upd)
            ), raised as (
                insert into tollgate.quota_alerts as qa
                       (ts, quota_id, window_start, threshold_pct, used, limit_value)
                select v_now, c.id, c.new_start, c.pct, c.new_used, c.limit_value
                  from crossed c
                 order by c.id, c.pct
                on conflict (quota_id, window_start, threshold_pct) do nothing
                returning qa.quota_id, qa.threshold_pct
            )
            select coalesce(jsonb_agg(jsonb_build_object(
                       'quota_id', c.id,
                       'subject', c.subject_kind || ' "'
                                  || tollgate.quota_subject(c.subject_kind, c.subject_id) || '"',
                       'metric', c.metric, 'window', c.win, 'threshold_pct', c.pct,
                       'used', c.new_used, 'limit', c.limit_value) order by c.id, c.pct),
                   '[]'::jsonb)
              into v_alerts
              from crossed c
              join raised r on r.quota_id = c.id and r.threshold_pct = c.pct;
        else
            delete from tollgate.reservations rv where rv.request_id = any (v_ids);
        end if;
    end if;

    -- 4. One answer per record, in order: the cost stored for it.
    return query
        select x.ord::integer, x.request_id, u.cost_micros,
               case when x.ord = 1 then v_alerts end
          from rows from (jsonb_to_recordset(p_rows) as (request_id uuid, ts timestamptz))
               with ordinality as x(request_id, ts, ord)
          left join lateral (
                select u.cost_micros from tollgate.usage u
                 where u.request_id = x.request_id and u.ts = coalesce(x.ts, v_now)
                 limit 1) u on true
         order by x.ord;
end
$$;
