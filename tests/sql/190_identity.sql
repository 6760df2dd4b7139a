-- 190_identity: sql/004_identity.sql — glob_match, access_denial (RBAC
-- order), identify for JWT principals (known, unknown, just-in-time
-- creation with audit rows, invalid ids), end-user attribution, key
-- rotation's previous secret, and reserve for a JWT principal (quota rows
-- of the user and group only; per-key buckets skipped).
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-09-01 12:00:00+00';

-- glob_match: '*' any run, '?' one character, everything else literal
-- ('%', '_' and '\' too); null patterns match anything, an empty list
-- nothing; a null name matches only null patterns.
select v.name, v.patterns, tollgate.glob_match(v.name, v.patterns) as matches
  from (values ('claude-sonnet-4-5', '{claude-*}'::text[]),
               ('claude-sonnet-4-5', '{claude-*-4-5}'),
               ('claude',            '{claude-*}'),
               ('gpt-4o',            '{claude-*,gpt-4?}'),
               ('gpt-4',             '{gpt-4?}'),
               ('gpt-4oo',           '{gpt-4?}'),
               ('a',                 '{?}'),
               ('',                  '{?}'),
               ('ab',                '{?}'),
               ('anything',          '{*}'),
               ('',                  '{*}'),
               ('CLAUDE-X',          '{claude-*}'),
               ('100%',              '{100%}'),
               ('1000',              '{100%}'),
               ('a_b',               '{a_b}'),
               ('axb',               '{a_b}'),
               ('a\b',               '{a\\b}'),
               ('/v1/messages',      '{/v1/*}'),
               ('/v1/messages',      '{/v1/messages/count_tokens}'),
               ('x',                 null),
               (null,                null),
               (null,                '{*}'),
               ('x',                 '{}'),
               ('x',                 '{NULL,x}')) as v(name, patterns);

-- access_denial: the first refusal in the order group endpoint, role
-- endpoint, group model, role model, key model; no row when allowed.
insert into tollgate.groups (id, allowed_models, allowed_endpoints)
values ('id-g-open', null, null),
       ('id-g-claude', '{claude-*}', '{/v1/messages}');
insert into tollgate.roles (id, allowed_models, allowed_endpoints)
values ('id-r-open', null, null),
       ('id-r-haiku', '{claude-haiku-*,gpt-*}', '{/v1/*}');
select v.case_name, d.denial, d.subject
  from (values ('all allowed',          '/v1/messages', 'claude-haiku-4-5', 'id-g-claude', 'id-r-haiku', '{claude-haiku-4-5}'::text[]),
               ('group endpoint first', '/v2/other',    'mistral',          'id-g-claude', 'id-r-haiku', '{gpt-4o}'),
               ('role endpoint',        '/v2/other',    'mistral',          'id-g-open',   'id-r-haiku', '{gpt-4o}'),
               ('group model',          '/v1/messages', 'gpt-4o',           'id-g-claude', 'id-r-haiku', '{mistral}'),
               ('role model',           '/v1/messages', 'claude-opus-4-1',  'id-g-claude', 'id-r-haiku', '{mistral}'),
               ('key model',            '/v1/messages', 'claude-haiku-4-5', 'id-g-claude', 'id-r-haiku', '{claude-sonnet-*}'),
               ('no model: not checked', '/v1/messages', null,              'id-g-claude', 'id-r-haiku', '{}'),
               ('unknown group/role',   '/v9/x',        'x',                'id-g-nope',   'id-r-nope',  null),
               ('open',                 '/v9/x',        'x',                'id-g-open',   'id-r-open',  null))
       as v(case_name, endpoint, model, grp, rle, key_models)
  left join lateral tollgate.access_denial(v.endpoint, v.model, v.grp, v.rle, v.key_models) d on true;

-- identify for a JWT principal (no key hash).
insert into tollgate.groups (id) values ('id-home'), ('id-other');
insert into tollgate.users (id, group_id) values ('id-alice', 'id-home');
create temp view jit_audits as
    select actor, action, subject, before, after
      from tollgate.audit_log where subject ~ '^(user|group):id-' order by id;

-- Known user: the group is the user's own when none is named, the named
-- one otherwise; the role defaults to 'user'.
select * from tollgate.identify(null, 'id-alice', null, null, false, null, null, '/v1/messages', 'claude-haiku-4-5');
select * from tollgate.identify(null, 'id-alice', 'id-other', 'admin', false, null, null, '/v1/messages', 'claude-haiku-4-5');
select * from tollgate.identify(null, 'id-alice', 'id-home', null, false, null, null, '/v1/messages', 'claude-haiku-4-5');
-- RBAC applies to the principal's group and role.
select * from tollgate.identify(null, 'id-alice', 'id-g-claude', 'id-r-haiku', false, null, null, '/v1/messages', 'claude-opus-4-1');
-- Unknown user without p_create: 'unknown_user', nothing created.
select * from tollgate.identify(null, 'id-bob', 'id-home', null, false, null, null, '/v1/messages', 'x');
select * from tollgate.identify(null, 'id-bob', 'id-home', null, null, null, null, '/v1/messages', 'x');
-- A new user needs a group, even with p_create.
select * from tollgate.identify(null, 'id-bob', null, null, true, null, null, '/v1/messages', 'x');
select count(*) as bob_rows from tollgate.users where id = 'id-bob';
-- Known user, unknown group, without p_create: 'unknown_group'.
select * from tollgate.identify(null, 'id-alice', 'id-newteam', null, false, null, null, '/v1/messages', 'x');
select count(*) as newteam_rows from tollgate.groups where id = 'id-newteam';
select count(*) as audits_so_far from jit_audits;
-- Invalid identifiers: 'invalid_principal', nothing created.
select left(v.u, 12) as user_start, length(v.u) as user_len, v.g, v.r, i.status,
       i.user_id is not distinct from v.u as user_echoed, i.group_id, i.role
  from (values (null::text, 'id-home'::text, null::text), ('', 'id-home', null),
               ('-bob', 'id-home', null), ('bob smith', 'id-home', null),
               ('id-bob', 'bad group', null), ('id-bob', 'id-home', 'bad role'),
               (repeat('a', 129), 'id-home', null), (repeat('a', 128), 'bad/', null)) as v(u, g, r),
       lateral tollgate.identify(null, v.u, v.g, v.r, true, null, null, '/v1/messages', 'x') i;
select count(*) as created from tollgate.users where id like 'aaaa%' or id = 'id-bob';

-- p_create: an unknown user is created in the named group (created too),
-- with a 'group.create' and a 'user.create' audit row by actor 'jwt'.
select * from tollgate.identify(null, 'id-carol', 'id-jit', 'user', true, null, null, '/v1/messages', 'x');
select id, group_id from tollgate.users where id = 'id-carol';
select id from tollgate.groups where id = 'id-jit';
select * from jit_audits;
-- A second user of that group: only 'user.create' (the group exists).
select status, user_id, group_id from tollgate.identify(null, 'id-dan', 'id-jit', null, true, null, null, '/v1/messages', 'x');
-- A known user naming a new group with p_create: the group is created
-- ('group.create'), the user stays in its own.
select status, user_id, group_id from tollgate.identify(null, 'id-alice', 'id-jit2', null, true, null, null, '/v1/messages', 'x');
select group_id from tollgate.users where id = 'id-alice';
-- Seen again: nothing new.
select status, user_id, group_id from tollgate.identify(null, 'id-carol', 'id-jit', null, true, null, null, '/v1/messages', 'x');
select * from jit_audits;

-- End-user attribution (x-tollgate-user / -group) for keys.
select tollgate.key_create(sha256('id-plain'::bytea),   'tg-IDplain1', 'plain',   'id-svc', 'id-svcgroup', null, 'test') as k_plain,
       tollgate.key_create(sha256('id-trusted'::bytea), 'tg-IDtrust1', 'trusted', 'id-svc', 'id-svcgroup', null, 'test') as k_trusted
\gset
update tollgate.api_keys set trusted_attribution = true where id = :k_trusted;
-- Untrusted key: 'ignored', identity unchanged.
select status, key_prefix, user_id, group_id, attribution
  from tollgate.identify(sha256('id-plain'::bytea), null, null, null, false, 'end-user', 'end-team', '/v1/messages', 'x');
-- Nothing to attribute: attribution null.
select status, key_prefix, user_id, group_id, attribution
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, null, null, '/v1/messages', 'x');
-- Trusted key: 'applied', user and group replaced (either alone too).
select status, key_prefix, user_id, group_id, attribution
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, 'end-user', 'end-team', '/v1/messages', 'x');
select status, key_prefix, user_id, group_id, attribution
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, 'end-user', null, '/v1/messages', 'x');
select status, key_prefix, user_id, group_id, attribution
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, null, 'end-team', '/v1/messages', 'x');
-- ... and RBAC is then the attributed group's.
select status, user_id, group_id, attribution, denied_subject
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, 'end-user', 'id-g-claude', '/v1/messages', 'gpt-4o');
-- The key's own group's rules still bind an attributed request: naming an
-- unrestricted (or unknown) end group does not widen them.
update tollgate.groups set allowed_models = '{claude-haiku-*}' where id = 'id-svcgroup';
select status, user_id, group_id, attribution, denied_subject
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, 'end-user', 'no-such-team', '/v1/messages', 'claude-sonnet-4-5');
select status, user_id, group_id, attribution, denied_subject
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, 'end-user', 'no-such-team', '/v1/messages', 'claude-haiku-4-5');
update tollgate.groups set allowed_models = null where id = 'id-svcgroup';
-- Invalid end user or group on a trusted key: 'invalid_principal'.
select status, key_prefix, user_id, group_id, attribution
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, 'bad user', null, '/v1/messages', 'x');
select status, key_prefix, user_id, group_id, attribution
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, 'end-user', '', '/v1/messages', 'x');
-- A revoked trusted key: 'revoked' first, nothing attributed.
update tollgate.api_keys set revoked_at = now() where id = :k_trusted;
select status, user_id, group_id, attribution
  from tollgate.identify(sha256('id-trusted'::bytea), null, null, null, false, 'end-user', 'end-team', '/v1/messages', 'x');
