"""MCP access control, limits and audit (issue 13, items 4 and 5) on the real stack:
tollgatectl mcp grant/revoke/grants and mcp limit set/delete/list, the admin API's
/admin/mcp/grants and /admin/mcp/limits (round trips, the 400 matrix naming the
field, one audit row per change naming the actor, nothing written by a refusal),
tool-call admission under 200 concurrent calls (pgbench sessions against
tollgate.mcp_admit: a quota of N admits exactly N, a bucket of B exactly B), and
`report --by tool` over audit rows written through the gateway's own record path
(tests/tools/mcp-record: tg_mcp_access_record → the audit file → the flush).
"""

import csv
import hashlib
import io
import json
import os
import re
import secrets
import tempfile
from pathlib import Path

from harness import PGBIN, SANITIZER_RE, base_env, build_dir, error_body, run, stack

ADMIN_KEY = "tg-admin-" + secrets.token_urlsafe(30)
ACTOR = "admin-key:" + hashlib.sha256(ADMIN_KEY.encode()).hexdigest()[:8]
CONFIG = {"admin": {"keys": ["$TOLLGATE_MCPACL_ADMIN_KEY"]}}


def acl_stack():
    os.environ["TOLLGATE_MCPACL_ADMIN_KEY"] = ADMIN_KEY
    return stack(tag="mcpacl", extra_config=CONFIG)


def uniq(name):
    return "%s-%s" % (name, secrets.token_hex(3))


def audit_mark(s):
    return int(s.psql("select coalesce(max(id), 0) from tollgate.audit_log")[0][0])


def audit_since(s, mark):
    rows = s.psql("select action, subject, actor, coalesce(before::text, 'null'),"
                  " coalesce(after::text, 'null') from tollgate.audit_log"
                  " where id > %d order by id" % mark)
    return [(a, sub, actor, json.loads(b), json.loads(af)) for a, sub, actor, b, af in rows]


def one_audit(s, mark, action, subject, actor_prefix="cli:"):
    rows = audit_since(s, mark)
    assert [(r[0], r[1]) for r in rows] == [(action, subject)], rows
    assert rows[0][2].startswith(actor_prefix), rows[0]
    return rows[0]


def ctl_error(s, *args):
    """tollgatectl's stderr for a command that must fail; it must change nothing."""
    mark = audit_mark(s)
    try:
        s.ctl(*args)
    except RuntimeError as e:
        assert re.match(r"tollgatectl exited [12]: ", str(e)), e
        assert "tollgatectl: error: " in str(e) and not SANITIZER_RE.search(str(e)), e
        assert audit_since(s, mark) == [], "a refused command wrote an audit row"
        return str(e)
    raise AssertionError("tollgatectl %s succeeded" % " ".join(args))


def admit(s, server, tool, key_id="null", user="u", group="g"):
    return tuple(s.psql("select status, coalesce(denied_subject, '-') from tollgate.mcp_admit("
                        "%s, '%s', '%s', '%s', '%s')" % (key_id, user, group, server, tool))[0])


def key_id(s, prefix):
    return s.psql("select id from tollgate.api_keys where prefix = '%s'" % prefix)[0][0]


# ---- tollgatectl mcp grant, revoke, grants -------------------------------------------


