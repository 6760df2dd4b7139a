"""OpenTelemetry traces (issue 14 item 6): spans exported over OTLP/HTTP with
JSON encoding to a collector (tests/mock/mock_otlp.py).

A request makes one SERVER span (its id the one sent upstream in traceparent,
its parent the client's span) with children for the reserve, each upstream
attempt (CLIENT) and the settle; the GenAI attributes equal the request's
usage row in PostgreSQL; nothing exported holds the prompt, the key or the
provider's key.  Sampling: ratio 0 with always_sample_errors exports only the
request that failed (and one whose client said "sampled").  A collector that
hangs, then one whose port is closed, costs the requests nothing: they answer
promptly while the drops and failures are counted on /metrics.
"""

import json
import re
import secrets
import socket
import statistics
import time
from decimal import Decimal

from harness import Mock, stack, wait_for

PROMPT_MARK = "otel-secret-prompt-" + secrets.token_hex(6)


def otel_stack(port, tag, **otel):
    cfg = {"endpoint": "http://127.0.0.1:%d/v1/traces" % port, "flush_ms": 100,
           "headers": {"x-collector-token": "collector-" + tag}}
    cfg.update(otel)
    return stack(tag="otel-" + tag, processes=2, threads=4, timeout_ms=10000,
                 extra_config={"otel": cfg})


_collector = None


def collector():
    global _collector
    if _collector is None:
        _collector = Mock("mock_otlp.py")
    return _collector


def exports():
    c = collector()
    st, _, body = c.request("GET", "/_mock/exports")
    assert st == 200
    return json.loads(body)


