#!/usr/bin/env python3
"""Mock OpenTelemetry collector: OTLP/HTTP with JSON encoding, for Tollgate's
span export (tests/integration/test_otel.py).

Usage:
    python3 tests/mock/mock_otlp.py --port N [--host 127.0.0.1] [--quiet]

POST /v1/traces  stores the body (it must be JSON, with Content-Type
                 application/json) and answers 200 {"partialSuccess": {}};
                 anything unparsable is stored as a violation and answered 400.
Control (loopback only):
  PUT /_mock/script     {"status": 200 | 503 ..., "sleep_ms": 0}: how to answer
                        (a sleep makes a collector that hangs)
  GET /_mock/exports    every stored export: {"headers": {...}, "body": {...}}
  GET /_mock/violations bodies that were not OTLP JSON
  DELETE /_mock/exports clears both
Prints exactly one line `READY port=<N>` on stdout once listening; SIGTERM or
SIGINT exits with status 0.  Standard library only.
"""

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.exports = []
        self.violations = []
        self.script = {"status": 200, "sleep_ms": 0}


STATE = State()
MAX_BODY = 64 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    quiet = False

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("mock_otlp: " + (fmt % args) + "\n")

    def _reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def do_GET(self):
        with STATE.lock:
            if self.path == "/_mock/exports":
                return self._reply(200, STATE.exports)
            if self.path == "/_mock/violations":
                return self._reply(200, STATE.violations)
            if self.path == "/_mock/health":
                return self._reply(200, {"ok": True})
        self._reply(404, {"error": "not found"})

    def do_DELETE(self):
        if self.path == "/_mock/exports":
            with STATE.lock:
                STATE.exports.clear()
                STATE.violations.clear()
            return self._reply(200, {})
        self._reply(404, {"error": "not found"})

    def do_PUT(self):
        if self.path != "/_mock/script":
            return self._reply(404, {"error": "not found"})
        script = json.loads(self._body() or b"{}")
        with STATE.lock:
            STATE.script = {"status": int(script.get("status", 200)),
                            "sleep_ms": int(script.get("sleep_ms", 0))}
        self._reply(200, STATE.script)

    def do_POST(self):
        raw = self._body()
        with STATE.lock:
            script = dict(STATE.script)
        if script["sleep_ms"] > 0:
            time.sleep(script["sleep_ms"] / 1000.0)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            if self.path != "/v1/traces":
                raise ValueError("path %s" % self.path)
            if not headers.get("content-type", "").startswith("application/json"):
                raise ValueError("content-type %r" % headers.get("content-type"))
            body = json.loads(raw)
            if not isinstance(body.get("resourceSpans"), list):
                raise ValueError("no resourceSpans")
        except ValueError as e:
            with STATE.lock:
                STATE.violations.append({"why": str(e), "raw": raw.decode("utf-8", "replace")})
            return self._reply(400, {"error": str(e)})
        with STATE.lock:
            STATE.exports.append({"headers": headers, "body": body,
                                  "raw": raw.decode("utf-8")})
        if script["status"] != 200:
            return self._reply(script["status"], {"error": "scripted"})
        self._reply(200, {"partialSuccess": {}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    Handler.quiet = args.quiet
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    signal.signal(signal.SIGINT, lambda *a: threading.Thread(target=server.shutdown).start())
    print("READY port=%d" % server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
