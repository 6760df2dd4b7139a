"""tollgatectl end to end: every admin command changes what the gateway does on
the very next request, through the same SQL functions as the admin API, and
leaves one audit_log row naming the CLI user; `config show` prints the config
with its secrets masked."""

import json
import re
import secrets
import tempfile
from pathlib import Path

from harness import SANITIZER_RE, build_dir, error_body, run, stack

HAIKU = "claude-haiku-4-5"   # an alias; allow-lists match the canonical name below
HAIKU_CANONICAL = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5"


def ctl_stack():
    return stack(tag="ctl")


def uniq(name):
    return "%s-%s" % (name, secrets.token_hex(3))


def audit_mark(s):
    return int(s.psql("select coalesce(max(id), 0) from tollgate.audit_log")[0][0])


def audit_since(s, mark):
    """(action, subject, actor, before, after) of the audit rows written since mark."""
    rows = s.psql("select action, subject, actor, coalesce(before::text, 'null'),"
                  " coalesce(after::text, 'null') from tollgate.audit_log"
                  " where id > %d order by id" % mark)
    return [(a, sub, actor, json.loads(b), json.loads(af)) for a, sub, actor, b, af in rows]


def one_audit(s, mark, action, subject):
    """Asserts exactly one audit row since mark, for action on subject, by the CLI."""
    rows = audit_since(s, mark)
    assert [(r[0], r[1]) for r in rows] == [(action, subject)], rows
    assert rows[0][2].startswith("cli:"), rows[0]
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


def new_key_from(out):
    m = re.search(r"key \(shown once, store it now\): (tg-[A-Za-z0-9_-]{43})$", out, re.M)
    assert m, out
    return m.group(1)


def refused(reply, status, etype):
    """The message of a reply that must be an error of this status and type."""
    got, _, body = reply
    assert got == status, (got, body[:300])
    got_type, message = error_body(body)
    assert got_type == etype, (got_type, message)
    return message


def key_id(s, prefix):
    return s.psql("select id from tollgate.api_keys where prefix = '%s'" % prefix)[0][0]


# ---- keys ----------------------------------------------------------------------


