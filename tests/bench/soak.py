#!/usr/bin/python3
"""scripts/soak's driver (issue 12): a bounded run of mixed traffic through the
real stack, checking that the workers' memory, descriptors and database
connections stay flat and that the accounting stays exact.

    soak.py --build build/release [--minutes 10] [--warmup 60] [--clients 16] [--quick]

The stack is tests/integration/harness.py's Stack (a throwaway PostgreSQL,
lighttpd, spawn-fcgi -F 1 starting the master, which forks the workers), the
Anthropic mock (tests/mock/mock_provider.py), the OpenAI mock
(tests/mock/mock_openai.py) for an OpenAI model, and conf/guardrails.json as the
rules file.  --clients threads send, each request drawn from MIX:

  messages      non-stream /v1/messages                           200, usage row
  stream        streamed /v1/messages, read to message_stop        200, usage row
  translated    /v1/chat/completions for a Claude model (plain or streamed,
                translated to the Anthropic mock)                  200, usage row
  openai        /v1/chat/completions for gpt-4o-mini (OpenAI mock) 200, usage row
  provider_err  the mock answers 500, 429 or 529 (overloaded)      that status, usage row
  disconnect    a slow stream the client closes after 2 events     200, usage row
  bad_request   a body that is not JSON                            400, no row
  unknown_key   a made-up key (auth.failure_limit stays off)        401, no row
  quota         a key whose requests quota (total) is QUOTA_LIMIT  200 then 429s, no row for a 429
  guard         a prompt holding an AWS access key                 400 (blocked), usage row

The load runs --warmup seconds, then the load is paused until nothing is in
flight (no client request, no busy worker thread, no reservation) and the
baseline is taken: total VmRSS of Stack.workers(), their open descriptors,
lighttpd's, and PostgreSQL connections to the tollgate database (this
session's own excluded).  The load then runs --minutes more, sampled every
--interval seconds (the table: the same figures under load, requests/s and the
status mix), and is stopped; once quiet again the end values are taken.
Both are taken quiet because under load the figures move with what is in
flight (a FastCGI connection per request, a provider connection per stream).

Verdict: an end value more than 10 % above its baseline fails; for
descriptors and database connections the allowance is at least 2 (a pool
connection or a keep-alive provider connection opened late is not a leak).
A worker replaced during the run (a crash) fails.  Then the accounting:
every request whose answer came from (or was cut off from) the provider, or
was blocked by a guardrail, has exactly one usage row, found by the
x-request-id the client saw; no request refused before the provider (400,
401, quota 429) has one; no other row exists (but for requests that failed
on the client's side before their headers); no reservation is left; each
quota's used equals what its usage rows add up to and reserved is 0.
Exit 0 only if everything holds.
"""

import argparse
import collections
import http.client
import json
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness  # noqa: E402  (reads TOLLGATE_BUILD when a stack starts, not at import)

MIX = [("messages", 28), ("stream", 18), ("translated", 10), ("openai", 8),
       ("provider_err", 8), ("disconnect", 6), ("bad_request", 5), ("unknown_key", 5),
       ("quota", 4), ("guard", 8)]
# the kinds whose every answer has one usage row
ROW_KINDS = {"messages", "stream", "translated", "openai", "provider_err", "disconnect", "guard"}
QUOTA_LIMIT = 3
AWS_KEY = "AKIAQ3EXAMPLE7ZZYYXX"  # conf/guardrails.json blocks a cloud credential
CLAUDE = "claude-haiku-4-5"
GPT = "gpt-4o-mini"
FLOOR = 2        # descriptors and connections: the allowance is max(10 %, FLOOR)
LIMIT_PCT = 10.0


def say(text=""):
    print(text, flush=True)


# ---- one request of each kind -------------------------------------------------

