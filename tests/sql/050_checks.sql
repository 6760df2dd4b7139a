-- 050_checks: CHECK constraints refuse bad identifiers, key hashes,
-- prefixes, roles, negative tokens, costs and prices.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

-- Identifiers: letter or digit first, then [A-Za-z0-9._@:-], at most 128.
select tollgate.ensure_principal('alice@example.com', 'team.a_b:c-d') as ok_ids;
select tollgate.ensure_principal('u1', repeat('g', 128)) = repeat('g', 128) as ok_128_chars;
select tollgate.ensure_principal('u2', repeat('g', 129));
select tollgate.ensure_principal('u3', '-starts-with-dash');
select tollgate.ensure_principal('u4', 'has space');
select tollgate.ensure_principal('u5', '');
select tollgate.ensure_principal('u6', 'semi;colon');
select tollgate.ensure_principal('ünïcode', 'ck-group');
select tollgate.ensure_principal('.dot', 'ck-group');
select tollgate.ensure_principal('x/y', 'ck-group');
select tollgate.ensure_principal(null, 'ck-group');
insert into tollgate.groups (id) values ('bad''quote');
select id from tollgate.users where id in ('alice@example.com', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6',
                                          'ünïcode', '.dot', 'x/y') order by id;

-- Key hash must be 32 bytes; prefix 'tg-' + 8 base64url; role an identifier.
select tollgate.key_create(substring(sha256('ck'::bytea) from 1 for 31), 'tg-CKkey001', 'n', 'ck-user', 'ck-group', null, 't');
select tollgate.key_create(sha256('ck'::bytea) || '\x00'::bytea, 'tg-CKkey001', 'n', 'ck-user', 'ck-group', null, 't');
select tollgate.key_create(sha256('ck'::bytea), 'xx-CKkey001', 'n', 'ck-user', 'ck-group', null, 't');
select tollgate.key_create(sha256('ck'::bytea), 'tg-CKkey01', 'n', 'ck-user', 'ck-group', null, 't');
select tollgate.key_create(sha256('ck'::bytea), 'tg-CK+ey001', 'n', 'ck-user', 'ck-group', null, 't');
select tollgate.key_create(sha256('ck'::bytea), 'tg-CKkey001', 'n', 'ck-user', 'ck-group', 'bad role', 't');
select tollgate.key_create(sha256('ck'::bytea), 'tg-CKkey001', repeat('n', 201), 'ck-user', 'ck-group', null, 't');
select tollgate.key_create(sha256('ck'::bytea), 'tg-CKkey001', 'n', 'bad user!', 'ck-group', null, 't');
select tollgate.key_create(null, 'tg-CKkey001', 'n', 'ck-user', 'ck-group', null, 't');
select count(*) as keys from tollgate.api_keys where prefix = 'tg-CKkey001';
select count(*) as audits from tollgate.audit_log where subject = 'key:tg-CKkey001';
-- A valid one, with '-' and '_' in the prefix.
select tollgate.key_create(sha256('ck'::bytea), 'tg-C-_ey001', 'n', 'ck-user', 'ck-group', null, 't') > 0 as created;

-- Token counts and cost must be non-negative.
select tollgate.record_usage('00000000-0000-4000-8000-0000000000c1', '2025-06-01', null, 'u', 'g',
                             'anthropic', 'claude-sonnet-4-5', -1, 0, 0, 0, 200, 1, 1, false, 'ok');
select tollgate.record_usage('00000000-0000-4000-8000-0000000000c2', '2025-06-01', null, 'u', 'g',
                             'anthropic', 'claude-sonnet-4-5', 0, -1, 0, 0, 200, 1, 1, false, 'ok');
select tollgate.record_usage('00000000-0000-4000-8000-0000000000c3', '2025-06-01', null, 'u', 'g',
                             'anthropic', 'claude-sonnet-4-5', 0, 0, -1, 0, 200, 1, 1, false, 'ok');
select tollgate.record_usage('00000000-0000-4000-8000-0000000000c4', '2025-06-01', null, 'u', 'g',
                             'anthropic', 'claude-sonnet-4-5', 0, 0, 0, -1, 200, 1, 1, false, 'ok');
-- The table refuses them too, when written directly.
insert into tollgate.usage (request_id, ts, provider, model, cost_micros)
values ('00000000-0000-4000-8000-0000000000c5', '2025-06-01', 'anthropic', 'x', -1);
insert into tollgate.usage (request_id, ts, provider, model, output_tokens)
values ('00000000-0000-4000-8000-0000000000c5', '2025-06-01', 'anthropic', 'x', -1);
insert into tollgate.usage (request_id, ts, provider, model, cache_write_tokens)
values ('00000000-0000-4000-8000-0000000000c5', '2025-06-01', 'anthropic', 'x', -5);
select count(*) as usage_rows from tollgate.usage
 where request_id in ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-0000000000c2',
                      '00000000-0000-4000-8000-0000000000c3', '00000000-0000-4000-8000-0000000000c4',
                      '00000000-0000-4000-8000-0000000000c5');

-- Prices must be non-negative and name a model; one row per (model, effective_from).
insert into tollgate.prices (model, effective_from, input_micros_per_mtok) values ('ck-model', '2025-01-01', -1);
insert into tollgate.prices (model, effective_from, input_micros_per_mtok) values ('', '2025-01-01', 1);
insert into tollgate.prices (model, effective_from, input_micros_per_mtok) values ('claude-sonnet-4-5', '2025-01-01 00:00:00+00', 1);

rollback;
