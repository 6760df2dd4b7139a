"""Tollgate driven by the official client SDKs, as its users drive it.

Each case of the tables below goes through tests/sdk/drive.mjs: npm's
@anthropic-ai/sdk (or openai) at the versions tests/sdk/package-lock.json
pins, installed by scripts/test (tg_sdk_ensure: npm ci).  The driver prints
what the SDK made of the reply: text, tool calls, stop reason, usage, the
x-request-id and cost headers, or the error the SDK raised and its class.

For a reply the test checks that the SDK saw what the mock sent (text, tool
calls, usage), and that the usage row in PostgreSQL, found by x-request-id,
holds the same counts with usage_source 'provider'.  For an error, the SDK's
error class, status and type, and that the mock saw no retry.

A case: name, sdk, call, stream, params (the SDK call's parameters; the
test adds the user message with its marker and the MOCK directive), mock
(the directive: what the provider answers), key ("bad": an unknown key),
and error (the SDK error expected: class, status, type), if any.
"""

import json
import os
import secrets
import shutil
import subprocess

from harness import REPO, main_stack, wait_for

SDK_DIR = REPO / "tests" / "sdk"
DRIVER = SDK_DIR / "drive.mjs"
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
              "cache_creation_input_tokens")

WEATHER = {"name": "get_weather", "description": "The weather forecast for a city.",
           "input_schema": {"type": "object", "required": ["city"], "properties": {
               "city": {"type": "string"}, "unit": {"type": "string"},
               "days": {"type": "array", "items": {"type": "integer"}}}}}
WEATHER_CALL = {"name": "get_weather",
                "input": {"city": "Z\u00fcrich", "unit": "celsius", "days": [1, 2, 3]}}

# ---- the Anthropic SDK on /v1/messages, served by the Anthropic mock ---------

ANTHROPIC_CASES = [
    {"name": "anthropic_text", "sdk": "anthropic", "call": "messages.create", "stream": False,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {"text": "A plain reply, through the gateway.",
              "usage": {"input_tokens": 31, "output_tokens": 7}}},
    {"name": "anthropic_text_stream", "sdk": "anthropic", "call": "messages.create",
     "stream": True,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {"text": "A streamed reply in five pieces, \u00e9t\u00e9 \u2603.", "chunks": 5,
              "usage": {"input_tokens": 1200, "output_tokens": 9,
                        "cache_read_input_tokens": 800, "cache_creation_input_tokens": 300,
                        "cache_creation": {"ephemeral_5m_input_tokens": 100,
                                           "ephemeral_1h_input_tokens": 200}}}},
    {"name": "anthropic_tool", "sdk": "anthropic", "call": "messages.create", "stream": False,
     "params": {"model": "claude-sonnet-4-5", "max_tokens": 128, "tools": [WEATHER]},
     "mock": {"text": "Let me look that up.", "tool_use": WEATHER_CALL,
              "usage": {"input_tokens": 410, "output_tokens": 52,
                        "cache_read_input_tokens": 64, "cache_creation_input_tokens": 0}}},
    {"name": "anthropic_tool_stream", "sdk": "anthropic", "call": "messages.create",
     "stream": True,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 128, "tools": [WEATHER],
                "tool_choice": {"type": "auto"}},
     "mock": {"text": "Checking the forecast.", "tool_use": WEATHER_CALL, "chunks": 4,
              "usage": {"input_tokens": 512, "output_tokens": 61,
                        "cache_read_input_tokens": 0, "cache_creation_input_tokens": 128}}},
    {"name": "anthropic_bad_key", "sdk": "anthropic", "call": "messages.create",
     "stream": False, "key": "bad",
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {},
     "error": {"class": "AuthenticationError", "status": 401, "type": "authentication_error"}},
    {"name": "anthropic_bad_key_stream", "sdk": "anthropic", "call": "messages.create",
     "stream": True, "key": "bad",
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {},
     "error": {"class": "AuthenticationError", "status": 401, "type": "authentication_error"}},
    {"name": "anthropic_rate_limited", "sdk": "anthropic", "call": "messages.create",
     "stream": False,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {"status": 429, "retry_after": 7},
     "error": {"class": "RateLimitError", "status": 429, "type": "rate_limit_error"}},
    {"name": "anthropic_rate_limited_stream", "sdk": "anthropic", "call": "messages.create",
     "stream": True,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {"status": 429, "retry_after": 7},
     "error": {"class": "RateLimitError", "status": 429, "type": "rate_limit_error"}},
    {"name": "anthropic_overloaded", "sdk": "anthropic", "call": "messages.create",
     "stream": False,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {"status": 529},
     "error": {"class": "OverloadedError", "status": 529, "type": "overloaded_error"}},
]

