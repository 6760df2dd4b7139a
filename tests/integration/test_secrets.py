"""Keys and prompts: the client key never reaches the provider, the provider
key never reaches the client, and neither (nor the prompt) reaches a log."""

import base64
import hashlib
import json
import secrets
import time

from harness import main_stack, stack, tail


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


# ---- canary: planted secrets, successes and failures, then grep everything ----------

def canary_stack():
    from test_jwt import AUD, ISS, secret
    jwt = {"issuer": ISS, "audience": AUD, "create_unknown": True,
           "keys": [{"kid": "hs256", "alg": "HS256", "secret": secret("hs256")}]}
    return stack(tag="canary", processes=2, threads=2, extra_config={"auth": {"jwt": [jwt]}})


def test_canary_secrets_appear_nowhere():
    """A provider key, consumer keys and JWTs, each distinctive, used in
    requests that succeed and that fail (401, 403, 429, 400, 502): none of
    them, nor a key's SHA-256, is in a log, a response or a table."""
    from test_jwt import claims, mint_hs256
    s = canary_stack()
    tag = secrets.token_hex(4)
    group, user = "canary-%s" % tag, "canary-user-%s" % tag
    ok_key, quota_key, model_key, revoked_key = (
        s.key(group=group, user=user, name="canary-%d" % i) for i in range(4))
    s.psql("update tollgate.api_keys set trusted_attribution = true where prefix = '%s'"
           % ok_key[:11])
    s.ctl("quota", "set", "--key", quota_key[:11], "--metric", "requests", "--window", "total",
          "--limit", "1")
    s.psql("update tollgate.api_keys set allowed_models = '{claude-sonnet-4-5}' "
           "where prefix = '%s'" % model_key[:11])
    s.revoke(revoked_key)
    unknown_key = "tg-" + secrets.token_urlsafe(32)[:43]
    jwt_user = "canary-jwt-%s" % tag
    s.psql("insert into tollgate.roles (id, allowed_endpoints) "
           "values ('canary-%s', '{/v1/models}')" % tag)
    s.ctl("quota", "set", "--user", jwt_user, "--metric", "requests", "--window", "total",
          "--limit", "3")

    def jti(what):
        return "CANARY-JWT-%s-%s" % (what, secrets.token_hex(8))
    tok_ok = mint_hs256(claims(sub=jwt_user, group_id=group, jti=jti("ok")))
    tok_403 = mint_hs256(claims(sub=jwt_user, group_id=group, role="canary-" + tag,
                                jti=jti("role")))
    tok_expired = mint_hs256(claims(sub=jwt_user, group_id=group, exp=int(time.time()) - 3600,
                                    jti=jti("expired")))
    tok_badsig = mint_hs256(claims(sub=jwt_user, group_id=group, jti=jti("badsig")))
    tok_badsig = tok_badsig[:-6] + ("AAAAAA" if not tok_badsig.endswith("AAAAAA") else "BBBBBB")
    tok_unknown_kid = mint_hs256(claims(sub=jwt_user, jti=jti("kid")), kid="canary-kid")

    replies = []

    def call(label, want, credential, bearer=False, body=None, method="POST",
             path="/v1/messages", extra_headers=None, stream=False, **body_args):
        headers = s.auth(credential, bearer)
        headers.update(extra_headers or {})
        if stream:
            resp = s.stream(s.body(stream=True, **body_args), headers)
            status, rheaders = resp.status, resp.headers
            rbody = "".join("%s %s\n" % (e, d) for e, d, _ in resp).encode()
        else:
            if body is None and method == "POST":
                body = s.body(**body_args)
            status, rheaders, rbody = s.request(method, path, body, headers)
        replies.append((label, status, rheaders, rbody))
        assert status == want, "%s: %d, want %d: %s" % (label, status, want, rbody[:200])

    drop = {"drop": "before_headers"}
    call("key ok", 200, ok_key)
    call("key ok bearer stream", 200, ok_key, bearer=True, stream=True)
    call("key attributed", 200, ok_key, extra_headers={"x-tollgate-user": "canary-end-user"})
    call("key models", 200, ok_key, method="GET", path="/v1/models")
    call("key bad body", 400, ok_key, body={"model": "claude-haiku-4-5", "messages": []})
    call("key bad attribution", 400, ok_key, extra_headers={"x-tollgate-user": "no spaces"})
    call("key provider drop", 502, ok_key, directive=drop)
    call("key quota 1", 200, quota_key)
    call("key quota 2", 429, quota_key)
    call("key model", 403, model_key)
    call("key revoked", 401, revoked_key)
    call("key unknown", 401, unknown_key)
    call("key unknown bearer", 401, unknown_key, bearer=True)
    call("jwt ok", 200, tok_ok, bearer=True)
    call("jwt ok stream", 200, tok_ok, bearer=True, stream=True)
    call("jwt models", 200, tok_ok, bearer=True, method="GET", path="/v1/models")
    call("jwt bad body", 400, tok_ok, bearer=True, body={"model": "claude-haiku-4-5"})
    call("jwt provider drop", 502, tok_ok, bearer=True, directive=drop)
    call("jwt quota", 429, tok_ok, bearer=True)
    call("jwt role", 403, tok_403, bearer=True)
    call("jwt expired", 401, tok_expired, bearer=True)
    call("jwt bad signature", 401, tok_badsig, bearer=True)
    call("jwt unknown kid", 401, tok_unknown_kid, bearer=True)
    call("jwt in x-api-key", 401, tok_ok)
    for status in (401, 429, 500):     # the provider refuses: whatever the gateway makes of it
        label = "provider %d" % status
        headers = s.auth(ok_key)
        st, rh, rb = s.request("POST", "/v1/messages",
                               s.body(directive={"status": status}), headers)
        replies.append((label, st, rh, rb))
        assert st >= 400, (label, st)
    seen = {status for _, status, _, _ in replies}
    assert {200, 400, 401, 403, 429, 502} <= seen, seen

    canaries = {"provider key": s.provider_key}
    for name, key in (("ok key", ok_key), ("quota key", quota_key), ("model key", model_key),
                      ("revoked key", revoked_key), ("unknown key", unknown_key)):
        canaries[name] = key
        canaries[name + " secret part"] = key[11:]
        canaries[name + " sha256"] = hashlib.sha256(key.encode()).hexdigest()
    for name, tok in (("jwt ok", tok_ok), ("jwt 403", tok_403), ("jwt expired", tok_expired),
                      ("jwt bad signature", tok_badsig), ("jwt unknown kid", tok_unknown_kid)):
        canaries[name] = tok
        canaries[name + " signature"] = tok.rsplit(".", 1)[1]
        canaries[name + " jti"] = json.loads(base64.urlsafe_b64decode(
            tok.split(".")[1] + "==="))["jti"]

    places = {"worker log": s.logs(), "worker stderr": s.worker_stderr(),
              "lighttpd error log": s.frontend_errors(),
              "postgres log": tail(s.dir / "postgres.log", None)}
    for f in sorted((s.dir / "spool").rglob("*")):
        if f.is_file():
            places["spool " + f.name] = tail(f, None)
    for label, status, headers, body in replies:
        places["response %s (%d)" % (label, status)] = \
            repr(sorted(headers.items())) + body.decode("utf-8", "replace")
    status, _, metrics = s.request("GET", "/metrics", None, {})
    assert status == 200, metrics
    places["/metrics"] = metrics.decode("utf-8", "replace") if isinstance(metrics, bytes) else metrics
    for table in ("usage", "audit_log", "reservations", "quotas", "rate_buckets", "users",
                  "groups", "roles"):
        rows = s.psql("select t::text from tollgate.%s t" % table)
        places["table " + table] = "\n".join(r[0] for r in rows)
    # the grep sees what it should (a vacuous search would pass too)
    assert ok_key[:11] in places["/metrics"], "the key's display prefix is a metrics label"
    assert ok_key[:11] in places["worker log"] and jwt_user in places["table usage"], \
        "the key prefix / JWT user should be in the worker log / usage table"
    hits = ["%s in the %s" % (what, where) for what, secret_value in canaries.items()
            for where, text in places.items() if secret_value in text]
    assert not hits, "canaries found:\n" + "\n".join(hits)
