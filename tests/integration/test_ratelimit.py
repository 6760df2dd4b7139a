"""Request token buckets (issue 3 item 5): `local` buckets in shared memory
across a host's worker processes, `global` ones in PostgreSQL; exact under a
burst of concurrent requests from several client processes; per subject and
only where they match."""

import json
import struct
import subprocess
from collections import Counter

from harness import base_env, build_dir, error_body, stack
from test_quotas import (N, RACE_PROCESSES, RACE_REQUESTS, RACE_THREADS, quota_row, statuses,
                         uniq)

FILL_MS = 60000     # one token a minute: nothing refills during a race


def bucket(name, mode, per="group", match=None, max_tokens=N, fill_ms=FILL_MS):
    rule = {"name": name, "per": per, "mode": mode, "max_tokens": max_tokens,
            "tokens_per_fill": 1, "fill_interval_ms": fill_ms}
    if match:
        rule["match"] = match
    return rule


# Groups of the rules below (each stack is started once per run, so the
# buckets start full).
LOCAL_RACE, GLOBAL_RACE = "bucket-local-race", "bucket-global-race"
PER_KEY_LOCAL, PER_KEY_GLOBAL = "bucket-per-key-local", "bucket-per-key-global"


def local_stack():
    # several processes: the bucket must be shared between them
    return stack(tag="buckets-local", processes=4, threads=8, timeout_ms=10000,
                 extra_config={"rate_limits": [
                     bucket("race-local", "local", match={"group": LOCAL_RACE}),
                     bucket("per-key-local", "local", per="key", max_tokens=2,
                            match={"group": PER_KEY_LOCAL})]})


def global_race_stack():
    return stack(tag="buckets-global-race", processes=4, threads=8, timeout_ms=10000,
                 extra_config={"rate_limits": [
                     bucket("race-global", "global", match={"group": GLOBAL_RACE})]})


def global_per_key_stack():
    return stack(tag="buckets-global-per-key", processes=2, threads=4, timeout_ms=10000,
                 extra_config={"rate_limits": [
                     bucket("per-key-global", "global", per="key", max_tokens=2,
                            match={"group": PER_KEY_GLOBAL})]})


def race(s, group, rule_name):
    key = s.key(group=group, user=uniq("bucket-user"))
    # A quota too, so every request reserves: a refused one must give it back.
    s.ctl("quota", "set", "--group", group, "--metric", "requests", "--window", "total",
          "--limit", "100000")
    marker = uniq("bucket-race")
    body = json.dumps(s.body(prompt=marker, directive={"delay_ms": 300}))
    results = s.burst(key, [body] * RACE_REQUESTS, processes=RACE_PROCESSES,
                      threads=RACE_THREADS)
    got = statuses(results)
    assert got == Counter({200: N, 429: RACE_REQUESTS - N}), \
        "want exactly %d x 200 and %d x 429, got %s" % (N, RACE_REQUESTS - N, dict(got))
    for r in results:
        if r["status"] != 429:
            continue
        etype, message = error_body(r["body"])
        assert etype == "rate_limit_error", etype
        # local and global buckets speak alike, and never show the internal bucket key
        assert message.startswith('rate limit "%s" exceeded (bucket of %d requests' % (
            rule_name, N)), message
        assert key[:11] not in message, message
        retry = r["headers"].get("retry-after")
        assert retry and 1 <= int(retry) <= FILL_MS // 1000, "retry-after %r" % retry
    assert len(s.mock_requests(marker)) == N, "the provider saw %d requests" % len(
        s.mock_requests(marker))
    assert int(s.psql("select count(*) from tollgate.usage u join tollgate.api_keys k on "
                      "k.id = u.api_key_id where k.prefix = '%s'" % key[:11])[0][0]) == N
    assert s.psql("select count(*) from tollgate.reservations")[0][0] == "0", \
        "reservations left behind (a refused request's was not released?)"
    q = quota_row(s, "group", group, "requests", "total")
    assert (q["used"], q["reserved"]) == (N, 0), q
    return results


