-- 016_attribution_owner.sql — an attributed request stays within the key
-- owner's budgets (issue 12).
--
-- A key flagged trusted_attribution may name the end user U and group G it
-- acts for; identify then answers U and G as the request's user and group,
-- and until now reserve and settle applied the quota rows of the key K, U
-- and G only. U and G need not exist, so a key's owner could park its
-- spend on a group without a quota and escape its own user's and group's.
-- Now a request through key K, owned by user O of group OG, reserves and
-- settles on the rows of K, O, OG, U and G, all or none; a subject named
-- twice (U = O, G = OG, and every request without attribution) counts once.
-- The usage row and the reservation keep U and G, as before: the owner is
-- reached through their api_key_id (api_keys.user_id, .group_id).
--
--   identity_resolve  has_quota (reserve's fast path) also when a row of O or
--                     OG applies to an attributed request: the key's row
--                     already asked about them (no new statement);
--   reserve           for an attributed request, reads O and OG by the key's
--                     id and locks their rows with the others, in id order;
--                     a refusal names the row's own subject (a 429 on OG says
--                     group "OG", not the end group);
--   settle_batch      adds each usage row's key owner's user and group to the
--                     rows it charges (one more lookup by primary key per row);
--   settle            (006, one record) the same.
--
-- A caller none of whose rows exists still takes the fast path: no lock, no
-- write. Concurrency as in 003: every row is locked in id order.
--
-- Each function is rewritten from its own definition (as 013, 014 and 015
-- rewrite settle_batch): every fragment replaced must be found exactly once,
-- or this migration fails rather than leave a function half changed. Applied
-- like the others inside one transaction; safe to re-run (a function already
-- holding its marker is left alone).

-- rewrite: replaces in the definition of p_fn each p_edits[i][1] by
-- p_edits[i][2], each required exactly once, and runs the result; nothing
-- when the definition already holds p_marker. (pg_temp: gone with the
-- migration's session.)
create or replace function pg_temp.rewrite(p_fn regprocedure, p_marker text, p_edits text[])
returns void
language plpgsql
as $$
declare
    v_def text := pg_get_functiondef(p_fn);
    v_old text;
begin
    if position(p_marker in v_def) > 0 then
        return; -- applied already
    end if;
    for i in 1 .. array_length(p_edits, 1) loop
        v_old := p_edits[i][1];
        if (length(v_def) - length(replace(v_def, v_old, ''))) / length(v_old) <> 1 then
            raise exception '%: "%" was not found once; migration 016 needs updating',
                            p_fn, v_old;
        end if;
        v_def := replace(v_def, v_old, p_edits[i][2]);
    end loop;
    execute v_def;
end
$$;

-- identity_resolve: the key's own statement computed whether a row of K, O
-- or OG applies; attribution kept that answer only to ask again about U and
-- G. A true answer stands now; a false one still asks about U and G.
select pg_temp.rewrite(
    'tollgate.identity_resolve(bytea,text,text,text,boolean,text,text,text,text,timestamptz,boolean)',
    'the key owner''s rows',
    array[array[
        'has_quota := null;           -- other rows: asked below',
        '-- the key owner''s rows (asked above) apply as well; if none, the
                -- end user''s and group''s are asked below
                if has_quota is not true then
                    has_quota := null;
                end if;']]);

-- reserve
select pg_temp.rewrite(
    'tollgate.reserve(uuid,bytea,text,bigint,bigint,text,integer,jsonb,text,text,text,boolean,text,text,text,bigint)',
    'v_owner_group',
    array[
        -- the owner's user and group, and each locked row's subject id
        array['    v_who       record;',
              '    v_who       record;
    v_owner_user  text;          -- the key owner''s user and group (the request''s own
    v_owner_group text;          -- unless attribution replaced them)
    v_sid       text[];'],
        array['    if p_input_tokens < 0 or p_max_output_tokens < 0',
              '    v_owner_user  := user_id;
    v_owner_group := group_id;
    if attribution = ''applied'' then
        select k.user_id, k.group_id into v_owner_user, v_owner_group
          from tollgate.api_keys k
         where k.id = v_who.api_key_id;
    end if;

    if p_input_tokens < 0 or p_max_output_tokens < 0'],
        -- the rows: the owner's too (an IN list: a subject named twice is one row)
        array['                                                                  (''group'', group_id))',
              '                                                                  (''group'', group_id),
                                                                  (''user'', v_owner_user),
                                                                  (''group'', v_owner_group))'],
        array['select q.id, q.subject_kind as kind, q.metric,',
              'select q.id, q.subject_kind as kind, q.subject_id as sid, q.metric,'],
        array['               array_agg(x.metric),',
              '               array_agg(x.metric), array_agg(x.sid),'],
        array['into v_ids, v_start, v_win, v_kind, v_metric, v_deny,',
              'into v_ids, v_start, v_win, v_kind, v_metric, v_sid, v_deny,'],
        -- a refusal names the subject of the row that refused
        array['when ''user'' then user_id
                                                              else group_id end',
              'else v_sid[i] end']]);

-- settle_batch: each inserted row's key owner, found by the key's id.
select pg_temp.rewrite(
    'tollgate.settle_batch(jsonb)',
    'o.user_id',
    array[
        array['-- the rows of each inserted row''s key, user and group: three
                -- equality probes of quotas'' unique (subject_kind, subject_id, ...)',
              '-- the rows of each inserted row''s key, user and group, and of
                -- its key owner''s user and group (016): probes of quotas''
                -- unique (subject_kind, subject_id, ...); an IN list, so that
                -- a subject named twice (no attribution) counts once'],
        array['                  from inserted i
',
              '                  from inserted i
                  left join tollgate.api_keys o on o.id = i.key_id
'],
        array['u.subject_id = i.user_id', 'u.subject_id in (i.user_id, o.user_id)'],
        array['g.subject_id = i.group_id', 'g.subject_id in (i.group_id, o.group_id)']]);

-- settle (006): the same, for its one record.
select pg_temp.rewrite(
    'tollgate.settle(uuid,timestamptz,bigint,text,text,text,text,integer,integer,integer,integer,integer,integer,integer,boolean,text)',
    'v_ogroup',
    array[
        array['    v_kid      text := p_api_key_id::text;',
              '    v_kid      text := p_api_key_id::text;
    v_ouser    text;             -- the key owner''s user and group (016)
    v_ogroup   text;'],
        array['    v_found := v_rqids is not null;',
              '    v_found := v_rqids is not null;
    select k.user_id, k.group_id into v_ouser, v_ogroup
      from tollgate.api_keys k
     where k.id = p_api_key_id;'],
        array['                                                  (''group'', p_group_id))',
              '                                                  (''group'', p_group_id),
                                                  (''user'', v_ouser),
                                                  (''group'', v_ogroup))'],
        array['           or (r.subject_kind = ''group'' and r.subject_id = p_group_id) then',
              '           or (r.subject_kind = ''group'' and r.subject_id = p_group_id)
           or (r.subject_kind = ''user'' and r.subject_id = v_ouser)
           or (r.subject_kind = ''group'' and r.subject_id = v_ogroup) then']]);

drop function pg_temp.rewrite(regprocedure, text, text[]);
