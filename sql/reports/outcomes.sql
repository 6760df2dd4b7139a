-- outcomes.sql — requests that reached a provider, by outcome and status, per
-- team, in a month (upstream errors, timeouts, clients that left). Requests
-- refused before the provider (401/403/429 …) write no usage row: their
-- counts per reason and status are in tollgate.denials, reported by
-- sql/reports/blocked.sql (also in GET /metrics and the access log). A
-- request a guardrail blocked has a row (outcome blocked, zero cost) naming
-- the rule in guard_rule; the column is empty on every other row.
--   psql tollgate -v month=2026-11-01 -f sql/reports/outcomes.sql
\if :{?month}
\else
\set month `date +%Y-%m-01`
\endif
select u.group_id, u.outcome, u.http_status, u.guard_rule, count(*) as requests,
       (sum(u.cost_micros) / 1000000.0)::numeric(20, 6) as cost_usd
  from tollgate.usage u
 where u.ts >= date_trunc('month', :'month'::date)::timestamp at time zone tollgate.quota_timezone()
   and u.ts < (date_trunc('month', :'month'::date) + interval '1 month')::timestamp
               at time zone tollgate.quota_timezone()
 group by 1, 2, 3, 4
 order by 1, 5 desc;
