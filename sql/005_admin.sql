-- 005_admin.sql — the SQL functions behind the admin API and tollgatectl:
-- change and rotate keys, manage users, groups, roles, quotas and prices,
-- and the list views the admin reads.
--
--   keys     key_update, key_rotate, key_revoke (redefined: a previous
--            prefix finds the key too), the key_list view (new columns);
--   users    user_upsert, user_delete, the user_list view;
--   groups   group_upsert, group_delete, the group_list view;
--   roles    role_upsert, role_delete, the role_list view;
--   quotas   quota_delete (quota_set & co. are in 003);
--   prices   price_set, the price_list view.
--
-- Not here: authentication of admin callers and what they may do (the C
-- admin module decides), and the per-request functions (003, 004).
--
-- Audit: every change writes exactly one tollgate.audit_log row — actor (a
-- null p_actor is the session user), action ('key.update', 'user.upsert',
-- 'group.delete', ...), subject ('key:<prefix>', 'user:<id>', 'group:<id>',
-- 'role:<id>', 'price:<model>', quotas as in 003), the row before and after
-- as jsonb (null for none). A call that changes nothing writes none. Key
-- rows are audited and returned without key_hash and previous_key_hash.
--
-- Errors: a bad argument raises invalid_parameter_value, a delete that
-- other rows still need raises dependent_objects_still_exist, with a
-- message naming the value.
--
-- Time: tollgate.clock() (003), which tests and tollgatectl may pin.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run. Every object is schema-qualified.

-- ---------------------------------------------------------------------------
-- Helpers.

-- key_public: a key row as jsonb without its secrets' hashes (key_hash,
-- previous_key_hash): what audit rows and admin answers show of a key. Null
-- for a null row.
create or replace function tollgate.key_public(p_key tollgate.api_keys)
returns jsonb
language sql stable
as $$
    select case when p_key.id is null then null
                else to_jsonb(p_key) - 'key_hash' - 'previous_key_hash' end
$$;

-- check_id: p_id, if it is an identifier (001: a letter or digit, then up
-- to 127 of letters, digits, '.', '_', '@', ':', '-'); else raises
-- invalid_parameter_value 'missing <p_kind> id' (null) or 'invalid <p_kind>
-- id "<p_id>"'.
create or replace function tollgate.check_id(p_kind text, p_id text)
returns text
language plpgsql immutable
as $$
begin
    if p_id is null then
        raise exception 'missing % id', p_kind using errcode = 'invalid_parameter_value';
    end if;
    if p_id !~ '^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$' then
        raise exception 'invalid % id "%"', p_kind, p_id using errcode = 'invalid_parameter_value';
    end if;
    return p_id;
end
$$;

-- key_find: the key whose current prefix is p_prefix, else the one whose
-- previous prefix (before its last rotation) is p_prefix; locked FOR
-- UPDATE. Null (a row of nulls) if none.
create or replace function tollgate.key_find(p_prefix text)
returns tollgate.api_keys
language plpgsql volatile
as $$
declare
    v_key tollgate.api_keys;
begin
    select * into v_key
      from tollgate.api_keys k
     where k.prefix = p_prefix
       for update;
    if not found then
        select * into v_key
          from tollgate.api_keys k
         where k.previous_prefix = p_prefix
           for update;
    end if;
    return v_key;
end
$$;

-- ---------------------------------------------------------------------------
-- Keys.

-- key_update: applies p_changes, a jsonb object, to the key found by its
-- current or previous prefix p_prefix. Fields (all optional):
--   name                 string (null: '')
--   role                 identifier string (null: 'user')
--   allowed_models       array of strings, model names or globs (null:
--                        every model)
--   expires_at           timestamptz as text (null: never)
--   trusted_attribution  boolean (null: false)
-- Any other field, or a field of the wrong JSON type, raises
-- invalid_parameter_value naming it, and nothing is changed. Returns the
-- key after (key_public), or null if no key has that prefix. One
-- 'key.update' audit row if anything changed, none otherwise. Revoked and
-- expired keys may be changed too.
create or replace function tollgate.key_update(p_prefix  text,
                                               p_changes jsonb,
                                               p_actor   text)
