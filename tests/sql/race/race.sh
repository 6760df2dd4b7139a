#!/bin/sh
# tests/sql/race/race.sh — concurrency check of reserve/settle, run by hand
# against a SCRATCH database that holds sql/001..003 (it commits rows named
# race-*, and deletes them again at the end).
#
#   tests/sql/race/race.sh DBURL [N] [CLIENTS] [TX_PER_CLIENT] [SECONDS]
#
# 1. Race: one group whose usd budget admits exactly N requests at the upper
#    bound (N x 18750 micros), 16 keys/users in it (each request locks the
#    key, user and group rows), CLIENTS pgbench clients x TX_PER_CLIENT
#    reserve+settle each (more than N in all). Checks: exactly N admitted,
#    used <= limit (= limit here, as actual = upper bound), reserved = 0, no
#    reservation left.
# 2. Race with dying workers: the same, plus a script that reserves and never
#    settles (holder dead:*) and a concurrent sweeper; after a final sweep:
#    used <= limit, reserved = 0, used = the sum of the settled costs.
# 3. Throughput of reserve+settle (no denials): every request on one hot
#    group vs spread over 100 groups, SECONDS each, with both calls
#    committing synchronously, with reserve asynchronous (settle stays
#    synchronous), and with both asynchronous.
# Prints the figures; exits 1 if a check fails.
set -eu
dburl=$1
n=${2:-500}
clients=${3:-16}
txc=${4:-100}
secs=${5:-20}
here=$(cd "$(dirname "$0")" && pwd)
PGBENCH=${PGBENCH:-$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)}
psql_q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$dburl" "$@"; }
fail=0

cleanup() {
    psql_q <<'SQL'
delete from tollgate.reservations where holder like 'race:%' or holder like 'dead:%';
delete from tollgate.usage where group_id like 'race-%';
delete from tollgate.quota_alerts a using tollgate.quotas q
 where q.id = a.quota_id and (q.subject_id like 'race-%'
       or (q.subject_kind = 'key' and q.subject_id in (select id::text from tollgate.api_keys where prefix like 'tg-R%' and group_id like 'race-%')));
delete from tollgate.quotas q
 where q.subject_id like 'race-%'
    or (q.subject_kind = 'key' and q.subject_id in (select id::text from tollgate.api_keys where group_id like 'race-%'));
delete from tollgate.audit_log where subject ~ '^(group|user):race-' or subject in
       (select 'key:' || prefix from tollgate.api_keys where group_id like 'race-%')
    or subject ~ '^key:tg-R[0-9]{3}k[0-9]{3} ';
delete from tollgate.api_keys where group_id like 'race-%';
delete from tollgate.users where group_id like 'race-%';
delete from tollgate.groups where id like 'race-%';
SQL
}

# setup GROUPS KEYS USD_LIMIT: groups race-1..GROUPS, each with KEYS keys
# race-G-K (prefix tg-RGGGkKKK) of users race-G-uK; group usd/month limit;
# user tokens/day and key requests/minute quotas that never bind.
setup() {
    psql_q -v groups="$1" -v keys="$2" -v lim="$3" <<'SQL'
select count(tollgate.key_create(sha256(convert_to('race-' || g || '-' || k, 'UTF8')),
                                 'tg-R' || lpad(g::text, 3, '0') || 'k' || lpad(k::text, 3, '0'),
                                 'race', 'race-' || g || '-u' || k, 'race-' || g, null, 'race'))
  from generate_series(1, :groups) g, generate_series(1, :keys) k;
select count(tollgate.quota_set('group', 'race-' || g, 'usd', 'month', :lim, 'race'))
  from generate_series(1, :groups) g;
select count(tollgate.quota_set('user', 'race-' || g || '-u' || k, 'tokens', 'day', 1000000000000, 'race'))
     + count(tollgate.quota_set('key', 'tg-R' || lpad(g::text, 3, '0') || 'k' || lpad(k::text, 3, '0'),
                                'requests', 'minute', 1000000000, 'race'))
  from generate_series(1, :groups) g, generate_series(1, :keys) k;
SQL
}

report() {
    psql_q -F ' ' <<'SQL'
select 'group ' || q.subject_id || ': limit=' || q.limit_value || ' used=' || q.used
       || ' reserved=' || q.reserved
       || ' settled=' || (select count(*) from tollgate.usage u where u.group_id = q.subject_id)
       || ' settled_cost=' || (select coalesce(sum(cost_micros), 0) from tollgate.usage u where u.group_id = q.subject_id)
       || ' reservations_left=' || (select count(*) from tollgate.reservations r where r.group_id = q.subject_id)
  from tollgate.quotas q where q.subject_kind = 'group' and q.subject_id = 'race-1' and q.metric = 'usd';
select 'all race rows: max(used - limit)=' || coalesce(max(used - limit_value), 0)
       || ' sum(reserved)=' || coalesce(sum(reserved), 0)
  from tollgate.quotas q
 where q.subject_id like 'race-%'
    or (q.subject_kind = 'key' and q.subject_id in (select id::text from tollgate.api_keys where group_id like 'race-%'));
SQL
}

