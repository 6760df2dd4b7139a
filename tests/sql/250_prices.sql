-- 250_prices: every component of Anthropic's bill priced exactly (sql/009):
-- input, output, cache reads, cache writes at the 5-minute and the 1-hour
-- rate, the long-context premium above the threshold (and not at it), the
-- web search fee, half-up rounding once per request, versions by
-- effective_from, NULL for an unpriced model from both price functions;
-- the true upper bound; price_set's new components; unpriced_models; the
-- usage columns of 009.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-11-15 12:00:00+00';

-- The seeded versions (from 2026-11-01) of the Anthropic models.
select model, input_micros_per_mtok as input, output_micros_per_mtok as output,
       cache_read_micros_per_mtok as read, cache_write_micros_per_mtok as write_5m,
       cache_write_1h_micros_per_mtok as write_1h, web_search_micros_per_use as search,
       long_context_threshold_tokens as above, long_input_micros_per_mtok as l_input,
       long_output_micros_per_mtok as l_output, long_cache_read_micros_per_mtok as l_read,
       long_cache_write_micros_per_mtok as l_write_5m,
       long_cache_write_1h_micros_per_mtok as l_write_1h, in_force
  from tollgate.price_list
 where effective_from = '2026-11-01 00:00:00+00'
 order by model;

