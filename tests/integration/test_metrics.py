"""GET /metrics (issue 5 item 5): Prometheus text format, summed over every
worker process of the host through shared memory.

After a load of 200 requests from a thread pool, spread over 4 worker
processes (several keys, groups and models, streams, provider errors, bad
bodies, bad keys, quota and bucket refusals), the counters equal what the
usage table and the clients saw, exactly, and `promtool check metrics` (the
Prometheus project's own parser and linter) accepts the output.  Access:
addresses in metrics.allow, or "Authorization: Bearer <metrics.token>";
anything else is 403.
"""

import json
import re
import secrets
import shutil
import struct
import subprocess
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from harness import error_body, main_stack, stack, wait_for

HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5"
TOKEN = "metrics-token-" + secrets.token_hex(12)
BUCKET_GROUP = "metrics-bucket-group"
BUCKET_SIZE = 8
QUOTA_LIMIT = 10
PROCESSES = 4
PROMTOOL = "/usr/bin/promtool"
# the same counts the mock then reports, whatever the prompt
USAGE = {"input_tokens": 7, "output_tokens": 11, "cache_read_input_tokens": 3,
         "cache_creation_input_tokens": 2}
TOKEN_TYPES = {"input": "input_tokens", "output": "output_tokens",
               "cache_read": "cache_read_tokens", "cache_write": "cache_write_tokens"}


def metrics_stack():
    # 127.0.0.1 is not allowed here: every scrape of this stack goes by the token
    return stack(tag="metrics", processes=PROCESSES, threads=4, timeout_ms=10000,
                 extra_config={
                     "metrics": {"max_series": 2000, "allow": ["192.0.2.1", "2001:db8::/32"],
                                 "token": TOKEN},
                     "rate_limits": [{"name": "metrics-bucket", "per": "key", "mode": "local",
                                      "max_tokens": BUCKET_SIZE, "tokens_per_fill": 1,
                                      "fill_interval_ms": 3600000,
                                      "match": {"group": BUCKET_GROUP}}]})


def uniq(prefix):
    return "%s-%s" % (prefix, secrets.token_hex(4))


# ---- the exposition ------------------------------------------------------------

LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(value):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse(text):
    """{(name, ((label, value), ...)): Decimal}, and {family: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = LINE_RE.match(line)
        assert m, "not an exposition line: %r" % line
        labels = tuple(sorted((k, unescape(v)) for k, v in LABEL_RE.findall(m.group(2) or "")))
        key = (m.group(1), labels)
        assert key not in samples, "duplicate sample: %r" % line
        samples[key] = Decimal(m.group(3)) if m.group(3) != "+Inf" else m.group(3)
    return samples, types


def scrape(s, token=TOKEN):
    status, headers, body = s.request("GET", "/metrics", headers={
        "authorization": "Bearer " + token} if token else {})
    assert status == 200, "GET /metrics: %s %s" % (status, body[:300])
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", headers
    return body.decode("utf-8")


def family(samples, name):
    """[(labels as dict, value)] of one metric name."""
    return [(dict(labels), v) for (n, labels), v in samples.items() if n == name]


def delta(after, before, name, **match):
    """The sum of name's samples whose labels match, after minus before."""
    def total(samples):
        return sum((v for labels, v in family(samples, name)
                    if all(labels.get(k) == want for k, want in match.items())), Decimal(0))
    return total(after) - total(before)


def promtool_check(text):
    assert shutil.which(PROMTOOL), \
        "%s is missing: install Debian's prometheus package (scripts/lib/deps.sh)" % PROMTOOL
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        "promtool check metrics exited %d:\n%s%s" % (p.returncode, p.stdout, p.stderr)


# ---- the load ------------------------------------------------------------------