returns jsonb
language plpgsql volatile
as $$
declare
    v_changes jsonb := coalesce(p_changes, '{}'::jsonb);
    v_field   text;
    v_value   jsonb;
    v_type    text;             -- the JSON type v_field takes (besides null)
    v_before  tollgate.api_keys;
    v_after   tollgate.api_keys;
begin
    if jsonb_typeof(v_changes) <> 'object' then
        raise exception 'key changes must be a JSON object, not %', jsonb_typeof(v_changes)
              using errcode = 'invalid_parameter_value';
    end if;
    for v_field, v_value in select e.key, e.value from jsonb_each(v_changes) as e order by e.key loop
        if v_field not in ('name', 'role', 'allowed_models', 'expires_at', 'trusted_attribution') then
            raise exception 'unknown key field "%" (name, role, allowed_models, expires_at, trusted_attribution)',
                  v_field using errcode = 'invalid_parameter_value';
        end if;
        v_type := case v_field when 'allowed_models' then 'array'
                               when 'trusted_attribution' then 'boolean'
                               else 'string' end;
        if jsonb_typeof(v_value) not in ('null', v_type) then
            raise exception 'key field "%" must be % or null, not %', v_field,
                  case v_type when 'array' then 'an array of strings'
                              when 'boolean' then 'a boolean'
                              else 'a string' end,
                  jsonb_typeof(v_value)
                  using errcode = 'invalid_parameter_value';
        end if;
        if v_field = 'allowed_models' and jsonb_typeof(v_value) = 'array'
           and exists (select 1 from jsonb_array_elements(v_value) as m(model)
                        where jsonb_typeof(m.model) <> 'string' or m.model #>> '{}' = '') then
            raise exception 'key field "allowed_models" must be an array of non-empty strings or null'
                  using errcode = 'invalid_parameter_value';
        end if;
        if v_field = 'role' and jsonb_typeof(v_value) = 'string' then
            perform tollgate.check_id('role', v_value #>> '{}');
        end if;
    end loop;

    v_before := tollgate.key_find(p_prefix);
    if v_before.id is null then
        return null;
    end if;

    update tollgate.api_keys k
       set name                = case when v_changes ? 'name'
                                      then coalesce(v_changes->>'name', '') else k.name end,
           role                = case when v_changes ? 'role'
                                      then coalesce(v_changes->>'role', 'user') else k.role end,
           allowed_models      = case when v_changes ? 'allowed_models'
                                      then case when jsonb_typeof(v_changes->'allowed_models') = 'array'
                                                then array(select m.model
                                                             from jsonb_array_elements_text(
                                                                      v_changes->'allowed_models')
                                                                  with ordinality as m(model, i)
                                                            order by m.i)
                                           end
                                      else k.allowed_models end,
           expires_at          = case when v_changes ? 'expires_at'
                                      then (v_changes->>'expires_at')::timestamptz
                                      else k.expires_at end,
           trusted_attribution = case when v_changes ? 'trusted_attribution'
                                      then coalesce((v_changes->>'trusted_attribution')::boolean, false)
                                      else k.trusted_attribution end
     where k.id = v_before.id
    returning * into v_after;

    if v_after is distinct from v_before then
        insert into tollgate.audit_log (actor, action, subject, before, after)
        values (coalesce(p_actor, session_user), 'key.update', 'key:' || v_after.prefix,
                tollgate.key_public(v_before), tollgate.key_public(v_after));
    end if;

    return tollgate.key_public(v_after);
end
$$;

-- key_rotate: gives the active key (not revoked, not expired at
-- tollgate.clock()) whose current prefix is p_prefix a new secret: its
-- key_hash and prefix move to previous_key_hash / previous_prefix (an
-- earlier previous secret is forgotten), previous_expires_at = clock +
-- p_grace_s seconds, and p_new_key_hash / p_new_prefix become current. The
-- key keeps its id, so its quotas, usage and spend stay with it. Until
-- previous_expires_at the old secret still identifies the key (identify,
-- 004); p_grace_s 0 (or null) stops it at once. A negative p_grace_s raises
-- invalid_parameter_value; a new hash or prefix that is any key's current or
-- previous one raises unique_violation. Returns the key after (key_public),
-- or null if there is no such active key. One 'key.rotate' audit row,
-- subject the old prefix ('key:' || p_prefix).
create or replace function tollgate.key_rotate(p_prefix       text,
                                               p_new_key_hash bytea,
                                               p_new_prefix   text,
                                               p_grace_s      integer,
                                               p_actor        text)
returns jsonb
language plpgsql volatile
as $$
declare
    v_now    timestamptz := tollgate.clock();
    v_before tollgate.api_keys;
    v_after  tollgate.api_keys;
begin
    if p_grace_s < 0 then
        raise exception 'invalid grace period % s (0 or more)', p_grace_s
              using errcode = 'invalid_parameter_value';
    end if;

    select * into v_before
      from tollgate.api_keys k
     where k.prefix = p_prefix
       for update;
    if not found or v_before.revoked_at is not null
       or (v_before.expires_at is not null and v_before.expires_at <= v_now) then
        return null;
    end if;

    if exists (select 1 from tollgate.api_keys k
                where k.key_hash = p_new_key_hash or k.previous_key_hash = p_new_key_hash) then
        raise exception 'new key hash is already in use' using errcode = 'unique_violation';
    end if;
    if exists (select 1 from tollgate.api_keys k
                where k.prefix = p_new_prefix or k.previous_prefix = p_new_prefix) then
        raise exception 'key prefix "%" is already in use', p_new_prefix using errcode = 'unique_violation';
    end if;

    update tollgate.api_keys k
       set previous_key_hash   = k.key_hash,
           previous_prefix     = k.prefix,
           previous_expires_at = v_now + coalesce(p_grace_s, 0) * interval '1 second',
           key_hash            = p_new_key_hash,
           prefix              = p_new_prefix
     where k.id = v_before.id
    returning * into v_after;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'key.rotate', 'key:' || v_before.prefix,
            tollgate.key_public(v_before), tollgate.key_public(v_after));

    return tollgate.key_public(v_after);
end
$$;

-- key_revoke (sql/001_core.sql), same signature and contract, redefined: the
-- key is found by its current or its previous prefix (key_find), and the
-- audit row leaves out previous_key_hash too. Revoking a key stops both its
-- secrets. Returns false if no such key; true if it is revoked now or was
-- already (then nothing is changed or audited).
create or replace function tollgate.key_revoke(p_prefix text, p_actor text)
returns boolean
language plpgsql volatile
as $$
declare
    v_before tollgate.api_keys;
    v_after  tollgate.api_keys;
begin
    v_before := tollgate.key_find(p_prefix);
    if v_before.id is null then
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
            tollgate.key_public(v_before), tollgate.key_public(v_after));

    return true;