update tollgate.api_keys set revoked_at = null where id = :k_trusted;

-- Rotation: a key whose secret moved to previous_key_hash is found by
-- either secret; the old one answers 'expired' from previous_expires_at on.
update tollgate.api_keys
   set previous_key_hash = key_hash, previous_prefix = prefix,
       previous_expires_at = '2026-09-01 13:00:00+00',
       key_hash = sha256('id-plain-2'::bytea), prefix = 'tg-IDplain2'
 where id = :k_plain;
select 'new' as secret, status, api_key_id = :k_plain as same_key, key_prefix
  from tollgate.identify(sha256('id-plain-2'::bytea), null, null, null, false, null, null, '/v1/messages', 'x')
union all
select 'old', status, api_key_id = :k_plain, key_prefix
  from tollgate.identify(sha256('id-plain'::bytea), null, null, null, false, null, null, '/v1/messages', 'x')
 order by 1;
set local tollgate.now = '2026-09-01 12:59:59.999999+00';
select status from tollgate.identify(sha256('id-plain'::bytea), null, null, null, false, null, null, '/v1/messages', 'x');
set local tollgate.now = '2026-09-01 13:00:00+00';
select 'new' as secret, status
  from tollgate.identify(sha256('id-plain-2'::bytea), null, null, null, false, null, null, '/v1/messages', 'x')
