"""Failover and the circuit breaker on the real stack (issue 10).

A model's pool has a primary (priority 1) and a secondary (priority 2), both
on 127.0.0.1. The secondary is the Anthropic mock; the primary is a stub in this
test process that fails as each case says — refuses connections, answers 500,
429 or 529, never answers, or drops the connection mid-stream — and counts its
calls. Before the first byte reached the client the secondary serves and the
usage row names it; after it, the client gets a clean in-stream error. The
circuit opens after the threshold across both worker processes, and half-opens
(one probe) after the cooldown.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness

REPLY = {"id": "msg_primary", "type": "message", "role": "assistant",
         "model": "claude-haiku-4-5", "content": [{"type": "text", "text": "from the primary"}],
         "stop_reason": "end_turn", "stop_sequence": None,
         "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 0,
                   "cache_creation_input_tokens": 0}}


class Primary:
    """A failing provider: mode is "ok", a status (500, 429, 529), "hang" or
    "drop_mid_stream". Counts the requests it received."""

    def __init__(self):
        self.mode = "ok"
        self.calls = 0
        self.lock = threading.Lock()
        primary = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with primary.lock:
                    primary.calls += 1
                    mode = primary.mode
                if mode == "hang":
                    time.sleep(5)
                    return
                if isinstance(mode, int):
                    payload = json.dumps({"type": "error", "error": {
                        "type": "api_error", "message": "primary failed"}}).encode()
                    self.send_response(mode)
                    self.send_header("content-type", "application/json")
                    self.send_header("retry-after", "0")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if mode == "drop_mid_stream" and json.loads(body).get("stream"):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    start = dict(REPLY, content=[], stop_reason=None)
                    events = (b"event: message_start\ndata: %s\n\n" % json.dumps(
                        {"type": "message_start", "message": start}).encode()
                        + b"event: content_block_start\ndata: {\"type\":\"content_block_start\""
                        b",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(events), events))
                    self.wfile.flush()
                    time.sleep(0.2)
                    self.close_connection = True  # no last chunk: the transfer is cut
                    return
                payload = json.dumps(REPLY).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, mode):
        with self.lock:
            self.mode = mode
            self.calls = 0

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    return port


def pool_config(primary_url, threshold=30, cooldown_ms=1500):
    return {
        "providers": {
            "primary": {"type": "anthropic", "base_url": primary_url, "api_key": "sk-primary",
                        "connect_timeout_ms": 1000, "timeout_ms": 10000,
                        "first_byte_timeout_ms": 1500},
            "refusing": {"type": "anthropic",
                         "base_url": "http://127.0.0.1:%d" % closed_port(),
                         "api_key": "sk-refusing", "connect_timeout_ms": 1000},
        },
        "models": {
            "claude-pool": {"backends": [
                {"provider": "primary", "model": "claude-haiku-4-5", "priority": 1},
                {"provider": "anthropic", "model": "claude-haiku-4-5", "priority": 2}]},
            "claude-refused-first": {"backends": [
                {"provider": "refusing", "model": "claude-haiku-4-5", "priority": 1},
                {"provider": "anthropic", "model": "claude-haiku-4-5", "priority": 2}]},
        },
        "failover": {"max_attempts": 3, "backoff_base_ms": 10, "backoff_max_ms": 50,
                     "total_deadline_ms": 20000, "failure_threshold": threshold,
                     "window_ms": 60000, "cooldown_ms": cooldown_ms},
    }


def priced(st, *models):
    """The stack with a price for each of the test's own models (reserve refuses unpriced ones)."""
    for model in models:
        st.ctl("price", "set", model, "--input", "1000000", "--output", "5000000")
    return st


def access_line(st, request_id):
    for line in st.logs().splitlines():
        if request_id in line and '"event":"request"' in line:
            return json.loads(line)
    raise AssertionError("no access line for %s" % request_id)


def test_primary_failures_before_the_first_byte_fail_over_to_the_secondary():
    primary = Primary()
    try:
        with harness.Stack(extra_config=pool_config("http://127.0.0.1:%d" % primary.port)) as st:
            priced(st, "claude-pool", "claude-refused-first")
            key = st.key()
            cases = [(500, False), (429, False), (529, False), ("hang", False), (500, True),
                     ("hang", True)]
            for mode, stream in cases:
                primary.set(mode)
                if stream:
                    resp = st.stream(st.body(model="claude-pool", stream=True), st.auth(key))
                    status, headers, body = resp.status, resp.headers, resp.read()
                else:
                    status, headers, body = st.messages(key, model="claude-pool")
                assert status == 200, (mode, stream, status, body[:300])
                assert primary.calls == 1, (mode, stream, primary.calls)
                rid = headers["x-request-id"]
                row = st.usage(rid)
                assert row["provider"] == "anthropic", (mode, row)
                assert int(row["output_tokens"]) > 0 and row["http_status"] == "200", row
                line = access_line(st, rid)
                assert line["attempts"] == 2 and line["backend"] == "anthropic/claude-haiku-4-5", line
            # a healthy primary serves alone
            primary.set("ok")
            status, headers, body = st.messages(key, model="claude-pool")
            assert status == 200 and json.loads(body)["id"] == "msg_primary", body[:300]
            assert access_line(st, headers["x-request-id"])["attempts"] == 1
            # a refused connection fails over too
            status, headers, body = st.messages(key, model="claude-refused-first")
            assert status == 200, body[:300]
            assert st.usage(headers["x-request-id"])["provider"] == "anthropic"
    finally:
        primary.close()


