#!/usr/bin/env python3
"""Mock of the OpenAI API (and Azure OpenAI) for Tollgate's integration tests.

Usage:
    python3 tests/mock/mock_openai.py --port N [--host 127.0.0.1]
                                      [--require-key KEY] [--quiet]
                                      [--models ID,ID,...]

Serves POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models[/ID]
(Authorization: Bearer KEY) and the Azure OpenAI paths
POST /openai/deployments/{deployment}/chat/completions?api-version=...
and .../embeddings?api-version=... (api-key: KEY).  Prints exactly one line
`READY port=<N>` once listening.  Steered per request by a `MOCK{...}`
directive in the request text; see tests/mock/README.md.

Standard library only; runs under Debian's /usr/bin/python3 (3.11).
"""

import base64
import hashlib
import math
import re
import struct
import sys
import time
from urllib.parse import unquote

from mock_common import (DEFAULT_TEXT, BaseHandler, MockError, args_string,
                         check_directive, count_tokens, count_words, default_chunks,
                         dumps, find_directive, is_number, parser, pause_ms, serve,
                         reply_text, split_even, text_pieces, tool_calls)

DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small")
DEFAULT_DIMENSIONS = 8
ARG_PIECES = 3  # default number of pieces a tool call's arguments arrive in

# status -> (type, code) of OpenAI's error object
ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", None),
    409: ("invalid_request_error", None),
    413: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}

AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|embeddings)$")


DERIVED = object()  # error_obj's code: derived from the status


def error_obj(status, message, etype=None, code=DERIVED, param=None):
    dtype, dcode = ERRORS.get(status, ("server_error" if status >= 500
                                       else "invalid_request_error", None))
    return {"error": {"message": message, "type": etype or dtype,
                      "param": param, "code": dcode if code is DERIVED else code}}


def azure_error_obj(code, message):
    """The shape Azure's front door uses for auth, routing and throttling errors."""
    return {"error": {"code": code, "message": message}}


# --------------------------------------------------------------------------
# Request inspection
# --------------------------------------------------------------------------

def message_texts(req):
    """Texts of the messages in order: content strings and text parts."""
    messages = req.get("messages")
    if not isinstance(messages, list):
        return
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for part in content:
                if (isinstance(part, dict) and part.get("type") == "text"
                        and isinstance(part.get("text"), str)):
                    yield part["text"]


def embedding_inputs(req):
    """The embeddings request's inputs: a list of strings or of token lists."""
    inp = req.get("input")
    if isinstance(inp, str):
        return [inp]
    if isinstance(inp, list) and inp:
        if all(isinstance(x, str) for x in inp):
            return inp
        if all(is_number(x) for x in inp):
            return [inp]
        if all(isinstance(x, list) and all(is_number(t) for t in x) for x in inp):
            return inp
    raise MockError(400, "'input' must be a string, an array of strings, an array of "
                         "tokens or an array of token arrays", param="input")


def directive_of(texts):
    d = find_directive(texts)
    check_directive(d, strings=("text", "error_type", "error_code", "finish_reason",
                                "model"))
    tool_calls(d)  # checks its shape
    return d