union all
select 'old', status
  from tollgate.identify(sha256('id-plain'::bytea), null, null, null, false, null, null, '/v1/messages', 'x')
 order by 1;
-- The key's own expiry ends both secrets; revoking ends both.
set local tollgate.now = '2026-09-01 12:30:00+00';
update tollgate.api_keys set expires_at = '2026-09-01 12:15:00+00' where id = :k_plain;
select 'new' as secret, status
  from tollgate.identify(sha256('id-plain-2'::bytea), null, null, null, false, null, null, '/v1/messages', 'x')
union all
select 'old', status
  from tollgate.identify(sha256('id-plain'::bytea), null, null, null, false, null, null, '/v1/messages', 'x')
 order by 1;
update tollgate.api_keys set expires_at = null, revoked_at = now() where id = :k_plain;
select 'new' as secret, status
  from tollgate.identify(sha256('id-plain-2'::bytea), null, null, null, false, null, null, '/v1/messages', 'x')
union all
select 'old', status
  from tollgate.identify(sha256('id-plain'::bytea), null, null, null, false, null, null, '/v1/messages', 'x')
 order by 1;

-- reserve for a JWT principal: the quota rows of its user and group, never
-- a key's (not even one of the same user's keys).
set local tollgate.now = '2026-09-01 12:00:00+00';
select tollgate.key_create(sha256('id-alice-key'::bytea), 'tg-IDalice1', 'a', 'id-alice', 'id-home', null, 'test') as k_alice
\gset
select tollgate.quota_set('user',  'id-alice',    'tokens',   'day', 100000, 'test') as q_user,
       tollgate.quota_set('group', 'id-home',     'requests', 'day', 10,     'test') as q_group,
       tollgate.quota_set('key',   'tg-IDalice1', 'requests', 'day', 10,     'test') as q_key
