-- 330_report_team: the chargeback by two groupings and for one team
-- (report_chargeback, 019) and the tool calls of one team
-- (report_chargeback_tools): a user spending in two teams appears in each
-- with that team's spend only, to the micro-dollar; the same before and
-- after report_refresh moves the days to the views; one grouping equals
-- chargeback (007/018); bad parameters are refused naming the parameter.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
delete from tollgate.report_state;

-- rt-alice spends in rt-eng (haiku: 3 x 1000 micros; sonnet: 2 x 25000) and
-- in rt-ops (haiku: 1 x 777); rt-bob only in rt-eng (sonnet: 1 x 3333),
-- rt-carol only in rt-ops (haiku: 4 x 10). March 2026; one row of February.
insert into tollgate.usage (request_id, ts, api_key_id, user_id, group_id, provider, model,
                            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                            cost_micros, http_status, outcome)
select ('00000000-0000-4000-8000-' || lpad((330000 + n)::text, 12, '0'))::uuid,
       timestamptz '2026-03-01 08:00:00+00' + (n % 3) * interval '1 day', null, u, g, 'anthropic',
       m, 100, 10, 0, 0, c, 200, 'ok'
  from (values (1, 'rt-alice', 'rt-eng', 'rt-haiku', 1000), (2, 'rt-alice', 'rt-eng', 'rt-haiku', 1000),
               (3, 'rt-alice', 'rt-eng', 'rt-haiku', 1000), (4, 'rt-alice', 'rt-eng', 'rt-sonnet', 25000),
               (5, 'rt-alice', 'rt-eng', 'rt-sonnet', 25000), (6, 'rt-alice', 'rt-ops', 'rt-haiku', 777),
               (7, 'rt-bob', 'rt-eng', 'rt-sonnet', 3333), (8, 'rt-carol', 'rt-ops', 'rt-haiku', 10),
               (9, 'rt-carol', 'rt-ops', 'rt-haiku', 10), (10, 'rt-carol', 'rt-ops', 'rt-haiku', 10),
               (11, 'rt-carol', 'rt-ops', 'rt-haiku', 10)) v(n, u, g, m, c);
insert into tollgate.usage (request_id, ts, user_id, group_id, provider, model, input_tokens,
                            output_tokens, cost_micros, http_status, outcome)
values ('00000000-0000-4000-8000-000000330099', '2026-02-27 12:00:00+00', 'rt-alice', 'rt-eng',
        'anthropic', 'rt-haiku', 1, 1, 5, 200, 'ok');

-- One team: its users (alice with rt-eng's spend only: 53000), its models.
select * from tollgate.report_chargeback('user', 'rt-eng', '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('user', 'rt-ops', '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('model', 'rt-eng', '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('user,model', 'rt-eng', '2026-03-01', '2026-03-31');
-- by team and model (February's row in its own month), and a team without rows
create temp table pairs_before as
    select * from tollgate.report_chargeback('group,model', null, '2026-03-01', '2026-03-31')
     where subject like 'rt-%';
select * from pairs_before;
select * from tollgate.report_chargeback('group,model', null, '2026-02-01', '2026-02-28')
 where subject like 'rt-%';
select count(*) as rows from tollgate.report_chargeback('user', 'rt-nobody', '2026-03-01', '2026-03-31');
-- one grouping without a team is 007's chargeback, row for row
select count(*) as differing from (
    (select subject, requests, input_tokens, output_tokens, cache_read_tokens,
            cache_write_tokens, cost_micros
       from tollgate.report_chargeback('user', null, '2026-03-01', '2026-03-31')
     except select * from tollgate.chargeback('user', '2026-03-01', '2026-03-31'))
    union all
    (select * from tollgate.chargeback('user', '2026-03-01', '2026-03-31')
     except select subject, requests, input_tokens, output_tokens, cache_read_tokens,
                   cache_write_tokens, cost_micros
              from tollgate.report_chargeback('user', null, '2026-03-01', '2026-03-31'))) d;
-- a team's rows add up to the team's row by group
select (select sum(cost_micros) from tollgate.report_chargeback('user', 'rt-eng', '2026-03-01', '2026-03-31'))
     = (select cost_micros from tollgate.report_chargeback('group', null, '2026-03-01', '2026-03-31')
         where subject = 'rt-eng') as adds_up;

-- After a refresh the days come from chargeback_daily: the same figures.
select tollgate.report_refresh() >= date '2026-03-04' as covered;
select count(*) as differing from (
    (select * from pairs_before except
     select * from tollgate.report_chargeback('group,model', null, '2026-03-01', '2026-03-31')
      where subject like 'rt-%')
    union all
    (select * from tollgate.report_chargeback('group,model', null, '2026-03-01', '2026-03-31')
      where subject like 'rt-%' except select * from pairs_before)) d;
select * from tollgate.report_chargeback('user', 'rt-eng', '2026-03-01', '2026-03-31');

-- Tool calls of one team.
insert into tollgate.mcp_calls (call_id, request_id, ts, user_id, group_id, server, tool, code,
                                duration_us, bytes_in, bytes_out)
select ('00000000-0000-4000-8000-' || lpad((330200 + n)::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad((330300 + n)::text, 12, '0'))::uuid,
       timestamptz '2026-03-02 09:00:00+00', 'rt-alice', g, 'rt-srv', t, c, d, 10, 20
  from (values (1, 'rt-eng', 'search', 'ok', 1000), (2, 'rt-eng', 'search', 'error', 3000),
               (3, 'rt-ops', 'search', 'ok', 500), (4, 'rt-ops', 'fetch', 'ok', 700)) v(n, g, t, c, d);
select * from tollgate.report_chargeback_tools('rt-eng', '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback_tools(null, '2026-03-01', '2026-03-31') where server = 'rt-srv';
select count(*) as differing from (
    (select * from tollgate.report_chargeback_tools(null, '2026-03-01', '2026-03-31')
     except select * from tollgate.chargeback_tools('2026-03-01', '2026-03-31'))) d;

-- Bad parameters: refused, naming the parameter.
select * from tollgate.report_chargeback('team', null, '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('group,group', null, '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('group,model,user', null, '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('group,', null, '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('group,tool', null, '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback(null, null, '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('user', '', '2026-03-01', '2026-03-31');
select * from tollgate.report_chargeback('user', 'rt-eng', '2026-03-31', '2026-03-01');
select * from tollgate.report_chargeback('user', 'rt-eng', '2024-01-01', '2026-03-01');
select * from tollgate.report_chargeback_tools(null, '2026-03-31', '2026-03-01');
rollback;
