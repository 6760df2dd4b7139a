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

import sys

from mock_common import (DEFAULT_TEXT, BaseHandler, MockError, check_directive,
                         default_chunks, dumps, find_directive, parser, pause_ms,
                         reply_text, serve, text_pieces)

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


def error_obj(etype, message):
    return {"type": "error", "error": {"type": etype, "message": message}}


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


def directive_of(req):
    """The request's directive, checked."""
    d = find_directive(iter_texts(req))
    check_directive(d, strings=("text", "model", "finish_reason"))
    if "tool_use" in d and not isinstance(d["tool_use"], dict):
        raise MockError(400, "mock: tool_use must be an object")
    return d


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


def stream_events(msg_id, model, text, usage, chunks, tool=None, directive=None):
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
    for piece in text_pieces(directive or {}, text, chunks):
        events.append(("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": piece}}))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    if tool is not None:
        events += tool_use_events(1, tool, chunks)
    events += [
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": (directive or {}).get(
                               "finish_reason", "tool_use" if tool else "end_turn"),
                                     "stop_sequence": None},
                           "usage": final_usage}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------

class Handler(BaseHandler):

    def records_path(self, path):
        return path.startswith("/v1/")  # as before: only /v1 requests are recorded

    def error_reply(self, err):
        etype = err.kind or ERROR_TYPES.get(err.status, "api_error")
        return err.status, error_obj(etype, err.message), err.headers

    def api_headers(self):
        return [("request-id", "req_mock_%d" % self.req_n), RATELIMIT_HEADER]

    def route(self, path, body):
        if path not in ("/v1/messages", "/v1/messages/count_tokens"):
            raise MockError(404, "Not found: %s" % path)
        if self.command != "POST":
            raise MockError(405, "Method not allowed", "invalid_request_error")
        if path.endswith("/count_tokens"):
            self.handle_count_tokens(body)
        else:
            self.handle_messages(body)

    def handle_count_tokens(self, body):
        """{"input_tokens": N}: the usage directive's input_tokens, else bytes / 4."""
        key = self.server.require_key
        if key is not None and self.headers.get("x-api-key") != key:
            raise MockError(401, "invalid x-api-key")
        req = self.json_body(body)
        usage = build_usage(req, directive_of(req), "")
        self.send_json(200, {"input_tokens": usage["input_tokens"]}, self.api_headers())

    # ---- /v1/messages ---------------------------------------------------

    def handle_messages(self, body):
        key = self.server.require_key
        if key is not None and self.headers.get("x-api-key") != key:
            raise MockError(401, "invalid x-api-key")
        req = self.json_body(body)
        directive = directive_of(req)
        pause_ms(directive.get("delay_ms"))

        drop = directive.get("drop")
        if drop == "before_headers":
            self.close_connection = True  # socket is closed, nothing sent
            return
        status = int(directive.get("status", 200))
        if status != 200:
            self.send_directed_error(status, directive, drop)
            return

        text = reply_text(directive, DEFAULT_TEXT)
        if directive.get("pad_bytes"):   # a reply of about this many more bytes
            text += " " + "x" * int(directive["pad_bytes"])
        usage = build_usage(req, directive, text)
        model = directive.get("model") or req.get("model")
        if req.get("stream") is True:
            self.send_stream(directive, model, text, usage)
        else:
            self.send_message(model, text, usage, drop, directive.get("tool_use"),
                              directive.get("finish_reason"))

    def send_directed_error(self, status, directive, drop):
        etype = directive.get("error_type") or ERROR_TYPES.get(status, "api_error")
        headers = self.api_headers()
        if "retry_after" in directive:
            headers.append(("retry-after", str(directive["retry_after"])))
        self.send_json(status, error_obj(etype, "mock error %d" % status),
                       headers, half=(drop in ("mid_stream", "reset")))
        if drop == "reset":
            self.reset_connection()

    def send_message(self, model, text, usage, drop, tool=None, finish_reason=None):
        content = [{"type": "text", "text": text}]
        if tool is not None:
            content.append(tool_use_block(1, tool))
        msg = {"id": "msg_mock_%d" % self.req_n, "type": "message",
               "role": "assistant", "model": model, "content": content,
               "stop_reason": finish_reason or ("tool_use" if tool is not None else "end_turn"),
               "stop_sequence": None, "usage": usage}
        self.send_json(200, msg, self.api_headers(),
                       half=(drop in ("mid_stream", "reset")))
        if drop == "reset":
            self.reset_connection()

    def send_stream(self, directive, model, text, usage):
        chunks = int(directive.get("chunks", len(directive["pieces"]) if "pieces" in directive
                                   else default_chunks(text)))
        events = stream_events("msg_mock_%d" % self.req_n, model, text,
                               usage, chunks, directive.get("tool_use"), directive)
        encoded = []
        for name, payload in events:
            data = "event: %s\ndata: %s\n\n" % (name, dumps(payload))
            encoded.append((data.encode("utf-8"), data))
        if "malformed_after" in directive:   # an event whose data is not JSON
            bad = ('event: content_block_delta\ndata: {"type":"content_block_delta",'
                   '"index":0,"delta":{"type":"text_delta","text":"cut\n\n')
            encoded.insert(int(directive["malformed_after"]), (bad.encode("utf-8"), bad))
        if "truncate_after" in directive:    # the body ends cleanly, the message does not
            encoded = encoded[:int(directive["truncate_after"])]
        error_event = None
        if "stream_error" in directive:  # an error event in place of the rest
            status = int(directive["stream_error"])
            data = "event: error\ndata: %s\n\n" % dumps(error_obj(
                directive.get("error_type") or ERROR_TYPES.get(status, "api_error"),
                "mock stream error %d" % status))
            error_event = (data.encode("utf-8"), data)
        self.begin_stream("text/event-stream", self.api_headers())
        # drop / stream_error: message_start, content_block_start, ping and at most one delta
        self.send_events(encoded, directive, drop_keep=3 + (1 if chunks > 0 else 0),
                         error_event=error_event)


def main(argv=None):
    args = parser("Mock Anthropic Messages API",
                  "answer 401 unless x-api-key equals this").parse_args(argv)
    return serve(args, Handler)


if __name__ == "__main__":
    sys.exit(main())
