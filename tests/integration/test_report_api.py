"""The admin API's reports (issue 14): GET /admin/reports/* answers what
`tollgatectl report --report NAME` prints for the same parameters, JSON and
CSV alike; bad input gets a 400 naming the parameter and changes nothing; a
consumer key gets 401; usage.ttft_ms is stored for a streamed request and
null for one that is not."""

import json
import os
import urllib.parse

from harness import stack
from test_admin import ADMIN_CONFIG, ADMIN_KEY, uniq

HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5"


def report_stack():
    os.environ["TOLLGATE_ADMIN_KEY"] = ADMIN_KEY
    return stack(tag="admin", extra_config=ADMIN_CONFIG)


def get(s, path, key=ADMIN_KEY):
    status, headers, data = s.request("GET", path, None, {"x-api-key": key} if key else {})
    return status, headers, data.decode()


def seeded():
    s = report_stack()
    group = uniq("rpt-group")
    key = s.key(group=group, user=uniq("rpt-user"))
    for stream in (False, True, True):
        status, _, body = s.messages(key, model=HAIKU, stream=stream,
                                     directive={"usage": {"input_tokens": 1234,
                                                          "output_tokens": 321}})
        assert status == 200, body
    today = s.psql("select (now() at time zone 'UTC')::date")[0][0]
    prefix = s.psql("select prefix from tollgate.api_keys where group_id = '%s'" % group)[0][0]
    return s, group, prefix, today


def cases(group, prefix, today):
    span = {"from": today, "to": today}
    out = [("chargeback", dict(span, by=by)) for by in ("group", "user", "key", "model",
                                                        "provider")]
    out += [("chargeback", dict(span, by=by)) for by in ("group,model", "user,model", "tool")]
    out += [("chargeback", dict(span, by=by, group=group)) for by in ("user", "model", "tool",
                                                                      "user,model")]
    out += [("series", dict(span, subject="org", bucket="day")),
            ("series", dict(span, subject="group", id=group, bucket="hour")),
            ("series", dict(span, subject="key", id=prefix, bucket="day")),
            ("quotas", {}), ("keys", {}), ("denials", span), ("models", span)]
    return out


def ctl_args(report, params):
    args = ["report", "--report", report]
    for name, value in params.items():
        args += ["--" + name, value]
    return args


def test_each_endpoint_equals_tollgatectl_in_json_and_csv():
    s, group, prefix, today = seeded()
    for report, params in cases(group, prefix, today):
        for fmt in ("json", "csv"):
            query = urllib.parse.urlencode(dict(params, format=fmt))
            status, headers, text = get(s, "/admin/reports/%s?%s" % (report, query))
            assert status == 200, (report, params, text[:300])
            expected = s.ctl(*ctl_args(report, params), "--format", fmt)
            assert text == expected, (report, fmt, text[:500], expected[:500])
            if fmt == "json":
                doc = json.loads(text)
                assert isinstance(doc["rows"], list)
            else:
                assert "text/csv" in {k.lower(): v for k, v in headers.items()}.get(
                    "content-type", ""), headers
    # the figures are the usage rows'
    doc = json.loads(get(s, "/admin/reports/chargeback?by=group&from=%s&to=%s"
                            % (today, today))[2])
    row = [r for r in doc["rows"] if r["group_id"] == group][0]
    micros = int(s.psql("select sum(cost_micros) from tollgate.usage where group_id = '%s'"
                        % group)[0][0])
    assert row["requests"] == 3 and row["cost_micros"] == micros and row["input_tokens"] == 3 * 1234
    models = json.loads(get(s, "/admin/reports/models?from=%s&to=%s" % (today, today))[2])
    haiku = [r for r in models["rows"] if r["model"] == HAIKU][0]
    assert haiku["ttft_p50_ms"] is not None and haiku["latency_p50_ms"] is not None
    keys = get(s, "/admin/reports/keys")[2]
    assert "key_hash" not in keys and prefix in keys
    # tollgatectl report --by model --with-latency is the models report
    assert s.ctl("report", "--by", "model", "--with-latency", "--from", today, "--to", today,
                 "--format", "json") == s.ctl(*ctl_args("models", {"from": today, "to": today}),
                                              "--format", "json")


def counts(s):
    return s.psql("select (select count(*) from tollgate.audit_log),"
                  " (select count(*) from tollgate.usage), (select count(*) from tollgate.api_keys),"
                  " (select count(*) from tollgate.quotas), (select count(*) from tollgate.denials)")


