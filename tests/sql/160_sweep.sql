-- 160_sweep: sweep_reservations releases expired reservations and those of
-- dead holders, exactly once; reservation_holders lists a host's holders;
-- after every reservation is settled or swept, reserved is exactly 0.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-06-10 10:00:00+00';

-- Sweeps act on every reservation in the database: set any others aside
-- for this test (the whole test is rolled back).
delete from tollgate.reservations;

select tollgate.key_create(sha256('sw-a'::bytea), 'tg-SWkeyA01', 'a', 'sw-user', 'sw-group', null, 'test') as ka
\gset
select tollgate.quota_set('group', 'sw-group', 'usd',      'day',   1000000, 'test') as q1,
       tollgate.quota_set('user',  'sw-user',  'tokens',   'day',   100000,  'test') as q2,
       tollgate.quota_set('key',   'tg-SWkeyA01', 'requests', 'total', 100,  'test') as q3
\gset
create temp view shown as
    select subject, metric, used, reserved from tollgate.quota_list
     where subject in ('sw-group', 'sw-user', 'tg-SWkeyA01') order by id;

-- Six requests in flight: on host web1 (pids 10, 11), web10 (pid 5),
-- web_2 (pid 7); ttl 30 s, except r6 with 5 minutes.
select r.n, x.status
  from (values (1, 'web1:10', 30000), (2, 'web1:10', 30000), (3, 'web1:11', 30000),
               (4, 'web10:5', 30000), (5, 'web_2:7', 30000), (6, 'web1:10', 300000)) as r(n, holder, ttl),
       lateral tollgate.reserve(('00000000-0000-4000-8000-00000008000' || r.n)::uuid, sha256('sw-a'::bytea),
                                'claude-sonnet-4-5', 100 * r.n, 100, r.holder, r.ttl) as x
 order by r.n;
select * from shown;

-- Holders per host: exact host match (web1 is not web10; '_' is no wildcard).
select tollgate.reservation_holders('web1') as web1;
select tollgate.reservation_holders('web10') as web10;
select tollgate.reservation_holders('web_2') as web_2;
select count(*) as web_any from tollgate.reservation_holders('web');

-- Nothing expired and no dead holder: nothing released.
select tollgate.sweep_reservations() as swept, tollgate.sweep_reservations('{}') as swept_empty;

-- web1's pid 11 died: only its reservation (r3) is released.
select tollgate.sweep_reservations(array['web1:11']) as swept_dead;
select * from shown;
select tollgate.reservation_holders('web1') as web1_after;

-- At expires_at exactly, nothing is expired yet; a microsecond later r1,
-- r2, r4, r5 are (r6 has 5 minutes).
set local tollgate.now = '2026-06-10 10:00:30+00';
select tollgate.sweep_reservations() as swept_at_expiry;
set local tollgate.now = '2026-06-10 10:00:30.000001+00';
select tollgate.sweep_reservations() as swept_expired;
select * from shown;
select request_id from tollgate.reservations
 where request_id::text like '00000000-0000-4000-8000-00000008%' order by 1;

-- A late settle of a swept request counts its usage; nothing is released
-- twice; sweeping again finds nothing.
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000080001', null,
                                        :ka, 'sw-user', 'sw-group', 'anthropic', 'claude-sonnet-4-5',
                                        100, 100, 0, 0, 200, 1, 1, false, 'ok');
select tollgate.sweep_reservations() as swept_again;
select * from shown;

-- The last one is settled normally: reserved is exactly 0 everywhere.
select cost_micros from tollgate.settle('00000000-0000-4000-8000-000000080006', null,
                                        :ka, 'sw-user', 'sw-group', 'anthropic', 'claude-sonnet-4-5',
                                        600, 100, 0, 0, 200, 1, 1, false, 'ok');
select * from shown;
select count(*) as reservations_left from tollgate.reservations
 where request_id::text like '00000000-0000-4000-8000-00000008%';

-- release: a request that never reached the provider gives its
-- reservation back at once; a second release (or one for an unknown
-- request) is a no-op; a later settle would still count usage.
select status from tollgate.reserve('00000000-0000-4000-8000-000000080008', sha256('sw-a'::bytea),
                                    'claude-sonnet-4-5', 300, 100, 'web1:12', 60000);
select * from shown;
select tollgate.release('00000000-0000-4000-8000-000000080008') as released,
       tollgate.release('00000000-0000-4000-8000-000000080008') as released_again,
       tollgate.release('00000000-0000-4000-8000-0000000800ff') as released_unknown;
select * from shown;
select count(*) as reservations_left from tollgate.reservations
 where request_id = '00000000-0000-4000-8000-000000080008';

-- A reservation whose quota row was deleted meanwhile is swept without
-- error; the remaining rows get their share back.
select status from tollgate.reserve('00000000-0000-4000-8000-000000080007', sha256('sw-a'::bytea),
                                    'claude-sonnet-4-5', 10, 10, 'web1:12', 1000);
delete from tollgate.quotas where id = :q2;
set local tollgate.now = '2026-06-10 10:10:00+00';
select tollgate.sweep_reservations() as swept_orphan;
select * from shown;

rollback;