def test_local_bucket_race_across_processes_admits_exactly_n():
    s = local_stack()
    assert s.processes >= 2
    race(s, LOCAL_RACE, "race-local")


def test_global_bucket_race_admits_exactly_n():
    s = global_race_stack()
    race(s, GLOBAL_RACE, "race-global")
    rows = s.psql("select bucket, tokens from tollgate.rate_buckets")
    assert len(rows) == 1 and float(rows[0][1]) < 1, "bucket rows: %s" % rows


def per_key_and_match(s, group):
    a = s.key(group=group, user=uniq("bucket-a"))
    b = s.key(group=group, user=uniq("bucket-b"))
    other = s.key(group=uniq("bucket-other"), user=uniq("bucket-c"))
    got = {"a": [s.messages(a)[0] for _ in range(3)],
           "b": [s.messages(b)[0] for _ in range(3)],
           "other group": [s.messages(other)[0] for _ in range(4)]}
    want = {"a": [200, 200, 429], "b": [200, 200, 429], "other group": [200] * 4}
    assert got == want, "statuses %s, want %s (a bucket of 2 per key, only for group %s)" % (
        got, want, group)


def test_local_bucket_is_per_key_and_only_where_it_matches():
    per_key_and_match(local_stack(), PER_KEY_LOCAL)


def test_global_bucket_is_per_key_and_only_where_it_matches():
    per_key_and_match(global_per_key_stack(), PER_KEY_GLOBAL)


def test_requests_refused_locally_do_not_use_up_the_global_bucket():
    """A request the local bucket refuses was never served: the global bucket
    token (and quota) that reserve took for it must be given back."""
    s = stack(tag="buckets-both", processes=1, threads=2, extra_config={"rate_limits": [
        bucket("both-global", "global", per="key", max_tokens=5, fill_ms=600000),
        bucket("both-local", "local", per="key", max_tokens=2, fill_ms=600000)]})
    key = s.key(group=uniq("both"), user=uniq("both-user"))
    s.ctl("quota", "set", "--key", key[:11], "--metric", "requests", "--window", "hour",
          "--limit", "100")
    replies = [s.messages(key) for _ in range(5)]
    got = [status for status, _, _ in replies]
    assert got == [200, 200, 429, 429, 429], got
    # the refusals' headers count the reservation they gave back: 98 of 100 left
    remaining = [h.get("x-ratelimit-remaining-requests") for _, h, _ in replies]
    assert remaining == ["99", "98", "98", "98", "98"], remaining
    q = quota_row(s, "key", key[:11], "requests", "hour")
    assert (q["used"], q["reserved"]) == (2, 0), q
    rows = s.psql("select tokens from tollgate.rate_buckets where bucket = 'both-global:%s'"
                  % key[:11])
    assert rows and float(rows[0][0]) == 3, \
        "global bucket holds %s tokens after 2 requests served (of 5), want 3" % rows


def test_local_limits_survive_a_stale_shared_memory_segment():
    """Workers restarted on the same socket find the segment the previous ones
    left (nothing unlinks it).  One of an older layout, as the foundation's
    workers (layout version 1) leave it, must not turn local limits off."""
    s = stack(tag="buckets-stale-shm", processes=2, threads=2, extra_config={"rate_limits": [
        bucket("stale-two", "local", per="key", max_tokens=2)]})
    key = s.key(group=uniq("stale"), user=uniq("stale-user"))
    assert [s.messages(key)[0] for _ in range(3)] == [200, 200, 429]
    assert s.shm_segment.exists(), s.shm_segment
    s.stop_workers()
    with open(s.shm_segment, "r+b") as f:
        f.write(struct.pack("<Q", 0x746f6c6c67617401))   # magic of layout version 1
    s.restart_workers()
    key = s.key(group=uniq("stale"), user=uniq("stale-user"))
    got = [s.messages(key)[0] for _ in range(3)]
    off = [l for l in s.logs().splitlines() if "local rate limits are off" in l]
    assert got == [200, 200, 429] and not off, \
        "after a restart over an old segment: statuses %s, log: %s" % (got, off[:1])


ROUTE_LOCAL, ROUTE_GLOBAL = "bucket-route-local", "bucket-route-global"

