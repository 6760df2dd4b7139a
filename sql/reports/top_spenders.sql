-- top_spenders.sql — the 20 users who spent most in a month, with their teams.
--   psql tollgate -v month=2026-11-01 -f sql/reports/top_spenders.sql
-- month: any day of the month (default: the current month).
\if :{?month}
\else
\set month `date +%Y-%m-01`
\endif
select r.user_id, string_agg(distinct r.group_id, ',') as groups,
       sum(r.requests) as requests, sum(r.input_tokens) as input_tokens,
       sum(r.output_tokens) as output_tokens,
       (sum(r.cost_micros) / 1000000.0)::numeric(20, 6) as cost_usd
  from tollgate.chargeback_rows(date_trunc('month', :'month'::date)::date,
                                (date_trunc('month', :'month'::date) + interval '1 month - 1 day')::date) r
 group by r.user_id
 order by sum(r.cost_micros) desc, r.user_id
 limit 20;
