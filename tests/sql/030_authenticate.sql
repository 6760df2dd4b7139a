-- 030_authenticate: tollgate.identify for keys: status of active, revoked,
-- expired and unknown keys.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

select tollgate.key_create(sha256('au-active'::bytea),  'tg-AUact001', 'active',  'au-user', 'au-group', null,    'test') as k_active,
       tollgate.key_create(sha256('au-revoked'::bytea), 'tg-AUrev001', 'revoked', 'au-user', 'au-group', 'admin', 'test') as k_revoked,
       tollgate.key_create(sha256('au-expired'::bytea), 'tg-AUexp001', 'expired', 'au-user', 'au-group', null,    'test') as k_expired,
       tollgate.key_create(sha256('au-now'::bytea),     'tg-AUnow001', 'now',     'au-user', 'au-group', null,    'test') as k_now,
       tollgate.key_create(sha256('au-future'::bytea),  'tg-AUfut001', 'future',  'au-user', 'au-group', null,    'test') as k_future,
       tollgate.key_create(sha256('au-both'::bytea),    'tg-AUbth001', 'both',    'au-user', 'au-group', null,    'test') as k_both
\gset

select tollgate.key_revoke('tg-AUrev001', 'test');
update tollgate.api_keys set expires_at = now() - interval '1 second' where id = :k_expired;
update tollgate.api_keys set expires_at = now()                       where id = :k_now;
update tollgate.api_keys set expires_at = now() + interval '1 day'    where id = :k_future;
update tollgate.api_keys set expires_at = now() - interval '1 day'    where id = :k_both;
select tollgate.key_revoke('tg-AUbth001', 'test');
update tollgate.api_keys set allowed_models = '{claude-haiku-4-5,gpt-4o}' where id = :k_active;

-- Active key: every column (a model it allows).
select status, api_key_id = :k_active as id_ok, key_prefix, user_id, group_id, role,
       attribution, denied_subject
  from tollgate.identify(sha256('au-active'::bytea), null, null, null, false, null, null,
                         '/v1/messages', 'gpt-4o');

-- Status of each key ('expired' when expires_at <= the clock, here now();
-- revoked wins). The identity columns are filled whatever the status.
select k.secret, a.api_key_id is not null as found, a.key_prefix, a.user_id, a.role, a.status
  from (values ('au-active'), ('au-revoked'), ('au-expired'), ('au-now'),
               ('au-future'), ('au-both')) as k(secret),
       lateral tollgate.identify(sha256(k.secret::bytea), null, null, null, false, null, null,
                                 '/v1/messages', 'claude-haiku-4-5') a
 order by k.secret;

-- Unknown key, wrong length: 'unknown_key', one row, every other column null.
select * from tollgate.identify(sha256('no-such-key'::bytea), null, null, null, false, null, null,
                                '/v1/messages', 'gpt-4o');
select * from tollgate.identify('\x0102'::bytea, null, null, null, false, null, null,
                                '/v1/messages', 'gpt-4o');
-- No key and no user: not a key lookup, and not a principal either.
select status, api_key_id, user_id
  from tollgate.identify(null, null, null, null, false, null, null, '/v1/messages', 'gpt-4o');

rollback;
