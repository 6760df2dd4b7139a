"""Remote guardrail checks on the real stack (issue 11, item 4): after the
local rules passed (and masked), the operator's webhook and an OpenAI-style
moderation endpoint (tests/mock/mock_guard.py) are asked about the same texts.
A deny is a 400 in the client's dialect with the webhook's reason, settled as a
zero-cost "blocked" row, and nothing reaches the provider; a replace rewrites
the texts the provider receives; a webhook that does not answer in time (or
answers garbage, a 500, a wrong count) is a 503 when on_error is "closed" and
a warn line when "open"; moderation blocks on a configured category only. The
webhook sees the caller and the texts; the gateway's log never sees the text,
nor the webhook's credential.
"""

import atexit
import json
import os
import time

import harness

AWS_KEY = "AKIAQ3EXAMPLE7ZZYYXX"  # blocked by the shipped local rules
GUARD_AUTH = "Bearer guard-token-" + "5f1e9c0d7a"
MOD_KEY = "sk-mod-" + "c0ffee42beef"

_env = {}


def guard_mock():
    if "mock" not in _env:
        _env["mock"] = harness.Mock("mock_guard.py")
        atexit.register(_env["mock"].stop)
    return _env["mock"]


def script(**s):
    m = guard_mock()
    status, _, _ = m.request("PUT", "/_mock/script", s)
    assert status == 200
    m.clear()


def env():
    """The stack whose checks fail closed, its keys and the guard mock."""
    if "closed" not in _env:
        m = guard_mock()
        agent = harness.Mock("mock_agent.py")
        atexit.register(agent.stop)
        os.environ["TG_TEST_GUARD_AUTH"] = GUARD_AUTH
        os.environ["TG_TEST_MOD_KEY"] = MOD_KEY
        config = {
            "providers": {"agent-svc": {"type": "http", "path": "/chat",
                                        "base_url": "http://127.0.0.1:%d" % agent.port}},
            "models": {"agent": {"provider": "agent-svc"}},
            "routes": [{"match": {"path": "/agent/chat"}, "http": "agent"}],
            "guardrails": {
            "rules_file": str(harness.REPO / "conf" / "guardrails.json"),
            "http_paths": ["message"],
            "webhook": {"url": "http://127.0.0.1:%d/check" % m.port, "timeout_ms": 500,
                        "on_error": "closed",
                        "headers": {"authorization": "$TG_TEST_GUARD_AUTH"}},
            "moderation": {"url": "http://127.0.0.1:%d/v1/moderations" % m.port,
                           "api_key_env": "TG_TEST_MOD_KEY", "model": "omni-moderation-latest",
                           "categories": ["violence", "self-harm"], "timeout_ms": 1000}}}
        st = harness.stack(tag="guard_webhook", extra_config=config)
        st.ctl("price", "set", "agent", "--input", "0", "--output", "0")
        st.ctl("role", "set", "gw-analyst")
        _env["closed"] = (st, st.key(group="gw-team", user="gw-alice", role="gw-analyst"))
    return _env["closed"]


def open_env():
    """A stack whose webhook fails open (no local rules, no moderation)."""
    if "open" not in _env:
        m = guard_mock()
        config = {"guardrails": {"webhook": {"url": "http://127.0.0.1:%d/check" % m.port,
                                             "timeout_ms": 300, "on_error": "open"}}}
        st = harness.stack(tag="guard_webhook_open", extra_config=config)
        _env["open"] = (st, st.key(group="gw-team", user="gw-bob"))
    return _env["open"]


def calls(path="/check"):
    return [c for c in guard_mock().records() if c["path"] == path]


def row_of(st, request_id):
    rows = harness.wait_for(lambda: st.psql(
        "select outcome, cost_micros, http_status from tollgate.usage "
        "where request_id = '%s'" % request_id), 10, "the usage row")
    return tuple(rows[0])


def chat(st, key, text):
    return st.request("POST", "/v1/chat/completions", {
        "model": "claude-haiku-4-5", "messages": [{"role": "user", "content": text}]},
        {"authorization": "Bearer " + key})


