#!/usr/bin/env python3
"""Mock of the Anthropic Messages API for Tollgate's integration tests.

Usage:
    python3 tests/mock/mock_provider.py --port N [--host 127.0.0.1]
                                        [--require-key KEY] [--quiet]

Prints exactly one line `READY port=<N>` on stdout once listening (use
--port 0 for a free port).  Behaviour is steered per request by a directive
`MOCK{...json...}` inside the request text; see tests/mock/README.md.

Standard library only; runs under Debian's /usr/bin/python3 (3.11).
"""

import argparse
import json
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_TEXT = "Hello from the mock provider."
MAX_DEFAULT_CHUNKS = 20
DROP_MODES = ("before_headers", "mid_stream")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

# Sent on every /v1 response; the gateway must strip it before answering.
RATELIMIT_HEADER = ("anthropic-ratelimit-requests-limit", "1000")


def dumps(obj):
    """Compact JSON, the way the real API writes it."""
    return json.dumps(obj, separators=(",", ":"))


def error_obj(etype, message):
    return {"type": "error", "error": {"type": etype, "message": message}}


class MockError(Exception):
    """A request problem answered with an Anthropic-shaped error body."""

    def __init__(self, status, message, etype=None):
        super().__init__(message)
        self.status = status
        self.etype = etype or ERROR_TYPES.get(status, "api_error")
        self.message = message


# --------------------------------------------------------------------------
# Recording of /v1 requests
# --------------------------------------------------------------------------

class Recorder:
    """Thread-safe in-memory log of requests, exposed at /_mock/requests.

    Entries are appended when a request arrives and filled in as it
    progresses, so a request still streaming is visible with t_done null.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._records = []
        self._counter = 0

    def start(self, method, path, headers):
        rec = {
            "method": method, "path": path, "headers": headers, "body": "",
            "status": None, "response_body": "",
            "t_received": time.time(), "t_first_byte": None,
            "t_last_event": None, "t_done": None,
        }
        with self._lock:
            self._counter += 1
            self._records.append(rec)
            return self._counter, rec

    def update(self, rec, **fields):
        with self._lock:
            rec.update(fields)

    def append_response(self, rec, data):
        with self._lock:
            rec["response_body"] += data

    def snapshot(self):
        with self._lock:
            return [dict(r) for r in self._records]

    def clear(self):
        with self._lock:
            n = len(self._records)
            self._records.clear()
            return n


# --------------------------------------------------------------------------
# Request inspection: directive, token counts, text splitting
# --------------------------------------------------------------------------

def _block_texts(content):
    """Texts of a `system` value or message `content` (string or blocks)."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for block in content:
            if (isinstance(block, dict) and block.get("type") == "text"
                    and isinstance(block.get("text"), str)):
                yield block["text"]


def iter_texts(req):
    """All request texts in directive-search order: system, then messages."""
    yield from _block_texts(req.get("system"))
    messages = req.get("messages")
    if isinstance(messages, list):
        for msg in messages:
            if isinstance(msg, dict):
                yield from _block_texts(msg.get("content"))


def find_directive(req):
    """The JSON object after `MOCK` in the first text containing `MOCK{`."""
    for text in iter_texts(req):
        idx = text.find("MOCK{")
        if idx < 0:
            continue
        try:
            obj, _ = json.JSONDecoder().raw_decode(text, idx + 4)
        except ValueError as e:
            raise MockError(400, "mock: bad directive: %s" % e)
        if not isinstance(obj, dict):
            raise MockError(400, "mock: directive is not an object")
        return obj
    return {}


def check_directive(d):
    """Reject directive values the mock cannot act on (helps test authors)."""
    for key in ("status", "delay_ms", "event_delay_ms", "chunks", "hang_after", "hang_ms"):
        if key in d and not (isinstance(d[key], (int, float))
                             and not isinstance(d[key], bool)):
            raise MockError(400, "mock: %s must be a number" % key)
    if "status" in d and not 200 <= d["status"] <= 599:
        raise MockError(400, "mock: status must be within 200..599")
    if "drop" in d and d["drop"] not in DROP_MODES:
        raise MockError(400, "mock: drop must be one of %s" % (DROP_MODES,))
    if "text" in d and not isinstance(d["text"], str):
        raise MockError(400, "mock: text must be a string")
    if "usage" in d and not isinstance(d["usage"], dict):
        raise MockError(400, "mock: usage must be an object")
    if "tool_use" in d and not isinstance(d["tool_use"], dict):
        raise MockError(400, "mock: tool_use must be an object")