end
$$;

-- key_list: every key with its current status, for `tollgatectl key list`
-- and the admin API: 001's columns in 001's order, then 004's.
create or replace view tollgate.key_list as
    select k.id, k.prefix, k.name, k.user_id, k.group_id, k.role,
           tollgate.key_status(k.revoked_at, k.expires_at) as status,
           k.created_at, k.expires_at, k.revoked_at, k.last_used_at,
           k.allowed_models, k.trusted_attribution, k.previous_prefix, k.previous_expires_at
      from tollgate.api_keys k;

-- ---------------------------------------------------------------------------
-- Users.

-- user_upsert: creates user p_id in group p_group, or moves an existing
-- user to p_group (its keys keep the group they are charged to); creates
-- the group if missing (no separate audit row, as key_create and quota_set
-- do). Invalid ids raise invalid_parameter_value. Returns the user row as
-- jsonb. One 'user.upsert' audit row (before null for a new user) unless
-- nothing changed.
create or replace function tollgate.user_upsert(p_id text, p_group text, p_actor text)
returns jsonb
language plpgsql volatile
as $$
declare
    v_before tollgate.users;
    v_after  tollgate.users;
begin
    perform tollgate.check_id('user', p_id);
    perform tollgate.check_id('group', p_group);

    insert into tollgate.groups (id) values (p_group) on conflict (id) do nothing;

    select * into v_before from tollgate.users u where u.id = p_id for update;
    if not found then
        insert into tollgate.users as u (id, group_id) values (p_id, p_group)
        returning * into v_after;
        v_before := null;
    elsif v_before.group_id = p_group then
        return to_jsonb(v_before);
    else
        update tollgate.users u set group_id = p_group where u.id = p_id
        returning * into v_after;
    end if;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'user.upsert', 'user:' || p_id,
            case when v_before.id is null then null else to_jsonb(v_before) end,
            to_jsonb(v_after));

    return to_jsonb(v_after);
