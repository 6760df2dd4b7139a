-- 012_models.sql — GET /v1/models: which of the gateway's models a caller may
-- use, each with its price in force (issue 10).

-- models_visible: of p_models (the config's model names and aliases, with the
-- canonical model each stands for in p_canonical, same order), those that the
-- caller — a member of group p_group with role p_role, through the key
-- p_api_key_id (null: a JWT caller, no key restriction) — may use under the
-- same RBAC rules as reserve (group, role and key allowed_models globs,
-- checked against the canonical model, as reserve does), in order, each with the input
-- and output rate of its canonical model's price in force (micro-dollars per
-- million tokens; null when unpriced).
create or replace function tollgate.models_visible(p_api_key_id bigint,
                                                   p_group      text,
                                                   p_role       text,
                                                   p_models     text[],
                                                   p_canonical  text[])
returns table (model text, canonical text, input_micros_per_mtok bigint,
               output_micros_per_mtok bigint)
language sql stable
as $$
    select m.model, c.canonical, p.input_micros_per_mtok, p.output_micros_per_mtok
      from unnest(p_models, p_canonical) with ordinality as m(model, canonical_name, ord)
      cross join lateral (select m.canonical_name as canonical) c
      left join tollgate.groups g on g.id = p_group
      left join tollgate.roles ro on ro.id = p_role
      left join tollgate.api_keys k on k.id = p_api_key_id
      left join lateral (select pr.input_micros_per_mtok, pr.output_micros_per_mtok
                           from tollgate.prices pr
                          where pr.model = c.canonical
                            and pr.effective_from <= tollgate.clock()
                          order by pr.effective_from desc
                          limit 1) p on true
     where tollgate.glob_match(c.canonical, g.allowed_models)
       and tollgate.glob_match(c.canonical, ro.allowed_models)
       and tollgate.glob_match(c.canonical, k.allowed_models)
     order by m.ord
$$;
