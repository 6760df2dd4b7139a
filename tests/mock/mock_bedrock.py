#!/usr/bin/env python3
"""Mock of the Amazon Bedrock runtime Converse API for Tollgate's integration tests.

Usage:
    python3 tests/mock/mock_bedrock.py --port N [--host 127.0.0.1]
                                       [--require-key KEY] [--quiet]
                                       [--access-key-id AKID] [--secret-key SECRET]
                                       [--region REGION] [--max-skew-s 900]

Serves POST /model/{modelId}/converse (JSON) and /model/{modelId}/converse-stream
(application/vnd.amazon.eventstream).  Authorization is either SigV4
(AWS4-HMAC-SHA256; checked in shape, and verified in full with --secret-key)
or a Bedrock API key (Bearer; checked against --require-key when given).
Prints exactly one line `READY port=<N>` once listening.  Steered per request
by a `MOCK{...}` directive in the request text; see tests/mock/README.md.

Standard library only; runs under Debian's /usr/bin/python3 (3.11).
"""

import base64
import hashlib
import hmac
import re
import struct
import sys
import time
import uuid
import zlib
from calendar import timegm
from urllib.parse import quote, unquote

from mock_common import (DEFAULT_TEXT, BaseHandler, MockError, args_object, args_string,
                         check_directive, count_tokens, count_words, default_chunks, dumps,
                         find_directive, parser, pause_ms, serve, split_even, split_text,
                         tool_calls)

ARG_PIECES = 3  # default number of pieces a tool call's input arrives in

# HTTP status -> the exception name in x-amzn-ErrorType
ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
# status -> the :exception-type of an exception frame in a stream
STREAM_EXCEPTIONS = {
    400: "validationException",
    424: "modelStreamErrorException",
    429: "throttlingException",
    500: "internalServerException",
    503: "serviceUnavailableException",
}
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
PATH = re.compile(r"^/model/([^/]+)/(converse|converse-stream)$")
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

SIGV4_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*"
                        r"SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$")
AMZ_DATE = re.compile(r"^(\d{8})T\d{6}Z$")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# --------------------------------------------------------------------------
# SigV4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html)
# --------------------------------------------------------------------------

def canonical_uri(raw_path, encode_twice=True):
    """The canonical URI: each segment URI-encoded.  Services other than S3
    encode the path as sent once more (so %3A becomes %253A)."""
    path = raw_path if encode_twice else unquote(raw_path)
    return quote(path or "/", safe="/")


def canonical_query(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe=""), quote(unquote(value), safe="")))
    return "&".join("%s=%s" % p for p in sorted(pairs))


def canonical_headers(get_all, signed):
    """name:value lines of the signed headers; None and the name if one is missing."""
    lines = []
    for name in signed:
        values = get_all(name)
        if not values:
            return None, name
        value = ",".join(re.sub(r"\s+", " ", v.strip()) for v in values)
        lines.append("%s:%s\n" % (name, value))
    return "".join(lines), None


def signing_key(secret, date, region, service):
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sigv4_signature(secret, method, raw_path, raw_query, get_all, signed, payload_hash,
                    amz_date, scope, encode_twice=True):
    """The hex signature of a request (None if a signed header is missing)."""
    headers, missing = canonical_headers(get_all, signed)
    if headers is None:
        return None
    creq = "\n".join([method, canonical_uri(raw_path, encode_twice), canonical_query(raw_query),
                      headers, ";".join(signed), payload_hash])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode("utf-8")).hexdigest()])
    date, region, service, _ = scope.split("/")
    return hmac.new(signing_key(secret, date, region, service), sts.encode("utf-8"),
                    hashlib.sha256).hexdigest()


def auth_error(status, kind, message):
    return MockError(status, message, kind)


# --------------------------------------------------------------------------
# Event stream encoding
# --------------------------------------------------------------------------

def encode_frame(headers, payload):
    """One application/vnd.amazon.eventstream message: string headers only."""
    hbytes = b""
    for name, value in headers:
        n, v = name.encode("utf-8"), value.encode("utf-8")
        hbytes += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(hbytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hbytes))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + hbytes + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type, payload):
    return encode_frame([(":event-type", event_type), (":content-type", "application/json"),
                         (":message-type", "event")], dumps(payload).encode("utf-8"))


def exception_frame(exception_type, message):
    return encode_frame([(":exception-type", exception_type),
                         (":content-type", "application/json"),
                         (":message-type", "exception")],
                        dumps({"message": message}).encode("utf-8"))


