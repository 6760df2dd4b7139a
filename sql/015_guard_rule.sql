-- 015_guard_rule.sql — the guardrail that blocked a request (issue 11).
--
-- A request a guardrail blocks is settled as a zero-cost usage row with
-- outcome 'blocked'; guard_rule now names the rule on that row (null on every
-- other row). The name is the config's, at most 64 bytes (guard.c refuses
-- longer names when it loads the rules), never the matched text. ADD COLUMN
-- on the partitioned table reaches every attached partition, the default one
-- included; usage_partitions_ensure (006) copies the table's shape, this
-- column and its check included, to the months it creates. A month already
-- detached (kept as a plain table) does not get it.
--
-- settle_batch (010, 013, 014) stores the record's guard_rule (absent: null,
-- as in the records of earlier versions waiting in a spool or a journal). It
-- is rewritten from its own definition, as 013 and 014 do; a definition
-- without one of the expected fragments, exactly once, fails this migration.

alter table tollgate.usage
    add column if not exists guard_rule text
        constraint usage_guard_rule_length check (octet_length(guard_rule) between 1 and 64);

do $$
declare
    v_def  text := pg_get_functiondef('tollgate.settle_batch(jsonb)'::regprocedure);
    -- (what is there, what it becomes): the record's columns, their names with
    -- ordinality, the insert's columns and its values
    v_edit text[][] := array[
        array['outcome text, usage_source text))',
              'outcome text, usage_source text, guard_rule text))'],
        array['stream, outcome, usage_source, ord)',
              'stream, outcome, usage_source, guard_rule, ord)'],
        array['latency_ms, upstream_ms, stream, outcome, usage_source)',
              'latency_ms, upstream_ms, stream, outcome, usage_source, guard_rule)'],
        array['coalesce(s.outcome, ''''), coalesce(s.usage_source, ''provider'')',
              'coalesce(s.outcome, ''''), coalesce(s.usage_source, ''provider''), s.guard_rule']];
    v_old  text;
begin
    if position('guard_rule' in v_def) > 0 then
        return; -- applied already
    end if;
    for i in 1 .. array_length(v_edit, 1) loop
        v_old := v_edit[i][1];
        if (length(v_def) - length(replace(v_def, v_old, ''))) / length(v_old) <> 1 then
            raise exception 'settle_batch: "%" was not found once; migration 015 needs updating',
                            v_old;
        end if;
        v_def := replace(v_def, v_old, v_edit[i][2]);
    end loop;
    execute v_def;
end
$$;
