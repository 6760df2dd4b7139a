-- 008_denials.sql — requests refused before the provider, counted (issue 5):
-- how many requests were blocked per day, group, user, key, reason and HTTP
-- status, behind sql/reports/blocked.sql.
--
-- A refused request (401, 403, 429, 400, 503 …) writes no usage row, and its
-- reserve transaction writes nothing, by design: a burst of 429s must not
-- turn a quota row into a hot spot. Each worker process counts refusals in
-- memory instead (fcgi/denials.c) and adds them here in one statement per
-- quotas.sweep_interval_ms, tollgate.denials_add, and once more when it stops
-- gracefully. The counts are exact, late by at most one sweep interval; a
-- worker killed with -9 loses the counts of its last interval.
--
-- day is the UTC day of the refusal (the worker keys its counters by it), not
-- a day of tollgate.settings' time zone as in the chargeback views.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run.

create table if not exists tollgate.denials (
    day         date   not null,
    group_id    text,              -- null: refused before the caller was known
    user_id     text,
    api_key_id  bigint,            -- null: no key (a JWT caller, or not known)
    reason      text   not null,   -- the request's outcome: rejected, quota_exceeded,
                                   -- rate_limited, database_unavailable; overflow
    http_status int    not null,   -- the status sent; 0 for reason overflow
    requests    bigint not null check (requests > 0)
);

-- NULLS NOT DISTINCT: a refusal without a group, user or key still has one
-- counter per day, reason and status, which denials_add's upsert needs.
create unique index if not exists denials_key
    on tollgate.denials (day, group_id, user_id, api_key_id, reason, http_status)
    nulls not distinct;

-- The batches denials_add applied (a week's worth), so a worker may resend
-- one whose answer it did not get.
create table if not exists tollgate.denial_batches (
    batch      uuid        primary key,
    applied_at timestamptz not null default now()
);

create index if not exists denial_batches_applied_at on tollgate.denial_batches (applied_at);

-- denials_add: adds p_rows — a JSON array of {"day": "YYYY-MM-DD",
-- "group_id", "user_id" (strings; null or "": none), "api_key_id" (null or
-- 0: none), "reason", "http_status", "requests" (> 0)} — to
-- tollgate.denials, summing into the counters already there (rows of p_rows
-- with the same key are summed first). p_batch, when given, makes the call
-- idempotent: a batch id applied in the last 7 days adds nothing (the worker
-- resends a batch whose answer was lost). Returns the requests added: 0 for
-- an empty array or a batch already applied. A row without day, reason or
-- http_status, or whose requests is not positive, refuses the whole call
-- (invalid_parameter_value), batch id included.
create or replace function tollgate.denials_add(p_rows jsonb, p_batch uuid default null)
returns bigint
language plpgsql volatile
as $$
declare
    v_bad   bigint;
    v_added bigint;
begin
    if jsonb_typeof(p_rows) is distinct from 'array' then
        raise exception 'denials_add: p_rows must be a JSON array'
              using errcode = 'invalid_parameter_value';
    end if;
    select count(*) filter (where r.day is null or r.reason is null or r.http_status is null
                                  or r.requests is null or r.requests <= 0),
           coalesce(sum(r.requests), 0)
      into v_bad, v_added
      from jsonb_to_recordset(p_rows) as r(day date, reason text, http_status int,
                                            requests bigint);
    if v_bad > 0 then
        raise exception 'denials_add: every row needs day, reason, http_status and requests > 0 (% do not)',
              v_bad using errcode = 'invalid_parameter_value';
    end if;
    if p_batch is not null then
        delete from tollgate.denial_batches where applied_at < now() - interval '7 days';
        -- a concurrent call with the same id waits here for the first to commit
        insert into tollgate.denial_batches (batch) values (p_batch)
        on conflict (batch) do nothing;
        if not found then
            return 0;
        end if;
    end if;
    -- in key order, so that workers flushing at the same moment lock shared
    -- counters in the same order and cannot deadlock
    insert into tollgate.denials as d
           (day, group_id, user_id, api_key_id, reason, http_status, requests)
    select r.day, nullif(r.group_id, ''), nullif(r.user_id, ''), nullif(r.api_key_id, 0),
           r.reason, r.http_status, sum(r.requests)
      from jsonb_to_recordset(p_rows) as r(day date, group_id text, user_id text,
                                            api_key_id bigint, reason text,
                                            http_status int, requests bigint)
     group by 1, 2, 3, 4, 5, 6
     order by 1, 2, 3, 4, 5, 6
    on conflict (day, group_id, user_id, api_key_id, reason, http_status)
    do update set requests = d.requests + excluded.requests;
    return v_added;
end
$$;
