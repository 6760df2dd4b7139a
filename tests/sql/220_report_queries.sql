-- 220_report_queries: the ready-made psql reports in sql/reports/ run and
-- agree with each other on seeded usage in March and April 2026.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

insert into tollgate.usage (request_id, ts, api_key_id, user_id, group_id, provider, model,
                            input_tokens, output_tokens, cost_micros, http_status, outcome)
select ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
       timestamptz '2026-03-01 10:00+00' + (i % 45) * interval '1 day',
       null, 'rq-user' || (i % 3), case when i % 3 = 2 then 'rq-sales' else 'rq-eng' end,
       'anthropic', case when i % 2 = 0 then 'claude-sonnet-4-5' else 'claude-haiku-4-5' end,
       100 * i, 10 * i, 1000 * i + 1, case when i % 10 = 0 then 529 else 200 end,
       case when i % 10 = 0 then 'upstream_error' else 'ok' end
  from generate_series(1, 90) as i;
select tollgate.report_refresh() is not null as refreshed;

\set month 2026-03-15
\i ../../sql/reports/top_spenders.sql
\set team rq-eng
\i ../../sql/reports/team_month.sql
\i ../../sql/reports/cost_per_model.sql
\i ../../sql/reports/outcomes.sql
\i ../../sql/reports/month_over_month.sql

rollback;
