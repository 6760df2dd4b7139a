-- 010_price_micros: exact costs from the seeded prices, cache tokens,
-- half-up rounding of the summed cost, effective_from selection, unknown
-- models.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

select model, input_micros_per_mtok as input, output_micros_per_mtok as output,
       cache_read_micros_per_mtok as cache_read, cache_write_micros_per_mtok as cache_write,
       effective_from
  from tollgate.prices
 order by model, effective_from;

-- Seeded prices at 2025-06-01: (in, out, cache_read, cache_write) tokens.
select label, tollgate.price_micros(model, at, i, o, cr, cw) as micros, expected,
       tollgate.price_micros(model, at, i, o, cr, cw) = expected as ok
  from (values
    ('sonnet 1M input',              'claude-sonnet-4-5',          timestamptz '2025-06-01', 1000000::bigint, 0::bigint, 0::bigint, 0::bigint, 3000000::bigint),
    ('sonnet 1000 in + 500 out',     'claude-sonnet-4-5',          '2025-06-01', 1000, 500, 0, 0, 10500),
    ('sonnet dated id, same price',  'claude-sonnet-4-5-20250929', '2025-06-01', 1000, 500, 0, 0, 10500),
    ('haiku with both cache kinds',  'claude-haiku-4-5-20251001',  '2025-06-01', 1000, 200, 3000, 400, 2800),
    ('haiku alias',                  'claude-haiku-4-5',           '2025-06-01', 1000, 200, 3000, 400, 2800),
    ('opus-4-1 100 of each',         'claude-opus-4-1',            '2025-06-01', 100, 100, 100, 100, 11025),
    ('opus-4-5 1M out',              'claude-opus-4-5-20251101',   '2025-06-01', 0, 1000000, 0, 0, 25000000),
    ('3-5-haiku 1M in + 1M out',     'claude-3-5-haiku-20241022',  '2025-06-01', 1000000, 1000000, 0, 0, 4800000),
    ('sonnet-4 cache write 1000',    'claude-sonnet-4-20250514',   '2025-06-01', 0, 0, 0, 1000, 3750),
    ('gpt-4o cached input',          'gpt-4o',                     '2025-06-01', 1000, 100, 2000, 0, 6000),
    ('gpt-4o cache write is free',   'gpt-4o',                     '2025-06-01', 0, 0, 0, 500, 0),
    ('gpt-4o-mini 10 in = 1.5 -> 2', 'gpt-4o-mini',                '2025-06-01', 10, 0, 0, 0, 2),
    ('gpt-4.1-mini',                 'gpt-4.1-mini',               '2025-06-01', 10000, 1000, 10000, 0, 6600),
    ('gpt-5',                        'gpt-5',                      '2025-06-01', 2000, 3000, 8000, 0, 33500),
    ('embedding small 1000 in',      'text-embedding-3-small',     '2025-06-01', 1000, 0, 0, 0, 20),
    ('embedding large 1000 in',      'text-embedding-3-large',     '2025-06-01', 1000, 0, 0, 0, 130),
    -- Rounding: half up, applied once to the sum.
    ('sonnet 3 cache read = 0.9',    'claude-sonnet-4-5',          '2025-06-01', 0, 0, 3, 0, 1),
    ('sonnet 1 cache read = 0.3',    'claude-sonnet-4-5',          '2025-06-01', 0, 0, 1, 0, 0),
    ('haiku 5 cache read = 0.5',     'claude-haiku-4-5',           '2025-06-01', 0, 0, 5, 0, 1),
    ('haiku 4 cache read = 0.4',     'claude-haiku-4-5',           '2025-06-01', 0, 0, 4, 0, 0),
    ('gpt-5-mini 0.25 + 0.25 = 0.5', 'gpt-5-mini',                 '2025-06-01', 1, 0, 10, 0, 1),
    ('gpt-5-mini 0.25 + 0.2 = 0.45', 'gpt-5-mini',                 '2025-06-01', 1, 0, 8, 0, 0),
    ('zero tokens',                  'claude-sonnet-4-5',          '2025-06-01', 0, 0, 0, 0, 0),
    -- No price: unknown model, or before the first effective_from.
    ('unknown model',                'no-such-model',              '2025-06-01', 1000, 1000, 0, 0, 0),
    ('model ids are case-sensitive', 'CLAUDE-SONNET-4-5',          '2025-06-01', 1000, 1000, 0, 0, 0),
    ('before first price',           'claude-sonnet-4-5',          '2024-12-31 23:59:59.999999+00', 1000, 0, 0, 0, 0),
    ('at first price',               'claude-sonnet-4-5',          '2025-01-01 00:00:00+00', 1000, 0, 0, 0, 3000)
  ) as v(label, model, at, i, o, cr, cw, expected);

-- Largest int token counts stay exact (numeric, no overflow):
-- 2147483647 * (15 + 75 + 1.5 + 18.75) = 236760072081.75 -> 236760072082.
select tollgate.price_micros('claude-opus-4-1', '2025-06-01',
                             2147483647, 2147483647, 2147483647, 2147483647) as max_int_tokens,
       tollgate.price_micros('claude-opus-4-1', '2025-06-01',
                             2147483647, 2147483647, 2147483647, 2147483647) = 236760072082 as ok;

-- Null counts are 0; a null model or time has no price.
select tollgate.price_micros('claude-sonnet-4-5', '2025-06-01', 1000, null, null, null) as null_counts,
       tollgate.price_micros(null, '2025-06-01', 1000, 0, 0, 0) as null_model,
       tollgate.price_micros('claude-sonnet-4-5', null, 1000, 0, 0, 0) as null_time;

-- effective_from: a new price from 2026-01-01 applies from that instant on;
-- earlier times keep the old one (and in 2027 the seeded version of
-- 2026-11-01, sql/009, is in force).
insert into tollgate.prices (model, effective_from, input_micros_per_mtok, output_micros_per_mtok,
                             cache_read_micros_per_mtok, cache_write_micros_per_mtok)
values ('claude-sonnet-4-5', '2026-01-01 00:00:00+00', 6000000, 30000000, 600000, 7500000);
select at, tollgate.price_micros('claude-sonnet-4-5', at, 1000, 1000, 1000, 1000) as micros
  from (values (timestamptz '2025-06-01 00:00:00+00'),
               ('2025-12-31 23:59:59.999999+00'),
               ('2026-01-01 00:00:00+00'),
               ('2027-01-01 00:00:00+00')) as v(at)
 order by at;

-- price_micros is a pure read: stable, and usable in a query over usage.
select provolatile from pg_proc where oid = 'tollgate.price_micros(text,timestamptz,bigint,bigint,bigint,bigint)'::regprocedure;

rollback;
