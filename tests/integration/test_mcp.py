"""The MCP gateway (/mcp, /mcp/{server}) against real MCP servers.

Two servers are federated: the tests' own (tests/mcp/server.mjs, built with
the official SDK: echo, slow_count with progress notifications, hang, drop,
fail, a prompt and a resource) and npm's @modelcontextprotocol/server-everything
in its Streamable HTTP mode.  The official SDK's Client with its
StreamableHTTPClientTransport (tests/mcp/client.mjs) drives the whole protocol
through Tollgate; raw HTTP checks the transport's errors.  scripts/test
installs tests/mcp (tg_mcp_ensure: npm ci).
"""

import atexit
import base64
import json
import os
import shutil
import subprocess
import time

import harness
from harness import REPO, free_port, wait_for

MCP_DIR = REPO / "tests" / "mcp"
ACCEPT = "application/json, text/event-stream"
SECRET = "tollgate-mcp-test-secret-0123456789abcdef"
_env = {}


def node():
    for path in (shutil.which("node"), "/usr/bin/node", "/usr/local/bin/node"):
        if path and os.path.exists(path):
            return path
    raise AssertionError("no node on PATH: install nodejs (scripts/test does)")


def _start(cmd, port, env=None):
    if not (MCP_DIR / "node_modules" / ".package-lock.json").exists():
        raise AssertionError("tests/mcp/node_modules is missing: scripts/test installs it")
    log = open(harness.Path(os.environ.get("TMPDIR", "/tmp")) / ("mcp-%d.log" % port), "w")
    proc = subprocess.Popen(cmd, cwd=str(MCP_DIR), stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **(env or {})))
    atexit.register(lambda: harness.stop_proc(proc))

    def up():
        import socket
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(up, 90, "MCP server on port %d" % port)  # node starts slowly on a busy host
    return proc


def env():
    """(stack, key): Tollgate fronting the tests' own server and server-everything."""
    if "stack" not in _env:
        own, everything = free_port(), free_port()
        _start([node(), "server.mjs", str(own), "own"], own)
        _start([node(), "node_modules/@modelcontextprotocol/server-everything/dist/index.js",
                "streamableHttp"], everything, {"PORT": str(everything)})
        config = {"mcp": {
            "servers": {
                "own": {"url": "http://127.0.0.1:%d/mcp" % own, "timeout_ms": 3000,
                        "headers": {"x-test-auth": "own-secret"}},
                "everything": {"url": "http://127.0.0.1:%d/mcp" % everything,
                               "timeout_ms": 10000}},
            "session_secret": SECRET, "max_message_bytes": 16384}}
        st = harness.stack(tag="mcp", extra_config=config)
        st.ctl("mcp", "grant", "--group", "mcp-team", "--server", "*", "--tools", "*")
        _env["stack"] = (st, st.key(group="mcp-team", user="mcp-alice"))
    return _env["stack"]


def drive(url, key, scenario):
    p = subprocess.run([node(), "client.mjs", url, key, scenario], cwd=str(MCP_DIR),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def post(st, key, body, session=None, path="/mcp", version=None, accept=ACCEPT, timeout=30,
         headers=None):
    h = {"accept": accept, "content-type": "application/json"}
    if key is not None:
        h["authorization"] = "Bearer " + key
    if session is not None:
        h["mcp-session-id"] = session
    if version is not None:
        h["mcp-protocol-version"] = version
    h.update(headers or {})
    status, headers_out, data = st.request("POST", path, body, h, timeout=timeout)
    return status, headers_out, data


def messages(data, headers):
    """The JSON-RPC messages of a reply, JSON or an event stream."""
    if headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(line[6:]) for line in data.decode().splitlines()
                if line.startswith("data: ")]
    return [json.loads(data)] if data else []


def initialize(st, key, path="/mcp", version="2025-06-18"):
    status, headers, data = post(st, key, {
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "1"}}}, path=path)
    assert status == 200, (status, data)
    session = headers["mcp-session-id"]
    assert post(st, key, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                session, path=path)[0] == 202
    return session, json.loads(data)


def call(st, key, session, method, params=None, id=1, **kw):
    body = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    status, headers, data = post(st, key, body, session, **kw)
    return status, headers, messages(data, headers)


