-- 200_admin: sql/005_admin.sql — key_update, key_rotate, key_revoke by a
-- previous prefix, user/group/role upsert and delete, quota_delete,
-- price_set, the list views; one audit row per change and none for a
-- no-op, never a key hash in the audit log.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-10-01 09:00:00+00';

-- changes(b, a): the fields that differ between before and after, each as
-- [before, after]; a value equal to now() (created_at, revoked_at: real
-- time) shows as "now()".
create function pg_temp.changes(b jsonb, a jsonb) returns jsonb
language sql stable as $$
    select jsonb_object_agg(k, jsonb_build_array(
               case when b->k = to_jsonb(now()) then '"now()"'::jsonb else b->k end,
               case when a->k = to_jsonb(now()) then '"now()"'::jsonb else a->k end) order by k)
      from (select jsonb_object_keys(coalesce(b, '{}')) union select jsonb_object_keys(coalesce(a, '{}'))) as f(k)
     where b->k is distinct from a->k and k not in ('id', 'subject_id')
$$;
-- audits: the audit rows written since the last "execute mark".
create temp table marked (audit_id bigint);
insert into marked values (0);
prepare mark as update marked set audit_id = (select coalesce(max(id), 0) from tollgate.audit_log);
create temp view audits as
    select actor, action, subject, pg_temp.changes(before, after) as changes
      from tollgate.audit_log where id > (select audit_id from marked) order by id;
execute mark;
select audit_id as audit_start from marked
\gset

select tollgate.key_create(sha256('ad5-a'::bytea), 'tg-AD5keyA1', 'laptop', 'ad5-alice', 'ad5-eng', null, 'admin') as ka,
       tollgate.key_create(sha256('ad5-b'::bytea), 'tg-AD5keyB1', 'ci',     'ad5-bob',   'ad5-eng', null, 'admin') as kb
\gset
-- key_create's audit row carries no hash of either secret.
select action, subject, after ? 'key_hash' as has_key_hash, after ? 'previous_key_hash' as has_previous_key_hash
  from tollgate.audit_log where subject = 'key:tg-AD5keyA1';

-- ---------------------------------------------------------------------------
-- key_update.

-- Every field at once; the answer is the key without its hashes.
select tollgate.key_update('tg-AD5keyA1',
           '{"name": "work laptop", "role": "admin", "allowed_models": ["claude-*", "gpt-4o"],
             "expires_at": "2027-01-01T00:00:00Z", "trusted_attribution": true}', 'ops@example.com')
       - 'created_at' - 'id' as key;
select name, role, allowed_models, expires_at, trusted_attribution from tollgate.api_keys where id = :ka;
-- One field; null values mean the defaults ('' name, 'user' role, every
-- model, no expiry, untrusted).
select tollgate.key_update('tg-AD5keyA1', '{"name": "old laptop"}', 'ops@example.com')->>'name' as name;
select tollgate.key_update('tg-AD5keyA1',
           '{"name": null, "role": null, "allowed_models": null, "expires_at": null,
             "trusted_attribution": null}', 'ops@example.com')
       - 'created_at' - 'id' as key;
-- An empty array allows no model.
select tollgate.key_update('tg-AD5keyA1', '{"allowed_models": []}', null)->'allowed_models' as allowed_models;
select allowed_models from tollgate.api_keys where id = :ka;
-- No change, or no field: nothing audited (the key is returned all the same).
select tollgate.key_update('tg-AD5keyA1', '{"allowed_models": []}', 'ops@example.com')->>'prefix' as prefix;
select tollgate.key_update('tg-AD5keyA1', '{}', 'ops@example.com')->>'prefix' as prefix;
select tollgate.key_update('tg-AD5keyA1', null, 'ops@example.com')->>'prefix' as prefix;
-- Unknown prefix: null, nothing audited.
select tollgate.key_update('tg-NOSUCH00', '{"name": "x"}', 'ops@example.com') is null as no_key;
-- Refused, nothing changed: unknown field, wrong JSON types, bad values.
select tollgate.key_update('tg-AD5keyA1', '{"name": "x", "key_hash": "00"}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"user_id": "mallory"}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '[]', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"name": 5}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"allowed_models": "claude-*"}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"allowed_models": ["ok", 5]}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"allowed_models": [""]}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"trusted_attribution": "yes"}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"role": "bad role"}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"expires_at": "next tuesday"}', 'ops@example.com');
select tollgate.key_update('tg-AD5keyA1', '{"name": "x", "bogus": 1}', 'ops@example.com');
select name, role, allowed_models, expires_at, trusted_attribution from tollgate.api_keys where id = :ka;
select * from audits;

