-- 310_attribution_owner: sql/016_attribution_owner.sql — a request a
-- trusted key attributes to end user U of group G is held to the quota rows
-- of the key K, of its owner O and the owner's group OG, and of U and G, all
-- or none (each row once when two of them are the same subject): reserve
-- takes them all (the fast path only when none of the five has a row), a
-- spent owner's row refuses the request whatever U and G (invented, without
-- quotas) are, settle_batch and settle charge them all, and the usage row
-- keeps U and G (the owner is reached through api_key_id).
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-05-10 08:00:00+00';

create temp view writes as
    select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) as n
      from pg_stat_xact_user_tables where schemaname = 'tollgate';

select tollgate.key_create(sha256('ao-svc'::bytea),  'tg-AOsvc001', 'svc',  'ao-owner', 'ao-ownteam', null, 'test') as k_svc,
       tollgate.key_create(sha256('ao-free'::bytea), 'tg-AOfree01', 'free', 'ao-lone',  'ao-loneteam', null, 'test') as k_free
\gset
update tollgate.api_keys set trusted_attribution = true where id in (:k_svc, :k_free);
-- K, O, OG, U, G: one row each. OG allows 3 requests.
select tollgate.quota_set('key',   'tg-AOsvc001', 'requests', 'total', 100,      'test') as q_k,
       tollgate.quota_set('user',  'ao-owner',    'tokens',   'total', 1000000,  'test') as q_o,
       tollgate.quota_set('group', 'ao-ownteam',  'requests', 'total', 3,        'test') as q_og,
       tollgate.quota_set('user',  'ao-end',      'requests', 'total', 100,      'test') as q_u,
       tollgate.quota_set('group', 'ao-endteam',  'usd',      'total', 10000000, 'test') as q_g
\gset

-- 1. Attributed to U / G: reserved on all five rows, in id order.
select status, user_id, group_id, attribution, requests_limit, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-000000310001', sha256('ao-svc'::bytea),
                        'claude-haiku-4-5', 100, 200, 'h:1', 60000, null, null, null, null,
                        false, 'ao-end', 'ao-endteam');
select user_id, group_id, api_key_id = :k_svc as key_ok,
       quota_ids = array[:q_k, :q_o, :q_og, :q_u, :q_g]::bigint[] as all_five
  from tollgate.reservations where request_id = '00000000-0000-4000-8000-000000310001';
select subject_kind, subject, metric, used, reserved
  from tollgate.quota_list where id in (:q_k, :q_o, :q_og, :q_u, :q_g) order by id;

-- 2. Attributed to invented ids that have no quota row (and no users or
-- groups row): the owner's rows still apply, the quota path is taken.
select status, user_id, group_id, requests_limit, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-000000310002', sha256('ao-svc'::bytea),
                        'claude-haiku-4-5', 100, 200, 'h:1', 60000, null, null, null, null,
                        false, 'ao-nobody', 'ao-noteam');
select quota_ids = array[:q_k, :q_o, :q_og]::bigint[] as owner_rows
  from tollgate.reservations where request_id = '00000000-0000-4000-8000-000000310002';

-- 3. Attributed to the owner and its group by name: each row once.
select status, user_id, group_id, attribution
  from tollgate.reserve('00000000-0000-4000-8000-000000310003', sha256('ao-svc'::bytea),
                        'claude-haiku-4-5', 100, 200, 'h:1', 60000, null, null, null, null,
                        false, 'ao-owner', 'ao-ownteam');
select quota_ids = array[:q_k, :q_o, :q_og]::bigint[] as each_once
  from tollgate.reservations where request_id = '00000000-0000-4000-8000-000000310003';
select subject, reserved from tollgate.quota_list where id = :q_og;

-- 4. OG is spent (3 reserved): a fourth request is refused on it, though
-- the invented end group has no quota; nothing is written.
select n as w0 from writes \gset
select status, user_id, group_id, denied_subject, denied_metric, denied_window, denied_limit,
       requests_limit, requests_remaining
  from tollgate.reserve('00000000-0000-4000-8000-000000310004', sha256('ao-svc'::bytea),
                        'claude-haiku-4-5', 100, 200, 'h:1', 60000, null, null, null, null,
                        false, 'ao-other', 'ao-otherteam');
select (select n from writes) - :w0 as rows_written,
       (select count(*) from tollgate.reservations
         where request_id = '00000000-0000-4000-8000-000000310004') as reservations;