def plan(s):
    """The 200 requests of the load as (who, key, body, expected status or None), and
    the keys by role."""
    keys = {
        "a": s.key(group=uniq("metrics-g1"), user=uniq("metrics-u1")),
        "c": s.key(group=uniq("metrics-g2"), user=uniq("metrics-u3")),
        "d": s.key(group=BUCKET_GROUP, user=uniq("metrics-u4")),
    }
    # b shares a's group, another user
    group_a = s.psql("select group_id from tollgate.api_keys where prefix = '%s'"
                     % keys["a"][:11])[0][0]
    keys["b"] = s.key(group=group_a, user=uniq("metrics-u2"))
    s.ctl("quota", "set", "--key", keys["c"][:11], "--metric", "requests", "--window",
          "total", "--limit", str(QUOTA_LIMIT))
    bogus = "tg-" + secrets.token_urlsafe(32)[:43]
    marker = uniq("metrics-prompt")

    def body(model, stream=False, **directive):
        directive.setdefault("usage", USAGE)
        directive.setdefault("delay_ms", 30)   # keep workers busy: every process gets some
        return s.body(model=model, prompt=marker, directive=directive, stream=stream)

    jobs = []
    jobs += [("a", keys["a"], body("claude-haiku-4-5"), 200)] * 30
    jobs += [("a", keys["a"], body(SONNET, stream=True, chunks=3), 200)] * 20
    jobs += [("a", keys["a"], body("claude-haiku-4-5", status=500), 500)] * 5
    jobs += [("a", keys["a"], {"model": HAIKU, "messages": []}, 400)] * 5
    jobs += [("a", keys["a"], body(SONNET), 200)] * 20
    jobs += [("b", keys["b"], body(SONNET), 200)] * 30
    jobs += [("b", keys["b"], body(HAIKU, stream=True), 200)] * 10
    jobs += [("c", keys["c"], body(HAIKU), None)] * 30      # QUOTA_LIMIT x 200, then 429
    jobs += [("d", keys["d"], body(SONNET), None)] * 30     # BUCKET_SIZE x 200, then 429
    jobs += [("bogus", bogus, body(HAIKU), 401)] * 20
    assert len(jobs) == 200
    rng = secrets.SystemRandom()
    rng.shuffle(jobs)
    return jobs, keys, marker


def send(s, job):
    who, key, body, _ = job
    headers = s.auth(key)
    if isinstance(body, dict) and body.get("stream"):
        stream = s.stream(body, headers)
        events = list(stream)
        assert any(e == "message_stop" for e, _, _ in events), events[-3:]
        return who, stream.status, stream.headers, ""
    status, headers, data = s.request("POST", "/v1/messages", body, headers)
    return who, status, headers, data.decode("utf-8", "replace")


