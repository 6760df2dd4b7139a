-- 261_rbac_globs: sql/011_reserve_fast.sql — RBAC globs stay exact now that
-- glob_match is inlined with an equality fast path: '*' any run, '?' one
-- character, everything else literal, '%', '_' and '\' included. Checked
-- against an independent regex rendering of the rules over every name and
-- pattern of up to 3 characters from {a, %, _, \, *, ?} (and lists of two),
-- then through identify and reserve with literal characters in allowed
-- lists, and the RBAC order of rbac_denial.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-05-10 08:00:00+00';

-- Every string of 0 to 3 characters over the alphabet.
create temp table strs as
    with recursive s(v, n) as (
        select ''::text, 0
        union all
        select s.v || c.c, s.n + 1 from s, unnest(array['a', '%', '_', '\', '*', '?']) as c(c)
         where s.n < 3)
    select v from s;
select count(*) as strings from strs;
-- The rules as a regular expression: '*' -> '.*', '?' -> '.', anything else
-- escaped (a backslash before a non-alphanumeric character is that character).
create temp table globs as
    select p.v as pattern,
           '^' || coalesce(string_agg(case c.c when '*' then '.*' when '?' then '.'
                                               when 'a' then 'a' else '\' || c.c end,
                                      '' order by c.i), '') || '$' as re
      from strs p
      left join lateral unnest(string_to_array(p.v, null)) with ordinality as c(c, i) on true
     group by p.v;
-- One pattern per list.
select count(*) as pairs,
       count(*) filter (where tollgate.glob_match(n.v, array[g.pattern]) <> (n.v ~ g.re)) as wrong,
       count(*) filter (where n.v ~ g.re) as matching
  from strs n, globs g;
-- Two patterns per list (every pattern of up to 2 characters), either order.
select count(*) as pairs,
       count(*) filter (where tollgate.glob_match(n.v, array[g1.pattern, g2.pattern])
                              <> (n.v ~ g1.re or n.v ~ g2.re)) as wrong
  from strs n, globs g1, globs g2
 where length(g1.pattern) <= 2 and length(g2.pattern) <= 2;
-- Null names, null patterns, null entries, empty lists.
select v.name, v.patterns, tollgate.glob_match(v.name, v.patterns) as matches
  from (values (null, '{a}'::text[]), (null, null), ('a', null), ('a', '{}'), ('', '{}'),
               ('', '{""}'), ('a', '{NULL}'), ('a', '{NULL,a}'), ('ab', '{NULL,a*}'),
               (null, '{*}')) as v(name, patterns);
-- glob_match is inlined (track_functions counts the calls of SQL functions
-- that are not): none while it runs 67081 times here.
set local track_functions = 'all';
select count(*) filter (where tollgate.glob_match(n.v, array[g.pattern])) as matching,
       coalesce(pg_stat_get_xact_function_calls('tollgate.glob_match'::regproc), 0) as glob_match_calls
  from strs n, globs g;

-- Through identify and reserve: allowed lists holding '%', '_' and '\'
-- match only themselves (and '*' / '?' stay wildcards next to them).
insert into tollgate.groups (id, allowed_models, allowed_endpoints)
values ('rg-literal', array['claude_sonnet%', 'x\y', 'opus-?', 'gpt-4o*'], array['/v1/*']);
insert into tollgate.roles (id, allowed_models, allowed_endpoints)
values ('rg-role', null, array['/v1/m?ssages', '/v1/models']);
select tollgate.key_create(sha256('rg-key'::bytea), 'tg-RGkey001', 'k', 'rg-user', 'rg-literal', 'rg-role', 'test') as k
\gset
select m.model, i.status, i.denied_subject
  from unnest(array['claude_sonnet%', 'claude-sonnet-4-5', 'claude_sonnetX', 'claude_sonnet%X',
                    'x\y', 'xy', 'x\\y', 'opus-4', 'opus-44', 'opus-', 'gpt-4o', 'gpt-4o-mini',
                    'gpt-4']) with ordinality as m(model, n),
       lateral tollgate.identify(sha256('rg-key'::bytea), null, null, null, false, null, null,
                                 '/v1/messages', m.model) as i
 order by m.n;
select e.endpoint, i.status, i.denied_subject
  from unnest(array['/v1/messages', '/v1/massages', '/v1/models', '/v1/m_ssages', '/v1/mssages',
                    '/v1/models/x', '/v2/messages'])
       with ordinality as e(endpoint, n),
       lateral tollgate.identify(sha256('rg-key'::bytea), null, null, null, false, null, null,
                                 e.endpoint, null) as i
 order by e.n;
-- reserve answers the same (these names priced, so that only RBAC decides).
insert into tollgate.prices (model, effective_from, input_micros_per_mtok, output_micros_per_mtok)
values ('claude_sonnet%', '2026-01-01 00:00:00+00', 1, 1), ('x\y', '2026-01-01 00:00:00+00', 1, 1);
select m.model, r.status, r.denied_subject, r.key_prefix
  from unnest(array['claude_sonnet%', 'claude-sonnet-4-5', 'x\y', 'x_y']) with ordinality as m(model, n),
       lateral tollgate.reserve(('00000000-0000-4000-8000-0000006100' || lpad(m.n::text, 2, '0'))::uuid,
                                sha256('rg-key'::bytea), m.model, 10, 10, 'h:1', 60000) as r
 order by m.n;
-- A key's own list: exact names and globs the same way.
update tollgate.api_keys set allowed_models = array['claude_sonnet%', 'opus-?'] where id = :k;
select m.model, i.status, i.denied_subject
  from unnest(array['claude_sonnet%', 'opus-4', 'gpt-4o']) with ordinality as m(model, n),
       lateral tollgate.identify(sha256('rg-key'::bytea), null, null, null, false, null, null,
                                 '/v1/messages', m.model) as i
 order by m.n;

-- rbac_denial: the order group endpoint (1), role endpoint (2), group
-- model (3), role model (4), key model (5); 0 when all allow; a null model
-- is not checked.
select v.case_name,
       tollgate.rbac_denial(v.endpoint, v.model, v.g_ep, v.g_mod, v.r_ep, v.r_mod, v.k_mod) as ord
  from (values ('all allowed',  '/v1/messages', 'm', null::text[], null::text[], null::text[], null::text[], null::text[]),
               ('group ep',     '/v1/messages', 'm', '{/x}',  '{/y}',  '{n}', '{n}', '{n}'),
               ('role ep',      '/v1/messages', 'm', null,    '{n}',   '{/y}', '{n}', '{n}'),
               ('group model',  '/v1/messages', 'm', null,    '{n}',   null,  '{n}', '{n}'),
               ('role model',   '/v1/messages', 'm', null,    null,    null,  '{n}', '{n}'),
               ('key model',    '/v1/messages', 'm', null,    null,    null,  null,  '{n}'),
               ('null model',   '/v1/messages', null, null,   '{}',    null,  '{}',  '{}'),
               ('globs',        '/v1/messages', 'm1', '{/v1/*}', '{m?}', '{/v?/messages}', '{*}', '{m*}'))
       as v(case_name, endpoint, model, g_ep, g_mod, r_ep, r_mod, k_mod);

rollback;
