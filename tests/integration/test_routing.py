"""The operator's routing rules on the real stack (issue 10): rules match on
path, method, Host, a header, a query parameter and the model; they answer with
a direct response (no backend, no usage row), send the request to another model's
pool, or pass it as it is to an http backend (an internal agent service here: a
stub in this process) where authentication and quotas still apply and the usage
row counts the request, with the tokens the backend reported.
"""

import json

import harness


def agent_answer(record):
    """The internal JSON service behind POST /chat: busy when asked "fail"."""
    if json.loads(record["body"]).get("question", "") == "fail":
        return 503, {"error": "agent busy"}
    return 200, {"answer": "42", "usage": {"input_tokens": 5, "output_tokens": 7}}


RETIRED = '{"type":"error","error":{"type":"not_found_error","message":"claude-2.1 is retired"}}'


def config(agent_port):
    return {
        "providers": {"agent-svc": {"type": "http", "base_url": "http://127.0.0.1:%d" % agent_port,
                                    "path": "/chat", "api_key": "agent-PROVIDERKEY"}},
        "models": {"agent": {"provider": "agent-svc"},
                   "claude-eu": {"provider": "anthropic", "upstream_model": "claude-haiku-4-5"},
                   "claude-cheap": {"provider": "anthropic",
                                    "upstream_model": "claude-haiku-4-5-20251001"}},
        "routes": [
            {"name": "retired", "match": {"path": "/v1/messages", "model": "claude-2.1"},
             "direct_response": {"status": 410, "headers": {"content-type": "application/json",
                                                            "x-retired": "yes"},
                                 "body": RETIRED}},
            {"name": "moved", "match": {"path": "/v0/*"},
             "direct_response": {"status": 301, "headers": {"location": "/v1/messages"},
                                 "body": ""}},
            {"name": "eu-tenant", "match": {"path": "/v1/*", "header": {"x-tenant": "eu"}},
             "model": "claude-eu"},
            {"name": "cheap", "match": {"path": "/v1/messages", "query": {"tier": "cheap"}},
             "model": "claude-cheap"},
            {"name": "eu-host", "match": {"path": "/v1/chat/completions",
                                          "host": "eu.gateway.test"},
             "model": "claude-eu"},
            {"name": "agent", "match": {"path": "/agent/chat", "method": "POST"}, "http": "agent"},
        ],
    }


_env = None


def env():
    global _env
    if _env is None:
        agent = harness.JsonBackend(agent_answer)
        st = harness.stack(tag="routing", extra_config=config(agent.port))
        for model in ("agent", "claude-eu", "claude-cheap"):
            st.ctl("price", "set", model, "--input", "1000000", "--output", "2000000")
        _env = (st, agent, st.key(group="rt", user="rt-user"))
    return _env


def test_a_retired_model_gets_its_direct_response_and_reaches_nothing():
    st, _, key = env()
    st.clear_mock()
    status, headers, body = st.messages(key, model="claude-2.1")
    assert (status, body.decode()) == (410, RETIRED), (status, body[:200])
    assert headers.get("x-retired") == "yes" and headers["content-type"] == "application/json"
    assert st.mock_requests() == []
    status, headers, _ = st.request("GET", "/v0/anything")
    assert status == 301 and headers.get("location") == "/v1/messages", headers


def test_header_query_and_host_rules_pick_another_model():
    st, _, key = env()
    cases = [
        ("/v1/messages", {"x-tenant": "eu"}, "claude-eu", "claude-haiku-4-5"),
        ("/v1/messages?tier=cheap", {}, "claude-cheap", "claude-haiku-4-5-20251001"),
        ("/v1/chat/completions", {"host": "eu.gateway.test"}, "claude-eu", "claude-haiku-4-5"),
        ("/v1/messages", {}, "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"),
    ]
    for path, extra, model, upstream in cases:
        st.clear_mock()
        headers = dict(st.auth(key), **extra)
        if path.startswith("/v1/chat"):
            body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}
        else:
            body = st.body()
        status, resp_headers, raw = st.request("POST", path, body, headers)
        assert status == 200, (path, extra, raw[:300])
        row = st.usage(resp_headers["x-request-id"])
        assert row["model"] == model, (path, extra, row)
        sent = json.loads(st.mock_requests()[-1]["body"])
        assert sent["model"] == upstream, (path, extra, sent["model"])


def test_an_http_route_passes_the_body_and_bills_the_request():
    st, agent, key = env()
    question = {"question": "the meaning of life?", "context": {"depth": 3}}
    status, headers, raw = st.request("POST", "/agent/chat", question,
                                      {"authorization": "Bearer " + key})
    assert status == 200, raw[:300]
    assert json.loads(raw) == {"answer": "42", "usage": {"input_tokens": 5, "output_tokens": 7}}
    got = agent.received[-1]
    assert got["path"] == "/chat" and json.loads(got["body"]) == question, got
    assert got["headers"].get("authorization") == "Bearer agent-PROVIDERKEY", got["headers"]
    assert key not in json.dumps(got), "the client's key reached the backend"
    row = st.usage(headers["x-request-id"])
    assert (row["model"], row["provider"], row["input_tokens"], row["output_tokens"]) == (
        "agent", "agent-svc", "5", "7"), row
    # authentication applies: no key, no call
    before = len(agent.received)
    status, _, raw = st.request("POST", "/agent/chat", question)
    assert status == 401 and json.loads(raw)["error"]["type"] == "invalid_request_error", raw
    assert len(agent.received) == before
    # the backend's own errors pass through as they are
    status, _, raw = st.request("POST", "/agent/chat", {"question": "fail"},
                                {"authorization": "Bearer " + key})
    assert status == 503 and json.loads(raw) == {"error": "agent busy"}, raw[:200]
    # a request quota on the group counts these requests too
    st.ctl("quota", "set", "--group", "rt", "--metric", "requests", "--window", "minute",
           "--limit", "0")
    try:
        status, _, raw = st.request("POST", "/agent/chat", question,
                                    {"authorization": "Bearer " + key})
        assert status == 429, raw[:200]
    finally:
        st.ctl("quota", "delete", "--group", "rt", "--metric", "requests", "--window", "minute")