class Client:
    def __init__(self, port, keys):
        self.port, self.keys = port, keys

    def _conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def post(self, path, body, headers, read_events=None):
        """(status, x-request-id); read_events: for a stream, close after that many
        events (None: read it all).  Returns also whether the stream ended well."""
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c = self._conn()
        try:
            h = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
            h.update(headers)
            c.request("POST", path, body=body, headers=h)
            r = c.getresponse()
            rid = r.getheader("x-request-id")
            if read_events is None:
                data = r.read()
                return r.status, rid, data
            got = 0
            while got < read_events:
                line = r.fp.readline()
                if not line:
                    break
                if line.startswith(b"data:"):
                    got += 1
            return r.status, rid, b""   # closed with the stream still going
        finally:
            c.close()

    def anthropic(self, key):
        return {"x-api-key": key}

    def bearer(self, key):
        return {"authorization": "Bearer " + key}

    def one(self, kind, rng):
        """(status, x-request-id, ok): ok says the answer is what the kind expects."""
        main = self.keys["main"]
        if kind == "messages":
            st, rid, data = self.post("/v1/messages", harness.Stack.body(
                prompt="soak %s" % secrets.token_hex(4)), self.anthropic(main))
            return st, rid, st == 200 and b'"message"' in data
        if kind == "stream":
            st, rid, data = self.post("/v1/messages", harness.Stack.body(
                stream=True, directive={"chunks": 5}), self.anthropic(main))
            return st, rid, st == 200 and b"message_stop" in data
        if kind == "translated":
            stream = rng.random() < 0.5
            body = {"model": CLAUDE, "max_tokens": 64, "stream": stream,
                    "messages": [{"role": "user", "content": "soak translated"}]}
            st, rid, data = self.post("/v1/chat/completions", body, self.bearer(main))
            return st, rid, st == 200 and (b"[DONE]" in data if stream else
                                           b"chat.completion" in data)
        if kind == "openai":
            stream = rng.random() < 0.5
            body = {"model": GPT, "stream": stream,
                    "messages": [{"role": "user", "content": "soak openai"}]}
            st, rid, data = self.post("/v1/chat/completions", body, self.bearer(main))
            return st, rid, st == 200 and (b"[DONE]" in data if stream else
                                           b"chat.completion" in data)
        if kind == "provider_err":
            want = rng.choice((500, 429, 529))
            st, rid, data = self.post("/v1/messages", harness.Stack.body(
                directive={"status": want}), self.anthropic(main))
            return st, rid, st == want
        if kind == "disconnect":
            st, rid, _ = self.post("/v1/messages", harness.Stack.body(
                stream=True, directive={"chunks": 10, "event_delay_ms": 40}),
                self.anthropic(main), read_events=2)
            return st, rid, st == 200
        if kind == "bad_request":
            st, rid, _ = self.post("/v1/messages", b'{"model": "claude-haiku-4-5", "messa',
                                   self.anthropic(main))
            return st, rid, st == 400
        if kind == "unknown_key":
            st, rid, _ = self.post("/v1/messages", harness.Stack.body(),
                                   self.anthropic("tg-" + secrets.token_urlsafe(32)[:43]))
            return st, rid, st == 401
        if kind == "quota":
            st, rid, _ = self.post("/v1/messages", harness.Stack.body(),
                                   self.anthropic(self.keys["quota"]))
            return st, rid, st in (200, 429)
        if kind == "guard":
            st, rid, data = self.post("/v1/messages", harness.Stack.body(
                prompt="my key is " + AWS_KEY), self.anthropic(main))
            return st, rid, st == 400 and b"aws_access_key" in data
        raise ValueError(kind)


# ---- the load ------------------------------------------------------------------