def test_ctl_mcp_grant_revoke_and_list_formats():
    s = acl_stack()
    role = uniq("mcprole")
    args = '{"repo": {"enum": ["acme/web"]}}'
    mark = audit_mark(s)
    out = s.ctl("mcp", "grant", "--role", role, "--server", "github", "--tools",
                "create_*,list_issues", "--args", args)
    assert 'mcp grant: role "%s" server "github" tools create_*,list_issues' % role in out, out
    _, _, _, before, after = one_audit(s, mark, "mcp_grant.set", "role:" + role)
    assert before is None
    assert after["tools"] == ["create_*", "list_issues"] and after["args"] == json.loads(args)
    # the same grant again changes nothing and writes no audit row
    mark = audit_mark(s)
    s.ctl("mcp", "grant", "--role", role, "--server", "github", "--tools",
          "create_*,list_issues", "--args", args)
    assert audit_since(s, mark) == []

    key = s.key(group=uniq("mcpg"), user=uniq("mcpu"))
    prefix = key[:11]
    mark = audit_mark(s)
    s.ctl("mcp", "grant", "--key", prefix, "--server", "docs*", "--tools", "*")
    one_audit(s, mark, "mcp_grant.set", "key:" + prefix)
    # the gateway's identify sees the key's grant at once
    status, grants = s.psql("select status, grants::text from tollgate.mcp_identify('%s'::bytea,"
                            " null, null, null, false, null, null, '/mcp')"
                            % s.key_hash(key))[0]
    assert status == "ok" and json.loads(grants) == [
        {"server": "docs*", "tools": ["*"], "args": None}], grants

    table = s.ctl("mcp", "grants")
    assert re.search(r"^\s*\d+\s+role\s+%s\s+github\s+create_\*,list_issues\s+\{" % re.escape(role),
                     table, re.M), table
    assert re.search(r"^\s*\d+\s+key\s+%s\s+docs\*\s+\*\s+-\s" % re.escape(prefix), table, re.M)
    only = s.ctl("mcp", "grants", "--role", role)
    assert role in only and prefix not in only
    lines = list(csv.reader(io.StringIO(s.ctl("mcp", "grants", "--role", role, "--format",
                                              "csv"))))
    assert lines[0] == ["id", "kind", "subject", "server", "tools", "args", "updated"], lines
    assert len(lines) == 2 and lines[1][1:5] == ["role", role, "github", "create_*,list_issues"]
    assert json.loads(lines[1][5]) == json.loads(args)
    doc = json.loads(s.ctl("mcp", "grants", "--key", prefix, "--format", "json"))
    assert [(g["subject_kind"], g["subject"], g["server"], g["tools"], g["args"])
            for g in doc] == [("key", prefix, "docs*", ["*"], None)], doc

    mark = audit_mark(s)
    out = s.ctl("mcp", "revoke", "--role", role, "--server", "github")
    assert "1 grant revoked" in out, out
    _, _, _, before, after = one_audit(s, mark, "mcp_grant.revoke", "role:" + role)
    assert before["tools"] == ["create_*", "list_issues"] and after is None
    assert "no MCP grant" in ctl_error(s, "mcp", "revoke", "--role", role, "--server", "github")
    assert json.loads(s.ctl("mcp", "grants", "--role", role, "--format", "json")) == []
    # revoking the key's only grant leaves it without MCP access
    s.ctl("mcp", "revoke", "--key", prefix, "--server", "docs*", "--tools", "*")
    assert s.psql("select status from tollgate.mcp_identify('%s'::bytea, null, null, null,"
                  " false, null, null, '/mcp')" % s.key_hash(key)) == [["no_mcp_access"]]


def test_ctl_mcp_grant_argument_errors():
    s = acl_stack()
    g = ("--server", "github", "--tools", "a")
    assert "name a subject" in ctl_error(s, "mcp", "grant", *g)
    assert "name one subject" in ctl_error(s, "mcp", "grant", "--role", "r", "--group", "x", *g)
    assert "mcp grant needs --server" in ctl_error(s, "mcp", "grant", "--role", "r", "--tools",
                                                   "a")
    assert "--tools is required" in ctl_error(s, "mcp", "grant", "--role", "r", "--server", "x")
    assert '--tools "a,,b" has an empty entry' in ctl_error(
        s, "mcp", "grant", "--role", "r", "--server", "x", "--tools", "a,,b")
    assert "--args is not JSON" in ctl_error(s, "mcp", "grant", "--role", "r", *g, "--args",
                                             "nope")
    assert "--args must be a JSON object" in ctl_error(s, "mcp", "grant", "--role", "r", *g,
                                                       "--args", "[1]")
    assert 'argument "q": "enum" must be a non-empty array' in ctl_error(
        s, "mcp", "grant", "--role", "r", *g, "--args", '{"q": {"enum": []}}')
    assert "invalid regular expression" in ctl_error(
        s, "mcp", "grant", "--role", "r", *g, "--args", '{"q": {"pattern": "("}}')
    assert 'no key "tg-NoSuchKy"' in ctl_error(s, "mcp", "grant", "--key", "tg-NoSuchKy", *g)
    assert "is not a valid identifier" in ctl_error(s, "mcp", "grant", "--role", "bad id", *g)
    assert 'unexpected argument "--tool"' in ctl_error(s, "mcp", "grant", "--role", "r",
                                                       "--server", "x", "--tool", "a")
    assert "--format must be table, csv or json" in ctl_error(s, "mcp", "grants", "--format",
                                                              "xml")


