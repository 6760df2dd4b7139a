-- 011_reserve_fast.sql — reserve, identify and RBAC rebuilt for speed
-- (issue 9): same contracts as in 004_identity.sql, plus the status
-- 'unpriced_model' and the parameter p_max_web_searches of reserve.
--
-- Where 004 spent its time (PostgreSQL 15): RBAC called glob_match, a SQL
-- function with a sublink, which PostgreSQL can neither inline nor cache,
-- so it parsed and planned it again at each of its five call sites on every
-- request; identify was a second set-returning PL/pgSQL function; reserve
-- walked the quota rows with a dozen PL/pgSQL statements per row. Here:
--
--   glob_match        inlinable: an exact name is an array equality; only a
--                     name equal to no entry reaches glob_match_wild, a
--                     PL/pgSQL loop over the entries holding a wildcard;
--   identity_resolve  identify's work, shared by identify and reserve: not
--                     set-returning, called as an expression; for a key
--                     without attribution ONE statement reads the key, its
--                     group's and role's RBAC lists, judges them and tells
--                     whether any quota row applies;
--   reserve           the fast path: no quota row applies and the call has
--                     no bucket rule — identity_resolve and the price, no
--                     write, no lock; otherwise one statement locks the quota
--                     rows in id order, rolls their windows and judges, and
--                     picks the rows for the header columns (aggregates,
--                     no per-row PL/pgSQL), and one statement writes the
--                     reservation and the rows.
--
-- Lessons that keep it fast (each measured): a SQL function is inlined only
-- if its arguments are simple — window_start_tz(..., (select tz ...)) is
-- parsed and planned again per call; window starts are computed once per
-- call, not per row; planner-chosen seq scans and hash joins of small tables
-- (groups, roles) cost more than index lookups, hence enable_seqscan = off
-- on these functions (every lookup in them is by a unique key).
--
-- Guarantees as before: a request's quota rows are locked FOR UPDATE in id
-- order (after its buckets, in name order), like settle, release and the
-- sweeper, so they cannot deadlock; the verdict is taken on the locked rows;
-- all rows or none; a denial writes nothing.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run.

-- ---------------------------------------------------------------------------
-- Globs.

