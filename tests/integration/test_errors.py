"""Bad input, provider failures and provider errors: status, Anthropic-shaped
error body, and (for provider errors) the usage row."""

import http.client
import json
import secrets
import time

from harness import MAIN, error_body, main_stack, stack


def revoked_key(s):
    key = s.key(name="revoked")
    s.revoke(key)
    return key


def body_without(field):
    def make(s, marker):
        body = s.body(prompt=marker)
        del body[field]
        return body
    return make


# name: (request overrides, expected status(es), expected error type(s)).
# key: a function of the stack giving the client key (None: no key at all).
BAD_INPUT = {
    "no_key": (dict(key=lambda s: None), 401, "authentication_error"),
    "unknown_key": (dict(key=lambda s: "tg-" + secrets.token_urlsafe(32)[:43]), 401,
                    "authentication_error"),
    "malformed_key": (dict(key=lambda s: "not-a-key"), 401, "authentication_error"),
    "revoked_key": (dict(key=revoked_key), 401, "authentication_error"),
    "malformed_json": (dict(body=lambda s, m: '{"model": "claude-haiku-4-5", "messages": ['
                            + m), 400, "invalid_request_error"),
    "malformed_json_in_string": (dict(body=lambda s, m: '{"model": "claude-haiku-4-5", '
                                      '"max_tokens": 5, "messages": [{"role": "user", '
                                      '"content": "' + m), 400, "invalid_request_error"),
    # a provider keeping the first "model" would run one RBAC and prices never saw
    "duplicate_model": (dict(body=lambda s, m: '{"model": "claude-haiku-4-5", "max_tokens": 5, '
                             '"messages": [{"role": "user", "content": "%s"}], '
                             '"model": "claude-opus-4-1"}' % m), 400, "invalid_request_error"),
    "duplicate_nested": (dict(body=lambda s, m: '{"model": "claude-haiku-4-5", "max_tokens": 5, '
                              '"messages": [{"role": "user", "content": "%s", '
                              '"role": "assistant"}]}' % m), 400, "invalid_request_error"),
    "body_not_object": (dict(body=lambda s, m: json.dumps([m])), 400, "invalid_request_error"),
    "missing_model": (dict(body=body_without("model")), 400, "invalid_request_error"),
    "missing_messages": (dict(body=body_without("messages")), 400, "invalid_request_error"),
    "missing_max_tokens": (dict(body=body_without("max_tokens")), 400, "invalid_request_error"),
    "unknown_model": (dict(body=lambda s, m: s.body(model="claude-nonexistent-9", prompt=m)),
                      (400, 404), ("invalid_request_error", "not_found_error")),
    "body_too_large": (dict(body=lambda s, m: s.body(prompt=m + "x" * 70000)), 413,
                       "request_too_large"),
    "unknown_path": (dict(path="/v1/no-such-thing"), 404, "not_found_error"),
    "wrong_method": (dict(method="GET", body=lambda s, m: None), 405, "invalid_request_error"),
}


def make_bad_input_test(overrides, want_status, want_type):
    def test():
        s = main_stack()
        marker = "bad-" + secrets.token_hex(6)
        key = overrides.get("key", lambda s: s.default_key())(s)
        body = overrides.get("body", lambda s, m: s.body(prompt=m))(s, marker)
        status, headers, resp = s.request(overrides.get("method", "POST"),
                                          overrides.get("path", "/v1/messages"),
                                          body, s.auth(key))
        assert status in as_tuple(want_status), "status %d, want %s: %r" % (
            status, want_status, resp[:300])
        etype, _ = error_body(resp)
        assert etype in as_tuple(want_type), "error type %r, want %r" % (etype, want_type)
        assert headers.get("content-type", "").startswith("application/json"), headers
        assert headers.get("x-request-id"), "no x-request-id on a %d" % status
        if status == 405:
            assert "POST" in headers.get("allow", ""), "405 without Allow: POST: %s" % headers
        assert not s.mock_requests(marker), "a rejected request reached the provider"
        assert marker not in s.logs(), "the prompt's bytes reached the log"
        assert marker.encode() not in resp, "the error quotes the prompt"
    return test


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


