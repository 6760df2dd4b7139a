-- 009_prices.sql — prices without holes (issue 9, item 3): a price row says
-- everything Anthropic bills for a request, and a model without a price in
-- force is unpriced (NULL), never free.
--
--   prices        + the 1-hour cache-write rate (cache_write_micros_per_mtok
--                 stays the 5-minute rate), the long-context premium (a
--                 threshold of prompt tokens and five rates that apply to the
--                 whole request above it) and the per-use fee of the web
--                 search server tool;
--   usage         + cache_write_1h_tokens, web_search_requests, usage_source;
--   price_micros  (8 arguments) the exact cost of a request, NULL when the
--                 model has no price in force; the 6-argument form of 001/003
--                 stays for its callers (0 when unpriced, as before);
--   price_upper_micros  (5 arguments, the last with a default) a true upper
--                 bound over every rate that could apply, NULL when unpriced
--                 (it answered 0 before: a free unpriced model passed every
--                 USD budget);
--   price_set     the new components as optional named arguments; price_list
--                 shows them;
--   unpriced_models  which of a list of models (the config's) have no price
--                 in force: `tollgatectl price check`, `tollgatectl migrate`
--                 and the worker at start ask it;
--   seed          a price version for every Anthropic model of 002 with all
--                 of its components, from 2026-11-01.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run. Money is bigint micro-dollars or numeric.

-- ---------------------------------------------------------------------------
-- Prices: the new components.
--
-- cache_write_1h_micros_per_mtok: the rate of cache writes with a 1-hour TTL.
-- NULL means "the cache_write (5-minute) rate", so a row that predates this
-- column, or a raw INSERT that leaves it out, never bills a 1-hour write at
-- zero. The long-context rates are all present exactly when the threshold is.

alter table tollgate.prices
    add column if not exists cache_write_1h_micros_per_mtok bigint
        constraint prices_cache_write_1h_nonneg check (cache_write_1h_micros_per_mtok >= 0),
    add column if not exists long_context_threshold_tokens bigint
        constraint prices_long_context_threshold_positive
        check (long_context_threshold_tokens > 0),
    add column if not exists long_input_micros_per_mtok bigint
        constraint prices_long_input_nonneg check (long_input_micros_per_mtok >= 0),
    add column if not exists long_output_micros_per_mtok bigint
        constraint prices_long_output_nonneg check (long_output_micros_per_mtok >= 0),
    add column if not exists long_cache_read_micros_per_mtok bigint
        constraint prices_long_cache_read_nonneg check (long_cache_read_micros_per_mtok >= 0),
    add column if not exists long_cache_write_micros_per_mtok bigint
        constraint prices_long_cache_write_nonneg check (long_cache_write_micros_per_mtok >= 0),
    add column if not exists long_cache_write_1h_micros_per_mtok bigint
        constraint prices_long_cache_write_1h_nonneg
        check (long_cache_write_1h_micros_per_mtok >= 0),
    -- micro-dollars per search ($10 per 1,000 searches = 10000)
    add column if not exists web_search_micros_per_use bigint not null default 0
        constraint prices_web_search_nonneg check (web_search_micros_per_use >= 0);

alter table tollgate.prices drop constraint if exists prices_long_context_complete;
alter table tollgate.prices add constraint prices_long_context_complete check (
    (long_context_threshold_tokens is null) = (long_input_micros_per_mtok is null)
    and (long_context_threshold_tokens is null) = (long_output_micros_per_mtok is null)
    and (long_context_threshold_tokens is null) = (long_cache_read_micros_per_mtok is null)
    and (long_context_threshold_tokens is null) = (long_cache_write_micros_per_mtok is null)
    and (long_context_threshold_tokens is null) = (long_cache_write_1h_micros_per_mtok is null));

-- ---------------------------------------------------------------------------
-- Usage: the new token kind, server tool uses, and where the counts came from.
--
-- cache_write_tokens keeps counting ALL cache writes; cache_write_1h_tokens is
-- the part of them written with a 1-hour TTL. usage_source: 'provider' (the
-- provider's usage report), 'estimated' (the gateway's estimate: the
-- provider never reported one) or 'reserved_bound' (charged at the reserved
-- upper bound). ADD COLUMN on the partitioned table reaches every attached
-- partition; usage_partitions_ensure copies the table's shape to new ones.

alter table tollgate.usage
    add column if not exists cache_write_1h_tokens integer not null default 0
        constraint usage_cache_write_1h_tokens_nonneg check (cache_write_1h_tokens >= 0),
    add column if not exists web_search_requests integer not null default 0
        constraint usage_web_search_requests_nonneg check (web_search_requests >= 0),
    add column if not exists usage_source text not null default 'provider'
        constraint usage_usage_source_valid
        check (usage_source in ('provider', 'estimated', 'reserved_bound'));

-- ---------------------------------------------------------------------------
-- Pricing.

-- price_micros: the exact cost in micro-dollars of one request of p_model at
-- p_at, priced by the row in force then (the latest effective_from <= p_at);
-- NULL when there is none (unknown model, before its first price, null model
-- or time). p_cache_write counts ALL cache writes, p_cache_write_1h the part
-- of them at the 1-hour rate (the 5-minute part is the difference; a
-- p_cache_write_1h above p_cache_write counts as all of them). When the row
-- has a long-context threshold and input + cache reads + cache writes exceed
-- it, every token kind is priced at its long-context rate (Anthropic bills
-- the whole request at the premium; exactly at the threshold is not above
-- it). Cost = round_half_up(sum(tokens x rate per MTok) / 1e6 + web searches
-- x fee per use), in numeric, rounded once per request. Null counts are 0.
-- PL/pgSQL: its plan is kept for the session (see quota_timezone in 003).
create or replace function tollgate.price_micros(p_model          text,
                                                 p_at             timestamptz,
                                                 p_input          bigint,
                                                 p_output         bigint,
                                                 p_cache_read     bigint,
                                                 p_cache_write    bigint,
                                                 p_cache_write_1h bigint,
                                                 p_web_search     bigint)
returns bigint
language plpgsql stable
as $$
declare
    p      tollgate.prices;
    v_in   numeric := coalesce(p_input, 0);
    v_out  numeric := coalesce(p_output, 0);
    v_cr   numeric := coalesce(p_cache_read, 0);
    v_cw1h numeric := coalesce(p_cache_write_1h, 0);
    v_cw   numeric := greatest(coalesce(p_cache_write, 0), coalesce(p_cache_write_1h, 0));
    v_fee  numeric;
begin
    select * into p
      from tollgate.prices pr
     where pr.model = p_model
       and pr.effective_from <= p_at
     order by pr.effective_from desc
     limit 1;
    if not found then
        return null;
    end if;
    v_fee := coalesce(p_web_search, 0)::numeric * p.web_search_micros_per_use;
    if p.long_context_threshold_tokens is not null
       and v_in + v_cr + v_cw > p.long_context_threshold_tokens then
        return round((  v_in          * p.long_input_micros_per_mtok
                      + v_out         * p.long_output_micros_per_mtok
                      + v_cr          * p.long_cache_read_micros_per_mtok
                      + (v_cw - v_cw1h) * p.long_cache_write_micros_per_mtok
                      + v_cw1h        * p.long_cache_write_1h_micros_per_mtok
                     ) / 1000000 + v_fee)::bigint;
    end if;
    return round((  v_in            * p.input_micros_per_mtok
                  + v_out           * p.output_micros_per_mtok
                  + v_cr            * p.cache_read_micros_per_mtok
                  + (v_cw - v_cw1h) * p.cache_write_micros_per_mtok
                  + v_cw1h          * coalesce(p.cache_write_1h_micros_per_mtok,
                                               p.cache_write_micros_per_mtok)
                 ) / 1000000 + v_fee)::bigint;
end
$$;

-- price_micros (6 arguments, 001/003): kept for its callers (settle,
-- record_usage): the 8-argument price with every cache write at the
-- 5-minute rate and no web search; 0 when the model has no price in force,
-- as before (those callers store it in a NOT NULL column).
create or replace function tollgate.price_micros(p_model       text,
                                                 p_at          timestamptz,
                                                 p_input       bigint,
                                                 p_output      bigint,
                                                 p_cache_read  bigint,
                                                 p_cache_write bigint)
returns bigint
language plpgsql stable
as $$
begin
    return coalesce(tollgate.price_micros(p_model, p_at, p_input, p_output, p_cache_read,
                                          p_cache_write, 0, 0), 0);
end
$$;

-- price_upper_micros: a true upper bound, in micro-dollars rounded up, of
-- the cost of a request of p_model at p_at with at most p_input prompt
-- tokens (of any kind: plain, cache read, cache write 5m or 1h) and at most
-- p_output output tokens and p_web_search web searches: prompt tokens at the
-- highest prompt-side rate (input, cache read, cache write 5m and 1h; and
-- their long-context rates when p_input exceeds the threshold, the only
-- case where they can apply), output at the highest output rate, plus the
-- searches' fees. NULL when the model has no price in force (reserve refuses
-- the request). Null counts are 0. Replaces the 4-argument form of 003,
-- which answered 0 when unpriced: a 4-argument call now means no searches.
drop function if exists tollgate.price_upper_micros(text, timestamptz, bigint, bigint);

