"""The arguments and results of tool calls in their audit rows, for the MCP
servers whose operator turned it on (issue 13, item 5:
mcp.servers.NAME.audit_payloads, mcp.audit_payload_bytes).

Two of the tests' own MCP servers (tests/mcp/server.mjs) behind one /mcp:
`own` with audit_payloads on, `other` without; the shipped guardrails
(conf/guardrails.json) on tool arguments and results. The audit rows of
calls to `own` hold the arguments as the server received them and the result
as the client got it, the planted SSN masked in both; a result over the cap
(1024 bytes here) is stored as {"truncated": true, "bytes": N}; the rows of
calls to `other` hold neither. The payloads reach no log, no metric, and not
`report --by tool`.
"""

import json
import urllib.request

import harness
from harness import free_port, wait_for
from test_mcp import SECRET, _start, call, initialize, node

SSN = "078-05-1120"
CANARY = "canary-payload-7f3a"   # a text that is in the payloads and must be nowhere else
CAP = 1024
_env = {}


def env():
    """(stack, key, seen): Tollgate with guardrails fronting `own` (payloads on) and `other`."""
    if "stack" not in _env:
        ports = {"own": free_port(), "other": free_port()}
        for name, port in ports.items():
            _start([node(), "server.mjs", str(port), name], port)
        config = {
            "guardrails": {"rules_file": str(harness.REPO / "conf" / "guardrails.json"),
                           "mcp": {"arguments": True, "results": True}},
            "mcp": {"servers": {"own": {"url": "http://127.0.0.1:%d/mcp" % ports["own"],
                                        "timeout_ms": 5000, "audit_payloads": True},
                                "other": {"url": "http://127.0.0.1:%d/mcp" % ports["other"],
                                          "timeout_ms": 5000}},
                    "session_secret": SECRET, "audit_payload_bytes": CAP}}
        st = harness.stack(tag="mcp-payloads", extra_config=config)
        st.ctl("mcp", "grant", "--group", "pay", "--server", "*", "--tools", "echo,leak,fail")
        key = st.key(group="pay", user="pay-ann")

        def seen(port):
            with urllib.request.urlopen("http://127.0.0.1:%d/seen" % port, timeout=10) as r:
                return json.loads(r.read())
        _env["stack"] = (st, key, lambda name: seen(ports[name]))
    return _env["stack"]


def tool(st, key, session, name, arguments, id):
    status, headers, msgs = call(st, key, session, "tools/call",
                                 {"name": name, "arguments": arguments}, id=id)
    assert status == 200, (status, msgs)
    return msgs[-1], headers["x-request-id"]


def rows(st, request_ids):
    """The audit rows of these requests (server, tool, code, arguments, result) once all came."""
    where = "request_id in (%s)" % ",".join("'%s'" % r for r in request_ids)

    def got():
        out = st.psql("select jsonb_agg(jsonb_build_array(request_id, server, tool, code, "
                      "arguments, result)) from tollgate.mcp_calls where " + where)
        found = json.loads("|".join(out[0])) if out and out[0] != [""] else None
        return found if found and len(found) == len(request_ids) else None
    found = wait_for(got, 30, "the audit rows of %d calls" % len(request_ids))
    return {r[0]: r[1:] for r in found}


def test_an_opted_in_server_has_masked_arguments_and_results_the_other_none():
    st, key, seen = env()
    session, _ = initialize(st, key)
    text = "my SSN is %s (%s)" % (SSN, CANARY)
    masked = "my SSN is <US_SSN> (%s)" % CANARY
    msg, echo_own = tool(st, key, session, "own__echo", {"text": text}, id=1)
    assert msg["result"]["content"][0]["text"] == "own: " + masked, msg
    msg, leak_own = tool(st, key, session, "own__leak", {"kind": "ssn"}, id=2)
    assert SSN not in json.dumps(msg) and "<US_SSN>" in json.dumps(msg), msg
    msg, fail_own = tool(st, key, session, "own__fail", {}, id=3)
    assert msg["result"]["isError"] is True, msg
    msg, refused_own = tool(st, key, session, "own__hang", {"text": CANARY}, id=4)
    assert msg["error"]["code"] == -32003, msg
    msg, echo_other = tool(st, key, session, "other__echo", {"text": text}, id=5)
    assert msg["result"]["content"][0]["text"] == "other: " + masked, msg
    got = rows(st, [echo_own, leak_own, fail_own, refused_own, echo_other])

    # own: the arguments the server received (it saw them masked too), the result the client got
    server_saw = [c for c in seen("own") if c["id"] == 1][-1]["params"]["arguments"]
    assert got[echo_own] == ["own", "echo", "ok", server_saw, {
        "content": [{"type": "text", "text": "own: " + masked}]}], got[echo_own]
    assert server_saw == {"text": masked}
    _, _, code, arguments, result = got[leak_own]
    assert (code, arguments) == ("ok", {"kind": "ssn"}), got[leak_own]
    assert result["content"][0]["text"] == "result: the customer's SSN is <US_SSN>", result
    assert "<US_SSN>" in json.dumps(result["structuredContent"]), result
    assert got[fail_own][2:] == ["error", {}, {
        "isError": True, "content": [{"type": "text", "text": "it failed"}]}], got[fail_own]
    # refused by the gate: no arguments (the server never got them), the error the client got
    _, _, code, arguments, result = got[refused_own]
    assert (code, arguments, result["code"]) == ("refused", None, -32003), got[refused_own]
    assert 'tool "hang"' in result["message"]
    # other: no payloads
    assert got[echo_other] == ["other", "echo", "ok", None, None], got[echo_other]
    # the SSN is nowhere in the audit table
    assert st.psql("select count(*) from tollgate.mcp_calls where arguments::text like "
                   "'%%%s%%' or result::text like '%%%s%%'" % (SSN, SSN)) == [["0"]]


def test_a_result_over_the_cap_is_a_marker_with_its_size():
    st, key, _ = env()
    session, _ = initialize(st, key)
    # the arguments' JSON ({"text":"..."}) fits the cap; the echoed result does not
    text = CANARY + "x" * (CAP - 11 - len(CANARY))
    assert len(json.dumps({"text": text}, separators=(",", ":"))) == CAP
    msg, rid = tool(st, key, session, "own__echo", {"text": text}, id=7)
    assert msg["result"]["content"][0]["text"] == "own: " + text
    _, _, code, arguments, result = rows(st, [rid])[rid]
    assert (code, arguments) == ("ok", {"text": text})
    size = len(json.dumps(msg["result"], separators=(",", ":")))
    assert result == {"truncated": True, "bytes": size}, result
    assert size > CAP
    # a bigger one: both markers
    msg, rid = tool(st, key, session, "own__echo", {"text": "y" * 5000}, id=8)
    _, _, code, arguments, result = rows(st, [rid])[rid]
    assert arguments == {"truncated": True, "bytes": 5011}, arguments
    assert result["truncated"] is True and result["bytes"] > 5000, result


def test_the_payloads_reach_no_log_metric_or_report():
    st, key, _ = env()
    session, _ = initialize(st, key)
    _, rid = tool(st, key, session, "own__echo", {"text": "log check " + CANARY}, id=9)
    rows(st, [rid])
    for name, text in (("worker log", st.logs()), ("worker stderr", st.worker_stderr())):
        assert CANARY not in text, name
        assert "my SSN is" not in text, name
    status, _, metrics = st.request("GET", "/metrics")
    assert status == 200 and CANARY.encode() not in metrics
    report = st.ctl("report", "--by", "tool")
    assert CANARY not in report and "echo" in report, report
