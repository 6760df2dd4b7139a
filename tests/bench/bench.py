#!/usr/bin/python3
"""scripts/bench's driver: wrk against /v1/messages through the real stack
(lighttpd -> tollgate-fcgi -> a static nginx upstream) and against the same
upstream behind a plain nginx reverse proxy, in the same run.

    bench.py --build build/release [--duration 10] [--connections 32]

Prints requests/s, p50 and p99 for both, and the ratio as the last line.
Everything listens on 127.0.0.1; every run is bounded by --duration.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

# What the static upstream answers: a real Messages reply with usage.
REPLY = ('{"id":"msg_bench","type":"message","role":"assistant","model":"claude-haiku-4-5",'
         '"content":[{"type":"text","text":"Hello from the bench upstream."}],'
         '"stop_reason":"end_turn","stop_sequence":null,'
         '"usage":{"input_tokens":12,"cache_creation_input_tokens":0,'
         '"cache_read_input_tokens":0,"output_tokens":8}}')
BODY = ('{"model":"claude-haiku-4-5","max_tokens":64,'
        '"messages":[{"role":"user","content":"Say hello."}]}')


def nginx_conf(workdir, port, locations):
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
    upstream bench_upstream { server 127.0.0.1:%(upstream)s; keepalive 64; }
    server {
        listen 127.0.0.1:%(port)d;
        keepalive_requests 1000000;
        %(locations)s
    }
}
""" % {"dir": workdir, "port": port, "upstream": os.environ.get("BENCH_UPSTREAM", "1"),
       "locations": locations}


