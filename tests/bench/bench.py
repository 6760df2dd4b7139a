#!/usr/bin/python3
"""scripts/bench's driver: wrk against /v1/messages through the real stack and
against what bounds it, and against /v1/chat/completions translated to the
Anthropic Messages API, in one run, everything on 127.0.0.1.

    bench.py --build build/release [--duration 10] [--connections 32] [--quick]

Runs, in order (each bounded by --duration, or --latency-duration for c=1):
  plain proxy    nginx reverse proxy -> the static nginx upstream
  ceiling        lighttpd -> FastCGI -> tests/bench/fcgi-fixed (a fixed reply; no
                 database, no upstream), same lighttpd config, same socket setup
                 and the same spawn-fcgi P processes x T threads as Tollgate
  forwarding     the same, with fcgi-fixed -u: each request POSTed with libcurl to
                 the static upstream and its reply relayed (no database, no
                 parsing): the bound of any design built as a FastCGI worker
                 that forwards through libcurl
  tollgate       lighttpd -> tollgate-fcgi -> the static upstream, no quotas
  translation    the same key and load, but an OpenAI chat body POSTed to
                 /v1/chat/completions (Authorization: Bearer): translated to the
                 Anthropic Messages API, sent to the same upstream, its reply
                 translated back to a chat.completion (issue 10)
  c=1            one connection: the upstream alone, then Tollgate (added latency)
  hot / spread   9 quota rows per request (key, user, group x usd, tokens,
                 requests): every request on one hot group, then 100 groups
  guardrails     a benign 2 KB and a benign 100 KB prompt (tests/bench/guard-bench
                 -p), on this stack (guardrails off), then on a second stack alike
                 but for "guardrails": {"rules_file": conf/guardrails.json} (at
                 most GUARD_DURATION s per run): the shipped rules' added CPU
then the chargeback reports.  Before the load, tests/bench/cache-bench measures the
response cache's store, the host's shared memory (fcgi/cache.h) against an
UNLOGGED table on the stack's (durable) PostgreSQL: store and hit latency, 2 KB
and 32 KB entries, 1 and 4 threads.  Before any stack starts, tests/bench/guard-bench
measures the guardrails engine alone: CPU per scan of those two prompts with the
shipped rules, and each rule alone (then the whole set) against 1 MB adversarial
prompts (the ReDoS bound).  PostgreSQL runs durable (fsync, synchronous_commit
and full_page_writes on): commit flushes are part of what is measured.

Prints requests/s, p50 and p99 and the CPU per request of each component per
run, the issue 9 targets with "met"/"not met", the translation line
(`translation: openai->anthropic / same-dialect requests/s ..., worker CPU +N us
per request`), the guardrails lines (`guardrails: shipped rules, 2 KB prompt N
us, 100 KB prompt M us per request (engine); ReDoS worst: RULE T ms on a 1 MB
prompt ...` and `guardrail cost: +N us worker CPU per request (2 KB), +M us
(100 KB); ...`), the response cache line (`response cache: shared memory hit X
us, store Y us; unlogged table hit X us, store Y us (2 KB)`), then `ceiling ratios: ...` and, as the last line, the ratio
against the plain proxy.
"""

import argparse
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness  # noqa: E402  (reads TOLLGATE_BUILD when a stack starts, not at import)

# What the static upstream answers, and what fcgi-fixed answers: a real Messages reply.
REPLY = ('{"id":"msg_bench","type":"message","role":"assistant","model":"claude-haiku-4-5",'
         '"content":[{"type":"text","text":"Hello from the bench upstream."}],'
         '"stop_reason":"end_turn","stop_sequence":null,'
         '"usage":{"input_tokens":12,"cache_creation_input_tokens":0,'
         '"cache_read_input_tokens":0,"output_tokens":8}}')
BODY = ('{"model":"claude-haiku-4-5","max_tokens":64,'
        '"messages":[{"role":"user","content":"Say hello."}]}')
# The same request in the OpenAI dialect, for POST /v1/chat/completions.
CHAT_BODY = BODY
REPLY_TEXT = json.loads(REPLY)["content"][0]["text"]  # a chat.completion's message content

# Seconds per run: the defaults, and --quick's (a smoke run a test can afford).
FULL = {"duration": 10, "latency_duration": 5, "warmup": 2, "report_rows": 1000000}
QUICK = {"duration": 2, "latency_duration": 2, "warmup": 1, "report_rows": 10000}

# Issue 9's targets: (label, figure key, "<=" or ">=", limit, unit).
TARGETS = [
    ("no quotas / ceiling (req/s)", "tg_ceiling", ">=", 0.5, "x"),
    ("9 rows over 100 groups / ceiling (req/s)", "spread_ceiling", ">=", 0.35, "x"),
    ("hot group / 100 groups (req/s)", "hot_spread", ">=", 0.8, "x"),
    ("PostgreSQL CPU per request, no quotas", "pg_tg", "<=", 150, "us"),
    ("PostgreSQL CPU per request, 9 rows, 100 groups", "pg_spread", "<=", 300, "us"),
    ("PostgreSQL CPU per request, 9 rows, hot group", "pg_hot", "<=", 300, "us"),
    ("worker CPU per request, no quotas", "worker_tg", "<=", 100, "us"),
    ("worker CPU per request, 9 rows, 100 groups", "worker_spread", "<=", 100, "us"),
    ("worker CPU per request, 9 rows, hot group", "worker_hot", "<=", 100, "us"),
    ("c=1 p50 added over the upstream alone", "c1_p50", "<=", 0.5, "ms"),
    ("c=1 p99 added over the upstream alone", "c1_p99", "<=", 1.5, "ms"),
]


def say(text=""):
    print(text, flush=True)


# ---- the stacks ---------------------------------------------------------------