# ---- the OpenAI SDK on /v1/chat/completions and /v1/embeddings -----------------
#
# Chat cases name Claude models: the OpenAI dialect translates them to the
# Anthropic provider, served by the same mock, so the mock's text, tool call and
# usage must come back in OpenAI's shape (want_sdk_usage: prompt_tokens counts
# cached input too, as OpenAI's does).  The embeddings case runs on
# test_openai's stack, whose OpenAI mock serves text-embedding-3-small.

OPENAI_TOOL = {"type": "function", "function": {
    "name": WEATHER["name"], "description": WEATHER["description"],
    "parameters": WEATHER["input_schema"]}}

OPENAI_CASES = [
    {"name": "openai_chat", "sdk": "openai", "call": "chat.completions.create",
     "stream": False,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {"text": "A plain reply, in OpenAI's shape.",
              "usage": {"input_tokens": 33, "output_tokens": 7}}},
    {"name": "openai_chat_stream", "sdk": "openai", "call": "chat.completions.create",
     "stream": True,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64,
                "stream_options": {"include_usage": True}},
     "mock": {"text": "Streamed as chat.completion.chunk deltas.", "chunks": 4,
              "usage": {"input_tokens": 900, "output_tokens": 6,
                        "cache_read_input_tokens": 700, "cache_creation_input_tokens": 0}}},
    {"name": "openai_chat_tool", "sdk": "openai", "call": "chat.completions.create",
     "stream": False,
     "params": {"model": "claude-sonnet-4-5", "max_tokens": 128, "tools": [OPENAI_TOOL]},
     "mock": {"text": "Let me look that up.", "tool_use": WEATHER_CALL,
              "usage": {"input_tokens": 410, "output_tokens": 52}}},
    {"name": "openai_chat_tool_stream", "sdk": "openai", "call": "chat.completions.create",
     "stream": True,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 128, "tools": [OPENAI_TOOL],
                "tool_choice": "auto", "stream_options": {"include_usage": True}},
     "mock": {"text": "Checking the forecast.", "tool_use": WEATHER_CALL, "chunks": 4,
              "usage": {"input_tokens": 512, "output_tokens": 61,
                        "cache_read_input_tokens": 0, "cache_creation_input_tokens": 128}}},
    {"name": "openai_embeddings", "sdk": "openai", "call": "embeddings.create",
     "stream": False,
     "params": {"model": "text-embedding-3-small", "input": ["first text", "second text"],
                "dimensions": 8},
     "mock": {"usage": {"prompt_tokens": 4}},
     "embeddings": 2},
    {"name": "openai_bad_key", "sdk": "openai", "call": "chat.completions.create",
     "stream": False, "key": "bad",
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {},
     "error": {"class": "AuthenticationError", "status": 401}},
    {"name": "openai_rate_limited_stream", "sdk": "openai", "call": "chat.completions.create",
     "stream": True,
     "params": {"model": "claude-haiku-4-5", "max_tokens": 64},
     "mock": {"status": 429, "retry_after": 7},
     "error": {"class": "RateLimitError", "status": 429}},
]

CASES = ANTHROPIC_CASES + OPENAI_CASES


# ---- the driver --------------------------------------------------------------------

def node():
    for path in (shutil.which("node"), "/usr/bin/node", "/usr/local/bin/node"):
        if path and os.access(path, os.X_OK):
            return path
    raise AssertionError("no node on PATH: install nodejs (scripts/test does)")


def drive(case, base_url, api_key, params, timeout=60):
    """Runs one case through drive.mjs; its output line as a dict."""
    if not (SDK_DIR / "node_modules" / ".package-lock.json").exists():
        raise AssertionError("%s/node_modules is missing: scripts/test installs it "
                             "(or: cd tests/sdk && npm ci)" % SDK_DIR)
    # The SDKs read ANTHROPIC_* / OPENAI_* (base URL, keys, custom headers):
    # none of the caller's reach them.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "OPENAI_", "NODE_"))}
    spec = {"sdk": case["sdk"], "call": case["call"], "stream": case["stream"],
            "base_url": base_url, "api_key": api_key, "params": params,
            "timeout_ms": 20000}
    p = subprocess.run([node(), str(DRIVER)], input=json.dumps(spec), capture_output=True,
                       text=True, timeout=timeout, env=env, cwd=str(SDK_DIR))
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or len(lines) != 1:
        raise AssertionError("drive.mjs exited %d, printed %d lines:\n%s\nstderr:\n%s" % (
            p.returncode, len(lines), p.stdout[-2000:], p.stderr[-3000:]))
    return json.loads(lines[0])