class Load:
    """--clients threads drawing from MIX until stopped; pause() waits until no
    request is in flight and holds them until resume()."""

    def __init__(self, client, n, seed):
        self.client = client
        self.cond = threading.Condition()
        self.paused = self.stopped = False
        self.inflight = 0
        self.lock = threading.Lock()
        self.statuses = collections.Counter()   # since the last take_counts()
        self.total = collections.Counter()      # (kind, status) over the run
        self.sent = 0
        self.want_row, self.no_row, self.unsure = set(), set(), set()
        self.unexpected = collections.Counter()  # (kind, status) not what the kind expects
        self.errors = collections.Counter()      # client-side exceptions by kind
        kinds, weights = zip(*MIX)
        self.threads = [threading.Thread(target=self._run, args=(random.Random(seed + i),
                                                                  kinds, weights), daemon=True)
                        for i in range(n)]

    def start(self):
        for t in self.threads:
            t.start()

    def _run(self, rng, kinds, weights):
        while True:
            with self.cond:
                while self.paused and not self.stopped:
                    self.cond.wait(0.5)
                if self.stopped:
                    return
                self.inflight += 1
            kind = rng.choices(kinds, weights)[0]
            try:
                try:
                    status, rid, ok = self.client.one(kind, rng)
                except (OSError, http.client.HTTPException) as e:
                    with self.lock:
                        self.errors[kind] += 1
                        self.statuses[type(e).__name__] += 1
                    continue
                with self.lock:
                    self.sent += 1
                    self.statuses[status] += 1
                    self.total[(kind, status)] += 1
                    if not ok:
                        self.unexpected[(kind, status)] += 1
                    if rid:
                        if not ok:
                            self.unsure.add(rid)
                        elif kind in ROW_KINDS or (kind == "quota" and status == 200):
                            self.want_row.add(rid)
                        else:
                            self.no_row.add(rid)
            finally:
                with self.cond:
                    self.inflight -= 1
                    self.cond.notify_all()

    def take_counts(self):
        with self.lock:
            counts, self.statuses = self.statuses, collections.Counter()
            return counts, self.sent

    def pause(self, timeout=120):
        with self.cond:
            self.paused = True
            deadline = time.monotonic() + timeout
            while self.inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%d requests still in flight" % self.inflight)
                self.cond.wait(left)

    def resume(self):
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    def stop(self):
        self.pause()
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        for t in self.threads:
            t.join(10)


# ---- what is measured -------------------------------------------------------------