create or replace function tollgate.price_upper_micros(p_model      text,
                                                       p_at         timestamptz,
                                                       p_input      bigint,
                                                       p_output     bigint,
                                                       p_web_search bigint default 0)
returns bigint
language plpgsql stable
as $$
declare
    p       tollgate.prices;
    v_in    numeric := coalesce(p_input, 0);
    v_prompt bigint;
    v_out    bigint;
begin
    select * into p
      from tollgate.prices pr
     where pr.model = p_model
       and pr.effective_from <= p_at
     order by pr.effective_from desc
     limit 1;
    if not found then
        return null;
    end if;
    v_prompt := greatest(p.input_micros_per_mtok, p.cache_read_micros_per_mtok,
                         p.cache_write_micros_per_mtok,
                         coalesce(p.cache_write_1h_micros_per_mtok, 0));
    v_out := p.output_micros_per_mtok;
    if p.long_context_threshold_tokens is not null
       and v_in > p.long_context_threshold_tokens then
        v_prompt := greatest(v_prompt, p.long_input_micros_per_mtok,
                             p.long_cache_read_micros_per_mtok,
                             p.long_cache_write_micros_per_mtok,
                             p.long_cache_write_1h_micros_per_mtok);
        v_out := greatest(v_out, p.long_output_micros_per_mtok);
    end if;
    return (ceil((v_in * v_prompt + coalesce(p_output, 0)::numeric * v_out) / 1000000)
            + coalesce(p_web_search, 0)::numeric * p.web_search_micros_per_use)::bigint;
