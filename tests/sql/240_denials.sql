-- 240_denials: tollgate.denials_add — the upsert adds to the counters already
-- there, once per batch id; null, '' and 0 all mean "none" and are one key;
-- bad batches are refused whole — and sql/reports/blocked.sql on the result.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

create temp view counters as
    select d.day, d.group_id, d.user_id, d.api_key_id, d.reason, d.http_status, d.requests
      from tollgate.denials d
     order by 1, 2 nulls first, 3 nulls first, 4 nulls first, 5, 6;

-- A first batch, as a worker sends it (one row per counter), with a repeated
-- key (summed) and "none" spelled every way.
select tollgate.denials_add('[
  {"day": "2026-03-02", "group_id": null, "user_id": null, "api_key_id": null,
   "reason": "rejected", "http_status": 401, "requests": 7},
  {"day": "2026-03-02", "group_id": "", "user_id": "", "api_key_id": 0,
   "reason": "rejected", "http_status": 401, "requests": 2},
  {"day": "2026-03-02", "group_id": "dn-eng", "user_id": "alice", "api_key_id": 11,
   "reason": "quota_exceeded", "http_status": 429, "requests": 5},
  {"day": "2026-03-02", "group_id": "dn-eng", "user_id": "alice", "api_key_id": 11,
   "reason": "quota_exceeded", "http_status": 429, "requests": 1},
  {"day": "2026-03-02", "group_id": "dn-ops", "user_id": "bob", "api_key_id": null,
   "reason": "rejected", "http_status": 403, "requests": 3}
]'::jsonb, '00000000-0000-4000-9000-000000000001') as added;
select * from counters;

-- The same batch again (its answer was lost): nothing more.
select tollgate.denials_add('[
  {"day": "2026-03-02", "group_id": null, "user_id": null, "api_key_id": null,
   "reason": "rejected", "http_status": 401, "requests": 7}
]'::jsonb, '00000000-0000-4000-9000-000000000001') as added_again;

-- The next batch adds to the same counters, and opens new ones.
select tollgate.denials_add('[
  {"day": "2026-03-02", "group_id": null, "user_id": null, "api_key_id": null,
   "reason": "rejected", "http_status": 401, "requests": 4},
  {"day": "2026-03-02", "group_id": "dn-eng", "user_id": "alice", "api_key_id": 11,
   "reason": "quota_exceeded", "http_status": 429, "requests": 10},
  {"day": "2026-03-02", "group_id": "dn-eng", "user_id": "alice", "api_key_id": 11,
   "reason": "rate_limited", "http_status": 429, "requests": 2},
  {"day": "2026-03-03", "group_id": "dn-eng", "user_id": "carol", "api_key_id": 12,
   "reason": "quota_exceeded", "http_status": 429, "requests": 8},
  {"day": "2026-03-31", "group_id": null, "user_id": null, "api_key_id": null,
   "reason": "database_unavailable", "http_status": 503, "requests": 6},
  {"day": "2026-02-28", "group_id": "dn-eng", "user_id": "alice", "api_key_id": 11,
   "reason": "quota_exceeded", "http_status": 429, "requests": 100},
  {"day": "2026-04-01", "group_id": "dn-ops", "user_id": "bob", "api_key_id": null,
   "reason": "rejected", "http_status": 403, "requests": 100},
  {"day": "2026-03-04", "group_id": null, "user_id": null, "api_key_id": null,
   "reason": "overflow", "http_status": 0, "requests": 9}
]'::jsonb, '00000000-0000-4000-9000-000000000002') as added;
select * from counters;

-- Without a batch id (psql, by hand) every call adds; an empty batch adds nothing.
select tollgate.denials_add('[{"day": "2026-03-02", "group_id": "dn-ops", "user_id": "bob",
  "reason": "rejected", "http_status": 403, "requests": 1}]'::jsonb) as added;
select tollgate.denials_add('[{"day": "2026-03-02", "group_id": "dn-ops", "user_id": "bob",
  "reason": "rejected", "http_status": 403, "requests": 1}]'::jsonb) as added;
select tollgate.denials_add('[]'::jsonb, '00000000-0000-4000-9000-000000000003') as added;
select requests from tollgate.denials
 where group_id = 'dn-ops' and day = '2026-03-02' and http_status = 403;

-- Refused whole, batch id included (it may be sent again once fixed).
select tollgate.denials_add('[
  {"day": "2026-03-05", "group_id": "dn-eng", "user_id": "alice", "api_key_id": 11,
   "reason": "quota_exceeded", "http_status": 429, "requests": 1},
  {"day": "2026-03-05", "group_id": "dn-eng", "user_id": "alice", "api_key_id": 11,
   "reason": "quota_exceeded", "http_status": 429, "requests": 0}
]'::jsonb, '00000000-0000-4000-9000-000000000004');
select tollgate.denials_add('[{"day": "2026-03-05", "reason": "rejected", "requests": 1}]'::jsonb);
select tollgate.denials_add('[{"day": "2026-03-05", "http_status": 401, "requests": 1}]'::jsonb);
select tollgate.denials_add('[{"http_status": 401, "reason": "rejected", "requests": 1}]'::jsonb);
select tollgate.denials_add('[{"day": "2026-03-05", "reason": "rejected", "http_status": 401,
  "requests": -3}]'::jsonb);
select tollgate.denials_add('{"day": "2026-03-05"}'::jsonb);
select tollgate.denials_add(null);
select count(*) as refused_rows_added from tollgate.denials where day = '2026-03-05';
select count(*) as refused_batch_recorded
  from tollgate.denial_batches where batch = '00000000-0000-4000-9000-000000000004';

-- Batch ids are kept a week: an older one is forgotten at the next batch.
update tollgate.denial_batches set applied_at = now() - interval '8 days'
 where batch = '00000000-0000-4000-9000-000000000001';
select tollgate.denials_add('[]'::jsonb, '00000000-0000-4000-9000-000000000005') as added;
select b.batch from tollgate.denial_batches b
 where b.batch::text like '00000000-0000-4000-9000-%' order by 1;

-- The report: March 2026, per team, by reason and status; nobody last.
\set month 2026-03-15
\i ../../sql/reports/blocked.sql
-- April has only bob's 403s.
\set month 2026-04-30
\i ../../sql/reports/blocked.sql

rollback;