def test_the_sdk_client_through_the_federation_of_two_servers():
    st, key = env()
    out = drive("http://127.0.0.1:%d/mcp" % st.port, key, "federated")
    assert out["protocolVersion"] == "2025-06-18", out
    assert out["serverInfo"]["name"] == "tollgate"
    assert {"tools", "prompts", "resources"} <= set(out["capabilities"])
    names = out["tools"]["names"]
    assert {"own__echo", "own__slow_count", "own__hang", "everything__echo"} <= set(names), names
    assert all("__" in n for n in names)
    assert out["tools"]["pages"] >= 2  # a page per server, the cursor naming the next
    assert out["echo"] == "own: hi"
    assert out["streamed"] == {"text": "counted 4", "progress": [1, 2, 3, 4]}, out["streamed"]
    assert out["tool_error"] is True
    assert out["unknown_tool"]["error"]["code"] == -32602, out["unknown_tool"]
    assert "nobody__nope" in out["unknown_tool"]["error"]["message"]
    assert "own__greet" in out["prompts"]
    assert out["prompt"] == "Hello, Ada!"
    assert "tollgate://own/own://readme" in out["resources"], out["resources"]
    assert out["resource"] == {"uri": "tollgate://own/own://readme", "text": "the readme of own"}
    assert out["ping"] == {}
    assert "across" in out["everything_echo"], out["everything_echo"]
    assert all(t.startswith("tollgate://everything/") for t in out["templates"]), out["templates"]
    assert out["cancelled"]["cancelled"] is True and out["cancelled"]["ms"] < 3000
    assert out["after_cancel"] == "own: again"
    assert out["terminate"] is None  # the session ended: the SDK forgot its id


def test_the_sdk_client_on_one_server_sees_its_own_names():
    st, key = env()
    out = drive("http://127.0.0.1:%d/mcp/own" % st.port, key, "single")
    assert out["serverInfo"]["name"] == "tollgate-test-own"
    assert {"echo", "slow_count", "hang"} <= set(out["tools"]["names"])
    assert out["echo"] == "own: hi"
    assert out["streamed"]["progress"] == [1, 2, 3, 4]
    assert out["resource"]["uri"] == "own://readme"
    assert out["prompt"] == "Hello, Ada!"
    assert out["terminate"] is None


def test_a_session_is_served_by_every_worker_process_in_turn():
    st, key = env()
    session, _ = initialize(st, key)
    ids = []
    for i in range(16):
        status, headers, msgs = call(st, key, session, "tools/call",
                                     {"name": "own__echo", "arguments": {"text": str(i)}}, id=i)
        assert status == 200 and msgs[-1]["result"]["content"][0]["text"] == "own: %d" % i
        ids.append(headers["x-request-id"])
    lines = [json.loads(l) for l in st.logs().splitlines() if '"request_id"' in l]
    pids = {l["pid"] for l in lines if l.get("request_id") in ids and "pid" in l}
    assert len(pids) >= 2, pids


def test_malformed_invalid_and_unknown_messages_get_the_specs_errors():
    st, key = env()
    session, _ = initialize(st, key)
    status, _, data = post(st, key, "{not json", session)
    err = json.loads(data)
    assert status == 400 and err["error"]["code"] == -32700 and err["id"] is None, err
    status, _, data = post(st, key, {"id": 3, "method": "ping"}, session)
    err = json.loads(data)
    assert status == 400 and err["error"]["code"] == -32600 and err["id"] == 3, err
    status, _, data = post(st, key, {"jsonrpc": "2.0", "id": 4, "method": "x", "params": [1]},
                           session)
    assert status == 400 and json.loads(data)["error"]["code"] == -32600
    status, _, msgs = call(st, key, session, "no/such/method", id="u1")
    assert status == 200 and msgs[0]["error"]["code"] == -32601 and msgs[0]["id"] == "u1"
    status, _, msgs = call(st, key, session, "tools/call", {"name": 5}, id=6)
    assert msgs[0]["error"]["code"] == -32602
    status, _, msgs = call(st, key, session, "tools/list", {"cursor": "bogus"}, id=7)
    assert msgs[0]["error"]["code"] == -32602
    # a notification and a response are accepted without a body
    assert post(st, key, {"jsonrpc": "2.0", "method": "notifications/cancelled",
                          "params": {"requestId": 99}}, session)[0] == 202
    assert post(st, key, {"jsonrpc": "2.0", "id": 5, "result": {}}, session)[0] == 202


def test_batches_only_under_2025_03_26():
    st, key = env()
    session, _ = initialize(st, key)
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"},
             {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
              "params": {"name": "own__echo", "arguments": {"text": "b"}}}]
    status, _, data = post(st, key, batch, session)
    assert status == 400 and json.loads(data)["error"]["code"] == -32600
    old, init = initialize(st, key, version="2025-03-26")
    assert init["result"]["protocolVersion"] == "2025-03-26"
    status, _, data = post(st, key, batch + [{"jsonrpc": "2.0", "method": "notifications/x"},
                                             {"bad": 1}], old)
    replies = json.loads(data)
    assert status == 200 and len(replies) == 3, replies
    assert replies[0] == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert replies[1]["result"]["content"][0]["text"] == "own: b"
    assert replies[2]["error"]["code"] == -32600 and replies[2]["id"] is None
    status, _, data = post(st, key, [], old)
    assert status == 400


