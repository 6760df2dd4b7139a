-- 210_reports: chargeback views, their concurrent refresh, the report
-- function (views for covered days + usage for the rest == usage summed
-- directly), and usage_summary (GET /v1/usage).
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

-- Usage over five days (relative to now, so covered_until splits them).
insert into tollgate.usage (request_id, ts, api_key_id, user_id, group_id, provider, model,
                            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                            cost_micros)
select ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
       date_trunc('day', now()) - (i % 5) * interval '1 day', -- never in the future
       case when i % 7 = 0 then null else 100 + i % 3 end,
       'rp-user' || (i % 4), 'rp-group' || (i % 2), 'anthropic',
       case when i % 3 = 0 then 'claude-sonnet-4-5' else 'claude-haiku-4-5' end,
       10 * i, 20 * i, i, i % 5, 1234 * i + 7
  from generate_series(1, 200) as i;

create temp view direct as
    select u.group_id as subject, count(*) as requests, sum(u.input_tokens) as input_tokens,
           sum(u.output_tokens) as output_tokens, sum(u.cost_micros) as cost_micros
      from tollgate.usage u
     where u.request_id::text like '00000000-0000-4000-8000-%'
       and u.ts >= (current_date - 4)::timestamp at time zone 'UTC'
     group by u.group_id;

-- Before any refresh: everything comes from usage, and matches.
select count(*) as differing
  from (select subject, requests, input_tokens, output_tokens, cost_micros
          from tollgate.chargeback('group', current_date - 4, current_date)
        except
        select * from direct) d;

-- Two refreshes (concurrent); covered_until is not in the future.
select tollgate.report_refresh() <= current_date as covered_until_not_future;
select tollgate.report_refresh() <= current_date as refreshed_concurrently;
select count(*) > 0 as daily_has_rows, sum(requests) as requests, sum(cost_micros) as cost
  from tollgate.chargeback_daily where user_id like 'rp-user%';
select sum(requests) as requests, sum(cost_micros) as cost
  from tollgate.chargeback_monthly where user_id like 'rp-user%';

-- After the refresh the report mixes view and usage and still matches, for
-- every grouping.
select count(*) as differing
  from (select subject, requests, input_tokens, output_tokens, cost_micros
          from tollgate.chargeback('group', current_date - 4, current_date)
        except
        select * from direct) d;
select p.by, (select sum(c.cost_micros) from tollgate.chargeback(p.by, current_date - 4, current_date) c)
             = (select sum(cost_micros) from direct) as total_matches,
             (select sum(c.requests) from tollgate.chargeback(p.by, current_date - 4, current_date) c) as requests
  from (values ('group'), ('user'), ('key'), ('model')) as p(by);

-- A request served now counts at once (today is read from usage).
insert into tollgate.usage (request_id, ts, user_id, group_id, model, input_tokens, cost_micros)
values ('00000000-0000-4000-8000-000000009999', now(), 'rp-user0', 'rp-group0', 'claude-haiku-4-5', 5, 1000000);
select subject, requests, cost_micros
  from tollgate.chargeback('group', current_date - 4, current_date) order by subject;

-- A range entirely before, and one after, what the views cover.
select count(*) as rows_before from tollgate.chargeback('user', current_date - 40, current_date - 30);
select sum(requests) as today_only from tollgate.chargeback('user', current_date, current_date);

select tollgate.chargeback('team', current_date, current_date);

-- usage_summary: the key's own usage, per model, and its quotas.
select tollgate.key_create(sha256('rp-key'::bytea), 'tg-RPkey001', 'rp', 'rp-user1', 'rp-group1', null, 'test') as k
\gset
update tollgate.usage set api_key_id = :k where request_id::text like '00000000-0000-4000-8000-0000000000_1';
select tollgate.quota_set('group', 'rp-group1', 'usd', 'month', 5000000, 'test') is not null as quota_set;
select s->'total' as total, jsonb_array_length(s->'by_model') as models,
       (select sum((m->>'cost_micros')::bigint) from jsonb_array_elements(s->'by_model') m)
           = (s->'total'->>'cost_micros')::bigint as models_add_up,
       jsonb_path_query_array(s->'quotas', '$[*].limit') as quota_limits
  from tollgate.usage_summary(:k, 'rp-user1', 'rp-group1', now() - interval '10 days', now()) as s;
-- A JWT caller (no key): its user's keyless rows only.
select (s->'total'->>'requests')::int as requests
  from tollgate.usage_summary(null, 'rp-user0', 'rp-group0', now() - interval '10 days', now() + interval '1 minute') as s;

rollback;