def all_spans():
    out = []
    for e in exports():
        for rs in e["body"]["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                out.extend(ss["spans"])
    return out


def attrs(span):
    out = {}
    for a in span.get("attributes", []):
        v = a["value"]
        if "stringValue" in v:
            out[a["key"]] = v["stringValue"]
        elif "intValue" in v:
            assert isinstance(v["intValue"], str), a  # int64 as a JSON string
            out[a["key"]] = int(v["intValue"])
        elif "boolValue" in v:
            out[a["key"]] = v["boolValue"]
        elif "arrayValue" in v:
            out[a["key"]] = [x["stringValue"] for x in v["arrayValue"]["values"]]
        else:
            raise AssertionError("untyped AnyValue %r" % a)
    return out


def trace_spans(trace_id, want=4, timeout=15):
    def got():
        spans = [s for s in all_spans() if s["traceId"] == trace_id]
        return spans if len(spans) >= want else None
    return wait_for(got, timeout, "%d spans of trace %s" % (want, trace_id))


def usage_row(s, request_id):
    cols = ("api_key_id user_id group_id provider model input_tokens output_tokens "
            "cost_micros http_status outcome").split()
    rows = wait_for(lambda: s.psql("select %s from tollgate.usage where request_id = '%s'" % (
        ", ".join(cols), request_id)), 15, "usage row")
    return dict(zip(cols, rows[0]))


def check_well_formed(span):
    assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"]), span
    assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"]), span
    assert isinstance(span["startTimeUnixNano"], str) and isinstance(span["endTimeUnixNano"], str)
    start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    assert abs(start / 1e9 - time.time()) < 600, span  # Unix nanoseconds, now-ish
    assert start <= end, span
    assert span["kind"] in (1, 2, 3), span
    assert span["status"]["code"] in (0, 1, 2), span


def check_request_trace(s, key, request_id, trace_id, client_span, stream):
    spans = trace_spans(trace_id)
    for sp in spans:
        check_well_formed(sp)
    servers = [sp for sp in spans if sp["kind"] == 2]
    assert len(servers) == 1, spans
    server = servers[0]
    assert server.get("parentSpanId") == client_span, server
    # the server span's id is the one sent upstream as the provider's parent
    sent = [r for r in s.mock_requests() if r["headers"].get("traceparent", "").startswith(
        "00-" + trace_id)]
    assert sent, "the provider got no traceparent of this trace"
    assert sent[-1]["headers"]["traceparent"].split("-")[2] == server["spanId"]
    children = [sp for sp in spans if sp is not server]
    for c in children:
        assert c["parentSpanId"] == server["spanId"], c
        assert int(server["startTimeUnixNano"]) <= int(c["startTimeUnixNano"])
        assert int(c["endTimeUnixNano"]) <= int(server["endTimeUnixNano"])
    names = sorted(c["name"] for c in children if c["kind"] == 1)
    assert names == ["tollgate.reserve", "tollgate.settle"], names
    attempts = [c for c in children if c["kind"] == 3]
    assert len(attempts) == 1, attempts
    a = attrs(attempts[0])
    assert a["tollgate.retry"] == 0 and a["http.response.status_code"] == 200, a
    assert a["tollgate.backend"] and a["gen_ai.system"] == "anthropic", a
    settle = attrs([c for c in children if c["name"] == "tollgate.settle"][0])
    assert settle["tollgate.settle.result"] == "settled", settle

    row = usage_row(s, request_id)
    sa = attrs(server)
    assert sa["gen_ai.operation.name"] == "chat"
    assert sa["gen_ai.system"] == "anthropic" and sa["gen_ai.provider.name"] == "anthropic"
    assert sa["gen_ai.request.model"] == "claude-haiku-4-5"
    assert sa["tollgate.model"] == row["model"]
    assert sa["gen_ai.response.model"], sa
    assert sa["gen_ai.usage.input_tokens"] == int(row["input_tokens"])
    assert sa["gen_ai.usage.output_tokens"] == int(row["output_tokens"])
    assert sa["gen_ai.usage.output_tokens"] > 0
    assert sa["tollgate.user_id"] == row["user_id"]
    assert sa["tollgate.group_id"] == row["group_id"]
    assert sa["tollgate.api_key_id"] == int(row["api_key_id"])
    assert sa["tollgate.cost_micros"] == int(row["cost_micros"])
    assert Decimal(sa["tollgate.cost_usd"]) == Decimal(int(row["cost_micros"])) / 1000000
    assert re.fullmatch(r"\d+\.\d{6}", sa["tollgate.cost_usd"]), sa
    assert sa["tollgate.outcome"] == row["outcome"] == "ok"
    assert sa["http.response.status_code"] == int(row["http_status"]) == 200
    assert sa["tollgate.request_id"] == request_id
    assert sa["tollgate.stream"] is stream
    if not stream:
        assert sa["gen_ai.response.finish_reasons"] == ["end_turn"], sa
    assert server["status"]["code"] == 0
    assert server["name"] == "chat claude-haiku-4-5"
    return spans


def test_non_stream_and_stream_spans_match_the_usage_row():
    c = collector()
    s = otel_stack(c.port, "live")
    key = s.key(group="otel-team", user="otel-user")
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = dict(s.auth(key), traceparent="00-%s-%s-01" % (trace_id, client_span))
    st, h, body = s.request("POST", "/v1/messages", s.body(prompt=PROMPT_MARK), headers)
    assert st == 200, body
    check_request_trace(s, key, h["x-request-id"], trace_id, client_span, stream=False)

    trace_id2, client_span2 = secrets.token_hex(16), secrets.token_hex(8)
    headers = dict(s.auth(key), traceparent="00-%s-%s-01" % (trace_id2, client_span2))
    stream = s.stream(s.body(prompt=PROMPT_MARK, stream=True), headers)
    assert stream.status == 200
    events = list(stream)
    assert any(e[0] == "message_stop" for e in events)
    check_request_trace(s, key, stream.headers["x-request-id"], trace_id2, client_span2,
                        stream=True)

    # without a traceparent, Tollgate's own trace: a root server span
    st, h, _ = s.request("POST", "/v1/messages", s.body(prompt=PROMPT_MARK), s.auth(key))
    assert st == 200
    rid = h["x-request-id"]
    server = wait_for(lambda: [sp for sp in all_spans() if sp["kind"] == 2 and attrs(sp).get(
        "tollgate.request_id") == rid], 15, "the span of %s" % rid)[0]
    assert "parentSpanId" not in server or server["parentSpanId"] == ""

    # the configured header went with every export; nothing secret did
    ex = exports()
    assert ex and all(e["headers"].get("x-collector-token") == "collector-live" for e in ex)
    raw = "\n".join(e["raw"] for e in ex)
    assert PROMPT_MARK not in raw
    assert key not in raw and key[3:20] not in raw
    assert s.provider_key not in raw
    assert "Say hello" not in raw and "Hello" not in raw  # the mock's reply text neither
    st, _, violations = c.request("GET", "/_mock/violations")
    assert json.loads(violations) == []

    def metric(name):
        _, _, text = s.request("GET", "/metrics")
        m = re.search(r"^%s (\d+)$" % name, text.decode(), re.M)
        return int(m.group(1)) if m else None
    assert wait_for(lambda: (metric("tollgate_otel_spans_exported_total") or 0) >= 12, 15,
                    "exported spans counted")
    assert metric("tollgate_otel_export_failures_total") == 0


def test_ratio_zero_exports_only_errors_and_client_sampled():
    c = collector()
    s = otel_stack(c.port, "ratio0", sample_ratio=0, always_sample_errors=True)
    key = s.key(group="otel-ratio", user="otel-ratio-user")
    ok_ids = []
    for _ in range(5):
        st, h, _ = s.request("POST", "/v1/messages", s.body(), s.auth(key))
        assert st == 200
        ok_ids.append(h["x-request-id"])
    st, h, _ = s.request("POST", "/v1/messages", s.body(directive={"status": 500}),
                         s.auth(key))
    assert st >= 500, st
    err_id = h["x-request-id"]
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = dict(s.auth(key), traceparent="00-%s-%s-01" % (trace_id, client_span))
    st, h, _ = s.request("POST", "/v1/messages", s.body(), headers)
    assert st == 200
    sampled_id = h["x-request-id"]

    def servers():
        return {attrs(sp)["tollgate.request_id"]: sp for sp in all_spans() if sp["kind"] == 2}
    got = wait_for(lambda: (lambda m: m if err_id in m and sampled_id in m else None)(servers()),
                   15, "the error's and the sampled request's spans")
    time.sleep(0.5)  # any span of the others would be out by now (flush_ms 100)
    got = servers()
    assert not set(ok_ids) & set(got), "ratio 0 exported a successful request"
    err = got[err_id]
    assert err["status"]["code"] == 2, err
    ea = attrs(err)
    assert ea["http.response.status_code"] >= 500 and ea["error.type"], ea
    assert ea["tollgate.outcome"] == usage_row(s, err_id)["outcome"]
    attempt = [sp for sp in all_spans() if sp["traceId"] == err["traceId"] and sp["kind"] == 3]
    assert attempt and attrs(attempt[0])["http.response.status_code"] == 500
    assert attempt[0]["status"]["code"] == 2
    assert got[sampled_id]["parentSpanId"] == client_span


def timed_requests(s, key, n):
    took = []
    for _ in range(n):
        t0 = time.monotonic()
        st, _, body = s.request("POST", "/v1/messages", s.body(), s.auth(key), timeout=20)
        took.append(time.monotonic() - t0)
        assert st == 200, body
    return took


def test_dead_collector_costs_requests_nothing():
    # a collector that accepts connections and never answers (it hangs) ...
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(128)
    port = hang.getsockname()[1]
    s = otel_stack(port, "dead", timeout_ms=3000, queue_spans=16, batch_spans=4, flush_ms=50)
    key = s.key(group="otel-dead", user="otel-dead-user")

    def metric(name):
        _, _, text = s.request("GET", "/metrics")
        return int(re.search(r"^%s (\d+)$" % name, text.decode(), re.M).group(1))
    took = timed_requests(s, key, 30)
    # each export waits 3 s for an answer; a request never does
    assert max(took) < 2.5, took
    assert statistics.median(took) < 1.0, took
    assert wait_for(lambda: metric("tollgate_otel_spans_dropped_total") > 0, 20,
                    "drops while the collector hangs")
    assert wait_for(lambda: metric("tollgate_otel_export_failures_total") > 0, 20,
                    "failed exports counted")
    assert metric("tollgate_otel_spans_exported_total") == 0
    # ... then its port is closed: refused at once, still nothing for the requests
    hang.close()
    failures = metric("tollgate_otel_export_failures_total")
    took = timed_requests(s, key, 20)
    assert max(took) < 2.5, took
    assert wait_for(lambda: metric("tollgate_otel_export_failures_total") > failures, 20,
                    "refused exports counted")
    assert "could not export" in s.logs()  # logged, and without the collector's header
    assert "collector-dead" not in s.logs()