-- price_micros(model, at, input, output, cache read, cache write (all),
-- cache write 1h (part of them), web searches). haiku: 1 / 5 / 0.1 / 1.25 /
-- 2 $/MTok, $0.01 a search. sonnet: 3 / 15 / 0.3 / 3.75 / 6; above 200000
-- prompt tokens (input + cache read + cache write) 6 / 22.5 / 0.6 / 7.5 / 12.
select label, tollgate.price_micros(model, at, i, o, cr, cw, cw1h, ws) as micros, expected,
       tollgate.price_micros(model, at, i, o, cr, cw, cw1h, ws) is not distinct from expected as ok
  from (values
    ('haiku input 1M',                    'claude-haiku-4-5-20251001', timestamptz '2026-11-15', 1000000::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 1000000::bigint),
    ('haiku output 1M',                   'claude-haiku-4-5-20251001', '2026-11-15', 0, 1000000, 0, 0, 0, 0, 5000000),
    ('haiku cache read 1M',               'claude-haiku-4-5-20251001', '2026-11-15', 0, 0, 1000000, 0, 0, 0, 100000),
    ('haiku cache write 5m 1M',           'claude-haiku-4-5-20251001', '2026-11-15', 0, 0, 0, 1000000, 0, 0, 1250000),
    ('haiku cache write 1h 1M',           'claude-haiku-4-5-20251001', '2026-11-15', 0, 0, 0, 1000000, 1000000, 0, 2000000),
    -- 600 x 1.25 + 400 x 2
    ('haiku writes: 600 at 5m, 400 at 1h', 'claude-haiku-4-5-20251001', '2026-11-15', 0, 0, 0, 1000, 400, 0, 1550),
    ('haiku 3 web searches',              'claude-haiku-4-5-20251001', '2026-11-15', 0, 0, 0, 0, 0, 3, 30000),
    -- 1000 + 1000 + 300 + 300 x 1.25 + 100 x 2 + 2 x 10000
    ('haiku every kind at once',          'claude-haiku-4-5-20251001', '2026-11-15', 1000, 200, 3000, 400, 100, 2, 22875),
    ('haiku alias, same price',           'claude-haiku-4-5',          '2026-11-15', 1000, 200, 3000, 400, 100, 2, 22875),
    -- a 1-hour part above the total counts as all of the writes
    ('haiku 1h part above the total',     'claude-haiku-4-5-20251001', '2026-11-15', 0, 0, 0, 100, 300, 0, 600),
    -- Long context: 150000 + 30000 + 20000 = 200000 is not above the threshold:
    -- 450000 + 15000 + 9000 + 15000 x 3.75 + 5000 x 6
    ('sonnet at the threshold',           'claude-sonnet-4-5',         '2026-11-15', 150000, 1000, 30000, 20000, 5000, 0, 560250),
    -- one token more: every kind at its long-context rate,
    -- 150001 x 6 + 1000 x 22.5 + 30000 x 0.6 + 15000 x 7.5 + 5000 x 12
    ('sonnet one token above',            'claude-sonnet-4-5',         '2026-11-15', 150001, 1000, 30000, 20000, 5000, 0, 1113006),
    ('sonnet dated id, same price',       'claude-sonnet-4-5-20250929', '2026-11-15', 150001, 1000, 30000, 20000, 5000, 0, 1113006),
    -- cache reads count towards the threshold: 1 x 6 + 200000 x 0.6
    ('sonnet cache reads push it over',   'claude-sonnet-4-5',         '2026-11-15', 1, 0, 200000, 0, 0, 0, 120006),
    ('sonnet cache writes push it over',  'claude-sonnet-4-5',         '2026-11-15', 0, 0, 0, 200001, 200001, 0, 2400012),
    -- output does not count towards it, but is priced at the premium
    ('sonnet output alone stays base',    'claude-sonnet-4-5',         '2026-11-15', 0, 300000, 0, 0, 0, 0, 4500000),
    -- 200001 x 6 + 22.5 = 1200028.5 -> 1200029 (half up)
    ('sonnet above: 1 output = 22.5',     'claude-sonnet-4-5',         '2026-11-15', 200001, 1, 0, 0, 0, 0, 1200029),
    -- the search fee is the same above the threshold
    ('sonnet above, 5 searches',          'claude-sonnet-4-5',         '2026-11-15', 200001, 0, 0, 0, 0, 5, 1250006),
    ('sonnet-4 above',                    'claude-sonnet-4-20250514',  '2026-11-15', 300000, 0, 0, 0, 0, 0, 1800000),
    ('opus-4-5 has no premium',           'claude-opus-4-5-20251101',  '2026-11-15', 300000, 0, 0, 0, 0, 0, 1500000),
    ('opus-4-1 1h writes',                'claude-opus-4-1',           '2026-11-15', 0, 0, 0, 1000, 1000, 0, 30000),
    ('3-5-haiku 1h writes',               'claude-3-5-haiku-20241022', '2026-11-15', 0, 0, 0, 1000, 1000, 0, 1600),
    -- Rounding: half up, once, on the sum.
    ('haiku 5 reads = 0.5 -> 1',          'claude-haiku-4-5',          '2026-11-15', 0, 0, 5, 0, 0, 0, 1),
    ('haiku 4 reads = 0.4 -> 0',          'claude-haiku-4-5',          '2026-11-15', 0, 0, 4, 0, 0, 0, 0),
    ('haiku 0.5 + 2.5 = 3, rounded once', 'claude-haiku-4-5',          '2026-11-15', 0, 0, 5, 2, 0, 0, 3),
    ('haiku 1h 2 + 5m 1.25 + 0.1 = 3.35', 'claude-haiku-4-5',          '2026-11-15', 0, 0, 1, 2, 1, 0, 3),
    ('3-5-haiku 1h 1.6 + 0.8 = 2.4 -> 2', 'claude-3-5-haiku-20241022', '2026-11-15', 1, 0, 0, 1, 1, 0, 2),
    ('3-5-haiku 1h 1.6 x 5 = 8',          'claude-3-5-haiku-20241022', '2026-11-15', 0, 0, 0, 5, 5, 0, 8),
    ('sonnet 1h 6 + 0.3 x 5 = 7.5 -> 8',  'claude-sonnet-4-5',         '2026-11-15', 0, 0, 5, 1, 1, 0, 8),
    ('null counts are 0',                 'claude-haiku-4-5',          '2026-11-15', 1000, null, null, null, null, null, 1000),
    -- The 2025-01-01 version has no 1-hour rate: the cache-write rate.
    ('2025 row: 1h at the 5m rate',       'claude-haiku-4-5',          '2025-06-01', 0, 0, 0, 1000, 1000, 0, 1250),
    ('2025 row: no premium, no fee',      'claude-sonnet-4-5',         '2025-06-01', 300000, 0, 0, 0, 0, 1, 900000),
    -- Unpriced: NULL, never 0.
    ('unknown model',                     'no-such-model',             '2026-11-15', 1000, 1000, 0, 0, 0, 0, null),
    ('before the first price',            'claude-haiku-4-5',          '2024-12-31 23:59:59.999999+00', 1000, 0, 0, 0, 0, 0, null),
    ('null model',                        null,                        '2026-11-15', 1000, 0, 0, 0, 0, 0, null),
    ('null time',                         'claude-haiku-4-5',          null, 1000, 0, 0, 0, 0, 0, null)
  ) as v(label, model, at, i, o, cr, cw, cw1h, ws, expected);

