"""Pre-authentication (issue 12): a flood of made-up keys must not cost
PostgreSQL a tollgate.reserve each.  auth.failure_limit counts failed
authentications per client address in the host's shared memory and, once an
address is over it, refuses its requests with 429 before any database work
(keys recently valid on this host still pass); auth.unknown_key_cache_ms
answers a key PostgreSQL just called unknown with 401 without asking again.
Revocation stays immediate: nothing but "no such key" is remembered.

No database work is proven by stopping PostgreSQL: a request that needed it
answers 503 (fail closed), one refused before it answers 429 or 401.  Every
client here is on loopback; each test speaks from its own address (127.0.0.N,
loopback too on Linux, passed on by lighttpd as REMOTE_ADDR)."""

import http.client
import json
import re
import secrets
import time

from harness import error_body, main_stack, stack, wait_for

MAX, PER_MS, TTL_MS = 5, 60000, 4000


def preauth_stack():
    # two processes: the tables must be the host's, not a worker's
    return stack(tag="preauth", processes=2, threads=4, timeout_ms=5000,
                 extra_config={"auth": {"failure_limit": {"max": MAX, "per_ms": PER_MS},
                                        "unknown_key_cache_ms": TTL_MS}})


def send(s, src, key=None, path="/v1/messages", bearer=False, timeout=30):
    """POST a small request from source address src; (status, headers, body)."""
    if path == "/v1/chat/completions":
        body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}
    else:
        body = s.body()
    headers = s.auth(key, bearer)
    headers["content-type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=timeout,
                                      source_address=(src, 0))
    try:
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def made_up_key():
    return "tg-" + secrets.token_urlsafe(32)


def metric(s, name):
    status, _, body = s.request("GET", "/metrics")
    assert status == 200, body[:300]
    m = re.search(r"^%s (\d+)$" % name, body.decode(), re.M)
    assert m, "%s not in /metrics" % name
    return int(m.group(1))


def log_line(s, request_id):
    for line in s.logs().splitlines():
        if request_id in line:
            return json.loads(line)
    raise AssertionError("no log line for %s" % request_id)


def database_stopped(s):
    """A context that stops PostgreSQL and starts it again (workers reconnect)."""
    class Ctx:
        def __enter__(self):
            s.stop_db()

        def __exit__(self, *exc):
            s.start_db()
            key = s.default_key()
            wait_for(lambda: send(s, "127.0.0.1", key)[0] == 200, 30,
                     "a request to succeed once PostgreSQL is back")
    return Ctx()


def test_made_up_keys_from_one_address_are_refused_before_the_database():
    s = preauth_stack()
    flood, other = "127.0.0.2", "127.0.0.3"
    refusals = metric(s, "tollgate_preauth_refusals_total")
    for i in range(MAX):
        status, _, body = send(s, flood, made_up_key())
        assert status == 401, (i, status, body[:300])
        assert error_body(body) == ("authentication_error", "invalid x-api-key")
    status, headers, body = send(s, flood, made_up_key())
    assert status == 429, body[:300]
    kind, message = error_body(body)
    assert kind == "rate_limit_error" and "failed authentications" in message, body
    # one failure comes back every PER_MS / MAX ms
    assert 1 <= int(headers["retry-after"]) <= PER_MS // MAX // 1000, headers
    line = log_line(s, headers["x-request-id"])
    assert line["outcome"] == "rate_limited" and line["http_status"] == 429, line
    # in the OpenAI dialect too, and for a request without any key
    status, _, body = send(s, flood, made_up_key(), path="/v1/chat/completions", bearer=True)
    assert status == 429, body[:300]
    err = json.loads(body)["error"]
    assert err["type"] == "rate_limit_error" or err["code"] == "rate_limit_exceeded", err
    status, _, body = send(s, flood, None)
    assert status == 429, body[:300]
    assert metric(s, "tollgate_preauth_refusals_total") >= refusals + 3
    # a valid key from another address is not affected
    key = s.key(name="preauth-other-address")
    status, _, body = send(s, other, key)
    assert status == 200, body[:300]
    # no database work: with PostgreSQL stopped the flood still gets a fast
    # 429, while a made-up key from an address within its budget (which must
    # be looked up) gets 503
    with database_stopped(s):
        for _ in range(20):
            started = time.monotonic()
            status, _, body = send(s, flood, made_up_key(), timeout=10)
            assert status == 429, body[:300]
            assert time.monotonic() - started < 1.0
        status, _, body = send(s, other, made_up_key(), timeout=30)
        assert status == 503, body[:300]


def test_a_recently_valid_key_passes_an_address_over_its_budget():
    s = preauth_stack()
    office = "127.0.0.4"
    alice, bob = s.key(name="preauth-alice"), s.key(name="preauth-bob")
    assert send(s, office, alice)[0] == 200   # alice's key is now known good on this host
    for _ in range(MAX):
        assert send(s, office, made_up_key())[0] == 401
    assert send(s, office, made_up_key())[0] == 429
    status, _, body = send(s, office, alice)
    assert status == 200, body[:300]          # still looked up and served
    # bob's key was never seen on this host: it cannot be told from a made-up
    # one without the database, so it waits like the flood (documented)
    status, _, body = send(s, office, bob)
    assert status == 429, body[:300]


def test_an_unknown_key_is_looked_up_once_within_the_cache_ttl():
    s = preauth_stack()
    src = "127.0.0.5"
    key = made_up_key()
    hits = metric(s, "tollgate_unknown_key_cache_hits_total")
    status, _, body = send(s, src, key)       # looked up: PostgreSQL says unknown
    assert status == 401, body[:300]
    asked = time.monotonic()
    with database_stopped(s):
        status, _, body = send(s, src, key, timeout=10)
        assert time.monotonic() - asked < TTL_MS / 1000, "too slow to test the cache"
        assert status == 401, body[:300]      # not 503: no round trip
        assert error_body(body) == ("authentication_error", "invalid x-api-key")
        assert metric(s, "tollgate_unknown_key_cache_hits_total") == hits + 1
        time.sleep(max(0, TTL_MS / 1000 + 0.3 - (time.monotonic() - asked)))
        status, _, body = send(s, src, key, timeout=30)
        assert status == 503, body[:300]      # the entry expired: looked up again


def test_revocation_stays_immediate():
    s = preauth_stack()
    src = "127.0.0.6"
    key = s.key(name="preauth-revoked")
    assert send(s, src, key)[0] == 200
    assert send(s, src, key)[0] == 200
    s.revoke(key)
    for _ in range(2):                        # at once, and not cached as valid
        status, _, body = send(s, src, key)
        assert status == 401, body[:300]
        assert error_body(body) == ("authentication_error", "API key has been revoked")
    # its refusals counted as failures and took it out of the recently-valid
    # set: once the address is over its budget, the revoked key is refused
    # without a lookup too
    for _ in range(MAX - 2):
        assert send(s, src, made_up_key())[0] == 401
    status, _, body = send(s, src, key)
    assert status == 429, body[:300]


def test_the_limit_can_be_turned_off():
    # the harness's default config has "failure_limit": false
    s = main_stack()
    for _ in range(3 * MAX):
        status, _, body = send(s, "127.0.0.7", made_up_key())
        assert status == 401, body[:300]
