"""The same smoke test behind each front end: lighttpd (mod_fastcgi) and
Apache (mod_proxy_fcgi), both talking to spawn-fcgi workers."""

import http.client
import json
import secrets
import socket
import time

from harness import MAIN, Stack, error_body, stack
from test_messages import cost_usd, parse_sse

FRONTENDS = {"lighttpd": MAIN, "apache": dict(MAIN, frontend="apache")}


def make_smoke_test(opts):
    def test():
        s = stack(**opts)
        key = s.default_key()
        assert s.request("GET", "/health")[0] == 200

        marker = secrets.token_hex(6)
        status, headers, body = s.messages(key, prompt="smoke " + marker)
        assert status == 200, (status, body[:300])
        rec = s.mock_requests(marker)[0]
        assert body == rec["response_body"].encode(), "body changed on the way"
        row = s.usage(headers["x-request-id"])
        assert headers.get("x-tollgate-cost-usd") == cost_usd(row["cost_micros"]), headers

        marker = secrets.token_hex(6)
        resp = s.stream(s.body(prompt="smoke " + marker, stream=True,
                               directive={"event_delay_ms": 200, "chunks": 3}), s.auth(key))
        assert resp.status == 200, resp.status
        got = list(resp)
        rec = s.mock_requests(marker)[0]
        want = [(e["event"], e["data"]) for e in parse_sse(rec["response_body"])]
        assert [(e, d) for e, d, _ in got] == want, "stream events differ"
        assert got[0][2] < rec["t_last_event"], "the stream was buffered"
        assert s.usage(resp.headers["x-request-id"])["stream"] == "t"

        status, _, body = s.messages(None)
        assert status == 401 and error_body(body)[0] == "authentication_error", (status, body)
        status, _, body = s.request("GET", "/no/such/path", headers=s.auth(key))
        assert status == 404 and error_body(body)[0] == "not_found_error", (status, body)
    return test


for _name, _opts in FRONTENDS.items():
    globals()["test_smoke_behind_" + _name] = make_smoke_test(_opts)


# ---- the web server's own refusals (issue 12) -------------------------------
# lighttpd and Apache answer some requests without asking Tollgate: a request
# they cannot parse, an unknown method, headers or a body over their caps,
# the workers down.  Those answers must be JSON in Anthropic's error shape
# (conf/errors/*.html for lighttpd, ErrorDocument strings for Apache), which
# the OpenAI SDKs also read (they take body["error"]'s type and message).

def raw_request(s, data, send_more=None, timeout=10):
    """Sends the bytes `data` on a new connection and reads one response:
    (status, lower-case headers, body, seconds until the status line).
    send_more, if given, is more bytes sent only after the response."""
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=timeout)
    try:
        t0 = time.monotonic()
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        elapsed = time.monotonic() - t0
        headers = {k.lower(): v for k, v in resp.getheaders()}
        body = resp.read()
        if send_more:
            try:
                sock.sendall(send_more)
            except OSError:
                pass
        return resp.status, headers, body, elapsed
    finally:
        sock.close()


def assert_json_refusal(status, headers, body, want_status, want_type=None):
    assert status in (want_status if isinstance(want_status, tuple) else (want_status,)), \
        (status, headers, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), (status, headers)
    etype, message = error_body(body)
    if want_type:
        assert etype == want_type, (etype, message)
    return etype, message


def make_refusal_test(opts):
    def test():
        s = stack(**opts)
        lighttpd = s.frontend == "lighttpd"
        # A Content-Length of 64 MiB: refused from the header, well before the
        # body would be accepted (the client has sent 64 KiB of it).
        head = (b"POST /v1/messages HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
                b"x-api-key: none\r\ncontent-length: %d\r\n\r\n" % (64 << 20))
        status, headers, body, elapsed = raw_request(s, head + b"{" + b" " * 65535)
        assert_json_refusal(status, headers, body, 413, "request_too_large")
        assert elapsed < 2.0, "the 413 took %.2f s" % elapsed
        # One byte over the web server's cap (Tollgate's + 64 KiB): the web
        # server's 413, from the header alone.
        status, headers, body, elapsed = raw_request(
            s, head.replace(b"%d" % (64 << 20), b"%d" % (s.max_body_bytes + 65537)) + b"{")
        assert_json_refusal(status, headers, body, 413, "request_too_large")
        assert elapsed < 2.0, "the 413 took %.2f s" % elapsed
        # One byte over Tollgate's cap: passed on, and Tollgate's own 413 (with
        # its request id) answers, so the web server's cap is above it.
        body = json.dumps(s.body(prompt="x"))
        body = body[:-1] + " " * (s.max_body_bytes + 1 - len(body)) + "}"
        status, headers, resp = s.request("POST", "/v1/messages", body, s.auth(s.default_key()))
        assert_json_refusal(status, headers, resp, 413, "request_too_large")
        assert headers.get("x-request-id"), "not Tollgate's 413: %s" % headers

        # Headers over the server's limit.
        status, headers, body, _ = raw_request(
            s, b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        assert_json_refusal(status, headers, body, 431 if lighttpd else 400,
                            "invalid_request_error")
        # A bare CR and a bare LF inside a header.
        for bad in (b"X-Bad: a\rb\r\n", b"X-Bad: a\nb: c\rd\r\n"):
            status, headers, body, _ = raw_request(
                s, b"GET /health HTTP/1.1\r\nHost: t\r\n" + bad + b"\r\n")
            assert_json_refusal(status, headers, body, 400, "invalid_request_error")
        # An unknown method: lighttpd refuses it (501); Apache passes it on and
        # Tollgate answers (405 or 404), JSON either way.
        status, headers, body, _ = raw_request(s, b"FROB /v1/messages HTTP/1.1\r\nHost: t\r\n\r\n")
        assert_json_refusal(status, headers, body, 501 if lighttpd else (404, 405, 501))
        # Garbage for a request line.
        status, headers, body, _ = raw_request(s, b"NOT HTTP AT ALL\r\n\r\n")
        assert_json_refusal(status, headers, body, (400, 501, 505))
    return test


def make_workers_down_test(opts):
    def test():
        # A stack of its own: its workers are stopped.
        with Stack(processes=1, threads=2, tag="down", **opts) as s:
            s.stop_workers()
            status, headers, body = s.messages(s.default_key(), timeout=15)
            assert_json_refusal(status, headers, body, 503, "overloaded_error")
    return test


for _name, _opts in FRONTENDS.items():
    globals()["test_refusals_are_json_behind_" + _name] = make_refusal_test(_opts)
    globals()["test_workers_down_is_json_behind_" + _name] = make_workers_down_test(
        {k: v for k, v in _opts.items() if k != "timeout_ms"})