def test_counters_equal_the_usage_table_after_a_load_over_four_processes():
    s = metrics_stack()
    assert s.processes >= 4
    jobs, keys, marker = plan(s)
    before, _ = parse(scrape(s))
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda job: send(s, job), jobs))

    # what the clients saw
    seen = Counter((who, status) for who, status, _, _ in results)
    for (who, _, _, want), (_, status, _, body) in zip(jobs, results):
        assert want is None or status == want, "%s: want %s, got %s %s" % (
            who, want, status, body[:200])
    assert seen[("c", 200)] == QUOTA_LIMIT and seen[("c", 429)] == 30 - QUOTA_LIMIT, seen
    assert seen[("d", 200)] == BUCKET_SIZE and seen[("d", 429)] == 30 - BUCKET_SIZE, seen
    for who, status, _, body in results:
        if status == 429:
            message = error_body(body)[1]
            assert ("rate limit" in message) == (who == "d"), (who, message)

    # the load was served by every worker process
    ids = {h.get("x-request-id") for _, _, h, _ in results} - {None}
    pids = set()
    for line in s.logs().splitlines():
        if '"event":"request"' in line:
            entry = json.loads(line)
            if entry["request_id"] in ids:
                pids.add(entry["pid"])
    assert len(pids) == PROCESSES, "the load reached workers %s of %s" % (
        sorted(pids), s.worker_pids)

    prefix_of = {who: key[:11] for who, key in keys.items()}
    who_of = {p: w for w, p in prefix_of.items()}
    reached = sum(1 for _, status, _, _ in results if status in (200, 500))
    sql = ("select k.prefix, u.user_id, u.group_id, u.model, u.provider, u.http_status, "
           "u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, "
           "coalesce(u.cost_micros, 0), u.stream from tollgate.usage u "
           "join tollgate.api_keys k on k.id = u.api_key_id where k.prefix in (%s)"
           % ", ".join("'%s'" % p for p in prefix_of.values()))
    rows = wait_for(lambda: (r := s.psql(sql)) and len(r) == reached and r, 20,
                    "%d usage rows" % reached)

    # a request is counted just after its answer went out: wait for the last ones
    last = {}

    def all_counted():
        last["text"] = scrape(s)
        after, _ = parse(last["text"])
        counted = sum(delta(after, before, "tollgate_requests_total", api_key_id=p)
                      for p in prefix_of.values())
        counted += delta(after, before, "tollgate_requests_total", api_key_id="", code="401")
        last["counted"] = counted
        return counted == 200
    try:
        wait_for(all_counted, 20, "all 200 requests in /metrics")
    except TimeoutError:
        raise AssertionError("/metrics counts %s of the load's 200 requests" % last["counted"])
    text = last["text"]
    after, types = parse(text)
    promtool_check(text)

    # requests per key, model and code: the usage table's, for those that reached the provider
    by_series = Counter((r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows)
    for (prefix, user, group, model, provider, code), n in by_series.items():
        got = delta(after, before, "tollgate_requests_total", api_key_id=prefix, user_id=user,
                    group_id=group, model=model, provider=provider, code=code)
        assert got == n, "requests_total{%s, %s, %s}: %s, usage table: %d" % (
            prefix, model, code, got, n)
    # and what the clients saw, for every key and code (refusals have no usage row)
    for (who, status), n in seen.items():
        if who == "bogus":
            got = delta(after, before, "tollgate_requests_total", api_key_id="", user_id="",
                        group_id="", code=str(status))
        else:
            got = delta(after, before, "tollgate_requests_total", api_key_id=prefix_of[who],
                        code=str(status))
        assert got == n, "requests_total{%s, code=%s}: %s, clients saw %d" % (
            who, status, got, n)
    for labels, _ in family(after, "tollgate_requests_total"):
        if labels["api_key_id"] in who_of:
            assert labels["group_id"] and labels["user_id"], labels

    # tokens per type and cost, per key and model
    sums = defaultdict(lambda: Counter())
    for r in rows:
        for i, column in enumerate(("input_tokens", "output_tokens", "cache_read_tokens",
                                    "cache_write_tokens", "cost_micros")):
            sums[(r[0], r[3])][column] += int(r[6 + i])
    assert all(int(r[10]) > 0 for r in rows if r[5] == "200"), "a 200 was not priced"
    for (prefix, model), want in sums.items():
        for kind, column in TOKEN_TYPES.items():
            got = delta(after, before, "tollgate_tokens_consumed_total", api_key_id=prefix,
                        model=model, type=kind)
            assert got == want[column], "tokens{%s, %s, %s}: %s, usage table: %d" % (
                prefix, model, kind, got, want[column])
        got = delta(after, before, "tollgate_cost_usd_total", api_key_id=prefix, model=model)
        assert got * 1000000 == want["cost_micros"], "cost{%s, %s}: %s, usage table: %d" % (
            prefix, model, got, want["cost_micros"])
    for labels, value in family(after, "tollgate_cost_usd_total"):
        assert re.fullmatch(r"\d+\.\d{6}", str(value)), value  # exact, never 1e-05

    # refusals, histograms
    assert delta(after, before, "tollgate_ratelimit_rejections_total", limit="quota") == \
        30 - QUOTA_LIMIT
    assert delta(after, before, "tollgate_ratelimit_rejections_total", limit="bucket") == \
        30 - BUCKET_SIZE
    total = delta(after, before, "tollgate_requests_total")
    assert delta(after, before, "tollgate_request_duration_seconds_count") == total
    assert delta(after, before, "tollgate_upstream_duration_seconds_count") == len(rows)
    streams = sum(1 for r in rows if r[11] == "t" and r[5] == "200")
    assert streams == 30, streams
    assert delta(after, before, "tollgate_time_to_first_token_seconds_count") == streams
    for name in ("tollgate_request_duration_seconds", "tollgate_upstream_duration_seconds",
                 "tollgate_time_to_first_token_seconds"):
        assert types[name] == "histogram", types
        buckets = sorted(((Decimal(l["le"]) if l["le"] != "+Inf" else Decimal("Infinity")), v)
                         for l, v in family(after, name + "_bucket"))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), "%s buckets are not cumulative: %s" % (name, buckets)
        assert buckets[-1][1] == after[(name + "_count", ())], name
    # requests took at least the mock's 30 ms: none is in the 5 ms bucket among ours
    assert delta(after, before, "tollgate_upstream_duration_seconds_bucket", le="0.005") == 0
    assert types["tollgate_requests_total"] == "counter"
    assert types["tollgate_quota_alerts_total"] == "counter"

    # never a secret, a hash or a prompt
    for key in list(keys.values()):
        assert key not in text and key[11:] not in text
        assert s.key_hash(key)[2:] not in text
    assert marker not in text and "Say hello" not in text