-- 5. settle_batch charges the owner's rows too, once each, and gives the
-- reservations back; the usage rows keep the attributed user and group.
select ord, cost_micros > 0 as priced
  from tollgate.settle_batch(jsonb_build_array(
      jsonb_build_object('request_id', '00000000-0000-4000-8000-000000310001', 'api_key_id', :k_svc,
                         'user_id', 'ao-end', 'group_id', 'ao-endteam', 'provider', 'anthropic',
                         'model', 'claude-haiku-4-5', 'input_tokens', 10, 'output_tokens', 20,
                         'http_status', 200),
      jsonb_build_object('request_id', '00000000-0000-4000-8000-000000310002', 'api_key_id', :k_svc,
                         'user_id', 'ao-nobody', 'group_id', 'ao-noteam', 'provider', 'anthropic',
                         'model', 'claude-haiku-4-5', 'input_tokens', 10, 'output_tokens', 20,
                         'http_status', 200),
      jsonb_build_object('request_id', '00000000-0000-4000-8000-000000310003', 'api_key_id', :k_svc,
                         'user_id', 'ao-owner', 'group_id', 'ao-ownteam', 'provider', 'anthropic',
                         'model', 'claude-haiku-4-5', 'input_tokens', 10, 'output_tokens', 20,
                         'http_status', 200)));
select request_id, api_key_id = :k_svc as key_ok, user_id, group_id
  from tollgate.usage where request_id::text like '00000000-0000-4000-8000-00000031000_'
 order by request_id;
-- K and OG: 3 requests; O: 3 x 30 tokens; U: 1 request; G: the first row's cost.
select subject_kind, subject, metric, used, reserved
  from tollgate.quota_list where id in (:q_k, :q_o, :q_og, :q_u, :q_g) order by id;
select (select used from tollgate.quotas where id = :q_g)
       = (select cost_micros from tollgate.usage
           where request_id = '00000000-0000-4000-8000-000000310001') as g_used_is_its_cost;
select count(*) as reservations_left from tollgate.reservations
 where request_id::text like '00000000-0000-4000-8000-00000031000_';
-- Still spent after settling: used now, not reserved.
select status, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-000000310005', sha256('ao-svc'::bytea),
                        'claude-haiku-4-5', 100, 200, 'h:1', 60000, null, null, null, null,
                        false, 'ao-other', 'ao-otherteam');

-- 6. settle (006, one record) the same way: the owner's rows charged once
-- each, U's and G's too.
select cost_micros > 0 as priced, alerts
  from tollgate.settle('00000000-0000-4000-8000-000000310006', null, :k_svc, 'ao-end', 'ao-endteam',
                       'anthropic', 'claude-haiku-4-5', 1, 1, 0, 0, 200, 5, 4, false, 'ok');
select tollgate.settle('00000000-0000-4000-8000-000000310007', null, :k_svc, 'ao-owner', 'ao-ownteam',
                       'anthropic', 'claude-haiku-4-5', 1, 1, 0, 0, 200, 5, 4, false, 'ok') is not null as settled;
-- K and OG: 5; O: 94 tokens; U: 2.
select subject_kind, subject, metric, used, reserved
  from tollgate.quota_list where id in (:q_k, :q_o, :q_og, :q_u) order by id;

-- 7. The fast path is kept: a trusted key none of whose five subjects has a
-- row reserves nothing and writes nothing.
select n as w1 from writes \gset
select status, user_id, group_id, attribution, requests_limit
  from tollgate.reserve('00000000-0000-4000-8000-000000310008', sha256('ao-free'::bytea),
                        'claude-haiku-4-5', 100, 200, 'h:1', 60000, null, null, null, null,
                        false, 'ao-someone', 'ao-someteam');
select (select n from writes) - :w1 as rows_written;
-- ... and a row on that key's owner's group alone takes the quota path.
select tollgate.quota_set('group', 'ao-loneteam', 'requests', 'total', 0, 'test') as q_lone
\gset
select status, denied_subject
  from tollgate.reserve('00000000-0000-4000-8000-000000310009', sha256('ao-free'::bytea),
                        'claude-haiku-4-5', 100, 200, 'h:1', 60000, null, null, null, null,
                        false, 'ao-someone', 'ao-someteam');

rollback;
