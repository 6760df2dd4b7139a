-- cost_per_model.sql — requests, tokens and cost per provider and model in a
-- month, with the average cost of a request.
--   psql tollgate -v month=2026-11-01 -f sql/reports/cost_per_model.sql
\if :{?month}
\else
\set month `date +%Y-%m-01`
\endif
select c.subject as model, c.requests, c.input_tokens, c.output_tokens,
       c.cache_read_tokens, c.cache_write_tokens,
       (c.cost_micros / 1000000.0)::numeric(20, 6) as cost_usd,
       (c.cost_micros / 1000000.0 / nullif(c.requests, 0))::numeric(20, 6) as usd_per_request
  from tollgate.chargeback('model', date_trunc('month', :'month'::date)::date,
                           (date_trunc('month', :'month'::date) + interval '1 month - 1 day')::date) c
 order by c.cost_micros desc;