# ---- access --------------------------------------------------------------------

def test_refused_without_an_allowed_address_or_the_token():
    s = metrics_stack()
    for headers in ({}, {"authorization": "Bearer " + TOKEN[:-1] + "x"},
                    {"authorization": "Bearer " + TOKEN + "x"},
                    {"authorization": TOKEN}, {"x-api-key": TOKEN},
                    {"authorization": "Bearer " + s.key()}):
        status, _, body = s.request("GET", "/metrics", headers=headers)
        assert status == 403, "GET /metrics with %s: %s" % (list(headers), status)
        etype, message = error_body(body)
        assert etype == "permission_error" and "tollgate_" not in body.decode(), body
    denied = [l for l in s.logs().splitlines() if "metrics.allow" in l]
    assert denied and TOKEN not in s.logs(), "403s not logged, or the token was"
    assert scrape(s).startswith("# HELP tollgate_requests_total ")
    status, headers, _ = s.request("POST", "/metrics", body="{}",
                                   headers={"authorization": "Bearer " + TOKEN})
    assert status == 405 and headers.get("allow") == "GET", (status, headers)


def test_loopback_is_allowed_by_default():
    s = main_stack()   # no metrics section in its config
    text = scrape(s, token=None)
    promtool_check(text)
    samples, _ = parse(text)
    assert ("tollgate_quota_alerts_total", ()) in samples


def test_stale_segment_of_an_older_layout_is_replaced():
    """A segment an older build left (layout version 2, without metrics) is
    unlinked and made afresh by the new workers: /metrics then counts from zero."""
    s = stack(tag="metrics-stale", processes=2, threads=2)
    key = s.key(group=uniq("metrics-stale"), user=uniq("metrics-stale-user"))
    assert s.messages(key)[0] == 200
    before, _ = parse(scrape(s, token=None))
    assert delta(before, {}, "tollgate_requests_total", api_key_id=key[:11]) == 1
    s.stop_workers()
    with open(s.shm_segment, "r+b") as f:
        f.write(struct.pack("<Q", 0x746f6c6c67617402))   # magic of layout version 2
    s.restart_workers()
    after, _ = parse(scrape(s, token=None))
    assert delta(after, {}, "tollgate_requests_total", api_key_id=key[:11]) == 0, \
        "the old segment's counters survived"
    assert s.messages(key)[0] == 200
    wait_for(lambda: delta(parse(scrape(s, token=None))[0], {}, "tollgate_requests_total",
                           api_key_id=key[:11]) == 1, 10, "the request after the restart")


def test_quota_used_ratio_comes_from_the_database():
    s = main_stack()
    group = uniq("metrics-ratio")
    key = s.key(group=group, user=uniq("metrics-ratio-u"))
    s.ctl("quota", "set", "--group", group, "--metric", "requests", "--window", "day",
          "--limit", "8")
    for _ in range(3):
        status, _, body = s.messages(key)
        assert status == 200, body
    text = scrape(s, token=None)
    promtool_check(text)
    samples, types = parse(text)
    assert types.get("tollgate_quota_used_ratio") == "gauge", types
    ratios = {(labels["subject"], labels["metric"], labels["window"]): v
              for labels, v in family(samples, "tollgate_quota_used_ratio")}
    assert ratios[("group:" + group, "requests", "day")] == Decimal("0.375"), ratios
    # the database down: the family stays, without samples, and the rest is served
    s.stop_db()
    try:
        text = scrape(s, token=None)
    finally:
        s.start_db()
    samples, types = parse(text)
    assert types.get("tollgate_quota_used_ratio") == "gauge"
    assert not family(samples, "tollgate_quota_used_ratio")
    assert family(samples, "tollgate_requests_total")
