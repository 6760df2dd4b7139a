"""Clients served by backends that speak another API (issue 10).

Anthropic Messages clients on Gemini (API key), Vertex AI (a service-account
key exchanged for an access token at the mock's token endpoint), Bedrock
Converse with SigV4 (verified in full by the mock) and with a Bedrock API key,
and OpenAI; OpenAI Chat Completions clients on Anthropic, Bedrock and Gemini.
Requests go through the pivot; replies and streams come back in the client's
format; usage rows equal what each mock reported, mapped onto the four kinds;
what a backend cannot express is a 400 naming it, and nothing is sent.
"""

import json
import subprocess

import harness

AKID, SECRET = "AKIDEXAMPLETOLLGATE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
GEMINI_USAGE = {"prompt_tokens": 50, "candidates_tokens": 20, "cached_tokens": 10,
                "thoughts_tokens": 5}
GEMINI_ROW = {"input_tokens": "40", "cache_read_tokens": "10", "output_tokens": "25",
              "cache_write_tokens": "0"}
BEDROCK_USAGE = {"input_tokens": 30, "output_tokens": 12, "cache_read_input_tokens": 5,
                 "cache_creation_input_tokens": 3}
BEDROCK_ROW = {"input_tokens": "30", "cache_read_tokens": "5", "output_tokens": "12",
               "cache_write_tokens": "3"}
TOOLS = [{"name": "get_weather", "description": "Weather of a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]
MODELS = {"gemini-2.5-flash": "gemini", "gemini-vertex": "vertex",
          "claude-bedrock": "bedrock", "claude-bedrock-key": "bedrock-key", "gpt-4o": "openai"}
OPENAI_USAGE = {"prompt_tokens": 70, "completion_tokens": 20, "cached_tokens": 30,
                "reasoning_tokens": 4}
OPENAI_ROW = {"input_tokens": "40", "cache_read_tokens": "30", "output_tokens": "20",
              "cache_write_tokens": "0"}
ANTHROPIC_USAGE = {"input_tokens": 21, "output_tokens": 9, "cache_read_input_tokens": 6,
                   "cache_creation_input_tokens": 2}
ANTHROPIC_ROW = {"input_tokens": "21", "cache_read_tokens": "6", "output_tokens": "9",
                 "cache_write_tokens": "2"}


def service_account(path, token_uri):
    key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True,
                         text=True).stdout
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "tg-test", "private_key_id": "kid-1",
        "private_key": key, "client_email": "gateway@tg-test.iam.gserviceaccount.com",
        "token_uri": token_uri}))
    path.chmod(0o644)


