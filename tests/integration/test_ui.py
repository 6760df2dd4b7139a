"""The dashboard (issue 14): /admin/ui/'s static files (allow-list, headers,
off without the admin API, admin.ui_dir checked at load), the admin API's
quota adjust and reset that the page uses, and the page itself in headless
Chromium (tests/ui/drive.js with puppeteer-core): an admin key signs in, a
consumer key cannot, each view renders with data made through the stack, the
totals equal `tollgatectl report --format json` to the micro-dollar, a key
revoked from the page answers 401 on its next request, and no CSP violation
is logged. Screenshots go to $TOLLGATE_TEST_OUTPUT/ui (scripts/test:
build/debug/test-output/ui)."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import REPO, build_dir, main_stack, stack
from test_admin import ADMIN_CONFIG, ADMIN_KEY, uniq

HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5"
UI_CONFIG = json.loads(json.dumps(ADMIN_CONFIG))
UI_CONFIG["admin"]["ui_dir"] = str(REPO / "ui")
DRIVER = REPO / "tests" / "ui" / "drive.js"


def ui_stack():
    os.environ["TOLLGATE_ADMIN_KEY"] = ADMIN_KEY
    return stack(tag="ui", extra_config=UI_CONFIG)


def out_dir():
    base = os.environ.get("TOLLGATE_TEST_OUTPUT") or str(build_dir() / "test-output")
    d = Path(base) / "ui"
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / ".probe"
        probe.write_text("")
        probe.unlink()
    except OSError:
        d = Path(tempfile.mkdtemp(prefix="tollgate-ui-shots-"))
    return d


def test_static_files_headers_and_allow_list():
    s = ui_stack()
    status, h, body = s.request("GET", "/admin/ui/")  # no credential: the login form
    assert status == 200, body[:200]
    assert h["content-type"] == "text/html; charset=utf-8"
    csp = h["content-security-policy"]
    for part in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                 "frame-ancestors 'none'", "object-src 'none'"):
        assert part in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["cache-control"] == "no-cache"
    assert b'id="login-form"' in body
    # no inline script or style in the page: every script is a file of the allow-list
    text = body.decode()
    assert "<style" not in text and " style=" not in text and " on" + "click=" not in text
    assert text.count("<script") == text.count('<script src="')
    assert body == (REPO / "ui" / "index.html").read_bytes()
    for name, ctype in (("app.js", "text/javascript"), ("views.js", "text/javascript"),
                        ("money.js", "text/javascript"), ("app.css", "text/css"),
                        ("print.css", "text/css"), ("favicon.svg", "image/svg+xml"),
                        ("vendor/chart.umd.min.js", "text/javascript")):
        status, h, body = s.request("GET", "/admin/ui/" + name)
        assert status == 200, name
        assert h["content-type"].startswith(ctype), (name, h["content-type"])
        assert body == (REPO / "ui" / name).read_bytes(), name
        assert "content-security-policy" in h and h["x-content-type-options"] == "nosniff"
    status, h, _ = s.request("GET", "/admin/ui")
    assert status == 301 and h["location"] == "/admin/ui/"
    status, h, _ = s.request("HEAD", "/admin/ui/app.css")
    assert status == 200
    status, h, _ = s.request("POST", "/admin/ui/", body="{}")
    assert status == 405 and "GET" in h["allow"]


def test_traversal_and_unknown_files_404():
    s = ui_stack()
    for path in ("/admin/ui/../reports/keys", "/admin/ui/%2e%2e/reports/keys",
                 "/admin/ui/..%2f..%2fetc%2fpasswd", "/admin/ui//app.js", "/admin/ui/./app.js",
                 "/admin/ui/vendor/../app.js", "/admin/ui/package.json",
                 "/admin/ui/vendor/LICENSE.md", "/admin/ui/vendor/chart.umd.min.js.map",
                 "/admin/ui/nope.js", "/admin/ui/app.js%00", "/admin/ui/APP.JS",
                 "/admin/ui/vendor/"):
        status, h, body = s.request("GET", path)
        # lighttpd may answer a path it normalizes itself (400), never the file or the data
        assert status in (400, 404), (path, status, body[:200])
        assert b"rows" not in body and b"root:" not in body, path
        assert "text/html" not in h.get("content-type", ""), path


def test_off_without_the_admin_api():
    s = main_stack()
    for path in ("/admin/ui/", "/admin/ui/app.js"):
        status, h, body = s.request("GET", path)
        assert status == 404, (path, status)
        assert "content-security-policy" not in h and b"login-form" not in body


def test_ui_dir_checked_at_load():
    s = ui_stack()
    conf = json.loads(Path(s.config).read_text())
    for bad in ("ui", "/nonexistent/tollgate-ui", str(REPO / "sql")):
        conf["admin"]["ui_dir"] = bad
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=s.dir, delete=False) as f:
            json.dump(conf, f)
        p = subprocess.run([str(build_dir() / "fcgi" / "tollgate-fcgi"), "-c", f.name, "--check"],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, TOLLGATE_ADMIN_KEY=ADMIN_KEY,
                                    ANTHROPIC_API_KEY="x"))
        os.unlink(f.name)
        assert p.returncode != 0, bad
        assert "admin.ui_dir" in p.stderr + p.stdout, (bad, p.stderr)


def admin(s, method, path, body=None, key=ADMIN_KEY):
    status, _, data = s.request(method, path, body, {"x-api-key": key})
    return status, json.loads(data) if data else None


def test_quota_adjust_and_reset_through_the_admin_api():
    s = ui_stack()
    group = uniq("ui-quota")
    q = {"kind": "group", "subject": group, "metric": "usd", "window": "month"}
    status, row = admin(s, "PUT", "/admin/quotas", dict(q, limit="100.00"))
    assert status == 200, row
    status, row = admin(s, "POST", "/admin/quotas/adjust", dict(q, by="-12.50"))
    assert status == 200 and row["limit_value"] == 87500000, row
    status, row = admin(s, "POST", "/admin/quotas/adjust", dict(q, by=5))
    assert status == 200 and row["limit_value"] == 92500000, row
    s.psql("update tollgate.quotas set used = 1234 where subject_id = '%s'" % group)
    status, row = admin(s, "POST", "/admin/quotas/reset", q)
    assert status == 200 and row["used"] == 0, row
    actions = [r[0] for r in s.psql(
        "select action from tollgate.audit_log where subject like '%%%s%%' order by id" % group)]
    assert actions.count("quota.adjust") == 2 and "quota.reset" in actions, actions
    # bad input: 400 naming the field, nothing changed
    for body, field in ((dict(q, by="ten"), "by"), (dict(q, by=1.5), "by"),
                        (dict(q, metric="tokens", by="5"), "by"), (dict(q, extra=1), "extra"),
                        (dict(q, kind="team"), "kind")):
        status, err = admin(s, "POST", "/admin/quotas/adjust", body)
        assert status == 400 and field in err["error"]["message"], (body, err)
    status, err = admin(s, "POST", "/admin/quotas/rollover", q)
    assert status == 404, err
    status, err = admin(s, "POST", "/admin/quotas/reset", dict(q, subject=uniq("none")))
    assert status == 404, err
    status, _ = admin(s, "POST", "/admin/quotas/reset", q, key=s.default_key())
    assert status == 401
    assert int(s.psql("select count(*) from tollgate.audit_log where subject like '%%%s%%'"
                      " and action like 'quota.%%'" % group)[0][0]) == len(actions)


def test_the_page_in_headless_chromium():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert os.path.exists(chromium), "Debian's chromium is not installed (scripts/lib/deps.sh)"
    assert (REPO / "tests" / "ui" / "node_modules" / "puppeteer-core").is_dir(), \
        "tests/ui/node_modules is missing: npm ci in tests/ui (scripts/test does it)"
    s = ui_stack()
    teams = [uniq("ui-eng"), uniq("ui-ops")]
    spend = {teams[0]: [(HAIKU, 1000, 200), (SONNET, 3000, 700)], teams[1]: [(HAIKU, 500, 50)]}
    keys = {}
    for team, calls in spend.items():
        keys[team] = s.key(group=team, user=uniq("ui-user"))
        for model, inp, out in calls:
            status, _, body = s.messages(keys[team], model=model, directive={
                "usage": {"input_tokens": inp, "output_tokens": out}})
            assert status == 200, body
    s.psql("select 1")
    # a user spending in both teams: each team's view holds that team's part only
    shared = uniq("ui-shared")
    for team, (model, inp, out) in ((teams[0], (SONNET, 4000, 900)), (teams[1], (HAIKU, 800, 80))):
        status, _, body = s.messages(s.key(group=team, user=shared), model=model, directive={
            "usage": {"input_tokens": inp, "output_tokens": out}})
        assert status == 200, body
    srv = uniq("ui-srv")  # MCP tool calls for the Tools view
    s.psql("insert into tollgate.mcp_calls (call_id, request_id, ts, user_id, group_id, server,"
           " tool, code, duration_us, bytes_in, bytes_out) select gen_random_uuid(),"
           " gen_random_uuid(), now(), '%s', '%s', '%s', t, c, d, 10, 20 from (values"
           " ('search', 'ok', 1000), ('search', 'error', 3000), ('fetch', 'ok', 700)) v(t, c, d)"
           % (shared, teams[0], srv))
    victim = s.key(group=teams[1], user=uniq("ui-victim"))
    assert s.messages(victim)[0] == 200
    today = s.psql("select (now() at time zone 'UTC')::date")[0][0]
    first = today[:8] + "01"
    outd = out_dir()
    spec = {"base": "http://127.0.0.1:%d" % s.port, "admin_key": ADMIN_KEY,
            "consumer_key": keys[teams[0]], "revoke_prefix": victim[:11], "out_dir": str(outd),
            "chromium": chromium, "from": first, "to": today, "tmp": str(s.dir), "team": teams[0]}
    env = dict(os.environ, HOME=str(s.dir))
    p = subprocess.run(["node", str(DRIVER)], input=json.dumps(spec), capture_output=True,
                       text=True, timeout=150, env=env, cwd=str(REPO / "tests" / "ui"))
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout)
    assert res["index_status"] == 200 and "frame-ancestors 'none'" in res["index_csp"]
    # a consumer key cannot sign in, and is not kept
    assert "invalid admin credential" in res["consumer"]["error"], res["consumer"]
    assert res["consumer"]["nav_hidden"] and res["consumer"]["stored"] is None
    # the admin key lives in sessionStorage only
    assert res["storage"] == {"session": True, "local": 0, "cookies": ""}, res["storage"]
    assert res["csp"] == [] and res["page_errors"] == [], (res["csp"], res["page_errors"])
    for view, v in res["views"].items():
        assert v["state"] == "ready", (view, v["status"])
        assert v["tables"], view
    # the figures equal tollgatectl's for the same range, to the micro-dollar
    def ctl_json(*args):
        return json.loads(s.ctl("report", *args, "--format", "json"))
    by_group = ctl_json("--report", "chargeback", "--by", "group", "--from", first, "--to", today)
    sp = res["views"]["spend"]
    assert (sp["this_month"]["from"], sp["this_month"]["to"]) == (first, today)
    assert int(sp["this_month"]["micros"]) == by_group["total"]["cost_micros"]
    assert sp["this_month"]["text"].replace(",", "") == "$" + by_group["total"]["cost_usd"]
    lm = sp["last_month"]
    last = ctl_json("--report", "chargeback", "--by", "group", "--from", lm["from"],
                    "--to", lm["to"])
    assert int(lm["micros"]) == last["total"]["cost_micros"]
    team_rows = {r[0]: int(r[1]) for r in sp["tables"][0]["rows"] if r[0] != "Total"}
    for row in by_group["rows"]:
        assert team_rows[row["group_id"]] == row["cost_micros"], row
    for team in teams:
        micros = int(s.psql("select sum(cost_micros) from tollgate.usage where group_id = '%s'"
                            % team)[0][0])
        assert team_rows[team] == micros > 0
    by_model = ctl_json("--report", "chargeback", "--by", "model", "--from", first, "--to", today)
    model_rows = {r[0]: int(r[6]) for r in sp["tables"][1]["rows"] if r[0] != "Total"}
    assert model_rows == {r["model"]: r["cost_micros"] for r in by_model["rows"]}
    # each team's bar by model, this month and last: tollgatectl --by group,model
    def table_of(view, table_id):
        found = [t for t in res["views"][view]["tables"] if t["id"] == table_id]
        assert len(found) == 1, (view, table_id, res["views"][view]["tables"])
        return [r for r in found[0]["rows"] if r[0] != "Total"]
    pairs_now = ctl_json("--by", "group,model", "--from", first, "--to", today)
    pairs_last = ctl_json("--by", "group,model", "--from", lm["from"], "--to", lm["to"])
    expected = {}
    for doc, col in ((pairs_now, 0), (pairs_last, 1)):
        for r in doc["rows"]:
            expected.setdefault((r["group_id"], r["model"]), [0, 0])[col] = r["cost_micros"]
    shown = {(r[0], r[1]): [int(r[2]), int(r[3])] for r in table_of("spend", "table-spend-team-models")}
    assert shown == expected, (shown, expected)
    for team, calls in spend.items():
        for model, _, _ in calls:
            micros = int(s.psql("select sum(cost_micros) from tollgate.usage where group_id = '%s'"
                                " and model = '%s'" % (team, model))[0][0])
            assert shown[(team, model)][0] == micros > 0, (team, model)
    # the Team view of teams[0]: by user and by model of that team only
    tm = res["views"]["team"]
    assert tm["team"] == teams[0], tm["team"]
    team_micros = sum(r["cost_micros"] for r in by_group["rows"] if r["group_id"] == tm["team"])
    assert int(tm["team_total"]["micros"]) == team_micros, tm
    team_users = ctl_json("--by", "user", "--group", teams[0], "--from", first, "--to", today)
    team_models = ctl_json("--by", "model", "--group", teams[0], "--from", first, "--to", today)
    shown_users = {r[0]: int(r[6]) for r in table_of("team", "table-team-users")}
    shown_models = {r[0]: int(r[6]) for r in table_of("team", "table-team-models")}
    assert shown_users == {r["user_id"]: r["cost_micros"] for r in team_users["rows"]}, shown_users
    assert shown_models == {r["model"]: r["cost_micros"] for r in team_models["rows"]}, shown_models
    assert sum(shown_users.values()) == sum(shown_models.values()) == team_micros
    mine = int(s.psql("select sum(cost_micros) from tollgate.usage where user_id = '%s'"
                      " and group_id = '%s'" % (shared, teams[0]))[0][0])
    everywhere = int(s.psql("select sum(cost_micros) from tollgate.usage where user_id = '%s'"
                            % shared)[0][0])
    assert shown_users[shared] == mine < everywhere, (shown_users, mine, everywhere)
    # the Tools view: `report --by tool`, row for row
    tools = ctl_json("--by", "tool", "--from", first, "--to", today)
    shown_tools = [r[:8] for r in table_of("tools", "table-tools")]
    assert shown_tools == [[str(r[k]) for k in ("server", "tool", "calls", "errors", "bytes_in",
                                                "bytes_out", "duration_us", "mean_us")]
                           for r in tools["rows"]], shown_tools
    assert [srv, "search", "2", "1", "20", "40", "4000", "2000"] in shown_tools
    series = ctl_json("--report", "series", "--subject", "org", "--bucket", "day",
                      "--from", first, "--to", today)
    assert int(res["views"]["daily"]["daily_total"]["micros"]) == series["total"]["cost_micros"]
    models = ctl_json("--report", "models", "--from", first, "--to", today)
    assert len(res["views"]["models"]["tables"][0]["rows"]) == len(models["rows"])
    # the revoked key answers 401 on its next request, and the audit log says who
    assert res["revoked_row"][5] == "revoked", res["revoked_row"]
    status, _, body = s.messages(victim)
    assert status == 401, body
    assert s.psql("select count(*) from tollgate.audit_log where action = 'key.revoke'"
                  " and subject = 'key:%s' and actor like 'admin-key:%%'" % victim[:11])[0][0] == "1"
    # a screenshot of each view
    for name in ("login-refused", "view-spend", "view-team", "view-daily", "view-keys",
                 "view-quotas", "view-denials", "view-models", "view-tools", "view-keys-revoked",
                 "statement-print"):
        f = outd / (name + ".png")
        assert f.exists() and f.stat().st_size > 2000, f
    print("screenshots in %s" % outd)