end
$$;

-- user_delete: deletes user p_id. Returns false if there is none. Raises
-- dependent_objects_still_exist if keys (even revoked ones) still belong to
-- it: revoke is the way to stop a user's keys; their usage history keeps
-- the user id. Quotas on the user are kept (a quota may outlive its
-- subject). One 'user.delete' audit row.
create or replace function tollgate.user_delete(p_id text, p_actor text)
returns boolean
language plpgsql volatile
as $$
declare
    v_before tollgate.users;
    v_keys   bigint;
begin
    select * into v_before from tollgate.users u where u.id = p_id for update;
    if not found then
        return false;
    end if;
    select count(*) into v_keys from tollgate.api_keys k where k.user_id = p_id;
    if v_keys > 0 then
        raise exception 'cannot delete user "%": % key(s) still belong to it', p_id, v_keys
              using errcode = 'dependent_objects_still_exist';
    end if;

    delete from tollgate.users u where u.id = p_id;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'user.delete', 'user:' || p_id,
            to_jsonb(v_before), null);
    return true;
end
$$;

-- user_list: every user with its group and how many of its keys are
-- active now.
create or replace view tollgate.user_list as
    select u.id, u.group_id, u.created_at,
           (select count(*) from tollgate.api_keys k
             where k.user_id = u.id
               and tollgate.key_status(k.revoked_at, k.expires_at) = 'active') as active_keys
      from tollgate.users u;

-- ---------------------------------------------------------------------------
-- Groups and roles: the RBAC restrictions identify (004) checks. Null
-- allowed_models / allowed_endpoints mean no restriction; an empty array
-- allows nothing. Entries are names or globs ('*', '?').

-- access_upsert: creates group or role (p_kind 'group' | 'role') p_id, or
-- sets its allowed_models and allowed_endpoints (both replaced, nulls
-- included). Invalid id raises invalid_parameter_value. Returns the row as
-- jsonb. One '<kind>.upsert' audit row (before null for a new one) unless
-- nothing changed. The table name comes from p_kind through a fixed map.
create or replace function tollgate.access_upsert(p_kind              text,
                                                  p_id                text,
                                                  p_allowed_models    text[],
                                                  p_allowed_endpoints text[],
                                                  p_actor             text)
returns jsonb
language plpgsql volatile
as $$
declare
    v_table  text := case p_kind when 'group' then 'groups' when 'role' then 'roles' end;
    v_before jsonb;
    v_after  jsonb;
