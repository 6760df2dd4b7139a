"""POST /v1/messages end to end: bodies, streams, usage rows and prices."""

import json
import re
import secrets

from harness import main_stack

HAIKU = "claude-haiku-4-5-20251001"


def cost_usd(micros):
    micros = int(micros)
    return "%d.%06d" % (micros // 1000000, micros % 1000000)


def expected_cost(s, model, usage):
    """round_half_up(sum(tokens x micros per Mtok) / 1e6) from the price table."""
    rows = s.psql("select input_micros_per_mtok, output_micros_per_mtok, "
                  "cache_read_micros_per_mtok, cache_write_micros_per_mtok "
                  "from tollgate.prices where model = '%s' and effective_from <= now() "
                  "order by effective_from desc limit 1" % model)
    assert rows, "no price row for %s" % model
    rates = [int(x) for x in rows[0]]
    assert all(r > 0 for r in rates), "%s has a zero price: %s" % (model, rates)
    tokens = [usage["input_tokens"], usage["output_tokens"],
              usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]]
    return (sum(t * r for t, r in zip(tokens, rates)) + 500000) // 1000000


def test_non_stream_body_unchanged():
    s = main_stack()
    marker = secrets.token_hex(6)
    status, headers, body = s.messages(s.default_key(), prompt="plain " + marker)
    assert status == 200, (status, body)
    recs = s.mock_requests(marker)
    assert len(recs) == 1, "mock saw %d requests" % len(recs)
    assert body == recs[0]["response_body"].encode("utf-8"), \
        "body differs:\n%r\n%r" % (body, recs[0]["response_body"])
    rid = headers.get("x-request-id")
    assert rid, "no x-request-id in %s" % headers
    row = s.usage(rid)
    assert headers.get("x-tollgate-cost-usd") == cost_usd(row["cost_micros"]), \
        (headers.get("x-tollgate-cost-usd"), row["cost_micros"])
    leaked = [h for h in headers if h.startswith("anthropic-ratelimit-")]
    assert not leaked, "provider rate-limit headers passed through: %s" % leaked


def test_bearer_authorization_accepted():
    s = main_stack()
    status, _, body = s.messages(s.default_key(), bearer=True)
    assert status == 200, (status, body)


def test_stream_events_unbuffered():
    s = main_stack()
    marker = secrets.token_hex(6)
    usage = {"input_tokens": 21, "output_tokens": 34}
    body = s.body(prompt="stream " + marker, stream=True,
                  directive={"event_delay_ms": 300, "chunks": 5, "usage": usage})
    resp = s.stream(body, s.auth(s.default_key()))
    assert resp.status == 200, (resp.status, resp.read())
    rid = resp.headers.get("x-request-id")
    assert rid, "no x-request-id in %s" % resp.headers
    assert resp.headers.get("content-type", "").startswith("text/event-stream"), resp.headers
    got = list(resp)
    rec = s.mock_requests(marker)[0]
    want = [(e["event"], e["data"]) for e in parse_sse(rec["response_body"])]
    assert [(e, d) for e, d, _ in got] == want, "events differ:\n%s\n%s" % (got, want)
    assert got[0][2] < rec["t_last_event"], \
        "first event arrived %.3fs after the mock's last one (buffered)" % (
            got[0][2] - rec["t_last_event"])
    row = s.usage(rid)
    assert (row["input_tokens"], row["output_tokens"], row["stream"]) == ("21", "34", "t"), row
    assert row["http_status"] == "200" and row["outcome"] == "ok", row


def parse_sse(text):
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields:
            events.append(fields)
    return events


USAGE = {"input_tokens": 1234, "output_tokens": 567,
         "cache_read_input_tokens": 8901, "cache_creation_input_tokens": 2345}
PRICED = [  # (test name, model requested, model recorded, stream)
    ("haiku", HAIKU, HAIKU, False),
    ("haiku_alias", "claude-haiku-4-5", HAIKU, False),
    ("sonnet", "claude-sonnet-4-5", "claude-sonnet-4-5", False),
    ("sonnet_stream", "claude-sonnet-4-5", "claude-sonnet-4-5", True),
]


def make_usage_test(requested, recorded, stream):
    def test():
        s = main_stack()
        body = s.body(model=requested, stream=stream, directive={"usage": USAGE})
        if stream:
            resp = s.stream(body, s.auth(s.default_key()))
            status, headers, _ = resp.status, resp.headers, list(resp)
        else:
            status, headers, _ = s.request("POST", "/v1/messages", body,
                                           s.auth(s.default_key()))
        assert status == 200, status
        row = s.usage(headers["x-request-id"])
        got = {k: row[k] for k in ("model", "provider", "input_tokens", "output_tokens",
                                   "cache_read_tokens", "cache_write_tokens", "stream",
                                   "http_status", "outcome")}
        want = {"model": recorded, "provider": "anthropic",
                "input_tokens": str(USAGE["input_tokens"]),
                "output_tokens": str(USAGE["output_tokens"]),
                "cache_read_tokens": str(USAGE["cache_read_input_tokens"]),
                "cache_write_tokens": str(USAGE["cache_creation_input_tokens"]),
                "stream": "t" if stream else "f", "http_status": "200", "outcome": "ok"}
        assert got == want, "usage row %s, want %s" % (got, want)
        cost = expected_cost(s, recorded, USAGE)
        assert int(row["cost_micros"]) == cost, "cost %s, want %d" % (row["cost_micros"], cost)
        if not stream:
            assert headers.get("x-tollgate-cost-usd") == cost_usd(cost), headers
    return test


for _name, *_args in PRICED:
    globals()["test_usage_and_cost_" + _name] = make_usage_test(*_args)