def vm_rss_kib(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def db_connections(s):
    return int(s.psql("select count(*) from pg_stat_activity where datname = 'tollgate' "
                      "and pid <> pg_backend_pid()")[0][0])


def measure(s):
    pids = s.workers()
    return {"pids": pids,
            "rss_mib": sum(vm_rss_kib(p) for p in pids) / 1024.0,
            "rss_each": [round(vm_rss_kib(p) / 1024.0, 1) for p in pids],
            "fds": sum(fd_count(p) for p in pids),
            "lighttpd_fds": fd_count(s.frontend_proc.pid),
            "db": db_connections(s)}


def busy_threads(s):
    status, _, body = s.request("GET", "/health", timeout=10)
    return json.loads(body)["threads"]["busy"]


def reservations(s):
    return int(s.psql("select count(*) from tollgate.reservations")[0][0])


def quiet(s, timeout=90):
    """Waits until no worker thread is busy (but the one answering /health) and no
    reservation is held: drains of abandoned streams finish, rows are settled."""
    harness.wait_for(lambda: busy_threads(s) <= 1 and reservations(s) == 0, timeout,
                     "no busy thread and no reservation")
    time.sleep(1.0)   # what a request closes after its answer (FastCGI, the journal)


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---- the checks -----------------------------------------------------------------

# --quick (the suite's run: one minute, often an ASan build whose allocator
# caches and quarantine are still filling) allows the RSS this much instead:
# the 10 % verdict is the long run's. Descriptors and connections keep 10 %.
QUICK_RSS_PCT = 25
rss_pct = LIMIT_PCT


def limit_of(base, floor, pct=None):
    return base + max(base * (LIMIT_PCT if pct is None else pct) / 100.0, floor)


def compare(base, end):
    """[(line, ok)] for the three figures, plus lighttpd's descriptors."""
    out = []

    def pct(a, b):
        return (b - a) * 100.0 / a if a else 0.0
    rss_ok = end["rss_mib"] <= limit_of(base["rss_mib"], 0, rss_pct)
    fds_ok = end["fds"] <= limit_of(base["fds"], FLOOR)
    lfd_ok = end["lighttpd_fds"] <= limit_of(base["lighttpd_fds"], FLOOR)
    db_ok = end["db"] <= limit_of(base["db"], FLOOR)
    out.append(("soak: rss %.1f MiB -> %.1f MiB (%+.1f%%), fds %d -> %d, db connections %d -> %d"
                % (base["rss_mib"], end["rss_mib"], pct(base["rss_mib"], end["rss_mib"]),
                   base["fds"], end["fds"], base["db"], end["db"]), True))
    out.append(("soak: worker rss %s MiB -> %s MiB (limit %.1f MiB): %s" % (
        base["rss_each"], end["rss_each"], limit_of(base["rss_mib"], 0, rss_pct),
        "flat" if rss_ok else "GREW"), rss_ok))
    out.append(("soak: worker fds %d -> %d (limit %d): %s" % (
        base["fds"], end["fds"], limit_of(base["fds"], FLOOR), "flat" if fds_ok else "GREW"),
        fds_ok))
    out.append(("soak: lighttpd fds %d -> %d (limit %d): %s" % (
        base["lighttpd_fds"], end["lighttpd_fds"], limit_of(base["lighttpd_fds"], FLOOR),
        "flat" if lfd_ok else "GREW"), lfd_ok))
    out.append(("soak: db connections %d -> %d (limit %d): %s" % (
        base["db"], end["db"], limit_of(base["db"], FLOOR), "flat" if db_ok else "GREW"), db_ok))
    same = base["pids"] == end["pids"]
    out.append(("soak: workers %s -> %s: %s" % (base["pids"], end["pids"],
                                                "same" if same else "REPLACED"), same))
    return out


def accounting(s, load, quota_key_prefix):
    """[(line, ok)]: one usage row per answered request, none for refusals,
    no reservation, quotas exact."""
    out = []
    rows = collections.Counter()
    for rid, n in s.psql("select request_id, count(*) from tollgate.usage group by 1"):
        rows[rid] = int(n)
    want, no, unsure = load.want_row, load.no_row, load.unsure
    missing = [r for r in want if rows.get(r, 0) == 0]
    doubled = [r for r in want | unsure if rows.get(r, 0) > 1]
    refused_with_row = [r for r in no if rows.get(r, 0)]
    extra = [r for r in rows if r not in want and r not in no and r not in unsure]
    client_errors = sum(load.errors.values())
    ok = not missing and not doubled and not refused_with_row and len(extra) <= client_errors
    out.append(("soak: usage rows: %d requests answered by the provider or a guardrail, %d "
                "with one row, %d missing, %d with more than one; %d refused before the "
                "provider, %d of them with a row; %d rows of no request seen (client-side "
                "failures: %d)" % (len(want), len(want) - len(missing), len(missing),
                                   len(doubled), len(no), len(refused_with_row), len(extra),
                                   client_errors), ok))
    left = reservations(s)
    out.append(("soak: reservations left: %d" % left, left == 0))
    sums = s.psql(
        "select count(*), coalesce(sum(cost_micros), 0), coalesce(sum(input_tokens + "
        "output_tokens + cache_read_tokens + cache_write_tokens), 0) "
        "from tollgate.usage where group_id = 'soak'")[0]
    quota = {m: (int(u), int(r)) for m, u, r in s.psql(
        "select metric, used, reserved from tollgate.quotas where subject_kind = 'group' "
        "and subject_id = tollgate.quota_subject_id('group', 'soak')")}
    want_used = {"requests": int(sums[0]), "usd": int(sums[1]), "tokens": int(sums[2])}
    exact = all(quota.get(m) == (want_used[m], 0) for m in want_used)
    out.append(("soak: quotas of group soak (used, reserved): requests %s, usd micros %s, "
                "tokens %s; its usage rows: %d, %d micros, %d tokens: %s" % (
                    quota.get("requests"), quota.get("usd"), quota.get("tokens"),
                    want_used["requests"], want_used["usd"], want_used["tokens"],
                    "exact" if exact else "NOT EXACT"), exact))
    qrows = int(s.psql("select count(*) from tollgate.usage u join tollgate.api_keys k on "
                       "k.id = u.api_key_id where k.prefix = '%s'" % quota_key_prefix)[0][0])
    q = s.psql("select used, reserved from tollgate.quotas where subject_kind = 'key' and "
               "subject_id = (select id::text from tollgate.api_keys where prefix = '%s')"
               % quota_key_prefix)
    q = tuple(int(x) for x in q[0]) if q else None
    served = sum(n for (kind, st), n in load.total.items() if kind == "quota" and st == 200)
    refused = sum(n for (kind, st), n in load.total.items() if kind == "quota" and st == 429)
    qok = q == (QUOTA_LIMIT, 0) and qrows == QUOTA_LIMIT and served == QUOTA_LIMIT
    out.append(("soak: quota key (requests, total, limit %d): used %s, reserved %s, %d rows, "
                "%d served, %d refused 429: %s" % (
                    QUOTA_LIMIT, q and q[0], q and q[1], qrows, served, refused,
                    "exact" if qok else "NOT EXACT"), qok))
    return out


# ---- the run -------------------------------------------------------------------------

def table_line(t, phase, rps, m, counts):
    mix = " ".join("%s:%d" % (k, v) for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))
    return "%7.0f  %-8s %7.1f %9.1f %6d %6d %4d  %s" % (t, phase, rps, m["rss_mib"], m["fds"],
                                                      m["lighttpd_fds"], m["db"], mix)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="the build directory (build/release)")
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="minutes of load after the baseline (default 10)")
    ap.add_argument("--warmup", type=float, default=60.0,
                    help="seconds of load before the baseline (default 60)")
    ap.add_argument("--interval", type=float, default=None,
                    help="seconds between samples (default 30; --quick 5)")
    ap.add_argument("--clients", type=int, default=16, help="client threads (default 16)")
    ap.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--threads", type=int, default=8,
                    help="request threads per worker (default 8)")
    ap.add_argument("--seed", type=int, default=12, help="the clients' random seed")
    ap.add_argument("--quick", action="store_true",
                    help="about 60 s: --warmup 15 --minutes 0.75 --interval 5")
    args = ap.parse_args()
    if args.quick:
        global rss_pct
        rss_pct = QUICK_RSS_PCT
        args.warmup, args.minutes = 15.0, 0.75
    interval = args.interval or (5.0 if args.quick else 30.0)
    os.environ["TOLLGATE_BUILD"] = str(Path(args.build).resolve())

    say("soak: build %s, %d clients, %d workers x %d threads, warm-up %.0f s, then %.1f min, "
        "samples every %.0f s; load average at start %s (%d CPUs)" % (
            args.build, args.clients, args.processes, args.threads, args.warmup, args.minutes,
            interval, loadavg(), os.cpu_count()))
    openai = harness.Mock("mock_openai.py")
    config = {
        "providers": {"openai": {"type": "openai",
                                 "base_url": "http://127.0.0.1:%d" % openai.port,
                                 "api_key": "sk-openai-PROVIDERKEY", "timeout_ms": 10000}},
        "models": {GPT: {"provider": "openai", "max_output_tokens": 16384}},
        "guardrails": {"rules_file": str(REPO / "conf" / "guardrails.json")},
    }
    s = harness.Stack(processes=args.processes, threads=args.threads, tag="soak",
                      extra_config=config)
    failed = []
    try:
        s.start()
        s.ctl("price", "set", GPT, "--input", "150000", "--output", "600000")
        keys = {"main": s.key(group="soak", user="soak-user", name="soak"),
                "quota": s.key(group="soakq", user="soakq-user", name="soak-quota")}
        for metric, limit in (("requests", "1000000000"), ("usd", "1000000.00"),
                              ("tokens", "1000000000000")):
            s.ctl("quota", "set", "--group", "soak", "--metric", metric, "--window", "total",
                  "--limit", limit)
        s.ctl("quota", "set", "--key", keys["quota"][:11], "--metric", "requests",
              "--window", "total", "--limit", str(QUOTA_LIMIT))

        load = Load(Client(s.port, keys), args.clients, args.seed)
        say("%7s  %-8s %7s %9s %6s %6s %4s  %s" % ("t (s)", "phase", "req/s", "RSS MiB",
                                                  "fds", "httpd", "db", "status mix"))
        t0 = time.monotonic()
        load.start()
        last_t, last_sent = t0, 0

        def sample(phase):
            nonlocal last_t, last_sent
            m = measure(s)
            counts, sent = load.take_counts()
            now = time.monotonic()
            rps = (sent - last_sent) / max(now - last_t, 1e-3)
            last_t, last_sent = now, sent
            say(table_line(now - t0, phase, rps, m, counts))
            try:
                s.clear_mock()   # the mock keeps every request it saw
                openai.clear()
            except (OSError, http.client.HTTPException):
                pass
            return m

        def run_for(seconds, phase):
            end = time.monotonic() + seconds
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    return
                time.sleep(min(interval, left))
                sample(phase)

        run_for(args.warmup, "warm-up")
        load.pause()
        quiet(s)
        base = measure(s)
        say(table_line(time.monotonic() - t0, "BASELINE", 0.0, base, {}))
        load.take_counts()   # the baseline's pause is not part of the next sample
        load.resume()
        last_t, last_sent = time.monotonic(), load.sent
        run_for(args.minutes * 60.0, "load")
        load.stop()
        quiet(s)
        end = measure(s)
        counts, sent = load.take_counts()
        say(table_line(time.monotonic() - t0, "END", 0.0, end, counts))
        say()
        say("soak: %d requests in %.0f s (%.1f/s); by kind and status: %s" % (
            load.sent, time.monotonic() - t0, load.sent / (time.monotonic() - t0),
            ", ".join("%s %s: %d" % (k, st, n) for (k, st), n in sorted(
                load.total.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))))))
        if load.unexpected:
            say("soak: answers not what their kind expects: %s" % ", ".join(
                "%s %s: %d" % (k, st, n) for (k, st), n in sorted(load.unexpected.items(),
                                                                   key=str)))
        if load.errors:
            say("soak: client-side failures (no answer): %s" % dict(load.errors))
        results = compare(base, end) + accounting(s, load, keys["quota"][:11])
        unexpected = sum(load.unexpected.values())
        results.append(("soak: %d answers not of their kind's status, %d client-side failures"
                        % (unexpected, sum(load.errors.values())),
                        unexpected == 0 and not load.errors))
        findings = [line for line in (s.worker_stderr() + s.logs()).splitlines()
                    if harness.SANITIZER_RE.search(line)]
        results.append(("soak: sanitizer reports: %d" % len(findings), not findings))
        for line, ok in results:
            say(line)
            if not ok:
                failed.append(line)
        say("soak: load average at end %s" % loadavg())
    finally:
        s.close()
        openai.stop()
    if failed:
        say("soak: FAILED (%d of the checks above)" % len(failed))
        return 1
    say("soak: PASSED: RSS, descriptors and database connections flat (within %d %%, at "
        "least %d for counts) and the accounting exact" % (LIMIT_PCT, FLOOR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
