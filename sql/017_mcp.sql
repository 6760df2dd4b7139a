-- 017_mcp.sql — the MCP gateway's access control, limits and audit (issue 13).
--
--   mcp_grants     what a group, a role or a key may use: MCP servers and tools by
--                  name or glob ('*' any run, '?' one character, as allowed_models),
--                  optionally with argument constraints. A caller's grants are the
--                  union of its group's, its role's and its key's: a tool is usable
--                  when one grant matches its server and name (and that grant's
--                  argument constraints, if any, hold). A caller with no grant at
--                  all has no MCP access (the gateway answers 403).
--   mcp_identify   the caller (as tollgate.identify: key hash, or a JWT's user,
--                  group and role) and its grants, in one round trip.
--   mcp_limits     request limits on tool calls: a `requests` quota per window, or
--                  a token bucket, with one counter (or bucket) per key, user,
--                  group, server or tool; mcp_admit takes one request from every
--                  limit that applies, all or none.
--   mcp_calls      the audit of tool calls (never arguments or results),
--                  partitioned by month like usage; mcp_calls_add writes a batch,
--                  idempotent by call_id.
--   chargeback_tools  `tollgatectl report --by tool`.
--
-- Argument constraints (mcp_grants.args): null, or a JSON object mapping an
-- argument name to {"enum": [allowed JSON values]} or {"pattern": "POSIX regex"}
-- (the whole string value must match: anchor it). A call whose arguments break
-- one is refused; an argument that is absent is not checked. Checked by the
-- gateway (mcp_access.c), stored and validated here.
--
-- Why tool calls have their own counters rather than rows of tollgate.quotas:
-- a tool call has no tokens and no price, so it is counted once, at admission
-- (no reservation to settle); its subjects include servers and tools, which the
-- LLM reserve must never see; and quota rows on a key make the LLM fast path
-- (identity_resolve's has_quota) take the slow one. The windows are the
-- quotas' (window_start_tz / window_end_tz, the configured time zone) and the
-- buckets are rows of tollgate.rate_buckets, refilled by reserve's arithmetic.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run.

-- ---------------------------------------------------------------------------
-- Grants.

create table if not exists tollgate.mcp_grants (
    id           bigint      generated always as identity primary key,
    subject_kind text        not null
                 constraint mcp_grants_subject_kind check (subject_kind in ('group', 'role', 'key')),
    subject_id   text        not null,     -- group id, role id, or api_keys.id::text
    server       text        not null,     -- a glob
    tools        text[]      not null,     -- globs, at least one
    args         jsonb,                    -- argument constraints, or null
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    constraint mcp_grants_tools_nonempty check (cardinality(tools) > 0),
    constraint mcp_grants_subject_server_tools_key unique (subject_kind, subject_id, server, tools)
);

-- mcp_args_check: raises invalid_parameter_value unless p_args is null or an
-- object of {"enum": [..]} / {"pattern": "regex"} (a regex PostgreSQL compiles).
create or replace function tollgate.mcp_args_check(p_args jsonb)
returns jsonb
language plpgsql immutable
as $$
declare
    v_name text;
    v_rule jsonb;
begin
    if p_args is null or p_args = 'null'::jsonb then
        return null;
    end if;
    if jsonb_typeof(p_args) <> 'object' then
        raise exception 'argument constraints must be a JSON object' using errcode = 'invalid_parameter_value';
    end if;
    for v_name, v_rule in select * from jsonb_each(p_args) loop
        if jsonb_typeof(v_rule) <> 'object' or (select count(*) from jsonb_object_keys(v_rule)) <> 1 then
            raise exception 'argument "%": expected {"enum": [...]} or {"pattern": "..."}', v_name
                  using errcode = 'invalid_parameter_value';
        elsif v_rule ? 'enum' then
            if jsonb_typeof(v_rule->'enum') <> 'array' or jsonb_array_length(v_rule->'enum') = 0 then
                raise exception 'argument "%": "enum" must be a non-empty array', v_name
                      using errcode = 'invalid_parameter_value';
            end if;
        elsif v_rule ? 'pattern' then
            if jsonb_typeof(v_rule->'pattern') <> 'string' then
                raise exception 'argument "%": "pattern" must be a string', v_name
                      using errcode = 'invalid_parameter_value';
            end if;
            perform '' ~ (v_rule->>'pattern');   -- invalid_regular_expression if it is not one
        else
            raise exception 'argument "%": expected {"enum": [...]} or {"pattern": "..."}', v_name
                  using errcode = 'invalid_parameter_value';
        end if;
    end loop;
    return p_args;
end
$$;

-- mcp_subject: (kind, id) of a grant's subject named as the CLI and the admin
-- API name it: a group, a role, or a key by its prefix (stored by its id).
-- Raises no_data_found for an unknown key prefix.
create or replace function tollgate.mcp_subject(p_kind text, p_name text, out kind text, out id text)
language plpgsql stable
as $$
begin
    kind := p_kind;
    if p_kind = 'key' then
        select k.id::text into id from tollgate.api_keys k where k.prefix = p_name;
        if not found then
            raise exception 'no key "%"', p_name using errcode = 'no_data_found';
        end if;
    elsif p_kind in ('group', 'role') then
        if p_name !~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$' then
            raise exception '% "%" is not a valid identifier', p_kind, p_name
                  using errcode = 'invalid_parameter_value';
        end if;
        id := p_name;
    else
        raise exception 'unknown subject kind "%" (group, role or key)', p_kind
              using errcode = 'invalid_parameter_value';
    end if;
end
$$;

-- mcp_grant_public: a grant as the CLI and the admin API show it (a key by prefix).
create or replace function tollgate.mcp_grant_public(g tollgate.mcp_grants)
returns jsonb
language sql stable
as $$
    select jsonb_build_object('id', g.id, 'subject_kind', g.subject_kind,
                              'subject', case when g.subject_kind = 'key'
                                              then (select k.prefix from tollgate.api_keys k
                                                     where k.id::text = g.subject_id)
                                              else g.subject_id end,
                              'server', g.server, 'tools', to_jsonb(g.tools), 'args', g.args,
                              'updated_at', g.updated_at)
$$;

-- mcp_grant_set: grants p_kind p_name (group, role, or key prefix) the tools
-- p_tools of the servers p_server (globs), with argument constraints p_args
-- (null: none). The same subject, server and tools again replace the
-- constraints. Returns the grant (mcp_grant_public). One 'mcp_grant.set'
-- audit row when something changed.
create or replace function tollgate.mcp_grant_set(p_kind   text,
                                                  p_name   text,
                                                  p_server text,
                                                  p_tools  text[],
                                                  p_args   jsonb,
                                                  p_actor  text)
returns jsonb
language plpgsql volatile
as $$
declare
    v_subj   record;
    v_args   jsonb := tollgate.mcp_args_check(p_args);
    v_before tollgate.mcp_grants;
    v_after  tollgate.mcp_grants;
begin
    v_subj := tollgate.mcp_subject(p_kind, p_name);
    if p_server is null or p_server = '' or length(p_server) > 128 then
        raise exception 'the server must be a name or glob of at most 128 characters'
              using errcode = 'invalid_parameter_value';
    end if;
    if p_tools is null or cardinality(p_tools) = 0 or array_position(p_tools, null) is not null
       or exists (select 1 from unnest(p_tools) t where t = '' or length(t) > 128) then
        raise exception 'the tools must be one or more names or globs of at most 128 characters'
              using errcode = 'invalid_parameter_value';
    end if;
    select * into v_before from tollgate.mcp_grants g
     where g.subject_kind = v_subj.kind and g.subject_id = v_subj.id
       and g.server = p_server and g.tools = p_tools
       for update;
    if found then
        if v_before.args is not distinct from v_args then
            return tollgate.mcp_grant_public(v_before);
        end if;
        update tollgate.mcp_grants g set args = v_args, updated_at = now()
         where g.id = v_before.id returning * into v_after;
    else
        insert into tollgate.mcp_grants (subject_kind, subject_id, server, tools, args)
        values (v_subj.kind, v_subj.id, p_server, p_tools, v_args)
        returning * into v_after;
    end if;
    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'mcp_grant.set', p_kind || ':' || p_name,
            case when v_before.id is null then null else tollgate.mcp_grant_public(v_before) end,
            tollgate.mcp_grant_public(v_after));
    return tollgate.mcp_grant_public(v_after);