begin
    if v_table is null then
        raise exception 'access_upsert: unknown kind "%"', p_kind
              using errcode = 'invalid_parameter_value';
    end if;
    perform tollgate.check_id(p_kind, p_id);

    execute format('select to_jsonb(t) from tollgate.%I t where t.id = $1 for update', v_table)
       into v_before using p_id;
    if v_before is null then
        execute format('insert into tollgate.%I as t (id, allowed_models, allowed_endpoints)'
                       ' values ($1, $2, $3) returning to_jsonb(t)', v_table)
           into v_after using p_id, p_allowed_models, p_allowed_endpoints;
    elsif v_before->'allowed_models' = coalesce(to_jsonb(p_allowed_models), 'null')
          and v_before->'allowed_endpoints' = coalesce(to_jsonb(p_allowed_endpoints), 'null') then
        return v_before;
    else
        execute format('update tollgate.%I t set allowed_models = $2, allowed_endpoints = $3'
                       ' where t.id = $1 returning to_jsonb(t)', v_table)
           into v_after using p_id, p_allowed_models, p_allowed_endpoints;
    end if;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), p_kind || '.upsert', p_kind || ':' || p_id,
            v_before, v_after);
    return v_after;
end
$$;

-- group_upsert: access_upsert of a group.
create or replace function tollgate.group_upsert(p_id                text,
                                                 p_allowed_models    text[],
                                                 p_allowed_endpoints text[],
                                                 p_actor             text)
returns jsonb
language sql volatile
as $$
    select tollgate.access_upsert('group', p_id, p_allowed_models, p_allowed_endpoints, p_actor)
$$;

-- group_delete: deletes group p_id. Returns false if there is none. Raises
-- dependent_objects_still_exist if users or keys still belong to it.
-- Quotas on the group are kept. One 'group.delete' audit row.
create or replace function tollgate.group_delete(p_id text, p_actor text)
returns boolean
language plpgsql volatile
as $$
declare
    v_before tollgate.groups;
    v_users  bigint;
    v_keys   bigint;
begin
    select * into v_before from tollgate.groups g where g.id = p_id for update;
    if not found then
        return false;
    end if;
    select count(*) into v_users from tollgate.users u where u.group_id = p_id;
    select count(*) into v_keys from tollgate.api_keys k where k.group_id = p_id;
    if v_users + v_keys > 0 then
        raise exception 'cannot delete group "%": % user(s) and % key(s) still belong to it',
              p_id, v_users, v_keys using errcode = 'dependent_objects_still_exist';
    end if;

    delete from tollgate.groups g where g.id = p_id;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'group.delete', 'group:' || p_id,
            to_jsonb(v_before), null);
    return true;
end
$$;

-- group_list: every group with its restrictions, how many users it has and
-- how many active keys are charged to it.
create or replace view tollgate.group_list as
    select g.id, g.allowed_models, g.allowed_endpoints, g.created_at,
           (select count(*) from tollgate.users u where u.group_id = g.id) as users,
           (select count(*) from tollgate.api_keys k
             where k.group_id = g.id
               and tollgate.key_status(k.revoked_at, k.expires_at) = 'active') as active_keys
      from tollgate.groups g;

-- role_upsert: access_upsert of a role.
create or replace function tollgate.role_upsert(p_id                text,
                                                p_allowed_models    text[],
                                                p_allowed_endpoints text[],
                                                p_actor             text)
returns jsonb
language sql volatile
as $$
    select tollgate.access_upsert('role', p_id, p_allowed_models, p_allowed_endpoints, p_actor)
$$;

-- role_delete: deletes role p_id. Returns false if there is none. Keys and
-- JWTs naming a role are not tied to its row (a role without a row
-- restricts nothing), so keys still naming it do not prevent the delete:
-- they lose the role's restrictions. One 'role.delete' audit row.
create or replace function tollgate.role_delete(p_id text, p_actor text)
returns boolean
language plpgsql volatile
as $$
declare
    v_before tollgate.roles;
begin
    delete from tollgate.roles r where r.id = p_id
    returning * into v_before;
    if not found then
        return false;
    end if;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'role.delete', 'role:' || p_id,
            to_jsonb(v_before), null);
    return true;
end
$$;

-- role_list: every role with its restrictions and how many active keys
-- carry it.
create or replace view tollgate.role_list as
    select r.id, r.allowed_models, r.allowed_endpoints, r.created_at,
           (select count(*) from tollgate.api_keys k
             where k.role = r.id
               and tollgate.key_status(k.revoked_at, k.expires_at) = 'active') as active_keys
      from tollgate.roles r;