-- The 6-argument form (settle, record_usage): every write at the 5-minute
-- rate, no search, the premium where it applies; 0 (not NULL) when unpriced.
select tollgate.price_micros('claude-haiku-4-5', '2026-11-15', 1000, 200, 3000, 400) as six_args,
       tollgate.price_micros('claude-haiku-4-5', '2026-11-15', 1000, 200, 3000, 400, 0, 0) as eight_args,
       tollgate.price_micros('claude-sonnet-4-5', '2026-11-15', 300000, 0, 0, 0) as six_args_above,
       tollgate.price_micros('no-such-model', '2026-11-15', 1000, 0, 0, 0) as six_args_unpriced;

-- Largest int counts stay exact (numeric): sonnet above the threshold,
-- 2147483647 x (6 + 22.5 + 0.6 + 7.5 + 12) = 104367705244.2 -> 104367705244,
-- plus 2147483647 searches x 10000.
select tollgate.price_micros('claude-sonnet-4-5', '2026-11-15', 2147483647, 2147483647,
                             2147483647, 4294967294, 2147483647, 2147483647) as max_int_counts;

-- price_upper_micros(model, at, prompt tokens, output tokens, searches):
-- prompt at the highest prompt rate (haiku: the 1h write, 2), output at
-- the output rate, rounded up, plus the fees; long-context rates only when
-- the prompt can exceed the threshold (sonnet: 1h write 12, output 22.5).
select label, tollgate.price_upper_micros(model, at, i, o, ws) as micros, expected,
       tollgate.price_upper_micros(model, at, i, o, ws) is not distinct from expected as ok
  from (values
    ('haiku 1000 + 1000',             'claude-haiku-4-5-20251001', timestamptz '2026-11-15', 1000::bigint, 1000::bigint, 0::bigint, 7000::bigint),
    ('haiku 1000 + 1000 + 3 searches', 'claude-haiku-4-5-20251001', '2026-11-15', 1000, 1000, 3, 37000),
    ('3-5-haiku 1 prompt = 1.6 -> 2', 'claude-3-5-haiku-20241022', '2026-11-15', 1, 0, 0, 2),
    ('sonnet 1 prompt = 6',           'claude-sonnet-4-5',         '2026-11-15', 1, 0, 0, 6),
    ('sonnet at the threshold',       'claude-sonnet-4-5',         '2026-11-15', 200000, 1000, 0, 1215000),
    ('sonnet above the threshold',    'claude-sonnet-4-5',         '2026-11-15', 200001, 1000, 0, 2422512),
    ('sonnet above, 1 output -> up',  'claude-sonnet-4-5',         '2026-11-15', 200001, 1, 0, 2400035),
    ('sonnet above + 2 searches',     'claude-sonnet-4-5',         '2026-11-15', 200001, 1, 2, 2420035),
    ('opus-4-1 1M + 1M',              'claude-opus-4-1',           '2026-11-15', 1000000, 1000000, 0, 105000000),
    ('null counts are 0',             'claude-haiku-4-5',          '2026-11-15', null, null, null, 0),
    ('2025 row: the 5m write, 1.25',  'claude-haiku-4-5',          '2025-06-01', 1000, 0, 1, 1250),
    ('unknown model',                 'no-such-model',             '2026-11-15', 1000, 1000, 0, null),
    ('null model',                    null,                        '2026-11-15', 1000, 1000, 0, null),
    ('before the first price',        'claude-haiku-4-5',          '2024-12-31 23:59:59+00', 1000, 1000, 0, null)
  ) as v(label, model, at, i, o, ws, expected);