end
$$;

-- mcp_grant_revoke: deletes p_kind p_name's grants on server glob p_server
-- (exactly that text), only the one with tools p_tools when given. Returns
-- how many it deleted; one 'mcp_grant.revoke' audit row per grant deleted.
create or replace function tollgate.mcp_grant_revoke(p_kind   text,
                                                     p_name   text,
                                                     p_server text,
                                                     p_tools  text[],
                                                     p_actor  text)
returns integer
language plpgsql volatile
as $$
declare
    v_subj record;
    v_n    integer := 0;
    r      tollgate.mcp_grants;
begin
    v_subj := tollgate.mcp_subject(p_kind, p_name);
    for r in
        delete from tollgate.mcp_grants g
         where g.subject_kind = v_subj.kind and g.subject_id = v_subj.id
           and g.server = p_server and (p_tools is null or g.tools = p_tools)
        returning *
    loop
        insert into tollgate.audit_log (actor, action, subject, before, after)
        values (coalesce(p_actor, session_user), 'mcp_grant.revoke', p_kind || ':' || p_name,
                tollgate.mcp_grant_public(r), null);
        v_n := v_n + 1;
    end loop;
    return v_n;
end
$$;

create or replace view tollgate.mcp_grant_list as
    select g.id, g.subject_kind,
           case when g.subject_kind = 'key'
                then coalesce((select k.prefix from tollgate.api_keys k where k.id::text = g.subject_id),
                              'key#' || g.subject_id)
                else g.subject_id end as subject,
           g.server, g.tools, g.args, g.updated_at
      from tollgate.mcp_grants g;

