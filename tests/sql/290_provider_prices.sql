-- 290_provider_prices: each provider's own rates (013). A 'PROVIDER/MODEL'
-- row prices MODEL's usage served by PROVIDER; the model's own row prices
-- every other provider's; the reservation's bound is the largest row in
-- force; a model with only provider rows is unpriced.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-05-10 08:00:00+00';

insert into tollgate.prices (model, effective_from, input_micros_per_mtok, output_micros_per_mtok)
values ('pp-model', '2026-01-01', 1000000, 5000000),
       ('bedrock/pp-model', '2026-01-01', 2000000, 8000000),
       ('azure/pp-model', '2026-06-01', 9000000, 9000000),      -- not in force yet
       ('bedrock/pp-orphan', '2026-01-01', 1000000, 1000000);   -- no row of its own

-- one request each: 1M input, 1M output tokens
select provider, tollgate.price_micros_for(provider, 'pp-model', tollgate.clock(),
                                           1000000, 1000000, 0, 0, 0, 0) as micros
  from unnest(array['anthropic', 'bedrock', 'azure', '', null]) as provider;

-- the bound holds whichever backend serves: the largest row in force
select tollgate.price_upper_micros('pp-model', tollgate.clock(), 1000000, 1000000) as bound;
-- only provider rows: unpriced (reserve refuses it, price check names it)
select tollgate.price_upper_micros('pp-orphan', tollgate.clock(), 1000, 1000) is null as unpriced;
select * from tollgate.unpriced_models(array['pp-model', 'pp-orphan']);

-- settle_batch prices each row by its provider's rates
select b.ord, b.cost_micros
  from tollgate.settle_batch(jsonb_build_array(
         jsonb_build_object('request_id', '00000000-0000-4000-8000-000000290001',
                            'provider', 'bedrock', 'model', 'pp-model',
                            'input_tokens', 1000000, 'output_tokens', 1000000),
         jsonb_build_object('request_id', '00000000-0000-4000-8000-000000290002',
                            'provider', 'anthropic', 'model', 'pp-model',
                            'input_tokens', 1000000, 'output_tokens', 1000000))) b
 order by b.ord;
select provider, cost_micros from tollgate.usage
 where request_id in ('00000000-0000-4000-8000-000000290001',
                      '00000000-0000-4000-8000-000000290002')
 order by provider;

rollback;
