-- blocked.sql — requests refused before the provider (401, 403, 429, 400,
-- 503 …), by reason and status, per team, in a month, with how many users
-- were refused. Read from tollgate.denials (sql/008_denials.sql): each
-- worker adds its counts every quotas.sweep_interval_ms, so the last few
-- seconds may be missing. Days are UTC days. Requests refused before the
-- caller was known (no or an unknown key) have no team: they come last.
--   psql tollgate -v month=2026-11-01 -f sql/reports/blocked.sql
-- month: any day of the month (default: the current month, UTC).
\if :{?month}
\else
\set month `date -u +%Y-%m-01`
\endif
select d.group_id, d.reason, d.http_status, sum(d.requests) as requests,
       count(distinct d.user_id) as users
  from tollgate.denials d
 where d.day >= date_trunc('month', :'month'::date)::date
   and d.day < (date_trunc('month', :'month'::date) + interval '1 month')::date
 group by 1, 2, 3
 order by 1 nulls last, 4 desc, 2, 3;