def start_nginx(workdir, port, locations, upstream_port=None):
    if upstream_port is not None:
        os.environ["BENCH_UPSTREAM"] = str(upstream_port)
    conf = Path(workdir) / ("nginx-%d.conf" % port)
    conf.write_text(nginx_conf(workdir, port, locations))
    proc = subprocess.Popen(["nginx", "-e", "%s/nginx-%d.err" % (workdir, port), "-p", workdir,
                             "-c", str(conf), "-g", "daemon off;"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    return proc


def wrk(url, keys, duration, connections, workdir):
    """wrk POSTing BODY; each request uses a random key of keys (one key: always it)."""
    if isinstance(keys, str):
        keys = [keys]
    script = Path(workdir) / "post.lua"
    script.write_text(
        'local keys = {%s}\n'
        'local body = [[%s]]\n'
        'request = function()\n'
        '  local h = {["content-type"] = "application/json",\n'
        '             ["anthropic-version"] = "2023-06-01",\n'
        '             ["x-api-key"] = keys[math.random(#keys)]}\n'
        '  return wrk.format("POST", nil, h, body)\n'
        'end\n' % (", ".join('"%s"' % k for k in keys), BODY))
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % duration,
                          "--timeout", "10s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: to_ms(v, u) for p, v, u in
           re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"),
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else "", "raw": out}


def cpu_by_command():
    """CPU seconds (user + system) of every visible process, summed by command name."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc/%s/stat" % entry).read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        totals[comm] = totals.get(comm, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def cpu_per_request(before, after, requests):
    """Microseconds of CPU per request for the processes that did work."""
    spent = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    return {k: v * 1e6 / requests for k, v in sorted(spent.items(), key=lambda kv: -kv[1])
            if v * 1e6 / requests >= 5}


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def show(name, r):
    print("%-34s %10.0f req/s   p50 %7.2f ms   p99 %7.2f ms%s" % (
        name, r["rps"], r["p50"], r["p99"],
        ("   NON-2xx: %d" % r["non2xx"]) if r["non2xx"] else ""), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build" / "release"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--reports-only", action="store_true",
                    help="only the report benchmark (1,000,000 usage rows)")
    ap.add_argument("--report-rows", type=int, default=1000000)
    args = ap.parse_args()
    os.environ["TOLLGATE_BUILD"] = str(Path(args.build).resolve())
    global harness
    import harness  # after TOLLGATE_BUILD is set

    workdir = tempfile.mkdtemp(prefix="tollgate-bench-")
    procs = []
    try:
        upstream_port, proxy_port = harness.free_port(), harness.free_port()
        reply = REPLY.replace("'", "\\'")
        procs.append(start_nginx(workdir, upstream_port,
                                 "location / { default_type application/json; "
                                 "return 200 '%s'; }" % reply))
        procs.append(start_nginx(workdir, proxy_port,
                                 "location / { proxy_pass http://bench_upstream; "
                                 "proxy_http_version 1.1; proxy_set_header Connection \"\"; }",
                                 upstream_port=upstream_port))
        harness.wait_for(lambda: all(port_open(p) for p in (upstream_port, proxy_port)), 15,
                         "nginx to listen")
        with harness.Stack(processes=args.processes, threads=args.threads,
                           provider_url="http://127.0.0.1:%d" % upstream_port,
                           tag="bench") as stack:
            if args.reports_only:
                return report_runs(stack, args.report_rows)
            key = stack.key(group="bench", user="bench", name="bench")
            status, _, body = stack.messages(key)
            assert status == 200, (status, body[:200])
            print("wrk: %d connections, %d s per run, %d worker processes x %d threads, "
                  "2 cores shared by everything" % (args.connections, args.duration,
                                                    args.processes, args.threads), flush=True)
            url_proxy = "http://127.0.0.1:%d/v1/messages" % proxy_port
            url_tg = "http://127.0.0.1:%d/v1/messages" % stack.port
            wrk(url_tg, key, 2, args.connections, workdir)  # warm-up: pools, keep-alive
            proxy = wrk(url_proxy, key, args.duration, args.connections, workdir)
            show("plain proxy (nginx -> upstream)", proxy)
            cpu_before = cpu_by_command()
            tg = wrk(url_tg, key, args.duration, args.connections, workdir)
            cpu = cpu_per_request(cpu_before, cpu_by_command(), tg["rps"] * args.duration)
            show("tollgate (lighttpd -> fcgi -> upstream)", tg)
            print("CPU per tollgate request (us): " +
                  ", ".join("%s %.0f" % kv for kv in cpu.items()), flush=True)
            hot, spread = enforced_runs(stack, url_tg, args, workdir)
            rows = stack.psql("select count(*) from tollgate.usage")[0][0]
            left = stack.psql("select count(*), coalesce(sum(reserved), 0) "
                              "from tollgate.quotas")[0]
            print("usage rows written: %s; quota rows %s, reserved after the runs: %s"
                  % (rows, left[0], left[1]), flush=True)
            bad = sum(r["non2xx"] for r in (tg, proxy, hot, spread))
            if bad:
                print("non-2xx responses: %d" % bad)
                return 1
            if report_runs(stack, args.report_rows) != 0:
                return 1
        print("enforcement: hot group / no quotas: requests/s %.2f; spread / no quotas %.2f; "
              "hot / spread %.2f" % (hot["rps"] / tg["rps"], spread["rps"] / tg["rps"],
                                     hot["rps"] / spread["rps"]))
        print("ratio tollgate/proxy: requests/s %.2f (enforced, hot group %.2f), "
              "p50 %.2fx, p99 %.2fx" % (tg["rps"] / proxy["rps"], hot["rps"] / proxy["rps"],
                                        tg["p50"] / proxy["p50"], tg["p99"] / proxy["p99"]))
        return 0
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def limit_everything(stack, kind, subject):
    """Quotas that never deny during the run but are all checked and updated."""
    for metric, window, limit in (("usd", "month", "1000000.00"), ("tokens", "day", "10000000000"),
                                  ("requests", "minute", "100000000")):
        harness.ctl(stack.config, "quota", "set", "--" + kind, subject, "--metric", metric,
                    "--window", window, "--limit", limit)


def enforced_runs(stack, url, args, workdir):
    """The same load with quotas on key, user and group: all on one hot group, then
    spread over 100 groups (one key each)."""
    hot_keys = [stack.key(group="hot", user="hot-user-%d" % i, name="hot-%d" % i)
                for i in range(8)]
    limit_everything(stack, "group", "hot")
    for i in range(8):
        limit_everything(stack, "user", "hot-user-%d" % i)
        limit_everything(stack, "key", hot_keys[i][:11])
    spread_keys = []
    for i in range(100):
        key = stack.key(group="team-%03d" % i, user="user-%03d" % i, name="spread-%d" % i)
        limit_everything(stack, "group", "team-%03d" % i)
        limit_everything(stack, "user", "user-%03d" % i)
        limit_everything(stack, "key", key[:11])
        spread_keys.append(key)
    wrk(url, hot_keys, 2, args.connections, workdir)  # warm-up
    hot = wrk(url, hot_keys, args.duration, args.connections, workdir)
    show("tollgate enforced, one hot group", hot)
    spread = wrk(url, spread_keys, args.duration, args.connections, workdir)
    show("tollgate enforced, 100 groups", spread)
    return hot, spread


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
        " model, input_tokens, output_tokens, cost_micros, http_status, outcome)"
        " select gen_random_uuid(), now() - (i %% 86400) * interval '60 s',"
        " 1 + i %% 700, 'bench-user-' || i %% 500, 'bench-team-' || i %% 50, 'anthropic',"
        " (array['claude-haiku-4-5-20251001','claude-sonnet-4-5','claude-opus-4'])[1 + i %% 3],"
        " i %% 4000, i %% 900, i %% 20000, 200, 'ok'"
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
    for by in ("group", "user", "key", "model"):
        report(by, "from the views")
    timed("export usage of that month, CSV to /dev/null", lambda: harness.ctl(
        stack.config, "export", "usage", "--from", month[0], "--to", month[1]))
    key = stack.key(group="bench-team-1", user="bench-user-1", name="bench-usage")
    took, _ = timed("GET /v1/usage?days=60 (a key with no rows; index lookup)",
                    lambda: stack.request("GET", "/v1/usage?days=60", None, stack.auth(key)))
    print("report target (< 1 s each): %s" % ("met" if not slow else "MISSED: " + ", ".join(slow)),
          flush=True)
    return 0


def port_open(port):
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    sys.exit(main())
