-- 120_price_upper: price_upper_micros is a true upper bound of the cost:
-- every prompt token at the highest prompt rate (input, cache write, cache
-- read; the 2025 rows have no 1-hour rate of their own), output at the
-- output rate, rounded up; NULL without a price (sql/009: it was 0, which
-- let an unpriced model through every USD budget). 250_prices tests the
-- 1-hour, long-context and web search components.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

select label, tollgate.price_upper_micros(model, at, i, o) as micros, expected,
       tollgate.price_upper_micros(model, at, i, o) is not distinct from expected as ok
  from (values
    -- sonnet: input 3, cache write 3.75, output 15 $/MTok -> prompt at 3.75.
    ('sonnet 1000 + 1000',            'claude-sonnet-4-5',  timestamptz '2025-06-01', 1000::bigint, 1000::bigint, 18750::bigint),
    ('sonnet 1M prompt at 3.75',      'claude-sonnet-4-5',  '2025-06-01', 1000000, 0, 3750000),
    ('sonnet 1 output = 15',          'claude-sonnet-4-5',  '2025-06-01', 0, 1, 15),
    -- rounding up, never half-up: 1.25 -> 2, 3.75 -> 4, 2.5 -> 3.
    ('haiku 1 prompt = 1.25 -> 2',    'claude-haiku-4-5',   '2025-06-01', 1, 0, 2),
    ('sonnet 1 prompt = 3.75 -> 4',   'claude-sonnet-4-5',  '2025-06-01', 1, 0, 4),
    ('gpt-4o 1 prompt = 2.5 -> 3',    'gpt-4o',             '2025-06-01', 1, 0, 3),
    -- OpenAI has no cache-write charge: the input rate is the highest.
    ('gpt-4o 1000 + 100',             'gpt-4o',             '2025-06-01', 1000, 100, 3500),
    ('gpt-4o-mini 10 prompt = 1.5',   'gpt-4o-mini',        '2025-06-01', 10, 0, 2),
    ('exact micros stay exact',       'claude-opus-4-1',    '2025-06-01', 1000000, 1000000, 93750000),
    ('zero tokens',                   'claude-sonnet-4-5',  '2025-06-01', 0, 0, 0),
    ('null counts are 0',             'claude-sonnet-4-5',  '2025-06-01', null, null, 0),
    ('unknown model',                 'no-such-model',      '2025-06-01', 1000, 1000, null),
    ('null model',                    null,                 '2025-06-01', 1000, 1000, null),
    ('before the first price',        'claude-sonnet-4-5',  '2024-12-31 23:59:59+00', 1000, 1000, null)
  ) as v(label, model, at, i, o, expected);

-- It bounds price_micros for every way the prompt tokens can split into
-- plain input, cache reads and cache writes, and every output <= the max.
select count(*) as splits,
       count(*) filter (where tollgate.price_micros('claude-sonnet-4-5', '2025-06-01', i, o, cr, 1000 - i - cr)
                              > tollgate.price_upper_micros('claude-sonnet-4-5', '2025-06-01', 1000, 500)) as over_bound
  from generate_series(0, 1000, 50) as i, generate_series(0, 1000, 50) as cr,
       generate_series(0, 500, 100) as o
 where i + cr <= 1000;
select count(*) as over_bound_small_counts
  from generate_series(0, 7) as i, generate_series(0, 7) as cr, generate_series(0, 7) as cw,
       generate_series(0, 3) as o,
       unnest(array['claude-haiku-4-5', 'claude-sonnet-4-5', 'gpt-4o', 'gpt-5-mini', 'claude-opus-4-1']) as m
 where tollgate.price_micros(m, '2025-06-01', i, o, cr, cw) > tollgate.price_upper_micros(m, '2025-06-01', i + cr + cw, 3);

-- The price in force at p_at is used; a later price change applies from
-- its effective_from on (the version of 2025-12-31 is the seeded one of
-- 2025-01-01). A (hypothetical) cache-read rate above the input rate still
-- bounds the cost.
insert into tollgate.prices (model, effective_from, input_micros_per_mtok, output_micros_per_mtok,
                             cache_read_micros_per_mtok, cache_write_micros_per_mtok)
values ('claude-sonnet-4-5', '2026-01-01 00:00:00+00', 6000000, 30000000, 600000, 7500000),
       ('odd-model',         '2025-01-01 00:00:00+00', 1000000, 2000000, 4000000, 3000000);
select tollgate.price_upper_micros('claude-sonnet-4-5', '2025-12-31 23:59:59+00', 1000, 1000) as old_price,
       tollgate.price_upper_micros('claude-sonnet-4-5', '2026-01-01 00:00:00+00', 1000, 1000) as new_price,
       tollgate.price_upper_micros('odd-model', '2025-06-01', 1000, 0) as odd_prompt_at_4;

select provolatile from pg_proc where oid = 'tollgate.price_upper_micros(text,timestamptz,bigint,bigint,bigint)'::regprocedure;

rollback;