check() {   # check SQL-boolean DESCRIPTION
    if [ "$(psql_q -c "select ($1)::text")" = "true" ]; then echo "  ok: $2"; else echo "  FAILED: $2"; fail=1; fi
}

cleanup
echo "== 1. race: N=$n admitted exactly? $clients clients x $txc reserve+settle"
setup 1 16 $((n * 18750)) >/dev/null
"$PGBENCH" -n -M prepared -c "$clients" -j 2 -t "$txc" -D groups=1 -D keys=16 \
    -f "$here/reserve_settle.pgb" "$dburl" 2>&1 | grep -E '^(number of (transactions|failed)|tps|latency average)'
report
check "(select count(*) from tollgate.usage where group_id = 'race-1') = $n" "exactly N=$n admitted and settled"
check "(select used <= limit_value and reserved = 0 from tollgate.quotas where subject_kind = 'group' and subject_id = 'race-1' and metric = 'usd')" "used <= limit, reserved = 0"
check "(select used = $n * 18750 from tollgate.quotas where subject_kind = 'group' and subject_id = 'race-1' and metric = 'usd')" "used = N x 18750 (actual = upper bound)"
check "(select count(*) = 0 from tollgate.reservations where group_id like 'race-%')" "no reservation left"
cleanup

echo "== 2. race with dying workers and a concurrent sweeper (N=$n budget)"
setup 1 16 $((n * 18750)) >/dev/null
"$PGBENCH" -n -M prepared -c "$clients" -j 2 -t "$txc" -D groups=1 -D keys=16 \
    -f "$here/reserve_settle.pgb@8" -f "$here/die.pgb@1" -f "$here/sweep.pgb@1" "$dburl" 2>&1 \
    | grep -E '^(number of (transactions|failed)|tps|SQL script| - [0-9]+ transactions)'
psql_q -c "select 'final sweep released ' || tollgate.sweep_reservations(array(select 'dead:' || i from generate_series(0, 63) as i))"
report
check "(select used <= limit_value and reserved = 0 from tollgate.quotas where subject_kind = 'group' and subject_id = 'race-1' and metric = 'usd')" "used <= limit, reserved = 0"
check "(select q.used = (select sum(cost_micros) from tollgate.usage u where u.group_id = 'race-1') from tollgate.quotas q where subject_kind = 'group' and subject_id = 'race-1' and metric = 'usd')" "used = sum of settled costs"
check "(select coalesce(sum(reserved), 0) = 0 from tollgate.quotas q where q.subject_id like 'race-%' or (q.subject_kind = 'key' and q.subject_id in (select id::text from tollgate.api_keys where group_id like 'race-%')))" "reserved = 0 on every row (key, user, group)"
check "(select count(*) = 0 from tollgate.reservations where group_id like 'race-%')" "no reservation left"
cleanup

echo "== 3. throughput of reserve+settle, $clients clients, ${secs}s each"
setup 100 2 1000000000000000 >/dev/null
# Commit modes: both synchronous; reserve asynchronous and settle
# synchronous (usage stays durable); both asynchronous.
for cm in sync async-reserve async; do
    case $cm in
        sync)          sc=on;  script=reserve_settle.pgb ;;
        async-reserve) sc=off; script=reserve_async_settle_sync.pgb ;;
        async)         sc=off; script=reserve_settle.pgb ;;
    esac
    for mode in hot spread; do
        if [ $mode = hot ]; then g=1; else g=100; fi
        tps=$(PGOPTIONS="-c synchronous_commit=$sc" "$PGBENCH" -n -M prepared -c "$clients" -j 2 -T "$secs" \
                  -D groups=$g -D keys=2 -f "$here/$script" "$dburl" 2>&1 \
              | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
        echo "  commit=$cm $mode (groups=$g): $tps tps (reserve+settle pairs/s)"
    done
done
report | tail -1
check "(select coalesce(sum(reserved), 0) = 0 from tollgate.quotas q where q.subject_id like 'race-%' or (q.subject_kind = 'key' and q.subject_id in (select id::text from tollgate.api_keys where group_id like 'race-%')))" "reserved = 0 on every row after the runs"
cleanup
[ "$fail" -eq 0 ] && echo "all checks passed" || { echo "SOME CHECKS FAILED"; exit 1; }
