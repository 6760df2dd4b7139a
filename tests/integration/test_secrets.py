"""Keys and prompts: the client key never reaches the provider, the provider
key never reaches the client, and neither (nor the prompt) reaches a log."""

import secrets

from harness import main_stack


def exchange():
    """Sends non-stream and stream requests with a canary prompt, both auth
    styles; returns (stack, client key, canary, [(headers, body)], mock records)."""
    s = main_stack()
    key = s.key(name="secrets")
    canary = "CANARY-PROMPT-" + secrets.token_hex(8)
    responses = []
    for bearer in (False, True):
        status, headers, body = s.messages(key, bearer=bearer, prompt="the phrase " + canary)
        assert status == 200, (status, body)
        responses.append((headers, body))
        resp = s.stream(s.body(prompt="streamed " + canary, stream=True), s.auth(key, bearer))
        assert resp.status == 200, resp.status
        responses.append((resp.headers, "".join(e + d for e, d, _ in resp).encode()))
    return s, key, canary, responses, s.mock_requests(canary)


def test_provider_sees_provider_key_only():
    s, key, _, _, recs = exchange()
    assert len(recs) == 4, "mock saw %d requests" % len(recs)
    for rec in recs:
        assert rec["headers"].get("x-api-key") == s.provider_key, \
            "x-api-key to provider: %r" % rec["headers"].get("x-api-key")
        for secret in (key, key[11:]):
            where = [h for h, v in rec["headers"].items() if secret in v]
            assert not where, "client key reached the provider in headers %s" % where
            assert secret not in rec["body"], "client key reached the provider in the body"
        assert "authorization" not in rec["headers"], rec["headers"]


def test_client_never_sees_provider_key():
    s, _, _, responses, _ = exchange()
    for headers, body in responses:
        assert s.provider_key not in repr(headers), "provider key in response headers"
        assert s.provider_key.encode() not in body, "provider key in response body"


def test_logs_hold_no_prompt_or_keys():
    s, key, canary, _, _ = exchange()
    logs = {"worker log": s.logs(), "worker stderr": s.worker_stderr(),
            "lighttpd error log": s.frontend_errors()}
    assert logs["worker log"].strip(), "the worker log is empty"
    for name, text in logs.items():
        for what, secret in (("prompt text", canary), ("client key", key),
                             ("client key secret part", key[11:]),
                             ("provider key", s.provider_key)):
            assert secret not in text, "%s found in the %s" % (what, name)