def test_allow_passes_and_the_webhook_sees_the_caller_and_texts_but_the_log_does_not():
    st, key = env()
    script(webhook={"action": "allow"})
    st.clear_mock()
    prompt = "Describe the weather on planet Zorblax-7731 in spring."
    status, headers, raw = st.messages(key, prompt=prompt)
    assert status == 200, raw[:300]
    sent = json.loads(st.mock_requests()[-1]["body"])
    assert sent["messages"][0]["content"] == prompt
    hook = calls()
    assert len(hook) == 1, hook
    body = hook[0]["body"]
    assert body["request_id"] == headers["x-request-id"]
    assert body["endpoint"] == "/v1/messages" and body["model"], body
    caller = body["caller"]
    assert caller["user_id"] == "gw-alice" and caller["group_id"] == "gw-team", caller
    assert caller["role"] == "gw-analyst" and caller["key_prefix"].startswith("tg-"), caller
    assert key not in json.dumps(body), "the full key reached the webhook"
    assert [t["text"] for t in body["texts"]] == [prompt], body["texts"]
    assert body["texts"][0]["where"].startswith("messages[0]"), body["texts"]
    assert hook[0]["headers"]["authorization"] == GUARD_AUTH
    mod = calls("/v1/moderations")
    assert len(mod) == 1 and mod[0]["body"] == {"model": "omni-moderation-latest",
                                                 "input": [prompt]}, mod
    assert mod[0]["headers"]["authorization"] == "Bearer " + MOD_KEY
    logs = st.logs() + st.worker_stderr()
    assert "Zorblax-7731" not in logs, "the prompt reached the gateway's log"
    assert GUARD_AUTH not in logs and MOD_KEY not in logs, "a guard credential was logged"


def test_deny_is_a_400_in_both_dialects_settled_blocked_at_zero_and_never_sent():
    st, key = env()
    script(webhook={"action": "deny", "reason": "policy\x07 7: no\nroadmaps"})
    st.clear_mock()
    status, headers, raw = st.messages(key, prompt="Share the Q3 roadmap.")
    assert status == 400, raw[:300]
    etype, message = harness.error_body(raw)
    assert etype == "invalid_request_error", etype
    assert message == 'request blocked by guardrail "webhook": policy 7: noroadmaps', message
    assert row_of(st, headers["x-request-id"]) == ("blocked", "0", "400")
    status, _, raw = chat(st, key, "Share the Q3 roadmap.")
    assert status == 400, raw[:300]
    err = json.loads(raw)["error"]
    assert err["type"] == "invalid_request_error", err
    assert err["message"].startswith('request blocked by guardrail "webhook": policy'), err
    assert st.mock_requests() == [], "a denied request reached the provider"
    assert calls("/v1/moderations") == [], "moderation was asked after a deny"


def test_replace_rewrites_what_the_provider_receives():
    st, key = env()
    script(webhook={"action": "replace", "old": "Project Nightjar", "new": "[codename]"})
    st.clear_mock()
    status, _, raw = st.request("POST", "/v1/messages", {
        "model": "claude-haiku-4-5", "max_tokens": 50, "system": "Project Nightjar is secret.",
        "messages": [{"role": "user", "content": "Summarise Project Nightjar for me."}]},
        st.auth(key))
    assert status == 200, raw[:300]
    sent = json.loads(st.mock_requests()[-1]["body"])
    assert sent["system"] == "[codename] is secret.", sent
    assert sent["messages"][0]["content"] == "Summarise [codename] for me.", sent
    # moderation is asked about the texts as they will be sent
    assert calls("/v1/moderations")[0]["body"]["input"] == [
        "[codename] is secret.", "Summarise [codename] for me."]


def test_an_http_routes_configured_field_is_asked_about_and_replaced():
    st, key = env()
    script(webhook={"action": "replace", "old": "Nightjar", "new": "[codename]"})
    status, _, raw = st.request("POST", "/agent/chat", {"message": "About Nightjar?", "other": "x"},
                                {"authorization": "Bearer " + key})
    assert status == 200, raw[:300]
    assert json.loads(raw)["echo"] == "About [codename]?", raw[:300]
    hook = calls()
    assert [t["text"] for t in hook[0]["body"]["texts"]] == ["About Nightjar?"], hook
    assert hook[0]["body"]["texts"][0]["where"] == "message", hook