end
$$;

-- unpriced_models: the models of p_models (in their order) that have no
-- price in force at p_at (null: tollgate.clock()). `tollgatectl price check`
-- and `migrate` pass the config's canonical model names; so does the worker
-- at start.
create or replace function tollgate.unpriced_models(p_models text[],
                                                    p_at     timestamptz default null)
returns setof text
language sql stable
as $$
    select m.model
      from unnest(p_models) with ordinality as m(model, ord)
     where not exists (select 1
                         from tollgate.prices p
                        where p.model = m.model
                          and p.effective_from <= coalesce(p_at, tollgate.clock()))
     order by m.ord
$$;

-- ---------------------------------------------------------------------------
-- Admin: price_set with the new components, price_list showing them.

-- price_set: creates or replaces the price of p_model from p_effective_from
-- (null: tollgate.clock()), in micro-dollars per million tokens (null base
-- rates are 0). The new components are optional, named arguments:
-- p_cache_write_1h (null: billed at the cache-write rate), the long-context
-- threshold in prompt tokens and its five rates (all or none; all null: no
-- long-context premium), p_web_search in micro-dollars per search (null: 0).
-- A negative rate or threshold and an empty model raise check_violation, an
-- incomplete long-context set invalid_parameter_value. Returns the price row
-- as jsonb. One 'price.set' audit row (subject 'price:<model>'; before null
-- for a new row) unless nothing changed. Replaces the 7-argument form of
-- 005 (positional calls with those 7 arguments mean the same).
drop function if exists tollgate.price_set(text, timestamptz, bigint, bigint, bigint, bigint, text);

