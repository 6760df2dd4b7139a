-- 262_unpriced_model: reserve answers 'unpriced_model' when the request's
-- model has no price in force (price_upper_micros is null): nothing
-- reserved, nothing written, the identity filled; identity and RBAC
-- refusals come first; a price of zero is a price; a null model is not
-- priced.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-05-10 08:00:00+00';

-- price_upper_micros answers null for a model without a price (009).
select tollgate.price_upper_micros('up-no-such-model', now(), 1, 1) is null as unpriced_is_null;

create temp view writes as
    select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) as n
      from pg_stat_xact_user_tables where schemaname = 'tollgate';
select tollgate.key_create(sha256('up-free'::bytea),  'tg-UPfree01', 'free',  'up-ann', 'up-open', null, 'test') as k_free,
       tollgate.key_create(sha256('up-quota'::bytea), 'tg-UPquot01', 'quota', 'up-bob', 'up-team', null, 'test') as k_quota,
       tollgate.key_create(sha256('up-haiku'::bytea), 'tg-UPhaik01', 'haiku', 'up-cat', 'up-open', null, 'test') as k_haiku
\gset
update tollgate.api_keys set allowed_models = '{claude-haiku-*,up-*}' where id = :k_haiku;
select tollgate.quota_set('group', 'up-team', 'usd', 'month', 1000000, 'test') as q_usd
\gset
-- up-free-model costs nothing (a price all the same); up-later is priced
-- only from June.
insert into tollgate.prices (model, effective_from, input_micros_per_mtok, output_micros_per_mtok)
values ('up-free-model', '2026-01-01 00:00:00+00', 0, 0),
       ('up-later',      '2026-06-01 00:00:00+00', 1000000, 2000000);
select n as w0 from writes \gset

-- No price (none at all, or none in force yet): refused, the identity known.
select m.model, r.status, r.api_key_id = :k_free as key_ok, r.key_prefix, r.user_id, r.group_id,
       r.role, r.denied_subject, r.tokens_limit
  from unnest(array['up-no-such-model', 'up-later']) with ordinality as m(model, n),
       lateral tollgate.reserve(('00000000-0000-4000-8000-0000006200' || lpad(m.n::text, 2, '0'))::uuid,
                                sha256('up-free'::bytea), m.model, 100, 100, 'h:1', 60000) as r
 order by m.n;
-- ... also where a usd quota applies: nothing reserved on it.
select status, key_prefix, group_id
  from tollgate.reserve('00000000-0000-4000-8000-000000620011', sha256('up-quota'::bytea),
                        'up-no-such-model', 100, 100, 'h:1', 60000);
select (select n from writes) - :w0 as rows_written,
       (select count(*) from tollgate.reservations
         where request_id::text like '00000000-0000-4000-8000-0000006200%') as reservations,
       (select reserved from tollgate.quotas where id = :q_usd) as usd_reserved;
-- Identity and RBAC refusals come first.
select 'unknown key' as caller, status, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-000000620021', sha256('up-nokey'::bytea),
                        'up-no-such-model', 100, 100, 'h:1', 60000)
union all
select 'model not allowed', status, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-000000620022', sha256('up-haiku'::bytea),
                        'no-such-model', 100, 100, 'h:1', 60000)
union all
select 'allowed, unpriced', status, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-000000620023', sha256('up-haiku'::bytea),
                        'up-no-such-model', 100, 100, 'h:1', 60000);
-- A price of zero, a priced model, no model: ok; up-later from June on.
select m.model, r.status
  from unnest(array['up-free-model', 'claude-haiku-4-5', null]) with ordinality as m(model, n),
       lateral tollgate.reserve(('00000000-0000-4000-8000-0000006200' || lpad((30 + m.n)::text, 2, '0'))::uuid,
                                sha256('up-quota'::bytea), m.model, 100, 100, 'h:1', 60000) as r
 order by m.n;
set local tollgate.now = '2026-06-01 00:00:00+00';
select status from tollgate.reserve('00000000-0000-4000-8000-000000620041', sha256('up-free'::bytea),
                                    'up-later', 100, 100, 'h:1', 60000);

rollback;
