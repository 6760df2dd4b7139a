"""scripts/bench end to end (issue 9): `scripts/bench --help` documents its
flags, and the bench driver's quick mode, on the build under test, runs every
run (plain proxy, FastCGI ceiling, Tollgate, OpenAI -> Anthropic translation
(issue 10), c=1, hot group, 100 groups, 2 KB and 100 KB prompts with the
shipped guardrails off and on (issue 11), the reports) against a durable
PostgreSQL and prints the durability line, the c=1 added latency, the targets,
the translation line, the guardrails engine's figures (CPU per scan, the ReDoS
worst) and their cost on the stack, the response cache's store (shared memory vs
an unlogged table, tests/bench/cache-bench) and, before the last line, the
ceiling ratios.
Timing values are not asserted: they flake."""

import re
import subprocess
import sys

import harness

BENCH = harness.REPO / "tests" / "bench" / "bench.py"
NUMBER = r"(\d+\.\d+)"


def test_bench_quick():
    help_text = subprocess.run(["/bin/bash", harness.REPO / "scripts" / "bench", "--help"],
                               capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    for flag in ("--quick", "--duration", "--latency-duration", "--connections", "--processes",
                 "--threads", "--report-rows", "--reports-only", "--build"):
        assert flag in help_text.stdout, "scripts/bench --help lacks %s:\n%s" % (
            flag, help_text.stdout)

    # scripts/bench builds build/release first; the driver runs the build under test
    p = subprocess.run([sys.executable, BENCH, "--build", harness.build_dir(), "--quick"],
                       capture_output=True, text=True, timeout=240, env=harness.base_env(),
                       stdin=subprocess.DEVNULL)
    out = p.stdout
    assert p.returncode == 0, "bench --quick exited %d:\n%s\n%s" % (
        p.returncode, out[-3000:], p.stderr[-3000:])
    assert re.search(r"^durability: PostgreSQL fsync = on, synchronous_commit = on, "
                     r"full_page_writes = on \(.*\).* part of what is measured$", out, re.M), out
    for run in ("plain proxy", "ceiling (lighttpd -> fcgi-fixed)",
                "forwarding ceiling (lighttpd -> fcgi-fixed -u -> upstream)", "tollgate, no quotas",
                "tollgate, OpenAI -> Anthropic translation (lighttpd -> fcgi)",
                "c=1 upstream alone", "c=1 tollgate", "one hot group", "100 groups",
                "tollgate, 2 KB prompt, guardrails off", "tollgate, 100 KB prompt, guardrails off",
                "tollgate, 2 KB prompt, guardrails on (shipped rules)",
                "tollgate, 100 KB prompt, guardrails on (shipped rules)"):
        assert re.search(r"^.*%s.* req/s .*p50 .*p99 " % re.escape(run), out, re.M), (run, out)
    assert re.search(r"^forwarding ceiling / ceiling: %s .*; tollgate no quotas / forwarding "
                     r"ceiling: %s$" % (NUMBER, NUMBER), out, re.M), out
    assert re.search(r"^translation: openai->anthropic / same-dialect requests/s %s, worker CPU "
                     r"[+-]\d+ us per request$" % NUMBER, out, re.M), out
    assert re.search(r"^guardrails engine \(tests/bench/guard-bench: .*\): \d+ shipped rules ",
                     out, re.M), out
    assert re.search(r"^guardrails on: a second stack with the shipped rules .* refused 400$", out,
                     re.M), out
    engine = re.search(r"^guardrails: shipped rules, 2 KB prompt (\d+) us, 100 KB prompt (\d+) us "
                       r"per request \(engine\); ReDoS worst: (\w+) (\d+) ms on a 1 MB prompt "
                       r"\(all \d+ rules together \d+ ms\)$", out, re.M)
    assert engine, out
    # the ReDoS bound (test_guard asserts it too): a 1 MB prompt never takes seconds
    assert int(engine.group(4)) < 2000, engine.group(0)
    assert re.search(r"^guardrail cost: [+-]\d+ us worker CPU per request \(2 KB\), [+-]\d+ us "
                     r"\(100 KB\); requests/s on / off %s \(2 KB\), %s \(100 KB\) " % (NUMBER, NUMBER),
                     out, re.M), out
    for size in ("2 KB", "32 KB"):
        assert re.search(r"^response cache store \(tests/bench/cache-bench, %s entries, mean / "
                         r"p99 us\): shared memory hit [\d.]+ / [\d.]+, store .*; unlogged table "
                         r"hit \d+ / \d+, store \d+ / \d+; 4 threads, ops/s: .*$" % size, out,
                         re.M), (size, out)
    cache = re.search(r"^response cache: shared memory hit %s us, store %s us; unlogged table hit "
                      r"%s us, store %s us \(2 KB\)$" % ((r"(\d+\.\d)",) * 4), out, re.M)
    assert cache, out
    assert float(cache.group(3)) > 0 and float(cache.group(4)) > 0, cache.group(0)  # round trips
    assert re.search(r"^c=1 added latency: p50 -?%s ms, p99 -?%s ms$" % (NUMBER, NUMBER), out,
                     re.M), out
    for label in ("no quotas / ceiling", "PostgreSQL CPU per request, no quotas",
                  "worker CPU per request, 9 rows, 100 groups", "c=1 p99 added"):
        assert re.search(r"^  %s.* target [<>]= .*\b(met|not met)$" % re.escape(label), out,
                         re.M), (label, out)
    lines = out.rstrip("\n").splitlines()
    ceiling = re.fullmatch(r"ceiling ratios: no-quotas %s, spread %s, hot/spread %s"
                           % (NUMBER, NUMBER, NUMBER), lines[-2])
    assert ceiling, "the line before the last is not the ceiling ratios:\n%s" % "\n".join(
        lines[-5:])
    assert all(float(x) > 0 for x in ceiling.groups()), lines[-2]
    assert lines[-1].startswith("ratio tollgate/proxy: requests/s "), lines[-1]
