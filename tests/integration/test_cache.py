"""The response cache on the real stack (issue 11, item 6): an identical
request (key order and whitespace aside) within the TTL is answered from the
host's shared memory without calling the provider, marked x-tollgate-cache: hit,
and billed as a usage row with outcome cache_hit, its tokens and zero cost;
another key's identical request is a miss (scope "key"); a chat request without
temperature 0 is not cached; embeddings are; the TTL expires; concurrent
identical requests are all answered whole.

Streams (the key ignores "stream"): a stream request whose key hits an entry
stored from a non-stream reply is answered with text/event-stream synthesized
from it, in the client's dialect (Anthropic events; OpenAI chunks, with the
usage chunk only when stream_options.include_usage asks), without a provider
call; parsed back and reassembled, it says what the stored reply says. A stream
miss is forwarded and its reply is not stored.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import harness

ADMIN_KEY = "tg-admin-cache-" + "x" * 24
_env = None
_openai = None


def env():
    global _env, _openai
    if _env is None:
        _openai = harness.Mock("mock_openai.py")
        harness.atexit.register(_openai.stop)
        st = harness.stack(tag="cache", extra_config={
            "cache": {"enabled": True, "ttl_ms": 3000, "scope": "key"},
            "admin": {"keys": [ADMIN_KEY]},
            "providers": {"openai": {"type": "openai",
                                     "base_url": "http://127.0.0.1:%d" % _openai.port,
                                     "api_key": "sk-openai-PROVIDERKEY", "timeout_ms": 10000}},
            "models": {"gpt-4o": {"provider": "openai", "max_output_tokens": 16384}}})
        st.ctl("price", "set", "gpt-4o", "--input", "2500000", "--output", "10000000")
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


# ---- streams served from the cache ----------------------------------------------

def stream(st, key, payload, path="/v1/messages", openai=False):
    """(status, headers, [(event, data)]) of a streamed request, read whole."""
    headers = {"authorization": "Bearer " + key} if openai else st.auth(key)
    resp = st.stream(payload, headers, path=path)
    events = [(event, data) for event, data, _ in resp]
    return resp.status, resp.headers, events


def reassemble_anthropic(events):
    """The Messages reply an SDK builds from the events (asserting their order)."""
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"], names
    message, partial = None, {}
    for name, data in events:
        data = json.loads(data)
        assert data["type"] == name, (name, data)
        if name == "message_start":
            message = data["message"]
            assert message["content"] == [] and message["stop_reason"] is None, message
        elif name == "content_block_start":
            assert data["index"] == len(message["content"]), data
            message["content"].append(data["content_block"])
        elif name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                assert delta["type"] == "input_json_delta", delta
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop":
            if data["index"] in partial:
                message["content"][data["index"]]["input"] = json.loads(partial[data["index"]])
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"].update(data["usage"])
    return message


def test_a_stream_request_hits_a_stored_reply_and_is_replayed_as_events():
    st, key, _ = env()
    tool = {"name": "get_weather", "input": {"city": "Z\u00fcrich \u65e5\u672c", "days": [1, 2]}}
    prompt = 'stream me %s MOCK%s' % (time.time(), json.dumps(
        {"text": "Looking it up \u2014 caf\u00e9 \U0001f326", "tool_use": tool,
         "usage": {"input_tokens": 33, "output_tokens": 12}}))
    st.clear_mock()
    status, h1, raw1 = post(st, key, body(prompt))
    assert status == 200 and h1.get("x-tollgate-cache") == "miss", h1
    stored = json.loads(raw1)
    assert [b["type"] for b in stored["content"]] == ["text", "tool_use"], stored
    status, h2, events = stream(st, key, body(prompt, stream=True))
    assert status == 200, events
    assert h2.get("x-tollgate-cache") == "hit" and h2.get("x-tollgate-cost-usd") == "0.000000", h2
    assert h2["content-type"].startswith("text/event-stream"), h2
    assert len(st.mock_requests("stream me")) == 1, "the stream hit called the provider"
    assert reassemble_anthropic(events) == stored
    assert not [d for _, d in events if d == "[DONE]"]
    assert row(st, h2["x-request-id"]) == ["cache_hit", "33", "12", "0"]
    # and the stored entry still answers the non-stream request as it was
    status, h3, raw3 = post(st, key, body(prompt))
    assert h3.get("x-tollgate-cache") == "hit" and raw3 == raw1, h3


def test_a_stream_miss_is_forwarded_and_not_stored():
    st, key, _ = env()
    prompt = "stream first " + str(time.time())
    st.clear_mock()
    for _ in range(2):
        status, headers, events = stream(st, key, body(prompt, stream=True))
        assert status == 200 and headers.get("x-tollgate-cache") == "miss", headers
        assert events[-1][0] == "message_stop", events[-3:]
    assert len(st.mock_requests("stream first")) == 2
    status, headers, _ = post(st, key, body(prompt))
    assert headers.get("x-tollgate-cache") == "miss", "a stream's reply was stored"


def chat_body(prompt, **extra):
    b = {"model": "gpt-4o", "temperature": 0, "messages": [{"role": "user", "content": prompt}]}
    b.update(extra)
    return b


def reassemble_openai(events, include_usage):
    """(message, finish_reason, usage chunk, chunk ids/models) of an OpenAI stream."""
    assert events[-1][1] == "[DONE]", events[-3:]
    chunks = [json.loads(d) for _, d in events[:-1]]
    message = {"role": None, "content": "", "tool_calls": []}
    finish, usage = None, None
    for i, c in enumerate(chunks):
        assert c["object"] == "chat.completion.chunk", c
        assert ("usage" in c) == include_usage, c
        if not c["choices"]:
            assert include_usage and i == len(chunks) - 1 and c["usage"], c
            usage = c["usage"]
            continue
        assert finish is None, "a chunk after the finish_reason"
        choice = c["choices"][0]
        delta, finish = choice["delta"], choice["finish_reason"]
        message["role"] = message["role"] or delta.get("role")
        message["content"] += delta.get("content") or ""
        for call in delta.get("tool_calls", []):
            if call["index"] == len(message["tool_calls"]):
                message["tool_calls"].append({"id": call["id"], "type": call["type"],
                                              "function": dict(call["function"])})
            else:
                message["tool_calls"][call["index"]]["function"]["arguments"] += \
                    call["function"]["arguments"]
    return message, finish, usage, {(c["id"], c["model"], c["created"]) for c in chunks}


def test_openai_stream_requests_hit_and_are_replayed_as_chunks():
    st, key, _ = env()
    calls = [{"name": "get_weather", "arguments": {"city": "K\u00f6ln", "unit": "c"}},
             {"name": "now", "arguments": {}}]
    prompt = "chat stream %s MOCK%s" % (time.time(), json.dumps(
        {"text": "Checking \u00e9t\u00e9 \U0001f30d", "tool_calls": calls,
         "usage": {"prompt_tokens": 50, "completion_tokens": 20, "cached_tokens": 10}}))
    _openai.clear()
    status, h1, raw1 = st.request("POST", "/v1/chat/completions", chat_body(prompt),
                                  {"authorization": "Bearer " + key})
    assert status == 200 and h1.get("x-tollgate-cache") == "miss", (h1, raw1[:300])
    stored = json.loads(raw1)
    want = stored["choices"][0]
    assert len(want["message"]["tool_calls"]) == 2, want
    for include_usage in (False, True):
        extra = {"stream": True}
        if include_usage:
            extra["stream_options"] = {"include_usage": True}
        status, h2, events = stream(st, key, chat_body(prompt, **extra),
                                    path="/v1/chat/completions", openai=True)
        assert status == 200 and h2.get("x-tollgate-cache") == "hit", h2
        assert h2["content-type"].startswith("text/event-stream"), h2
        assert h2.get("x-tollgate-cost-usd") == "0.000000", h2
        message, finish, usage, names = reassemble_openai(events, include_usage)
        assert names == {(stored["id"], stored["model"], stored["created"])}, names
        assert message["role"] == "assistant"
        assert message["content"] == (want["message"]["content"] or "")
        # the arguments byte for byte as stored
        assert message["tool_calls"] == want["message"]["tool_calls"], message
        assert finish == want["finish_reason"] == "tool_calls"
        if include_usage:
            for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
                assert usage[k] == stored["usage"][k], (usage, stored["usage"])
            assert usage["prompt_tokens_details"]["cached_tokens"] == 10, usage
        r = st.usage(h2["x-request-id"])
        assert (r["outcome"], r["input_tokens"], r["cache_read_tokens"], r["output_tokens"],
                r["cost_micros"]) == ("cache_hit", "40", "10", "20", "0"), r
    assert len([x for x in _openai.records() if "chat stream" in x["body"]]) == 1, \
        "a stream hit called the provider"
