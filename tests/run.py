#!/usr/bin/python3
"""Tollgate's test runner: unit (cmocka), SQL and integration tests.

    /usr/bin/python3 tests/run.py --build build/debug [-k SUBSTR] [--only unit|sql|integration]

Prints `ok NAME` or `FAIL NAME: reason` per test and ends with the line
`N passed, N failed`; exits 1 if anything failed or nothing ran.  Runs as an
unprivileged user (PostgreSQL refuses root); scripts/test arranges that.
"""

import argparse
import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
TEST_TIMEOUT = 180  # seconds, per integration test


class Tally:
    def __init__(self, pattern):
        self.pattern, self.passed, self.failed = pattern, 0, 0

    def wants(self, name):
        return not self.pattern or self.pattern in name

    def ok(self, name):
        self.passed += 1
        print("ok %s" % name, flush=True)

    def fail(self, name, reason):
        self.failed += 1
        reason = reason.strip()
        first, _, rest = reason.partition("\n")
        print("FAIL %s: %s" % (name, first), flush=True)
        if rest:
            print("    " + rest.replace("\n", "\n    "), flush=True)


def run_unit(build, tally):
    unit_dir = build / "tests" / "unit"
    bins = sorted(p for p in unit_dir.glob("test_*")
                  if re.fullmatch(r"test_\w+", p.name) and p.is_file() and os.access(p, os.X_OK))
    if not bins:
        tally.fail("unit", "no unit test binaries in %s (run make check TESTS=)" % unit_dir)
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="stdout", srcdir=str(REPO), SRCDIR=str(REPO),
               top_srcdir=str(REPO), top_builddir=str(build))
    for binary in bins:
        name = "unit/" + binary.name
        if not tally.wants(name):
            continue
        try:
            p = subprocess.run([binary.resolve()], cwd=build, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=300,
                               stdin=subprocess.DEVNULL)
            out, rc = p.stdout, p.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
            out, rc = (out or "") + "\n(timed out)", "timeout"
        # Count per test from the [ OK ] / [ FAILED ] lines, so a binary that
        # crashes half way still reports the tests it ran.
        sections = re.split(r"^\[ RUN      \] ", out, flags=re.M)
        passed = failed = 0
        for section in sections[1:]:
            test, _, body = section.partition("\n")
            if re.search(r"^\[       OK \] ", body, re.M):
                passed += 1
                tally.ok("%s/%s" % (name, test))
            elif re.search(r"^\[  (FAILED|ERROR)  +\] %s$" % re.escape(test), body, re.M):
                failed += 1
                lines = [l for l in body.splitlines() if not l.startswith("[  FAILED  ]")
                         and not l.startswith("[==")]
                # cmocka writes assertion messages to stderr, which may land elsewhere
                lines = lines or re.findall(r"\[ +(?:ERROR|LINE) +\] --- (.*)$", out, re.M)
                tally.fail("%s/%s" % (name, test), "\n".join(lines[:12]) or "failed")
        sanitizer = [l for l in out.splitlines()
                     if re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:", l)]
        if rc != 0 and not failed or sanitizer or passed + failed == 0:
            tally.fail(name, "exit status %s after %d passed, %d failed\n%s" % (
                rc, passed, failed, "\n".join((sanitizer or out.splitlines())[-15:])))


def run_checks(build, tally):
    """tests/check_*.sh, as make check runs them (exit 77 = skipped)."""
    for script in sorted((REPO / "tests").glob("check_*.sh")):
        name = "unit/" + script.stem
        if not tally.wants(name):
            continue
        p = subprocess.run(["/bin/sh", script], cwd=build, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, srcdir=str(REPO), SRCDIR=str(REPO)))
        if p.returncode == 0:
            tally.ok(name)
        elif p.returncode == 77:
            print("skip %s" % name, flush=True)
        else:
            tally.fail(name, "exit status %d\n%s" % (p.returncode, (p.stdout + p.stderr)[-3000:]))


