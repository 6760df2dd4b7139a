-- 012_models.sql — GET /v1/models: which of the gateway's models a caller may
-- use, each with its price in force (issue 10).

-- models_visible: of p_models (a jsonb array of [name, canonical] pairs: the
-- config's model names and aliases, and the model each stands for), those the
-- caller — a member of group p_group with role p_role, through the key
-- p_api_key_id (null: a JWT caller, no key restriction) — may use under the RBAC
-- rules of reserve (group, role and key allowed_models globs, checked against
-- the canonical model as reserve checks it), in the given order, each with the
-- input and output rates of its canonical model's price in force (micro-dollars
-- per million tokens; null when unpriced).
create or replace function tollgate.models_visible(p_api_key_id bigint,
                                                   p_group      text,
                                                   p_role       text,
                                                   p_models     jsonb)
returns table (model text, canonical text, input_micros_per_mtok bigint,
               output_micros_per_mtok bigint)
language sql stable
as $$
    select m.pair->>0, m.pair->>1, p.input_micros_per_mtok, p.output_micros_per_mtok
      from jsonb_array_elements(p_models) with ordinality as m(pair, ord)
      left join tollgate.groups g on g.id = p_group
      left join tollgate.roles ro on ro.id = p_role
      left join tollgate.api_keys k on k.id = p_api_key_id
      left join lateral (select pr.input_micros_per_mtok, pr.output_micros_per_mtok
                           from tollgate.prices pr
                          where pr.model = m.pair->>1
                            and pr.effective_from <= tollgate.clock()
                          order by pr.effective_from desc
                          limit 1) p on true
     where tollgate.glob_match(m.pair->>1, g.allowed_models)
       and tollgate.glob_match(m.pair->>1, ro.allowed_models)
       and tollgate.glob_match(m.pair->>1, k.allowed_models)
     order by m.ord
$$;