class DurablePostgres(harness.Postgres):
    """The harness's throwaway cluster (unix socket only), but durable: the test
    clusters turn fsync, synchronous_commit and full_page_writes off; the bench
    turns them on, so every commit waits for its WAL flush as in production."""

    SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")
    STATEMENTS = False  # --statements: load pg_stat_statements

    def start(self):
        extra = ["-c", "shared_preload_libraries=pg_stat_statements",
                 "-c", "pg_stat_statements.track=all"] if self.STATEMENTS else []
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [harness.PGBIN / "postgres", "-D", self.data, "-k", self.dir, "-p", str(self.port),
                 "-c", "listen_addresses="] + [a for s in self.SETTINGS for a in ("-c", s + "=on")]
                + extra,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited %d: %s" % (self.proc.returncode,
                                                               harness.tail(self.log)))
            return subprocess.run([harness.PGBIN / "pg_isready", "-q", "-h", self.dir, "-p",
                                   str(self.port)], stdin=subprocess.DEVNULL).returncode == 0
        harness.wait_for(ready, 30, "postgres to accept connections")


class CeilingStack(harness.Stack):
    """lighttpd from conf/lighttpd.conf on a unix socket, as the harness starts it
    for Tollgate, and spawn-fcgi's P processes of fcgi-fixed with T threads each
    (-t T) on that socket: the FastCGI path with a worker that does nothing."""

    def __init__(self, reply_file, upstream_url=None, **opts):
        super().__init__(**opts)
        self.reply_file = reply_file
        self.upstream_url = upstream_url

    def _start(self):
        self.dir = Path(tempfile.mkdtemp(prefix="tollgate-ceiling-"))
        self.config = self.dir / "none.json"  # fcgi-fixed reads no config
        self.log_file = self.dir / "fcgi-fixed.log"
        self.stderr_file = self.dir / "worker.stderr"
        self.frontend_log = self.dir / ("%s.log" % self.frontend)
        self.socket = self.dir / "tollgate.sock"
        self._start_workers()
        self._start_frontend()
        harness.wait_for(lambda: self._health_status() == 200, 30, "the ceiling to answer 200")

    def _start_workers(self):
        pidfile = self.dir / "fcgi-fixed.pid"
        worker = [harness.build_dir() / "tests" / "bench" / "fcgi-fixed", "-t", str(self.threads)]
        worker += ["-u", self.upstream_url] if self.upstream_url else ["-f", self.reply_file]
        # as the harness does for tollgate-fcgi: keep the workers' stderr
        wrapper = ["/bin/sh", "-c", 'exec "$0" "$@" 2>>%s' % shlex.quote(str(self.stderr_file))]
        with open(self.dir / "spawn-fcgi.out", "wb") as f:
            p = subprocess.run([str(c) for c in ["spawn-fcgi", "-s", self.socket,
                                                 "-F", str(self.processes), "-P", pidfile,
                                                 "--", *wrapper, *worker]],
                               stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                               env=harness.base_env(), timeout=30)
        if pidfile.exists():
            self.worker_pids = [int(x) for x in pidfile.read_text().split()]
        if p.returncode != 0 or len(self.worker_pids) != self.processes:
            raise RuntimeError("spawn-fcgi (fcgi-fixed) failed: %s %s" % (
                harness.tail(self.dir / "spawn-fcgi.out"), harness.tail(self.stderr_file)))


def nginx_conf(workdir, port, locations, upstream_port):
    return """
worker_processes 1;
pid %(dir)s/nginx-%(port)d.pid;
error_log %(dir)s/nginx-%(port)d.err warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    upstream bench_upstream { server 127.0.0.1:%(upstream)d; keepalive 64; }
    server {
        listen 127.0.0.1:%(port)d;
        keepalive_requests 1000000;
        %(locations)s
    }
}
""" % {"dir": workdir, "port": port, "upstream": upstream_port or 1, "locations": locations}


