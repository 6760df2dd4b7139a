-- 180_buckets: global request token buckets in reserve: start full, cost 1
-- per admitted request, refill tokens_per_fill every fill_interval_ms up
-- to max_tokens (injected clock), 'rate_limited' naming the bucket with
-- retry_after; all or nothing together with the quotas.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';
set local tollgate.now = '2026-08-01 12:00:00+00';

select tollgate.key_create(sha256('bk-a'::bytea), 'tg-BKkeyA01', 'a', 'bk-user', 'bk-group', null, 'test') as ka,
       tollgate.key_create(sha256('bk-b'::bytea), 'tg-BKkeyB01', 'b', 'bk-user', 'bk-group', null, 'test') as kb
\gset
-- The config's buckets, as the C side passes them: a per-user bucket of 2,
-- one token back every 10 s.
\set b1 '[{"bucket": "user:bk-user", "max_tokens": 2, "tokens_per_fill": 1, "fill_interval_ms": 10000}]'
create temp table calls (n serial, at text, status text, subject text, metric text, win text,
                         lim bigint, retry integer, tokens numeric, bucket_at timestamptz);
-- call(at, key): reserve at that time with bucket b1 and record the outcome;
-- state: record the bucket's stored state after it.
prepare call(text, text) as
    insert into calls (at, status, subject, metric, win, lim, retry)
    select $1, r.status, r.denied_subject, r.denied_metric, r.denied_window, r.denied_limit,
           r.retry_after_s
      from tollgate.reserve(gen_random_uuid(), sha256($2::bytea), 'claude-haiku-4-5', 10, 10,
                            'bk:1', 60000, :'b1'::jsonb) r;
prepare state as
    update calls c set tokens = b.tokens, bucket_at = b.updated_at
      from tollgate.rate_buckets b
     where b.bucket = 'user:bk-user' and c.n = (select max(n) from calls);

-- Full at first use (2), two requests take both tokens (both keys of the
-- user share the bucket), the third is refused: retry in 10 s.
set local tollgate.now = '2026-08-01 12:00:00+00';
execute call('12:00:00', 'bk-a'); execute state;
execute call('12:00:00', 'bk-b'); execute state;
execute call('12:00:00', 'bk-a'); execute state;
-- 3 s later: still empty, retry in 7 s.
set local tollgate.now = '2026-08-01 12:00:03+00';
execute call('12:00:03', 'bk-a'); execute state;
-- 10 s after the last fill: one token back, taken at once.
set local tollgate.now = '2026-08-01 12:00:10+00';
execute call('12:00:10', 'bk-a'); execute state;
execute call('12:00:10', 'bk-a'); execute state;
-- 25 s: one whole fill since 12:00:10 (the half interval is kept: the
-- fill clock is at 12:00:20), taken.
set local tollgate.now = '2026-08-01 12:00:25+00';
execute call('12:00:25', 'bk-a'); execute state;
-- 29.5 s: empty; the next token comes at 12:00:30: retry 0.5 s -> 1.
set local tollgate.now = '2026-08-01 12:00:29.5+00';
execute call('12:00:29.5', 'bk-a'); execute state;
-- Much later: refilled to max_tokens (2), not beyond.
set local tollgate.now = '2026-08-01 13:00:00+00';
execute call('13:00:00', 'bk-a'); execute state;
select n, at, status, subject, metric, win, lim, retry, tokens, bucket_at from calls order by n;

-- Several buckets: all must have a token; the first empty one, in name
-- order, is named; none is taken when one is empty.
set local tollgate.now = '2026-08-01 14:00:00+00';
select status, denied_subject, denied_limit, retry_after_s
  from tollgate.reserve(gen_random_uuid(), sha256('bk-a'::bytea), 'claude-haiku-4-5', 1, 1, 'bk:1', 60000,
       '[{"bucket": "route:/v1/messages", "max_tokens": 1, "tokens_per_fill": 1, "fill_interval_ms": 60000},
         {"bucket": "key:tg-BKkeyA01", "max_tokens": 5, "tokens_per_fill": 5, "fill_interval_ms": 500}]');
select status, denied_subject, denied_metric, denied_window, denied_limit, retry_after_s
  from tollgate.reserve(gen_random_uuid(), sha256('bk-a'::bytea), 'claude-haiku-4-5', 1, 1, 'bk:1', 60000,
       '[{"bucket": "route:/v1/messages", "max_tokens": 1, "tokens_per_fill": 1, "fill_interval_ms": 60000},
         {"bucket": "key:tg-BKkeyA01", "max_tokens": 5, "tokens_per_fill": 5, "fill_interval_ms": 500}]');
select bucket, tokens, updated_at from tollgate.rate_buckets
 where bucket in ('route:/v1/messages', 'key:tg-BKkeyA01') order by bucket;

-- All or nothing with the quotas. A quota that denies: no bucket token is
-- taken. An empty bucket: nothing is reserved on the quotas (their header
-- columns are still filled).
select tollgate.quota_set('user', 'bk-user', 'tokens', 'minute', 100, 'test') as q1
\gset
\set b2 '[{"bucket": "group:bk-group", "max_tokens": 1, "tokens_per_fill": 1, "fill_interval_ms": 1000}]'
select status, denied_subject, denied_metric
  from tollgate.reserve(gen_random_uuid(), sha256('bk-a'::bytea), 'claude-haiku-4-5', 100, 100, 'bk:1', 60000, :'b2');
select bucket, tokens from tollgate.rate_buckets where bucket = 'group:bk-group';
select status, tokens_remaining
  from tollgate.reserve(gen_random_uuid(), sha256('bk-a'::bytea), 'claude-haiku-4-5', 10, 10, 'bk:1', 60000, :'b2');
select status, denied_subject, denied_window, retry_after_s, tokens_limit, tokens_remaining
  from tollgate.reserve(gen_random_uuid(), sha256('bk-a'::bytea), 'claude-haiku-4-5', 10, 10, 'bk:1', 60000, :'b2');
select used, reserved from tollgate.quotas where id = :q1;

-- No buckets (null or an empty array): no bucket row is touched.
select status from tollgate.reserve(gen_random_uuid(), sha256('bk-b'::bytea), 'claude-haiku-4-5', 1, 1, 'bk:1', 60000, null);
select status from tollgate.reserve(gen_random_uuid(), sha256('bk-b'::bytea), 'claude-haiku-4-5', 1, 1, 'bk:1', 60000, '[]');
select count(*) as bucket_rows from tollgate.rate_buckets
 where bucket in ('user:bk-user', 'route:/v1/messages', 'key:tg-BKkeyA01', 'group:bk-group');

-- A smaller max_tokens in a new config caps a fuller bucket.
update tollgate.rate_buckets set tokens = 50 where bucket = 'key:tg-BKkeyA01';
select status from tollgate.reserve(gen_random_uuid(), sha256('bk-b'::bytea), 'claude-haiku-4-5', 1, 1, 'bk:1', 60000,
       '[{"bucket": "key:tg-BKkeyA01", "max_tokens": 3, "tokens_per_fill": 1, "fill_interval_ms": 1000}]');
select tokens from tollgate.rate_buckets where bucket = 'key:tg-BKkeyA01';

rollback;