-- ---------------------------------------------------------------------------
-- Quotas.

-- quota_delete: deletes the quota (p_kind, p_subject, p_metric, p_window),
-- the subject resolved as quota_set does (quota_subject_id: a key by its
-- prefix, which must exist). Returns false if there is no such quota.
-- Reservations still naming it are harmless (settle, release and the
-- sweeper skip a missing row). One 'quota.delete' audit row, subject as
-- quota_set's.
create or replace function tollgate.quota_delete(p_kind    text,
                                                 p_subject text,
                                                 p_metric  text,
                                                 p_window  text,
                                                 p_actor   text)
returns boolean
language plpgsql volatile
as $$
declare
    v_sid    text := tollgate.quota_subject_id(p_kind, p_subject);
    v_before tollgate.quotas;
begin
    delete from tollgate.quotas q
     where q.subject_kind = p_kind and q.subject_id = v_sid
       and q.metric = p_metric and q."window" = p_window
    returning * into v_before;
    if not found then
        return false;
    end if;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'quota.delete',
            p_kind || ':' || p_subject || ' ' || p_metric || '/' || p_window,
            to_jsonb(v_before), null);
    return true;
end
$$;

-- ---------------------------------------------------------------------------
-- Prices.

-- price_set: creates or replaces the price of p_model from p_effective_from
-- (null: tollgate.clock()), in micro-dollars per million tokens (null rates
-- are 0). Negative rates and an empty model raise check_violation. Returns
-- the price row as jsonb. One 'price.set' audit row (subject
-- 'price:<model>'; before null for a new row) unless nothing changed.
create or replace function tollgate.price_set(p_model          text,
                                              p_effective_from timestamptz,
                                              p_input          bigint,
                                              p_output         bigint,
                                              p_cache_read     bigint,
                                              p_cache_write    bigint,
                                              p_actor          text)
returns jsonb
language plpgsql volatile
as $$
declare
    v_from   timestamptz := coalesce(p_effective_from, tollgate.clock());
    v_before tollgate.prices;
    v_after  tollgate.prices;
begin
    select * into v_before
      from tollgate.prices p
     where p.model = p_model and p.effective_from = v_from
       for update;
    if not found then
        insert into tollgate.prices as p
               (model, effective_from, input_micros_per_mtok, output_micros_per_mtok,
                cache_read_micros_per_mtok, cache_write_micros_per_mtok)
        values (p_model, v_from, coalesce(p_input, 0), coalesce(p_output, 0),
                coalesce(p_cache_read, 0), coalesce(p_cache_write, 0))
        returning * into v_after;
        v_before := null;
    else
        update tollgate.prices p
           set input_micros_per_mtok       = coalesce(p_input, 0),
               output_micros_per_mtok      = coalesce(p_output, 0),
               cache_read_micros_per_mtok  = coalesce(p_cache_read, 0),
               cache_write_micros_per_mtok = coalesce(p_cache_write, 0)
         where p.model = p_model and p.effective_from = v_from
        returning * into v_after;
        if v_after = v_before then
            return to_jsonb(v_after);
        end if;
    end if;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'price.set', 'price:' || p_model,
            case when v_before.model is null then null else to_jsonb(v_before) end,
            to_jsonb(v_after));

    return to_jsonb(v_after);
end
$$;

-- price_list: every price row; in_force is true for the row of each model
-- that applies at tollgate.clock() (the latest effective_from <= clock).
create or replace view tollgate.price_list as
    select p.model, p.effective_from, p.input_micros_per_mtok, p.output_micros_per_mtok,
           p.cache_read_micros_per_mtok, p.cache_write_micros_per_mtok,
           coalesce(p.effective_from = max(p.effective_from)
                                           filter (where p.effective_from <= c.now)
                                           over (partition by p.model),
                    false) as in_force
      from tollgate.prices p
     cross join (select tollgate.clock() as now) c;