def test_key_rotate_keeps_the_key_and_honours_the_grace():
    s = ctl_stack()
    old = s.key(group=uniq("rot"), user=uniq("rotu"))
    status, headers, _ = s.messages(old)
    assert status == 200
    before = s.usage(headers["x-request-id"])

    mark = audit_mark(s)
    out = s.ctl("key", "rotate", old[:11])
    new = new_key_from(out)
    assert new != old and ("rotated key %s: its new prefix is %s" % (old[:11], new[:11])) in out
    assert re.search(r"the old key works until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out), out
    _, _, _, audit_before, audit_after = one_audit(s, mark, "key.rotate", "key:" + old[:11])
    assert (audit_before["prefix"], audit_after["prefix"]) == (old[:11], new[:11])
    assert not {"key_hash", "previous_key_hash"} & (set(audit_before) | set(audit_after))

    # during the grace both secrets are the same key: same id on the usage rows
    ids = {before["api_key_id"]}
    for key in (old, new, old):
        status, headers, body = s.messages(key)
        assert status == 200, body[:300]
        ids.add(s.usage(headers["x-request-id"])["api_key_id"])
    assert ids == {key_id(s, new[:11])}, ids
    assert old[:11] not in s.ctl("key", "list") and new[:11] in s.ctl("key", "list")

    # --grace-s 0: the secret it replaces is refused on the very next request;
    # the one before it (the grace of the first rotation) is forgotten too
    mark = audit_mark(s)
    newer = s.ctl("key", "rotate", new[:11], "--grace-s", "0", "--quiet").strip()
    assert re.fullmatch(r"tg-[A-Za-z0-9_-]{43}", newer), newer
    one_audit(s, mark, "key.rotate", "key:" + new[:11])
    for key in (new, old):
        message = refused(s.messages(key), 401, "authentication_error")
        assert key not in message, message
    status, headers, _ = s.messages(newer)
    assert status == 200
    assert s.usage(headers["x-request-id"])["api_key_id"] == before["api_key_id"]

    # only an active key by its current prefix
    assert "no active key with prefix" in ctl_error(s, "key", "rotate", "tg-NoSuchK_")
    assert "no active key with prefix" in ctl_error(s, "key", "rotate", new[:11])
    for grace in ("-1", "2592001", "1h"):
        assert "--grace-s" in ctl_error(s, "key", "rotate", newer[:11], "--grace-s", grace)
    s.revoke(newer)
    assert "no active key with prefix" in ctl_error(s, "key", "rotate", newer[:11])


def test_key_update_restricts_models_and_expiry():
    s = ctl_stack()
    key = s.key(group=uniq("upd"), user=uniq("updu"))
    prefix = key[:11]
    assert s.messages(key, model=HAIKU)[0] == 200

    mark = audit_mark(s)
    out = s.ctl("key", "update", prefix, "--models", SONNET)
    assert "updated key %s:" % prefix in out and "models %s" % SONNET in out, out
    _, _, _, before, after = one_audit(s, mark, "key.update", "key:" + prefix)
    assert (before["allowed_models"], after["allowed_models"]) == (None, [SONNET])
    message = refused(s.messages(key, model=HAIKU), 403, "permission_error")
    assert HAIKU in message and "not allowed" in message, message
    assert s.messages(key, model=SONNET)[0] == 200

    mark = audit_mark(s)
    s.ctl("key", "update", prefix, "--all-models", "--name", "renamed")
    one_audit(s, mark, "key.update", "key:" + prefix)
    assert s.messages(key, model=HAIKU)[0] == 200
    assert s.psql("select name, allowed_models is null from tollgate.api_keys"
                  " where prefix = '%s'" % prefix) == [["renamed", "t"]]

    s.ctl("key", "update", prefix, "--expires", "2001-02-03T04:05:06Z")
    message = refused(s.messages(key), 401, "authentication_error")
    assert "expired" in message, message
    assert re.search(r"%s .* expired .*2001-02-03T04:05:06Z" % prefix, s.ctl("key", "list"))
    s.ctl("key", "update", prefix, "--no-expiry", "--trusted-attribution", "on")
    assert s.messages(key)[0] == 200
    assert s.psql("select expires_at is null, trusted_attribution from tollgate.api_keys"
                  " where prefix = '%s'" % prefix) == [["t", "t"]]

    assert "no key with prefix" in ctl_error(s, "key", "update", "tg-NoSuchK_", "--name", "x")
    assert "not both" in ctl_error(s, "key", "update", prefix, "--models", "a",
                                   "--all-models")
    assert "on or off" in ctl_error(s, "key", "update", prefix, "--trusted-attribution", "yes")
    assert "empty entry" in ctl_error(s, "key", "update", prefix, "--models", "a,,b")
    ctl_error(s, "key", "update", prefix, "--expires", "not a time")
    ctl_error(s, "key", "update", prefix, "--role", "no spaces allowed")
    ctl_error(s, "key", "update", prefix)          # no change asked for: usage
    ctl_error(s, "key", "update", prefix, "--modles", SONNET)   # a typo is not ignored


def test_key_create_with_access_options():
    s = ctl_stack()
    group, user = uniq("cre"), uniq("creu")
    mark = audit_mark(s)
    out = s.ctl("key", "create", "--group", group, "--user", user, "--name", "limited",
                "--models", "%s,claude-sonnet-*" % HAIKU_CANONICAL,
                "--expires", "2099-01-01T00:00:00Z",
                "--trusted-attribution", "on")
    key = new_key_from(out)
    rows = audit_since(s, mark)
    # key_create then key_update, in one statement
    assert [r[0] for r in rows] == ["key.create", "key.update"], rows
    assert s.psql("select allowed_models, expires_at = '2099-01-01Z', trusted_attribution"
                  " from tollgate.api_keys where prefix = '%s'" % key[:11]) == [
        ["{%s,claude-sonnet-*}" % HAIKU_CANONICAL, "t", "t"]]
    assert s.messages(key, model=HAIKU)[0] == 200
    assert s.messages(key, model=SONNET)[0] == 200
    assert re.search(r"%s .*%s,claude-sonnet-\* +2099-01-01T00:00:00Z" % (
        key[:11], HAIKU_CANONICAL),
                     s.ctl("key", "list"))
    # a refused update leaves no key behind (one statement)
    n = s.psql("select count(*) from tollgate.api_keys")[0][0]
    ctl_error(s, "key", "create", "--group", group, "--user", user, "--name", "bad",
              "--expires", "never-ish")
    assert s.psql("select count(*) from tollgate.api_keys")[0][0] == n


# ---- groups, roles, users ----------------------------------------------------------


def test_group_set_allows_models_by_glob():
    s = ctl_stack()
    group = uniq("glob")
    key = s.key(group=group, user=uniq("globu"))
    mark = audit_mark(s)
    out = s.ctl("group", "set", group, "--models", "claude-haiku-*")
    assert out.strip() == 'group "%s": models claude-haiku-*, endpoints all' % group, out
    one_audit(s, mark, "group.upsert", "group:" + group)
    assert s.messages(key, model=HAIKU)[0] == 200
    message = refused(s.messages(key, model=SONNET), 403, "permission_error")
    assert 'group "%s"' % group in message and SONNET in message, message

    # an option left out keeps its list
    mark = audit_mark(s)
    out = s.ctl("group", "set", group, "--endpoints", "/v1/messages,/v1/models")
    assert "models claude-haiku-*, endpoints /v1/messages,/v1/models" in out, out
    one_audit(s, mark, "group.upsert", "group:" + group)
    listed = [l for l in s.ctl("group", "list").splitlines() if l.startswith(group + " ")]
    assert len(listed) == 1 and listed[0].split()[1:5] == [
        "claude-haiku-*", "/v1/messages,/v1/models", "1", "1"], listed

    s.ctl("group", "set", group, "--all-models", "--all-endpoints")
    assert s.messages(key, model=SONNET)[0] == 200

    assert "still belong" in ctl_error(s, "group", "delete", group)
    empty = uniq("empty")
    s.ctl("group", "set", empty)
    mark = audit_mark(s)
    assert s.ctl("group", "delete", empty).strip() == 'deleted group "%s"' % empty
    one_audit(s, mark, "group.delete", "group:" + empty)
    assert empty not in s.ctl("group", "list")
    assert "no group" in ctl_error(s, "group", "delete", empty)
    assert "invalid group id" in ctl_error(s, "group", "set", "bad id!")


def test_role_set_endpoints_excludes_models_listing():
    s = ctl_stack()
    role = uniq("ops")
    key = s.key(group=uniq("rolg"), user=uniq("rolu"), role=role)
    list_models = lambda: s.request("GET", "/v1/models", headers=s.auth(key))
    assert list_models()[0] == 200

    mark = audit_mark(s)
    out = s.ctl("role", "set", role, "--endpoints", "/v1/messages")
    assert out.strip() == 'role "%s": models all, endpoints /v1/messages' % role, out
    one_audit(s, mark, "role.upsert", "role:" + role)
    message = refused(list_models(), 403, "permission_error")
    assert "/v1/models" in message and 'role "%s"' % role in message, message
    assert s.messages(key)[0] == 200
    listed = [l for l in s.ctl("role", "list").splitlines() if l.startswith(role + " ")]
    assert len(listed) == 1 and listed[0].split()[1:4] == ["all", "/v1/messages", "1"], listed

    mark = audit_mark(s)
    assert s.ctl("role", "delete", role).strip() == 'deleted role "%s"' % role
    one_audit(s, mark, "role.delete", "role:" + role)
    assert list_models()[0] == 200
    assert "no role" in ctl_error(s, "role", "delete", role)


def test_user_set_and_delete():
    s = ctl_stack()
    user, group, other = uniq("alice"), uniq("ug"), uniq("ug2")
    mark = audit_mark(s)
    assert s.ctl("user", "set", user, "--group", group).strip() == \
        'user "%s" is in group "%s"' % (user, group)
    _, _, _, before, after = one_audit(s, mark, "user.upsert", "user:" + user)
    assert before is None and after["group_id"] == group
    assert re.search(r"^%s +%s +0 " % (user, group), s.ctl("user", "list"), re.M)

    mark = audit_mark(s)
    s.ctl("user", "set", user, "--group", other)
    one_audit(s, mark, "user.upsert", "user:" + user)
    assert s.psql("select group_id from tollgate.users where id = '%s'" % user) == [[other]]

    mark = audit_mark(s)
    assert s.ctl("user", "delete", user).strip() == 'deleted user "%s"' % user
    one_audit(s, mark, "user.delete", "user:" + user)
    assert s.psql("select count(*) from tollgate.users where id = '%s'" % user) == [["0"]]
    assert "no user" in ctl_error(s, "user", "delete", user)

    holder = uniq("holder")
    s.key(group=group, user=holder)
    assert "still belong" in ctl_error(s, "user", "delete", holder)
    ctl_error(s, "user", "set", holder)                         # --group is required
    assert "invalid user id" in ctl_error(s, "user", "set", "no spaces", "--group", group)


# ---- quotas and prices ------------------------------------------------------------


def test_quota_delete_lifts_the_quota():
    s = ctl_stack()
    group = uniq("qdel")
    key = s.key(group=group, user=uniq("qdelu"))
    s.ctl("quota", "set", "--group", group, "--metric", "requests", "--window", "day",
          "--limit", "1")
    assert s.messages(key)[0] == 200
    refused(s.messages(key), 429, "rate_limit_error")

    mark = audit_mark(s)
    out = s.ctl("quota", "delete", "--group", group, "--metric", "requests", "--window", "day")
    assert 'quota delete: group "%s" requests per day' % group in out, out
    _, _, _, before, after = one_audit(s, mark, "quota.delete",
                                       "group:%s requests/day" % group)
    assert before["limit_value"] == 1 and after is None
    assert s.messages(key)[0] == 200
    assert group not in s.ctl("quota", "show")
    assert "no quota" in ctl_error(s, "quota", "delete", "--group", group, "--metric",
                                   "requests", "--window", "day")
    assert "no key with prefix" in ctl_error(s, "quota", "delete", "--key", "tg-NoSuchK_",
                                             "--metric", "usd", "--window", "day")


def test_price_set_prices_the_next_request():
    s = ctl_stack()
    key = s.key(group=uniq("price"), user=uniq("priceu"))
    usage = {"input_tokens": 1000, "output_tokens": 2000, "cache_read_input_tokens": 3000,
             "cache_creation_input_tokens": 4000}

    def cost():
        status, headers, body = s.messages(key, model=SONNET, directive={"usage": usage})
        assert status == 200, body[:300]
        row = s.usage(headers["x-request-id"])
        assert (row["model"], row["input_tokens"], row["output_tokens"],
                row["cache_read_tokens"], row["cache_write_tokens"]) == (
            SONNET, "1000", "2000", "3000", "4000"), row
        return int(row["cost_micros"])

    mark = audit_mark(s)
    out = s.ctl("price", "set", SONNET, "--input", "7000000", "--output", "11000000",
                "--cache-read", "500000", "--cache-write", "9000000")
    assert re.search(r'price of "%s" from \S+Z, in micro-dollars per million tokens: '
                     r"input 7000000, output 11000000, cache read 500000, cache write 9000000"
                     % SONNET, out), out
    one_audit(s, mark, "price.set", "price:" + SONNET)
    # 1000 x 7 + 2000 x 11 + 3000 x 0.5 + 4000 x 9 micro-dollars
    assert cost() == 7000 + 22000 + 1500 + 36000

    # a price from a later date does not apply yet
    s.ctl("price", "set", SONNET, "--input", "1", "--output", "1", "--from",
          "2099-01-01T00:00:00Z")
    assert cost() == 66500
    rows = [l.split() for l in s.ctl("price", "list").splitlines() if l.startswith(SONNET + " ")]
    # (then the 1-hour cache-write rate, the cache-write rate when not given; the search
    # fee; no long-context premium)
    assert [r[1:] for r in rows if r[1].startswith("2099")] == [
        ["2099-01-01T00:00:00Z", "1", "1", "0", "0", "0", "0", "-", "no"]], rows
    assert [r[2:] for r in rows if r[-1] == "yes"] == [
        ["7000000", "11000000", "500000", "9000000", "9000000", "0", "-", "yes"]], rows

    assert "invalid --input" in ctl_error(s, "price", "set", SONNET, "--input", "-1",
                                          "--output", "1")
    assert "invalid --output" in ctl_error(s, "price", "set", SONNET, "--input", "1",
                                           "--output", "1.5")
    ctl_error(s, "price", "set", SONNET, "--input", "1")   # --output is required


# ---- config show ----------------------------------------------------------------


def test_config_show_masks_every_secret():
    literal = {name: "%s-%s" % (name, secrets.token_hex(16)) for name in
               ("provider", "jwt", "admin", "dbpass", "sslpass", "kwpass")}
    config = {
        "database": {"url": "postgresql://tollgate:%s@db.example:5432/tollgate"
                            "?sslmode=require&sslpassword=%s" % (literal["dbpass"],
                                                                   literal["sslpass"])},
        "providers": {"anthropic": {"type": "anthropic", "base_url": "http://127.0.0.1:9",
                                    "api_key": literal["provider"]},
                      "other": {"type": "anthropic", "base_url": "http://127.0.0.1:9",
                                "api_key": "$OTHER_PROVIDER_KEY"}},
        "auth": {"jwt": [{"issuer": "https://idp.example", "audience": "tollgate",
                          "keys": [{"kid": "k1", "alg": "HS256", "secret": literal["jwt"]},
                                   {"kid": "k2", "alg": "HS256", "secret": "$JWT_SECRET"}]}]},
        "admin": {"keys": [literal["admin"], "$ADMIN_KEY"]},
        "models": {"claude-sonnet-4-5": {"provider": "anthropic"}},
    }
    tollgatectl = build_dir() / "fcgi" / "tollgatectl"
    with tempfile.TemporaryDirectory(prefix="tollgate-ctl-") as tmp:
        path = Path(tmp) / "tollgate.json"
        path.write_text(json.dumps(config, indent=2))
        shown = run([tollgatectl, "-c", path, "config", "show"])
        assert run([tollgatectl, "config", "show", "-c", path]) == shown
        for secret in literal.values():
            assert secret not in shown, "config show printed a secret:\n" + shown
        doc = json.loads(shown)
        assert doc["providers"]["anthropic"]["api_key"] == "********"
        assert doc["providers"]["other"]["api_key"] == "$OTHER_PROVIDER_KEY"
        assert [k["secret"] for k in doc["auth"]["jwt"][0]["keys"]] == ["********",
                                                                        "$JWT_SECRET"]
        assert doc["admin"]["keys"] == ["********", "$ADMIN_KEY"]
        assert doc["database"]["url"] == ("postgresql://tollgate:********@db.example:5432/"
                                          "tollgate?sslmode=require&sslpassword=********")
        # the rest is the file as written
        assert doc["models"] == config["models"]
        assert doc["auth"]["jwt"][0]["issuer"] == "https://idp.example"

        # a keyword/value connection string, password quoted or not
        for url, masked in (
                ("host=/tmp dbname=tollgate password='%s x\\'y' user=tg" % literal["kwpass"],
                 "host=/tmp dbname=tollgate password=******** user=tg"),
                ("password=%s host=/tmp" % literal["kwpass"], "password=******** host=/tmp"),
                ("$DATABASE_URL", "$DATABASE_URL")):
            config["database"]["url"] = url
            path.write_text(json.dumps(config))
            shown = run([tollgatectl, "-c", path, "config", "show"])
            assert literal["kwpass"] not in shown, shown
            assert json.loads(shown)["database"]["url"] == masked, shown

        path.write_text("{not json")
        try:
            run([tollgatectl, "-c", path, "config", "show"])
        except RuntimeError as e:
            assert "tollgatectl: error: could not read config" in str(e), e
        else:
            raise AssertionError("config show accepted a broken file")
