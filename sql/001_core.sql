-- 001_core.sql — Tollgate core schema: identities (groups, users, api_keys),
-- prices, usage, audit_log, and the SQL functions the C code calls
-- (authenticate, price_micros, record_usage, key_create, key_revoke) plus the
-- key_list view.
--
-- Applied by `tollgatectl migrate` inside one transaction and recorded there
-- in tollgate.schema_migrations; this file neither records itself nor opens a
-- transaction. Every statement is safe to re-run (IF NOT EXISTS / OR REPLACE).
--
-- Money is integer micro-dollars (bigint) or numeric; never floating point.
-- Every object is schema-qualified, so no function depends on search_path.

create schema if not exists tollgate;

-- Owned by tollgatectl; created here too (same shape) so a psql-applied
-- database already has it.
create table if not exists tollgate.schema_migrations (
    version    text        primary key,
    applied_at timestamptz not null default now()
);

-- Identifiers (group, user, role ids) match this pattern: a letter or digit,
-- then up to 127 of letters, digits, '.', '_', '@', ':', '-'.

create table if not exists tollgate.groups (
    id         text        primary key
               constraint groups_id_format
               check (id ~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$'),
    created_at timestamptz not null default now()
);

create table if not exists tollgate.users (
    id         text        primary key
               constraint users_id_format
               check (id ~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$'),
    group_id   text        not null references tollgate.groups (id),
    created_at timestamptz not null default now()
);

create index if not exists users_group_id_idx on tollgate.users (group_id);

create table if not exists tollgate.api_keys (
    id             bigint      generated always as identity primary key,
    -- SHA-256 of the full key; the key itself is never stored.
    key_hash       bytea       not null unique
                   constraint api_keys_key_hash_length
                   check (octet_length(key_hash) = 32),
    -- First 11 characters of the key ('tg-' + 8 base64url), for display.
    prefix         text        not null unique
                   constraint api_keys_prefix_format
                   check (prefix ~ '^tg-[A-Za-z0-9_-]{8}$'),
    name           text        not null default ''
                   constraint api_keys_name_length
                   check (char_length(name) <= 200),
    user_id        text        not null references tollgate.users (id),
    group_id       text        not null references tollgate.groups (id),
    role           text        not null default 'user'
                   constraint api_keys_role_format
                   check (role ~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$'),
    allowed_models text[],                      -- null = every model
    created_at     timestamptz not null default now(),
    expires_at     timestamptz,                 -- null = never
    revoked_at     timestamptz,
    last_used_at   timestamptz                  -- updated at most once a minute
);

create index if not exists api_keys_user_id_idx  on tollgate.api_keys (user_id);
create index if not exists api_keys_group_id_idx on tollgate.api_keys (group_id);

-- Prices in micro-dollars per million tokens ($1/MTok = 1000000). The row in
-- force at time T is the one with the latest effective_from <= T.
create table if not exists tollgate.prices (
    model                       text        not null
                                constraint prices_model_nonempty
                                check (model <> ''),
    effective_from              timestamptz not null,
    input_micros_per_mtok       bigint      not null default 0
                                check (input_micros_per_mtok >= 0),
    output_micros_per_mtok      bigint      not null default 0
                                check (output_micros_per_mtok >= 0),
    cache_read_micros_per_mtok  bigint      not null default 0
                                check (cache_read_micros_per_mtok >= 0),
    cache_write_micros_per_mtok bigint      not null default 0
                                check (cache_write_micros_per_mtok >= 0),
    primary key (model, effective_from)
);

-- One row per request. Deliberately no foreign keys: a usage row must be
-- stored even if its key, user or group row is gone or never existed.
-- (Not partitioned: request_id alone must be unique for idempotent inserts,
-- and a partitioned table's unique key would have to include ts.)
create table if not exists tollgate.usage (
    request_id         uuid        primary key,
    ts                 timestamptz not null default now(),
    api_key_id         bigint,
    user_id            text,
    group_id           text,
    provider           text        not null default '',
    model              text        not null default '',
    input_tokens       integer     not null default 0
                       constraint usage_input_tokens_nonneg check (input_tokens >= 0),
    output_tokens      integer     not null default 0
                       constraint usage_output_tokens_nonneg check (output_tokens >= 0),
    cache_read_tokens  integer     not null default 0
                       constraint usage_cache_read_tokens_nonneg check (cache_read_tokens >= 0),
    cache_write_tokens integer     not null default 0
                       constraint usage_cache_write_tokens_nonneg check (cache_write_tokens >= 0),
    cost_micros        bigint      not null default 0
                       constraint usage_cost_micros_nonneg check (cost_micros >= 0),
    http_status        integer,
    latency_ms         integer,
    upstream_ms        integer,
    stream             boolean     not null default false,
    outcome            text        not null default ''
);

create index if not exists usage_ts_idx            on tollgate.usage (ts);
create index if not exists usage_group_id_ts_idx   on tollgate.usage (group_id, ts);
create index if not exists usage_user_id_ts_idx    on tollgate.usage (user_id, ts);
create index if not exists usage_api_key_id_ts_idx on tollgate.usage (api_key_id, ts);

-- Every admin change: who (actor), what (action, subject), before and after.
create table if not exists tollgate.audit_log (
    id      bigint      generated always as identity primary key,
    ts      timestamptz not null default now(),
    actor   text        not null,
    action  text        not null,
    subject text        not null,
    before  jsonb,
    after   jsonb
);

create index if not exists audit_log_ts_idx         on tollgate.audit_log (ts);
create index if not exists audit_log_subject_ts_idx on tollgate.audit_log (subject, ts);

-- key_status: 'revoked' if revoked, else 'expired' if expires_at <= now(),
-- else 'active'. Inlinable SQL; shared by authenticate and key_list.
create or replace function tollgate.key_status(p_revoked_at timestamptz,
                                               p_expires_at timestamptz)
returns text
language sql stable
as $$
    select case
             when p_revoked_at is not null then 'revoked'
             when p_expires_at is not null and p_expires_at <= now() then 'expired'
             else 'active'
           end
$$;

-- authenticate: the key row for a SHA-256 key hash, with its status
-- ('active' | 'revoked' | 'expired'); no row when unknown. One unique-index
-- lookup; a non-strict STABLE SQL function, so callers get it inlined.
create or replace function tollgate.authenticate(p_key_hash bytea)
returns table (api_key_id     bigint,
               prefix         text,
               user_id        text,
               group_id       text,
               role           text,
               allowed_models text[],
               status         text)
language sql stable
as $$
    select k.id, k.prefix, k.user_id, k.group_id, k.role, k.allowed_models,
           tollgate.key_status(k.revoked_at, k.expires_at)
      from tollgate.api_keys k
     where k.key_hash = p_key_hash
$$;

-- price_micros: cost in micro-dollars of the given token counts for p_model
-- at time p_at: sum(tokens x rate per MTok) in numeric, / 1e6, rounded half
-- up, using the latest price with effective_from <= p_at; 0 if none. Null
-- counts are 0.
create or replace function tollgate.price_micros(p_model       text,
                                                 p_at          timestamptz,
                                                 p_input       bigint,
                                                 p_output      bigint,
                                                 p_cache_read  bigint,
                                                 p_cache_write bigint)
returns bigint
language sql stable
as $$
    select coalesce((
        select round((  coalesce(p_input, 0)::numeric       * p.input_micros_per_mtok
                      + coalesce(p_output, 0)::numeric      * p.output_micros_per_mtok
                      + coalesce(p_cache_read, 0)::numeric  * p.cache_read_micros_per_mtok
                      + coalesce(p_cache_write, 0)::numeric * p.cache_write_micros_per_mtok
                     ) / 1000000)::bigint
          from tollgate.prices p
         where p.model = p_model
           and p.effective_from <= p_at
         order by p.effective_from desc
         limit 1), 0)
$$;

-- record_usage: inserts the usage row for p_request_id, priced by
-- price_micros at p_ts, and returns its cost_micros. Idempotent: if the
-- request_id is already stored, inserts nothing and returns the stored cost.
-- Never needs the key/user/group rows to exist. Touches
-- api_keys.last_used_at only when it is more than 60 s older than p_ts.
-- Null p_ts means now(); null counts mean 0; null texts mean ''. A negative
-- count raises check_violation.
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
language plpgsql volatile
as $$
declare
    v_ts       timestamptz := coalesce(p_ts, now());
    v_cost     bigint;
    v_inserted uuid;
begin
    -- Checked here so the error names the cause (the table's CHECKs would
    -- first trip on the resulting negative cost).
    if least(p_input_tokens, p_output_tokens, p_cache_read_tokens, p_cache_write_tokens) < 0 then
        raise exception 'record_usage: negative token count for request %', p_request_id
              using errcode = 'check_violation';
    end if;

    v_cost := tollgate.price_micros(p_model, v_ts,
                                    p_input_tokens, p_output_tokens,
                                    p_cache_read_tokens, p_cache_write_tokens);

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
    on conflict (request_id) do nothing
    returning u.request_id into v_inserted;

    if v_inserted is null then
        -- Already recorded (a retry or a spool replay): report what is stored.
        select u.cost_micros into v_cost
          from tollgate.usage u
         where u.request_id = p_request_id;
        return v_cost;
    end if;

    if p_api_key_id is not null then
        update tollgate.api_keys k
           set last_used_at = v_ts
         where k.id = p_api_key_id
           and (k.last_used_at is null or k.last_used_at < v_ts - interval '60 s');
    end if;

    return v_cost;
end
$$;

-- ensure_principal: creates group p_group and user p_user (in p_group) if
-- they do not exist. A user keeps its first group. Returns the user's group.
create or replace function tollgate.ensure_principal(p_user text, p_group text)
returns text
language plpgsql volatile
as $$
declare
    v_group text;
begin
    insert into tollgate.groups (id) values (p_group)
    on conflict (id) do nothing;

    insert into tollgate.users (id, group_id) values (p_user, p_group)
    on conflict (id) do nothing;

    select u.group_id into v_group from tollgate.users u where u.id = p_user;
    return v_group;
end
$$;

-- key_create: stores a new key (hash + display prefix) owned by p_user and
-- charged to p_group, creating both on first use (ensure_principal); role
-- null means 'user'. Writes a 'key.create' audit row (no key_hash). Returns
-- the key id. A duplicate hash or prefix raises unique_violation. (Audit
-- rows never hold a secret's hash; previous_key_hash comes with 004.)
create or replace function tollgate.key_create(p_key_hash bytea,
                                               p_prefix   text,
                                               p_name     text,
                                               p_user     text,
                                               p_group    text,
                                               p_role     text,
                                               p_actor    text)
returns bigint
language plpgsql volatile
as $$
declare
    v_key tollgate.api_keys;
begin
    perform tollgate.ensure_principal(p_user, p_group);

    insert into tollgate.api_keys (key_hash, prefix, name, user_id, group_id, role)
    values (p_key_hash, p_prefix, coalesce(p_name, ''), p_user, p_group,
            coalesce(p_role, 'user'))
    returning * into v_key;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'key.create', 'key:' || v_key.prefix,
            null, to_jsonb(v_key) - 'key_hash' - 'previous_key_hash');

    return v_key.id;
end
$$;

-- key_revoke: revokes the key with prefix p_prefix and writes a 'key.revoke'
-- audit row (before/after, no key_hash). Returns false if no such key; true
-- if it is revoked now or was already (then nothing is changed or audited).
create or replace function tollgate.key_revoke(p_prefix text, p_actor text)
returns boolean
language plpgsql volatile
as $$
declare
    v_before tollgate.api_keys;
    v_after  tollgate.api_keys;
begin
    select * into v_before
      from tollgate.api_keys k
     where k.prefix = p_prefix
       for update;
    if not found then
        return false;
    end if;
    if v_before.revoked_at is not null then
        return true;
    end if;

    update tollgate.api_keys k
       set revoked_at = now()
     where k.id = v_before.id
    returning * into v_after;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'key.revoke', 'key:' || v_after.prefix,
            to_jsonb(v_before) - 'key_hash' - 'previous_key_hash', to_jsonb(v_after) - 'key_hash' - 'previous_key_hash');

    return true;
end
$$;

-- key_list: every key with its current status, for `tollgatectl key list`.
create or replace view tollgate.key_list as
    select k.id, k.prefix, k.name, k.user_id, k.group_id, k.role,
           tollgate.key_status(k.revoked_at, k.expires_at) as status,
           k.created_at, k.expires_at, k.revoked_at, k.last_used_at
      from tollgate.api_keys k;
