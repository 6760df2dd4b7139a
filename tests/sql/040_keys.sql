-- 040_keys: key_create (principals created on first use, audited without
-- the hash), key_revoke (audited, idempotent), key_list, ensure_principal.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

-- Nothing exists yet.
select (select count(*) from tollgate.groups where id in ('kt-group', 'kt-other')) as groups,
       (select count(*) from tollgate.users  where id = 'alice@example.com')       as users;

select tollgate.key_create(sha256('kt-key-1'::bytea), 'tg-KTkey001', 'laptop',
                           'alice@example.com', 'kt-group', null, 'admin@example.com') as key1
\gset

-- Group and user were created; the role defaulted to 'user'.
select id from tollgate.groups where id in ('kt-group', 'kt-other') order by id;
select id, group_id from tollgate.users where id = 'alice@example.com';
select id = :key1 as id_ok, encode(key_hash, 'hex') = encode(sha256('kt-key-1'::bytea), 'hex') as hash_ok,
       prefix, name, user_id, group_id, role, allowed_models,
       created_at = now() as created_now, expires_at, revoked_at, last_used_at
  from tollgate.api_keys where id = :key1;

-- The audit row: actor, action, subject; "after" is the key without its hash.
select actor, action, subject, before, ts = now() as ts_now,
       after ? 'key_hash' as has_hash,
       (after->>'id')::bigint = :key1 as id_ok,
       after->>'prefix' as prefix, after->>'name' as name, after->>'user_id' as user_id,
       after->>'group_id' as group_id, after->>'role' as role, after->'revoked_at' as revoked_at
  from tollgate.audit_log where subject = 'key:tg-KTkey001' order by id;
select array_agg(k order by k) as after_keys
  from tollgate.audit_log, jsonb_object_keys(after) as k
 where subject = 'key:tg-KTkey001' and action = 'key.create';

-- A second key for the same user in another group: the group is created and
-- the key is charged to it, but the user keeps its first group.
select tollgate.key_create(sha256('kt-key-2'::bytea), 'tg-KTkey002', 'ci',
                           'alice@example.com', 'kt-other', 'admin', null) as key2
\gset
select id, group_id from tollgate.users where id = 'alice@example.com';
select prefix, user_id, group_id, role from tollgate.api_keys where id = :key2;
-- A null actor is recorded as the session user.
select actor = session_user as actor_is_session_user
  from tollgate.audit_log where subject = 'key:tg-KTkey002';

-- Duplicate prefix or hash: refused, nothing written.
select tollgate.key_create(sha256('kt-key-3'::bytea), 'tg-KTkey001', 'dup prefix',
                           'alice@example.com', 'kt-group', null, 'test');
select tollgate.key_create(sha256('kt-key-1'::bytea), 'tg-KTkey003', 'dup hash',
                           'alice@example.com', 'kt-group', null, 'test');
select count(*) as keys from tollgate.api_keys where user_id = 'alice@example.com';
select count(*) as audits from tollgate.audit_log where subject like 'key:tg-KTkey%';

-- key_revoke: true, revoked_at set, audited with before/after (no hash).
select tollgate.key_revoke('tg-KTkey001', 'admin@example.com') as revoked;
select revoked_at = now() as revoked_now from tollgate.api_keys where id = :key1;
select actor, action, subject,
       before ? 'key_hash' as before_has_hash, after ? 'key_hash' as after_has_hash,
       before->'revoked_at' as before_revoked_at,
       (after->>'revoked_at')::timestamptz = now() as after_revoked_now,
       before - 'revoked_at' = after - 'revoked_at' as nothing_else_changed
  from tollgate.audit_log where subject = 'key:tg-KTkey001' and action = 'key.revoke';

-- Revoking again: true, nothing changes, no second audit row.
select tollgate.key_revoke('tg-KTkey001', 'admin@example.com') as revoked_again;
select count(*) as revoke_audits
  from tollgate.audit_log where subject = 'key:tg-KTkey001' and action = 'key.revoke';

-- Unknown prefix: false, no audit row.
select tollgate.key_revoke('tg-NOSUCH00', 'admin@example.com') as unknown_revoked;
select count(*) as unknown_audits from tollgate.audit_log where subject = 'key:tg-NOSUCH00';

-- key_list: its columns, and the two keys.
select column_name, data_type
  from information_schema.columns
 where table_schema = 'tollgate' and table_name = 'key_list'
 order by ordinal_position;
select id = :key1 or id = :key2 as id_ok, prefix, name, user_id, group_id, role, status,
       created_at = now() as created_now, expires_at, revoked_at is not null as revoked,
       last_used_at
  from tollgate.key_list where user_id = 'alice@example.com' order by prefix;
update tollgate.api_keys set expires_at = now() where id = :key2;
select prefix, status from tollgate.key_list where user_id = 'alice@example.com' order by prefix;

-- ensure_principal: idempotent; returns the user's (first) group.
select tollgate.ensure_principal('bob', 'kt-bob-group') as first,
       tollgate.ensure_principal('bob', 'kt-bob-group') as again,
       tollgate.ensure_principal('bob', 'kt-elsewhere') as other_group;
select id, group_id from tollgate.users where id = 'bob';
select id from tollgate.groups where id like 'kt-%' order by id;

rollback;
