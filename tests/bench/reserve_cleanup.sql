-- tests/bench/reserve_cleanup.sql — deletes what reserve_setup.sql and the
-- runs of reserve.pgb left (rows named bn-*).
delete from tollgate.reservations where group_id like 'bn-%';
delete from tollgate.usage where group_id like 'bn-%';
delete from tollgate.quota_alerts a using tollgate.quotas q
 where q.id = a.quota_id
   and (q.subject_id like 'bn-%'
        or (q.subject_kind = 'key'
            and q.subject_id in (select id::text from tollgate.api_keys where group_id like 'bn-%')));
delete from tollgate.quotas q
 where q.subject_id like 'bn-%'
    or (q.subject_kind = 'key'
        and q.subject_id in (select id::text from tollgate.api_keys where group_id like 'bn-%'));
delete from tollgate.audit_log where actor = 'bench';
delete from tollgate.api_keys where group_id like 'bn-%';
delete from tollgate.users where group_id like 'bn-%';
delete from tollgate.groups where id like 'bn-%';