def run_sql(build, tally, accept=False):
    if not tally.wants("sql"):
        return
    import harness
    with tempfile.TemporaryDirectory(prefix="tollgate-sql-") as tmp, harness.Postgres(tmp) as pg:
        config = Path(tmp) / "tollgate.json"
        harness.write_config(config, pg.url(), "http://127.0.0.1:9", Path(tmp) / "tollgate.log")
        try:
            harness.ctl(config, "migrate", "--sql-dir", REPO / "sql")
        except Exception as e:
            tally.fail("sql/migrate", str(e))
            return
        tally.ok("sql/migrate")
        p = subprocess.run(["/bin/sh", REPO / "tests" / "sql" / "run.sh", pg.url()]
                           + (["--accept"] if accept else []),
                           capture_output=True, text=True, timeout=600,
                           env=harness.base_env(), stdin=subprocess.DEVNULL)
        out = p.stdout + p.stderr
        m = re.search(r"^(\d+) passed, (\d+) failed\s*\Z", out, re.M)
        if not m:
            tally.fail("sql", "tests/sql/run.sh exited %d without a summary:\n%s" % (
                p.returncode, out[-3000:]))
            return
        detail, current = {}, None
        for line in out[:m.start()].splitlines():
            ok = re.match(r"(not )?ok (\S+)", line)
            if ok:
                current = ok.group(2)
                detail[current] = [] if not ok.group(1) else ["diff:"]
                if not ok.group(1):
                    print("ok sql/%s" % current, flush=True)
            elif detail.get(current):
                detail[current].append(line)
        for name, lines in detail.items():
            if lines:
                print("FAIL sql/%s: %s" % (name, "\n    ".join(lines[:40])), flush=True)
        tally.passed += int(m.group(1))
        tally.failed += int(m.group(2))
        if p.returncode != 0 and m.group(2) == "0":
            tally.fail("sql", "tests/sql/run.sh exited %d" % p.returncode)


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout("test took longer than %ds" % TEST_TIMEOUT)


def report_dead_workers(harness, reported):
    """Says once when a worker died: later failures of its stack follow from it."""
    for s in harness.live_stacks():
        dead = set(s.dead_workers()) - reported
        if dead:
            reported |= dead
            print("# worker(s) %s of a stack died; worker stderr ends:\n#   %s" % (
                sorted(dead), "\n#   ".join(s.worker_stderr().splitlines()[-12:])), flush=True)


def run_integration(tally):
    import harness
    signal.signal(signal.SIGALRM, _alarm)
    files = sorted((REPO / "tests" / "integration").glob("test_*.py"))
    reported = set()
    try:
        for path in files:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            try:
                spec.loader.exec_module(module)
            except Exception:
                tally.fail(path.stem, "import failed\n" + traceback.format_exc(limit=-3))
                continue
            for fname, func in list(vars(module).items()):
                name = "%s::%s" % (path.stem, fname)
                if not fname.startswith("test_") or not callable(func) or not tally.wants(name):
                    continue
                t0 = time.monotonic()
                signal.alarm(TEST_TIMEOUT)
                try:
                    func()
                    tally.ok("%s (%.1fs)" % (name, time.monotonic() - t0))
                except AssertionError as e:
                    tally.fail(name, str(e) or traceback.format_exc(limit=-1))
                except Exception as e:
                    tally.fail(name, "%s: %s\n%s" % (type(e).__name__, e,
                                                     traceback.format_exc(limit=-2)))
                finally:
                    signal.alarm(0)
                report_dead_workers(harness, reported)
    finally:
        for stack, findings in harness.close_all().items():
            if findings:
                tally.fail("sanitizers " + stack, "\n".join(findings[:20]))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(REPO / "build" / "debug"),
                    help="the build directory (default build/debug)")
    ap.add_argument("-k", dest="pattern", default="", help="only tests whose name contains this")
    ap.add_argument("--only", choices=("unit", "sql", "integration"))
    ap.add_argument("--accept-sql", action="store_true",
                    help="overwrite tests/sql/expected with the actual output (review the diff!)")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    os.environ["TOLLGATE_BUILD"] = str(build)
    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    os.environ.pop("ANTHROPIC_API_KEY", None)  # tests talk to the mock only
    if os.geteuid() == 0:
        sys.exit("tests/run.py: do not run as root (PostgreSQL refuses it); use scripts/test")
    # SIGTERM (CI's timeout, kill) unwinds like Ctrl-C, so every stack is stopped.
    signal.signal(signal.SIGTERM, _interrupt)

    tally = Tally(args.pattern)
    suites = {"unit": lambda: (run_unit(build, tally), run_checks(build, tally)), "sql": lambda: run_sql(build, tally, args.accept_sql),
              "integration": lambda: run_integration(tally)}
    try:
        for name, suite in suites.items():
            if args.only in (None, name):
                print("# %s" % name, flush=True)
                try:
                    suite()
                except Exception as e:
                    tally.fail(name, "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()))
    except KeyboardInterrupt:
        tally.fail("interrupted", "stopped by a signal")
    print("%d passed, %d failed" % (tally.passed, tally.failed), flush=True)
    sys.exit(1 if tally.failed or not tally.passed else 0)


if __name__ == "__main__":
    main()
