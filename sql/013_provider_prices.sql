-- 013_provider_prices.sql — each provider's own rates (issue 10).
--
-- A model's pool may hold backends of different providers (Anthropic and
-- Bedrock, OpenAI and Azure) whose rates differ. A price row whose model is
-- 'PROVIDER/MODEL' (PROVIDER a key of the config's providers, MODEL the
-- canonical model) prices that model's usage served by that provider; the row
-- of MODEL itself prices every other provider's, and stays required: a model
-- without it is unpriced (reserve refuses it, price check names it), so that a
-- backend without its own row is always priced. Rows stay versioned by
-- effective_from and set with price_set ('tollgatectl price set bedrock/M ...').
--
-- The reservation's bound is the largest of the model's rows in force (it
-- holds whichever backend serves); the usage row is priced by its provider's
-- row when there is one in force, else by the model's.

-- The provider rows of a model, found without a scan.
create index if not exists prices_provider_model_idx
    on tollgate.prices ((substr(model, position('/' in model) + 1)), effective_from)
 where position('/' in model) > 0;

-- price_micros_for: price_micros (009) of p_provider's row for p_model, else
-- of p_model's own row; null when neither is in force at p_at.
create or replace function tollgate.price_micros_for(p_provider       text,
                                                     p_model          text,
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
    v_micros bigint;
begin
    -- plpgsql, not sql: its statements' plans are kept for the session
    if p_provider is not null and p_provider <> '' then
        v_micros := tollgate.price_micros(p_provider || '/' || p_model, p_at, p_input, p_output,
                                          p_cache_read, p_cache_write, p_cache_write_1h,
                                          p_web_search);
    end if;
    return coalesce(v_micros,
                    tollgate.price_micros(p_model, p_at, p_input, p_output, p_cache_read,
                                          p_cache_write, p_cache_write_1h, p_web_search));
end
$$;

-- price_upper_micros: the upper bound of 009 (now price_upper_micros_of, one
-- row's), over the model's own row and every provider row of it in force: the
-- largest. Null when the model's own row is not in force (unpriced).
do $$
begin
    if to_regprocedure('tollgate.price_upper_micros_of(text,timestamptz,bigint,bigint,bigint)')
       is null then
        alter function tollgate.price_upper_micros(text, timestamptz, bigint, bigint, bigint)
            rename to price_upper_micros_of;
    end if;
end
$$;

create or replace function tollgate.price_upper_micros(p_model      text,
                                                       p_at         timestamptz,
                                                       p_input      bigint,
                                                       p_output     bigint,
                                                       p_web_search bigint default 0)
returns bigint
language plpgsql stable
as $$
declare
    v_own  bigint;
    v_best bigint;
begin
    -- plpgsql, not sql: reserve calls it on every request, and its plans are kept
    v_own := tollgate.price_upper_micros_of(p_model, p_at, p_input, p_output, p_web_search);
    if v_own is null then
        return null;
    end if;
    select max(tollgate.price_upper_micros_of(pr.model, p_at, p_input, p_output, p_web_search))
      into v_best
      from (select distinct p.model
              from tollgate.prices p
             where position('/' in p.model) > 0
               and substr(p.model, position('/' in p.model) + 1) = p_model
               and p.effective_from <= p_at) pr;
    return greatest(v_own, v_best);
end
$$;

-- settle_batch (010): each usage row priced by its provider's row when there
-- is one. The function is rewritten from its own definition, the price call
-- replaced, so that one text holds it; a definition without that call fails
-- this migration rather than settle with the wrong rates.
do $$
declare
    v_def text := pg_get_functiondef('tollgate.settle_batch(jsonb)'::regprocedure);
    v_old text := 'tollgate.price_micros(s.model, coalesce(s.ts, v_now),';
    v_new text := 'tollgate.price_micros_for(s.provider, s.model, coalesce(s.ts, v_now),';
begin
    if position(v_new in v_def) > 0 then
        return; -- applied already
    end if;
    if position(v_old in v_def) = 0 then
        raise exception 'settle_batch: its price call was not found; migration 013 needs updating';
    end if;
    execute replace(v_def, v_old, v_new);
end
$$;