for _name, _case in BAD_INPUT.items():
    globals()["test_bad_input_" + _name] = make_bad_input_test(*_case)


def make_provider_error_test(status):
    def test():
        s = main_stack()
        marker = "perr-" + secrets.token_hex(6)
        got, headers, resp = s.messages(s.default_key(), prompt=marker,
                                        directive={"status": status, "retry_after": 13})
        rec = s.mock_requests(marker)
        assert len(rec) == 1, "mock saw %d requests (retried?)" % len(rec)
        assert got == status, "status %d, want %d: %r" % (got, status, resp[:300])
        etype, _ = error_body(resp)
        want_type, _ = error_body(rec[0]["response_body"])
        assert etype == want_type, "error type %r, mock sent %r" % (etype, want_type)
        assert headers.get("retry-after") == "13", "retry-after %r" % headers.get("retry-after")
        row = s.usage(headers["x-request-id"])
        assert row["http_status"] == str(status), row
        assert row["outcome"] and row["outcome"] != "ok", row
    return test


for _status in (400, 401, 403, 429, 500, 529):
    globals()["test_provider_error_%d" % _status] = make_provider_error_test(_status)


def test_provider_unreachable_502():
    s = stack(provider_url="http://127.0.0.1:1", processes=1)
    t0 = time.monotonic()
    status, _, resp = s.messages(s.default_key())
    assert status == 502, (status, resp[:300])
    assert error_body(resp)[0] == "api_error", resp
    assert time.monotonic() - t0 < 5, "took %.1fs" % (time.monotonic() - t0)


def make_drop_test(drop):
    def test():
        s = main_stack()
        status, headers, resp = s.messages(s.default_key(), directive={"drop": drop})
        assert status == 502, (status, resp[:300])
        assert error_body(resp)[0] == "api_error", resp
        row = s.usage(headers["x-request-id"])
        assert row["http_status"] == "502" and row["outcome"] != "ok", row
    return test


for _drop in ("before_headers", "mid_stream"):
    globals()["test_provider_drops_%s_502" % _drop] = make_drop_test(_drop)


def test_stream_dropped_mid_stream_is_recorded():
    s = main_stack()
    body = s.body(stream=True, directive={"drop": "mid_stream", "chunks": 3,
                                          "usage": {"input_tokens": 9, "output_tokens": 4}})
    resp = s.stream(body, s.auth(s.default_key()))
    assert resp.status == 200, resp.status
    try:
        events = [e for e, _, _ in resp]
    except (OSError, http.client.HTTPException):
        events = None  # the truncated chunked body may surface as an error
    assert events is None or "message_stop" not in events, events
    row = s.usage(resp.headers["x-request-id"])
    assert (row["stream"], row["input_tokens"]) == ("t", "9"), row
    assert row["outcome"] != "ok", row


def test_provider_timeout_504():
    s = main_stack()
    t0 = time.monotonic()
    status, _, resp = s.messages(s.default_key(), directive={"delay_ms": 8000})
    elapsed = time.monotonic() - t0
    assert status == 504, (status, resp[:300])
    assert error_body(resp)[0] == "api_error", resp
    assert elapsed < MAIN["timeout_ms"] / 1000 + 2, "504 after %.1fs" % elapsed


def test_duplicate_key_openai_dialect():
    """Chat Completions with two "model" members: 400 in OpenAI's error shape,
    naming the duplicate and where it is, never the bytes."""
    s = main_stack()
    marker = "dup-" + secrets.token_hex(6)
    body = ('{"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "%s"}],\n'
            ' "model": "gpt-4o"}' % marker)
    status, headers, resp = s.request("POST", "/v1/chat/completions", body,
                                      s.auth(s.default_key()))
    assert status == 400, (status, resp[:300])
    err = json.loads(resp)["error"]
    assert err["type"] == "invalid_request_error", err
    assert "duplicate object key" in err["message"] and "line 2" in err["message"], err
    assert marker not in resp.decode(), resp
    assert not s.mock_requests(marker), "a rejected request reached the provider"