-- Four arguments (reserve before 011): no searches.
select tollgate.price_upper_micros('claude-haiku-4-5', '2026-11-15', 1000, 1000) as four_args,
       tollgate.price_upper_micros('no-such-model', '2026-11-15', 1000, 1000) as four_args_unpriced;

-- It bounds price_micros however a prompt of P tokens splits into input,
-- cache reads and writes (some of them 1h), for output <= 500 and searches
-- <= 2, below, at and above the threshold; and the bound is reached.
with splits as (
    select m, p, i, cr, cw, cw1h, o, ws,
           tollgate.price_micros(m, '2026-11-15', i, o, cr, cw, cw1h, ws) as cost,
           tollgate.price_upper_micros(m, '2026-11-15', p, 500, 2) as bound
      from unnest(array['claude-haiku-4-5', 'claude-sonnet-4-5', 'claude-opus-4-1',
                        'claude-3-5-haiku-20241022']) as m,
           unnest(array[5, 1000, 200000, 200010]) as p,
           generate_series(0, 4) as a, generate_series(0, 4) as b,
           lateral (select p * a / 4 as i, p * b / 4 as cr) s1,
           lateral (select p - s1.i - s1.cr as cw) s2,
           lateral (select unnest(array[0, s2.cw / 3, s2.cw]) as cw1h) s3,
           unnest(array[0, 1, 500]) as o, unnest(array[0, 2]) as ws
     where s1.i + s1.cr <= p
)
select m, p, count(*) as splits, count(*) filter (where cost > bound) as over_bound,
       max(cost) = min(bound) as bound_reached
  from splits
 group by m, p
 order by m, p;

-- Versions by effective_from, set with price_set's named components: a
-- test model priced from 2026-06-01, then from 2026-12-01 with a 1h rate, a
-- long-context premium above 1000 prompt tokens and a search fee.
select (tollgate.price_set('t250-model', '2026-06-01 00:00:00+00', 1000000, 2000000, 300000,
                           4000000, 'test'))->>'effective_from' as v1;
select jsonb_pretty(tollgate.price_set('t250-model', '2026-12-01 00:00:00+00', 1000000, 2000000,
                                       300000, 4000000, 'test',
                                       p_cache_write_1h => 5000000,
                                       p_long_context_threshold => 1000,
                                       p_long_input => 10000000, p_long_output => 20000000,
                                       p_long_cache_read => 3000000,
                                       p_long_cache_write => 40000000,
                                       p_long_cache_write_1h => 50000000,
                                       p_web_search => 7)) as v2;
select at, tollgate.price_micros('t250-model', at, 100, 100, 100, 100, 50, 1) as small,
       tollgate.price_micros('t250-model', at, 1000, 0, 1, 0, 0, 0) as just_above,
       tollgate.price_upper_micros('t250-model', at, 1001, 1, 1) as upper_above
  from (values (timestamptz '2026-05-31 23:59:59.999999+00'), ('2026-06-01 00:00:00+00'),
               ('2026-11-30 23:59:59.999999+00'), ('2026-12-01 00:00:00+00'),
               ('2027-06-01 00:00:00+00')) as v(at)
 order by at;
select model, effective_from, cache_write_1h_micros_per_mtok, long_context_threshold_tokens,
       web_search_micros_per_use, in_force
  from tollgate.price_list where model = 't250-model' order by effective_from;

-- One audit row per change; the same values again change nothing.
select action, subject, actor, before is null as new_row,
       after->>'long_context_threshold_tokens' as threshold
  from tollgate.audit_log where subject = 'price:t250-model' order by id;
select (tollgate.price_set('t250-model', '2026-12-01 00:00:00+00', 1000000, 2000000, 300000,
                           4000000, 'test', p_cache_write_1h => 5000000,
                           p_long_context_threshold => 1000, p_long_input => 10000000,
                           p_long_output => 20000000, p_long_cache_read => 3000000,
                           p_long_cache_write => 40000000, p_long_cache_write_1h => 50000000,
                           p_web_search => 7)) is not null as same_again;
