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

import atexit
import json
import os
import re
import secrets
import signal
import socket
import statistics
import threading
import time
from decimal import Decimal

from harness import Mock, Stack, pid_gone, stack, wait_for

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

    # without a traceparent, Tollgate's own trace: a root server span, sampled (ratio 1)
    root_mark = PROMPT_MARK + "-root-" + secrets.token_hex(4)
    st, h, _ = s.request("POST", "/v1/messages", s.body(prompt=root_mark), s.auth(key))
    assert st == 200
    rid = h["x-request-id"]
    sent = [r["headers"]["traceparent"] for r in s.mock_requests(root_mark)]
    assert len(sent) == 1 and sent[0].endswith("-01"), sent
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
    mark = "ratio0-" + secrets.token_hex(6)
    for _ in range(5):
        st, h, _ = s.request("POST", "/v1/messages", s.body(prompt=mark), s.auth(key))
        assert st == 200
        ok_ids.append(h["x-request-id"])
    err_mark = "ratio0-err-" + secrets.token_hex(6)
    st, h, _ = s.request("POST", "/v1/messages", s.body(prompt=err_mark,
                                                         directive={"status": 500}), s.auth(key))
    assert st >= 500, st
    err_id = h["x-request-id"]
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = dict(s.auth(key), traceparent="00-%s-%s-01" % (trace_id, client_span))
    client_mark = "ratio0-client-" + secrets.token_hex(6)
    st, h, _ = s.request("POST", "/v1/messages", s.body(prompt=client_mark), headers)
    assert st == 200
    sampled_id = h["x-request-id"]
    # the traceparent sent upstream says what the ratio decided at the start: not sampled
    # (00) for the traces Tollgate started, the error's too; the client's flag is kept
    flags = lambda m: [r["headers"]["traceparent"].split("-")[3] for r in s.mock_requests(m)]
    assert flags(mark) == ["00"] * 5, flags(mark)
    assert flags(err_mark) == ["00"], flags(err_mark)
    assert flags(client_mark) == ["01"], flags(client_mark)
    tp = "00-%s-%s-00" % (secrets.token_hex(16), secrets.token_hex(8))
    unsampled_mark = "ratio0-client00-" + secrets.token_hex(6)
    st, h, _ = s.request("POST", "/v1/messages", s.body(prompt=unsampled_mark),
                         dict(s.auth(key), traceparent=tp))
    assert st == 200
    ok_ids.append(h["x-request-id"])
    assert flags(unsampled_mark) == ["00"], flags(unsampled_mark)

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
    # after each failure the exporter backs off (1, 2, 4 ... 30 s): meanwhile a request's
    # spans are counted as dropped and never built; requests go on, one every 0.2 s,
    # until the exporter tried again and was refused
    took, deadline = [], time.monotonic() + 40
    while time.monotonic() < deadline:
        took += timed_requests(s, key, 1)
        if metric("tollgate_otel_export_failures_total") > failures:
            break
        time.sleep(0.2)
    assert metric("tollgate_otel_export_failures_total") > failures, "no refused export counted"
    assert max(took) < 2.5, took
    assert metric("tollgate_otel_spans_exported_total") == 0
    logs = s.logs()
    assert "could not export" in logs  # logged, and without the collector's header
    assert "collector-dead" not in logs
    # logged once per run of failures, not once per failed export
    assert logs.count("could not export") <= 2, logs.count("could not export")


# ---- the response as the provider named it, in both dialects and translated ----------------

_openai = None


def openai_mock():
    global _openai
    if _openai is None:
        _openai = Mock("mock_openai.py")
        atexit.register(_openai.stop)
    return _openai


def dialects_stack():
    c, o = collector(), openai_mock()
    s = stack(tag="otel-dialects", processes=2, threads=4, timeout_ms=10000, extra_config={
        "otel": {"endpoint": "http://127.0.0.1:%d/v1/traces" % c.port, "flush_ms": 100},
        "providers": {"openai": {"type": "openai", "api_key": "sk-oa-PROVIDERKEY",
                                 "base_url": "http://127.0.0.1:%d" % o.port}},
        "models": {"gpt-4o": {"provider": "openai", "max_output_tokens": 16384}}})
    s.ctl("price", "set", "gpt-4o", "--input", "1000000", "--output", "4000000")
    return s