create or replace function tollgate.price_set(p_model                  text,
                                              p_effective_from         timestamptz,
                                              p_input                  bigint,
                                              p_output                 bigint,
                                              p_cache_read             bigint,
                                              p_cache_write            bigint,
                                              p_actor                  text,
                                              p_cache_write_1h         bigint default null,
                                              p_long_context_threshold bigint default null,
                                              p_long_input             bigint default null,
                                              p_long_output            bigint default null,
                                              p_long_cache_read        bigint default null,
                                              p_long_cache_write       bigint default null,
                                              p_long_cache_write_1h    bigint default null,
                                              p_web_search             bigint default null)
returns jsonb
language plpgsql volatile
as $$
declare
    v_from   timestamptz := coalesce(p_effective_from, tollgate.clock());
    v_long   integer := num_nonnulls(p_long_context_threshold, p_long_input, p_long_output,
                                     p_long_cache_read, p_long_cache_write,
                                     p_long_cache_write_1h);
    v_before tollgate.prices;
    v_after  tollgate.prices;
begin
    if v_long not in (0, 6) then
        raise exception 'price of "%": a long-context price needs the threshold and all five long-context rates (input, output, cache read, cache write, cache write 1h)', p_model
              using errcode = 'invalid_parameter_value';
    end if;

    select * into v_before
      from tollgate.prices p
     where p.model = p_model and p.effective_from = v_from
       for update;
    if not found then
        insert into tollgate.prices as p
               (model, effective_from, input_micros_per_mtok, output_micros_per_mtok,
                cache_read_micros_per_mtok, cache_write_micros_per_mtok,
                cache_write_1h_micros_per_mtok, long_context_threshold_tokens,
                long_input_micros_per_mtok, long_output_micros_per_mtok,
                long_cache_read_micros_per_mtok, long_cache_write_micros_per_mtok,
                long_cache_write_1h_micros_per_mtok, web_search_micros_per_use)
        values (p_model, v_from, coalesce(p_input, 0), coalesce(p_output, 0),
                coalesce(p_cache_read, 0), coalesce(p_cache_write, 0),
                p_cache_write_1h, p_long_context_threshold,
                p_long_input, p_long_output, p_long_cache_read, p_long_cache_write,
                p_long_cache_write_1h, coalesce(p_web_search, 0))
        returning * into v_after;
        v_before := null;
    else
        update tollgate.prices p
           set input_micros_per_mtok               = coalesce(p_input, 0),
               output_micros_per_mtok              = coalesce(p_output, 0),
               cache_read_micros_per_mtok          = coalesce(p_cache_read, 0),
               cache_write_micros_per_mtok         = coalesce(p_cache_write, 0),
               cache_write_1h_micros_per_mtok      = p_cache_write_1h,
               long_context_threshold_tokens       = p_long_context_threshold,
               long_input_micros_per_mtok          = p_long_input,
               long_output_micros_per_mtok         = p_long_output,
               long_cache_read_micros_per_mtok     = p_long_cache_read,
               long_cache_write_micros_per_mtok    = p_long_cache_write,
               long_cache_write_1h_micros_per_mtok = p_long_cache_write_1h,
               web_search_micros_per_use           = coalesce(p_web_search, 0)
         where p.model = p_model and p.effective_from = v_from
        returning * into v_after;
        if v_after is not distinct from v_before then
            return to_jsonb(v_after);
        end if;
    end if;

    insert into tollgate.audit_log (actor, action, subject, before, after)
    values (coalesce(p_actor, session_user), 'price.set', 'price:' || p_model,
            case when v_before.model is null then null else to_jsonb(v_before) end,
            to_jsonb(v_after));

    return to_jsonb(v_after);
end
$$;