class Env:
    def __init__(self):
        self.gemini = harness.Mock("mock_gemini.py", "--require-key", "gm-PROVIDERKEY")
        self.bedrock = harness.Mock("mock_bedrock.py", "--access-key-id", AKID, "--secret-key",
                                    SECRET, "--region", "us-east-1")
        self.bedrock_key = harness.Mock("mock_bedrock.py", "--require-key", "br-PROVIDERKEY")
        self.openai = harness.Mock("mock_openai.py", "--require-key", "sk-oa-PROVIDERKEY")
        for m in (self.gemini, self.bedrock, self.bedrock_key, self.openai):
            harness.atexit.register(m.stop)
        sa_dir = harness.Path(harness.tempfile.mkdtemp(prefix="tollgate-sa-"))
        sa_dir.chmod(0o755)
        self.sa = sa_dir / "sa.json"
        service_account(self.sa, "http://127.0.0.1:%d/token" % self.gemini.port)
        url = "http://127.0.0.1:%d"
        config = {
            "providers": {
                "gemini": {"type": "gemini", "base_url": url % self.gemini.port,
                           "api_key": "gm-PROVIDERKEY"},
                "vertex": {"type": "vertex", "base_url": url % self.gemini.port,
                           "project": "tg-test", "location": "us-central1",
                           "service_account_file": str(self.sa)},
                "bedrock": {"type": "bedrock", "base_url": url % self.bedrock.port,
                            "region": "us-east-1", "aws_access_key_id": AKID,
                            "aws_secret_access_key": SECRET},
                "bedrock-key": {"type": "bedrock", "base_url": url % self.bedrock_key.port,
                                "region": "us-east-1", "api_key": "br-PROVIDERKEY"},
                "openai": {"type": "openai", "base_url": url % self.openai.port,
                           "api_key": "sk-oa-PROVIDERKEY"},
                "azure": {"type": "azure_openai", "base_url": url % self.openai.port,
                          "api_key": "sk-oa-PROVIDERKEY", "api_version": "2024-10-21"},  # the same mock
            },
            "models": {
                "gemini-2.5-flash": {"provider": "gemini"},
                "gemini-vertex": {"provider": "vertex", "upstream_model": "gemini-2.5-pro"},
                "claude-bedrock": {"provider": "bedrock",
                                   "upstream_model": "anthropic.claude-3-5-haiku-20241022-v1:0"},
                "claude-bedrock-key": {"provider": "bedrock-key",
                                       "upstream_model": "anthropic.claude-3-5-haiku-20241022-v1:0"},
                "gpt-4o": {"provider": "openai", "max_output_tokens": 16384},
                "gpt-4o-azure": {"provider": "azure", "upstream_model": "dep-gpt4o",
                                 "max_output_tokens": 16384},
            },
        }
        self.stack = harness.stack(tag="translation", extra_config=config)
        for model in list(MODELS) + ["gpt-4o-azure"]:
            self.stack.ctl("price", "set", model, "--input", "1000000", "--output", "4000000")
        self.key = self.stack.key(group="xl", user="xl-user")

    def mock_for(self, model):
        return {"gemini": self.gemini, "vertex": self.gemini, "bedrock": self.bedrock,
                "bedrock-key": self.bedrock_key, "openai": self.openai}[MODELS[model]]


_env = None


def env():
    global _env
    if _env is None:
        _env = Env()
    return _env


def usage_directive(model):
    if model.startswith("gpt"):
        return {"usage": OPENAI_USAGE}
    if model.startswith("claude-haiku"):
        return {"usage": ANTHROPIC_USAGE}
    return {"usage": BEDROCK_USAGE if "bedrock" in model else GEMINI_USAGE}


def expected_row(model):
    if model.startswith("gpt"):
        return OPENAI_ROW
    if model.startswith("claude-haiku"):
        return ANTHROPIC_ROW
    return BEDROCK_ROW if "bedrock" in model else GEMINI_ROW


def check_row(request_id, model):
    row = env().stack.usage(request_id)
    for k, v in expected_row(model).items():
        assert row[k] == v, (model, k, row)
    assert row["provider"] == MODELS.get(model, "anthropic"), row
    return row


def test_plain_replies_come_back_as_anthropic_messages():
    e = env()
    for model in MODELS:
        directive = dict(usage_directive(model), text="Bonjour from %s." % model)
        status, headers, raw = e.stack.messages(e.key, model=model, directive=directive)
        assert status == 200, (model, raw[:400])
        reply = json.loads(raw)
        assert reply["type"] == "message" and reply["role"] == "assistant", reply
        assert reply["content"][0] == {"type": "text", "text": "Bonjour from %s." % model}, reply
        assert reply["stop_reason"] == "end_turn", reply
        check_row(headers["x-request-id"], model)


def test_streams_come_back_as_anthropic_events_and_are_billed():
    e = env()
    for model in MODELS:
        directive = dict(usage_directive(model), text="one two three four")
        resp = e.stack.stream(e.stack.body(model=model, directive=directive, stream=True),
                              e.stack.auth(e.key))
        assert resp.status == 200, model
        events = list(resp)
        names = [name for name, _, _ in events]
        assert names[0] == "message_start" and names[-1] == "message_stop", (model, names)
        text = "".join(json.loads(d)["delta"].get("text", "") for n, d, _ in events
                       if n == "content_block_delta")
        assert text == "one two three four", (model, text)
        check_row(resp.headers["x-request-id"], model)


