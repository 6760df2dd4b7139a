#!/bin/sh
# tests/check_fuzz.sh — the fuzz harnesses' smoke run (the long runs are scripts/fuzz).
# Each harness of tests/fuzz replays its seeds (tests/fuzz/corpus/<target>) and
# every crash found before (tests/fuzz/regressions/<target>), then mutates for
# FUZZ_SMOKE_SECONDS (default 2). Run from the build directory: the harnesses
# are ./fuzz/fuzz_<target>, built there by scripts/test (make -f tests/fuzz/Makefile);
# built here when missing and the directory is writable. Exits 77 (skipped)
# without clang's libFuzzer, 1 on any crash, leak or UBSan report.
set -u
src=${srcdir:-$(dirname "$0")/..}
out=$PWD/fuzz
seconds=${FUZZ_SMOKE_SECONDS:-2}
if [ ! -x "$out/fuzz_sse" ]; then
    if ! command -v clang >/dev/null 2>&1 || [ ! -w "$PWD" ]; then
        echo "no fuzz harnesses in $out and no way to build them: skipped"
        exit 77
    fi
    make -s -f "$src/tests/fuzz/Makefile" TOP="$src" OUT="$out" -j2 >/dev/null || exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/check_fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS UBSAN_OPTIONS
failed=0
for bin in "$out"/fuzz_*; do
    t=${bin##*/fuzz_}
    [ -d "$src/tests/fuzz/corpus/$t" ] || { echo "FAIL $t: no seeds in tests/fuzz/corpus/$t"; failed=1; continue; }
    mkdir "$work/$t"
    regressions=
    [ -d "$src/tests/fuzz/regressions/$t" ] && regressions=$src/tests/fuzz/regressions/$t
    # the first directory gets what the run adds: a scratch one, not the checked-in seeds
    (cd "$work" && TMPDIR=$work "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/$t-" \
        "$work/$t" "$src/tests/fuzz/corpus/$t" $regressions) >"$work/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
    if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|ERROR: libFuzzer' "$work/$t.log"; then
        echo "FAIL $t (exit $rc):"
        grep -E 'ERROR:|runtime error:|SUMMARY:|#[0-9]+ 0x' "$work/$t.log" | head -20
        failed=1
    else
        echo "ok $t: ${execs:-0} executions"
    fi
done
exit $failed