# ---- tollgatectl mcp limit set, delete, list -------------------------------------------


def test_ctl_mcp_limits_apply_and_refusals_name_the_key_prefix():
    s = acl_stack()
    srv = uniq("srv")
    mark = audit_mark(s)
    out = s.ctl("mcp", "limit", "set", "--per", "tool", "--subject", srv + "/search",
                "--requests", "2", "--window", "day")
    m = re.search(r'mcp limit set: id (\d+), per tool "%s/search": 2 requests per day'
                  % re.escape(srv), out)
    assert m, out
    limit_id = m.group(1)
    one_audit(s, mark, "mcp_limit.set", "mcp_limit:tool:%s/search" % srv)
    assert [admit(s, srv, "search") for _ in range(3)] == [
        ("ok", "-"), ("ok", "-"), ("quota_exceeded", 'tool "%s/search"' % srv)]
    assert admit(s, srv, "other") == ("ok", "-")       # another tool of the server: no limit

    # a refusal leaves no counter behind (a quota of 0 refuses the first call)
    s.ctl("mcp", "limit", "set", "--per", "tool", "--subject", srv + "/never", "--requests", "0",
          "--window", "total")
    assert admit(s, srv, "never")[0] == "quota_exceeded"
    assert s.psql("select count(*) from tollgate.mcp_quota_counters"
                  " where subject = '%s/never'" % srv) == [["0"]]

    key = s.key(group=uniq("limg"), user=uniq("limu"))
    prefix = key[:11]
    s.ctl("mcp", "limit", "set", "--per", "key", "--subject", prefix, "--bucket", "1",
          "--refill", "1", "--every-ms", "3600000")
    kid = key_id(s, prefix)
    assert admit(s, srv, "other", key_id=kid) == ("ok", "-")
    assert admit(s, srv, "other", key_id=kid) == ("rate_limited", 'key "%s"' % prefix)

    table = s.ctl("mcp", "limit", "list")
    assert re.search(r"^\s*%s\s+tool\s+%s/search\s+quota\s+day\s+2\s" % (limit_id, re.escape(srv)),
                     table, re.M), table
    assert re.search(r"\bkey\s+%s\s+bucket\s+-\s+-\s+1\s+1\s+3600000$" % re.escape(prefix),
                     table, re.M), table
    doc = {str(r["id"]): r for r in json.loads(s.ctl("mcp", "limit", "list", "--format", "json"))}
    assert doc[limit_id]["limit_value"] == 2 and doc[limit_id]["window"] == "day", doc[limit_id]
    lines = list(csv.reader(io.StringIO(s.ctl("mcp", "limit", "list", "--format", "csv"))))
    assert lines[0] == ["id", "per", "subject", "kind", "window", "limit", "max_tokens",
                        "tokens_per_fill", "fill_interval_ms"], lines[0]
    assert [limit_id, "tool", srv + "/search", "quota", "day", "2", "", "", ""] in lines

    mark = audit_mark(s)
    assert s.ctl("mcp", "limit", "delete", limit_id).strip() == "mcp limit delete: %s" % limit_id
    _, _, _, before, after = one_audit(s, mark, "mcp_limit.delete",
                                       "mcp_limit:tool:%s/search" % srv)
    assert before["limit_value"] == 2 and after is None
    assert admit(s, srv, "search") == ("ok", "-")      # the limit is gone
    assert "no MCP limit %s" % limit_id in ctl_error(s, "mcp", "limit", "delete", limit_id)