def start_nginx(workdir, port, locations, upstream_port=None):
    conf = Path(workdir) / ("nginx-%d.conf" % port)
    conf.write_text(nginx_conf(workdir, port, locations, upstream_port))
    return subprocess.Popen(["nginx", "-e", "%s/nginx-%d.err" % (workdir, port), "-p", workdir,
                             "-c", str(conf), "-g", "daemon off;"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def port_open(port):
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def post_once(port, body=BODY):
    """(status, body) of one POST /v1/messages, no key."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/messages", body, {"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# ---- load and measurement ---------------------------------------------------

def wrk(url, keys, duration, connections, workdir, openai=False, body=None):
    """wrk POSTing body (default BODY; openai: CHAT_BODY, the key as
    "Authorization: Bearer"); each request uses a random key of keys (one key:
    always it)."""
    if isinstance(keys, str):
        keys = [keys]
    if openai:
        headers = '["authorization"] = "Bearer " .. keys[math.random(#keys)]'
    else:
        headers = ('["anthropic-version"] = "2023-06-01",\n'
                   '             ["x-api-key"] = keys[math.random(#keys)]')
    script = Path(workdir) / ("chat.lua" if openai else "post.lua")
    script.write_text(
        'local keys = {%s}\n'
        'local body = [[%s]]\n'
        'request = function()\n'
        '  local h = {["content-type"] = "application/json",\n'
        '             %s}\n'
        '  return wrk.format("POST", nil, h, body)\n'
        'end\n' % (", ".join('"%s"' % k for k in keys),
                    body or (CHAT_BODY if openai else BODY), headers))
    out = subprocess.run(["wrk", "-t%d" % min(2, connections), "-c%d" % connections,
                          "-d%ds" % duration, "--timeout", "10s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total:
        raise RuntimeError("wrk printed no figures for %s:\n%s" % (url, out[-2000:]))
    lat = {p: to_ms(v, u) for p, v, u in
           re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": float(rps.group(1)), "requests": int(total.group(1)),
            "p50": lat.get("50"), "p99": lat.get("99"),
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else "", "raw": out}


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def process_table():
    """{pid: (ppid, CPU seconds)} of every visible process; the CPU is user +
    system, its own and that of the children it has reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc/%s/stat" % entry).read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / ticks)
    return table


def tree_cpu(roots, table):
    """CPU seconds of roots and all their descendants.  A child that exits and is
    reaped moves its time into its parent's, so the sum over a tree only grows."""
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [p for p in roots if p in table]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return sum(table[p][1] for p in seen)


class CpuMeter:
    """CPU per request of named process trees (only this run's processes: other
    work on the machine is not counted)."""

    def __init__(self, groups):
        self.groups = groups  # {name: [root pids]}
        self.before = None

    def start(self):
        table = process_table()
        self.before = {name: tree_cpu(pids, table) for name, pids in self.groups.items()}

    def per_request(self, requests):
        table = process_table()
        return {name: (tree_cpu(pids, table) - self.before[name]) * 1e6 / max(requests, 1)
                for name, pids in self.groups.items()}


STATEMENTS_STACK = None  # --statements: the stack whose database is profiled


def top_statements(stack, requests):
    """The statements PostgreSQL spent most time on in the last run, per request."""
    rows = stack.psql(
        "select round(total_exec_time::numeric * 1000 / %d), calls, "
        "round(mean_exec_time::numeric * 1000), "
        "regexp_replace(left(query, 70), '\\s+', ' ', 'g') from pg_stat_statements "
        "order by total_exec_time desc limit 6" % max(requests, 1))
    for per_request, calls, mean, query in rows:
        say("    %6s us/request  %7s calls  %6s us each  %s" % (per_request, calls, mean, query))


def measure(name, url, keys, duration, connections, workdir, meter=None, openai=False,
            body=None):
    """One wrk run; prints its line and, with a meter, the CPU per request."""
    if meter:
        meter.start()
    if STATEMENTS_STACK is not None:
        STATEMENTS_STACK.psql("select pg_stat_statements_reset()")
    r = wrk(url, keys, duration, connections, workdir, openai, body)
    r["cpu"] = meter.per_request(r["requests"]) if meter else {}
    say("%-40s %9.0f req/s   p50 %7.2f ms   p99 %7.2f ms%s%s" % (
        name, r["rps"], r["p50"], r["p99"],
        ("   NON-2xx: %d" % r["non2xx"]) if r["non2xx"] else "",
        ("   " + r["socket_errors"]) if r["socket_errors"] else ""))
    if r["cpu"]:
        say("    CPU per request: " + ", ".join("%s %.0f us" % kv for kv in r["cpu"].items()))
    if STATEMENTS_STACK is not None and meter:
        top_statements(STATEMENTS_STACK, r["requests"])
    return r


# ---- the runs -------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="wrk against /v1/messages through lighttpd -> Tollgate -> a static nginx "
        "upstream (and against /v1/chat/completions, translated from OpenAI to Anthropic; and "
        "with 2 KB and 100 KB prompts, the shipped guardrails off and on), "
        "against a plain nginx proxy of that upstream and against the FastCGI "
        "ceiling (lighttpd -> FastCGI -> a fixed reply), in one run on 127.0.0.1, with "
        "PostgreSQL durable (fsync and synchronous_commit on); then the chargeback reports. "
        "With the defaults it takes about 3 minutes.",
        epilog="The last line is the ratio against the plain proxy; the line before it, "
        "`ceiling ratios: ...`; a few lines above them, `translation: openai->anthropic / "
        "same-dialect ...`, `guardrails: shipped rules ... (engine); ReDoS worst: ...` "
        "(tests/bench/guard-bench, the engine alone) and `guardrail cost: ...` (the stack).")
    ap.add_argument("--build", default=str(REPO / "build" / "release"),
                    help="the build to run (default build/release; scripts/bench builds it)")
    ap.add_argument("--duration", type=int, metavar="S",
                    help="seconds per load run (default %d; --quick: %d)"
                    % (FULL["duration"], QUICK["duration"]))
    ap.add_argument("--latency-duration", type=int, metavar="S",
                    help="seconds per concurrency-1 run (default %d; --quick: %d)"
                    % (FULL["latency_duration"], QUICK["latency_duration"]))
    ap.add_argument("--connections", type=int, default=32, metavar="N",
                    help="wrk connections of the load runs (default 32)")
    ap.add_argument("--processes", type=int, default=2, metavar="P",
                    help="spawn-fcgi worker processes, Tollgate's and the ceiling's (default 2)")
    ap.add_argument("--threads", type=int, default=8, metavar="T",
                    help="threads per worker process, Tollgate's and the ceiling's (default 8)")
    ap.add_argument("--report-rows", type=int, metavar="N",
                    help="usage rows of the report benchmark (default %d; --quick: %d)"
                    % (FULL["report_rows"], QUICK["report_rows"]))
    ap.add_argument("--reports-only", action="store_true",
                    help="only the report benchmark")
    ap.add_argument("--otel-only", action="store_true",
                    help="only the span export's cost: Tollgate without otel, then with every "
                    "request traced to a dead collector (port closed), then to one that hangs")
    ap.add_argument("--statements", action="store_true",
                    help="load pg_stat_statements and print, after each Tollgate run, the "
                    "statements PostgreSQL spent most time on (server-side time per request)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: %d s per load run, %d s per c=1 run, %d report rows "
                    "(figures too short to trust; tests/integration/test_bench.py runs it)"
                    % (QUICK["duration"], QUICK["latency_duration"], QUICK["report_rows"]))
    args = ap.parse_args()
    base = QUICK if args.quick else FULL
    for name in ("duration", "latency_duration", "report_rows"):
        if getattr(args, name) is None:
            setattr(args, name, base[name])
    args.warmup = base["warmup"]
    for name in ("duration", "latency_duration", "connections", "processes", "threads"):
        if getattr(args, name) < 1:
            ap.error("--%s must be at least 1" % name.replace("_", "-"))
    return args


def durability(stack):
    """Checks that the cluster is durable for the worker's role and database, and
    says so."""
    rows = dict(stack.psql("select name, setting from pg_settings where name in "
                           "('fsync', 'synchronous_commit', 'full_page_writes', "
                           "'wal_sync_method') order by name"))
    off = [s for s in DurablePostgres.SETTINGS if rows.get(s) != "on"]
    if off:
        raise RuntimeError("PostgreSQL is not durable: %s" % rows)
    data = str(stack.db.data.resolve())
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    fs = max((m for m in mounts if data == m[1] or data.startswith(m[1].rstrip("/") + "/")),
             key=lambda m: len(m[1]), default=["?", "?", "?"])[2]
    say("durability: PostgreSQL fsync = on, synchronous_commit = on, full_page_writes = on "
        "(wal_sync_method %s, data on %s): every commit waits for its WAL flush, and that "
        "is part of what is measured" % (rows.get("wal_sync_method"), fs))


def ceiling_run(args, workdir, upstream=None):
    """The FastCGI ceiling: started, checked, measured and stopped. With upstream
    (url, nginx process), the forwarding ceiling: fcgi-fixed relays that upstream."""
    reply_file = Path(workdir) / "reply.json"
    reply_file.write_text(REPLY)
    with CeilingStack(reply_file, upstream_url=upstream and upstream[0],
                      processes=args.processes, threads=args.threads,
                      tag="ceiling") as ceiling:
        status, body = post_once(ceiling.port)
        assert status == 200 and body == REPLY.encode(), (status, body[:200])
        status, body = post_once(ceiling.port, "x" * ((1 << 20) + 1))  # over its body cap
        assert status == 413 and b"request_too_large" in body, (status, body[:200])
        url = "http://127.0.0.1:%d/v1/messages" % ceiling.port
        wrk(url, "none", args.warmup, args.connections, workdir)
        pids = {"worker": ceiling.worker_pids, "lighttpd": [ceiling.frontend_proc.pid]}
        if upstream:
            pids["upstream nginx"] = [upstream[1].pid]
        label = ("forwarding ceiling (lighttpd -> fcgi-fixed -u -> upstream)" if upstream
                 else "ceiling (lighttpd -> fcgi-fixed)")
        r = measure(label, url, "none", args.duration, args.connections, workdir,
                    CpuMeter(pids))
    if ceiling.sanitizer_findings:
        raise RuntimeError("fcgi-fixed: %s" % "\n".join(ceiling.sanitizer_findings[:10]))
    return r


def limits(kind, subject):
    """tollgatectl arguments of quotas that never deny during the run but are all
    checked and updated: usd, tokens and requests on one subject."""
    return [("quota", "set", "--" + kind, subject, "--metric", metric, "--window", window,
             "--limit", limit)
            for metric, window, limit in (("usd", "month", "1000000.00"),
                                          ("tokens", "day", "10000000000"),
                                          ("requests", "minute", "100000000"))]


def enforced_runs(stack, url, args, workdir, meter):
    """The same load with quotas on key, user and group: all on one hot group, then
    spread over 100 groups (one key each)."""
    t0 = time.monotonic()
    # four tollgatectl runs at a time: their commits' WAL flushes overlap
    with ThreadPoolExecutor(4) as pool:
        hot_keys = [stack.key(group="hot", user="hot-user-%d" % i, name="hot-%d" % i)
                    for i in range(8)]  # one group: created one after the other
        spread_keys = list(pool.map(
            lambda i: stack.key(group="team-%03d" % i, user="user-%03d" % i,
                                name="spread-%d" % i), range(100)))
        commands = limits("group", "hot")
        for i in range(8):
            commands += limits("user", "hot-user-%d" % i) + limits("key", hot_keys[i][:11])
        for i in range(100):
            commands += (limits("group", "team-%03d" % i) + limits("user", "user-%03d" % i)
                         + limits("key", spread_keys[i][:11]))
        list(pool.map(lambda command: stack.ctl(*command), commands))
    say("quotas: %d keys and %s quota rows set up with tollgatectl in %.0f s" % (
        len(hot_keys) + len(spread_keys),
        stack.psql("select count(*) from tollgate.quotas")[0][0], time.monotonic() - t0))
    wrk(url, hot_keys, args.warmup, args.connections, workdir)
    hot = measure("tollgate, 9 quota rows, one hot group", url, hot_keys, args.duration,
                  args.connections, workdir, meter)
    spread = measure("tollgate, 9 quota rows, 100 groups", url, spread_keys, args.duration,
                     args.connections, workdir, meter)
    return hot, spread


def latency_runs(url_upstream, url_tg, key, args, workdir):
    """Concurrency 1: the upstream alone, then the same through Tollgate."""
    up = measure("c=1 upstream alone (nginx static)", url_upstream, key, args.latency_duration,
                 1, workdir)
    tg = measure("c=1 tollgate, no quotas", url_tg, key, args.latency_duration, 1, workdir)
    added = {"p50": tg["p50"] - up["p50"], "p99": tg["p99"] - up["p99"]}
    say("c=1 added latency: p50 %.2f ms, p99 %.2f ms" % (added["p50"], added["p99"]))
    return added, up, tg


def print_targets(figures):
    say("issue 9 targets (figures from a shared 2-core machine: noisy):")
    for label, key, op, limit, unit in TARGETS:
        value = figures[key]
        met = value >= limit if op == ">=" else value <= limit
        suffix = "x" if unit == "x" else " " + unit
        shown = ("%.0f" if unit == "us" else "%.2f") % value + suffix
        bound = "%g%s" % (limit, suffix)
        say("  %-48s %10s   target %s %-8s %s" % (label, shown, op, bound,
                                                  "met" if met else "not met"))


def main():
    args = parse_args()
    os.environ["TOLLGATE_BUILD"] = str(Path(args.build).resolve())
    harness.Postgres = DurablePostgres  # the Stack's cluster: durable
    DurablePostgres.STATEMENTS = args.statements
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="tollgate-bench-")
    procs = []
    try:
        engine = None if args.reports_only or args.otel_only else guard_engine()
        upstream_port, proxy_port = harness.free_port(), harness.free_port()
        reply = REPLY.replace("'", "\\'")
        upstream = start_nginx(workdir, upstream_port,
                               "location / { default_type application/json; "
                               "return 200 '%s'; }" % reply)
        procs.append(upstream)
        proxy = start_nginx(workdir, proxy_port,
                            "location / { proxy_pass http://bench_upstream; "
                            "proxy_http_version 1.1; proxy_set_header Connection \"\"; }",
                            upstream_port=upstream_port)
        procs.append(proxy)
        harness.wait_for(lambda: all(port_open(p) for p in (upstream_port, proxy_port)), 15,
                         "nginx to listen")
        if args.otel_only:
            return otel_runs(args, workdir, upstream, upstream_port)
        extra = {}
        if args.reports_only:  # the admin API too, for its report endpoints
            os.environ.setdefault("TOLLGATE_ADMIN_KEY", "tg-admin-bench-" + os.urandom(12).hex())
            extra = {"admin": {"keys": ["$TOLLGATE_ADMIN_KEY"]}}
        with harness.Stack(processes=args.processes, threads=args.threads,
                           provider_url="http://127.0.0.1:%d" % upstream_port,
                           tag="bench", extra_config=extra) as stack:
            if args.statements:
                global STATEMENTS_STACK
                stack.psql("create extension if not exists pg_stat_statements")
                STATEMENTS_STACK = stack
            if args.reports_only:
                return report_runs(stack, args.report_rows)
            cache = cache_store_bench(stack, args)
            rc, figures, ratios = load_runs(stack, args, workdir, upstream, proxy,
                                            upstream_port, proxy_port)
            if rc != 0:
                return rc
            if report_runs(stack, args.report_rows) != 0:
                return 1
        if stack.sanitizer_findings:
            say("sanitizer reports: %s" % "\n".join(stack.sanitizer_findings[:10]))
            return 1
        print_targets(figures)
        say("bench took %.0f s" % (time.monotonic() - t_start))
        tg, hot, spread, ceiling, plain, chat, guard = ratios
        say("enforcement: hot group / no quotas: requests/s %.2f; spread / no quotas %.2f; "
            "hot / spread %.2f" % (hot["rps"] / tg["rps"], spread["rps"] / tg["rps"],
                                   hot["rps"] / spread["rps"]))
        say("translation: openai->anthropic / same-dialect requests/s %.2f, worker CPU "
            "%+.0f us per request" % (chat["rps"] / tg["rps"],
                                      chat["cpu"]["worker"] - tg["cpu"]["worker"]))
        say("guardrails: shipped rules, 2 KB prompt %.0f us, 100 KB prompt %.0f us per request "
            "(engine); ReDoS worst: %s %.0f ms on a 1 MB prompt (all %d rules together %.0f ms)"
            % (engine["us_2k"], engine["us_100k"], engine["worst_rule"], engine["worst_ms"],
               engine["rules"], engine["set_ms"]))
        cost = {label: on["cpu"]["worker"] - off["cpu"]["worker"]
                for label, (off, on) in guard.items()}
        speed = {label: on["rps"] / off["rps"] for label, (off, on) in guard.items()}
        say("guardrail cost: %+.0f us worker CPU per request (2 KB), %+.0f us (100 KB); "
            "requests/s on / off %.2f (2 KB), %.2f (100 KB) (stack: the shipped rules on vs off, "
            "same prompts)" % (cost["2 KB"], cost["100 KB"], speed["2 KB"], speed["100 KB"]))
        say("response cache: shared memory hit %.1f us, store %.1f us; unlogged table hit %.1f "
            "us, store %.1f us (2 KB)" % (cache[("shm", "hit", 2048, 1)]["mean"],
                                          cache[("shm", "store", 2048, 1)]["mean"],
                                          cache[("table", "hit", 2048, 1)]["mean"],
                                          cache[("table", "store", 2048, 1)]["mean"]))
        say("forwarding ceiling / ceiling: %.2f (what forwarding alone leaves of the "
            "ceiling); tollgate no quotas / forwarding ceiling: %.2f" % (
                figures["forwarding_ceiling"], figures["tg_forwarding"]))
        say("ceiling ratios: no-quotas %.2f, spread %.2f, hot/spread %.2f" % (
            figures["tg_ceiling"], figures["spread_ceiling"], figures["hot_spread"]))
        say("ratio tollgate/proxy: requests/s %.2f (enforced, hot group %.2f), "
            "p50 %.2fx, p99 %.2fx" % (tg["rps"] / plain["rps"], hot["rps"] / plain["rps"],
                                      tg["p50"] / plain["p50"], tg["p99"] / plain["p99"]))
        return 0
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def load_runs(stack, args, workdir, upstream, proxy, upstream_port, proxy_port):
    """Every wrk run; (exit status, the targets' figures, the runs for the ratios)."""
    durability(stack)
    key = stack.key(group="bench", user="bench", name="bench")
    status, _, body = stack.messages(key)
    assert status == 200, (status, body[:200])
    load = (6 * args.warmup + 7 * args.duration + 4 * min(args.duration, GUARD_DURATION)
            + 2 * args.latency_duration)
    say("wrk: %d connections, %d s per run (c=1 runs: %d s), %d worker processes x %d threads; "
        "about %d s of load in all; 2 cores shared by everything (and by any other work on "
        "the machine, so figures are noisy)" % (args.connections, args.duration,
                                                args.latency_duration, args.processes,
                                                args.threads, load))
    url_proxy = "http://127.0.0.1:%d/v1/messages" % proxy_port
    url_upstream = "http://127.0.0.1:%d/v1/messages" % upstream_port
    url_tg = "http://127.0.0.1:%d/v1/messages" % stack.port
    upstream_cpu = {"upstream nginx": [upstream.pid]}
    plain = measure("plain proxy (nginx -> upstream)", url_proxy, key, args.duration,
                    args.connections, workdir,
                    CpuMeter(dict(upstream_cpu, **{"proxy nginx": [proxy.pid]})))
    ceiling = ceiling_run(args, workdir)
    forwarding = ceiling_run(args, workdir, (url_upstream, upstream))
    meter = CpuMeter(dict(upstream_cpu, postgres=[stack.db.proc.pid], worker=stack.worker_pids,
                          lighttpd=[stack.frontend_proc.pid]))
    wrk(url_tg, key, args.warmup, args.connections, workdir)  # warm-up: pools, keep-alive
    tg = measure("tollgate, no quotas (lighttpd -> fcgi)", url_tg, key, args.duration,
                 args.connections, workdir, meter)
    chat = translation_run(stack, key, args, workdir, meter)
    added, up1, tg1 = latency_runs(url_upstream, url_tg, key, args, workdir)
    hot, spread = enforced_runs(stack, url_tg, args, workdir, meter)
    guard = guard_runs(stack, key, args, workdir, upstream, upstream_port)
    # requests still in flight when wrk stopped settle within moments: wait for them (bounded)
    deadline = time.time() + 15
    while time.time() < deadline and stack.psql(
            "select count(*) from tollgate.reservations")[0][0] != "0":
        time.sleep(0.2)
    rows = stack.psql("select count(*) from tollgate.usage")[0][0]
    left = stack.psql("select count(*), coalesce(sum(reserved), 0) from tollgate.quotas")[0]
    say("usage rows written: %s; quota rows %s, reserved after the runs: %s"
        % (rows, left[0], left[1]))
    bad = sum(r["non2xx"] for r in (plain, ceiling, forwarding, tg, chat, up1, tg1, hot,
                                    spread) + sum(guard.values(), ()))
    if bad:
        say("non-2xx responses: %d" % bad)
        return 1, None, None
    figures = {"tg_ceiling": tg["rps"] / ceiling["rps"],
               "spread_ceiling": spread["rps"] / ceiling["rps"],
               "hot_spread": hot["rps"] / spread["rps"],
               "c1_p50": added["p50"], "c1_p99": added["p99"],
               "forwarding_ceiling": forwarding["rps"] / ceiling["rps"],
               "tg_forwarding": tg["rps"] / forwarding["rps"]}
    for run, r in (("tg", tg), ("spread", spread), ("hot", hot)):
        figures["pg_" + run] = r["cpu"]["postgres"]
        figures["worker_" + run] = r["cpu"]["worker"]
    return 0, figures, (tg, hot, spread, ceiling, plain, chat, guard)


