"""Who may see and call which MCP tool, through /mcp (issue 13 items 4 and 5).

A stack of its own fronts the tests' own MCP server (tests/mcp/server.mjs)
with JWT issuers configured. Grants are set with tollgatectl for groups,
roles and keys; each caller lists and calls tools through the gateway: a tool
a caller may not use is absent from tools/list and a call to it is a
JSON-RPC error naming the tool (the server never sees it); a credential
without any MCP grant is 403; a JWT without the claims its issuer needs is 401
with WWW-Authenticate. Every tools/call has its audit row in tollgate.mcp_calls
and counts in /metrics, and a quota on a key's tool calls admits exactly its
limit out of 200 concurrent calls.
"""

import json
import shutil
import threading
import urllib.request
from collections import Counter

import harness
from harness import free_port, wait_for
from test_jwt import AUD, ISS, KEYS, PREPARE_SQL, claims, issuers, mint_hs256, tmp_dir
from test_mcp import SECRET, _start, call, initialize, node, post

_env = {}


def env():
    """(stack, seen): the stack, and the tools/call names the server received."""
    if "stack" not in _env:
        port = free_port()
        _start([node(), "server.mjs", str(port), "own"], port)
        jwks = tmp_dir() / "jwks.json"
        if not jwks.exists():
            shutil.copyfile(KEYS / "jwks.json", jwks)
        config = {"auth": {"jwt": issuers(jwks)},
                  "mcp": {"servers": {"own": {"url": "http://127.0.0.1:%d/mcp" % port,
                                              "timeout_ms": 5000}},
                          "session_secret": SECRET}}
        st = harness.stack(tag="mcp-access", processes=2, threads=8, extra_config=config)
        st.psql(PREPARE_SQL)

        def seen():
            with urllib.request.urlopen("http://127.0.0.1:%d/seen" % port, timeout=10) as r:
                return [c.get("params", {}).get("name") for c in json.loads(r.read())]
        _env["stack"] = (st, seen)
    return _env["stack"]


def tool_names(st, key, session):
    status, _, msgs = call(st, key, session, "tools/list", id=2)
    assert status == 200, (status, msgs)
    names = [t["name"] for t in msgs[-1]["result"]["tools"]]
    cursor = msgs[-1]["result"].get("nextCursor")
    while cursor:
        status, _, msgs = call(st, key, session, "tools/list", {"cursor": cursor}, id=3)
        names += [t["name"] for t in msgs[-1]["result"]["tools"]]
        cursor = msgs[-1]["result"].get("nextCursor")
    return sorted(names)


def call_tool(st, key, session, name, arguments, id=5):
    status, headers, msgs = call(st, key, session, "tools/call",
                                 {"name": name, "arguments": arguments}, id=id)
    assert status == 200, (status, msgs)
    return msgs[-1], headers


def grants_matrix(st):
    if _env.get("matrix"):
        return _env["matrix"]
    st.ctl("role", "set", "acl-viewer")
    st.ctl("mcp", "grant", "--group", "acl-a", "--server", "own", "--tools", "echo,slow_*")
    st.ctl("mcp", "grant", "--role", "acl-viewer", "--server", "own", "--tools", "fail")
    st.ctl("mcp", "grant", "--group", "acl-c", "--server", "o?n", "--tools", "echo",
           "--args", json.dumps({"text": {"pattern": "^ok"}}))
    keys = {"a": st.key(group="acl-a", user="acl-alice"),
            "viewer": st.key(group="acl-b", user="acl-vera", role="acl-viewer"),
            "none": st.key(group="acl-none", user="acl-nobody"),
            "args": st.key(group="acl-c", user="acl-carl")}
    _env["matrix"] = keys
    return keys


def test_roles_by_tools_listed_or_not_and_called_or_refused():
    st, seen = env()
    keys = grants_matrix(st)
    sa, _ = initialize(st, keys["a"])
    sv, _ = initialize(st, keys["viewer"])
    assert tool_names(st, keys["a"], sa) == ["own__echo", "own__slow_count"]
    assert tool_names(st, keys["viewer"], sv) == ["own__fail"]
    # allowed: the server answers
    msg, _ = call_tool(st, keys["a"], sa, "own__echo", {"text": "hi"})
    assert msg["result"]["content"][0]["text"] == "own: hi", msg
    msg, _ = call_tool(st, keys["viewer"], sv, "own__fail", {})
    assert msg["result"].get("isError") is True, msg   # the tool's own error, not a refusal
    # refused: a JSON-RPC error naming the tool; the server never sees the call
    before = Counter(seen())
    for key, session, name in ((keys["a"], sa, "own__fail"), (keys["a"], sa, "own__hang"),
                               (keys["viewer"], sv, "own__echo")):
        msg, _ = call_tool(st, key, session, name, {"text": "x"}, id=9)
        assert msg["error"]["code"] == -32003, msg
        tool = name.split("__", 1)[1]
        assert 'tool "%s" of MCP server "own" is not allowed' % tool in msg["error"]["message"]
        assert msg["id"] == 9
    assert Counter(seen()) == before, "a refused call reached the server"


def test_argument_constraints_are_enforced():
    st, seen = env()
    keys = grants_matrix(st)
    s, _ = initialize(st, keys["args"])
    assert tool_names(st, keys["args"], s) == ["own__echo"]
    msg, _ = call_tool(st, keys["args"], s, "own__echo", {"text": "ok then"})
    assert msg["result"]["content"][0]["text"] == "own: ok then", msg
    msg, _ = call_tool(st, keys["args"], s, "own__echo", {"text": "rm -rf"})
    assert msg["error"]["code"] == -32003 and "with these arguments" in msg["error"]["message"]


