-- tests/bench/reserve_setup.sql — the fixture of tests/bench/reserve.sh (run
-- by hand against a SCRATCH database holding sql/*; it commits rows named
-- bn-*, and reserve_cleanup.sql deletes them).
--
--   free    group bn-free, 16 keys (bn-free-1..16, users bn-free-u1..16), no
--           quota at all: reserve's fast path;
--   hot     group bn-hot, 16 keys: 9 quota rows apply to each request (key
--           requests/tokens/usd per minute, user ... per day, group ... per
--           month), the 3 group rows shared by every request;
--   spread  groups bn-s1..bn-s100, 2 keys each, 9 rows per request as in hot.
-- Limits never bind. Key secrets are 'bn-<group>-<k>' (sha256 is the hash).
\set ON_ERROR_STOP on
select count(tollgate.key_create(sha256(convert_to(g || '-' || k, 'UTF8')),
                                 'tg-B' || substr(md5(g || '-' || k), 1, 7), 'bench',
                                 g || '-u' || k, g, null, 'bench'))
  from (select 'bn-free' as g, 16 as n
        union all select 'bn-hot', 16
        union all select 'bn-s' || i, 2 from generate_series(1, 100) i) s,
       generate_series(1, s.n) k;

select count(tollgate.quota_set(q.kind, q.subject, m.metric, q.win, 1000000000000000, 'bench'))
  from (select 'key' as kind, k.prefix as subject, 'minute' as win
          from tollgate.api_keys k where k.group_id = 'bn-hot' or k.group_id like 'bn-s%'
        union all
        select 'user', k.user_id, 'day'
          from tollgate.api_keys k where k.group_id = 'bn-hot' or k.group_id like 'bn-s%'
        union all
        select 'group', g.id, 'month'
          from tollgate.groups g where g.id = 'bn-hot' or g.id like 'bn-s%') q,
       (values ('tokens'), ('requests'), ('usd')) m(metric);
analyze;