def test_a_stream_that_breaks_after_its_first_byte_ends_with_an_error_event():
    primary = Primary()
    try:
        with harness.Stack(extra_config=pool_config("http://127.0.0.1:%d" % primary.port)) as st:
            priced(st, "claude-pool")
            key = st.key()
            primary.set("drop_mid_stream")
            resp = st.stream(st.body(model="claude-pool", stream=True), st.auth(key))
            status, headers, text = resp.status, resp.headers, resp.read().decode()
            assert status == 200
            assert "event: message_start" in text and "event: error" in text, text[-500:]
            assert primary.calls == 1
            assert not st.mock_requests(), "the secondary was called after the first byte"
            row = st.usage(headers["x-request-id"])
            assert row["provider"] == "primary" and row["outcome"] == "upstream_error", row
    finally:
        primary.close()


def metrics_text(st):
    status, _, body = st.request("GET", "/metrics")
    assert status == 200, body[:300]
    return body.decode() if isinstance(body, bytes) else body


def test_the_circuit_opens_across_workers_and_half_opens_after_the_cooldown():
    primary = Primary()
    try:
        config = pool_config("http://127.0.0.1:%d" % primary.port, threshold=3, cooldown_ms=1500)
        with harness.Stack(processes=2, extra_config=config) as st:
            priced(st, "claude-pool")
            key = st.key()
            primary.set(500)
            for _ in range(3):  # three failures, spread over both workers by lighttpd
                status, _, body = st.messages(key, model="claude-pool")
                assert status == 200, body[:300]
            assert primary.calls == 3
            open_line = ('tollgate_backend_circuit_state{backend="primary/claude-haiku-4-5",'
                         'state="open"} 1')
            assert open_line in metrics_text(st)
            for _ in range(6):  # open: no worker calls the primary
                status, headers, _ = st.messages(key, model="claude-pool")
                assert status == 200
                assert access_line(st, headers["x-request-id"])["attempts"] == 1
            assert primary.calls == 3, "a worker called an open circuit's backend"
            time.sleep(1.7)  # the cooldown passes: one probe, which succeeds
            primary.set("ok")
            status, headers, body = st.messages(key, model="claude-pool")
            assert status == 200 and json.loads(body)["id"] == "msg_primary", body[:300]
            assert primary.calls == 1
            assert ('tollgate_backend_circuit_state{backend="primary/claude-haiku-4-5",'
                    'state="closed"} 1') in metrics_text(st)
            assert 'tollgate_backend_circuit_opened_total{backend="primary/claude-haiku-4-5"} 1' \
                in metrics_text(st)
    finally:
        primary.close()


def test_a_model_whose_every_circuit_is_open_is_still_tried():
    """Panic routing: the breaker steers away from a failing backend when the pool
    has another; with every circuit open the model is tried anyway, never taken
    down, and the client gets the provider's own failure."""
    refusing = {"type": "anthropic", "api_key": "sk-refusing", "connect_timeout_ms": 500}
    config = {"providers": {
        "refusing": dict(refusing, base_url="http://127.0.0.1:%d" % closed_port()),
        "refusing2": dict(refusing, base_url="http://127.0.0.1:%d" % closed_port())},
        "models": {"claude-alone": {"backends": [
            {"provider": "refusing", "model": "claude-haiku-4-5", "priority": 1},
            {"provider": "refusing2", "model": "claude-haiku-4-5", "priority": 2}]}},
        "failover": {"failure_threshold": 1, "cooldown_ms": 60000, "backoff_base_ms": 1}}
    with harness.Stack(processes=1, extra_config=config) as st:
        priced(st, "claude-alone")
        key = st.key()
        for _ in range(2):  # the first opens both circuits; the second is tried all the same
            status, headers, body = st.messages(key, model="claude-alone")
            assert status == 502, body[:300]
            etype, message = harness.error_body(body)
            assert etype == "api_error" and "refusing" in message, (etype, message)
        assert ('tollgate_backend_circuit_state{backend="refusing/claude-haiku-4-5",'
                'state="open"} 1') in metrics_text(st)
        assert "is open: trying" in st.logs()