def test_ctl_mcp_limit_argument_errors():
    s = acl_stack()
    assert "mcp limit set needs --per" in ctl_error(s, "mcp", "limit", "set", "--requests", "1",
                                                    "--window", "day")
    assert '--per must be key, user, group, server or tool, not "team"' in ctl_error(
        s, "mcp", "limit", "set", "--per", "team", "--requests", "1", "--window", "day")
    assert '--requests must be a whole number from 0' in ctl_error(
        s, "mcp", "limit", "set", "--per", "tool", "--requests", "x", "--window", "day")
    assert "not both" in ctl_error(s, "mcp", "limit", "set", "--per", "tool", "--requests", "1",
                                   "--window", "day", "--bucket", "3")
    assert "not both" in ctl_error(s, "mcp", "limit", "set", "--per", "tool")
    assert '--window must be minute, hour, day, month or total, not "week"' in ctl_error(
        s, "mcp", "limit", "set", "--per", "tool", "--requests", "1", "--window", "week")
    assert "--requests needs --window" in ctl_error(s, "mcp", "limit", "set", "--per", "tool",
                                                    "--requests", "1")
    assert "--window goes with --requests" in ctl_error(
        s, "mcp", "limit", "set", "--per", "tool", "--bucket", "3", "--window", "day")
    assert "--bucket must be a whole number from 1" in ctl_error(
        s, "mcp", "limit", "set", "--per", "tool", "--bucket", "0")
    assert "--refill and --every-ms go with --bucket" in ctl_error(
        s, "mcp", "limit", "set", "--per", "tool", "--requests", "1", "--window", "day",
        "--refill", "2")
    assert 'no key "tg-NoSuchKy"' in ctl_error(s, "mcp", "limit", "set", "--per", "key",
                                               "--subject", "tg-NoSuchKy", "--bucket", "1")
    assert "mcp limit delete needs ID" in ctl_error(s, "mcp", "limit", "delete")
    assert 'ID must be a limit\'s id' in ctl_error(s, "mcp", "limit", "delete", "abc")


# ---- the admin API ---------------------------------------------------------------


def admin(s, method, path, body=None, key=ADMIN_KEY):
    headers = {"x-api-key": key} if key else {}
    status, hdrs, data = s.request(method, path, body, headers)
    text = data.decode()
    assert ADMIN_KEY not in text
    return status, hdrs, json.loads(text) if text else None


def bad(s, method, path, body):
    """The message of a 400 that must name its field; nothing may be written."""
    mark = audit_mark(s)
    status, _, doc = admin(s, method, path, body)
    assert status == 400, (status, body, doc)
    assert audit_since(s, mark) == [], body
    return error_body(json.dumps(doc).encode())[1]


def test_admin_mcp_grants_round_trip_and_audit():
    s = acl_stack()
    role = uniq("arole")
    grant = {"subject_kind": "role", "subject": role, "server": "github",
             "tools": ["create_issue", "list_*"], "args": {"repo": {"pattern": "^acme/.*$"}}}
    mark = audit_mark(s)
    status, _, doc = admin(s, "PUT", "/admin/mcp/grants", grant)
    assert status == 200, doc
    assert (doc["subject_kind"], doc["subject"], doc["server"], doc["tools"], doc["args"]) == (
        "role", role, "github", grant["tools"], grant["args"]), doc
    _, _, actor, before, after = one_audit(s, mark, "mcp_grant.set", "role:" + role,
                                           actor_prefix=ACTOR)
    assert actor == ACTOR and before is None and after["id"] == doc["id"]

    key = s.key(group=uniq("ag"), user=uniq("au"))
    status, _, kdoc = admin(s, "PUT", "/admin/mcp/grants", {
        "subject_kind": "key", "subject": key[:11], "server": "*", "tools": ["search"]})
    assert status == 200 and kdoc["subject"] == key[:11] and kdoc["args"] is None, kdoc
    assert key not in json.dumps(kdoc)

    status, _, listed = admin(s, "GET", "/admin/mcp/grants")
    assert status == 200
    mine = {g["id"]: g for g in listed["grants"]}
    assert mine[doc["id"]]["subject"] == role and mine[kdoc["id"]]["subject"] == key[:11]
    assert mine[kdoc["id"]]["tools"] == ["search"]

    mark = audit_mark(s)
    status, _, out = admin(s, "DELETE", "/admin/mcp/grants", {
        "subject_kind": "role", "subject": role, "server": "github", "tools": grant["tools"]})
    assert (status, out) == (200, {"revoked": 1}), out
    one_audit(s, mark, "mcp_grant.revoke", "role:" + role, actor_prefix=ACTOR)
    status, _, out = admin(s, "DELETE", "/admin/mcp/grants", {
        "subject_kind": "role", "subject": role, "server": "github"})
    assert status == 404, out
    assert error_body(json.dumps(out).encode())[1] == \
        'no MCP grant of role "%s" on server "github"' % role

    # who may call it, which methods
    assert admin(s, "GET", "/admin/mcp/grants", key=None)[0] == 401
    assert admin(s, "GET", "/admin/mcp/grants", key=key)[0] == 401    # a consumer key
    status, hdrs, _ = admin(s, "POST", "/admin/mcp/grants", {})
    assert status == 405 and hdrs.get("allow") == "GET, PUT, DELETE", hdrs
    assert admin(s, "GET", "/admin/mcp/nothing")[0] == 404
    assert admin(s, "GET", "/admin/mcp")[0] == 404