def test_tool_calls_are_translated_both_ways():
    e = env()
    for model in MODELS:
        mock = e.mock_for(model)
        directive = dict(usage_directive(model),
                         tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}}])
        status, headers, raw = e.stack.messages(e.key, model=model, directive=directive,
                                                tools=TOOLS)
        assert status == 200, (model, raw[:400])
        reply = json.loads(raw)
        uses = [b for b in reply["content"] if b["type"] == "tool_use"]
        assert len(uses) == 1 and uses[0]["name"] == "get_weather", reply
        assert uses[0]["input"] == {"city": "Paris"} and reply["stop_reason"] == "tool_use", reply
        check_row(headers["x-request-id"], model)
        # the tool's result goes back on the next turn, under the backend's own shape
        mock.clear()
        follow = e.stack.body(model=model, tools=TOOLS)
        follow["messages"] += [
            {"role": "assistant", "content": reply["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0]["id"],
                                          "content": "18 degrees"}]}]
        status, _, raw = e.stack.request("POST", "/v1/messages", follow, e.stack.auth(e.key))
        assert status == 200, (model, raw[:400])
        sent = json.loads(mock.records()[-1]["body"])
        text = json.dumps(sent)
        assert "18 degrees" in text and "get_weather" in text, (model, sent)


def test_each_backend_got_its_own_credentials_and_never_the_clients():
    e = env()
    for model in MODELS:
        mock = e.mock_for(model)
        mock.clear()
        status, _, raw = e.stack.messages(e.key, model=model)
        assert status == 200, (model, raw[:400])
        rec = mock.records()[-1]
        assert e.key not in json.dumps(rec), model
        if MODELS[model] == "gemini":
            assert rec["headers"]["x-goog-api-key"] == "gm-PROVIDERKEY"
            assert rec["path"] == "/v1beta/models/gemini-2.5-flash:generateContent", rec["path"]
        elif MODELS[model] == "vertex":
            assert rec["headers"]["authorization"].startswith("Bearer "), rec["headers"]
            assert rec["path"] == ("/v1/projects/tg-test/locations/us-central1/publishers/google/"
                                   "models/gemini-2.5-pro:generateContent"), rec["path"]
        elif MODELS[model] == "bedrock":
            assert rec["auth"]["scheme"] == "sigv4" and rec["auth"]["verified"] is True, rec["auth"]
            assert rec["model_id"] == "anthropic.claude-3-5-haiku-20241022-v1:0", rec
        elif MODELS[model] == "openai":
            assert rec["headers"]["authorization"] == "Bearer sk-oa-PROVIDERKEY"
            assert rec["path"] == "/v1/chat/completions", rec["path"]
        else:
            assert rec["auth"] == {"scheme": "bearer"}, rec["auth"]
    # the access token was fetched once and then reused from the cache
    status, _, raw = e.gemini.request("GET", "/_mock/health")
    issued = json.loads(raw).get("tokens_issued")
    assert issued is not None and 1 <= issued <= 2, raw  # one per worker process at most


def test_what_a_backend_cannot_express_is_a_400_naming_it_and_nothing_is_sent():
    e = env()
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                               "data": "a contract"}}
    for model in ("gemini-2.5-flash", "claude-bedrock", "gpt-4o"):
        mock = e.mock_for(model)
        mock.clear()
        body = e.stack.body(model=model)
        body["messages"][0]["content"] = [document, {"type": "text", "text": "Summarize."}]
        status, _, raw = e.stack.request("POST", "/v1/messages", body, e.stack.auth(e.key))
        assert status == 400, (model, raw[:300])
        etype, message = harness.error_body(raw)
        assert etype == "invalid_request_error" and "document" in message, (model, message)
        assert mock.records() == [], "the request reached the provider"


def test_provider_errors_come_back_in_the_clients_dialect():
    e = env()
    for model in MODELS:
        status, headers, raw = e.stack.messages(e.key, model=model,
                                                directive={"status": 400})
        assert status == 400, (model, raw[:300])
        etype, _ = harness.error_body(raw)
        assert etype == "invalid_request_error", (model, raw[:300])


# ---- OpenAI Chat Completions clients on backends of other dialects ----------

OPENAI_CLIENT_MODELS = ["claude-haiku-4-5", "gemini-2.5-flash", "claude-bedrock"]