def call(s, key, dialect, model, directive, stream):
    """One request with its own trace: (trace id, request id, finish reasons the client got)."""
    trace_id = secrets.token_hex(16)
    tp = "00-%s-%s-01" % (trace_id, secrets.token_hex(8))
    if dialect == "anthropic":
        path, headers = "/v1/messages", dict(s.auth(key), traceparent=tp)
        body = s.body(model=model, prompt=PROMPT_MARK, directive=directive, stream=stream)
    else:
        path, headers = "/v1/chat/completions", {"authorization": "Bearer " + key,
                                                 "traceparent": tp}
        body = {"model": model, "max_tokens": 64, "messages": [
            {"role": "user", "content": PROMPT_MARK + " MOCK" + json.dumps(directive)}]}
        if stream:
            body["stream"] = True
    if not stream:
        st, h, raw = s.request("POST", path, body, headers)
        assert st == 200, raw
        reply = json.loads(raw)
        got = [reply["stop_reason"]] if dialect == "anthropic" else [
            ch["finish_reason"] for ch in reply["choices"]]
        return trace_id, h["x-request-id"], got
    resp = s.stream(body, headers, path=path)
    assert resp.status == 200
    got = []
    for event, data, _ in resp:
        if data == "[DONE]" or not data:
            continue
        doc = json.loads(data)
        if event == "message_delta":
            got.append(doc["delta"]["stop_reason"])
        got += [ch["finish_reason"] for ch in doc.get("choices", []) if ch.get("finish_reason")]
    return trace_id, resp.headers["x-request-id"], got


def check_row_attrs(s, sa, request_id, usage=None):
    """The SERVER span's GenAI and tollgate attributes equal the usage row (and the mock's
    usage, when given: (input, output))."""
    row = usage_row(s, request_id)
    assert sa["tollgate.request_id"] == request_id
    assert sa["tollgate.model"] == row["model"]
    assert sa["gen_ai.usage.input_tokens"] == int(row["input_tokens"])
    assert sa["gen_ai.usage.output_tokens"] == int(row["output_tokens"])
    if usage is not None:
        assert (sa["gen_ai.usage.input_tokens"], sa["gen_ai.usage.output_tokens"]) == usage, sa
    assert sa["tollgate.user_id"] == row["user_id"]
    assert sa["tollgate.group_id"] == row["group_id"]
    assert sa["tollgate.api_key_id"] == int(row["api_key_id"])
    assert sa["tollgate.cost_micros"] == int(row["cost_micros"]) > 0
    assert Decimal(sa["tollgate.cost_usd"]) == Decimal(int(row["cost_micros"])) / 1000000
    assert sa["tollgate.outcome"] == row["outcome"]
    assert sa["http.response.status_code"] == int(row["http_status"])
    return row


ANTHROPIC_USAGE = {"input_tokens": 31, "output_tokens": 7}
OPENAI_USAGE = {"prompt_tokens": 29, "completion_tokens": 6}
# (client dialect, model, what the mock replies, the reasons the span must carry)
RESPONSE_CASES = [
    ("anthropic", "claude-haiku-4-5",    # native
     {"model": "claude-replied-a", "finish_reason": "max_tokens", "usage": ANTHROPIC_USAGE},
     ["max_tokens"], (31, 7)),
    ("openai", "gpt-4o",                 # native
     {"model": "gpt-replied-b", "finish_reason": "length", "usage": OPENAI_USAGE},
     ["length"], (29, 6)),
    ("openai", "claude-haiku-4-5",       # translated: the pivot's words are Anthropic's own
     {"model": "claude-replied-c", "finish_reason": "max_tokens", "usage": ANTHROPIC_USAGE},
     ["max_tokens"], (31, 7)),
    ("anthropic", "gpt-4o",              # translated: the pivot's word for "length"
     {"model": "gpt-replied-d", "finish_reason": "length", "usage": OPENAI_USAGE},
     ["max_tokens"], (29, 6)),
]