def test_models_lists_configured():
    s = main_stack()
    status, _, body = s.request("GET", "/v1/models", headers=s.auth(s.default_key()))
    assert status == 200, (status, body)
    doc = json.loads(body)
    ids = {m["id"] for m in doc["data"]}
    assert {HAIKU, "claude-sonnet-4-5"} <= ids, ids
    assert all(m.get("type") == "model" for m in doc["data"]), doc
    assert doc.get("has_more") is False, doc


def test_health_ok():
    s = main_stack()
    status, _, body = s.request("GET", "/health")
    assert status == 200, (status, body)
    assert json.loads(body).get("database") == "ok", body


def test_log_line_per_request():
    s = main_stack()
    client_id = "client-trace-" + secrets.token_hex(4)
    _, headers, _ = s.request("POST", "/v1/messages", s.body(),
                              dict(s.auth(s.default_key()), **{"x-request-id": client_id}))
    rid = headers["x-request-id"]
    assert rid != client_id, "the gateway's id is its own uuid (the usage row's key)"
    lines = [json.loads(l) for l in s.logs().splitlines() if rid in l]
    assert len(lines) == 1, "%d log lines for %s" % (len(lines), rid)
    fields = ("ts request_id http_status api_key_id user_id group_id provider model "
              "input_tokens output_tokens total_tokens cost_usd latency_ms upstream_ms "
              "stream outcome pid").split()
    missing = [f for f in fields if f not in lines[0]]
    assert not missing, "log line lacks %s: %s" % (missing, lines[0])
    assert lines[0]["client_request_id"] == client_id, lines[0]
    assert lines[0]["pid"] in s.worker_pids, (lines[0]["pid"], s.worker_pids)
    # an id that is not a plain token is not logged (no log injection, no size games)
    _, headers, _ = s.request("POST", "/v1/messages", s.body(),
                              dict(s.auth(s.default_key()), **{"x-request-id": "a b\"c"}))
    line = [json.loads(l) for l in s.logs().splitlines() if headers["x-request-id"] in l][0]
    assert "client_request_id" not in line, line
    # nor one that looks like a credential: a key sent there by mistake stays out of the log
    key = s.default_key()
    _, headers, _ = s.request("POST", "/v1/messages", s.body(),
                              dict(s.auth(key), **{"x-request-id": key}))
    assert key not in s.logs(), "a key sent as x-request-id reached the log"


def _access_line(s, request_id):
    for line in s.logs().splitlines():
        if '"event":"request"' in line and request_id in line:
            return json.loads(line)
    raise AssertionError("no access line for %s" % request_id)


def test_traceparent_propagated_to_provider_and_logged():
    s = main_stack()
    marker = secrets.token_hex(6)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = dict(s.auth(s.default_key()), traceparent=parent, tracestate="vendor=abc")
    status, resp_headers, body = s.request("POST", "/v1/messages",
                                           s.body(prompt="trace " + marker), headers)
    assert status == 200, body
    sent = s.mock_requests(marker)[0]["headers"]
    version, trace_id, span_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01"), sent
    assert span_id != "00f067aa0ba902b7" and len(span_id) == 16, "Tollgate is a new span"
    assert sent.get("tracestate") == "vendor=abc", sent
    line = _access_line(s, resp_headers["x-request-id"])
    assert line["trace_id"] == trace_id and line["span_id"] == span_id, line
    assert line["parent_span_id"] == "00f067aa0ba902b7", line


def test_trace_started_when_absent_or_invalid():
    s = main_stack()
    seen = set()
    for parent in (None, "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "junk"):
        marker = secrets.token_hex(6)
        headers = dict(s.auth(s.default_key()))
        if parent is not None:
            headers["traceparent"] = parent
            headers["tracestate"] = "vendor=dropped"
        status, resp_headers, body = s.request("POST", "/v1/messages",
                                               s.body(prompt="trace " + marker), headers)
        assert status == 200, body
        sent = s.mock_requests(marker)[0]["headers"]
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", sent["traceparent"]), sent
        trace_id = sent["traceparent"].split("-")[1]
        assert trace_id != "0" * 32 and trace_id not in seen, "a new trace each time"
        seen.add(trace_id)
        assert "tracestate" not in sent, "a tracestate without its traceparent is dropped"
        line = _access_line(s, resp_headers["x-request-id"])
        assert line["trace_id"] == trace_id and "parent_span_id" not in line, line


def test_count_tokens_is_forwarded_unbilled_and_checked_by_rbac():
    """POST /v1/messages/count_tokens: the provider's count, no usage row, no
    reservation; the model must be allowed; a non-Anthropic backend is a 400."""
    s = main_stack()
    key = s.default_key()
    body = {"model": "claude-haiku-4-5", "messages": [
        {"role": "user", "content": 'count me MOCK{"usage": {"input_tokens": 321}}'}]}
    before = s.usage_count(key)
    status, headers, raw = s.request("POST", "/v1/messages/count_tokens", body, s.auth(key))
    assert status == 200 and json.loads(raw) == {"input_tokens": 321}, raw[:200]
    assert s.mock_requests("count me")[-1]["path"] == "/v1/messages/count_tokens"
    assert s.usage_count(key) == before, "count_tokens was billed"
    status, _, raw = s.request("POST", "/v1/messages/count_tokens", {"model": "claude-haiku-4-5"},
                               s.auth(key))
    assert status == 400 and b"messages" in raw, raw[:200]
    status, _, raw = s.request("POST", "/v1/messages/count_tokens", body, s.auth("tg-nope"))
    assert status == 401, raw[:200]