\gset
select status, api_key_id, key_prefix, user_id, group_id, role, attribution,
       tokens_limit, tokens_remaining, requests_limit, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-000000190001', null, 'claude-haiku-4-5', 100, 200,
                        'h:1', 60000, null, 'id-alice', null, null, false);
select subject_kind, subject, metric, used, reserved
  from tollgate.quota_list where id in (:q_user, :q_group, :q_key) order by id;
select api_key_id, user_id, group_id, tokens, quota_ids = array[:q_user, :q_group]::bigint[] as quota_ids_ok
  from tollgate.reservations where request_id = '00000000-0000-4000-8000-000000190001';
-- Identity refusals come back from reserve as they are, nothing reserved.
select status, user_id, group_id
  from tollgate.reserve('00000000-0000-4000-8000-000000190002', null, 'claude-haiku-4-5', 100, 200,
                        'h:1', 60000, null, 'id-nobody', 'id-home', null, false);
select status, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-000000190003', null, 'gpt-4o', 100, 200,
                        'h:1', 60000, null, 'id-alice', 'id-g-claude', null, false);
select status, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-000000190004', null, 'claude-haiku-4-5', 100, 200,
                        'h:1', 60000, null, 'id-alice', 'id-g-claude', null, false, null, null, '/v1/other');
select count(*) as reservations from tollgate.reservations
 where request_id::text like '00000000-0000-4000-8000-00000019000_' and request_id <> '00000000-0000-4000-8000-000000190001';
-- p_create through reserve: created, then reserved on the new user's rows.
select status, user_id, group_id
  from tollgate.reserve('00000000-0000-4000-8000-000000190005', null, 'claude-haiku-4-5', 100, 200,
                        'h:1', 60000, null, 'id-erin', 'id-home', null, true);
select group_id from tollgate.users where id = 'id-erin';

-- Buckets for a JWT principal: a rule per 'key' does not apply (no key),
-- per 'user' does; for a key both do.
\set rules '[{"bucket": "perkey", "per": "key", "max_tokens": 1, "tokens_per_fill": 1, "fill_interval_ms": 60000}, {"bucket": "peruser", "per": "user", "max_tokens": 5, "tokens_per_fill": 1, "fill_interval_ms": 60000}]'
select status
  from tollgate.reserve('00000000-0000-4000-8000-000000190006', null, 'claude-haiku-4-5', 1, 1,
                        'h:1', 60000, :'rules'::jsonb, 'id-alice', null, null, false);
select bucket, tokens from tollgate.rate_buckets where bucket like 'per%' order by bucket;
select buckets from tollgate.reservations where request_id = '00000000-0000-4000-8000-000000190006';
select status
  from tollgate.reserve('00000000-0000-4000-8000-000000190007', sha256('id-alice-key'::bytea), 'claude-haiku-4-5', 1, 1,
                        'h:1', 60000, :'rules'::jsonb);
select bucket, tokens from tollgate.rate_buckets where bucket like 'per%' order by bucket;
-- A second JWT call is still not limited by the (now empty) per-key bucket.
select status
  from tollgate.reserve('00000000-0000-4000-8000-000000190008', null, 'claude-haiku-4-5', 1, 1,
                        'h:1', 60000, :'rules'::jsonb, 'id-alice', null, null, false);
select status, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-000000190009', sha256('id-alice-key'::bytea), 'claude-haiku-4-5', 1, 1,
                        'h:1', 60000, :'rules'::jsonb);

rollback;