def chat_usage(req, directive, text, calls):
    """OpenAI usage: defaults from the request/reply, overridden by the directive."""
    u = directive.get("usage", {})
    prompt = u.get("prompt_tokens", count_tokens(message_texts(req)))
    reasoning = u.get("reasoning_tokens", 0)
    visible = count_words(text) + sum(max(1, len(args_string(a)) // 4) for _, a in calls)
    completion = u.get("completion_tokens", visible + reasoning)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": u.get("total_tokens", prompt + completion),
        "prompt_tokens_details": {"cached_tokens": u.get("cached_tokens", 0),
                                  "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def embedding_vector(item, index, dims):
    """A deterministic unit vector derived from the input."""
    seed = hashlib.sha256(("%d:%s" % (index, item)).encode("utf-8")).digest()
    raw = []
    while len(raw) < dims:
        seed = hashlib.sha256(seed).digest()
        raw += [b / 127.5 - 1.0 for b in seed]
    raw = raw[:dims]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    # float32 precision, as the API's vectors have
    return [struct.unpack("<f", struct.pack("<f", x / norm))[0] for x in raw]


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------

class Handler(BaseHandler):
    azure = False       # this request came in on an Azure path
    deployment = None

    def error_reply(self, err):
        if "azure" in err.extra:
            obj = azure_error_obj(err.kind or str(err.status), err.message)
        else:
            obj = error_obj(err.status, err.message, err.kind,
                            err.extra.get("code", DERIVED), err.extra.get("param"))
        return err.status, obj, err.headers

    def api_headers(self):
        if self.azure:
            return [("apim-request-id", "mock-apim-%d" % self.req_n),
                    ("x-request-id", "req_mock_%d" % self.req_n),
                    ("x-ms-region", "Mock Region"),
                    ("x-ratelimit-remaining-requests", "999"),
                    ("x-ratelimit-remaining-tokens", "99999")]
        return [("x-request-id", "req_mock_%d" % self.req_n),
                ("openai-processing-ms", "1"),
                ("openai-version", "2020-10-01"),
                ("x-ratelimit-limit-requests", "10000"),
                ("x-ratelimit-remaining-requests", "9999"),
                ("x-ratelimit-limit-tokens", "1000000"),
                ("x-ratelimit-remaining-tokens", "999999")]

    # ---- routing and auth -------------------------------------------------------

    def route(self, path, body):
        m = AZURE_PATH.match(path)
        if m:
            self.azure = True
            self.deployment = unquote(m.group(1))
            self.rec_update(deployment=self.deployment,
                            api_version=self.qparam("api-version"))
            self.check_azure_auth()
            if self.command != "POST":
                raise MockError(405, "Method not allowed")
            if not self.qparam("api-version"):
                raise MockError(404, "Resource not found", "404", azure=True)
            req = self.json_body(body)
            if m.group(2) == "embeddings":
                self.handle_embeddings(req)
            else:
                self.handle_chat(req)
            return
        if path == "/v1/chat/completions" or path == "/v1/embeddings":
            self.check_auth()
            if self.command != "POST":
                raise MockError(405, "Method not allowed")
            req = self.json_body(body)
            if not isinstance(req.get("model"), str) or not req["model"]:
                raise MockError(400, "you must provide a model parameter", param="model")
            if path == "/v1/embeddings":
                self.handle_embeddings(req)
            else:
                self.handle_chat(req)
        elif path == "/v1/models" or path.startswith("/v1/models/"):
            self.check_auth()
            if self.command != "GET":
                raise MockError(405, "Method not allowed")
            self.handle_models(unquote(path[len("/v1/models/"):]) if path != "/v1/models"
                               else None)
        else:
            raise MockError(404, "Invalid URL (%s %s)" % (self.command, path))

    def check_auth(self):
        key = self.server.require_key
        auth = self.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise MockError(401, "You didn't provide an API key. You need to provide your API "
                                 "key in an Authorization header using Bearer auth (i.e. "
                                 "Authorization: Bearer YOUR_KEY).", code=None)
        if key is not None and auth[7:].strip() != key:
            given = auth[7:].strip()
            raise MockError(401, "Incorrect API key provided: %s. You can find your API key "
                                 "at https://platform.openai.com/account/api-keys."
                                 % (given[:3] + "*" * 8 + given[-4:]))

    def check_azure_auth(self):
        key = self.server.require_key
        given = self.headers.get("api-key")
        if given is None or (key is not None and given != key):
            raise MockError(401, "Access denied due to invalid subscription key or wrong API "
                                 "endpoint. Make sure to provide a valid key for an active "
                                 "subscription and use a correct regional API endpoint for "
                                 "your resource.", "401", azure=True)

    # ---- /v1/chat/completions ------------------------------------------------------

    def handle_chat(self, req):
        if not isinstance(req.get("messages"), list) or not req["messages"]:
            raise MockError(400, "'messages' must be a non-empty array", param="messages")
        stream = req.get("stream") is True
        if "stream_options" in req and req["stream_options"] is not None and not stream:
            raise MockError(400, "The 'stream_options' parameter is only allowed when "
                                 "'stream' is enabled.", param="stream_options")
        directive = directive_of(message_texts(req))
        if not self.directed_prelude(directive):
            return
        calls = tool_calls(directive)
        text = reply_text(directive, "" if calls else DEFAULT_TEXT)
        usage = chat_usage(req, directive, text, calls)
        model = directive.get("model") or req.get("model") or self.deployment
        finish = directive.get("finish_reason", "tool_calls" if calls else "stop")
        if stream:
            opts = req.get("stream_options")
            include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
            self.send_chat_stream(directive, model, text, calls, usage, finish, include_usage)
        else:
            self.send_chat(directive, model, text, calls, usage, finish)

    def directed_prelude(self, directive):
        """delay_ms, drop before_headers and status; False if the reply is done."""
        pause_ms(directive.get("delay_ms"))
        drop = directive.get("drop")
        if drop == "before_headers":
            self.close_connection = True  # socket is closed, nothing sent
            return False
        status = int(directive.get("status", 200))
        if status != 200:
            headers = self.api_headers()
            if "retry_after" in directive:
                headers.append(("retry-after", str(directive["retry_after"])))
            if self.azure and status in (401, 429) and "error_type" not in directive:
                obj = azure_error_obj(str(status), "mock error %d" % status)
            else:
                obj = error_obj(status, "mock error %d" % status, directive.get("error_type"),
                                directive.get("error_code", DERIVED))
            self.send_json(status, obj, headers, half=(drop == "mid_stream"))
            return False
        return True

    def chat_id(self):
        return "chatcmpl-mock%d" % self.req_n

    def send_chat(self, directive, model, text, calls, usage, finish):
        message = {"role": "assistant", "content": text if text or not calls else None,
                   "refusal": None, "annotations": []}
        if calls:
            message["tool_calls"] = [
                {"id": "call_mock_%d_%d" % (self.req_n, i), "type": "function",
                 "function": {"name": name, "arguments": args_string(args)}}
                for i, (name, args) in enumerate(calls)]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        obj = {"id": self.chat_id(), "object": "chat.completion", "created": int(time.time()),
               "model": model, "choices": [choice], "usage": usage,
               "service_tier": "default", "system_fingerprint": "fp_mock"}
        if self.azure:
            choice["content_filter_results"] = self.filter_results()
            obj["prompt_filter_results"] = [{"prompt_index": 0,
                                             "content_filter_results": self.filter_results()}]
        self.send_json(200, obj, self.api_headers(), half=(directive.get("drop") == "mid_stream"))

    @staticmethod
    def filter_results():
        return {c: {"filtered": False, "severity": "safe"}
                for c in ("hate", "self_harm", "sexual", "violence")}

    def send_chat_stream(self, directive, model, text, calls, usage, finish, include_usage):
        created = int(time.time())

        def chunk(delta, finish_reason=None):
            obj = {"id": self.chat_id(), "object": "chat.completion.chunk", "created": created,
                   "model": model, "service_tier": "default", "system_fingerprint": "fp_mock",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                "finish_reason": finish_reason}]}
            if self.azure:
                obj["choices"][0]["content_filter_results"] = (
                    self.filter_results() if "content" in delta else {})
            if include_usage:
                obj["usage"] = None
            return obj

        chunks = []
        if self.azure:
            # Azure's first chunk: no choices, only the prompt's filter results
            chunks.append({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                           "prompt_filter_results": [{"prompt_index": 0,
                                                      "content_filter_results":
                                                          self.filter_results()}]})
        chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        n = int(directive.get("chunks", len(directive["pieces"]) if "pieces" in directive
                              else default_chunks(text) if text else 0))
        for piece in text_pieces(directive, text, n):
            chunks.append(chunk({"content": piece}))
        pieces = int(directive.get("chunks", ARG_PIECES))
        for i, (name, args) in enumerate(calls):
            chunks.append(chunk({"tool_calls": [{
                "index": i, "id": "call_mock_%d_%d" % (self.req_n, i), "type": "function",
                "function": {"name": name, "arguments": ""}}]}))
            for piece in split_even(args_string(args), pieces):
                chunks.append(chunk({"tool_calls": [{"index": i,
                                                     "function": {"arguments": piece}}]}))
        chunks.append(chunk({}, finish))
        if include_usage:
            last = chunk({})
            last["choices"] = []
            last["usage"] = usage
            chunks.append(last)
        events = [self.sse("data: %s\n\n" % dumps(c)) for c in chunks]
        events.append(self.sse("data: [DONE]\n\n"))
        keep = (2 if self.azure else 1) + 1  # the role chunk and one more
        error_event = None
        if "stream_error" in directive:
            status = int(directive["stream_error"])
            error_event = self.sse("data: %s\n\n" % dumps(error_obj(
                status, "mock stream error %d" % status, directive.get("error_type"),
                directive.get("error_code", DERIVED))))
        self.begin_stream("text/event-stream; charset=utf-8", self.api_headers())
        self.send_events(events, directive, drop_keep=keep, error_event=error_event)

    @staticmethod
    def sse(data):
        return data.encode("utf-8"), data

    # ---- /v1/embeddings ------------------------------------------------------------

    def handle_embeddings(self, req):
        inputs = embedding_inputs(req)
        directive = directive_of(x for x in inputs if isinstance(x, str))
        fmt = req.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise MockError(400, "'encoding_format' must be 'float' or 'base64'",
                            param="encoding_format")
        dims = req.get("dimensions", DEFAULT_DIMENSIONS)
        if not is_number(dims) or dims < 1 or dims > 4096:
            raise MockError(400, "'dimensions' must be an integer in 1..4096",
                            param="dimensions")
        if not self.directed_prelude(directive):
            return
        data, prompt = [], 0
        for i, item in enumerate(inputs):
            vec = embedding_vector(item, i, int(dims))
            if fmt == "base64":
                emb = base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode("ascii")
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
            prompt += count_tokens([item]) if isinstance(item, str) else len(item)
        u = directive.get("usage", {})
        prompt = u.get("prompt_tokens", prompt)
        obj = {"object": "list", "data": data,
               "model": directive.get("model") or req.get("model") or self.deployment,
               "usage": {"prompt_tokens": prompt, "total_tokens": u.get("total_tokens", prompt)}}
        self.send_json(200, obj, self.api_headers(), half=(directive.get("drop") == "mid_stream"))

    # ---- /v1/models --------------------------------------------------------------

    def handle_models(self, model_id):
        models = [{"id": m, "object": "model", "created": 1700000000,
                   "owned_by": "system" if "embedding" in m else "openai"}
                  for m in self.server.args.models.split(",") if m]
        if model_id is None:
            self.send_json(200, {"object": "list", "data": models}, self.api_headers())
            return
        for m in models:
            if m["id"] == model_id:
                self.send_json(200, m, self.api_headers())
                return
        raise MockError(404, "The model '%s' does not exist" % model_id,
                        code="model_not_found", param="model")


def main(argv=None):
    p = parser("Mock OpenAI / Azure OpenAI API",
               "answer 401 unless Authorization: Bearer (OpenAI) or api-key (Azure) "
               "equals this")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help="comma-separated ids listed by GET /v1/models")
    args = p.parse_args(argv)
    return serve(args, Handler)

if __name__ == "__main__":
    sys.exit(main())
