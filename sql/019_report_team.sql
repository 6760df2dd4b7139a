-- 019_report_team.sql — the chargeback by two groupings and for one team,
-- and MCP tool calls as a report of the admin API (issue 14's dashboard:
-- "spend by team stacked by model", "one team's spend by user and model").
--
--   report_chargeback        GET /admin/reports/chargeback?by=A[,B][&group=G]
--                            and `tollgatectl report --by A[,B] [--group G]`
--   report_chargeback_tools  ...?by=tool[&group=G], `report --by tool`
--
-- A team's figures are the usage rows whose group_id is the team: a user who
-- spends in two teams appears in each with that team's spend only. The days
-- the views cover come from chargeback_daily (it has group, user, key,
-- provider and model), later days from usage, as chargeback_rows (007) does.
--
-- Applied like 001 inside one transaction by `tollgatectl migrate`; every
-- statement is safe to re-run. Money is bigint micro-dollars, never float.

-- report_chargeback: totals per p_by over p_from .. p_to (at most 366 days),
-- most expensive first. p_by is one of group, user, key, model, provider, or
-- two different ones joined by a comma ('group,model'): subject is the first
-- grouping's value, subject2 the second's (null with one grouping). p_group:
-- only the usage rows of that group (null: every row).
create or replace function tollgate.report_chargeback(p_by text, p_group text, p_from date,
                                                      p_to date)
returns table (subject            text,
               subject2           text,
               requests           bigint,
               input_tokens       bigint,
               output_tokens      bigint,
               cache_read_tokens  bigint,
               cache_write_tokens bigint,
               cost_micros        bigint)
language plpgsql stable
as $$
declare
    v_kinds constant text[] := array['group', 'user', 'key', 'model', 'provider'];
    v_by1   text := split_part(p_by, ',', 1);
    v_by2   text := nullif(split_part(p_by, ',', 2), '');
begin
    if p_by is null or not (v_by1 = any (v_kinds))
       or (v_by2 is not null and (not (v_by2 = any (v_kinds)) or v_by2 = v_by1))
       or p_by like '%,%,%' or p_by like '%,' then
        raise exception 'report: unknown "by" "%" (group, user, key, model or provider, or two of them: group,model)',
              p_by using errcode = 'invalid_parameter_value';
    end if;
    if p_group is not null and (p_group = '' or length(p_group) > 128) then
        raise exception 'report: "group" must be 1 to 128 characters'
              using errcode = 'invalid_parameter_value';
    end if;
    perform tollgate.report_check_range(p_from, p_to, 366);
    return query
    select case v_by1 when 'group' then r.group_id when 'user' then r.user_id
                      when 'key' then r.api_key_id::text when 'provider' then r.provider
                      else r.model end,
           case v_by2 when 'group' then r.group_id when 'user' then r.user_id
                      when 'key' then r.api_key_id::text when 'provider' then r.provider
                      when 'model' then r.model end,
           sum(r.requests)::bigint, sum(r.input_tokens)::bigint,
           sum(r.output_tokens)::bigint, sum(r.cache_read_tokens)::bigint,
           sum(r.cache_write_tokens)::bigint, sum(r.cost_micros)::bigint
      from tollgate.chargeback_rows(p_from, p_to) r
     where p_group is null or r.group_id = p_group
     group by 1, 2
     order by 8 desc, 1, 2;
end
$$;

-- report_chargeback_tools: chargeback_tools (017) for the admin API, and for
-- one group (the calls whose group_id is p_group; null: every call).
create or replace function tollgate.report_chargeback_tools(p_group text, p_from date, p_to date)
returns table (server      text,
               tool        text,
               calls       bigint,
               errors      bigint,
               bytes_in    bigint,
               bytes_out   bigint,
               duration_us bigint,
               mean_us     bigint)
language plpgsql stable
as $$
declare
    v_tz text := tollgate.quota_timezone();
begin
    perform tollgate.report_check_range(p_from, p_to, 366);
    return query
    select c.server, c.tool, count(*)::bigint, count(*) filter (where c.code <> 'ok')::bigint,
           sum(c.bytes_in)::bigint, sum(c.bytes_out)::bigint, sum(c.duration_us)::bigint,
           (sum(c.duration_us) / count(*))::bigint
      from tollgate.mcp_calls c
     where c.ts >= (p_from::timestamp at time zone v_tz)
       and c.ts < ((p_to + 1)::timestamp at time zone v_tz)
       and (p_group is null or c.group_id = p_group)
     group by c.server, c.tool
     order by 3 desc, 1, 2;
end
$$;