BAD = [
    ("chargeback?by=team", "by"),
    ("chargeback?by=group&from=2026-03-05&to=2026-03-01", "from"),
    ("chargeback?from=2024-01-01&to=2026-03-01", "to"),
    ("chargeback?from=2026-02-30&to=2026-03-01", "from"),
    ("chargeback?from=yesterday", "from"),
    ("chargeback?to=2026-03-01", "to"),
    ("chargeback?by=group%27%3B%20drop%20table%20tollgate.usage%3B--", "by"),
    ("chargeback?from=2026-03-01%27%20or%201%3D1--&to=2026-03-02", "from"),
    ("chargeback?limit=5", "limit"),
    ("chargeback?by=group&by=user", "by"),
    ("chargeback?format=xml", "format"),
    ("series?subject=team&id=x", "subject"),
    ("series?subject=group", "id"),
    ("series?subject=org&id=x", "id"),
    ("series?subject=group&id=a%27b", "id"),
    ("series?subject=key&id=tg_nosuchkey&from=2026-03-01&to=2026-03-02", "id"),
    ("series?bucket=minute", "bucket"),
    ("series?bucket=hour&from=2026-01-01&to=2026-03-01", "to"),
    ("quotas?from=2026-03-01", "from"),
    ("keys?secret=1", "secret"),
    ("denials?from=2026-03-02&to=2026-03-01", "from"),
    ("models?by=model", "by"),
    ("chargeback?by=group,group", "by"),
    ("chargeback?by=group,tool", "by"),
    ("chargeback?by=tool,group", "by"),
    ("chargeback?by=group,model,user", "by"),
    ("chargeback?by=group,", "by"),
    ("chargeback?by=group%2Cteam", "by"),
    ("chargeback?group=a%27b", "group"),
    ("chargeback?group=", "group"),
    ("chargeback?by=user&group=x&group=y", "group"),
    ("chargeback?by=user&group=x%27%3B%20drop%20table%20tollgate.usage%3B--", "group"),
    ("chargeback?by=tool&from=2026-03-05&to=2026-03-01", "from"),
    ("chargeback?by=user,model&from=2024-01-01&to=2026-03-01", "to"),
    ("series?subject=org&group=x", "group"),
    ("models?group=x", "group"),
]


def test_bad_input_gets_400_naming_the_parameter_and_changes_nothing():
    s, _, _, _ = seeded()
    before = counts(s)
    for path, param in BAD:
        status, _, text = get(s, "/admin/reports/" + path)
        assert status == 400, (path, status, text[:300])
        message = json.loads(text)["error"]["message"]
        assert '"%s"' % param in message, (path, message)
    assert get(s, "/admin/reports/nosuch")[0] == 404
    assert s.request("POST", "/admin/reports/keys", {}, {"x-api-key": ADMIN_KEY})[0] == 405
    assert counts(s) == before


def test_consumer_key_and_no_key_get_401():
    s, _, _, _ = seeded()
    consumer = s.key(group=uniq("rpt-c"), user=uniq("rpt-c"))
    for key in (consumer, None):
        for path in ("chargeback", "keys", "models", "series"):
            assert get(s, "/admin/reports/" + path, key=key)[0] == 401, (path, key is None)


def test_ttft_is_stored_for_a_stream_and_null_otherwise():
    s, group, _, _ = seeded()
    rows = s.psql("select stream, ttft_ms, latency_ms from tollgate.usage where group_id = '%s'"
                  " order by ts" % group)
    assert len(rows) == 3
    for stream, ttft, latency in rows:
        if stream == "t":
            assert ttft not in ("", None) and 0 <= int(ttft) <= int(latency), rows
        else:
            assert ttft in ("", None), rows