-- price_list: every price row; in_force is true for the row of each model
-- that applies at tollgate.clock() (the latest effective_from <= clock). The
-- columns of 005 first (in_force included), then the components of 009;
-- cache_write_1h_micros_per_mtok null means the cache_write rate.
create or replace view tollgate.price_list as
    select p.model, p.effective_from, p.input_micros_per_mtok, p.output_micros_per_mtok,
           p.cache_read_micros_per_mtok, p.cache_write_micros_per_mtok,
           coalesce(p.effective_from = max(p.effective_from)
                                           filter (where p.effective_from <= c.now)
                                           over (partition by p.model),
                    false) as in_force,
           p.cache_write_1h_micros_per_mtok, p.long_context_threshold_tokens,
           p.long_input_micros_per_mtok, p.long_output_micros_per_mtok,
           p.long_cache_read_micros_per_mtok, p.long_cache_write_micros_per_mtok,
           p.long_cache_write_1h_micros_per_mtok, p.web_search_micros_per_use
      from tollgate.prices p
     cross join (select tollgate.clock() as now) c;

-- ---------------------------------------------------------------------------
-- Reports: GET /v1/usage (007) counts the new kinds too.

-- usage_summary: as in 007, with cache_write_1h_tokens and
-- web_search_requests in the totals and per model.
create or replace function tollgate.usage_summary(p_api_key_id bigint,
                                                  p_user_id    text,
                                                  p_group_id   text,
                                                  p_from       timestamptz,
                                                  p_to         timestamptz)
returns jsonb
language sql stable
as $$
    with mine as (
        select u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens,
               u.cache_write_tokens, u.cache_write_1h_tokens, u.web_search_requests,
               u.cost_micros
          from tollgate.usage u
         where u.ts >= p_from and u.ts < p_to
           and case when p_api_key_id is not null then u.api_key_id = p_api_key_id
                    else u.user_id = p_user_id and u.api_key_id is null end
    ),
    per_model as (
        select m.model, count(*) as requests, sum(m.input_tokens) as input_tokens,
               sum(m.output_tokens) as output_tokens,
               sum(m.cache_read_tokens) as cache_read_tokens,
               sum(m.cache_write_tokens) as cache_write_tokens,
               sum(m.cache_write_1h_tokens) as cache_write_1h_tokens,
               sum(m.web_search_requests) as web_search_requests,
               sum(m.cost_micros) as cost_micros
          from mine m
         group by m.model
    )
    select jsonb_build_object(
        'from', p_from, 'to', p_to,
        'total', (select jsonb_build_object(
                      'requests', coalesce(sum(p.requests), 0),
                      'input_tokens', coalesce(sum(p.input_tokens), 0),
                      'output_tokens', coalesce(sum(p.output_tokens), 0),
                      'cache_read_tokens', coalesce(sum(p.cache_read_tokens), 0),
                      'cache_write_tokens', coalesce(sum(p.cache_write_tokens), 0),
                      'cache_write_1h_tokens', coalesce(sum(p.cache_write_1h_tokens), 0),
                      'web_search_requests', coalesce(sum(p.web_search_requests), 0),
                      'cost_micros', coalesce(sum(p.cost_micros), 0))
                    from per_model p),
        'by_model', (select coalesce(jsonb_agg(to_jsonb(p) order by p.cost_micros desc, p.model),
                                     '[]'::jsonb)
                       from per_model p),
        'quotas', (select coalesce(jsonb_agg(jsonb_build_object(
                              'subject_kind', q.subject_kind, 'metric', q.metric,
                              'window', q."window", 'limit', q.limit_value,
                              'used', case when rolled then 0 else q.used end,
                              'reserved', q.reserved,
                              'remaining', greatest(0, q.limit_value - q.reserved
                                                       - case when rolled then 0 else q.used end),
                              'resets_at', case when q."window" <> 'total' then
                                  tollgate.window_end(q."window",
                                      case when rolled then tollgate.window_start(q."window", tollgate.clock())
                                           else q.window_start end) end)
                              order by q.id), '[]'::jsonb)
                     from (select q.*, tollgate.window_start(q."window", tollgate.clock())
                                       > q.window_start as rolled
                             from tollgate.quotas q
                            where (q.subject_kind, q.subject_id) in
                                  (('key', p_api_key_id::text), ('user', p_user_id),
                                   ('group', p_group_id))) q))