-- ---------------------------------------------------------------------------
-- Identify.

-- mcp_identify: identify's answer for an MCP request (the same parameters and
-- statuses, through identity_resolve, RBAC on p_endpoint included) plus
-- grants: a JSON array of {server, tools, args} — the grants of the caller's
-- group, role and key — and the status 'no_mcp_access' when there is none.
-- Always one row.
create or replace function tollgate.mcp_identify(p_key_hash  bytea,
                                                 p_user      text,
                                                 p_group     text,
                                                 p_role      text,
                                                 p_create    boolean,
                                                 p_end_user  text,
                                                 p_end_group text,
                                                 p_endpoint  text)
returns table (status         text,
               api_key_id     bigint,
               key_prefix     text,
               user_id        text,
               group_id       text,
               role           text,
               attribution    text,
               denied_subject text,
               grants         jsonb)
language plpgsql volatile
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_who record;
begin
    v_who := tollgate.identity_resolve(p_key_hash, p_user, p_group, p_role, p_create, p_end_user,
                                       p_end_group, p_endpoint, null, tollgate.clock(), false);
    status := v_who.status;
    api_key_id := v_who.api_key_id;
    key_prefix := v_who.key_prefix;
    user_id := v_who.user_id;
    group_id := v_who.group_id;
    role := v_who.role;
    attribution := v_who.attribution;
    denied_subject := v_who.denied_subject;
    if status = 'ok' then
        select coalesce(jsonb_agg(jsonb_build_object('server', g.server, 'tools', to_jsonb(g.tools),
                                                     'args', g.args) order by g.id), '[]'::jsonb)
          into grants
          from tollgate.mcp_grants g
         where (g.subject_kind, g.subject_id) in (('group', v_who.group_id), ('role', v_who.role),
                                                  ('key', v_who.api_key_id::text));
        if jsonb_array_length(grants) = 0 then
            status := 'no_mcp_access';
        end if;
    end if;
    return next;
end
$$;

create index if not exists mcp_grants_subject_idx on tollgate.mcp_grants (subject_kind, subject_id);

-- ---------------------------------------------------------------------------
-- Limits.

create table if not exists tollgate.mcp_limits (
    id               bigint      generated always as identity primary key,
    -- one counter (or bucket) per key, user, group, server or tool ("server/tool")
    per              text        not null
                     constraint mcp_limits_per check (per in ('key', 'user', 'group', 'server', 'tool')),
    -- only this key (api_keys.id::text), user, group, server or "server/tool"; null: each one
    subject          text,
    kind             text        not null
                     constraint mcp_limits_kind check (kind in ('quota', 'bucket')),
    "window"         tollgate.quota_window,       -- quota
    limit_value      bigint,                      -- quota: tool calls per window
    max_tokens       bigint,                      -- bucket
    tokens_per_fill  bigint,
    fill_interval_ms bigint,
    created_at       timestamptz not null default now(),
    constraint mcp_limits_shape check (
        (kind = 'quota' and "window" is not null and limit_value >= 0 and max_tokens is null)
        or (kind = 'bucket' and "window" is null and limit_value is null and max_tokens >= 1
            and tokens_per_fill >= 1 and fill_interval_ms >= 1))
);
create unique index if not exists mcp_limits_rule_key
    on tollgate.mcp_limits (per, coalesce(subject, ''), kind, coalesce("window", ''));