-- glob_like: the LIKE pattern (escape '\') of glob p_glob: '*' any run, '?'
-- one character, everything else literal ('%', '_' and '\' included).
create or replace function tollgate.glob_like(p_glob text)
returns text
language sql immutable
as $$
    select replace(replace(replace(replace(replace(
               p_glob, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_')
$$;

-- glob_match_wild: true when p_name matches one of the entries of p_patterns
-- that hold a wildcard ('*' or '?'); false for a null name or array. (An
-- entry without one matches only its own text: glob_match tests that first.)
create or replace function tollgate.glob_match_wild(p_name text, p_patterns text[])
returns boolean
language plpgsql immutable
as $$
declare
    v_pattern text;
begin
    if p_name is null or p_patterns is null then
        return false;
    end if;
    foreach v_pattern in array p_patterns loop
        if (strpos(v_pattern, '*') > 0 or strpos(v_pattern, '?') > 0)
           and p_name like tollgate.glob_like(v_pattern) then
            return true;
        end if;
    end loop;
    return false;
end
$$;

-- glob_match: true when p_name matches one of p_patterns ('*' any run, '?'
-- one character, everything else literal); null p_patterns match anything,
-- an empty array nothing, a null name only null patterns. Never null.
-- Inlinable (no sublink), so a caller's plan holds it.
create or replace function tollgate.glob_match(p_name text, p_patterns text[])
returns boolean
language sql immutable
as $$
    select p_patterns is null
        or coalesce(p_name = any (p_patterns), false)
        or tollgate.glob_match_wild(p_name, p_patterns)
$$;

-- ---------------------------------------------------------------------------
-- RBAC.

-- rbac_denial: which restriction refuses p_endpoint / p_model, given the
-- allowed lists of a group, a role and a key (null: no restriction), in the
-- order 1 group endpoint, 2 role endpoint, 3 group model, 4 role model, 5 key
-- model; 0 when every one allows it. A null p_model is not checked.
create or replace function tollgate.rbac_denial(p_endpoint        text,
                                                p_model           text,
                                                p_group_endpoints text[],
                                                p_group_models    text[],
                                                p_role_endpoints  text[],
                                                p_role_models     text[],
                                                p_key_models      text[])
returns integer
language sql immutable
as $$
    select case when not tollgate.glob_match(p_endpoint, p_group_endpoints) then 1
                when not tollgate.glob_match(p_endpoint, p_role_endpoints) then 2
                when p_model is null then 0
                when not tollgate.glob_match(p_model, p_group_models) then 3
                when not tollgate.glob_match(p_model, p_role_models) then 4
                when not tollgate.glob_match(p_model, p_key_models) then 5
                else 0 end
$$;

-- access_denial: as in 004 (why p_endpoint / p_model is refused for a member
-- of group p_group with role p_role through a key allowing p_key_models: one
-- row (denial, subject), none when allowed), now on rbac_denial.
create or replace function tollgate.access_denial(p_endpoint   text,
                                                  p_model      text,
                                                  p_group      text,
                                                  p_role       text,
                                                  p_key_models text[])
returns table (denial text, subject text)
language sql stable
as $$
    select case when d.ord <= 2 then 'endpoint_not_allowed' else 'model_not_allowed' end,
           case d.ord when 1 then 'group "' || p_group || '"'
                      when 3 then 'group "' || p_group || '"'
                      when 2 then 'role "' || p_role || '"'
                      when 4 then 'role "' || p_role || '"'
                      else 'key' end
      from (select tollgate.rbac_denial(p_endpoint, p_model, g.allowed_endpoints, g.allowed_models,
                                        ro.allowed_endpoints, ro.allowed_models, p_key_models) as ord
              from (select 1) as one
              left join tollgate.groups g on g.id = p_group
              left join tollgate.roles ro on ro.id = p_role) as d
     where d.ord > 0
$$;

-- ---------------------------------------------------------------------------
-- Identity.

-- identity_resolve: identify's answer (see identify) at time p_now — and
-- its side effect: an unknown JWT user and group are created when p_create
-- allows — plus has_quota: when p_quotas and the status is 'ok', whether any
-- quota row applies to the identity (its key's, user's or group's).
-- Not set-returning, and a few small statements each planned once per
-- session: it is on every request's path. A key without attribution takes
-- one statement (key, group, role, RBAC verdict and has_quota at once).
-- enable_seqscan = off: every lookup here is by a unique key, and on small
-- tables the planner would rather scan and hash them whole, at a cost of
-- microseconds per row on every call.
create or replace function tollgate.identity_resolve(p_key_hash     bytea,
                                                     p_user         text,
                                                     p_group        text,
                                                     p_role         text,
                                                     p_create       boolean,
                                                     p_end_user     text,
                                                     p_end_group    text,
                                                     p_endpoint     text,
                                                     p_model        text,
                                                     p_now          timestamptz,
                                                     p_quotas       boolean,
                                                     out status         text,
                                                     out api_key_id     bigint,
                                                     out key_prefix     text,
                                                     out user_id        text,
                                                     out group_id       text,
                                                     out role           text,
                                                     out attribution    text,
                                                     out denied_subject text,
                                                     out has_quota      boolean)
language plpgsql volatile
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    c_id    constant text := '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$';
    v_key   record;
    v_home  text;
    v_group text;
    v_role  text;
    v_own   text;                -- a key's own group, when attribution replaced it
    v_g_ep  text[];
    v_g_mod text[];
    v_r_ep  text[];
    v_r_mod text[];
    v_ord   integer;             -- rbac_denial's, or 6 / 7: the key's own group refuses
begin
    status := 'ok';
    has_quota := false;
    if p_key_hash is not null then
        select k.id, k.prefix, k.user_id, k.group_id, k.role, k.allowed_models,
               k.trusted_attribution, k.revoked_at, k.expires_at,
               g.allowed_endpoints as g_ep, g.allowed_models as g_mod,
               ro.allowed_endpoints as r_ep, ro.allowed_models as r_mod,
               tollgate.rbac_denial(p_endpoint, p_model, g.allowed_endpoints, g.allowed_models,
                                    ro.allowed_endpoints, ro.allowed_models, k.allowed_models) as ord,
               p_quotas
               and (exists (select 1 from tollgate.quotas q
                             where q.subject_kind = 'group' and q.subject_id = k.group_id)
                    or exists (select 1 from tollgate.quotas q
                                where q.subject_kind = 'user' and q.subject_id = k.user_id)
                    or exists (select 1 from tollgate.quotas q
                                where q.subject_kind = 'key' and q.subject_id = k.id::text)) as quota
          into v_key
          from tollgate.api_keys k
          left join tollgate.groups g on g.id = k.group_id
          left join tollgate.roles ro on ro.id = k.role
         where k.key_hash = p_key_hash;
        if not found then
            -- the secret before the last rotation, until previous_expires_at
            select k.id, k.prefix, k.user_id, k.group_id, k.role, k.allowed_models,
                   k.trusted_attribution, k.revoked_at,
                   least(k.expires_at, k.previous_expires_at) as expires_at,
                   g.allowed_endpoints as g_ep, g.allowed_models as g_mod,
                   ro.allowed_endpoints as r_ep, ro.allowed_models as r_mod,
                   tollgate.rbac_denial(p_endpoint, p_model, g.allowed_endpoints, g.allowed_models,
                                        ro.allowed_endpoints, ro.allowed_models, k.allowed_models) as ord,
                   p_quotas
                   and (exists (select 1 from tollgate.quotas q
                                 where q.subject_kind = 'group' and q.subject_id = k.group_id)
                        or exists (select 1 from tollgate.quotas q
                                    where q.subject_kind = 'user' and q.subject_id = k.user_id)
                        or exists (select 1 from tollgate.quotas q
                                    where q.subject_kind = 'key' and q.subject_id = k.id::text)) as quota
              into v_key
              from tollgate.api_keys k
              left join tollgate.groups g on g.id = k.group_id
              left join tollgate.roles ro on ro.id = k.role
             where k.previous_key_hash = p_key_hash;
            if not found then
                status := 'unknown_key';
                return;
            end if;
        end if;
        api_key_id := v_key.id;
        key_prefix := v_key.prefix;
        user_id    := v_key.user_id;
        group_id   := v_key.group_id;
        role       := v_key.role;
        if v_key.revoked_at is not null then
            status := 'revoked';
            return;
        elsif v_key.expires_at <= p_now then
            status := 'expired';
            return;
        end if;
        v_ord := v_key.ord;
        has_quota := v_key.quota;
        if p_end_user is not null or p_end_group is not null then
            if not v_key.trusted_attribution then
                attribution := 'ignored';
            elsif p_end_user !~ c_id or p_end_group !~ c_id then
                status := 'invalid_principal';
                return;
            else
                attribution := 'applied';
                user_id := coalesce(p_end_user, user_id);
                group_id := coalesce(p_end_group, group_id);
                v_group := group_id;
                select g.allowed_endpoints, g.allowed_models into v_g_ep, v_g_mod
                  from tollgate.groups g where g.id = v_group;
                v_ord := tollgate.rbac_denial(p_endpoint, p_model, v_g_ep, v_g_mod,
                                              v_key.r_ep, v_key.r_mod, v_key.allowed_models);
                -- an attributed end group never widens what the key's own group allows
                if v_ord = 0 and v_key.group_id <> v_group then
                    v_own := v_key.group_id;
                    v_ord := case tollgate.rbac_denial(p_endpoint, p_model, v_key.g_ep, v_key.g_mod,
                                                       null, null, null)
                               when 1 then 6 when 3 then 7 else 0 end;
                end if;
                has_quota := null;           -- other rows: asked below
            end if;
        end if;
    else
        user_id  := p_user;
        group_id := p_group;
        role     := coalesce(p_role, 'user');
        if p_user is null or p_user !~ c_id or p_group !~ c_id or role !~ c_id then
            status := 'invalid_principal';
            return;
        end if;
        select u.group_id into v_home from tollgate.users u where u.id = p_user;
        if found then
            group_id := coalesce(p_group, v_home);
            if p_group is not null and p_group <> v_home
               and not exists (select 1 from tollgate.groups g where g.id = p_group) then
                if coalesce(p_create, false) then
                    perform tollgate.create_just_in_time(p_group, null);
                else
                    status := 'unknown_group';
                    return;
                end if;
            end if;
        elsif coalesce(p_create, false) and p_group is not null then
            perform tollgate.create_just_in_time(p_group, p_user);
        else
            status := 'unknown_user';
            return;
        end if;
        v_group := group_id;
        v_role  := role;
        select g.allowed_endpoints, g.allowed_models, ro.allowed_endpoints, ro.allowed_models
          into v_g_ep, v_g_mod, v_r_ep, v_r_mod
          from (select 1) as one
          left join tollgate.groups g on g.id = v_group
          left join tollgate.roles ro on ro.id = v_role;
        v_ord := tollgate.rbac_denial(p_endpoint, p_model, v_g_ep, v_g_mod, v_r_ep, v_r_mod, null);
        has_quota := null;
    end if;

    if v_ord > 0 then
        status := case when v_ord in (1, 2, 6) then 'endpoint_not_allowed'
                       else 'model_not_allowed' end;
        denied_subject := case v_ord when 1 then 'group "' || group_id || '"'
                                     when 3 then 'group "' || group_id || '"'
                                     when 2 then 'role "' || role || '"'
                                     when 4 then 'role "' || role || '"'
                                     when 5 then 'key'
                                     else 'group "' || v_own || '"' end;
        has_quota := false;
        return;
    end if;
    if has_quota is null then
        has_quota := p_quotas
                     and (exists (select 1 from tollgate.quotas q
                                   where q.subject_kind = 'group' and q.subject_id = group_id)
                          or exists (select 1 from tollgate.quotas q
                                      where q.subject_kind = 'user' and q.subject_id = user_id)
                          or exists (select 1 from tollgate.quotas q
                                      where q.subject_kind = 'key' and q.subject_id = api_key_id::text));
    end if;
end
$$;

-- identify: same contract as in 004 — who a request is, and whether it may
-- do what it asks: with p_key_hash the key (current secret, or previous one
-- in its grace period; p_end_user / p_end_group replace its user / group
-- when it is trusted_attribution), without it the JWT principal p_user /
-- p_group / p_role (unknown ones created when p_create, with an audit row).
-- Statuses 'ok', 'unknown_key', 'revoked', 'expired', 'unknown_user',
-- 'unknown_group', 'invalid_principal', 'endpoint_not_allowed',
-- 'model_not_allowed'. Always one row.
create or replace function tollgate.identify(p_key_hash   bytea,
                                             p_user       text,
                                             p_group      text,
                                             p_role       text,
                                             p_create     boolean,
                                             p_end_user   text,
                                             p_end_group  text,
                                             p_endpoint   text,
                                             p_model      text)
returns table (status         text,
               api_key_id     bigint,
               key_prefix     text,
               user_id        text,
               group_id       text,
               role           text,
               attribution    text,
               denied_subject text)
language plpgsql volatile
as $$
begin
    return query
        select i.status, i.api_key_id, i.key_prefix, i.user_id, i.group_id, i.role,
               i.attribution, i.denied_subject
          from tollgate.identity_resolve(p_key_hash, p_user, p_group, p_role, p_create,
                                         p_end_user, p_end_group, p_endpoint, p_model,
                                         tollgate.clock(), false) as i;
end
$$;

-- window_start_in: the start of the current window p_window, given p_starts
-- = the starts of the current minute, hour, day, month and total windows
-- (window_start_tz of each, computed once per call rather than once per row).
create or replace function tollgate.window_start_in(p_window text, p_starts timestamptz[])
returns timestamptz
language sql immutable
as $$
    select case p_window when 'minute' then p_starts[1]
                         when 'hour'   then p_starts[2]
                         when 'day'    then p_starts[3]
                         when 'month'  then p_starts[4]
                         when 'total'  then p_starts[5] end
$$;

-- ---------------------------------------------------------------------------
-- reserve: identify the caller (as identify does) and reserve the request's
-- upper bound on every quota row of its identity (the key's, and its user's
-- and group's: an attributed end user's and team's) and take one token from
-- each global bucket of its bucket rules, all or none. Always exactly one
-- row. status is identify's when not 'ok', else 'unpriced_model' (p_model
-- has no price: price_upper_micros is null), 'rate_limited',
-- 'quota_exceeded' or 'ok'. The usd amount is price_upper_micros of p_model
-- for p_input_tokens in, p_max_output_tokens out (and p_max_web_searches).
-- A null p_model is not priced (0).
-- Header columns (tokens_*, requests_*, warn_*) are filled for 'ok',
-- 'quota_exceeded' and 'rate_limited' when quota rows apply.
-- A repeated p_request_id whose reservation is still held reserves nothing
-- more and answers 'ok', whatever the quotas say now (a retried call is
-- safe). A request to which no quota row and no bucket applies leaves no
-- reservation row and writes nothing (settle does not need one).
-- Negative token counts raise check_violation. Null counts are 0, a null
-- p_ttl_ms means 10 minutes, a null p_holder ''.
-- The old signature (without p_max_web_searches) would make calls ambiguous.
drop function if exists tollgate.reserve(uuid, bytea, text, bigint, bigint, text, integer, jsonb,
                                         text, text, text, boolean, text, text, text);
create or replace function tollgate.reserve(p_request_id        uuid,
                                            p_key_hash          bytea,
                                            p_model             text,
                                            p_input_tokens      bigint,
                                            p_max_output_tokens bigint,
                                            p_holder            text,
                                            p_ttl_ms            integer,
                                            p_buckets           jsonb default null,
                                            p_user              text default null,
                                            p_group             text default null,
                                            p_role              text default null,
                                            p_create            boolean default false,
                                            p_end_user          text default null,
                                            p_end_group         text default null,
                                            p_endpoint          text default '/v1/messages',
                                            p_max_web_searches  bigint default 0)
returns table (status             text,
               api_key_id         bigint,
               key_prefix         text,
               user_id            text,
               group_id           text,
               role               text,
               denied_subject     text,
               denied_metric      text,
               denied_window      text,
               denied_limit       bigint,
               retry_after_s      integer,
               tokens_limit       bigint,
               tokens_remaining   bigint,
               tokens_reset_s     integer,
               requests_limit     bigint,
               requests_remaining bigint,
               requests_reset_s   integer,
               warn_used_pct      integer,
               warn_limit         bigint,
               warn_metric        text,
               warn_reset         timestamptz,
               attribution        text)
language plpgsql volatile
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_now       timestamptz := tollgate.clock();
    v_who       record;
    v_rules     boolean;         -- the call has bucket rules
    v_tokens    bigint;
    v_usd       bigint;
    v_tz        text;
    v_starts    timestamptz[];   -- of the current minute, hour, day, month, total
    -- the quota rows, locked, in id order, as this call sees them (windows rolled)
    v_ids       bigint[];
    v_start     timestamptz[];
    v_win       text[];
    v_kind      text[];
    v_metric    text[];
    v_deny      bigint[];        -- (id, limit) of the first row that refuses the request
    v_tk        bigint[];        -- (remaining, id, limit) of the tightest tokens row,
    v_rq        bigint[];        -- of the tightest requests row,
    v_warn      bigint[];        -- (-used %, id, limit) of the most used row past its warning
    i           integer;
    v_take      boolean;         -- this call adds its amounts
    v_held      boolean := false;  -- a reservation of p_request_id was already held
    r           record;
    -- buckets, in name order
    nb          integer := 0;
    b_name      text[];
    b_tokens    numeric[];
    b_at        timestamptz[];
    v_bdeny     integer := 0;
    v_bretry    integer;
    v_bmax      bigint;
    v_fills     numeric;
    v_tok       numeric;
    v_at        timestamptz;
begin
    -- Who, may it, and does any quota row apply. (An assignment, not a
    -- select: a function call evaluated as an expression, no executor.)
    v_who := tollgate.identity_resolve(p_key_hash, p_user, p_group, p_role, p_create,
                                       p_end_user, p_end_group, p_endpoint, p_model, v_now, true);
    status         := v_who.status;
    api_key_id     := v_who.api_key_id;
    key_prefix     := v_who.key_prefix;
    user_id        := v_who.user_id;
    group_id       := v_who.group_id;
    role           := v_who.role;
    attribution    := v_who.attribution;
    denied_subject := v_who.denied_subject;
    if status <> 'ok' then
        return next;
        return;
    end if;

    if p_input_tokens < 0 or p_max_output_tokens < 0 or p_max_web_searches < 0 then
        raise exception 'reserve: negative token count for request %', p_request_id
              using errcode = 'check_violation';
    end if;
    if p_model is not null then
        v_usd := tollgate.price_upper_micros(p_model, v_now, p_input_tokens, p_max_output_tokens,
                                              p_max_web_searches);
        if v_usd is null then
            status := 'unpriced_model';
            return next;
            return;
        end if;
    end if;

    v_rules := jsonb_typeof(p_buckets) = 'array' and jsonb_array_length(p_buckets) > 0;
    if not v_who.has_quota and not coalesce(v_rules, false) then
        return next;             -- the fast path: nothing to reserve, nothing written
        return;
    end if;
    v_tokens := coalesce(p_input_tokens, 0) + coalesce(p_max_output_tokens, 0);
    v_usd    := coalesce(v_usd, 0);

    -- The gateway sends bucket rules ({bucket: rule name, per: key|user|group|
    -- route, match_key/_user/_group}); the bucket itself is the rule's name and
    -- this request's subject, known only now. Rules whose match does not fit the
    -- identity do not apply. Entries without "per" are taken as named.
    if v_rules then
        select coalesce(jsonb_agg(jsonb_build_object(
                   'bucket', case when x.per is null then x.bucket
                                  else x.bucket || ':' || case x.per
                                      when 'user'  then user_id
                                      when 'group' then group_id
                                      when 'route' then coalesce(x.route, '')
                                      else key_prefix end end,
                   'max_tokens', x.max_tokens, 'tokens_per_fill', x.tokens_per_fill,
                   'fill_interval_ms', x.fill_interval_ms)), '[]'::jsonb)
          into p_buckets
          from jsonb_to_recordset(p_buckets)
               as x(bucket text, per text, route text, match_key text, match_user text,
                    match_group text, max_tokens bigint, tokens_per_fill bigint,
                    fill_interval_ms bigint)
         where (x.match_key is null or x.match_key = key_prefix)
           and (key_prefix is not null or coalesce(x.per, '') <> 'key')  -- no key: no per-key bucket
           and (x.match_user is null or x.match_user = user_id)
           and (x.match_group is null or x.match_group = group_id);
        v_rules := jsonb_array_length(p_buckets) > 0;
        if not v_who.has_quota and not v_rules then
            return next;         -- no rule applies to this identity: nothing written
            return;
        end if;
    end if;

    -- Global buckets: create missing ones full, lock them in name order,
    -- refill (whole fills of tokens_per_fill per fill_interval_ms, capped at
    -- max_tokens; a full bucket's fill clock restarts at v_now).
    if v_rules then
        insert into tollgate.rate_buckets as rb (bucket, tokens, updated_at)
        select distinct x.bucket, x.max_tokens, v_now
          from jsonb_to_recordset(p_buckets) as x(bucket text, max_tokens bigint)
         order by 1
        on conflict (bucket) do nothing;

        for r in
            select rb.bucket, rb.tokens, rb.updated_at,
                   x.max_tokens, x.tokens_per_fill, greatest(x.fill_interval_ms, 1) as fill_ms
              from tollgate.rate_buckets rb
              join (select distinct on (x.bucket) x.bucket, x.max_tokens,
                           x.tokens_per_fill, x.fill_interval_ms
                      from jsonb_to_recordset(p_buckets)
                           as x(bucket text, max_tokens bigint, tokens_per_fill bigint,
                                fill_interval_ms bigint)
                     order by x.bucket) x on x.bucket = rb.bucket
             order by rb.bucket
               for update of rb
        loop
            nb := nb + 1;
            v_fills := greatest(0, floor(extract(epoch from v_now - r.updated_at) * 1000 / r.fill_ms));
            v_tok := r.tokens + v_fills * r.tokens_per_fill;
            if v_tok >= r.max_tokens then
                v_tok := r.max_tokens;
                v_at  := v_now;
            else
                v_at  := r.updated_at + (v_fills * r.fill_ms)::bigint * interval '1 millisecond';
            end if;
            b_name[nb]   := r.bucket;
            b_tokens[nb] := v_tok;
            b_at[nb]     := v_at;
            if v_bdeny = 0 and v_tok < 1 then
                v_bdeny := nb;
                v_bmax  := r.max_tokens;
                -- Seconds until enough whole fills have brought one token.
                v_bretry := greatest(1, ceil(extract(epoch from v_at - v_now)
                                             + ceil((1 - v_tok) / greatest(r.tokens_per_fill, 1))
                                               * r.fill_ms / 1000.0));
            end if;
        end loop;
    end if;

    -- (v_tz a variable, not a subquery: window_start_tz is inlined only
    -- when its arguments are simple)
    select s.value into v_tz from tollgate.settings s where s.key = 'timezone';
    v_tz := coalesce(v_tz, 'UTC');
    v_starts := array[tollgate.window_start_tz('minute', v_now, v_tz),
                      tollgate.window_start_tz('hour', v_now, v_tz),
                      tollgate.window_start_tz('day', v_now, v_tz),
                      tollgate.window_start_tz('month', v_now, v_tz),
                      tollgate.window_start_tz('total', v_now, v_tz)];

    -- Quota rows: lock them in id order, roll their windows, and judge the
    -- request on them in one statement, which also picks the rows the
    -- header columns describe (counting this call's amounts if v_take).
    -- The arrays are filled in one pass, so aligned, in the locked rows'
    -- order. Run again, on the rows already locked, with v_take false when
    -- the call is refused or was held already (the headers then count
    -- only what is reserved).
    v_take := v_bdeny = 0;
    loop
        select array_agg(x.id), array_agg(x.start), array_agg(x.win), array_agg(x.kind),
               array_agg(x.metric),
               min(array[x.id, x.lim]) filter (where x.used + x.res + x.amt > x.lim),
               min(array[greatest(0, x.lim - x.used - x.res - x.add), x.id, x.lim])
                   filter (where x.metric = 'tokens'),
               min(array[greatest(0, x.lim - x.used - x.res - x.add), x.id, x.lim])
                   filter (where x.metric = 'requests'),
               min(array[-x.pct, x.id, x.lim]) filter (where x.pct >= x.warn)
          into v_ids, v_start, v_win, v_kind, v_metric, v_deny, v_tk, v_rq, v_warn
          from (select l.*,
                       -- used % (warnings are for tokens and usd): in bigint while
                       -- it cannot overflow, capped at the bigint maximum beyond
                       case when l.metric = 'requests' then null
                            when l.lim = 0 then 100
                            when l.used + l.res + l.add < 92233720368547758
                                then (l.used + l.res + l.add) * 100 / l.lim
                            else least(floor((l.used + l.res + l.add) * 100::numeric / l.lim),
                                       9223372036854775807)::bigint
                       end as pct
                  from (select q.id, q.subject_kind as kind, q.metric, q."window" as win,
                               q.limit_value as lim, q.reserved as res, q.warn_pct as warn,
                               case when c.cur > q.window_start then 0 else q.used end as used,
                               greatest(c.cur, q.window_start) as start,
                               a.amt, case when v_take then a.amt else 0 end as add
                          from tollgate.quotas q
                         cross join lateral (select tollgate.window_start_in(q."window", v_starts)
                                                    as cur) as c
                         cross join lateral (select case q.metric when 'tokens' then v_tokens
                                                                  when 'requests' then 1
                                                                  else v_usd end as amt) as a
                         where (q.subject_kind, q.subject_id) in (('key', api_key_id::text),
                                                                  ('user', user_id),
                                                                  ('group', group_id))
                         order by q.id
                           for update of q) as l) as x;
        exit when not v_take;
        if v_deny is not null then
            v_take := false;     -- refused: the headers again, without its amounts
            continue;
        end if;
        exit when v_ids is null and nb = 0;    -- nothing applies after all
        -- Admitted: the reservation row (what settle, release or the sweeper
        -- give back) and the quota rows, all or none. A reservation already
        -- held for p_request_id means an earlier call took the amounts.
        with ins as (
            insert into tollgate.reservations as rv
                   (request_id, created_at, expires_at, holder, api_key_id, user_id, group_id,
                    tokens, usd_micros, quota_ids, buckets)
            values (p_request_id, v_now,
                    v_now + coalesce(p_ttl_ms, 600000) * interval '1 millisecond',
                    coalesce(p_holder, ''), api_key_id, user_id, group_id,
                    v_tokens, v_usd, coalesce(v_ids, '{}'), coalesce(b_name, '{}'))
            on conflict (request_id) do nothing
            returning 1
        ), upd as (
            update tollgate.quotas q
               set used         = case when tollgate.window_start_in(q."window", v_starts)
                                            > q.window_start then 0 else q.used end,
                   reserved     = q.reserved + case q.metric when 'tokens' then v_tokens
                                                             when 'requests' then 1
                                                             else v_usd end,
                   window_start = greatest(tollgate.window_start_in(q."window", v_starts),
                                           q.window_start),
                   alerted_pct  = case when tollgate.window_start_in(q."window", v_starts)
                                            > q.window_start then 0 else q.alerted_pct end,
                   updated_at   = v_now
             where q.id = any (v_ids)
               and exists (select 1 from ins)
        )
        select not exists (select 1 from ins) into v_held;
        exit when not v_held;
        v_take := false;         -- held already: the headers again, without its amounts
    end loop;

    -- A refused call whose reservation is still held is not judged again.
    if not v_held and (v_bdeny > 0 or v_deny is not null) then
        v_held := exists (select 1 from tollgate.reservations rv
                           where rv.request_id = p_request_id);
    end if;

    if v_held then
        status := 'ok';
    elsif v_bdeny > 0 then
        status         := 'rate_limited';
        denied_subject := b_name[v_bdeny];
        denied_metric  := 'requests';
        denied_window  := 'bucket';
        denied_limit   := v_bmax;
        retry_after_s  := v_bretry;
    elsif v_deny is not null then
        status         := 'quota_exceeded';
        i              := array_position(v_ids, v_deny[1]);
        denied_subject := v_kind[i] || ' "' || case v_kind[i] when 'key' then key_prefix
                                                              when 'user' then user_id
                                                              else group_id end || '"';
        denied_metric  := v_metric[i];
        denied_window  := v_win[i];
        denied_limit   := v_deny[2];
        if v_win[i] <> 'total' then
            retry_after_s := ceil(extract(epoch from
                                 tollgate.window_end_tz(v_win[i], v_start[i], v_tz) - v_now));
        end if;
    elsif nb > 0 then
        update tollgate.rate_buckets rb
           set tokens     = b_tokens[array_position(b_name, rb.bucket)] - 1,
               updated_at = b_at[array_position(b_name, rb.bucket)]
         where rb.bucket = any (b_name);
    end if;

    -- Headers: the tightest tokens and requests rows; the most used usd or
    -- tokens row past its warning threshold. Ties go to the lowest id.
    if v_tk is not null then
        i                := array_position(v_ids, v_tk[2]);
        tokens_limit     := v_tk[3];
        tokens_remaining := v_tk[1];
        if v_win[i] <> 'total' then
            tokens_reset_s := ceil(extract(epoch from
                                  tollgate.window_end_tz(v_win[i], v_start[i], v_tz) - v_now));
        end if;
    end if;
    if v_rq is not null then
        i                  := array_position(v_ids, v_rq[2]);
        requests_limit     := v_rq[3];
        requests_remaining := v_rq[1];
        if v_win[i] <> 'total' then
            requests_reset_s := ceil(extract(epoch from
                                    tollgate.window_end_tz(v_win[i], v_start[i], v_tz) - v_now));
        end if;
    end if;
    if v_warn is not null then
        i             := array_position(v_ids, v_warn[2]);
        warn_used_pct := least(-v_warn[1], 2147483647);
        warn_limit    := v_warn[3];
        warn_metric   := v_metric[i];
        warn_reset    := tollgate.window_end_tz(v_win[i], v_start[i], v_tz);
    end if;
    return next;
end
$$;
