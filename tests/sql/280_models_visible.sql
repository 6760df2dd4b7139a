-- 280_models_visible: GET /v1/models' list — the config's names (and aliases)
-- a caller may use under its group's, role's and key's allowed_models globs,
-- checked on the canonical model as reserve checks it, in the given order, each
-- with the rates of its canonical model's price in force (null: unpriced).
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-05-10 08:00:00+00';

insert into tollgate.prices (model, effective_from, input_micros_per_mtok, output_micros_per_mtok)
values ('mv-gpt', '2026-01-01', 2500000, 10000000),
       ('mv-gpt', '2026-06-01', 9999999, 9999999),   -- not yet in force
       ('mv-claude', '2026-01-01', 1000000, 5000000);
insert into tollgate.groups (id, allowed_models) values ('mv-open', null), ('mv-gpt-only', '{mv-gpt*}');
insert into tollgate.roles (id, allowed_models) values ('mv-role', '{mv-claude,mv-gpt}');
select tollgate.key_create(sha256('mv-key'::bytea), 'tg-MVkey001', 'k', 'mv-user', 'mv-open', null, 'test') as k
\gset
update tollgate.api_keys set allowed_models = '{mv-claude}' where id = :k;

-- every model, aliases named after their canonical model; mv-new has no price
select * from tollgate.models_visible(null, 'mv-open', null,
    '[["mv-claude","mv-claude"],["fast","mv-claude"],["mv-gpt","mv-gpt"],["mv-new","mv-new"]]');
-- the group allows mv-gpt* only (an alias of mv-claude is refused with it)
select model from tollgate.models_visible(null, 'mv-gpt-only', null,
    '[["mv-claude","mv-claude"],["fast","mv-claude"],["mv-gpt","mv-gpt"],["mv-gpt-mini","mv-gpt"]]');
-- a role narrows too, and a key's own list narrows further
select model from tollgate.models_visible(null, 'mv-open', 'mv-role',
    '[["mv-claude","mv-claude"],["mv-gpt","mv-gpt"],["mv-new","mv-new"]]');
select model from tollgate.models_visible(:k, 'mv-open', null,
    '[["mv-claude","mv-claude"],["fast","mv-claude"],["mv-gpt","mv-gpt"]]');
-- nothing configured, nothing listed
select count(*) from tollgate.models_visible(null, 'mv-open', null, '[]');

rollback;