def test_admin_mcp_grants_bad_input_names_the_field():
    s = acl_stack()
    ok = {"subject_kind": "group", "subject": uniq("bg"), "server": "github", "tools": ["a"]}

    def but(**change):
        body = dict(ok)
        for k, v in change.items():
            if v is ...:
                body.pop(k)
            else:
                body[k] = v
        return body

    cases = [
        (but(subject_kind=...), "subject_kind", "is required"),
        (but(subject_kind="team"), "subject_kind", 'must be "group", "role" or "key"'),
        (but(subject=...), "subject", "is required"),
        (but(subject="bad id"), "subject", "must be an identifier"),
        (but(subject_kind="key", subject="tg-NoSuchKy"), "subject", 'no key "tg-NoSuchKy"'),
        (but(server=...), "server", "is required"),
        (but(server=""), "server", "must be a name or glob"),
        (but(server=7), "server", "must be a string"),
        (but(server="x" * 129), "server", "must be a name or glob"),
        (but(tools=...), "tools", "is required"),
        (but(tools=[]), "tools", "must be a non-empty array"),
        (but(tools=["a", ""]), "tools", "must be a non-empty array"),
        (but(tools="a"), "tools", "must be a non-empty array"),
        (but(tools=[1]), "tools", "must be a non-empty array"),
        (but(tools=["t" * 129]), "tools", "must be a non-empty array"),
        (but(args=[]), "args", "must be an object or null"),
        (but(args={"q": 1}), "args", 'argument "q": expected'),
        (but(args={"q": {"enum": []}}), "args", 'argument "q": expected'),
        (but(args={"q": {"enum": [1], "pattern": "x"}}), "args", 'argument "q": expected'),
        (but(args={"q": {"pattern": "("}}), "args", "invalid regular expression"),
        (but(toolz=["a"]), "toolz", "unknown field"),
    ]
    for body, field, problem in cases:
        message = bad(s, "PUT", "/admin/mcp/grants", body)
        assert message.startswith('"%s": ' % field) and problem in message, (body, message)
    message = bad(s, "DELETE", "/admin/mcp/grants", but(server=...))
    assert message == '"server": is required', message
    message = bad(s, "DELETE", "/admin/mcp/grants", but(args=None))
    assert message == '"args": unknown field', message
    assert "JSON" in bad(s, "PUT", "/admin/mcp/grants", "{not json")
    assert s.psql("select count(*) from tollgate.mcp_grants where subject_id = '%s'"
                  % ok["subject"]) == [["0"]]


