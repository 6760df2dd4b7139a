#!/usr/bin/env python3
"""Mock of the Gemini API (and Vertex AI's Gemini endpoints) for Tollgate's tests.

Usage:
    python3 tests/mock/mock_gemini.py --port N [--host 127.0.0.1]
                                      [--require-key KEY] [--quiet]
                                      [--token-ttl-s 3599] [--token-audience URL]
                                      [--jwt-key FILE]

Serves POST /v1beta/models/{model}:generateContent and :streamGenerateContent
(?alt=sse: SSE; otherwise a streamed JSON array), key in x-goog-api-key or
?key=; the Vertex paths POST /v1/projects/{p}/locations/{l}/publishers/google/
models/{model}:generateContent / :streamGenerateContent with
Authorization: Bearer TOKEN; and an OAuth token endpoint POST /token
(grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer) that issues those
tokens.  Prints exactly one line `READY port=<N>` once listening.  Steered
per request by a `MOCK{...}` directive in the request text; see
tests/mock/README.md.

Standard library only; runs under Debian's /usr/bin/python3 (3.11).
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import sys
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote

import mock_common
from mock_common import (DEFAULT_TEXT, BaseHandler, MockError, args_object, check_directive,
                         count_tokens, count_words, default_chunks, dumps, find_directive,
                         is_number, parser, pause_ms, serve, split_text, tool_calls)

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GEMINI_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):"
                         r"(generateContent|streamGenerateContent)$")
VERTEX_PATH = re.compile(r"^/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/publishers/"
                         r"google/models/([^/:]+):(generateContent|streamGenerateContent)$")
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def status_name(code):
    return STATUSES.get(code, "INTERNAL" if code >= 500 else "FAILED_PRECONDITION")


def error_obj(code, message, status=None, details=None):
    err = {"code": code, "message": message, "status": status or status_name(code)}
    if details:
        err["details"] = details
    return {"error": err}


# --------------------------------------------------------------------------
# JWT (RS256) for the token endpoint
# --------------------------------------------------------------------------

def b64url_decode(s):
    if not isinstance(s, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _der(data, pos):
    """(tag, content start, content end) of the DER element at pos."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def _der_items(data, start, end):
    items, pos = [], start
    while pos < end:
        tag, s, e = _der(data, pos)
        items.append((tag, s, e))
        pos = e
    return items


def rsa_public_numbers(pem):
    """(n, e) from a PEM public key (SPKI or PKCS#1), private key (PKCS#8 or
    PKCS#1), or a service account JSON file holding a private_key."""
    if pem.lstrip().startswith("{"):
        pem = json.loads(pem)["private_key"]
    m = re.search(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", pem, re.S)
    if not m:
        raise ValueError("no PEM block")
    kind, der = m.group(1), base64.b64decode("".join(m.group(2).split()))
    _, s, e = _der(der, 0)
    items = _der_items(der, s, e)
    if kind == "PUBLIC KEY":          # SubjectPublicKeyInfo: algid, BIT STRING
        _, bs, be = items[1]
        _, s, e = _der(der, bs + 1)   # skip the unused-bits byte
        items = _der_items(der, s, e)
        n, e_ = items[0], items[1]
    elif kind == "RSA PUBLIC KEY":    # PKCS#1 RSAPublicKey: n, e
        n, e_ = items[0], items[1]
    elif kind == "PRIVATE KEY":       # PKCS#8: version, algid, OCTET STRING
        _, os_, oe = items[2]
        _, s, e = _der(der, os_)
        inner = _der_items(der, s, e)
        n, e_ = inner[1], inner[2]
    elif kind == "RSA PRIVATE KEY":   # PKCS#1 RSAPrivateKey: version, n, e, ...
        n, e_ = items[1], items[2]
    else:
        raise ValueError("unsupported PEM type %s" % kind)
    return (int.from_bytes(der[n[1]:n[2]], "big"), int.from_bytes(der[e_[1]:e_[2]], "big"))


def rs256_verify(numbers, signing_input, signature):
    """RSASSA-PKCS1-v1_5 with SHA-256."""
    n, e = numbers
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    t = SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    want = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, want)


# --------------------------------------------------------------------------
# Request inspection
# --------------------------------------------------------------------------

def _part_texts(content):
    if isinstance(content, dict):
        parts = content.get("parts")
        if isinstance(parts, list):
            for part in parts:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part["text"]


def iter_texts(req):
    """systemInstruction's text parts, then each content's text parts."""
    yield from _part_texts(req.get("systemInstruction", req.get("system_instruction")))
    contents = req.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if isinstance(contents, list):
        for content in contents:
            yield from _part_texts(content)


