-- 110_windows: tollgate.clock() and the injected time; window_start and
-- window_end for every window, month and year boundaries, in UTC and in
-- other configured zones (DST, half-hour offsets).
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
begin;
set local timezone = 'UTC';

-- The clock is now() unless tollgate.now is set; an empty setting is unset.
select tollgate.clock() = now() as clock_is_now;
set local tollgate.now = '2026-01-31 23:59:30+00';
select tollgate.clock() as injected;
set local tollgate.now = '2026-03-01 12:00:00+05:30';
select tollgate.clock() as injected_with_offset;
set local tollgate.now = '';
select tollgate.clock() = now() as empty_is_now;

-- The configured zone: UTC by default.
select key, value from tollgate.settings order by key;
select tollgate.quota_timezone() as zone;

-- Every window at one instant, UTC.
select w, tollgate.window_start(w, '2026-05-17 13:45:30.5+00') as start,
       tollgate.window_end(w, tollgate.window_start(w, '2026-05-17 13:45:30.5+00')) as "end"
  from unnest(array['minute', 'hour', 'day', 'month', 'total']) as w;
-- Unknown window: null.
select tollgate.window_start('week', '2026-05-17 13:45:30+00') as start,
       tollgate.window_end('week', '2026-05-17 00:00:00+00') as "end";

-- Boundaries in UTC: the last microsecond belongs to the old window, the
-- first to the new one.
select at, w, tollgate.window_start(w, at) as start,
       tollgate.window_end(w, tollgate.window_start(w, at)) as "end"
  from (values (timestamptz '2026-01-31 23:59:59.999999+00'),
               ('2026-02-01 00:00:00+00'),
               ('2025-12-31 23:59:59.999999+00'),
               ('2026-01-01 00:00:00+00'),
               ('2028-02-29 12:00:00+00')) as v(at),
       unnest(array['minute', 'hour', 'day', 'month']) as w
 order by at, array_position(array['minute', 'hour', 'day', 'month'], w);

-- Another zone (set inside this transaction): America/New_York, UTC-5 in
-- winter, UTC-4 from 2026-03-08 02:00 local.
update tollgate.settings set value = 'America/New_York' where key = 'timezone';
select tollgate.quota_timezone() as zone;
-- 2026-02-01 03:00 UTC is still January 31 in New York.
select w, tollgate.window_start(w, '2026-02-01 03:00:00+00') as start,
       tollgate.window_end(w, tollgate.window_start(w, '2026-02-01 03:00:00+00')) as "end"
  from unnest(array['minute', 'hour', 'day', 'month', 'total']) as w;
-- The month turns at 05:00 UTC on the 1st (local midnight).
select at, tollgate.window_start('month', at) as month_start
  from (values (timestamptz '2026-02-01 04:59:59.999999+00'),
               ('2026-02-01 05:00:00+00')) as v(at);
-- DST: the day of the change is 23 hours long, the month of March ends at
-- 04:00 UTC; November's change day is 25 hours.
select tollgate.window_start('day', '2026-03-08 12:00:00+00') as day_start,
       tollgate.window_end('day', tollgate.window_start('day', '2026-03-08 12:00:00+00')) as day_end,
       tollgate.window_end('day', tollgate.window_start('day', '2026-03-08 12:00:00+00'))
         - tollgate.window_start('day', '2026-03-08 12:00:00+00') as day_length;
select tollgate.window_start('month', '2026-03-15 12:00:00+00') as month_start,
       tollgate.window_end('month', tollgate.window_start('month', '2026-03-15 12:00:00+00')) as month_end;
select tollgate.window_end('day', tollgate.window_start('day', '2026-11-01 12:00:00+00'))
         - tollgate.window_start('day', '2026-11-01 12:00:00+00') as fall_back_day_length;

-- A half-hour offset: Asia/Kolkata (UTC+05:30). Minute and hour stay UTC;
-- the day starts at 18:30 UTC the evening before.
update tollgate.settings set value = 'Asia/Kolkata' where key = 'timezone';
select w, tollgate.window_start(w, '2026-06-30 20:10:00+00') as start,
       tollgate.window_end(w, tollgate.window_start(w, '2026-06-30 20:10:00+00')) as "end"
  from unnest(array['minute', 'hour', 'day', 'month']) as w;

-- An unknown zone is refused when it is set, not at the next request.
update tollgate.settings set value = 'Mars/Olympus_Mons' where key = 'timezone';
select tollgate.quota_timezone() as zone_after_refused_update;

-- No settings row: UTC.
delete from tollgate.settings where key = 'timezone';
select tollgate.quota_timezone() as zone_without_row,
       tollgate.window_start('month', '2026-02-01 03:00:00+00') as month_start;

rollback;