def test_admin_mcp_limits_round_trip_and_bad_input():
    s = acl_stack()
    srv = uniq("asrv")
    mark = audit_mark(s)
    status, _, doc = admin(s, "PUT", "/admin/mcp/limits",
                           {"per": "server", "subject": srv, "window": "minute", "limit": 1})
    assert status == 200 and doc["kind"] == "quota" and doc["limit_value"] == 1, doc
    one_audit(s, mark, "mcp_limit.set", "mcp_limit:server:%s" % srv, actor_prefix=ACTOR)
    assert [admit(s, srv, "x")[0], admit(s, srv, "y")[0]] == ["ok", "quota_exceeded"]
    status, _, listed = admin(s, "GET", "/admin/mcp/limits")
    assert status == 200 and doc["id"] in [r["id"] for r in listed["limits"]]
    mark = audit_mark(s)
    status, _, out = admin(s, "DELETE", "/admin/mcp/limits/%d" % doc["id"])
    assert (status, out) == (200, {"id": doc["id"], "deleted": True}), out
    one_audit(s, mark, "mcp_limit.delete", "mcp_limit:server:%s" % srv, actor_prefix=ACTOR)
    assert admin(s, "DELETE", "/admin/mcp/limits/%d" % doc["id"])[0] == 404
    assert admin(s, "DELETE", "/admin/mcp/limits/abc")[0] == 404
    status, hdrs, _ = admin(s, "DELETE", "/admin/mcp/limits", {})
    assert status == 405 and hdrs.get("allow") == "GET, PUT"
    status, _, b = admin(s, "PUT", "/admin/mcp/limits",
                         {"per": "tool", "max_tokens": 5, "tokens_per_fill": 2,
                          "fill_interval_ms": 500})
    assert status == 200 and (b["kind"], b["subject"], b["max_tokens"]) == ("bucket", None, 5), b
    admin(s, "DELETE", "/admin/mcp/limits/%d" % b["id"])

    cases = [
        ({"subject": srv, "window": "day", "limit": 1}, "per", "is required"),
        ({"per": "team", "window": "day", "limit": 1}, "per", "must be"),
        ({"per": "tool", "window": "day"}, "limit", "is required"),
        ({"per": "tool", "window": "day", "limit": -1}, "limit", "must be an integer"),
        ({"per": "tool", "limit": 1}, "window", "is required"),
        ({"per": "tool", "window": "week", "limit": 1}, "window", "must be"),
        ({"per": "tool", "window": "day", "limit": 1, "max_tokens": 3}, "max_tokens",
         "goes with a bucket"),
        ({"per": "tool", "window": "day", "limit": 1, "tokens_per_fill": 3}, "tokens_per_fill",
         "goes with"),
        ({"per": "tool", "max_tokens": 0}, "max_tokens", "must be an integer from 1"),
        ({"per": "tool", "max_tokens": 2, "fill_interval_ms": 0}, "fill_interval_ms",
         "must be an integer from 1"),
        ({"per": "tool", "max_tokens": 2, "window": "day"}, "window", "goes with"),
        ({"per": "tool", "subject": "", "max_tokens": 2}, "subject", "must be"),
        ({"per": "key", "subject": "tg-NoSuchKy", "max_tokens": 2}, "subject", "no key"),
        ({"per": "tool", "max_tokens": 2, "every": 1}, "every", "unknown field"),
    ]
    for body, field, problem in cases:
        message = bad(s, "PUT", "/admin/mcp/limits", body)
        assert message.startswith('"%s": ' % field) and problem in message, (body, message)


# ---- admission under 200 concurrent calls ---------------------------------------------


def pgbench_admits(s, server, tool, clients=40, per_client=5):
    """200 concurrent mcp_admit calls (pgbench sessions); {status: count}."""
    table = "public.mcpacl_admits_%s" % secrets.token_hex(4)
    s.psql("create table %s (status text not null)" % table)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "admit.sql"
        script.write_text("insert into %s select status from tollgate.mcp_admit("
                          "null, 'conc-user', 'conc-group', '%s', '%s');\n"
                          % (table, server, tool))
        run([PGBIN / "pgbench", "-n", "-c", clients, "-j", 4, "-t", per_client, "-f",
             script, s.db.url()], timeout=120)
    counts = dict((st, int(n)) for st, n in s.psql(
        "select status, count(*) from %s group by status" % table))
    s.psql("drop table %s" % table)
    return counts


def test_200_concurrent_admits_hold_a_tool_quota_and_bucket():
    s = acl_stack()
    srv, quota_n, bucket_n = uniq("conc"), 37, 23
    s.ctl("mcp", "limit", "set", "--per", "tool", "--subject", srv + "/hot", "--requests",
          str(quota_n), "--window", "day")
    assert pgbench_admits(s, srv, "hot") == {"ok": quota_n, "quota_exceeded": 200 - quota_n}
    assert s.psql("select c.used from tollgate.mcp_quota_counters c join tollgate.mcp_limits l"
                  " on l.id = c.limit_id where c.subject = '%s/hot'" % srv) == [[str(quota_n)]]
    # a bucket that does not refill within the test: exactly its tokens are admitted
    s.ctl("mcp", "limit", "set", "--per", "tool", "--subject", srv + "/burst", "--bucket",
          str(bucket_n), "--refill", "1", "--every-ms", "3600000")
    assert pgbench_admits(s, srv, "burst") == {"ok": bucket_n, "rate_limited": 200 - bucket_n}


# ---- report --by tool over rows written by the gateway's record path --------------------