-- Per-subject counters of the quota limits ("used" in the window that began at window_start).
create table if not exists tollgate.mcp_quota_counters (
    limit_id     bigint      not null references tollgate.mcp_limits (id) on delete cascade,
    subject      text        not null,
    window_start timestamptz not null,
    used         bigint      not null default 0,
    primary key (limit_id, subject)
) with (fillfactor = 50);

-- mcp_limit_set: adds or replaces a limit (same per, subject, kind and window).
-- p_subject: a key prefix for per 'key' (stored as its id), null for each one.
-- Returns the row as JSON. One 'mcp_limit.set' audit row.
create or replace function tollgate.mcp_limit_set(p_per              text,
                                                  p_subject          text,
                                                  p_window           text,
                                                  p_limit            bigint,
                                                  p_max_tokens       bigint,
                                                  p_tokens_per_fill  bigint,
                                                  p_fill_interval_ms bigint,
                                                  p_actor            text)
returns jsonb
language plpgsql volatile
as $$
declare
    v_subject text := p_subject;
    v_kind    text := case when p_max_tokens is not null then 'bucket' else 'quota' end;
    v_row     tollgate.mcp_limits;
begin
    if p_per = 'key' and p_subject is not null then
        v_subject := (tollgate.mcp_subject('key', p_subject)).id;
    end if;
    delete from tollgate.mcp_limits l
     where l.per = p_per and coalesce(l.subject, '') = coalesce(v_subject, '') and l.kind = v_kind
       and coalesce(l."window", '') = coalesce(case when v_kind = 'quota' then p_window end, '');
    insert into tollgate.mcp_limits (per, subject, kind, "window", limit_value, max_tokens,
                                     tokens_per_fill, fill_interval_ms)
    values (p_per, v_subject, v_kind, case when v_kind = 'quota' then p_window end,
            case when v_kind = 'quota' then p_limit end, p_max_tokens,
            case when v_kind = 'bucket' then coalesce(p_tokens_per_fill, 1) end,
            case when v_kind = 'bucket' then coalesce(p_fill_interval_ms, 1000) end)
    returning * into v_row;
    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'mcp_limit.set',
            'mcp_limit:' || p_per || ':' || coalesce(p_subject, '*'), null, to_jsonb(v_row));
    return to_jsonb(v_row);
end
$$;

-- mcp_limit_delete: deletes limit p_id (its counters go with it). False if none.
create or replace function tollgate.mcp_limit_delete(p_id bigint, p_actor text)
returns boolean
language plpgsql volatile
as $$
declare
    v_row tollgate.mcp_limits;
begin
    delete from tollgate.mcp_limits l where l.id = p_id returning * into v_row;
    if not found then
        return false;
    end if;
    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'mcp_limit.delete',
            'mcp_limit:' || v_row.per || ':' || coalesce(v_row.subject, '*'), to_jsonb(v_row), null);
    return true;
end
$$;

-- mcp_limit_subject_name: a limit's subject as a refusal names it: a key by its
-- prefix (the counters hold its id), the rest as they are.
create or replace function tollgate.mcp_limit_subject_name(p_per text, p_subject text)
returns text
language sql stable
as $$
    select p_per || ' "' || case when p_per = 'key'
                                 then coalesce((select k.prefix from tollgate.api_keys k
                                                 where k.id::text = p_subject), p_subject)
                                 else p_subject end || '"'
$$;

-- mcp_admit: takes one request for a call of tool p_tool on server p_server by
-- the caller (p_api_key_id may be null for a JWT caller) from every limit that
-- applies: one token from each bucket, one request from each quota counter,
-- all or none. Locks buckets in name order first, then counters in (limit id,
-- subject) order, so concurrent admissions cannot deadlock, and judges on the
-- locked rows: a quota of N admits exactly N calls per window, however many
-- race. A refusal writes nothing (the buckets and counters it created for its
-- judgement are deleted again: nobody else can have seen them). status 'ok', 'rate_limited' (a bucket) or
-- 'quota_exceeded'; for a refusal, which limit (denied_subject: "per
-- \"subject\"", a key by its prefix), its window ('bucket' for a bucket), limit and retry_after_s
-- (null for a 'total' window); requests_limit / requests_remaining describe
-- the tightest quota after this call (null: none applies).
create or replace function tollgate.mcp_admit(p_api_key_id bigint,
                                              p_user       text,
                                              p_group      text,
                                              p_server     text,
                                              p_tool       text)
