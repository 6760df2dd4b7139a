#!/bin/sh
# tests/sql/run.sh — runs the SQL regression tests against a migrated database.
#
#   tests/sql/run.sh DBURL [--accept]
#
# DBURL must already hold sql/001_core.sql, sql/002_prices.sql, ... Each test
# NNN_name.sql opens a transaction and rolls it back, so the database is left
# unchanged and the files are independent. Each file is run with
#   psql -X -a -q -v ON_ERROR_STOP=0 --no-psqlrc -d DBURL -f NNN_name.sql
# (from this directory, stdout and stderr together) and its output is diffed
# against expected/NNN_name.out. Prints "ok NAME" or "not ok NAME" and the
# diff, then "N passed, N failed"; exits 1 if any failed.
# --accept overwrites the expected files with the actual output instead.

set -u

if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != "--accept" ]; }; then
    echo "usage: $0 DBURL [--accept]" >&2
    exit 2
fi
dburl=$1
accept=${2:-}

here=$(cd "$(dirname "$0")" && pwd) || exit 2
cd "$here" || exit 2

out=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-sqltest.XXXXXX") || exit 2
trap 'rm -rf "$out"' EXIT INT TERM

# Deterministic output whatever the server's or the user's settings.
PGTZ=UTC PGDATESTYLE='ISO, MDY' PGCLIENTENCODING=UTF8 LC_ALL=C
export PGTZ PGDATESTYLE PGCLIENTENCODING LC_ALL
unset PGOPTIONS

passed=0
failed=0
for sql in [0-9][0-9][0-9]_*.sql; do
    [ -f "$sql" ] || continue
    name=${sql%.sql}
    psql -X -a -q -v ON_ERROR_STOP=0 --no-psqlrc -d "$dburl" -f "$sql" \
        >"$out/$name.out" 2>&1
    if [ "$accept" = "--accept" ]; then
        cp "$out/$name.out" "expected/$name.out"
        echo "accepted $name"
        passed=$((passed + 1))
    elif [ -f "expected/$name.out" ] && diff -u "expected/$name.out" "$out/$name.out" >"$out/$name.diff"; then
        echo "ok $name"
        passed=$((passed + 1))
    else
        echo "not ok $name"
        if [ -f "expected/$name.out" ]; then
            cat "$out/$name.diff"
        else
            echo "# missing expected/$name.out; actual output:"
            cat "$out/$name.out"
        fi
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