# Spellings of POST /v1/messages that are not served (lighttpd passes
# REQUEST_URI as sent): a 404 in the endpoint's dialect that names the path,
# never another endpoint and never a bucket of their own.
NOT_SERVED = ["/v1/./messages", "//v1/messages", "/v1//messages", "/v1/x/../messages",
              "/v1/%6dessages", "/v1/messages/.", "/v1/messages//", "/v1/%2e/messages",
              "/./v1/messages"]


def route_stack():
    return stack(tag="buckets-route", processes=2, threads=2, extra_config={"rate_limits": [
        bucket("route-local", "local", per="route", max_tokens=3, match={"group": ROUTE_LOCAL}),
        bucket("route-global", "global", per="route", max_tokens=3,
               match={"group": ROUTE_GLOBAL})]})


def one_bucket_per_route(s, group):
    key = s.key(group=group, user=uniq("route-user"))
    for path in NOT_SERVED:
        status, _, raw = s.request("POST", path, s.body(), s.auth(key))
        etype, message = error_body(raw)
        assert (status, etype) == (404, "not_found_error"), (path, status, raw[:200])
        assert '"/v1/messages"' in message, (path, message)
    # an OpenAI path spelled otherwise is answered in OpenAI's shape
    status, _, raw = s.request("POST", "/v1/chat/completions/./", {"model": "x"},
                               {"authorization": "Bearer " + key})
    doc = json.loads(raw)
    assert status == 404 and "type" not in doc and doc["error"]["code"] == "not_found" \
        and '"/v1/chat/completions"' in doc["error"]["message"], raw[:300]
    # the served spellings share one bucket of 3, whatever the order
    served = ["/v1/messages", "/v1/messages/", "/v1/messages", "/v1/messages/",
              "/v1/messages"]
    got = [s.request("POST", path, s.body(), s.auth(key))[0] for path in served]
    assert got == [200, 200, 200, 429, 429], "statuses %s for %s (one bucket of 3)" % (
        got, served)


def test_local_route_bucket_is_one_per_endpoint_whatever_the_spelling():
    one_bucket_per_route(route_stack(), ROUTE_LOCAL)


def test_global_route_bucket_is_one_per_endpoint_whatever_the_spelling():
    s = route_stack()
    one_bucket_per_route(s, ROUTE_GLOBAL)
    rows = s.psql("select bucket from tollgate.rate_buckets where bucket like 'route-global:%'")
    assert rows == [["route-global:/v1/messages"]], rows


def test_bad_rate_limit_and_quota_config_refused():
    s = local_stack()
    base = json.loads(s.config.read_text())
    bad = {
        "unknown quotas key": {"quotas": {"estimater": "upper_bound"}},
        "bad estimator": {"quotas": {"estimator": "exact"}},
        "bad on_database_down": {"quotas": {"on_database_down": "allow"}},
        "bad mode": {"rate_limits": [bucket("x", "cluster")]},
        "bad per": {"rate_limits": [bucket("x", "local", per="planet")]},
        "unknown match key": {"rate_limits": [bucket("x", "local", match={"team": "a"})]},
        "duplicate names": {"rate_limits": [bucket("x", "local"), bucket("x", "global")]},
        "zero fill": {"rate_limits": [dict(bucket("x", "local"), tokens_per_fill=0)]},
    }
    path = s.dir / "bad.json"
    env = base_env(ANTHROPIC_API_KEY="sk-ant-test-check")
    for what, change in bad.items():
        path.write_text(json.dumps(dict(base, **change)))
        p = subprocess.run([build_dir() / "fcgi" / "tollgate-fcgi", "-c", path, "--check"],
                           capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode != 0, "%s: accepted %s" % (what, change)
    path.write_text(json.dumps(dict(base, quotas={
        "estimator": "approximate", "on_database_down": "local_only",
        "sweep_interval_ms": 500, "reservation_ttl_ms": 120000})))
    p = subprocess.run([build_dir() / "fcgi" / "tollgate-fcgi", "-c", path, "--check"],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0, "a valid quotas section refused: %s" % p.stderr
