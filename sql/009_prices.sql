-- TEMPORARY STUB (lead's local testing; replaced by the prices branch)
alter table tollgate.usage add column if not exists cache_write_1h_tokens integer not null default 0;
alter table tollgate.usage add column if not exists web_search_requests integer not null default 0;
alter table tollgate.usage add column if not exists usage_source text not null default 'provider';
create or replace function tollgate.price_micros(p_model text, p_at timestamptz, p_input bigint,
    p_output bigint, p_cache_read bigint, p_cache_write bigint, p_cache_write_1h bigint, p_web_search bigint)
returns bigint language plpgsql stable as $$
declare v bigint;
begin
    select round((coalesce(p_input,0)::numeric * p.input_micros_per_mtok
                + coalesce(p_output,0)::numeric * p.output_micros_per_mtok
                + coalesce(p_cache_read,0)::numeric * p.cache_read_micros_per_mtok
                + coalesce(p_cache_write,0)::numeric * p.cache_write_micros_per_mtok) / 1000000)::bigint
      into v from tollgate.prices p where p.model = p_model and p.effective_from <= p_at
     order by p.effective_from desc limit 1;
    return v;
end $$;