def test_one_team_and_two_groupings_to_the_micro_dollar():
    """A user spending in two teams: each team's chargeback holds that team's
    spend only; by=group,model splits each team by model; by=tool lists the
    MCP calls (of one team with group=). JSON equals tollgatectl's."""
    s = report_stack()
    teams = [uniq("rpt-two-a"), uniq("rpt-two-b")]
    user = uniq("rpt-two-user")
    calls = {teams[0]: [(HAIKU, 1000, 100), (SONNET, 2000, 300)], teams[1]: [(HAIKU, 700, 70)]}
    for team, made in calls.items():
        key = s.key(group=team, user=user)
        for model, inp, out in made:
            status, _, body = s.messages(key, model=model, directive={
                "usage": {"input_tokens": inp, "output_tokens": out}})
            assert status == 200, body
    today = s.psql("select (now() at time zone 'UTC')::date")[0][0]
    span = "from=%s&to=%s" % (today, today)

    def doc(query):
        status, _, text = get(s, "/admin/reports/chargeback?" + query)
        assert status == 200, (query, text[:300])
        return json.loads(text)

    def micros(where):
        return int(s.psql("select coalesce(sum(cost_micros), 0) from tollgate.usage where "
                          + where)[0][0])

    for team in teams:
        users = doc("by=user&group=%s&%s" % (team, span))
        assert users["group"] == team and users["by"] == "user"
        assert [r["user_id"] for r in users["rows"]] == [user], users
        row = users["rows"][0]
        mine = micros("user_id = '%s' and group_id = '%s'" % (user, team))
        assert row["cost_micros"] == mine == users["total"]["cost_micros"] > 0
        assert row["cost_micros"] < micros("user_id = '%s'" % user)  # not all their spend
        assert row["requests"] == len(calls[team])
        models = doc("by=model&group=%s&%s" % (team, span))
        assert {r["model"]: r["cost_micros"] for r in models["rows"]} == {
            m: micros("group_id = '%s' and model = '%s'" % (team, m)) for m, _, _ in calls[team]}
        assert models == json.loads(s.ctl("report", "--by", "model", "--group", team, "--from",
                                          today, "--to", today, "--format", "json"))
    pairs = doc("by=group,model&" + span)
    assert pairs["by"] == "group,model" and "group" not in pairs
    got = {(r["group_id"], r["model"]): r["cost_micros"] for r in pairs["rows"]
           if r["group_id"] in teams}
    assert got == {(t, m): micros("group_id = '%s' and model = '%s'" % (t, m))
                   for t in teams for m, _, _ in calls[t]}, got
    assert pairs["total"]["cost_micros"] == sum(r["cost_micros"] for r in pairs["rows"])
    assert pairs["total"]["cost_micros"] == doc("by=group&" + span)["total"]["cost_micros"]
    text = get(s, "/admin/reports/chargeback?by=user,model&group=%s&%s&format=csv"
               % (teams[0], span))[2]
    assert text.splitlines()[0].startswith("user_id,model,requests,"), text[:200]
    # by tool: the MCP calls, of one team with group=
    srv = uniq("rpt-srv")
    s.psql("insert into tollgate.mcp_calls (call_id, request_id, ts, user_id, group_id, server,"
           " tool, code, duration_us, bytes_in, bytes_out) select gen_random_uuid(),"
           " gen_random_uuid(), now(), '%s', g, '%s', t, c, d, 10, 20 from (values"
           " ('%s', 'search', 'ok', 1000), ('%s', 'search', 'error', 3000),"
           " ('%s', 'fetch', 'ok', 700)) v(g, t, c, d)"
           % (user, srv, teams[0], teams[0], teams[1]))
    tools = doc("by=tool&group=%s&%s" % (teams[0], span))
    assert tools["rows"] == [{"server": srv, "tool": "search", "calls": 2, "errors": 1,
                              "bytes_in": 20, "bytes_out": 40, "duration_us": 4000,
                              "mean_us": 2000}], tools
    assert tools["total"] == {"calls": 2, "errors": 1, "bytes_in": 20, "bytes_out": 40,
                              "duration_us": 4000, "mean_us": 2000}, tools["total"]
    every = doc("by=tool&" + span)
    assert {r["tool"] for r in every["rows"] if r["server"] == srv} == {"search", "fetch"}
    assert every["total"]["mean_us"] == every["total"]["duration_us"] // every["total"]["calls"]
    assert every == json.loads(s.ctl("report", "--by", "tool", "--from", today, "--to", today,
                                     "--format", "json"))
    # tollgatectl refuses a bad --group and --group outside the chargeback
    for args in (("--by", "user", "--group", "a'b"), ("--report", "series", "--group", "x"),
                 ("--by", "group,group")):
        try:
            s.ctl("report", *args)
        except RuntimeError as e:
            assert "--group" in str(e) or "--by" in str(e), e
        else:
            raise AssertionError(args)
    # the table by two groupings, and one team's table
    table = s.ctl("report", "--by", "group,model", "--from", today, "--to", today)
    assert table.splitlines()[0].split()[:3] == ["group_id", "model", "requests"], table[:300]
    tool_table = s.ctl("report", "--by", "tool", "--group", teams[0], "--from", today, "--to",
                       today)
    assert srv in tool_table and "fetch" not in tool_table, tool_table