def test_a_credential_without_mcp_access_is_403():
    st, _ = env()
    keys = grants_matrix(st)
    status, headers, data = post(st, keys["none"], {
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "1"}}})
    assert status == 403, (status, data)
    doc = json.loads(data)
    assert doc["jsonrpc"] == "2.0" and doc["id"] is None and "MCP" in doc["error"]["message"]
    assert "www-authenticate" not in headers


def test_jwt_callers_by_their_claims():
    st, _ = env()
    st.ctl("mcp", "grant", "--group", "eng", "--server", "own", "--tools", "echo")
    token = mint_hs256(claims())   # alice in eng
    s, _ = initialize(st, token)
    assert tool_names(st, token, s) == ["own__echo"]
    msg, _ = call_tool(st, token, s, "own__echo", {"text": "jwt"})
    assert msg["result"]["content"][0]["text"] == "own: jwt"
    # claims the issuer needs are missing or wrong: 401, and where to authenticate
    for bad in (claims(aud="someone-else"), claims(exp=1), claims(iss="https://evil.test"),
                {k: v for k, v in claims().items() if k != "sub"}):
        status, headers, data = post(st, mint_hs256(bad), {
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}}})
        assert status == 401, (status, data, bad)
        assert headers["www-authenticate"].startswith('Bearer resource_metadata="'), headers
        assert json.loads(data)["error"]["code"] == -32000
    status, _, data = st.request("GET", "/.well-known/oauth-protected-resource")
    assert status == 200 and ISS in json.loads(data)["authorization_servers"], data
    assert AUD  # (the audience the issuer checks)


def audit_rows(st, where):
    return st.psql("select code, coalesce(jsonrpc_error, 0), server, tool, key_prefix "
                   "from tollgate.mcp_calls where %s order by ts" % where)


def test_every_tool_call_has_its_audit_row_and_metrics():
    st, _ = env()
    keys = grants_matrix(st)
    key = st.key(group="acl-a", user="acl-audit")
    s, _ = initialize(st, key)
    call_tool(st, key, s, "own__echo", {"text": "a"})
    call_tool(st, key, s, "own__echo", {"text": "b"})
    call_tool(st, key, s, "own__fail", {})
    prefix = key[:11]
    rows = wait_for(lambda: len(audit_rows(st, "key_prefix = '%s'" % prefix)) == 3
                    and audit_rows(st, "key_prefix = '%s'" % prefix), 30,
                    "the audit rows of 3 calls")
    assert sorted(tuple(r[:4]) for r in rows) == sorted([
        ("ok", "0", "own", "echo"), ("ok", "0", "own", "echo"),
        ("refused", "-32003", "own", "fail")]), rows
    status, _, text = st.request("GET", "/metrics")
    text = text.decode()
    assert 'tollgate_mcp_calls_total{server="own",tool="echo",code="ok"}' in text, text[-2000:]
    assert 'tollgate_mcp_calls_total{server="own",tool="fail",code="refused"}' in text
    assert "tollgate_mcp_call_duration_seconds_bucket" in text
    assert keys["a"] not in text


def burst(st, key, n=200):
    """n concurrent tools/call of own__echo on one session: Counter of "ok" or error codes."""
    s, _ = initialize(st, key)
    codes = []

    def one(i):
        try:
            msg, _ = call_tool(st, key, s, "own__echo", {"text": "n%d" % i}, id=100 + i)
            codes.append("ok" if "result" in msg else msg["error"]["code"])
        except Exception as e:  # noqa: BLE001 — counted as a failure below
            codes.append(repr(e))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return Counter(codes)


def test_200_concurrent_calls_hold_a_key_quota_exactly():
    st, _ = env()
    grants_matrix(st)
    key = st.key(group="acl-a", user="acl-burst")
    prefix = key[:11]
    st.ctl("mcp", "limit", "set", "--per", "key", "--subject", prefix, "--requests", "37",
           "--window", "day")
    got = burst(st, key)
    assert got == {"ok": 37, -32000: 163}, got
    rows = wait_for(lambda: len(audit_rows(st, "key_prefix = '%s'" % prefix)) == 200
                    and audit_rows(st, "key_prefix = '%s'" % prefix), 60,
                    "200 audit rows")
    assert Counter(r[0] for r in rows) == {"ok": 37, "rate_limited": 163}
    # the quota's counter is exact too
    used = st.psql("select sum(used) from tollgate.mcp_quota_counters c "
                   "join tollgate.mcp_limits l on l.id = c.limit_id where l.per = 'key'")
    assert used == [["37"]], used


def test_200_concurrent_calls_hold_a_user_bucket_exactly():
    """A token bucket of 23 per user that refills one token an hour: 23 of 200
    concurrent calls pass, across both worker processes."""
    st, _ = env()
    grants_matrix(st)
    key = st.key(group="acl-a", user="acl-bucket")
    st.ctl("mcp", "limit", "set", "--per", "user", "--subject", "acl-bucket", "--bucket", "23",
           "--refill", "1", "--every-ms", "3600000")
    got = burst(st, key)
    assert got == {"ok": 23, -32000: 177}, got