# --------------------------------------------------------------------------
# Request inspection
# --------------------------------------------------------------------------

def _block_texts(blocks):
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                yield block["text"]


def iter_texts(req):
    """system text blocks, then each message's text blocks."""
    yield from _block_texts(req.get("system"))
    messages = req.get("messages")
    if isinstance(messages, list):
        for msg in messages:
            if isinstance(msg, dict):
                yield from _block_texts(msg.get("content"))


def directive_calls(d):
    """tool_calls [{name, input|arguments}] plus an Anthropic-style tool_use {name, input}."""
    calls = [(name, args_object(args)) for name, args in tool_calls(d, ("input", "arguments", "args"))]
    if "tool_use" in d:
        tu = d["tool_use"]
        if not isinstance(tu, dict):
            raise MockError(400, "mock: tool_use must be an object")
        calls.append((tu.get("name", "mock_tool"), args_object(tu.get("input", {}))))
    return calls


def build_usage(req, directive, text, calls):
    u = directive.get("usage", {})
    visible = count_words(text) + sum(max(1, len(args_string(a)) // 4) for _, a in calls)
    usage = {
        "inputTokens": u.get("input_tokens", count_tokens(iter_texts(req))),
        "outputTokens": u.get("output_tokens", visible),
        "cacheReadInputTokens": u.get("cache_read_input_tokens", 0),
        "cacheWriteInputTokens": u.get("cache_creation_input_tokens", 0),
    }
    total = sum(usage.values())
    out = {"inputTokens": usage["inputTokens"], "outputTokens": usage["outputTokens"],
           "totalTokens": u.get("total_tokens", total)}
    out["cacheReadInputTokens"] = usage["cacheReadInputTokens"]
    out["cacheWriteInputTokens"] = usage["cacheWriteInputTokens"]
    return out


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------

class Handler(BaseHandler):
    raw_out = None      # the bytes of a stream sent so far
    sent_events = None  # and its frames, decoded

    def error_reply(self, err):
        kind = err.kind or ERROR_TYPES.get(err.status, "InternalServerException"
                                           if err.status >= 500 else "ValidationException")
        headers = [("x-amzn-ErrorType", kind + ERROR_TYPE_SUFFIX)] + err.headers
        return err.status, {"message": err.message}, headers

    def api_headers(self):
        return [("x-amzn-RequestId", str(uuid.UUID(int=self.req_n)))]

    def route(self, path, body):
        m = PATH.match(path)
        if not m:
            raise MockError(404, "Not found: %s" % path, "UnknownOperationException")
        model_id = unquote(m.group(1))
        self.rec_update(model_id=model_id, operation=m.group(2))
        self.check_auth(path, body)
        if self.command != "POST":
            raise MockError(405, "Method not allowed", "UnknownOperationException")
        req = self.json_body(body)
        if not isinstance(req.get("messages"), list) or not req["messages"]:
            raise MockError(400, "A conversation must start with a user message. Try again "
                                 "with a conversation that starts with a user message.")
        directive = find_directive(iter_texts(req))
        check_directive(directive, strings=("text", "error_type", "finish_reason"))
        calls = directive_calls(directive)
        pause_ms(directive.get("delay_ms"))
        drop = directive.get("drop")
        if drop == "before_headers":
            self.close_connection = True  # socket is closed, nothing sent
            return
        status = int(directive.get("status", 200))
        if status != 200:
            kind = directive.get("error_type") or ERROR_TYPES.get(
                status, "InternalServerException" if status >= 500 else "ValidationException")
            headers = self.api_headers() + [("x-amzn-ErrorType", kind + ERROR_TYPE_SUFFIX)]
            if "retry_after" in directive:
                headers.append(("retry-after", str(directive["retry_after"])))
            self.send_json(status, {"message": "mock error %d" % status}, headers,
                           half=(drop == "mid_stream"))
            return
        text = directive.get("text", "" if calls else DEFAULT_TEXT)
        usage = build_usage(req, directive, text, calls)
        stop = directive.get("finish_reason", "tool_use" if calls else "end_turn")
        if m.group(2) == "converse":
            self.send_converse(directive, text, calls, usage, stop)
        else:
            self.send_converse_stream(directive, text, calls, usage, stop)

    # ---- auth ------------------------------------------------------------------

    def check_auth(self, path, body):
        auth = self.headers.get("authorization")
        if not auth:
            raise auth_error(403, "MissingAuthenticationTokenException",
                             "Missing Authentication Token")
        if auth.startswith("Bearer "):
            key = self.server.require_key
            self.rec_update(auth={"scheme": "bearer"})
            if not auth[7:].strip() or key is not None and auth[7:].strip() != key:
                raise auth_error(403, "UnrecognizedClientException",
                                 "The security token included in the request is invalid.")
            return
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            raise auth_error(403, "IncompleteSignatureException",
                             "Authorization header requires 'Credential', 'SignedHeaders' and "
                             "'Signature' parameters, or a Bearer API key.")
        self.check_sigv4(auth, path, body)

    def check_sigv4(self, auth, path, body):
        args = self.server.args
        m = SIGV4_AUTH.match(auth)
        cred = m.group(1).split("/") if m else []
        if not m or len(cred) != 5 or not re.fullmatch(r"\d{8}", cred[1]) \
                or cred[4] != "aws4_request":
            raise auth_error(403, "IncompleteSignatureException",
                             "Authorization header requires 'Credential' (AKID/DATE/REGION/"
                             "SERVICE/aws4_request), 'SignedHeaders' and 'Signature' "
                             "(64 hex digits) parameters.")
        akid, date, region, service, _ = cred
        signed = m.group(2).split(";")
        info = {"scheme": "sigv4", "access_key_id": akid, "date": date, "region": region,
                "service": service, "signed_headers": signed,
                "security_token": self.headers.get("x-amz-security-token") is not None,
                "verified": None}
        self.rec_update(auth=info)
        amz_date = self.headers.get("x-amz-date", "")
        dm = AMZ_DATE.match(amz_date)
        if not dm:
            raise auth_error(403, "IncompleteSignatureException",
                             "Authorization header requires existence of either a "
                             "'X-Amz-Date' or a 'Date' header.")
        if dm.group(1) != date:
            raise auth_error(403, "InvalidSignatureException",
                             "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                             "version of date from HTTP: '%s' != '%s'" % (date, dm.group(1)))
        if service != "bedrock":
            raise auth_error(403, "InvalidSignatureException",
                             "Credential should be scoped to correct service: 'bedrock'.")
        if args.region and region != args.region:
            raise auth_error(403, "InvalidSignatureException",
                             "Credential should be scoped to a valid region.")
        if signed != sorted(signed) or "host" not in signed or "x-amz-date" not in signed:
            raise auth_error(403, "InvalidSignatureException",
                             "SignedHeaders must be sorted and include host and x-amz-date.")
        if "x-amz-security-token" in self.headers and "x-amz-security-token" not in signed:
            raise auth_error(403, "InvalidSignatureException",
                             "x-amz-security-token must be a signed header.")
        when = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        if abs(time.time() - when) > args.max_skew_s:
            raise auth_error(403, "InvalidSignatureException",
                             "Signature expired: %s is now earlier or later than the allowed "
                             "skew of %ds." % (amz_date, args.max_skew_s))
        if args.access_key_id is not None and akid != args.access_key_id:
            raise auth_error(403, "UnrecognizedClientException",
                             "The security token included in the request is invalid.")
        if args.secret_key is None:
            return
        payload_hash = hashlib.sha256(body).hexdigest()
        claimed = self.headers.get("x-amz-content-sha256")
        if claimed is not None and claimed != "UNSIGNED-PAYLOAD" and claimed != payload_hash:
            info.update(verified=False, reason="x-amz-content-sha256 is not the body's hash")
            self.rec_update(auth=info)
            raise auth_error(400, "ValidationException",
                             "The provided 'x-amz-content-sha256' header does not match what "
                             "was computed.")
        if claimed is not None:
            payload_hash = claimed
        raw_query = self.path.partition("?")[2]
        scope = "/".join(cred[1:])
        want = sigv4_signature(args.secret_key, self.command, path, raw_query,
                               self.headers.get_all, signed, payload_hash, amz_date, scope)
        if want is not None and hmac.compare_digest(want, m.group(3)):
            info.update(verified=True)
            self.rec_update(auth=info)
            return
        reason = "a signed header is missing" if want is None else "signature mismatch"
        if want is not None and sigv4_signature(
                args.secret_key, self.command, path, raw_query, self.headers.get_all, signed,
                payload_hash, amz_date, scope, encode_twice=False) == m.group(3):
            reason += " (it would match a canonical URI encoded once; for services other " \
                      "than S3 the path is encoded twice, ':' -> %3A -> %253A)"
        info.update(verified=False, reason=reason)
        self.rec_update(auth=info)
        raise auth_error(403, "InvalidSignatureException",
                         "The request signature we calculated does not match the signature "
                         "you provided. Check your AWS Secret Access Key and signing method. "
                         "Consult the service documentation for details.")

    # ---- converse ----------------------------------------------------------------

    def latency_ms(self):
        return max(1, int((time.time() - self.rec["t_received"]) * 1000))

    def send_converse(self, directive, text, calls, usage, stop):
        content = [{"text": text}] if text or not calls else []
        for i, (name, args) in enumerate(calls):
            content.append({"toolUse": {"toolUseId": "tooluse_mock_%d_%d" % (self.req_n, i),
                                        "name": name, "input": args}})
        obj = {"output": {"message": {"role": "assistant", "content": content}},
               "stopReason": stop, "usage": usage, "metrics": {"latencyMs": self.latency_ms()}}
        self.send_json(200, obj, self.api_headers(), half=(directive.get("drop") == "mid_stream"))

    def send_converse_stream(self, directive, text, calls, usage, stop):
        events = [("messageStart", {"role": "assistant"})]
        index = 0
        if text or not calls:
            n = int(directive.get("chunks", default_chunks(text)))
            for piece in split_text(text, n):
                events.append(("contentBlockDelta", {"contentBlockIndex": index,
                                                     "delta": {"text": piece}}))
            events.append(("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        pieces = int(directive.get("chunks", ARG_PIECES))
        for i, (name, args) in enumerate(calls):
            events.append(("contentBlockStart", {"contentBlockIndex": index, "start": {
                "toolUse": {"toolUseId": "tooluse_mock_%d_%d" % (self.req_n, i),
                            "name": name}}}))
            for piece in split_even(dumps(args), pieces):
                events.append(("contentBlockDelta", {"contentBlockIndex": index,
                                                     "delta": {"toolUse": {"input": piece}}}))
            events.append(("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        events.append(("messageStop", {"stopReason": stop}))
        events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": None}}))
        self.raw_out, self.sent_events = bytearray(), []
        self.rec_update(response_encoding="base64", events=[])
        encoded = [LazyFrame(self, name, payload, i) for i, (name, payload) in enumerate(events)]
        error_event = None
        if "stream_error" in directive:
            status = int(directive["stream_error"])
            etype = directive.get("error_type") or STREAM_EXCEPTIONS.get(
                status, "internalServerException")
            error_event = ExceptionFrame(etype, "mock stream error %d" % status)
        self.begin_stream("application/vnd.amazon.eventstream", self.api_headers())
        # drop / stream_error: messageStart and one delta
        self.send_events(encoded, directive, drop_keep=2, error_event=error_event)

    def write_event(self, frame):
        raw, summary = frame.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        self.raw_out += raw
        self.sent_events.append(summary)
        self.rec_update(response_body=base64.b64encode(bytes(self.raw_out)).decode("ascii"),
                        events=list(self.sent_events))


class LazyFrame:
    """An event frame encoded when sent (so metadata's latencyMs is the real one)."""

    def __init__(self, handler, event_type, payload, i):
        self.handler, self.event_type, self.payload, self.i = handler, event_type, payload, i

    def encode(self):
        payload = dict(self.payload)
        if self.event_type == "metadata":
            payload["metrics"] = {"latencyMs": self.handler.latency_ms()}
        # Bedrock pads every event with a "p" field of varying length
        payload["p"] = PADDING[:(self.i * 7) % len(PADDING) + 1]
        return event_frame(self.event_type, payload), {
            "message_type": "event", "event_type": self.event_type, "payload": payload}


class ExceptionFrame:
    def __init__(self, exception_type, message):
        self.exception_type, self.message = exception_type, message

    def encode(self):
        return exception_frame(self.exception_type, self.message), {
            "message_type": "exception", "exception_type": self.exception_type,
            "payload": {"message": self.message}}


def main(argv=None):
    p = parser("Mock Amazon Bedrock runtime (Converse, ConverseStream)",
               "Bearer API keys: answer 403 unless the key equals this")
    p.add_argument("--access-key-id", default=None,
                   help="SigV4: answer 403 unless the credential's access key id is this")
    p.add_argument("--secret-key", default=None,
                   help="SigV4: verify the signature with this secret access key")
    p.add_argument("--region", default=None, help="SigV4: require this region in the scope")
    p.add_argument("--max-skew-s", type=int, default=900,
                   help="SigV4: refuse an x-amz-date further than this from now")
    return serve(p.parse_args(argv), Handler)


if __name__ == "__main__":
    sys.exit(main())