def translation_run(stack, key, args, workdir, meter):
    """The no-quotas load in the OpenAI dialect: CHAT_BODY POSTed to
    /v1/chat/completions with the key as a bearer token, translated to the Anthropic
    Messages API and back (issue 10).  Checked once first: a 200 chat.completion
    carrying the static upstream's text."""
    status, _, body = stack.request("POST", "/v1/chat/completions", CHAT_BODY,
                                    {"content-type": "application/json",
                                     "authorization": "Bearer " + key})
    assert status == 200, (status, body[:200])
    reply = json.loads(body)
    assert reply.get("object") == "chat.completion", body[:400]
    assert reply["choices"][0]["message"]["content"] == REPLY_TEXT, body[:400]
    url = "http://127.0.0.1:%d/v1/chat/completions" % stack.port
    return measure("tollgate, OpenAI -> Anthropic translation (lighttpd -> fcgi)", url, key,
                   args.duration, args.connections, workdir, meter, openai=True)


# ---- guardrails (issue 11) ----------------------------------------------------------

CACHE_THREADS = 4  # cache-bench's concurrent run: threads sharing the store
GUARD_RULES = REPO / "conf" / "guardrails.json"  # the shipped rules
GUARD_SIZES = ((2048, "2 KB"), (102400, "100 KB"))  # the benign prompts' sizes
GUARD_DURATION = 5  # seconds per guardrail wrk run at most (there are four)