def test_headers_sessions_and_sizes():
    st, key = env()
    session, _ = initialize(st, key)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert post(st, key, ping)[0] == 400  # no session
    status, _, data = post(st, key, ping, "tg1.bogus.token")
    assert status == 404 and json.loads(data)["error"]["code"] == -32001
    payload, mac = session[4:].rsplit(".", 1)
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw["e"] += 3600  # a longer life, without the secret
    forged = "tg1.%s.%s" % (base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()
                            .rstrip("="), mac)
    assert post(st, key, ping, forged)[0] == 404
    other = st.key(group="mcp-team", user="mcp-bob")
    assert post(st, other, ping, session)[0] == 404  # another caller's session
    assert post(st, key, ping, session, path="/mcp/own")[0] == 404  # another endpoint's
    assert post(st, key, ping, session, version="2024-01-01")[0] == 400
    assert post(st, key, ping, session, version="2025-03-26")[0] == 400  # not the session's
    assert post(st, key, ping, session, version="2025-06-18")[0] == 200
    assert post(st, key, ping, session, accept="application/json")[0] == 406
    status, _, data = post(st, key, {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                                     "params": {"name": "own__echo",
                                                "arguments": {"text": "x" * 20000}}}, session)
    assert status == 413 and json.loads(data)["error"]["code"] == -32600
    assert post(st, key, ping, session, path="/mcp/nope")[0] == 404
    status, headers, _ = st.request("GET", "/mcp", None, {
        "authorization": "Bearer " + key, "accept": "text/event-stream",
        "mcp-session-id": session})
    assert status == 405 and "POST" in headers["allow"]
    assert st.request("PUT", "/mcp", None, {})[0] == 405


def test_a_hanging_server_is_a_timeout_error_in_bounded_time():
    st, key = env()
    session, _ = initialize(st, key)
    started = time.monotonic()
    status, _, msgs = call(st, key, session, "tools/call", {"name": "own__hang", "arguments": {}},
                           id=11)
    took = time.monotonic() - started
    assert status == 504 and msgs[-1]["error"]["code"] == -32001 and msgs[-1]["id"] == 11, msgs
    assert 2.5 < took < 6, took
    # the session and the workers go on
    assert call(st, key, session, "ping", id=12)[0] == 200


def test_a_server_dropping_mid_stream_ends_the_stream_with_an_error():
    st, key = env()
    session, _ = initialize(st, key)
    started = time.monotonic()
    status, headers, msgs = call(st, key, session, "tools/call", {
        "name": "own__drop", "arguments": {}, "_meta": {"progressToken": "p1"}}, id=13)
    assert time.monotonic() - started < 3
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert msgs[0]["method"] == "notifications/progress"
    assert msgs[-1]["id"] == 13 and msgs[-1]["error"]["code"] == -32603, msgs
    assert call(st, key, session, "ping", id=14)[0] == 200


def test_delete_ends_the_session_at_the_servers():
    st, key = env()
    session, _ = initialize(st, key)
    h = {"authorization": "Bearer " + key, "mcp-session-id": session}
    assert st.request("DELETE", "/mcp", None, h)[0] == 200
    status, _, msgs = call(st, key, session, "tools/call",
                           {"name": "own__echo", "arguments": {"text": "x"}}, id=15)
    assert status == 404 and msgs[0]["error"]["code"] == -32001


def test_401_carries_www_authenticate_and_the_metadata_document_is_served():
    st, key = env()
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "1"}}}
    for bad in (None, "tg-not-a-real-key-000000000000000000000"):
        status, headers, data = post(st, bad, init)
        assert status == 401, (status, data)
        assert json.loads(data)["error"]["code"] == -32000
        want = ('Bearer resource_metadata="http://127.0.0.1:%d/.well-known/'
                'oauth-protected-resource"' % st.port)
        assert headers["www-authenticate"] == want, headers
    status, headers, data = st.request("GET", "/.well-known/oauth-protected-resource")
    doc = json.loads(data)
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert doc["resource"] == "http://127.0.0.1:%d/mcp" % st.port
    assert doc["bearer_methods_supported"] == ["header"]
    assert doc["authorization_servers"] == []  # this stack configures no auth.jwt issuer
    assert "own-secret" not in st.logs()