def build_usage(req, directive, text):
    """Usage numbers: defaults from the request/reply, overridden by usage."""
    nbytes = sum(len(t.encode("utf-8")) for t in iter_texts(req))
    usage = {
        "input_tokens": max(1, nbytes // 4),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": len(text.split()),
    }
    for key, value in directive.get("usage", {}).items():
        if key in usage or key in ("cache_creation", "server_tool_use"):
            usage[key] = value
    return usage


def split_text(text, n):
    """Split text into n consecutive pieces that concatenate back to text.

    Pieces fall on word boundaries when there are at least n words;
    otherwise the text is cut by characters, and if n exceeds the number of
    characters the extra trailing pieces are empty.
    """
    if n <= 0:
        return []
    words = re.findall(r"\S+\s*", text)
    if words:
        words[0] = text[:len(text) - len(text.lstrip())] + words[0]
    units = words if len(words) >= n else list(text)
    if len(units) < n:
        return units + [""] * (n - len(units))
    bounds = [len(units) * i // n for i in range(n + 1)]
    return ["".join(units[bounds[i]:bounds[i + 1]]) for i in range(n)]


def tool_use_block(index, tool, input_=None):
    """The tool_use content block of a reply (input_: instead of the tool's input)."""
    return {"type": "tool_use", "id": "toolu_mock_%d" % index,
            "name": tool.get("name", "mock_tool"),
            "input": tool.get("input", {}) if input_ is None else input_}


def tool_use_events(index, tool, chunks):
    """A tool_use content block: its input JSON streamed as input_json_delta pieces."""
    raw = dumps(tool.get("input", {}))
    n = max(1, min(chunks, len(raw)))
    bounds = [len(raw) * i // n for i in range(n + 1)]
    events = [("content_block_start", {
        "type": "content_block_start", "index": index,
        "content_block": tool_use_block(index, tool, {})})]
    for i in range(n):
        events.append(("content_block_delta", {
            "type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta",
                      "partial_json": raw[bounds[i]:bounds[i + 1]]}}))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def stream_events(msg_id, model, text, usage, chunks, tool=None):
    """The (event name, payload) list of a complete SSE response."""
    start_usage = {k: usage[k] for k in ("input_tokens",
                                         "cache_creation_input_tokens",
                                         "cache_read_input_tokens")}
    start_usage["output_tokens"] = 1
    if "cache_creation" in usage:
        start_usage["cache_creation"] = usage["cache_creation"]
    final_usage = {"output_tokens": usage["output_tokens"]}
    if "server_tool_use" in usage:
        final_usage["server_tool_use"] = usage["server_tool_use"]
    message = {"id": msg_id, "type": "message", "role": "assistant",
               "model": model, "content": [], "stop_reason": None,
               "stop_sequence": None, "usage": start_usage}
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
    ]
    for piece in split_text(text, chunks):
        events.append(("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": piece}}))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    if tool is not None:
        events += tool_use_events(1, tool, chunks)
    events += [
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "tool_use" if tool else "end_turn",
                                     "stop_sequence": None},
                           "usage": final_usage}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections are dropped after this
    disable_nagle_algorithm = True  # SSE chunks leave at once; no 40ms stalls

    # set per /v1 request: its sequence number and its Recorder entry
    rec = None
    req_n = 0

    def send_response(self, code, message=None):
        # http.server has no reason phrase for 529 and other odd codes
        if message is None and code not in self.responses:
            message = "Overloaded" if code == 529 else "Unknown"
        super().send_response(code, message)

    def version_string(self):
        return "tollgate-mock/1.0"

    # ---- dispatch -------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def dispatch(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/v1/"):
            self.handle_api(path)
            return
        self.rec = None
        try:
            self.guarded(self.handle_control, path)
        except ConnectionError:
            self.close_connection = True  # client went away; nothing to do

    def guarded(self, func, path):
        """Run func(path); a MockError becomes an Anthropic error response."""
        try:
            func(path)
        except MockError as e:
            headers = self.api_headers() if self.rec is not None else ()
            self.send_json(e.status, error_obj(e.etype, e.message), headers)

    def handle_control(self, path):
        self.read_body()
        if path == "/_mock/health" and self.command == "GET":
            self.send_json(200, {"ok": True})
        elif path == "/_mock/requests" and self.command == "GET":
            self.send_json(200, self.server.recorder.snapshot())
        elif path == "/_mock/requests" and self.command == "DELETE":
            self.send_json(200, {"ok": True,
                                 "cleared": self.server.recorder.clear()})
        else:
            raise MockError(404, "Not found: %s" % path)

    def handle_api(self, path):
        recorder = self.server.recorder
        self.req_n, self.rec = recorder.start(self.command, self.path,
                                              self.header_dict())
        try:
            self.guarded(self.route_api, path)
        except ConnectionError:
            self.close_connection = True  # client went away; nothing to do
        finally:
            recorder.update(self.rec, t_done=time.time())
            self.log_line()

    def route_api(self, path):
        body = self.read_body()
        self.rec_update(body=body.decode("utf-8", "replace"))
        if path != "/v1/messages":
            raise MockError(404, "Not found: %s" % path)
        if self.command != "POST":
            raise MockError(405, "Method not allowed", "invalid_request_error")
        self.handle_messages(body)

    # ---- /v1/messages ---------------------------------------------------

    def handle_messages(self, body):
        key = self.server.require_key
        if key is not None and self.headers.get("x-api-key") != key:
            raise MockError(401, "invalid x-api-key")
        try:
            req = json.loads(body)
        except ValueError as e:
            raise MockError(400, "request body is not valid JSON: %s" % e)
        if not isinstance(req, dict):
            raise MockError(400, "request body must be a JSON object")

        directive = find_directive(req)
        check_directive(directive)
        pause_ms(directive.get("delay_ms"))

        drop = directive.get("drop")
        if drop == "before_headers":
            self.close_connection = True  # socket is closed, nothing sent
            return
        status = int(directive.get("status", 200))
        if status != 200:
            self.send_directed_error(status, directive, drop)
            return

        text = directive.get("text", DEFAULT_TEXT)
        usage = build_usage(req, directive, text)
        model = req.get("model")
        if req.get("stream") is True:
            self.send_stream(directive, model, text, usage)
        else:
            self.send_message(model, text, usage, drop, directive.get("tool_use"))

    def send_directed_error(self, status, directive, drop):
        etype = directive.get("error_type") or ERROR_TYPES.get(status, "api_error")
        headers = self.api_headers()
        if "retry_after" in directive:
            headers.append(("retry-after", str(directive["retry_after"])))
        self.send_json(status, error_obj(etype, "mock error %d" % status),
                       headers, half=(drop == "mid_stream"))

    def send_message(self, model, text, usage, drop, tool=None):
        content = [{"type": "text", "text": text}]
        if tool is not None:
            content.append(tool_use_block(1, tool))
        msg = {"id": "msg_mock_%d" % self.req_n, "type": "message",
               "role": "assistant", "model": model, "content": content,
               "stop_reason": "tool_use" if tool is not None else "end_turn",
               "stop_sequence": None, "usage": usage}
        self.send_json(200, msg, self.api_headers(),
                       half=(drop == "mid_stream"))

    def send_stream(self, directive, model, text, usage):
        default_chunks = max(1, min(MAX_DEFAULT_CHUNKS, len(text.split())))
        chunks = int(directive.get("chunks", default_chunks))
        events = stream_events("msg_mock_%d" % self.req_n, model, text,
                               usage, chunks, directive.get("tool_use"))
        drop = directive.get("drop") == "mid_stream"
        if drop:
            # message_start, content_block_start, ping and at most one delta
            n_deltas = 1 if chunks > 0 else 0
            events = events[:3 + n_deltas]
        hang_after = directive.get("hang_after")
        if hang_after is not None:
            events = events[:int(hang_after)]

        self.rec_update(status=200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in self.api_headers():
            self.send_header(name, value)
        self.rec_update(t_first_byte=time.time())
        self.end_headers()

        for i, (name, payload) in enumerate(events):
            if i:
                pause_ms(directive.get("event_delay_ms"))
            if i == len(events) - 1 and not drop:
                self.rec_update(t_last_event=time.time())
            self.write_event(name, payload)

        if hang_after is not None:
            # a provider that never finishes: silent until hang_ms, then gone
            self.hang(directive.get("hang_ms", 60000))
            self.close_connection = True
        elif drop:
            self.close_connection = True  # no terminating chunk
        else:
            self.wfile.write(b"0\r\n\r\n")

    def hang(self, ms):
        """Waits ms, or until the peer closes the connection (a gateway's abort)."""
        import select
        deadline = time.time() + ms / 1000.0
        while time.time() < deadline:
            ready, _, _ = select.select([self.connection], [], [], 0.1)
            if ready and not self.connection.recv(1, socket.MSG_PEEK):
                self.rec_update(peer_closed=time.time())
                return

    def write_event(self, name, payload):
        data = "event: %s\ndata: %s\n\n" % (name, dumps(payload))
        raw = data.encode("utf-8")
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        self.server.recorder.append_response(self.rec, data)

    # ---- helpers --------------------------------------------------------

    def api_headers(self):
        return [("request-id", "req_mock_%d" % self.req_n), RATELIMIT_HEADER]

    def send_json(self, status, obj, headers=(), half=False):
        """Send a JSON response with Content-Length.

        half=True sends only the first half of the body and then closes the
        connection (simulated mid-body drop).
        """
        body = dumps(obj).encode("utf-8")
        sent = body[:len(body) // 2] if half else body
        self.rec_update(status=status, response_body=sent.decode("utf-8", "replace"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 405:
            self.send_header("Allow", "POST")
        for name, value in headers:
            self.send_header(name, value)
        self.rec_update(t_first_byte=time.time())
        self.end_headers()
        self.rec_update(t_last_event=time.time())
        if self.command != "HEAD":
            self.wfile.write(sent)
        if half:
            self.close_connection = True

    def rec_update(self, **fields):
        if self.rec is not None:
            self.server.recorder.update(self.rec, **fields)

    def header_dict(self):
        """Request headers, lower-case names, repeats joined with ", "."""
        out = {}
        for name, value in self.headers.items():
            name = name.lower()
            out[name] = out[name] + ", " + value if name in out else value
        return out

    def read_body(self):
        """Read the whole request body (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True  # cannot find the next request
            raise MockError(400, "bad Content-Length")
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            raise ConnectionResetError("client closed during request body")
        return body

    def read_chunked(self):
        parts = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionResetError("eof in chunked body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # skip trailers up to the blank line
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(65537)  # CRLF after the chunk data

    # ---- logging --------------------------------------------------------

    def log_request(self, code="-", size="-"):
        pass  # replaced by log_line(), once per /v1 request

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("mock: %s\n" % (fmt % args))

    def log_line(self):
        rec = self.rec
        ms = (rec["t_done"] - rec["t_received"]) * 1000
        self.log_message("%s %s %s %.0fms", self.command, rec["path"],
                         rec["status"] if rec["status"] is not None else "dropped",
                         ms)


def pause_ms(ms):
    if ms:
        time.sleep(float(ms) / 1000.0)


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False     # do not wait for streaming threads on exit
    request_queue_size = 128   # tests open ~50 connections at once

    def __init__(self, addr, require_key=None, quiet=False):
        super().__init__(addr, Handler)
        self.recorder = Recorder()
        self.require_key = require_key
        self.quiet = quiet

    def handle_error(self, request, client_address):
        # Client disconnects and idle timeouts are normal; stay silent.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Mock Anthropic Messages API")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--require-key", default=None,
                   help="answer 401 unless x-api-key equals this")
    p.add_argument("--quiet", action="store_true", help="no per-request log")
    return p.parse_args(argv)


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    server = MockServer((args.host, args.port), args.require_key, args.quiet)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print("READY port=%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
