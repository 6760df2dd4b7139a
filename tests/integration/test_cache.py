"""The response cache on the real stack (issue 11, item 6): an identical
request (key order and whitespace aside) within the TTL is answered from the
host's shared memory without calling the provider, marked x-tollgate-cache: hit,
and billed as a usage row with outcome cache_hit, its tokens and zero cost;
another key's identical request is a miss (scope "key"); a chat request without
temperature 0 is not cached; embeddings are; the TTL expires; concurrent
identical requests are all answered whole.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import harness

ADMIN_KEY = "tg-admin-cache-" + "x" * 24
_env = None


def env():
    global _env
    if _env is None:
        st = harness.stack(tag="cache", extra_config={
            "cache": {"enabled": True, "ttl_ms": 3000, "scope": "key"},
            "admin": {"keys": [ADMIN_KEY]}})
        _env = (st, st.key(group="ca", user="ca-1"), st.key(group="ca", user="ca-2"))
    return _env


def body(prompt, **extra):
    b = {"model": "claude-haiku-4-5", "max_tokens": 64, "temperature": 0,
         "messages": [{"role": "user", "content": prompt}]}
    b.update(extra)
    return b


def post(st, key, payload):
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    return st.request("POST", "/v1/messages", payload, st.auth(key))


def row(st, request_id):
    rows = harness.wait_for(lambda: st.psql(
        "select outcome, input_tokens, output_tokens, cost_micros from tollgate.usage "
        "where request_id = '%s'" % request_id), 10, "the usage row")
    return rows[0]


def test_a_repeat_is_a_hit_without_a_provider_call_billed_at_zero():
    st, key, other = env()
    prompt = 'cache me MOCK{"usage": {"input_tokens": 40, "output_tokens": 9}}'
    st.clear_mock()
    status, h1, raw1 = post(st, key, body(prompt))
    assert status == 200 and h1.get("x-tollgate-cache") == "miss", h1
    # the same request, its keys in another order and spaced out
    same = json.dumps(dict(reversed(list(body(prompt).items()))), indent=2)
    status, h2, raw2 = post(st, key, same)
    assert status == 200 and h2.get("x-tollgate-cache") == "hit", h2
    assert raw2 == raw1 and h2.get("x-tollgate-cost-usd") == "0.000000", h2
    assert len(st.mock_requests("cache me")) == 1, "the hit called the provider"
    assert row(st, h2["x-request-id"]) == ["cache_hit", "40", "9", "0"]
    assert row(st, h1["x-request-id"])[0] == "ok"
    # another key's identical request: its own scope, a miss
    status, h3, _ = post(st, other, body(prompt))
    assert status == 200 and h3.get("x-tollgate-cache") == "miss", h3
    assert len(st.mock_requests("cache me")) == 2


def test_not_cached_without_temperature_zero_and_the_ttl_expires():
    st, key, _ = env()
    prompt = "warm " + str(time.time())
    for _ in range(2):
        status, headers, _ = post(st, key, body(prompt, temperature=0.7))
        assert status == 200 and "x-tollgate-cache" not in headers, headers
    assert len(st.mock_requests(prompt)) == 2
    cold = "cold " + str(time.time())
    post(st, key, body(cold))
    status, headers, _ = post(st, key, body(cold))
    assert headers.get("x-tollgate-cache") == "hit", headers
    time.sleep(3.2)
    status, headers, _ = post(st, key, body(cold))
    assert headers.get("x-tollgate-cache") == "miss", headers


def test_concurrent_identical_requests_are_all_answered_whole():
    st, key, _ = env()
    prompt = "together " + str(time.time())
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: post(st, key, body(prompt)), range(10)))
    assert all(status == 200 for status, _, _ in results), [r[0] for r in results]
    texts = {json.loads(raw)["content"][0]["text"] for _, _, raw in results}
    assert len(texts) == 1, texts


def test_cache_counters_on_metrics():
    st, key, _ = env()
    def value(name):
        status, _, raw = st.request("GET", "/metrics")
        line = [l for l in raw.decode().splitlines() if l.startswith(name + " ")]
        assert status == 200 and line, name
        return int(line[0].split()[1])
    hits = value("tollgate_cache_hits_total")
    prompt = "counted " + str(time.time())
    post(st, key, body(prompt))
    post(st, key, body(prompt))
    assert value("tollgate_cache_hits_total") == hits + 1
    assert value("tollgate_cache_entries") >= 1


def admin(st, method, path):
    status, _, raw = st.request(method, path, headers={"authorization": "Bearer " + ADMIN_KEY})
    return status, json.loads(raw)


def test_admin_cache_shows_counters_and_purges_by_scope():
    st, key, other = env()
    prompt = "purge me " + str(time.time())
    post(st, key, body(prompt))
    post(st, other, body(prompt))
    status, shown = admin(st, "GET", "/admin/cache")
    assert status == 200 and shown["enabled"] is True and shown["entries"] >= 2, shown
    assert {"hits", "misses", "evictions", "bytes"} <= set(shown), shown
    key_id = st.psql("select id from tollgate.api_keys where prefix = '%s'" % key[:11])[0][0]
    status, purged = admin(st, "DELETE", "/admin/cache?scope=key%%3A%s" % key_id)
    assert status == 200 and purged["purged"] >= 1, purged
    _, h, _ = post(st, key, body(prompt))
    assert h.get("x-tollgate-cache") == "miss", "the purged scope still hit"
    _, h, _ = post(st, other, body(prompt))
    assert h.get("x-tollgate-cache") == "hit", "another scope was purged too"
    status, purged = admin(st, "DELETE", "/admin/cache")
    assert status == 200 and purged["purged"] >= 2, purged
    status, _ = admin(st, "DELETE", "/admin/cache?scope=" + "k" * 200)
    assert status == 400