def cache_store_bench(stack, args):
    """tests/bench/cache-bench: the response cache's store alone, shared memory
    (fcgi/cache.h) vs an UNLOGGED table on the stack's PostgreSQL (prepared
    statements; a hit also touches last_used, the LRU's order), 2 KB and 32 KB
    entries, 1 and CACHE_THREADS threads.  Prints one line per entry size;
    returns {(store, op, bytes, threads): {mean, p50, p99, ops}}."""
    seconds = 0.3 if args.quick else 2.0
    path = harness.build_dir() / "tests" / "bench" / "cache-bench"
    p = subprocess.run([str(path), "-c", stack.db.url(), "-d", str(seconds), "-t",
                        str(CACHE_THREADS)], capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    figures = {}
    for store, op, size, threads, mean, p50, p99, ops in re.findall(
            r"^result (\w+) (\w+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)$", p.stdout, re.M):
        figures[(store, op, int(size), int(threads))] = {
            "mean": float(mean), "p50": float(p50), "p99": float(p99), "ops": int(ops)}
    if p.returncode != 0 or len(figures) != 16:
        raise RuntimeError("cache-bench failed (%d):\n%s\n%s" % (p.returncode, p.stdout[-2000:],
                                                                 p.stderr[-2000:]))
    for size, label in ((2048, "2 KB"), (32768, "32 KB")):
        f = {k[:2] + k[3:]: v for k, v in figures.items() if k[2] == size}
        say("response cache store (tests/bench/cache-bench, %s entries, mean / p99 us): "
            "shared memory hit %.1f / %.1f, store %.1f / %.1f; unlogged table hit %.0f / %.0f, "
            "store %.0f / %.0f; %d threads, ops/s: shared memory hit %d, store %d; table hit "
            "%d, store %d" % (
                label, f[("shm", "hit", 1)]["mean"], f[("shm", "hit", 1)]["p99"],
                f[("shm", "store", 1)]["mean"], f[("shm", "store", 1)]["p99"],
                f[("table", "hit", 1)]["mean"], f[("table", "hit", 1)]["p99"],
                f[("table", "store", 1)]["mean"], f[("table", "store", 1)]["p99"], CACHE_THREADS,
                f[("shm", "hit", CACHE_THREADS)]["ops"], f[("shm", "store", CACHE_THREADS)]["ops"],
                f[("table", "hit", CACHE_THREADS)]["ops"],
                f[("table", "store", CACHE_THREADS)]["ops"]))
    return figures


def guard_bench_path():
    return harness.build_dir() / "tests" / "bench" / "guard-bench"


def guard_engine():
    """tests/bench/guard-bench: the engine alone, one thread, no stack.  The shipped
    rules' CPU per scan of the benign 2 KB and 100 KB prompts, and each rule alone
    (then the whole set) against 1 MB adversarial prompts: the worst wall-clock
    time.  Prints one line; returns the figures."""
    p = subprocess.run([str(guard_bench_path()), str(GUARD_RULES)], capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = p.stdout
    scans = {int(size): (float(us), int(n)) for size, us, n in
             re.findall(r"^scan (\d+) ([\d.]+) (\d+)$", out, re.M)}
    worst = re.search(r'^redos-worst (\S+) ([\d.]+) "(.*)"$', out, re.M)
    whole = re.search(r'^redos-set ([\d.]+) "(.*)"$', out, re.M)
    rules = re.search(r"^rules (\d+)$", out, re.M)
    if p.returncode != 0 or not worst or not whole or not rules or len(scans) != 2:
        raise RuntimeError("guard-bench failed (%d):\n%s\n%s" % (p.returncode, out[-2000:],
                                                                 p.stderr[-2000:]))
    flagged = [size for size, (_, n) in scans.items() if n]
    if flagged:
        raise RuntimeError("guard-bench: the benign prompt of %s bytes has findings" % flagged)
    limited = re.findall(r"^rule (\S+) .* limit$", out, re.M)
    g = {"rules": int(rules.group(1)), "us_2k": scans[2048][0], "us_100k": scans[102400][0],
         "worst_rule": worst.group(1), "worst_ms": float(worst.group(2)),
         "worst_unit": worst.group(3), "set_ms": float(whole.group(1))}
    say("guardrails engine (tests/bench/guard-bench: one thread, no stack): %d shipped rules at "
        "level standard, CPU per scan: 2 KB prompt %.0f us, 100 KB prompt %.0f us; each rule "
        "alone on 1 MB adversarial prompts: worst %s %.1f ms (a run of \"%s\"), all rules "
        "together %.1f ms%s" % (g["rules"], g["us_2k"], g["us_100k"], g["worst_rule"],
                                g["worst_ms"], g["worst_unit"], g["set_ms"],
                                "; hit their match limit: " + ", ".join(limited) if limited
                                else ""))
    return g


def prompt_body(size):
    """A Messages body whose one user message is guard-bench's benign prompt of size
    bytes (the text the engine figures scan)."""
    text = subprocess.run([str(guard_bench_path()), "-p", str(size)], capture_output=True,
                          text=True, check=True, timeout=30, stdin=subprocess.DEVNULL).stdout
    assert len(text) == size and "]]" not in text
    return json.dumps({"model": "claude-haiku-4-5", "max_tokens": 64,
                       "messages": [{"role": "user", "content": text}]})


def guard_runs(stack, key, args, workdir, upstream, upstream_port):
    """The shipped rules' cost on the stack: the 2 KB and 100 KB benign prompts on
    the main stack (guardrails off), then on a second stack, the same in every way
    (its own durable PostgreSQL) but with "guardrails": {"rules_file":
    conf/guardrails.json}.  The rules find nothing in these prompts: what differs
    is the scan.  Returns {size label: (off run, on run)}."""
    duration = min(args.duration, GUARD_DURATION)
    bodies = [(label, prompt_body(size)) for size, label in GUARD_SIZES]

    def runs(s, k, state):
        url = "http://127.0.0.1:%d/v1/messages" % s.port
        headers = {"content-type": "application/json", "anthropic-version": "2023-06-01",
                   "x-api-key": k}
        for _, body in bodies:
            status, _, reply = s.request("POST", "/v1/messages", body, headers)
            assert status == 200, (state, status, reply[:200])
        meter = CpuMeter({"upstream nginx": [upstream.pid], "postgres": [s.db.proc.pid],
                          "worker": s.worker_pids, "lighttpd": [s.frontend_proc.pid]})
        wrk(url, k, args.warmup, args.connections, workdir, body=bodies[0][1])
        return {label: measure("tollgate, %s prompt, guardrails %s" % (label, state), url, k,
                               duration, args.connections, workdir, meter, body=body)
                for label, body in bodies}

    off = runs(stack, key, "off")
    t0 = time.monotonic()
    with harness.Stack(processes=args.processes, threads=args.threads,
                       provider_url="http://127.0.0.1:%d" % upstream_port, tag="bench-guarded",
                       extra_config={"guardrails": {"rules_file": str(GUARD_RULES)}}) as guarded:
        gkey = guarded.key(group="bench", user="bench", name="bench")
        status, _, reply = guarded.messages(gkey, prompt="my key AKIAIOSFODNN7EXAMPLE")
        assert status == 400 and b"aws_access_key" in reply, (status, reply[:200])
        say("guardrails on: a second stack with the shipped rules (%s) started in %.0f s; a "
            "prompt holding an AWS access key is refused 400" % (
                GUARD_RULES.relative_to(REPO), time.monotonic() - t0))
        on = runs(guarded, gkey, "on (shipped rules)")
    if guarded.sanitizer_findings:
        raise RuntimeError("guarded stack: %s" % "\n".join(guarded.sanitizer_findings[:10]))
    return {label: (off[label], on[label]) for _, label in GUARD_SIZES}


def otel_runs(args, workdir, upstream, upstream_port):
    """The request path with span export off, then on (sample_ratio 1: every request
    makes its spans) to a collector whose port is closed, then to one that accepts and
    never answers: three stacks alike but for "otel", each its own durable PostgreSQL.
    Prints `otel: ...` (requests/s and p50/p99 against off, worker CPU per request)."""
    closed_port = harness.free_port()
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(1024)
    states = [("off", None),
              ("dead collector (port closed)", closed_port),
              ("hanging collector", hang.getsockname()[1])]
    runs = {}
    try:
        for state, port in states:
            extra = None if port is None else {"otel": {
                "endpoint": "http://127.0.0.1:%d/v1/traces" % port, "sample_ratio": 1,
                "timeout_ms": 2000, "flush_ms": 200}}
            with harness.Stack(processes=args.processes, threads=args.threads,
                               provider_url="http://127.0.0.1:%d" % upstream_port,
                               tag="bench-otel", extra_config=extra) as s:
                key = s.key(group="bench", user="bench", name="bench")
                status, _, body = s.messages(key)
                assert status == 200, (status, body[:200])
                url = "http://127.0.0.1:%d/v1/messages" % s.port
                meter = CpuMeter({"upstream nginx": [upstream.pid], "postgres": [s.db.proc.pid],
                                  "worker": s.worker_pids, "lighttpd": [s.frontend_proc.pid]})
                wrk(url, key, args.warmup, args.connections, workdir)
                runs[state] = measure("tollgate, otel %s" % state, url, key, args.duration,
                                      args.connections, workdir, meter)
                if port is not None:
                    _, _, text = s.request("GET", "/metrics")
                    counts = dict(re.findall(r"^(tollgate_otel_\w+) (\d+)$", text.decode(),
                                             re.M))
                    say("    " + ", ".join("%s %s" % kv for kv in sorted(counts.items())))
            if s.sanitizer_findings:
                raise RuntimeError("otel stack: %s" % "\n".join(s.sanitizer_findings[:10]))
    finally:
        hang.close()
    off = runs["off"]
    say("otel: " + "; ".join(
        "%s / off: requests/s %.2f, p50 %+.2f ms, p99 %+.2f ms, worker CPU %+.0f us per request"
        % (state, runs[state]["rps"] / off["rps"], runs[state]["p50"] - off["p50"],
           runs[state]["p99"] - off["p99"],
           runs[state]["cpu"].get("worker", 0) - off["cpu"].get("worker", 0))
        for state, _ in states[1:]))
    return 0


# ---- the reports ------------------------------------------------------------------

def timed(what, fn):
    t0 = time.monotonic()
    out = fn()
    took = time.monotonic() - t0
    print("  %-58s %8.3f s" % (what, took), flush=True)
    return took, out


def report_runs(stack, n_rows):
    """Chargeback reports over n_rows usage rows (60 days, 50 groups, 500 users,
    3 models): from usage alone, the concurrent refresh, then from the views;
    each must answer in under 1 s (issue 5)."""
    print("reports over %d usage rows:" % n_rows, flush=True)
    timed("insert the rows (generate_series) + analyze", lambda: stack.psql(
        "insert into tollgate.usage (request_id, ts, api_key_id, user_id, group_id, provider,"
        " model, input_tokens, output_tokens, cost_micros, http_status, outcome, latency_ms,"
        " stream, ttft_ms)"
        " select gen_random_uuid(), now() - (i %% 86400) * interval '60 s',"
        " 1 + i %% 700, 'bench-user-' || i %% 500, 'bench-team-' || i %% 50, 'anthropic',"
        " (array['claude-haiku-4-5-20251001','claude-sonnet-4-5','claude-opus-4'])[1 + i %% 3],"
        " i %% 4000, i %% 900, i %% 20000, 200, 'ok', 200 + (i::bigint * 7919) %% 9000,"
        " i %% 2 = 0, case when i %% 2 = 0 then 50 + (i::bigint * 104729) %% 2000 end"
        " from generate_series(1, %d) i; analyze tollgate.usage" % n_rows))
    month = stack.psql("select date_trunc('month', now() - interval '30 days')::date,"
                       " (date_trunc('month', now() - interval '30 days')"
                       " + interval '1 month - 1 day')::date")[0]
    slow = []

    def report(by, note):
        took, _ = timed("report --by %s, %s (%s)" % (by, month[0][:7], note), lambda: harness.ctl(
            stack.config, "report", "--by", by, "--from", month[0], "--to", month[1],
            "--format", "json"))
        if took >= 1.0:
            slow.append(by + " " + note)

    report("group", "no refresh yet: all from usage")
    took, _ = timed("report --by user, all 61 days, no refresh: every row from usage",
                    lambda: harness.ctl(stack.config, "report", "--by", "user", "--from",
                                        stack.psql("select (now() - interval '61 days')::date")[0][0],
                                        "--to", stack.psql("select now()::date")[0][0],
                                        "--format", "json"))
    if took >= 1.0:
        slow.append("user all days from usage")
    timed("report refresh (concurrently)", lambda: harness.ctl(stack.config, "report", "refresh"))
    for by in ("group", "user", "key", "model", "group,model"):
        report(by, "from the views")
    timed("export usage of that month, CSV to /dev/null", lambda: harness.ctl(
        stack.config, "export", "usage", "--from", month[0], "--to", month[1]))
    admin_key = os.environ.get("TOLLGATE_ADMIN_KEY")
    if admin_key:  # the admin API's report endpoints, through lighttpd and a worker
        since = stack.psql("select (now() - interval '30 days')::date, now()::date")[0]
        span = "from=%s&to=%s" % (since[0], since[1])
        for path in ("chargeback?by=group&" + span, "chargeback?by=model&" + span,
                     "chargeback?by=group,model&" + span,
                     "chargeback?by=user&group=bench-team-1&" + span,
                     "chargeback?by=model&group=bench-team-1&" + span,
                     "chargeback?by=user,model&group=bench-team-1&" + span,
                     "chargeback?by=tool&" + span,
                     "series?subject=org&bucket=day&" + span,
                     "series?subject=group&id=bench-team-1&bucket=hour&from=%s&to=%s"
                     % (since[1], since[1]), "quotas", "keys", "denials?" + span,
                     "models?" + span, "models?%s&format=csv" % span):
            took, (status, _, _) = timed("GET /admin/reports/" + path[:46], lambda: stack.request(
                "GET", "/admin/reports/" + path, None, {"x-api-key": admin_key}))
            if status != 200 or took >= 0.3:
                slow.append("%s (%s, %.0f ms)" % (path, status, took * 1000))
    key = stack.key(group="bench-team-1", user="bench-user-1", name="bench-usage")
    took, _ = timed("GET /v1/usage?days=60 (a key with no rows; index lookup)",
                    lambda: stack.request("GET", "/v1/usage?days=60", None, stack.auth(key)))
    print("report target (< 1 s each): %s" % ("met" if not slow else "MISSED: " + ", ".join(slow)),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