select count(*) as audits from tollgate.audit_log where subject = 'price:t250-model';
-- Replacing the version without the premium takes it away (audited).
select (tollgate.price_set('t250-model', '2026-12-01 00:00:00+00', 1000000, 2000000, 300000,
                           4000000, 'test'))->'long_context_threshold_tokens' as threshold_now;
select count(*) as audits, count(*) filter (where after->'long_context_threshold_tokens' = 'null')
       as without_premium
  from tollgate.audit_log where subject = 'price:t250-model';

-- Refused: an incomplete long-context set, negative rates or thresholds.
select tollgate.price_set('t250-bad', null, 1, 1, 0, 0, 'test', p_long_context_threshold => 1000);
select tollgate.price_set('t250-bad', null, 1, 1, 0, 0, 'test', p_long_input => 1, p_long_output => 1,
                          p_long_cache_read => 1, p_long_cache_write => 1, p_long_cache_write_1h => 1);
select tollgate.price_set('t250-bad', null, 1, 1, 0, 0, 'test', p_cache_write_1h => -1);
select tollgate.price_set('t250-bad', null, 1, 1, 0, 0, 'test', p_web_search => -1);
select tollgate.price_set('t250-bad', null, 1, 1, 0, 0, 'test', p_long_context_threshold => 0,
                          p_long_input => 1, p_long_output => 1, p_long_cache_read => 1,
                          p_long_cache_write => 1, p_long_cache_write_1h => 1);
insert into tollgate.prices (model, effective_from, long_context_threshold_tokens, long_input_micros_per_mtok)
values ('t250-bad', '2026-01-01', 1000, 1);
select count(*) as bad_rows from tollgate.prices where model = 't250-bad';

-- unpriced_models: the names of a list with no price in force, in order.
select * from tollgate.unpriced_models(array['claude-haiku-4-5-20251001', 'no-such-model',
                                             'claude-sonnet-4-5', 't250-model', 'zz-unpriced']);
select * from tollgate.unpriced_models(array['t250-model', 'claude-haiku-4-5'],
                                       '2026-05-01 00:00:00+00');
select count(*) as none from tollgate.unpriced_models(array[]::text[]);

-- usage: the 009 columns, their defaults and checks.
insert into tollgate.usage (request_id, ts, model) values
    ('00000000-0000-4000-8000-000000250001', '2026-11-15 12:00:00+00', 'm');
select cache_write_1h_tokens, web_search_requests, usage_source
  from tollgate.usage where request_id = '00000000-0000-4000-8000-000000250001';
-- (refusals name the constraint, not the partition the row was routed to)
do $$
declare
    v_constraint text;
    v_row        record;
begin
    for v_row in
        select * from (values ('guessed', 0, 0), ('provider', -1, 0), ('provider', 0, -1))
                   as v(source, cw1h, ws)
    loop
        begin
            insert into tollgate.usage (request_id, ts, usage_source, cache_write_1h_tokens,
                                        web_search_requests)
            values (gen_random_uuid(), '2026-11-15 12:00:00+00', v_row.source, v_row.cw1h,
                    v_row.ws);
            raise notice 'stored: %', v_row;
        exception when check_violation then
            get stacked diagnostics v_constraint = constraint_name;
            raise notice 'refused % by %', v_row, v_constraint;
        end;
    end loop;
end
$$;
insert into tollgate.usage (request_id, ts, usage_source, cache_write_tokens, cache_write_1h_tokens,
                            web_search_requests) values
    ('00000000-0000-4000-8000-000000250005', '2026-11-15 12:00:00+00', 'reserved_bound', 10, 4, 2),
    ('00000000-0000-4000-8000-000000250006', '2026-11-15 12:00:00+00', 'estimated', 0, 0, 0);
select usage_source, cache_write_1h_tokens, web_search_requests
  from tollgate.usage where request_id::text like '00000000-0000-4000-8000-00000025000%'
 order by request_id;

-- The price functions are pure reads (stable).
select p.oid::regprocedure as function, p.provolatile
  from pg_proc p
 where p.pronamespace = 'tollgate'::regnamespace
   and p.proname in ('price_micros', 'price_upper_micros', 'unpriced_models')
 order by p.oid::regprocedure::text;

rollback;