-- ---------------------------------------------------------------------------
-- key_rotate.

execute mark;
select tollgate.key_update('tg-AD5keyA1', '{"allowed_models": null}', 'ops@example.com')->'allowed_models'
       as allowed_models;
-- Usage and a quota before the rotation.
select tollgate.quota_set('key', 'tg-AD5keyA1', 'requests', 'day', 10, 'admin') as q_ka
\gset
select status from tollgate.reserve('00000000-0000-4000-8000-000000200001', sha256('ad5-a'::bytea),
                                    'claude-haiku-4-5', 10, 10, 'h:1', 60000);
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000200001', null, :ka, 'ad5-alice', 'ad5-eng',
                                        'anthropic', 'claude-haiku-4-5', 10, 10, 0, 0, 200, 1, 1, false, 'ok');
-- Rotate with a one-hour grace: same id, new prefix, the old one kept as
-- previous until 10:00.
select tollgate.key_rotate('tg-AD5keyA1', sha256('ad5-a2'::bytea), 'tg-AD5keyA2', 3600, 'ops@example.com')
       - 'created_at' - 'id' as key;
select id = :ka as same_id, prefix, previous_prefix, previous_expires_at,
       key_hash = sha256('ad5-a2'::bytea) as new_hash, previous_key_hash = sha256('ad5-a'::bytea) as old_hash
  from tollgate.api_keys where id = :ka;
-- Both secrets identify the key until the grace ends, then only the new one.
select s.secret, i.status, i.api_key_id = :ka as same_key, i.key_prefix
  from (values ('ad5-a'), ('ad5-a2')) as s(secret),
       lateral tollgate.identify(sha256(s.secret::bytea), null, null, null, false, null, null,
                                 '/v1/messages', 'claude-haiku-4-5') i
 order by s.secret;
set local tollgate.now = '2026-10-01 10:00:00+00';
select s.secret, i.status
  from (values ('ad5-a'), ('ad5-a2')) as s(secret),
       lateral tollgate.identify(sha256(s.secret::bytea), null, null, null, false, null, null,
                                 '/v1/messages', 'claude-haiku-4-5') i
 order by s.secret;
set local tollgate.now = '2026-10-01 09:00:00+00';
-- The usage history and the quota stay with the key: a request with the new
-- secret counts on the same row.
select status from tollgate.reserve('00000000-0000-4000-8000-000000200002', sha256('ad5-a2'::bytea),
                                    'claude-haiku-4-5', 10, 10, 'h:1', 60000);
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000200002', null, :ka, 'ad5-alice', 'ad5-eng',
                                        'anthropic', 'claude-haiku-4-5', 10, 10, 0, 0, 200, 1, 1, false, 'ok');
select count(*) as usage_rows from tollgate.usage where api_key_id = :ka;
select subject, used, reserved from tollgate.quota_list where id = :q_ka;
-- The key is still found by its old prefix for updates (not for rotation).
select tollgate.key_update('tg-AD5keyA1', '{"name": "rotated laptop"}', 'ops@example.com')->>'prefix' as prefix;
select tollgate.key_rotate('tg-AD5keyA1', sha256('ad5-a3'::bytea), 'tg-AD5keyA3', 0, 'ops@example.com') is null
       as old_prefix_not_rotated;