returns table (status             text,
               denied_subject     text,
               denied_window      text,
               denied_limit       bigint,
               retry_after_s      integer,
               requests_limit     bigint,
               requests_remaining bigint)
language plpgsql volatile
as $$
#variable_conflict use_column
declare
    v_now    timestamptz := tollgate.clock();
    v_tz     text;
    v_rules  jsonb;
    r        record;
    v_fills  numeric;
    v_tok    numeric;
    v_at     timestamptz;
    nb       integer := 0;
    b_name   text[];
    b_tokens numeric[];
    b_at     timestamptz[];
    v_start  timestamptz;
    v_used   bigint;
    c_lim    bigint[];
    c_subj   text[];
    c_start  timestamptz[];
    c_used   bigint[];
    nc       integer := 0;
    new_b    text[];
    new_lim  bigint[];
    new_subj text[];
begin
    status := 'ok';
    select coalesce(jsonb_agg(jsonb_build_object('id', l.id, 'kind', l.kind, 'per', l.per,
                                                 'subj', s.subj, 'window', l."window",
                                                 'limit', l.limit_value, 'max', l.max_tokens,
                                                 'fill', l.tokens_per_fill,
                                                 'ms', l.fill_interval_ms) order by l.id), '[]')
      into v_rules
      from tollgate.mcp_limits l
     cross join lateral (select case l.per when 'key' then p_api_key_id::text
                                           when 'user' then p_user
                                           when 'group' then p_group
                                           when 'server' then p_server
                                           else p_server || '/' || p_tool end as subj) s
     where s.subj is not null and (l.subject is null or l.subject = s.subj);
    if jsonb_array_length(v_rules) = 0 then
        return next;             -- no limit applies: nothing written
        return;
    end if;

    -- Buckets: created full, locked in name order, refilled (reserve's arithmetic).
    with ins as (
        insert into tollgate.rate_buckets as rb (bucket, tokens, updated_at)
        select distinct 'mcp#' || (x->>'id') || ':' || (x->>'subj'), (x->>'max')::bigint, v_now
          from jsonb_array_elements(v_rules) x
         where x->>'kind' = 'bucket'
         order by 1
        on conflict (bucket) do nothing
        returning rb.bucket)
    select array_agg(ins.bucket) into new_b from ins;
    for r in
        select rb.bucket, rb.tokens, rb.updated_at, (x->>'max')::bigint as max_tokens,
               (x->>'fill')::bigint as per_fill, greatest((x->>'ms')::bigint, 1) as fill_ms,
               x->>'per' as per, x->>'subj' as subj
          from tollgate.rate_buckets rb
          join jsonb_array_elements(v_rules) x
            on x->>'kind' = 'bucket' and rb.bucket = 'mcp#' || (x->>'id') || ':' || (x->>'subj')
         order by rb.bucket
           for update of rb
    loop
        nb := nb + 1;
        v_fills := greatest(0, floor(extract(epoch from v_now - r.updated_at) * 1000 / r.fill_ms));
        v_tok := r.tokens + v_fills * r.per_fill;
        if v_tok >= r.max_tokens then
            v_tok := r.max_tokens;
            v_at := v_now;
        else
            v_at := r.updated_at + (v_fills * r.fill_ms)::bigint * interval '1 millisecond';
        end if;
        if v_tok < 1 and status = 'ok' then
            status := 'rate_limited';
            denied_subject := tollgate.mcp_limit_subject_name(r.per, r.subj);
            denied_window := 'bucket';
            denied_limit := r.max_tokens;
            retry_after_s := greatest(1, ceil(extract(epoch from v_at - v_now)
                                              + ceil((1 - v_tok) / greatest(r.per_fill, 1))
                                                * r.fill_ms / 1000.0));
        end if;
        b_name[nb] := r.bucket;
        b_tokens[nb] := v_tok;
        b_at[nb] := v_at;
    end loop;
    if status <> 'ok' then
        delete from tollgate.rate_buckets rb where rb.bucket = any(new_b);
        return next;
        return;
    end if;

    -- Quota counters: created empty, locked in (limit, subject) order, windows rolled.
    select s.value into v_tz from tollgate.settings s where s.key = 'timezone';
    v_tz := coalesce(v_tz, 'UTC');
    with ins as (
        insert into tollgate.mcp_quota_counters as c (limit_id, subject, window_start, used)
        select (x->>'id')::bigint, x->>'subj',
               tollgate.window_start_tz(x->>'window', v_now, v_tz), 0
          from jsonb_array_elements(v_rules) x
         where x->>'kind' = 'quota'
         order by 1, 2
        on conflict (limit_id, subject) do nothing
        returning c.limit_id, c.subject)
    select array_agg(ins.limit_id), array_agg(ins.subject) into new_lim, new_subj from ins;
    for r in
        select c.limit_id, c.subject, c.window_start, c.used, x->>'window' as win,
               (x->>'limit')::bigint as lim, x->>'per' as per
          from tollgate.mcp_quota_counters c
          join jsonb_array_elements(v_rules) x
            on x->>'kind' = 'quota' and c.limit_id = (x->>'id')::bigint and c.subject = x->>'subj'
         order by c.limit_id, c.subject
           for update of c
    loop
        v_start := tollgate.window_start_tz(r.win, v_now, v_tz);
        v_used := case when v_start > r.window_start then 0 else r.used end;
        v_start := greatest(v_start, r.window_start);
        if v_used + 1 > r.lim and status = 'ok' then
            status := 'quota_exceeded';
            denied_subject := tollgate.mcp_limit_subject_name(r.per, r.subject);
            denied_window := r.win;
            denied_limit := r.lim;
            if r.win <> 'total' then
                retry_after_s := greatest(1, ceil(extract(epoch from
                                     tollgate.window_end_tz(r.win, v_start, v_tz) - v_now)));
            end if;
        end if;
        nc := nc + 1;
        c_lim[nc] := r.limit_id;
        c_subj[nc] := r.subject;
        c_start[nc] := v_start;
        c_used[nc] := v_used;
        if requests_remaining is null or r.lim - v_used - 1 < requests_remaining then
            requests_limit := r.lim;
            requests_remaining := greatest(0, r.lim - v_used - 1);
        end if;
    end loop;
    if status <> 'ok' then
        delete from tollgate.mcp_quota_counters c
         using unnest(new_lim, new_subj) as n(limit_id, subject)
         where c.limit_id = n.limit_id and c.subject = n.subject;
        delete from tollgate.rate_buckets rb where rb.bucket = any(new_b);
        return next;
        return;
    end if;

    for i in 1 .. nc loop
        update tollgate.mcp_quota_counters c
           set used = c_used[i] + 1, window_start = c_start[i]
         where c.limit_id = c_lim[i] and c.subject = c_subj[i];
    end loop;
    for i in 1 .. nb loop
        update tollgate.rate_buckets rb set tokens = b_tokens[i] - 1, updated_at = b_at[i]
         where rb.bucket = b_name[i];
    end loop;
    return next;
end
$$;

create or replace view tollgate.mcp_limit_list as
    select l.id, l.per,
           case when l.subject is null then '*'
                when l.per = 'key' then coalesce((select k.prefix from tollgate.api_keys k
                                                   where k.id::text = l.subject), 'key#' || l.subject)
                else l.subject end as subject,
           l.kind, l."window", l.limit_value, l.max_tokens, l.tokens_per_fill, l.fill_interval_ms
      from tollgate.mcp_limits l;

-- ---------------------------------------------------------------------------
-- Audit of tool calls.

do $$
begin
    if to_regclass('tollgate.mcp_calls') is null then
        create table tollgate.mcp_calls (
            call_id       uuid        not null,   -- one tools/call (the gateway makes it up)
            request_id    uuid        not null,   -- the HTTP request that carried it
            ts            timestamptz not null,
            api_key_id    bigint,
            key_prefix    text,
            user_id       text,
            group_id      text,
            role          text,
            server        text        not null,
            tool          text        not null,
            code          text        not null,   -- ok, error, refused, rate_limited, ...
            jsonrpc_error integer,                -- the JSON-RPC error code answered, or null
            duration_us   bigint      not null default 0,
            bytes_in      bigint      not null default 0,
            bytes_out     bigint      not null default 0,
            primary key (call_id, ts)
        ) partition by range (ts);
        create table tollgate.mcp_calls_default partition of tollgate.mcp_calls default;
        create index mcp_calls_ts_idx on tollgate.mcp_calls (ts);
        create index mcp_calls_server_tool_ts_idx on tollgate.mcp_calls (server, tool, ts);
        create index mcp_calls_group_ts_idx on tollgate.mcp_calls (group_id, ts);
    end if;
end
$$;

-- mcp_calls_partitions_ensure: monthly partitions (UTC) of this month and the
-- p_ahead after it, moving their rows out of the default partition first (as
-- usage_partitions_ensure does). Returns how many it created.
create or replace function tollgate.mcp_calls_partitions_ensure(p_ahead integer default 3)
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
        v_name := 'mcp_calls_y' || to_char(v_month + i * interval '1 month', 'YYYY"m"MM');
        v_lo := (v_month + i * interval '1 month')::timestamp at time zone 'UTC';
        v_hi := (v_month + (i + 1) * interval '1 month')::timestamp at time zone 'UTC';
        continue when to_regclass('tollgate.' || v_name) is not null;
        execute format('create table tollgate.%I (like tollgate.mcp_calls including defaults'
                       ' including constraints)', v_name);
        execute format('with moved as (delete from tollgate.mcp_calls_default d'
                       ' where d.ts >= %L and d.ts < %L returning d.*)'
                       ' insert into tollgate.%I select * from moved', v_lo, v_hi, v_name);
        execute format('alter table tollgate.mcp_calls attach partition tollgate.%I'
                       ' for values from (%L) to (%L)', v_name, v_lo, v_hi);
        v_created := v_created + 1;
    end loop;
    return v_created;
end
$$;

select tollgate.mcp_calls_partitions_ensure(3);

-- mcp_calls_add: stores a batch of audit rows (a JSON array of objects with the
-- columns above; ts as ISO 8601), idempotent by (call_id, ts): a batch sent
-- twice (a replay after a crash) is stored once. Returns the rows inserted.
create or replace function tollgate.mcp_calls_add(p_rows jsonb)
returns integer
language sql volatile
as $$
    with ins as (
        insert into tollgate.mcp_calls as c
               (call_id, request_id, ts, api_key_id, key_prefix, user_id, group_id, role,
                server, tool, code, jsonrpc_error, duration_us, bytes_in, bytes_out)
        select x.call_id, x.request_id, x.ts, x.api_key_id, x.key_prefix, x.user_id, x.group_id,
               x.role, x.server, x.tool, x.code, x.jsonrpc_error, coalesce(x.duration_us, 0),
               coalesce(x.bytes_in, 0), coalesce(x.bytes_out, 0)
          from jsonb_to_recordset(p_rows)
               as x(call_id uuid, request_id uuid, ts timestamptz, api_key_id bigint,
                    key_prefix text, user_id text, group_id text, role text, server text,
                    tool text, code text, jsonrpc_error integer, duration_us bigint,
                    bytes_in bigint, bytes_out bigint)
        on conflict (call_id, ts) do nothing
        returning 1
    )
    select count(*)::integer from ins
$$;

-- chargeback_tools: `report --by tool` — per server and tool over the days
-- [p_from, p_to] (the configured time zone): calls, calls that did not end
-- 'ok', bytes in and out, total and mean duration; most called first.
create or replace function tollgate.chargeback_tools(p_from date, p_to date)
returns table (server      text,
               tool        text,
               calls       bigint,
               errors      bigint,
               bytes_in    bigint,
               bytes_out   bigint,
               duration_us bigint,
               mean_us     bigint)
language sql stable
as $$
    select c.server, c.tool, count(*)::bigint, count(*) filter (where c.code <> 'ok')::bigint,
           sum(c.bytes_in)::bigint, sum(c.bytes_out)::bigint, sum(c.duration_us)::bigint,
           (sum(c.duration_us) / count(*))::bigint
      from tollgate.mcp_calls c
     cross join (select tollgate.quota_timezone() as tz) s
     where c.ts >= (p_from::timestamp at time zone s.tz)
       and c.ts < ((p_to + 1)::timestamp at time zone s.tz)
     group by c.server, c.tool
     order by 3 desc, 1, 2
$$;
