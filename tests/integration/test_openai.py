"""The OpenAI dialect on the real stack (issue 10): /v1/chat/completions and
/v1/embeddings served by the OpenAI mock (openai provider) and by its Azure
paths (azure_openai provider), same dialect, so the body goes through as it is —
except that a stream whose client did not ask for usage is sent with
stream_options.include_usage, and the usage chunk is withheld from that client.

Usage rows equal what the mock reported, mapped onto Tollgate's four kinds:
prompt_tokens includes cached_tokens and completion_tokens includes
reasoning_tokens, so input = prompt - cached, cache read = cached, output =
completion; nothing is lost or counted twice. Errors come in OpenAI's shape.
"""

import json

import harness

USAGE = {"prompt_tokens": 100, "completion_tokens": 30, "cached_tokens": 40,
         "reasoning_tokens": 12}
EXPECTED_ROW = {"input_tokens": "60", "cache_read_tokens": "40", "output_tokens": "30",
                "cache_write_tokens": "0"}


def config(openai_port, azure_port):
    return {
        "providers": {
            "openai": {"type": "openai", "base_url": "http://127.0.0.1:%d" % openai_port,
                       "api_key": "sk-openai-PROVIDERKEY", "timeout_ms": 10000},
            "azure": {"type": "azure_openai", "base_url": "http://127.0.0.1:%d" % azure_port,
                      "api_key": "azure-PROVIDERKEY", "api_version": "2024-10-21",
                      "timeout_ms": 10000},
        },
        "models": {
            "gpt-4o": {"provider": "openai", "aliases": ["smart"], "max_output_tokens": 16384},
            "gpt-4o-azure": {"provider": "azure", "upstream_model": "prod-gpt4o",
                             "max_output_tokens": 16384},
            "text-embedding-3-small": {"provider": "openai", "kind": "embeddings"},
        },
    }


class Env:
    def __init__(self):
        self.openai = harness.Mock("mock_openai.py")
        self.azure = harness.Mock("mock_openai.py")
        harness.atexit.register(self.openai.stop)
        harness.atexit.register(self.azure.stop)
        # a shared stack: closed (and its sanitizer findings read) with the others
        self.stack = harness.stack(tag="openai",
                                   extra_config=config(self.openai.port, self.azure.port))
        for model in ("gpt-4o", "gpt-4o-azure", "text-embedding-3-small"):
            self.stack.ctl("price", "set", model, "--input", "2500000", "--output", "10000000")
        self.key = self.stack.key(group="oa", user="oa-user")

    def post(self, path, body, key=None, headers=None):
        h = {"authorization": "Bearer " + (key or self.key)}
        h.update(headers or {})
        return self.stack.request("POST", path, body, h)

    def stream(self, path, body):
        return self.stack.stream(body, {"authorization": "Bearer " + self.key}, path=path)


_env = None


def env():
    global _env
    if _env is None:
        _env = Env()
    return _env


def chat(model="gpt-4o", directive=None, stream=False, **extra):
    text = "Say hello." + (" MOCK" + json.dumps(directive) if directive else "")
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    body.update(extra)
    return body


def row(request_id):
    return env().stack.usage(request_id)


def assert_usage(request_id):
    r = row(request_id)
    for k, v in EXPECTED_ROW.items():
        assert r[k] == v, (k, r)
    return r


def test_chat_completion_passes_through_and_is_billed_with_cached_and_reasoning_tokens():
    e = env()
    e.openai.clear()
    body = chat(directive={"usage": USAGE, "text": "Hi there."}, max_completion_tokens=50)
    status, headers, raw = e.post("/v1/chat/completions", body)
    assert status == 200, raw[:300]
    reply = json.loads(raw)
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == "Hi there."
    assert reply["usage"]["prompt_tokens"] == 100
    r = assert_usage(headers["x-request-id"])
    assert r["provider"] == "openai" and r["model"] == "gpt-4o", r
    assert headers.get("x-tollgate-cost-usd"), headers
    rec = e.openai.records()[-1]
    assert rec["path"] == "/v1/chat/completions"
    assert json.loads(rec["body"]) == body, "the same-dialect body was not sent as it came"
    assert rec["headers"]["authorization"] == "Bearer sk-openai-PROVIDERKEY"
    assert e.key not in json.dumps(rec), "the client's key reached the provider"


def test_an_alias_is_sent_as_the_backends_model():
    e = env()
    e.openai.clear()
    status, headers, raw = e.post("/v1/chat/completions", chat(model="smart"))
    assert status == 200, raw[:300]
    assert json.loads(e.openai.records()[-1]["body"])["model"] == "gpt-4o"
    assert row(headers["x-request-id"])["model"] == "gpt-4o"


def stream_chunks(resp):
    chunks = []
    for _, data, _ in resp:
        chunks.append(data)
    return chunks


def test_stream_without_include_usage_is_billed_and_the_usage_chunk_withheld():
    e = env()
    e.openai.clear()
    resp = e.stream("/v1/chat/completions", chat(directive={"usage": USAGE}, stream=True))
    assert resp.status == 200
    rid = resp.headers["x-request-id"]
    chunks = stream_chunks(resp)
    assert chunks[-1] == "[DONE]", chunks[-3:]
    parsed = [json.loads(c) for c in chunks[:-1]]
    assert not [c for c in parsed if c.get("usage")], "the client got a usage chunk it did not ask for"
    assert all(c["object"] == "chat.completion.chunk" for c in parsed)
    sent = json.loads(e.openai.records()[-1]["body"])
    assert sent["stream_options"] == {"include_usage": True}, sent
    assert_usage(rid)


