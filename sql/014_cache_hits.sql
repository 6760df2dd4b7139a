-- 014_cache_hits.sql — a reply served from the response cache (issue 11) is
-- recorded with its tokens and zero cost: settle_batch (010, 013) prices a
-- row whose outcome is 'cache_hit' at 0. Rewritten from its own definition, as
-- 013 does; a definition without the expected price expression fails here.
do $$
declare
    v_def   text := pg_get_functiondef('tollgate.settle_batch(jsonb)'::regprocedure);
    v_start text := 'coalesce(tollgate.price_micros_for(s.provider, s.model, coalesce(s.ts, v_now),';
    v_end   text := 'tollgate.unpriced(s.model)),';
begin
    if position('cache_hit' in v_def) > 0 then
        return; -- applied already
    end if;
    if (length(v_def) - length(replace(v_def, v_start, ''))) / length(v_start) <> 1
       or (length(v_def) - length(replace(v_def, v_end, ''))) / length(v_end) <> 1 then
        raise exception 'settle_batch: its price expression was not found once; migration 014 needs updating';
    end if;
    v_def := replace(v_def, v_start,
                     'case when s.outcome = ''cache_hit'' then 0::bigint else ' || v_start);
    v_def := replace(v_def, v_end, 'tollgate.unpriced(s.model)) end,');
    execute v_def;
end
$$;
