#!/usr/bin/env python3
"""Mock of a guardrail webhook and of OpenAI's moderation endpoint, for
Tollgate's remote guardrail checks (tests/integration/test_guard_webhook.py).

Usage:
    python3 tests/mock/mock_guard.py --port N [--host 127.0.0.1] [--quiet]

POST /v1/moderations answers OpenAI's moderation reply (one result per input,
every category false but the scripted ones); any other POST is the webhook,
answering as scripted.  Every call is recorded (path, headers, JSON body).

Control (loopback only, like everything here):
  PUT /_mock/script  {"webhook": {"action": "allow" | "deny" | "replace" |
                                  "sleep" | "500" | "garbage" | "wrong_count",
                                  "reason": "...",           (deny)
                                  "old": "x", "new": "y",    (replace: in each text)
                                  "sleep_ms": 2000},         (sleep, then allow)
                      "moderation": {"flag": ["violence"], "when": "substring"},
                      "forbid": "substring"}
      "forbid": a call whose texts hold the substring is a violation (recorded
      and answered 500): what the gateway must never have sent.
  GET  /_mock/requests    the recorded calls
  GET  /_mock/violations  the forbidden calls
  DELETE /_mock/requests  clears calls and violations
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

CATEGORIES = ["harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
              "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent",
              "sexual", "sexual/minors", "violence", "violence/graphic"]


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []
        self.violations = []
        self.script = {}


STATE = State()


def texts_of(path, body):
    if path == "/v1/moderations":
        return [t for t in body.get("input", []) if isinstance(t, str)]
    return [t.get("text", "") for t in body.get("texts", [])]


def moderation_reply(body, script):
    flag = script.get("flag", [])
    when = script.get("when")
    results = []
    for text in body.get("input", []):
        hit = when is None or when in text
        cats = {c: hit and c in flag for c in CATEGORIES}
        results.append({"flagged": any(cats.values()), "categories": cats,
                        "category_scores": {c: (0.9 if v else 0.01) for c, v in cats.items()},
                        "category_applied_input_types": {c: ["text"] for c in CATEGORIES}})
    return {"id": "modr-mock", "model": body.get("model"), "results": results}


def webhook_reply(body, script):
    """(status, bytes) for the scripted action."""
    action = script.get("action", "allow")
    texts = [t.get("text", "") for t in body.get("texts", [])]
    if action == "sleep":
        time.sleep(script.get("sleep_ms", 2000) / 1000.0)
        return 200, b'{"action": "allow"}'
    if action == "500":
        return 500, b'{"error": "down"}'
    if action == "garbage":
        return 200, b'<html>not json'
    if action == "wrong_count":
        return 200, json.dumps({"action": "replace", "texts": texts + ["extra"]}).encode()
    if action == "deny":
        return 200, json.dumps({"action": "deny", "reason": script.get("reason", "")}).encode()
    if action == "replace":
        new = [t.replace(script.get("old", ""), script.get("new", "")) for t in texts]
        return 200, json.dumps({"action": "replace", "texts": new}).encode()
    return 200, b'{"action": "allow"}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s %s\n" % (self.command, self.path.split("?")[0]))

    def reply(self, status, data, content_type="application/json"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("content-length", "0"))
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        with STATE.lock:
            if self.path == "/_mock/requests":
                return self.reply(200, json.dumps(STATE.calls).encode())
            if self.path == "/_mock/violations":
                return self.reply(200, json.dumps(STATE.violations).encode())
            if self.path == "/_mock/health":
                return self.reply(200, b'{"ok": true}')
        self.reply(404, b'{"error": "not found"}')

    def do_DELETE(self):
        with STATE.lock:
            STATE.calls, STATE.violations = [], []
        self.reply(200, b'{"cleared": true}')

    def do_PUT(self):
        body = self.read_body()
        if self.path != "/_mock/script":
            return self.reply(404, b'{"error": "not found"}')
        with STATE.lock:
            STATE.script = json.loads(body or b"{}")
        self.reply(200, b'{"ok": true}')

    def do_POST(self):
        raw = self.read_body()
        path = self.path.split("?")[0]
        try:
            body = json.loads(raw)
        except ValueError:
            return self.reply(400, b'{"error": "not JSON"}')
        with STATE.lock:
            script = dict(STATE.script)
            record = {"path": path, "t": time.time(), "body": body,
                      "headers": {k.lower(): v for k, v in self.headers.items()}}
            STATE.calls.append(record)
            forbid = script.get("forbid")
            if forbid and any(forbid in t for t in texts_of(path, body)):
                STATE.violations.append(record)
                forbidden = True
            else:
                forbidden = False
        if forbidden:
            return self.reply(500, b'{"error": "forbidden text reached the guard"}')
        if path == "/v1/moderations":
            return self.reply(200, json.dumps(moderation_reply(body, script.get("moderation", {})))
                              .encode())
        status, data = webhook_reply(body, script.get("webhook", {}))
        try:
            self.reply(status, data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway gave up waiting (a timeout test)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.quiet = args.quiet
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    signal.signal(signal.SIGINT, lambda *a: threading.Thread(target=server.shutdown).start())
    print("READY port=%d" % server.server_address[1], flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
