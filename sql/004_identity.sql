-- 004_identity.sql — one identity model for keys and JWTs (issue 4).
--
-- Whatever authenticated a request — a Tollgate key, or a JWT the worker
-- verified — it is identified here, in the same round trip as its
-- reservation: tollgate.identify turns the credential into (api_key_id or
-- null, user, group, role), creating JWT users and groups on first sight
-- when asked to (just-in-time), applies end-user attribution for keys
-- trusted with it, and checks RBAC; tollgate.reserve (moved here from 003)
-- then reserves on the quota rows of that identity.
--
-- RBAC: a group and a role may each restrict the models (exact names or
-- globs, '*' and '?') and the endpoints ('/v1/messages', globs too) their
-- members use; null means no restriction. A key's own allowed_models narrow
-- further. A request passes only if every one of the three allows it.
--
-- Key rotation: a rotated key keeps its id (spend, quotas, usage stay with
-- it); the old secret's hash moves to previous_key_hash and keeps working
-- until previous_expires_at. Revoking a key revokes both secrets.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run.

alter table tollgate.groups
    add column if not exists allowed_models    text[],    -- null: every model
    add column if not exists allowed_endpoints text[];    -- null: every endpoint

create table if not exists tollgate.roles (
    id                text        primary key
                      constraint roles_id_format
                      check (id ~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$'),
    allowed_models    text[],     -- null: every model
    allowed_endpoints text[],     -- null: every endpoint
    created_at        timestamptz not null default now()
);

alter table tollgate.api_keys
    -- may name the end user and team per request (x-tollgate-user / -group)
    add column if not exists trusted_attribution boolean not null default false,
    -- the secret before the last rotation, valid until previous_expires_at
    add column if not exists previous_key_hash   bytea unique
                             constraint api_keys_previous_key_hash_length
                             check (octet_length(previous_key_hash) = 32),
    add column if not exists previous_prefix     text unique,
    add column if not exists previous_expires_at timestamptz;

-- The C worker calls identify, never this any more.
drop function if exists tollgate.authenticate(bytea);
-- reserve gained parameters: the old signature would make calls ambiguous.
drop function if exists tollgate.reserve(uuid, bytea, text, bigint, bigint, text, integer, jsonb);

-- glob_match: true when p_name matches one of p_patterns ('*' any run, '?'
-- one character, everything else literal); null p_patterns match anything.
create or replace function tollgate.glob_match(p_name text, p_patterns text[])
returns boolean
language sql immutable
as $$
    select p_patterns is null
        or exists (select 1
                     from unnest(p_patterns) as g(pattern)
                    where p_name like replace(replace(replace(replace(replace(
                              g.pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_'))
$$;

-- access_denial: why p_endpoint / p_model is refused for a member of group
-- p_group with role p_role through a key allowing p_key_models (null: no
-- key, or every model): ('endpoint_not_allowed' | 'model_not_allowed',
-- 'group "g"' | 'role "r"' | 'key'), or no row when allowed. A null p_model
-- is not checked (endpoints without a model).
create or replace function tollgate.access_denial(p_endpoint   text,
                                                  p_model      text,
                                                  p_group      text,
                                                  p_role       text,
                                                  p_key_models text[])
returns table (denial text, subject text)
language sql stable
as $$
    select d.denial, d.subject
      from (select g.allowed_endpoints as g_ep, g.allowed_models as g_mod,
                   ro.allowed_endpoints as r_ep, ro.allowed_models as r_mod
              from (select 1) as one
              left join tollgate.groups g on g.id = p_group
              left join tollgate.roles ro on ro.id = p_role) as a,
           lateral (values
               (1, 'endpoint_not_allowed', 'group "' || p_group || '"',
                not tollgate.glob_match(p_endpoint, a.g_ep)),
               (2, 'endpoint_not_allowed', 'role "' || p_role || '"',
                not tollgate.glob_match(p_endpoint, a.r_ep)),
               (3, 'model_not_allowed', 'group "' || p_group || '"',
                p_model is not null and not tollgate.glob_match(p_model, a.g_mod)),
               (4, 'model_not_allowed', 'role "' || p_role || '"',
                p_model is not null and not tollgate.glob_match(p_model, a.r_mod)),
               (5, 'model_not_allowed', 'key',
                p_model is not null and not tollgate.glob_match(p_model, p_key_models)))
             as d(ord, denial, subject, denied)
     where d.denied
     order by d.ord
     limit 1
$$;

-- create_just_in_time: creates group p_group and, if p_user is not null, user
-- p_user in it, each unless it exists, with one audit row (actor 'jwt') per
-- row actually created — also when first requests race.
create or replace function tollgate.create_just_in_time(p_group text, p_user text)
returns void
language plpgsql volatile
as $$
declare
    v_id text;
begin
    insert into tollgate.groups (id) values (p_group)
    on conflict (id) do nothing
    returning id into v_id;
    if v_id is not null then
        insert into tollgate.audit_log (actor, action, subject, before, after)
        values ('jwt', 'group.create', 'group:' || p_group, null,
                jsonb_build_object('id', p_group, 'just_in_time', true));
    end if;
    if p_user is null then
        return;
    end if;
    v_id := null;
    insert into tollgate.users (id, group_id) values (p_user, p_group)
    on conflict (id) do nothing
    returning id into v_id;
    if v_id is not null then
        insert into tollgate.audit_log (actor, action, subject, before, after)
        values ('jwt', 'user.create', 'user:' || p_user, null,
                jsonb_build_object('id', p_user, 'group_id', p_group, 'just_in_time', true));
    end if;
end
$$;

-- identify: who a request is, and whether it may do what it asks.
-- With p_key_hash: the key whose current secret, or previous secret within
-- its grace period, hashes to it; p_end_user / p_end_group (either may be
-- null) replace its user / group when the key is trusted_attribution
-- (attribution 'applied'; the key's own group's RBAC still applies too),
-- else they are ignored (attribution 'ignored').
-- Without: the principal a verified JWT named: user p_user (required), group
-- p_group (null: the user's own group), role p_role (null: 'user'). An
-- unknown user or group is created when p_create (a new user needs a group),
-- with an audit row; else the status says which is unknown.
-- status: 'ok', 'unknown_key', 'revoked', 'expired', 'unknown_user',
-- 'unknown_group', 'invalid_principal' (an id that is not an identifier),
-- 'endpoint_not_allowed', 'model_not_allowed' (denied_subject says who
-- refused). Always one row; identity columns are filled as far as known.
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
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    c_id       constant text := '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$';
    v_now      timestamptz := tollgate.clock();
    v_key      record;
    v_models   text[];
    v_home     text;
    v_own_group text;           -- a key's own group, when attribution replaced it
    v_acc      record;
begin
    status := 'ok';
    if p_key_hash is not null then
        select k.id, k.prefix, k.user_id, k.group_id, k.role, k.allowed_models,
               k.trusted_attribution, k.revoked_at, k.expires_at
          into v_key
          from tollgate.api_keys k
         where k.key_hash = p_key_hash;
        if not found then
            select k.id, k.prefix, k.user_id, k.group_id, k.role, k.allowed_models,
                   k.trusted_attribution, k.revoked_at,
                   least(k.expires_at, k.previous_expires_at) as expires_at
              into v_key
              from tollgate.api_keys k
             where k.previous_key_hash = p_key_hash;
            if not found then
                status := 'unknown_key';
                return next;
                return;
            end if;
        end if;
        api_key_id := v_key.id;
        key_prefix := v_key.prefix;
        user_id    := v_key.user_id;
        group_id   := v_key.group_id;
        role       := v_key.role;
        v_models   := v_key.allowed_models;
        if v_key.revoked_at is not null then
            status := 'revoked';
        elsif v_key.expires_at is not null and v_key.expires_at <= v_now then
            status := 'expired';
        elsif p_end_user is not null or p_end_group is not null then
            if not v_key.trusted_attribution then
                attribution := 'ignored';
            elsif p_end_user !~ c_id or p_end_group !~ c_id then
                status := 'invalid_principal';
            else
                attribution := 'applied';
                v_own_group := group_id;
                user_id  := coalesce(p_end_user, user_id);
                group_id := coalesce(p_end_group, group_id);
            end if;
        end if;
    else
        user_id  := p_user;
        group_id := p_group;
        role     := coalesce(p_role, 'user');
        if p_user is null or p_user !~ c_id or p_group !~ c_id or role !~ c_id then
            status := 'invalid_principal';
            return next;
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
                end if;
            end if;
        elsif coalesce(p_create, false) and p_group is not null then
            perform tollgate.create_just_in_time(p_group, p_user);
        else
            status := 'unknown_user';
        end if;
    end if;

    if status = 'ok' then
        select * into v_acc
          from tollgate.access_denial(p_endpoint, p_model, group_id, role, v_models);
        -- an attributed end group never widens what the key's own group allows
        if not found and v_own_group <> group_id then
            select * into v_acc
              from tollgate.access_denial(p_endpoint, p_model, v_own_group, null, null);
        end if;
        if found then
            status         := v_acc.denial;
            denied_subject := v_acc.subject;
        end if;
    end if;
    return next;
end
$$;

-- ---------------------------------------------------------------------------
-- reserve: identify (above) the caller — by p_key_hash, or for a JWT by
-- p_user / p_group / p_role / p_create — then reserve. Always exactly one
-- row. status is identify's (its 'ok' goes on) or 'rate_limited',
-- 'quota_exceeded', 'ok'. The quota rows are those of the identity's key,
-- user and group (an attributed end user's and team's, with the key's own).
-- Key expiry is judged by tollgate.clock().
-- Header columns (tokens_*, requests_*, warn_*) are filled for 'ok',
-- 'quota_exceeded' and 'rate_limited'.
-- A repeated p_request_id whose reservation is still held reserves nothing
-- more and answers 'ok', whatever the quotas say now (a retried call is
-- safe). A request to which no
-- quota applies leaves no reservation row (settle does not need one).
-- Negative token counts raise check_violation. Null counts are 0, a null
-- p_ttl_ms means 10 minutes, a null p_holder ''.
-- plan_cache_mode = force_generic_plan (here and in settle): every
-- statement inside is a lookup by key whose generic plan is as good as a
-- custom one; without it the plan cache may re-plan some of them on every
-- call (measured: ~15% of the CPU of a call).
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
                                            p_endpoint          text default '/v1/messages')
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
as $$
#variable_conflict use_column
declare
    v_now      timestamptz := tollgate.clock();
    v_tz       text;
    v_who      record;
    v_key_id   bigint;
    v_prefix   text;
    v_user     text;
    v_group    text;
    v_tokens   bigint;
    v_usd      bigint;
    v_status   text;
    v_take     boolean;          -- this call adds its amounts
    r          record;
    -- quota rows, in id order
    n          integer := 0;
    q_id       bigint[];
    q_kind     text[];
    q_metric   text[];
    q_window   text[];
    q_limit    bigint[];
    q_used     bigint[];          -- after rollover
    q_res      bigint[];
    q_amt      bigint[];
    q_start    timestamptz[];     -- after rollover
    q_rolled   boolean[];
    q_warn     integer[];
    v_deny     integer := 0;      -- first denying row
    -- buckets, in name order
    nb         integer := 0;
    b_name     text[];
    b_tokens   numeric[];
    b_at       timestamptz[];
    v_bdeny    integer := 0;
    v_bretry   integer;
    v_bmax     bigint;
    v_fills    numeric;
    v_tok      numeric;
    v_at       timestamptz;
    v_ins      uuid;
    -- headers
    i          integer;
    v_rem      bigint;
    v_pct      numeric;
    t_i        integer;
    t_rem      bigint;
    rq_i       integer;
    rq_rem     bigint;
    w_i        integer;
    w_pct      numeric;
begin
    select * into v_who
      from tollgate.identify(p_key_hash, p_user, p_group, p_role, p_create,
                             p_end_user, p_end_group, p_endpoint, p_model);
    status         := v_who.status;
    api_key_id     := v_who.api_key_id;
    key_prefix     := v_who.key_prefix;
    user_id        := v_who.user_id;
    group_id       := v_who.group_id;
    role           := v_who.role;
    attribution    := v_who.attribution;
    denied_subject := v_who.denied_subject;
    if v_who.status <> 'ok' then
        return next;
        return;
    end if;
    v_key_id := v_who.api_key_id;
    v_prefix := v_who.key_prefix;
    v_user   := v_who.user_id;
    v_group  := v_who.group_id;

    if p_input_tokens < 0 or p_max_output_tokens < 0 then
        raise exception 'reserve: negative token count for request %', p_request_id
              using errcode = 'check_violation';
    end if;
    v_tokens := coalesce(p_input_tokens, 0) + coalesce(p_max_output_tokens, 0);
    v_usd    := tollgate.price_upper_micros(p_model, v_now, p_input_tokens, p_max_output_tokens);

    -- The gateway sends bucket rules ({bucket: rule name, per: key|user|group|
    -- route, match_key/_user/_group}); the bucket itself is the rule's name and
    -- this request's subject, known only now. Rules whose match does not fit the
    -- identity do not apply. Entries without "per" are taken as named.
    if jsonb_typeof(p_buckets) = 'array' and jsonb_array_length(p_buckets) > 0 then
        select coalesce(jsonb_agg(jsonb_build_object(
                   'bucket', case when x.per is null then x.bucket
                                  else x.bucket || ':' || case x.per
                                      when 'user'  then v_user
                                      when 'group' then v_group
                                      when 'route' then coalesce(x.route, '')
                                      else v_prefix end end,
                   'max_tokens', x.max_tokens, 'tokens_per_fill', x.tokens_per_fill,
                   'fill_interval_ms', x.fill_interval_ms)), '[]'::jsonb)
          into p_buckets
          from jsonb_to_recordset(p_buckets)
               as x(bucket text, per text, route text, match_key text, match_user text,
                    match_group text, max_tokens bigint, tokens_per_fill bigint,
                    fill_interval_ms bigint)
         where (x.match_key is null or x.match_key = v_prefix)
           and (v_prefix is not null or coalesce(x.per, '') <> 'key')  -- no key: no per-key bucket
           and (x.match_user is null or x.match_user = v_user)
           and (x.match_group is null or x.match_group = v_group);
    end if;

    -- Global buckets: create missing ones full, lock them in name order,
    -- refill (whole fills of tokens_per_fill per fill_interval_ms, capped at
    -- max_tokens; a full bucket's fill clock restarts at v_now).
    if jsonb_typeof(p_buckets) = 'array' and jsonb_array_length(p_buckets) > 0 then
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

    -- Quota rows: lock in id order, roll windows, find the first denial.
    for r in
        select q.id, q.subject_kind, q.metric, q."window" as win, q.limit_value,
               q.used, q.reserved, q.window_start, q.warn_pct
          from tollgate.quotas q
         where (q.subject_kind, q.subject_id) in (('key', v_key_id::text),
                                                  ('user', v_user),
                                                  ('group', v_group))
         order by q.id
           for update
    loop
        n := n + 1;
        if v_tz is null and r.win in ('day', 'month') then
            v_tz := tollgate.quota_timezone();
        end if;
        q_id[n]     := r.id;
        q_kind[n]   := r.subject_kind;
        q_metric[n] := r.metric;
        q_window[n] := r.win;
        q_limit[n]  := r.limit_value;
        q_res[n]    := r.reserved;
        q_warn[n]   := r.warn_pct;
        q_start[n]  := tollgate.window_start_tz(r.win, v_now, v_tz);
        q_rolled[n] := q_start[n] > r.window_start;
        if q_rolled[n] then
            q_used[n] := 0;
        else
            q_used[n]  := r.used;
            q_start[n] := r.window_start;
        end if;
        q_amt[n] := case r.metric when 'tokens' then v_tokens when 'requests' then 1 else v_usd end;
        if v_deny = 0 and q_used[n] + r.reserved + q_amt[n] > r.limit_value then
            v_deny := n;
        end if;
    end loop;

    if v_bdeny > 0 then
        v_status := 'rate_limited';
    elsif v_deny > 0 then
        v_status := 'quota_exceeded';
    else
        v_status := 'ok';
    end if;
    -- A retried call whose reservation is still held is not judged again.
    if v_status <> 'ok'
       and exists (select 1 from tollgate.reservations rv where rv.request_id = p_request_id) then
        v_status := 'ok';
        v_take := false;
    else
        v_take := v_status = 'ok';
    end if;

    -- a reservation row is kept when there is anything to give back: quota
    -- amounts, or bucket tokens (release returns those if the gateway refuses
    -- the request after this call)
    if v_take and (n > 0 or nb > 0) then
        insert into tollgate.reservations as rv
               (request_id, created_at, expires_at, holder, api_key_id, user_id, group_id,
                tokens, usd_micros, quota_ids, buckets)
        values (p_request_id, v_now,
                v_now + coalesce(p_ttl_ms, 600000) * interval '1 millisecond',
                coalesce(p_holder, ''), v_key_id, v_user, v_group,
                v_tokens, v_usd, coalesce(q_id, '{}'), coalesce(b_name, '{}'))
        on conflict (request_id) do nothing
        returning rv.request_id into v_ins;
        if v_ins is null then
            v_take := false;          -- already reserved by an earlier call
        else
            -- (Rows are few: array_position is cheaper than a join.)
            update tollgate.quotas q
               set used         = q_used[array_position(q_id, q.id)],
                   reserved     = q.reserved + q_amt[array_position(q_id, q.id)],
                   window_start = q_start[array_position(q_id, q.id)],
                   alerted_pct  = case when q_rolled[array_position(q_id, q.id)] then 0
                                       else q.alerted_pct end,
                   updated_at   = v_now
             where q.id = any (q_id);
        end if;
    end if;

    if v_take and nb > 0 then
        update tollgate.rate_buckets rb
           set tokens     = b_tokens[array_position(b_name, rb.bucket)] - 1,
               updated_at = b_at[array_position(b_name, rb.bucket)]
         where rb.bucket = any (b_name);
    end if;

    status := v_status;
    if v_status = 'rate_limited' then
        denied_subject := b_name[v_bdeny];
        denied_metric  := 'requests';
        denied_window  := 'bucket';
        denied_limit   := v_bmax;
        retry_after_s  := v_bretry;
    elsif v_status = 'quota_exceeded' then
        denied_subject := q_kind[v_deny] || ' "'
                          || case q_kind[v_deny] when 'key' then v_prefix
                                                 when 'user' then v_user
                                                 else v_group end || '"';
        denied_metric  := q_metric[v_deny];
        denied_window  := q_window[v_deny];
        denied_limit   := q_limit[v_deny];
        if q_window[v_deny] <> 'total' then
            retry_after_s := ceil(extract(epoch from
                                 tollgate.window_end_tz(q_window[v_deny], q_start[v_deny], v_tz) - v_now));
        end if;
    end if;

    -- Headers: tightest tokens and requests quota; the most-used usd/tokens
    -- quota past its warning threshold. Ties go to the lowest id.
    for i in 1 .. n loop
        v_rem := greatest(0, q_limit[i] - q_used[i] - q_res[i]
                             - case when v_take then q_amt[i] else 0 end);
        if q_metric[i] = 'tokens' then
            if t_i is null or v_rem < t_rem then
                t_i := i;  t_rem := v_rem;
            end if;
        elsif q_metric[i] = 'requests' then
            if rq_i is null or v_rem < rq_rem then
                rq_i := i;  rq_rem := v_rem;
            end if;
        end if;
        if q_metric[i] <> 'requests' then
            if q_limit[i] = 0 then
                v_pct := 100;
            else
                v_pct := floor((q_used[i] + q_res[i] + case when v_take then q_amt[i] else 0 end)
                               * 100::numeric / q_limit[i]);
            end if;
            if v_pct >= q_warn[i] and (w_i is null or v_pct > w_pct) then
                w_i := i;  w_pct := v_pct;
            end if;
        end if;
    end loop;
    if t_i is not null then
        tokens_limit     := q_limit[t_i];
        tokens_remaining := t_rem;
        if q_window[t_i] <> 'total' then
            tokens_reset_s := ceil(extract(epoch from
                                  tollgate.window_end_tz(q_window[t_i], q_start[t_i], v_tz) - v_now));
        end if;
    end if;
    if rq_i is not null then
        requests_limit     := q_limit[rq_i];
        requests_remaining := rq_rem;
        if q_window[rq_i] <> 'total' then
            requests_reset_s := ceil(extract(epoch from
                                    tollgate.window_end_tz(q_window[rq_i], q_start[rq_i], v_tz) - v_now));
        end if;
    end if;
    if w_i is not null then
        warn_used_pct := least(w_pct, 2147483647);
        warn_limit    := q_limit[w_i];
        warn_metric   := q_metric[w_i];
        warn_reset    := tollgate.window_end_tz(q_window[w_i], q_start[w_i], v_tz);
    end if;

    return next;
end
$$;