def test_no_answer_in_time_fails_closed_with_a_503_and_nothing_is_sent():
    st, key = env()
    script(webhook={"action": "sleep", "sleep_ms": 3000})
    st.clear_mock()
    t0 = time.monotonic()
    status, headers, raw = st.messages(key, prompt="Hello there.")
    elapsed = time.monotonic() - t0
    assert status == 503, raw[:300]
    _, message = harness.error_body(raw)
    assert message == "the guardrail service is unavailable", message
    assert elapsed < 0.5 + 1.0, "answered after %.2f s (deadline 0.5 s)" % elapsed
    assert st.mock_requests() == []
    status, _, raw = chat(st, key, "Hello there.")
    assert status == 503 and "guardrail service is unavailable" in raw.decode(), raw[:300]
    print("webhook timeout 500 ms: 503 after %.0f ms" % (elapsed * 1000))


def test_a_bad_answer_fails_closed():
    st, key = env()
    for action in ("500", "garbage", "wrong_count"):
        script(webhook={"action": action})
        st.clear_mock()
        status, _, raw = st.messages(key, prompt="Hello there.")
        assert status == 503, (action, raw[:300])
        assert st.mock_requests() == [], action


def test_local_block_never_reaches_the_webhook():
    st, key = env()
    script(webhook={"action": "allow"}, forbid=AWS_KEY)
    status, _, raw = st.messages(key, prompt="my key is " + AWS_KEY)
    assert status == 400 and "aws_access_key" in raw.decode(), raw[:300]
    assert calls() == [] and calls("/v1/moderations") == []
    _, _, violations = guard_mock().request("GET", "/_mock/violations")
    assert json.loads(violations) == []


def test_moderation_blocks_a_configured_category_only():
    st, key = env()
    script(webhook={"action": "allow"},
           moderation={"flag": ["violence", "harassment"], "when": "FLAGME"})
    st.clear_mock()
    status, headers, raw = st.messages(key, prompt="A story, FLAGME please.")
    assert status == 400, raw[:300]
    _, message = harness.error_body(raw)
    assert message == 'request blocked by guardrail "moderation" (violence)', message
    assert row_of(st, headers["x-request-id"]) == ("blocked", "0", "400")
    assert st.mock_requests() == []
    # harassment alone is not configured: it passes
    script(webhook={"action": "allow"}, moderation={"flag": ["harassment"], "when": "FLAGME"})
    status, _, raw = st.messages(key, prompt="A story, FLAGME please.")
    assert status == 200, raw[:300]
    assert len(st.mock_requests()) == 1


def test_blocks_are_counted_on_metrics():
    st, key = env()

    def count(rule):
        status, _, raw = st.request("GET", "/metrics")
        assert status == 200
        want = 'tollgate_guardrail_actions_total{rule="%s",action="block"} ' % rule
        line = [l for l in raw.decode().splitlines() if l.startswith(want)]
        assert line, want
        return int(line[0].split()[-1])
    webhook, moderation = count("webhook"), count("moderation")
    script(webhook={"action": "deny", "reason": "no"})
    st.messages(key, prompt="Hello.")
    script(webhook={"action": "allow"}, moderation={"flag": ["self-harm"]})
    st.messages(key, prompt="Hello.")
    assert (count("webhook"), count("moderation")) == (webhook + 1, moderation + 1)


def test_on_error_open_passes_with_a_warn_line():
    st, key = open_env()
    script(webhook={"action": "sleep", "sleep_ms": 2000})
    st.clear_mock()
    status, headers, raw = st.messages(key, prompt="Hello open world.")
    assert status == 200, raw[:300]
    assert len(st.mock_requests()) == 1
    rid = headers["x-request-id"]
    lines = [json.loads(l) for l in st.logs().splitlines() if rid in l and "on_error open" in l]
    assert lines and lines[0].get("level") in ("warn", "warning"), lines
    assert "Hello open world" not in st.logs()