def chat_body(model, directive=None, stream=False, **extra):
    text = "Say hello." + (" MOCK" + json.dumps(directive) if directive else "")
    body = {"model": model, "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    body.update(extra)
    return body


def chat_post(body):
    e = env()
    return e.stack.request("POST", "/v1/chat/completions", body,
                           {"authorization": "Bearer " + e.key})


def test_openai_clients_get_chat_completions_from_any_backend():
    for model in OPENAI_CLIENT_MODELS:
        directive = dict(usage_directive(model), text="Hello from %s." % model)
        status, headers, raw = chat_post(chat_body(model, directive))
        assert status == 200, (model, raw[:400])
        reply = json.loads(raw)
        assert reply["object"] == "chat.completion", reply
        choice = reply["choices"][0]
        assert choice["message"]["content"] == "Hello from %s." % model, reply
        assert choice["finish_reason"] == "stop", reply
        want = expected_row(model)
        prompt = sum(int(want[k]) for k in ("input_tokens", "cache_read_tokens",
                                            "cache_write_tokens"))
        assert reply["usage"]["prompt_tokens"] == prompt, (model, reply["usage"])
        assert reply["usage"]["completion_tokens"] == int(want["output_tokens"])
        check_row(headers["x-request-id"], model)


def test_openai_client_streams_from_any_backend():
    e = env()
    for model in OPENAI_CLIENT_MODELS:
        for include_usage in (False, True):
            directive = dict(usage_directive(model), text="alpha beta gamma")
            extra = {"stream_options": {"include_usage": True}} if include_usage else {}
            resp = e.stack.stream(chat_body(model, directive, stream=True, **extra),
                                  {"authorization": "Bearer " + e.key},
                                  path="/v1/chat/completions")
            assert resp.status == 200, model
            data = [d for _, d, _ in resp]
            assert data[-1] == "[DONE]", (model, data[-3:])
            chunks = [json.loads(d) for d in data[:-1]]
            assert all(c["object"] == "chat.completion.chunk" for c in chunks), chunks[:2]
            text = "".join(ch["delta"].get("content") or "" for c in chunks
                           for ch in c["choices"])
            assert text == "alpha beta gamma", (model, text)
            usage = [c["usage"] for c in chunks if c.get("usage")]
            assert bool(usage) == include_usage, (model, include_usage, usage)
            check_row(resp.headers["x-request-id"], model)


def test_openai_client_tool_calls_on_other_backends():
    e = env()
    tools = [{"type": "function", "function": {"name": "get_weather",
                                               "parameters": TOOLS[0]["input_schema"]}}]
    for model in OPENAI_CLIENT_MODELS:
        directive = dict(usage_directive(model),
                         tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}}])
        if model.startswith("claude-haiku"):
            directive = dict(usage_directive(model),
                             tool_use={"name": "get_weather", "input": {"city": "Oslo"}})
        for stream in (False, True):
            body = chat_body(model, directive, stream=stream, tools=tools)
            if stream:
                resp = e.stack.stream(body, {"authorization": "Bearer " + e.key},
                                      path="/v1/chat/completions")
                chunks = [json.loads(d) for _, d, _ in resp if d != "[DONE]"]
                calls = [tc for c in chunks for ch in c["choices"]
                         for tc in ch["delta"].get("tool_calls", [])]
                args = "".join(tc["function"].get("arguments", "") for tc in calls)
                names = [tc["function"]["name"] for tc in calls if tc["function"].get("name")]
                finish = [ch["finish_reason"] for c in chunks for ch in c["choices"]
                          if ch.get("finish_reason")]
                rid = resp.headers["x-request-id"]
            else:
                status, headers, raw = chat_post(body)
                assert status == 200, (model, raw[:400])
                message = json.loads(raw)["choices"][0]
                calls = message["message"]["tool_calls"]
                args = calls[0]["function"]["arguments"]
                names = [calls[0]["function"]["name"]]
                finish = [message["finish_reason"]]
                rid = headers["x-request-id"]
            assert names == ["get_weather"], (model, stream, names)
            assert json.loads(args) == {"city": "Oslo"}, (model, stream, args)
            assert finish == ["tool_calls"], (model, stream, finish)
            check_row(rid, model)


