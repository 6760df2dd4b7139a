"""Shared parts of Tollgate's mock providers (standard library only).

The mocks (mock_provider.py for Anthropic, mock_openai.py, mock_bedrock.py,
mock_gemini.py) each speak one provider's wire format.  What they share lives
here: the request recorder behind /_mock/requests, the MOCK{...} directive
parser, text splitting, the HTTP plumbing (bodies, chunked streams, drops,
hangs) and the command line.  See tests/mock/README.md.
"""

import argparse
import json
import re
import resource
import select
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

DEFAULT_TEXT = "Hello from the mock provider."
MAX_DEFAULT_CHUNKS = 20
DROP_MODES = ("before_headers", "mid_stream", "reset")
NUMBER_KEYS = ("status", "delay_ms", "event_delay_ms", "chunks", "hang_after", "hang_ms",
               "stream_error", "malformed_after", "truncate_after", "pad_bytes")


def dumps(obj):
    """Compact JSON, the way the real APIs write it."""
    return json.dumps(obj, separators=(",", ":"))


class MockError(Exception):
    """A request problem; each mock turns it into its provider's error body.

    kind is the provider's error type/code/status name (None: derived from
    the status by the mock); headers are extra response headers."""

    def __init__(self, status, message, kind=None, headers=(), **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = list(headers)
        self.extra = extra


# --------------------------------------------------------------------------
# Recording of API requests
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

    def start(self, method, path, query, headers):
        rec = {
            "method": method, "path": path, "query": query, "headers": headers,
            "body": "", "status": None, "response_body": "",
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
# Directives, token counts, text splitting
# --------------------------------------------------------------------------

def find_directive(texts):
    """The JSON object after `MOCK` in the first text containing `MOCK{`."""
    for text in texts:
        if not isinstance(text, str):
            continue
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


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_directive(d, objects=("usage",), lists=(), strings=("text",)):
    """Reject directive values the mock cannot act on (helps test authors)."""
    for key in NUMBER_KEYS:
        if key in d and not is_number(d[key]):
            raise MockError(400, "mock: %s must be a number" % key)
    for key in ("status", "stream_error"):
        if key in d and not 200 <= d[key] <= 599:
            raise MockError(400, "mock: %s must be within 200..599" % key)
    retry = d.get("retry_after", 0)
    if not (is_number(retry) or isinstance(retry, str)):
        raise MockError(400, "mock: retry_after must be a number or a string")
    if "drop" in d and d["drop"] not in DROP_MODES:
        raise MockError(400, "mock: drop must be one of %s" % (DROP_MODES,))
    for key in strings:
        if key in d and not isinstance(d[key], str):
            raise MockError(400, "mock: %s must be a string" % key)
    for key in objects:
        if key in d and not isinstance(d[key], dict):
            raise MockError(400, "mock: %s must be an object" % key)
    for key in lists:
        if key in d and not isinstance(d[key], list):
            raise MockError(400, "mock: %s must be a list" % key)
    pieces = d.get("pieces", [])
    if not isinstance(pieces, list) or not all(isinstance(p, str) for p in pieces):
        raise MockError(400, "mock: pieces must be a list of strings")


def reply_text(d, default):
    """The reply's text: the directive's "text", else its "pieces" joined, else default."""
    if "text" in d:
        return d["text"]
    if "pieces" in d:
        return "".join(d["pieces"])
    return default


def text_pieces(d, text, n):
    """A stream's text deltas: the directive's "pieces" exactly as given (when they
    make up text), else text split into n (split_text)."""
    if "pieces" in d and "".join(d["pieces"]) == text:
        return list(d["pieces"])
    return split_text(text, n)


def tool_calls(d, args_keys=("arguments", "input", "args")):
    """The directive's tool_calls as a list of (name, arguments object or string)."""
    calls = d.get("tool_calls", [])
    if not isinstance(calls, list):
        raise MockError(400, "mock: tool_calls must be a list")
    out = []
    for i, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("name", "mock_tool"), str):
            raise MockError(400, "mock: tool_calls[%d] must be an object with a string name" % i)
        args = {}
        for key in args_keys:
            if key in call:
                args = call[key]
                break
        out.append((call.get("name", "mock_tool"), args))
    return out


def args_object(args):
    """Tool arguments as an object (a JSON string is parsed)."""
    if isinstance(args, str):
        try:
            return json.loads(args)
        except ValueError:
            raise MockError(400, "mock: tool arguments are not valid JSON: %r" % args[:80])
    return args


def args_string(args):
    """Tool arguments as a JSON string (an object is serialized)."""
    return args if isinstance(args, str) else dumps(args)


def count_tokens(texts):
    """The default input count: max(1, UTF-8 bytes of all request text // 4)."""
    return max(1, sum(len(t.encode("utf-8")) for t in texts if isinstance(t, str)) // 4)


def count_words(text):
    return len(text.split())


def default_chunks(text):
    return max(1, min(MAX_DEFAULT_CHUNKS, count_words(text)))


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


def split_even(raw, n):
    """raw cut into max(1, min(n, len(raw))) pieces of about equal length."""
    n = max(1, min(n, len(raw)))
    bounds = [len(raw) * i // n for i in range(n + 1)]
    return [raw[bounds[i]:bounds[i + 1]] for i in range(n)]


def pause_ms(ms):
    if ms:
        time.sleep(float(ms) / 1000.0)


# --------------------------------------------------------------------------
# HTTP handler base
# --------------------------------------------------------------------------

class BaseHandler(BaseHTTPRequestHandler):
    """Routes /_mock/* to the control endpoints and everything else, recorded,
    to route(path, body).  Subclasses define route() and error_reply()."""

    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections are dropped after this
    disable_nagle_algorithm = True  # stream chunks leave at once; no 40ms stalls

    rec = None     # the Recorder entry of the current API request
    req_n = 0      # its sequence number
    query = None   # its query parameters: {name: [values]}

    def send_response(self, code, message=None):
        # http.server has no reason phrase for 529 and other odd codes
        if message is None and code not in self.responses:
            message = "Overloaded" if code == 529 else "Unknown"
        super().send_response(code, message)

    def version_string(self):
        return "tollgate-mock/1.0"

    # ---- to be provided by each mock -----------------------------------------

    def route(self, path, body):
        raise MockError(404, "Not found: %s" % path)

    def error_reply(self, err):
        """(status, JSON object, headers) answering a MockError."""
        return err.status, {"error": {"message": err.message}}, err.headers

    def api_headers(self):
        """Headers sent on every API response."""
        return []

    def health(self):
        return {"ok": True}

    def records_path(self, path):
        """Whether a non-control request is recorded (default: all of them)."""
        return True

    # ---- dispatch -------------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_GET

    def dispatch(self):
        path, _, qs = self.path.partition("?")
        self.query = parse_qs(qs, keep_blank_values=True)
        self.rec = None
        if path.startswith("/_mock/") or not self.records_path(path):
            try:
                self.guarded(self.handle_control, path)
            except ConnectionError:
                self.close_connection = True  # client went away; nothing to do
            return
        recorder = self.server.recorder
        self.req_n, self.rec = recorder.start(
            self.command, path, {k: v if len(v) > 1 else v[0] for k, v in self.query.items()},
            self.header_dict())
        try:
            self.guarded(self.handle_api, path)
        except ConnectionError:
            self.close_connection = True  # client went away; nothing to do
        finally:
            recorder.update(self.rec, t_done=time.time())
            self.log_line()

    def guarded(self, func, path):
        """Run func(path); a MockError becomes the provider's error response."""
        try:
            func(path)
        except MockError as e:
            status, obj, headers = self.error_reply(e)
            headers = list(headers)
            if self.rec is not None:
                headers = self.api_headers() + headers
            self.send_json(status, obj, headers)

    def handle_control(self, path):
        self.read_body()
        if path == "/_mock/health" and self.command == "GET":
            self.send_json(200, self.health())
        elif path == "/_mock/requests" and self.command == "GET":
            self.send_json(200, self.server.recorder.snapshot())
        elif path == "/_mock/requests" and self.command == "DELETE":
            self.send_json(200, {"ok": True, "cleared": self.server.recorder.clear()})
        else:
            raise MockError(404, "Not found: %s" % path)

    def handle_api(self, path):
        body = self.read_body()
        self.rec_update(body=body.decode("utf-8", "replace"))
        self.route(path, body)

    def qparam(self, name):
        values = self.query.get(name)
        return values[0] if values else None

    def json_body(self, body):
        try:
            req = json.loads(body)
        except ValueError as e:
            raise MockError(400, "request body is not valid JSON: %s" % e)
        if not isinstance(req, dict):
            raise MockError(400, "request body must be a JSON object")
        return req

    # ---- responses ------------------------------------------------------------

    def send_json(self, status, obj, headers=(), half=False, content_type="application/json"):
        """A JSON response with Content-Length.

        half=True sends only the first half of the body and then closes the
        connection (a drop in the middle of the body)."""
        body = dumps(obj).encode("utf-8")
        sent = body[:len(body) // 2] if half else body
        self.rec_update(status=status, response_body=sent.decode("utf-8", "replace"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
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

    def begin_stream(self, content_type, headers=()):
        """Status 200 and the headers of a chunked stream."""
        self.rec_update(status=200)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers:
            self.send_header(name, value)
        self.rec_update(t_first_byte=time.time())
        self.end_headers()

    def write_event(self, event):
        """Sends one event of send_events(); by default a (raw, recorded) pair."""
        self.write_chunk(*event)

    def write_chunk(self, raw, recorded):
        """One HTTP chunk; recorded is what /_mock/requests shows of it."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        self.server.recorder.append_response(self.rec, recorded)

    def send_events(self, events, directive, drop_keep, error_event=None):
        """Stream events (by default (raw bytes, recorded text) pairs, see
        write_event) as HTTP chunks.

        Applies the stream directives: event_delay_ms between events;
        drop: mid_stream keeps the first drop_keep events and closes with
        no terminating chunk; stream_error keeps drop_keep events, sends
        error_event and ends the body; hang_after N sends N events, then
        stays silent until hang_ms passes or the peer closes."""
        drop = directive.get("drop") in ("mid_stream", "reset")
        if drop:
            events = events[:drop_keep]
        elif error_event is not None:
            events = events[:drop_keep] + [error_event]
        hang_after = directive.get("hang_after")
        if hang_after is not None:
            events = events[:int(hang_after)]
        for i, event in enumerate(events):
            if i:
                pause_ms(directive.get("event_delay_ms"))
            if i == len(events) - 1 and not drop:
                self.rec_update(t_last_event=time.time())
            self.write_event(event)
        if hang_after is not None:
            # a provider that never finishes: silent until hang_ms, then gone
            self.hang(directive.get("hang_ms", 60000))
            self.close_connection = True
        elif drop:
            self.close_connection = True  # no terminating chunk
            if directive.get("drop") == "reset":
                self.reset_connection()
        else:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def reset_connection(self):
        """Ends the connection with a TCP RST instead of a FIN, once the
        handler is done (SO_LINGER 0, closed without a shutdown): a provider
        whose connection is torn down, not closed."""
        self.close_connection = True
        self.server.to_reset.add(self.connection)

    def hang(self, ms):
        """Waits ms, or until the peer closes the connection (a gateway's abort)."""
        deadline = time.time() + ms / 1000.0
        while time.time() < deadline:
            ready, _, _ = select.select([self.connection], [], [], 0.1)
            if ready and not self.connection.recv(1, socket.MSG_PEEK):
                self.rec_update(peer_closed=time.time())
                return

    # ---- requests ---------------------------------------------------------------

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

    # ---- logging (never bodies, never query strings) -------------------------

    def log_request(self, code="-", size="-"):
        pass  # replaced by log_line(), once per recorded request

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("mock: %s\n" % (fmt % args))

    def log_line(self):
        rec = self.rec
        ms = (rec["t_done"] - rec["t_received"]) * 1000
        self.log_message("%s %s %s %.0fms", self.command, rec["path"],
                         rec["status"] if rec["status"] is not None else "dropped", ms)


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False     # do not wait for streaming threads on exit
    request_queue_size = 1024  # test_capacity opens 1,000 streams at once

    def __init__(self, addr, handler, args):
        super().__init__(addr, handler)
        self.recorder = Recorder()
        self.args = args
        self.require_key = args.require_key
        self.quiet = args.quiet
        self.lock = threading.Lock()
        self.to_reset = set()   # sockets to end with an RST (reset_connection)

    def shutdown_request(self, request):
        if request in self.to_reset:
            self.to_reset.discard(request)
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            request.close()   # no shutdown(SHUT_WR) first: that would send a FIN
            return
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # Client disconnects and idle timeouts are normal; stay silent.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def parser(description, key_help):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--require-key", default=None, help=key_help)
    p.add_argument("--quiet", action="store_true", help="no per-request log")
    return p


def _stop(signum, frame):
    raise KeyboardInterrupt


def serve(args, handler, server_class=MockServer):
    """Listen, print the READY line, serve until SIGTERM/SIGINT; returns 0."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:   # a connection per open stream: test_capacity holds 1,000
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = server_class((args.host, args.port), handler, args)
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