def test_report_by_tool_over_recorded_calls():
    s = acl_stack()
    srv = uniq("rep")
    calls = ["%s:search:ok:100:2000:1500" % srv, "%s:search:error:50:10:500" % srv,
             "%s:search:ok:10:20:1000" % srv, "%s:fetch:timeout:5:0:9000" % srv]
    with tempfile.TemporaryDirectory() as spool:
        out = run([build_dir() / "tests" / "tools" / "mcp-record", s.config, spool, "rep-user",
                   "rep-group"] + calls, env=base_env(ANTHROPIC_API_KEY=s.provider_key))
        assert out.strip() == "recorded 4, flushed 4", out
        assert sorted(os.listdir(spool)) == ["mcp_calls.lock"], os.listdir(spool)
    rows = s.psql("select tool, code, user_id, group_id, bytes_in, bytes_out, duration_us,"
                  " request_id is not null from tollgate.mcp_calls where server = '%s'"
                  " order by tool, duration_us" % srv)
    assert rows == [["fetch", "timeout", "rep-user", "rep-group", "5", "0", "9000", "t"],
                    ["search", "error", "rep-user", "rep-group", "50", "10", "500", "t"],
                    ["search", "ok", "rep-user", "rep-group", "10", "20", "1000", "t"],
                    ["search", "ok", "rep-user", "rep-group", "100", "2000", "1500", "t"]], rows

    doc = json.loads(s.ctl("report", "--by", "tool", "--format", "json"))
    assert doc["by"] == "tool"
    mine = {r["tool"]: r for r in doc["rows"] if r["server"] == srv}
    assert mine["search"] == {"server": srv, "tool": "search", "calls": 3, "errors": 1,
                              "bytes_in": 160, "bytes_out": 2030, "duration_us": 3000,
                              "mean_us": 1000}, mine
    assert mine["fetch"] == {"server": srv, "tool": "fetch", "calls": 1, "errors": 1,
                             "bytes_in": 5, "bytes_out": 0, "duration_us": 9000,
                             "mean_us": 9000}, mine
    total = doc["total"]
    assert total["calls"] == sum(r["calls"] for r in doc["rows"]) >= 4
    assert total["mean_us"] == total["duration_us"] // total["calls"]

    lines = list(csv.reader(io.StringIO(s.ctl("report", "--by", "tool", "--format", "csv"))))
    assert lines[0] == ["server", "tool", "calls", "errors", "bytes_in", "bytes_out",
                        "duration_us", "mean_us"], lines[0]
    assert [srv, "search", "3", "1", "160", "2030", "3000", "1000"] in lines, lines

    table = s.ctl("report", "--by", "tool")
    assert re.search(r"^server\s+tool\s+CALLS\s+ERRORS\s+BYTES_IN\s+BYTES_OUT\s+DURATION_US"
                     r"\s+MEAN_US$", table, re.M), table
    assert re.search(r"^%s\s+search\s+3\s+1\s+160\s+2030\s+3000\s+1000$" % re.escape(srv),
                     table, re.M), table
    assert re.search(r"^TOTAL\s+%d\s" % total["calls"], table, re.M), table
    # a period without calls: no rows, a zero total
    empty = json.loads(s.ctl("report", "--by", "tool", "--from", "2020-01-01", "--to",
                             "2020-01-31", "--format", "json"))
    assert empty["rows"] == [] and empty["total"]["calls"] == 0
    assert "--by must be group, user, key, model" in str(
        _ctl_failure(s, "report", "--by", "server"))


def _ctl_failure(s, *args):
    try:
        s.ctl(*args)
    except RuntimeError as e:
        return e
    raise AssertionError("tollgatectl %s succeeded" % " ".join(args))


def test_usage_maintain_ensures_mcp_calls_partitions():
    s = acl_stack()
    out = s.ctl("usage", "maintain", "--ahead", "5")
    assert re.search(r"^mcp_calls partitions: \d+ created$", out, re.M), out
    names = [r[0] for r in s.psql(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
        " where i.inhparent = 'tollgate.mcp_calls'::regclass order by 1")]
    months = s.psql("select to_char(date_trunc('month', now() at time zone 'UTC')"
                    " + make_interval(months => 5), 'YYYY\"m\"MM')")[0][0]
    assert "mcp_calls_y" + months in names, names
    assert "mcp_calls partitions: 0 created" in s.ctl("usage", "maintain", "--ahead", "5")
