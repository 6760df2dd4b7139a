-- team_month.sql — one team's month, by user and model, with subtotals.
--   psql tollgate -v team=engineering -v month=2026-11-01 -f sql/reports/team_month.sql
\if :{?month}
\else
\set month `date +%Y-%m-01`
\endif
select r.user_id, r.model, sum(r.requests) as requests, sum(r.input_tokens) as input_tokens,
       sum(r.output_tokens) as output_tokens,
       (sum(r.cost_micros) / 1000000.0)::numeric(20, 6) as cost_usd
  from tollgate.chargeback_rows(date_trunc('month', :'month'::date)::date,
                                (date_trunc('month', :'month'::date) + interval '1 month - 1 day')::date) r
 where r.group_id = :'team'
 group by rollup (r.user_id, r.model)
 order by r.user_id nulls last, r.model nulls last;