def usage_metadata(prompt, candidates, cached, thoughts, total=None):
    """usageMetadata as the API writes it: zero counts other than the prompt's left out."""
    u = {"promptTokenCount": prompt}
    if candidates:
        u["candidatesTokenCount"] = candidates
    u["totalTokenCount"] = total if total is not None else prompt + candidates + thoughts
    if cached:
        u["cachedContentTokenCount"] = cached
    if thoughts:
        u["thoughtsTokenCount"] = thoughts
    u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if cached:
        u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    return u


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------

class Handler(BaseHandler):
    vertex = False

    def error_reply(self, err):
        return err.status, error_obj(err.status, err.message, err.kind,
                                     err.extra.get("details")), err.headers

    def api_headers(self):
        return [("x-goog-request-id", "mock-%d" % self.req_n), ("server-timing", "gfet4t7; dur=1")]

    def health(self):
        with self.server.lock:
            return {"ok": True, "tokens_issued": self.server.tokens_issued}

    def route(self, path, body):
        if path == "/token":
            if self.command != "POST":
                raise MockError(405, "Method not allowed")
            self.handle_token(body)
            return
        upath = unquote(path)
        m = VERTEX_PATH.match(upath)
        if m:
            self.vertex = True
            _, project, location, model, method = m.groups()
            self.rec_update(api="vertex", project=project, location=location, model=model,
                            method=method)
            self.check_bearer()
        else:
            m = GEMINI_PATH.match(upath)
            if not m:
                raise MockError(404, "Method not found: %s" % path)
            _, model, method = m.groups()
            self.rec_update(api="gemini", model=model, method=method)
            self.check_api_key()
        if self.command != "POST":
            raise MockError(405, "Method not allowed")
        req = self.json_body(body)
        if not isinstance(req.get("contents"), (list, dict)) or not req["contents"]:
            raise MockError(400, "* GenerateContentRequest.contents: contents is not specified\n")
        self.generate(req, model, method == "streamGenerateContent")

    # ---- auth --------------------------------------------------------------------

    def check_api_key(self):
        given, via = self.headers.get("x-goog-api-key"), "header"
        if given is None and self.qparam("key") is not None:
            given, via = self.qparam("key"), "query"
        self.rec_update(auth={"scheme": "api_key", "via": via if given is not None else None})
        if not given:
            raise MockError(403, "Method doesn't allow unregistered callers (callers without "
                                 "established identity). Please use API Key or other form of "
                                 "API consumer identity to call this API.")
        key = self.server.require_key
        if key is not None and given != key:
            raise MockError(400, "API key not valid. Please pass a valid API key.",
                            details=[{"@type": ERROR_INFO, "reason": "API_KEY_INVALID",
                                      "domain": "googleapis.com", "metadata": {
                                          "service": "generativelanguage.googleapis.com"}}])

    def check_bearer(self):
        auth = self.headers.get("authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        with self.server.lock:
            expiry = self.server.tokens.get(token)
        issued = expiry is not None
        self.rec_update(auth={"scheme": "bearer", "issued": issued,
                              "expired": issued and expiry <= time.time()})
        if not token:
            raise MockError(401, "Request is missing required authentication credential. "
                                 "Expected OAuth 2 access token, login cookie or other valid "
                                 "authentication credential.",
                            details=[{"@type": ERROR_INFO, "reason": "CREDENTIALS_MISSING",
                                      "domain": "googleapis.com"}])
        key = self.server.require_key
        valid = (issued and expiry > time.time()) or token == key or (
            key is None and not issued)
        if not valid:
            raise MockError(401, "Request had invalid authentication credentials. Expected "
                                 "OAuth 2 access token, login cookie or other valid "
                                 "authentication credential.",
                            details=[{"@type": ERROR_INFO, "reason": "ACCESS_TOKEN_EXPIRED"
                                      if issued else "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                                      "domain": "googleapis.com"}])

    # ---- /token ----------------------------------------------------------------------

    def token_error(self, error, description):
        return MockError(400, description, error)

    def handle_token(self, body):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        grant = form.get("grant_type", [""])[0]
        assertion = form.get("assertion", [""])[0]
        if grant != JWT_BEARER:
            raise self.token_error("unsupported_grant_type", "Invalid grant_type: %s" % grant)
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not three parts")
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, binascii.Error) as e:
            raise self.token_error("invalid_grant", "Invalid JWT: cannot decode (%s)" % e)
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise self.token_error("invalid_grant", "Invalid JWT: not JSON objects")
        info = {"header": header, "claims": claims, "signature_verified": None}
        self.rec_update(jwt=info)
        self.check_claims(header, claims)
        numbers = self.server.jwt_key
        if numbers is not None:
            ok = rs256_verify(numbers, (parts[0] + "." + parts[1]).encode("ascii"), signature)
            info["signature_verified"] = ok
            self.rec_update(jwt=info)
            if not ok:
                raise self.token_error("invalid_grant", "Invalid JWT Signature.")
        ttl = self.server.args.token_ttl_s
        token = "ya29.mock-%s" % secrets.token_urlsafe(24)
        with self.server.lock:
            self.server.tokens_issued += 1
            number = self.server.tokens_issued
            self.server.tokens[token] = time.time() + ttl
        self.rec_update(token_number=number)
        self.send_json(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer"},
                       [("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")],
                       content_type="application/json; charset=utf-8")

    def check_claims(self, header, claims):
        now = time.time()
        if header.get("alg") != "RS256":
            raise self.token_error("invalid_grant", "Invalid JWT: alg must be RS256")
        iss, scope, aud = claims.get("iss"), claims.get("scope"), claims.get("aud")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(iss, str) or "@" not in iss:
            raise self.token_error("invalid_grant", "Invalid JWT: iss must be a service "
                                                    "account email")
        if not isinstance(scope, str) or not scope.strip():
            raise self.token_error("invalid_scope", "Invalid OAuth scope or ID token audience "
                                                    "provided.")
        want_aud = self.server.args.token_audience
        if not isinstance(aud, str) or not aud or want_aud is not None and aud != want_aud:
            raise self.token_error("invalid_grant", "Invalid JWT: aud must be the token "
                                                    "endpoint (%s)" % (want_aud or "a URL"))
        if not is_number(exp) or not is_number(iat) or exp <= iat or exp - iat > 3600 \
                or exp < now - 60 or iat > now + 60:
            raise self.token_error("invalid_grant", "Invalid JWT: Token must be a short-lived "
                                                    "token (60 minutes) and in a reasonable "
                                                    "timeframe. Check your iat and exp values "
                                                    "in the JWT claim.")

    def error_reply_token(self, err):
        return err.status, {"error": err.kind, "error_description": err.message}, err.headers

    def guarded(self, func, path):
        if path != "/token":
            return super().guarded(func, path)
        try:
            func(path)
        except MockError as e:
            if not (e.kind or "").islower():  # not an OAuth error: Google's shape
                e.kind = "invalid_request"
            status, obj, headers = self.error_reply_token(e)
            self.send_json(status, obj, self.api_headers() + headers)

    # ---- generateContent -----------------------------------------------------------

    def generate(self, req, model, stream):
        directive = find_directive(iter_texts(req))
        check_directive(directive, strings=("text", "error_type", "finish_reason", "model",
                                            "block_reason"))
        calls = [(name, args_object(args))
                 for name, args in tool_calls(directive, ("args", "arguments", "input"))]
        pause_ms(directive.get("delay_ms"))
        drop = directive.get("drop")
        if drop == "before_headers":
            self.close_connection = True  # socket is closed, nothing sent
            return
        status = int(directive.get("status", 200))
        if status != 200:
            details = None
            if "retry_after" in directive:
                details = [{"@type": RETRY_INFO, "retryDelay": "%ss" % directive["retry_after"]}]
            self.send_json(status, error_obj(status, "mock error %d" % status,
                                             directive.get("error_type"), details),
                           self.api_headers(), half=(drop == "mid_stream"))
            return
        text = directive.get("text", "" if calls else DEFAULT_TEXT)
        u = directive.get("usage", {})
        prompt = u.get("prompt_tokens", count_tokens(iter_texts(req)))
        candidates = u.get("candidates_tokens", count_words(text) + sum(
            max(1, len(dumps(a)) // 4) for _, a in calls))
        usage = usage_metadata(prompt, candidates, u.get("cached_tokens", 0),
                               u.get("thoughts_tokens", 0), u.get("total_tokens"))
        finish = directive.get("finish_reason", "STOP")
        version = directive.get("model") or model
        if "block_reason" in directive:
            # a prompt refused by a safety filter: 200, no candidates
            obj = {"promptFeedback": {"blockReason": directive["block_reason"]},
                   "usageMetadata": usage_metadata(prompt, 0, 0, 0), "modelVersion": version,
                   "responseId": "mock-response-%d" % self.req_n}
            if stream:
                sse = self.qparam("alt") == "sse"
                events = [self.piece(obj, sse, first=True)]
                if not sse:
                    events.append(("]".encode(), "]"))
                self.begin_stream("text/event-stream" if sse else
                                  "application/json; charset=UTF-8", self.api_headers())
                self.send_events(events, directive, drop_keep=0)
            else:
                self.send_json(200, obj, self.api_headers(), half=(drop == "mid_stream"))
            return
        if stream:
            self.send_stream(directive, text, calls, usage, finish, version)
            return
        parts = [{"text": text}] if text or not calls else []
        parts += [{"functionCall": {"name": name, "args": args}} for name, args in calls]
        obj = self.response(parts, usage, finish, version)
        self.send_json(200, obj, self.api_headers(), half=(drop == "mid_stream"))

    def response(self, parts, usage, finish, version):
        candidate = {"content": {"parts": parts, "role": "model"}}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        obj = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": version}
        if self.vertex:
            obj["createTime"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        obj["responseId"] = "mock-response-%d" % self.req_n
        return obj

    def send_stream(self, directive, text, calls, usage, finish, version):
        n = int(directive.get("chunks", default_chunks(text) if text else 0))
        parts_list = [[{"text": piece}] for piece in split_text(text, n)]
        if calls:  # function calls arrive whole, in one chunk
            parts_list.append([{"functionCall": {"name": name, "args": args}}
                               for name, args in calls])
        if not parts_list:
            parts_list = [[{"text": ""}]]
        # Chunks before the last carry running totals: the prompt's count and
        # the words sent so far (never more than the final count).
        prompt, final = usage["promptTokenCount"], usage.get("candidatesTokenCount", 0)
        objs, sent = [], ""
        for i, parts in enumerate(parts_list):
            last = i == len(parts_list) - 1
            sent += "".join(p.get("text", "") for p in parts)
            so_far = min(count_words(sent), final)
            partial = {"promptTokenCount": prompt}
            if so_far:
                partial["candidatesTokenCount"] = so_far
            partial["totalTokenCount"] = prompt + so_far
            partial["promptTokensDetails"] = usage["promptTokensDetails"]
            obj = self.response(parts, usage if last else partial, finish if last else None,
                                version)
            obj["candidates"][0].pop("index")  # stream chunks leave index out
            objs.append(obj)
        sse = self.qparam("alt") == "sse"
        error_event = None
        if "stream_error" in directive:
            status = int(directive["stream_error"])
            err = error_obj(status, "mock stream error %d" % status, directive.get("error_type"))
            error_event = self.piece(err, sse, first=False)
        events = [self.piece(obj, sse, first=(i == 0)) for i, obj in enumerate(objs)]
        if not sse:
            events.append(("]".encode(), "]"))
            if error_event is not None:
                error_event = (error_event[0] + b"]", error_event[1] + "]")
        self.begin_stream("text/event-stream" if sse else "application/json; charset=UTF-8",
                          self.api_headers())
        self.send_events(events, directive, drop_keep=1, error_event=error_event)

    @staticmethod
    def piece(obj, sse, first):
        if sse:
            data = "data: %s\r\n\r\n" % dumps(obj)
        else:  # a JSON array, one element per chunk
            data = ("[" if first else ",\r\n") + json.dumps(obj, indent=2)
        return data.encode("utf-8"), data


def main(argv=None):
    p = parser("Mock Gemini API / Vertex AI generateContent and an OAuth token endpoint",
               "Gemini API: answer 400 API_KEY_INVALID unless the key equals this; "
               "Vertex: also accept this as a bearer token")
    p.add_argument("--token-ttl-s", type=int, default=3599,
                   help="expires_in of the access tokens POST /token issues")
    p.add_argument("--token-audience", default=None,
                   help="POST /token: require the JWT's aud to equal this")
    p.add_argument("--jwt-key", default=None,
                   help="POST /token: verify the RS256 signature with this PEM key (public or "
                        "private) or service account JSON file")
    args = p.parse_args(argv)
    jwt_key = None
    if args.jwt_key:
        with open(args.jwt_key) as f:
            jwt_key = rsa_public_numbers(f.read())

    class Server(mock_common.MockServer):
        def __init__(self, addr, handler, a):
            super().__init__(addr, handler, a)
            self.tokens = {}        # access token -> expiry (time.time())
            self.tokens_issued = 0
            self.jwt_key = jwt_key

    return serve(args, Handler, Server)


if __name__ == "__main__":
    sys.exit(main())