def test_stream_with_include_usage_gets_its_usage_chunk_untouched():
    e = env()
    body = chat(directive={"usage": USAGE}, stream=True, stream_options={"include_usage": True})
    e.openai.clear()
    resp = e.stream("/v1/chat/completions", body)
    rid = resp.headers["x-request-id"]
    chunks = stream_chunks(resp)
    usage = [json.loads(c)["usage"] for c in chunks[:-1] if json.loads(c).get("usage")]
    assert usage and usage[-1]["prompt_tokens"] == 100, chunks[-3:]
    assert json.loads(e.openai.records()[-1]["body"]) == body
    assert_usage(rid)


def test_stream_with_tool_calls_is_billed():
    e = env()
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    directive = {"usage": USAGE, "tool_calls": [{"name": "get_weather",
                                                 "arguments": {"city": "Paris"}}]}
    resp = e.stream("/v1/chat/completions", chat(directive=directive, stream=True, tools=tools))
    rid = resp.headers["x-request-id"]
    chunks = [json.loads(c) for c in stream_chunks(resp)[:-1]]
    args = "".join(tc["function"].get("arguments", "")
                   for c in chunks for ch in c["choices"]
                   for tc in ch["delta"].get("tool_calls", []))
    assert json.loads(args) == {"city": "Paris"}, args
    assert_usage(rid)


def test_embeddings_are_billed_on_their_prompt_tokens():
    e = env()
    body = {"model": "text-embedding-3-small", "input": ["one MOCK" + json.dumps(
        {"usage": {"prompt_tokens": 9}}), "two"]}
    status, headers, raw = e.post("/v1/embeddings", body)
    assert status == 200, raw[:300]
    reply = json.loads(raw)
    assert len(reply["data"]) == 2
    r = row(headers["x-request-id"])
    assert (r["input_tokens"], r["output_tokens"]) == ("9", "0"), r


def test_azure_deployment_url_and_api_key():
    e = env()
    e.azure.clear()
    status, headers, raw = e.post("/v1/chat/completions",
                                  chat(model="gpt-4o-azure", directive={"usage": USAGE}))
    assert status == 200, raw[:300]
    rec = e.azure.records()[-1]
    assert rec["path"] == "/openai/deployments/prod-gpt4o/chat/completions", rec["path"]
    assert rec["query"].get("api-version") == "2024-10-21", rec["query"]
    assert rec["headers"]["api-key"] == "azure-PROVIDERKEY"
    assert "authorization" not in rec["headers"]
    r = assert_usage(headers["x-request-id"])
    assert r["provider"] == "azure", r


def test_errors_come_in_openais_shape():
    e = env()
    cases = [
        ({"authorization": "Bearer tg-not-a-key"}, chat(), 401, "invalid_request_error",
         "invalid_api_key"),
        (None, chat(model="no-such-model"), 404, "invalid_request_error", "model_not_found"),
        (None, {"model": "gpt-4o"}, 400, "invalid_request_error", None),
        (None, chat(max_completion_tokens=10 ** 6), 400, "invalid_request_error", None),
        (None, chat(model="text-embedding-3-small"), 400, "invalid_request_error", None),
        (None, chat(directive={"status": 429, "retry_after": 7}), 429, "rate_limit_error", None),
    ]
    for headers, body, status, etype, code in cases:
        h = {"authorization": "Bearer " + e.key}
        h.update(headers or {})
        got, resp_headers, raw = e.stack.request("POST", "/v1/chat/completions", body, h)
        assert got == status, (body, got, raw[:300])
        err = json.loads(raw)["error"]
        assert set(err) >= {"message", "type", "param", "code"}, err
        if status != 429:  # the provider's own error body passes through as it is
            assert err["type"] == etype and err["code"] == code, (body, err)
        else:
            assert resp_headers.get("retry-after") == "7", resp_headers


def test_models_list_in_the_callers_dialect_with_prices_and_only_what_it_may_use():
    e = env()
    st = e.stack
    status, _, raw = st.request("GET", "/v1/models", headers={"authorization": "Bearer " + e.key})
    assert status == 200, raw[:300]
    listing = json.loads(raw)
    assert listing["object"] == "list", listing
    by_id = {m["id"]: m for m in listing["data"]}
    assert by_id["gpt-4o"]["object"] == "model" and "smart" in by_id, sorted(by_id)
    assert by_id["gpt-4o"]["pricing"] == {"input_usd_per_million_tokens": "2.500000",
                                          "output_usd_per_million_tokens": "10.000000"}, by_id
    # Anthropic's SDK sends anthropic-version: Anthropic's list
    status, _, raw = st.request("GET", "/v1/models", headers=st.auth(e.key))
    anthropic = json.loads(raw)
    assert anthropic["has_more"] is False and anthropic["data"][0]["type"] == "model", anthropic
    # a key limited to gpt-* sees only those
    limited = st.key(group="oa", user="oa-limited")
    st.psql("update tollgate.api_keys set allowed_models = '{gpt-*}' where prefix = '%s'"
            % limited[:11])
    status, _, raw = st.request("GET", "/v1/models", headers={"authorization": "Bearer " + limited})
    ids = sorted(m["id"] for m in json.loads(raw)["data"])
    assert ids == ["gpt-4o", "gpt-4o-azure", "smart"], ids
    # an OpenAI client's refusal is OpenAI-shaped
    status, _, raw = st.request("GET", "/v1/models", headers={"authorization": "Bearer tg-nope"})
    assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key", raw[:200]