-- Rotating again with grace 0: the secret before stops at once; the one
-- before that is forgotten.
select tollgate.key_rotate('tg-AD5keyA2', sha256('ad5-a3'::bytea), 'tg-AD5keyA3', 0, 'ops@example.com')->>'previous_prefix'
       as previous_prefix;
select s.secret, i.status, i.api_key_id = :ka as same_key
  from (values ('ad5-a'), ('ad5-a2'), ('ad5-a3')) as s(secret),
       lateral tollgate.identify(sha256(s.secret::bytea), null, null, null, false, null, null,
                                 '/v1/messages', 'claude-haiku-4-5') i
 order by s.secret;
-- Refused: a negative grace; a new secret or prefix already in use (as a
-- current or a previous one, this key's included).
select tollgate.key_rotate('tg-AD5keyA3', sha256('ad5-a4'::bytea), 'tg-AD5keyA4', -1, 'ops@example.com');
select tollgate.key_rotate('tg-AD5keyA3', sha256('ad5-b'::bytea), 'tg-AD5keyA4', 60, 'ops@example.com');
select tollgate.key_rotate('tg-AD5keyA3', sha256('ad5-a3'::bytea), 'tg-AD5keyA4', 60, 'ops@example.com');
select tollgate.key_rotate('tg-AD5keyA3', sha256('ad5-a4'::bytea), 'tg-AD5keyB1', 60, 'ops@example.com');
select tollgate.key_rotate('tg-AD5keyA3', sha256('ad5-a4'::bytea), 'tg-AD5keyA2', 60, 'ops@example.com');
select tollgate.key_rotate('tg-AD5keyA3', sha256('ad5-a4'::bytea), 'bad prefix', 60, 'ops@example.com');
select prefix from tollgate.api_keys where id = :ka;
-- Not an active key: null, nothing changed (unknown, expired, revoked).
select tollgate.key_rotate('tg-NOSUCH00', sha256('ad5-x'::bytea), 'tg-AD5keyX1', 60, 'ops') is null as unknown;
update tollgate.api_keys set expires_at = '2026-10-01 09:00:00+00' where id = :kb;
select tollgate.key_rotate('tg-AD5keyB1', sha256('ad5-x'::bytea), 'tg-AD5keyX1', 60, 'ops') is null as expired;
update tollgate.api_keys set expires_at = null where id = :kb;
select * from audits;

-- ---------------------------------------------------------------------------
-- key_revoke by a previous prefix: both secrets stop.
execute mark;
select tollgate.key_rotate('tg-AD5keyB1', sha256('ad5-b2'::bytea), 'tg-AD5keyB2', 3600, 'ops@example.com')->>'prefix'
       as prefix;
select tollgate.key_revoke('tg-AD5keyB1', 'ops@example.com') as revoked;
select prefix, revoked_at = now() as revoked_now from tollgate.api_keys where id = :kb;
select s.secret, i.status
  from (values ('ad5-b'), ('ad5-b2')) as s(secret),
       lateral tollgate.identify(sha256(s.secret::bytea), null, null, null, false, null, null,
                                 '/v1/messages', 'claude-haiku-4-5') i
 order by s.secret;
-- Again (by either prefix): true, nothing audited; unknown: false.
select tollgate.key_revoke('tg-AD5keyB2', 'ops@example.com') as again_new,
       tollgate.key_revoke('tg-AD5keyB1', 'ops@example.com') as again_old,
       tollgate.key_revoke('tg-NOSUCH00', 'ops@example.com') as unknown;
-- A revoked key is not rotated.
select tollgate.key_rotate('tg-AD5keyB2', sha256('ad5-x'::bytea), 'tg-AD5keyX1', 60, 'ops') is null as revoked;
select * from audits;

-- key_list: 001's columns, then 004's.
select id = :ka as is_a, prefix, name, user_id, group_id, role, status, expires_at,
       revoked_at is not null as revoked, allowed_models, trusted_attribution,
       previous_prefix, previous_expires_at
  from tollgate.key_list where id in (:ka, :kb) order by id;

-- ---------------------------------------------------------------------------
-- Users.
execute mark;
-- New user in a new group (created, as key_create does).
select tollgate.user_upsert('ad5-carol', 'ad5-design', 'ops@example.com') - 'created_at' as user_row;
select id from tollgate.groups where id = 'ad5-design';
-- Same group: nothing audited. Another group: moved; its keys keep theirs.
select tollgate.user_upsert('ad5-carol', 'ad5-design', 'ops@example.com') - 'created_at' as same;
select tollgate.user_upsert('ad5-alice', 'ad5-design', 'ops@example.com') - 'created_at' as moved;
select group_id from tollgate.api_keys where id = :ka;
-- Invalid ids: refused.
select tollgate.user_upsert('bad user', 'ad5-design', 'ops');
select tollgate.user_upsert('ad5-dave', null, 'ops');
select tollgate.user_upsert(null, 'ad5-design', 'ops');
-- user_delete: false when absent; refused while keys (even revoked) belong
-- to the user; true otherwise.
select tollgate.user_delete('ad5-nobody', 'ops') as absent;
select tollgate.user_delete('ad5-bob', 'ops');
select tollgate.user_delete('ad5-carol', 'ops@example.com') as deleted;
select count(*) as carol_rows from tollgate.users where id = 'ad5-carol';
select * from audits;
select id, group_id, active_keys from tollgate.user_list where id like 'ad5-%' order by id;

-- ---------------------------------------------------------------------------
-- Groups and roles.
execute mark;
select tollgate.group_upsert('ad5-research', '{claude-*}', null, 'ops@example.com') - 'created_at' as grp;
select tollgate.group_upsert('ad5-research', '{claude-*}', null, 'ops@example.com') - 'created_at' as same;
select tollgate.group_upsert('ad5-research', '{claude-*,gpt-*}', '{/v1/messages}', 'ops@example.com') - 'created_at' as changed;
-- Its restrictions apply at once.
select status, denied_subject
  from tollgate.identify(null, 'ad5-alice', 'ad5-research', null, false, null, null, '/v1/messages', 'mistral-large');
-- Existing group without restrictions: set, then cleared (nulls).
select tollgate.group_upsert('ad5-eng', null, '{/v1/*}', 'ops@example.com') - 'created_at' as eng;
select tollgate.group_upsert('ad5-eng', null, null, 'ops@example.com') - 'created_at' as eng;
select tollgate.group_upsert('bad group', null, null, 'ops');
-- group_delete: false when absent; refused while users or keys belong to it.
select tollgate.group_delete('ad5-nothing', 'ops') as absent;
select tollgate.group_delete('ad5-eng', 'ops');
select tollgate.group_delete('ad5-design', 'ops');
select tollgate.group_delete('ad5-research', 'ops@example.com') as deleted;
select id, allowed_models, allowed_endpoints, users, active_keys
  from tollgate.group_list where id like 'ad5-%' order by id;

select tollgate.role_upsert('ad5-intern', '{claude-haiku-*}', '{/v1/messages}', 'ops@example.com') - 'created_at' as role_row;
select tollgate.role_upsert('ad5-intern', '{claude-haiku-*}', '{/v1/messages}', 'ops@example.com') - 'created_at' as same;
select tollgate.role_upsert('ad5-intern', '{claude-haiku-*,claude-sonnet-*}', '{/v1/messages}', 'ops@example.com')
       - 'created_at' as changed;
select tollgate.role_upsert('', null, null, 'ops');
select status, denied_subject
  from tollgate.identify(null, 'ad5-alice', null, 'ad5-intern', false, null, null, '/v1/messages', 'claude-opus-4-1');
select tollgate.key_update('tg-AD5keyA3', '{"role": "ad5-intern"}', 'ops@example.com')->>'role' as role;
select id, allowed_models, allowed_endpoints, active_keys from tollgate.role_list where id like 'ad5-%' order by id;
-- role_delete: keys naming the role do not prevent it (they lose its
-- restrictions); false when absent.
select tollgate.role_delete('ad5-intern', 'ops@example.com') as deleted,
       tollgate.role_delete('ad5-intern', 'ops@example.com') as again;
select status
  from tollgate.identify(null, 'ad5-alice', null, 'ad5-intern', false, null, null, '/v1/messages', 'claude-opus-4-1');
select * from audits;

-- ---------------------------------------------------------------------------
-- quota_delete.
execute mark;
select tollgate.quota_set('user', 'ad5-alice', 'tokens', 'day', 1000, 'admin') > 0 as q_user;
-- By key prefix (the current one), user, group; false when absent.
select tollgate.quota_delete('key', 'tg-AD5keyA3', 'requests', 'day', 'ops@example.com') as key_quota,
       tollgate.quota_delete('user', 'ad5-alice', 'tokens', 'day', 'ops@example.com') as user_quota,
       tollgate.quota_delete('user', 'ad5-alice', 'tokens', 'day', 'ops@example.com') as again,
       tollgate.quota_delete('group', 'ad5-eng', 'usd', 'month', 'ops@example.com') as absent;
select count(*) as quotas_left from tollgate.quotas where id = :q_ka or subject_id = 'ad5-alice';
-- The subject is resolved as quota_set does.
select tollgate.quota_delete('key', 'tg-NOSUCH00', 'requests', 'day', 'ops');
select tollgate.quota_delete('team', 'ad5-eng', 'usd', 'month', 'ops');
select tollgate.quota_delete('user', 'bad user', 'usd', 'month', 'ops');
select actor, action, subject, before->>'metric' as metric, before->>'limit_value' as limit_value, after
  from tollgate.audit_log where id > (select audit_id from marked) and action = 'quota.delete' order by id;

-- ---------------------------------------------------------------------------
-- Prices.
execute mark;
-- A null effective_from is the clock; a later row is not in force yet.
select tollgate.price_set('ad5-model', null, 1000000, 5000000, 100000, 1250000, 'ops@example.com') as price;
select tollgate.price_set('ad5-model', '2026-11-01 00:00:00+00', 2000000, 6000000, 0, 0, 'ops@example.com') as price;
select tollgate.price_set('ad5-model', '2026-01-01 00:00:00+00', 500000, 500000, null, null, 'ops@example.com') as price;
-- Same row again: replaced; identical: nothing audited.
select tollgate.price_set('ad5-model', '2026-10-01 09:00:00+00', 1000000, 5000000, 100000, 1500000, 'ops@example.com')
       ->>'cache_write_micros_per_mtok' as cache_write;
select tollgate.price_set('ad5-model', '2026-10-01 09:00:00+00', 1000000, 5000000, 100000, 1500000, 'ops@example.com')
       ->>'cache_write_micros_per_mtok' as cache_write;
-- Refused: negative, empty model.
select tollgate.price_set('ad5-model', null, -1, 0, 0, 0, 'ops');
select tollgate.price_set('', null, 1, 0, 0, 0, 'ops');
select * from tollgate.price_list where model = 'ad5-model' order by effective_from;
select tollgate.price_micros('ad5-model', tollgate.clock(), 1000000, 0, 0, 0) as micros_now;
set local tollgate.now = '2026-11-02 00:00:00+00';
select effective_from, in_force from tollgate.price_list where model = 'ad5-model' order by effective_from;
set local tollgate.now = '2026-10-01 09:00:00+00';
select * from audits;

-- ---------------------------------------------------------------------------
-- The whole audit log of this test: one row per change, each with an actor,
-- and no key hash anywhere.
select action, count(*) as n
  from tollgate.audit_log where id > :audit_start group by action order by action;
select count(*) as rows_with_hash
  from tollgate.audit_log where before::text like '%hash%' or after::text like '%hash%';
select count(*) as rows_without_actor
  from tollgate.audit_log where id > :audit_start and coalesce(actor, '') = '';

rollback;