def test_stream_and_reply_spans_name_the_providers_model_and_finish_reasons():
    s = dialects_stack()
    key = s.key(group="otel-dialects", user="otel-dialects-user")
    for dialect, model, directive, reasons, usage in RESPONSE_CASES:
        for stream in (False, True):
            what = (dialect, model, "stream" if stream else "reply")
            trace_id, rid, client_got = call(s, key, dialect, model, directive, stream)
            server = [sp for sp in trace_spans(trace_id) if sp["kind"] == 2][0]
            sa = attrs(server)
            # the model the provider replied with, never the configured upstream model
            assert sa["gen_ai.response.model"] == directive["model"], (what, sa)
            assert sa["gen_ai.response.finish_reasons"] == reasons, (what, sa)
            assert sa["gen_ai.request.model"] == model, (what, sa)
            assert sa["tollgate.stream"] is stream, (what, sa)
            if (dialect == "openai") == (model == "gpt-4o"):  # native: what the client got
                assert client_got == reasons, (what, client_got)
            row = check_row_attrs(s, sa, rid, usage)
            assert row["outcome"] == "ok", (what, row)
            attempt = [sp for sp in all_spans() if sp["traceId"] == trace_id and sp["kind"] == 3]
            assert attrs(attempt[0])["tollgate.provider"] == row["provider"], (what, row)


# ---- shutdown: what was answered is exported, within the flush deadline ----------------------

def test_sigterm_flushes_the_spans_of_every_answered_request_within_the_deadline():
    c = collector()
    flush_deadline_s = 2.0
    # flush_ms 60 s and a batch larger than the burst: nothing leaves before the shutdown
    # flush, so every span the collector gets, the flush sent
    s = Stack(tag="otel-shutdown", processes=2, threads=4, extra_config={"otel": {
        "endpoint": "http://127.0.0.1:%d/v1/traces" % c.port, "flush_ms": 60000,
        "queue_spans": 4096, "batch_spans": 4096,
        "timeout_ms": int(flush_deadline_s * 1000)}}).start()
    try:
        key = s.key(group="otel-shutdown", user="otel-shutdown-user")
        done = s.burst(key, [s.body(prompt="burst %d" % i) for i in range(24)],
                       processes=2, threads=6)
        assert all(r["status"] == 200 for r in done), [r["status"] for r in done]
        # a second burst, still in flight when SIGTERM comes (each answer takes 400 ms)
        late, results = "late-" + secrets.token_hex(4), {}
        bodies = [s.body(prompt="%s %d" % (late, i), directive={"delay_ms": 400})
                  for i in range(16)]
        t = threading.Thread(target=lambda: results.setdefault(
            "late", s.burst(key, bodies, processes=2, threads=4, timeout=30)))
        t.start()
        wait_for(lambda: len(s.mock_requests(late)) >= 4, 30, "requests in flight")
        ids = {r["headers"]["x-request-id"] for r in done}
        assert not ids & {attrs(sp).get("tollgate.request_id") for sp in all_spans()}, \
            "spans left before the shutdown"
        workers = s.workers()
        t0 = time.monotonic()
        os.kill(s.master_pid, signal.SIGTERM)   # as Stack.stop_workers does
        wait_for(lambda: all(pid_gone(p) for p in workers + [s.master_pid]), 30,
                 "the workers to exit")
        took = time.monotonic() - t0
        print("# otel shutdown: workers gone %.2f s after SIGTERM (flush deadline %.1f s)" % (
            took, flush_deadline_s), flush=True)
        t.join(60)
        answered = ids | {r["headers"]["x-request-id"] for r in results["late"]
                          if r["status"] == 200}
        assert len(answered) >= 24 + 4, len(answered)
        exported = {attrs(sp).get("tollgate.request_id") for sp in all_spans()
                    if sp["kind"] == 2}
        assert answered <= exported, sorted(answered - exported)
        # the in-flight requests (400 ms) end, then the flush gets its deadline; margin for
        # a loaded machine
        assert took < 0.4 + flush_deadline_s + 3.0, took
        dropped = re.findall(r"could not export", s.logs())
        assert not dropped, dropped
    finally:
        s.master_pid = None
        s.close()
