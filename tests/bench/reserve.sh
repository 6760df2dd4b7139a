#!/bin/sh
# tests/bench/reserve.sh — PostgreSQL's cost of tollgate.reserve (and settle)
# per request. Run by hand, on the database server's host, against a SCRATCH
# database that holds sql/* and the pg_stat_statements extension (server
# started with shared_preload_libraries=pg_stat_statements):
#
#   tests/bench/reserve.sh DBURL [SECONDS] [CLIENTS...]
#
# Loads reserve_setup.sql, then for each case — free: no quota applies (the
# fast path); hot: 9 quota rows per request, 3 of them shared by every
# request; spread: 9 rows per request over 100 groups — and each client
# count (default 1 and 8) runs pgbench -M prepared for SECONDS (default 10):
#
#   reserve.pgb       reserve then settle, as the worker does: prints the
#                     mean server-side execution time of each statement
#                     (pg_stat_statements, top level: wall time in the
#                     executor, which includes waiting for a core when the
#                     host is busy, and for row locks) and the backends' CPU
#                     time per request (all statements of the script,
#                     /proc/PID/schedstat), and tps;
#   reserve_only.pgb  reserve alone, rolled back: the same for reserve.
#
# Sessions set tollgate.fixed_ts = on as the worker's do. Deletes its rows
# at the end (reserve_cleanup.sql).
set -eu
dburl=$1
secs=${2:-10}
shift $(($# > 1 ? 2 : 1))
clients=${*:-1 8}
here=$(cd "$(dirname "$0")" && pwd)
PGBENCH=${PGBENCH:-$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)}
psql_q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$dburl" "$@"; }

# cpu_ns: the summed CPU time (ns) of the pgbench sessions' backends.
cpu_ns() {
    total=0
    for pid in $(psql_q -c "select pid from pg_stat_activity where application_name = 'pgbench'"); do
        ns=$(cut -d' ' -f1 "/proc/$pid/schedstat" 2>/dev/null || echo 0)
        total=$((total + ns))
    done
    echo "$total"
}
calls() {   # calls of the reserve statement so far
    psql_q -c "select coalesce(sum(calls), 0) from pg_stat_statements
                where toplevel and query like '%tollgate.reserve(%'
                  and dbid = (select oid from pg_database where datname = current_database())"
}

psql_q -f "$here/reserve_cleanup.sql"
psql_q -f "$here/reserve_setup.sql" >/dev/null
printf '%-7s %-12s %7s %11s %10s %11s %7s\n' \
    case script clients reserve_us settle_us cpu_us/req tps
for case in free hot spread; do
    case $case in
        free)   group=bn-free; groups=0;   keys=16 ;;
        hot)    group=bn-hot;  groups=0;   keys=16 ;;
        spread) group=bn-s;    groups=100; keys=2 ;;
    esac
    for script in reserve reserve_only; do
        for c in $clients; do
            psql_q -c "select pg_stat_statements_reset()" >/dev/null
            out=$(mktemp)
            PGOPTIONS="-c tollgate.fixed_ts=on" "$PGBENCH" -n -M prepared -c "$c" \
                -j "$((c < 2 ? c : 2))" -T "$secs" \
                -D group=$group -D groups=$groups -D keys=$keys \
                -D model=claude-haiku-4-5 -D holder=bench:1 \
                -f "$here/$script.pgb" "$dburl" >"$out" 2>&1 &
            bench=$!
            sleep 1
            cpu0=$(cpu_ns); calls0=$(calls)
            sleep $((secs - 2))
            cpu1=$(cpu_ns); calls1=$(calls)
            wait $bench || { cat "$out"; exit 1; }
            tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out")
            rm -f "$out"
            psql_q -F ' ' -c "
                select round(sum(total_exec_time) filter (where query like '%tollgate.reserve(%')
                             / nullif(sum(calls) filter (where query like '%tollgate.reserve(%'), 0)
                             * 1000),
                       coalesce(round(sum(total_exec_time) filter (where query like '%tollgate.settle(%')
                             / nullif(sum(calls) filter (where query like '%tollgate.settle(%'), 0)
                             * 1000)::text, '-'),
                       round(($cpu1 - $cpu0) / 1000.0 / nullif($calls1 - $calls0, 0)),
                       round($tps::numeric)
                  from pg_stat_statements
                 where toplevel and dbid = (select oid from pg_database where datname = current_database())" \
            | awk -v c="$case" -v s="$script" -v n="$c" \
                '{ printf "%-7s %-12s %7s %11s %10s %11s %7s\n", c, s, n, $1, $2, $3, $4 }'
        done
    done
done
psql_q -f "$here/reserve_cleanup.sql"
