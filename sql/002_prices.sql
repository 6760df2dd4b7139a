-- 002_prices.sql — seed list prices, effective 2025-01-01 UTC, in
-- micro-dollars per million tokens ($1.00/MTok = 1000000).
-- OpenAI models have no cache-write charge (0); their cache_read column is
-- the cached-input price. Existing rows are left alone (ON CONFLICT DO
-- NOTHING), so re-running is a no-op and operator edits survive. A price
-- change is a new row with a later effective_from.

insert into tollgate.prices
       (model, effective_from,
        input_micros_per_mtok, output_micros_per_mtok,
        cache_read_micros_per_mtok, cache_write_micros_per_mtok)
values
    -- Anthropic:                                   input     output  cache_read cache_write
    ('claude-haiku-4-5-20251001',   '2025-01-01 00:00:00+00',  1000000,  5000000,   100000,  1250000),
    ('claude-haiku-4-5',            '2025-01-01 00:00:00+00',  1000000,  5000000,   100000,  1250000),
    ('claude-sonnet-4-5',           '2025-01-01 00:00:00+00',  3000000, 15000000,   300000,  3750000),
    ('claude-sonnet-4-5-20250929',  '2025-01-01 00:00:00+00',  3000000, 15000000,   300000,  3750000),
    ('claude-opus-4-5',             '2025-01-01 00:00:00+00',  5000000, 25000000,   500000,  6250000),
    ('claude-opus-4-5-20251101',    '2025-01-01 00:00:00+00',  5000000, 25000000,   500000,  6250000),
    ('claude-opus-4-1',             '2025-01-01 00:00:00+00', 15000000, 75000000,  1500000, 18750000),
    ('claude-opus-4-1-20250805',    '2025-01-01 00:00:00+00', 15000000, 75000000,  1500000, 18750000),
    ('claude-sonnet-4-20250514',    '2025-01-01 00:00:00+00',  3000000, 15000000,   300000,  3750000),
    ('claude-3-5-haiku-20241022',   '2025-01-01 00:00:00+00',   800000,  4000000,    80000,  1000000),
    -- OpenAI:                                      input     output  cached_in  cache_write
    ('gpt-4o',                      '2025-01-01 00:00:00+00',  2500000, 10000000,  1250000,        0),
    ('gpt-4o-mini',                 '2025-01-01 00:00:00+00',   150000,   600000,    75000,        0),
    ('gpt-4.1',                     '2025-01-01 00:00:00+00',  2000000,  8000000,   500000,        0),
    ('gpt-4.1-mini',                '2025-01-01 00:00:00+00',   400000,  1600000,   100000,        0),
    ('gpt-5',                       '2025-01-01 00:00:00+00',  1250000, 10000000,   125000,        0),
    ('gpt-5-mini',                  '2025-01-01 00:00:00+00',   250000,  2000000,    25000,        0),
    ('text-embedding-3-small',      '2025-01-01 00:00:00+00',    20000,        0,        0,        0),
    ('text-embedding-3-large',      '2025-01-01 00:00:00+00',   130000,        0,        0,        0)
on conflict (model, effective_from) do nothing;