$$;

-- ---------------------------------------------------------------------------
-- Seed: Anthropic's prices with every component, as published in November
-- 2026, in force from 2026-11-01 UTC, for every Anthropic model of 002 (the
-- models the shipped and test configs serve among them). Sources, in
-- Anthropic's Claude API documentation: "Pricing" — the model pricing table
-- (base input, 5m cache writes, 1h cache writes, cache hits, output) and the
-- long context pricing: Sonnet 4.5 and Sonnet 4 with the 1M-token context
-- window bill a request whose input tokens (cache reads and writes
-- included) exceed 200K at $6 input and $22.50 output per MTok, the
-- prompt-caching multipliers (5m write 1.25x, 1h write 2x, hit 0.1x of
-- input) applying on top; and "Web search tool" — $10 per 1,000 searches,
-- plus the tokens. The base rates are those of 002, still Anthropic's; the
-- 2025-01-01 rows stay as the earlier version (their 1-hour rate is null:
-- the cache-write rate). Existing rows are left alone (ON CONFLICT DO
-- NOTHING): operator edits survive. OpenAI rows are unchanged.
insert into tollgate.prices
       (model, effective_from,
        input_micros_per_mtok, output_micros_per_mtok, cache_read_micros_per_mtok,
        cache_write_micros_per_mtok, cache_write_1h_micros_per_mtok, web_search_micros_per_use,
        long_context_threshold_tokens,
        long_input_micros_per_mtok, long_output_micros_per_mtok, long_cache_read_micros_per_mtok,
        long_cache_write_micros_per_mtok, long_cache_write_1h_micros_per_mtok)
values
    -- Each row: model, from; input, output, cache read, cache write 5m and 1h (micro-dollars
    -- per MTok), micro-dollars per web search; then the long-context threshold (input +
    -- cache read + cache write tokens) and its input, output, cache read, cache write 5m
    -- and 1h rates, or nulls.
    ('claude-haiku-4-5-20251001',  '2026-11-01 00:00:00+00',  1000000,  5000000,  100000,  1250000,  2000000, 10000,
                                             null,     null,     null,    null,     null,     null),
    ('claude-haiku-4-5',           '2026-11-01 00:00:00+00',  1000000,  5000000,  100000,  1250000,  2000000, 10000,
                                             null,     null,     null,    null,     null,     null),
    ('claude-sonnet-4-5',          '2026-11-01 00:00:00+00',  3000000, 15000000,  300000,  3750000,  6000000, 10000,
                                           200000,  6000000, 22500000,  600000,  7500000, 12000000),
    ('claude-sonnet-4-5-20250929', '2026-11-01 00:00:00+00',  3000000, 15000000,  300000,  3750000,  6000000, 10000,
                                           200000,  6000000, 22500000,  600000,  7500000, 12000000),
    ('claude-sonnet-4-20250514',   '2026-11-01 00:00:00+00',  3000000, 15000000,  300000,  3750000,  6000000, 10000,
                                           200000,  6000000, 22500000,  600000,  7500000, 12000000),
    ('claude-opus-4-5',            '2026-11-01 00:00:00+00',  5000000, 25000000,  500000,  6250000, 10000000, 10000,
                                             null,     null,     null,    null,     null,     null),
    ('claude-opus-4-5-20251101',   '2026-11-01 00:00:00+00',  5000000, 25000000,  500000,  6250000, 10000000, 10000,
                                             null,     null,     null,    null,     null,     null),
    ('claude-opus-4-1',            '2026-11-01 00:00:00+00', 15000000, 75000000, 1500000, 18750000, 30000000, 10000,
                                             null,     null,     null,    null,     null,     null),
    ('claude-opus-4-1-20250805',   '2026-11-01 00:00:00+00', 15000000, 75000000, 1500000, 18750000, 30000000, 10000,
                                             null,     null,     null,    null,     null,     null),
    ('claude-3-5-haiku-20241022',  '2026-11-01 00:00:00+00',   800000,  4000000,   80000,  1000000,  1600000, 10000,
                                             null,     null,     null,    null,     null,     null)
on conflict (model, effective_from) do nothing;