def test_openai_features_a_backend_cannot_express_are_a_400_in_openais_shape():
    for model in ("claude-haiku-4-5", "claude-bedrock"):
        status, _, raw = chat_post(chat_body(model, n=2))
        assert status == 400, (model, raw[:300])
        err = json.loads(raw)["error"]
        assert err["type"] == "invalid_request_error" and "n" in err["message"], err


# ---- a client that leaves mid-stream, on a translated path ------------------------

def test_clients_leaving_translated_streams_pay_what_the_provider_reported():
    """The drain runs on every path: the client leaves after its first event; the
    provider's stream is still read (through the translation) for its final usage."""
    import test_accounting
    e = env()
    cases = [("anthropic", "gemini-2.5-flash"), ("anthropic", "claude-bedrock"),
             ("anthropic", "gpt-4o"), ("openai", "claude-haiku-4-5"),
             ("openai", "claude-bedrock")]
    for dialect, model in cases:
        directive = dict(usage_directive(model), event_delay_ms=100,
                         text=" ".join("word%d" % i for i in range(12)))
        if dialect == "anthropic":
            resp = e.stack.stream(e.stack.body(model=model, directive=directive, stream=True),
                                  e.stack.auth(e.key))
        else:
            resp = e.stack.stream(chat_body(model, directive, stream=True),
                                  {"authorization": "Bearer " + e.key},
                                  path="/v1/chat/completions")
        assert resp.status == 200, (dialect, model)
        rid = resp.headers["x-request-id"]
        next(iter(resp))  # one event, then gone
        test_accounting.hang_up(resp)
        row = test_accounting.usage_row(e.stack, rid)
        want = expected_row(model)
        assert (row["input"], row["output"]) == (int(want["input_tokens"]),
                                                 int(want["output_tokens"])), (dialect, model, row)
        assert row["source"] == "provider" and row["outcome"] == "client_disconnected", row


# ---- what each provider received, against the expected request ------------------

REQUESTS = harness.REPO / "tests" / "integration" / "data" / "requests"


def test_each_provider_receives_the_expected_request():
    """Data-driven (tests/integration/data/requests/*.json): a client's request on
    one dialect, and the exact request (path and JSON body) the provider's mock
    must have received, in that provider's wire format."""
    e = env()
    cases = sorted(REQUESTS.glob("*.json"))
    assert cases, "no request cases"
    for path in cases:
        case = json.loads(path.read_text())
        mock = {"openai": e.openai, "gemini": e.gemini, "bedrock": e.bedrock}.get(case["mock"])
        if mock is None:
            e.stack.clear_mock()
        else:
            mock.clear()
        headers = {"authorization": "Bearer " + e.key}
        if case["path"] == "/v1/messages":
            headers["anthropic-version"] = "2023-06-01"
        status, _, raw = e.stack.request("POST", case["path"], case["body"], headers)
        assert status == 200, (path.name, raw[:300])
        records = e.stack.mock_requests() if mock is None else mock.records()
        assert len(records) == 1, (path.name, len(records))
        got = {"path": records[0]["path"], "body": json.loads(records[0]["body"])}
        assert got == case["expect"], "%s: the provider received\n%s" % (
            path.name, json.dumps(got, indent=1))


def test_a_providers_own_price_row_prices_its_usage():
    """A 'PROVIDER/MODEL' price row prices that provider's usage of the model;
    the model's own row keeps pricing the others (sql/013_provider_prices.sql)."""
    e = env()
    e.stack.ctl("price", "set", "bedrock/claude-bedrock", "--input", "3000000",
                "--output", "15000000")
    try:
        costs = {}
        for model in ("claude-bedrock", "claude-bedrock-key"):
            status, headers, raw = e.stack.messages(e.key, model=model,
                                                    directive={"usage": BEDROCK_USAGE})
            assert status == 200, (model, raw[:300])
            costs[model] = int(e.stack.usage(headers["x-request-id"])["cost_micros"])
        # bedrock's own rates: 30 in x $3 + 12 out x $15 per MTok (its cache rates are 0)
        assert costs["claude-bedrock"] == 270, costs
        # the other provider keeps the model's own row: 30 x $1 + 12 x $4 (+ cache at 0)
        assert costs["claude-bedrock-key"] == 78, costs
    finally:
        e.stack.psql("delete from tollgate.prices where model = 'bedrock/claude-bedrock'")