# ---- expectations ---------------------------------------------------------------------

def counts(usage):
    """The four token counts of an Anthropic usage object (absent: 0)."""
    return {k: usage.get(k) or 0 for k in USAGE_KEYS}


def want_sdk_usage(sdk, mock_usage):
    """The usage the SDK should report for the mock's (Anthropic) usage."""
    u = counts(mock_usage)
    if sdk == "anthropic":
        return u
    cached = u["cache_read_input_tokens"]
    prompt = u["input_tokens"] + cached + u["cache_creation_input_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": u["output_tokens"],
            "total_tokens": prompt + u["output_tokens"],
            "prompt_tokens_details": {"cached_tokens": cached}}


def sdk_usage(sdk, usage):
    assert isinstance(usage, dict), "the SDK reported no usage: %r" % usage
    if sdk == "anthropic":
        return counts(usage)
    out = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    out["prompt_tokens_details"] = {
        "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)}
    return out


def sent_usage(rec):
    """The usage the mock sent in its recorded response (a message or SSE events)."""
    body = rec["response_body"]
    if not body.lstrip().startswith("event:"):
        return json.loads(body)["usage"]
    usage = {}
    for block in body.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                ev = json.loads(line[6:])
                if ev.get("type") == "message_start":
                    usage.update(ev["message"]["usage"])
                elif ev.get("type") == "message_delta":
                    usage.update(ev.get("usage") or {})
    return usage


def usage_row(s, request_id):
    cols = ("input_tokens output_tokens cache_read_tokens cache_write_tokens "
            "cache_write_1h_tokens usage_source stream http_status outcome cost_micros "
            "model").split()
    sql = "select %s from tollgate.usage where request_id = '%s'" % (
        ", ".join(cols), request_id.replace("'", ""))
    rows = wait_for(lambda: s.psql(sql), 10, "usage row %s" % request_id)
    return dict(zip(cols, rows[0]))


def cost_usd(micros):
    micros = int(micros)
    return "%d.%06d" % (micros // 1000000, micros % 1000000)


def mock_records(s, marker):
    """The mock's finished records of marker's requests."""
    def done():
        recs = s.mock_requests(marker)
        return [recs] if all(r["t_done"] for r in recs) else None
    return wait_for(done, 10, "the mock to finish %s" % marker)[0]


# ---- one case ---------------------------------------------------------------------------

def run_embeddings_case(case):
    """embeddings.create on test_openai's stack: vectors, usage, the row."""
    import test_openai
    e = test_openai.env()
    params = dict(case["params"], input=["first MOCK" + json.dumps(case["mock"])]
                  + case["params"]["input"][1:])
    out = drive(case, "http://127.0.0.1:%d" % e.stack.port, e.key, params)
    assert out["ok"] is True, "the SDK raised %s" % out.get("error")
    dims = [x["dims"] for x in out["embeddings"]]
    assert dims == [case["params"]["dimensions"]] * case["embeddings"], out["embeddings"]
    prompt = case["mock"]["usage"]["prompt_tokens"]
    assert out["usage"]["prompt_tokens"] == prompt, out["usage"]
    row = e.stack.usage(out["request_id"])
    assert (row["input_tokens"], row["output_tokens"]) == (str(prompt), "0"), row
    assert row["model"] == "text-embedding-3-small" and row["http_status"] == "200", row


def run_case(case):
    if case["call"] == "embeddings.create":
        return run_embeddings_case(case)
    s = main_stack()
    marker = "sdk-%s-%s" % (case["name"], secrets.token_hex(4))
    directive = case["mock"]
    prompt = "%s MOCK%s" % (marker, json.dumps(directive)) if directive else marker
    if case["call"] == "embeddings.create":
        params = dict(case["params"], input=[prompt] + case["params"]["input"][1:])
    else:
        params = dict(case["params"], messages=[{"role": "user", "content": prompt}])
    key = "tg-" + secrets.token_urlsafe(32)[:43] if case.get("key") == "bad" else s.default_key()
    out = drive(case, "http://127.0.0.1:%d" % s.port, key, params)
    recs = mock_records(s, marker)
    if "error" in case:
        check_error(s, case, out, recs)
    else:
        check_reply(s, case, out, recs)


def check_error(s, case, out, recs):
    want = case["error"]
    assert out["ok"] is False, "the SDK raised nothing: %s" % out
    err = out["error"]
    got = {k: err.get(k) for k in want}
    assert got == want, "SDK error %s, want %s (%s)" % (got, want, err)
    assert err["message"], "the SDK saw no error message: %s" % err
    assert err["request_id"], "no x-request-id on the error: %s" % err
    if case.get("key") == "bad":
        assert not recs, "a request with an unknown key reached the provider"
        return
    assert len(recs) == 1, "the mock saw %d requests (the SDK retried?)" % len(recs)
    assert recs[0]["status"] == want["status"], recs[0]
    row = usage_row(s, err["request_id"])
    assert row["http_status"] == str(want["status"]) and row["outcome"] != "ok", row


def check_reply(s, case, out, recs):
    sdk, directive = case["sdk"], case["mock"]
    assert out["ok"] is True, "the SDK raised %s" % out.get("error")
    assert out["status"] == 200, out
    assert len(recs) == 1, "the mock saw %d requests" % len(recs)
    rid = out["request_id"]
    assert rid, "no x-request-id: %s" % out

    if case["call"] == "embeddings.create":
        dims = [e["dims"] for e in out["embeddings"]]
        assert dims == [directive["dims"]] * case["embeddings"], out["embeddings"]
    else:
        tool = directive.get("tool_use")
        assert out["text"] == directive["text"], "text %r, mock sent %r" % (
            out["text"], directive["text"])
        calls = [{"name": c["name"], "arguments": c["arguments"]} for c in out["tool_calls"]]
        want_calls = [{"name": tool["name"], "arguments": tool["input"]}] if tool else []
        assert calls == want_calls, "tool calls %s, mock sent %s" % (calls, want_calls)
        assert all(c["id"] for c in out["tool_calls"]), out["tool_calls"]
        if sdk == "anthropic":
            assert [c["id"] for c in out["tool_calls"]] == (["toolu_mock_1"] if tool else []), \
                out["tool_calls"]
            want_stop = "tool_use" if tool else "end_turn"
            assert out["stop_reason"] == want_stop, (out["stop_reason"], want_stop)
            if case["stream"]:  # what the events gave = the SDK's own accumulation
                final = out["final"]
                assert (final["text"], final["tool_calls"], final["stop_reason"]) == (
                    out["text"], out["tool_calls"], out["stop_reason"]), \
                    "events and finalMessage() differ: %s" % out
        else:
            want_finish = "tool_calls" if tool else "stop"
            assert out["finish_reason"] == want_finish, (out["finish_reason"], want_finish)

    mock_usage = directive["usage"]
    if sdk == "anthropic":  # the mock's own record of what it sent
        sent = sent_usage(recs[0])
        assert counts(sent) == counts(mock_usage), (sent, mock_usage)
    got = sdk_usage(sdk, out["usage"])
    want = want_sdk_usage(sdk, mock_usage)
    assert got == want, "the SDK's usage %s, want %s (from the mock's %s)" % (
        got, want, mock_usage)

    row = usage_row(s, rid)
    u = counts(mock_usage)
    got_row = {k: row[k] for k in ("input_tokens", "output_tokens", "cache_read_tokens",
                                   "cache_write_tokens", "cache_write_1h_tokens",
                                   "usage_source", "stream", "http_status", "outcome")}
    want_row = {"input_tokens": str(u["input_tokens"]),
                "output_tokens": str(u["output_tokens"]),
                "cache_read_tokens": str(u["cache_read_input_tokens"]),
                "cache_write_tokens": str(u["cache_creation_input_tokens"]),
                "cache_write_1h_tokens": str((mock_usage.get("cache_creation") or {}).get(
                    "ephemeral_1h_input_tokens", 0)),
                "usage_source": "provider", "stream": "t" if case["stream"] else "f",
                "http_status": "200", "outcome": "ok"}
    assert got_row == want_row, "usage row %s\n    want %s" % (got_row, want_row)
    if not case["stream"]:
        assert out["cost"] == cost_usd(row["cost_micros"]), \
            "x-tollgate-cost-usd %r, the row's cost %s micros" % (out["cost"], row["cost_micros"])


def make_test(case):
    def test():
        run_case(case)
    test.__doc__ = "%s %s%s through the SDK" % (
        case["sdk"], case["call"], " (stream)" if case["stream"] else "")
    return test


def _check_tables():
    names = [c["name"] for c in ANTHROPIC_CASES + OPENAI_CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    for c in ANTHROPIC_CASES + OPENAI_CASES:
        assert (c["sdk"], c["call"]) in (("anthropic", "messages.create"),
                                         ("openai", "chat.completions.create"),
                                         ("openai", "embeddings.create")), c


_check_tables()
for _case in CASES:
    globals()["test_" + _case["name"]] = make_test(_case)


# ---- every client dialect x every provider, through the SDKs ----------------------
#
# test_translation's stack serves a model per provider kind, each on its own
# mock: the Anthropic and the OpenAI SDK call each of them, plain and streamed,
# text and a tool call.  What the SDK reports (text, tool call, usage) and the
# usage row must equal what that mock sent, in the SDK's own convention.

MATRIX_MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4o",
                 "azure_openai": "gpt-4o-azure", "bedrock": "claude-bedrock",
                 "gemini": "gemini-2.5-flash", "vertex": "gemini-vertex"}


def matrix_directive(model, tool):
    import test_translation as tt
    d = dict(tt.usage_directive("gpt" if model.startswith("gpt") else model),
             text="Matrix reply for %s." % model)
    if tool and model.startswith("claude-haiku"):
        d["tool_use"] = WEATHER_CALL
    elif tool:
        d["tool_calls"] = [{"name": WEATHER_CALL["name"], "args": WEATHER_CALL["input"]}]
    return d


def run_matrix(sdk, kind):
    import test_translation as tt
    e = tt.env()
    model = MATRIX_MODELS[kind]
    want_row = tt.expected_row("gpt" if model.startswith("gpt") else model)
    u = {k: int(v) for k, v in want_row.items()}
    for stream in (False, True):
        for tool in (False, True):
            directive = matrix_directive(model, tool)
            prompt = "matrix MOCK" + json.dumps(directive)
            if sdk == "anthropic":
                case = {"sdk": sdk, "call": "messages.create", "stream": stream}
                params = {"model": model, "max_tokens": 256,
                          "messages": [{"role": "user", "content": prompt}]}
                if tool:
                    params["tools"] = [WEATHER]
            else:
                case = {"sdk": sdk, "call": "chat.completions.create", "stream": stream}
                params = {"model": model, "max_tokens": 256,
                          "messages": [{"role": "user", "content": prompt}]}
                if stream:
                    params["stream_options"] = {"include_usage": True}
                if tool:
                    params["tools"] = [OPENAI_TOOL]
            out = drive(case, "http://127.0.0.1:%d" % e.stack.port, e.key, params)
            where = (sdk, kind, "stream" if stream else "plain", "tool" if tool else "text")
            assert out["ok"] is True, (where, out.get("error"))
            calls = [{"name": c["name"], "arguments": c["arguments"]} for c in out["tool_calls"]]
            want_calls = ([{"name": WEATHER_CALL["name"], "arguments": WEATHER_CALL["input"]}]
                          if tool else [])
            assert calls == want_calls, (where, calls)
            if not tool or not kind.startswith(("gemini", "vertex", "openai", "azure",
                                                "bedrock")):
                assert out["text"] == directive["text"], (where, out["text"])
            if sdk == "anthropic":
                got = {k: out["usage"].get(k) or 0 for k in USAGE_KEYS}
                want = {"input_tokens": u["input_tokens"], "output_tokens": u["output_tokens"],
                        "cache_read_input_tokens": u["cache_read_tokens"],
                        "cache_creation_input_tokens": u["cache_write_tokens"]}
                if stream:  # message_start may come before the backend said its input
                    got.pop("input_tokens"), want.pop("input_tokens")
                assert got == want, (where, out["usage"])
            else:
                prompt_tokens = u["input_tokens"] + u["cache_read_tokens"] + u["cache_write_tokens"]
                assert out["usage"]["prompt_tokens"] == prompt_tokens, (where, out["usage"])
                assert out["usage"]["completion_tokens"] == u["output_tokens"], (where, out["usage"])
            row = e.stack.usage(out["request_id"])
            got_row = {k: row[k] for k in want_row}
            assert got_row == want_row, (where, got_row, want_row)


for _sdk in ("anthropic", "openai"):
    for _kind in MATRIX_MODELS:
        globals()["test_matrix_%s_sdk_on_%s" % (_sdk, _kind)] = (
            lambda sdk=_sdk, kind=_kind: run_matrix(sdk, kind))
