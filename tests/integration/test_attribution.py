"""End-user attribution through the whole stack.

A key flagged trusted_attribution may name the end user and team it acts for
(x-tollgate-user / x-tollgate-group, or the names auth.attribution gives):
usage, quotas and RBAC then go by that user and group, while the quotas of
the key itself, of its owner and of the owner's group still cover everything
sent through it (an attributed request is held to all five; invented end
users and groups are no way around the owner's budgets).  An untrusted key's
headers are ignored, with a warning in the worker log; a trusted key naming
something that is not an identifier gets 400 invalid_request_error.
"""

import json
import secrets

from harness import error_body, stack, wait_for

BAD_VALUE = "the end user and group headers must be identifiers " \
    "(letters, digits, '.', '_', '@', ':', '-'; at most 128)"


def uniq(prefix):
    return "%s-%s" % (prefix, secrets.token_hex(4))


def attr_stack():
    return stack(tag="attribution", processes=2, threads=2)


def named_stack():
    return stack(tag="attribution-named", processes=1, threads=2,
                 extra_config={"auth": {"attribution": {"user_header": "x-user-id",
                                                        "group_header": "x-team-id"}}})


def new_key(s, trusted, group=None, user=None):
    group, user = group or uniq("attr-team"), user or uniq("attr-owner")
    key = s.key(group=group, user=user)
    if trusted:
        s.psql("update tollgate.api_keys set trusted_attribution = true where prefix = '%s'"
               % key[:11])
    key_id = s.psql("select id from tollgate.api_keys where prefix = '%s'" % key[:11])[0][0]
    return key, key_id, user, group


def send(s, key, end_user=None, end_group=None, names=("x-tollgate-user", "x-tollgate-group"),
         prompt="attribution", model="claude-haiku-4-5"):
    headers = s.auth(key)
    if end_user is not None:
        headers[names[0]] = end_user
    if end_group is not None:
        headers[names[1]] = end_group
    return s.request("POST", "/v1/messages", s.body(model=model, prompt=prompt), headers)


def usage_of(s, reply):
    status, headers, body = reply
    assert status == 200, (status, body[:300])
    row = s.usage(headers["x-request-id"])
    return row["api_key_id"], row["user_id"], row["group_id"]


def warnings_for(s, request_id):
    out = []
    for line in s.logs().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("request_id") == request_id and rec.get("level") in ("warn", "warning"):
            out.append(rec)
    return out


def test_trusted_key_attributes_usage_to_the_end_user_and_group():
    s = attr_stack()
    key, key_id, owner, team = new_key(s, trusted=True)
    end_user, end_group = uniq("enduser") + "@example.test", uniq("endteam")
    marker = uniq("attr-trusted")
    reply = send(s, key, end_user, end_group, prompt=marker)
    assert usage_of(s, reply) == (key_id, end_user, end_group)
    assert not warnings_for(s, reply[1]["x-request-id"])
    # either header alone replaces only its own part
    assert usage_of(s, send(s, key, end_user=end_user)) == (key_id, end_user, team)
    assert usage_of(s, send(s, key, end_group=end_group)) == (key_id, owner, end_group)
    # no headers (or empty ones): the key's own user and group
    assert usage_of(s, send(s, key)) == (key_id, owner, team)
    assert usage_of(s, send(s, key, "", "")) == (key_id, owner, team)
    # the headers are the gateway's business, not the provider's
    recs = s.mock_requests(marker)
    assert len(recs) == 1, len(recs)
    assert not {"x-tollgate-user", "x-tollgate-group"} & set(recs[0]["headers"]), \
        recs[0]["headers"]


def test_end_user_quota_applies_per_end_user_and_key_quota_to_all():
    s = attr_stack()
    key, key_id, owner, team = new_key(s, trusted=True)
    prefix = key[:11]
    alice, bob, carol = uniq("q-alice"), uniq("q-bob"), uniq("q-carol")
    s.ctl("quota", "set", "--user", alice, "--metric", "requests", "--window", "total",
          "--limit", "2")
    s.ctl("quota", "set", "--key", prefix, "--metric", "requests", "--window", "total",
          "--limit", "5")
    got = []
    for who in (alice, alice, alice, bob, bob, bob, bob, carol):
        status, headers, body = send(s, key, end_user=who)
        got.append((who, status, error_body(body)[1] if status != 200 else None))
    want = [(alice, 200, None), (alice, 200, None),
            (alice, 429, 'quota exceeded: user "%s" requests in total (limit 2 requests)' % alice),
            (bob, 200, None), (bob, 200, None), (bob, 200, None),
            (bob, 429, 'quota exceeded: key "%s" requests in total (limit 5 requests)' % prefix),
            (carol, 429, 'quota exceeded: key "%s" requests in total (limit 5 requests)' % prefix)]
    assert got == want, "\n".join("%s %s %s" % g for g in got)
    # the 429 is an Anthropic rate_limit_error
    status, headers, body = send(s, key, end_user=alice)
    assert status == 429 and error_body(body)[0] == "rate_limit_error", (status, body)
    rows = s.psql("select user_id, count(*) from tollgate.usage where api_key_id = %s "
                  "group by user_id order by user_id" % key_id)
    assert sorted(rows) == sorted([[alice, "2"], [bob, "3"]]), rows


def test_end_group_quota_and_rbac_follow_the_end_group():
    s = attr_stack()
    key, key_id, owner, team = new_key(s, trusted=True)
    small, locked = uniq("small-team"), uniq("locked-team")
    s.ctl("quota", "set", "--group", small, "--metric", "requests", "--window", "total",
          "--limit", "1")
    s.psql("insert into tollgate.groups (id, allowed_models) values ('%s', '{claude-sonnet-*}')"
           % locked)
    assert send(s, key, uniq("u1"), small)[0] == 200
    status, _, body = send(s, key, uniq("u2"), small)
    assert status == 429 and error_body(body)[1] == \
        'quota exceeded: group "%s" requests in total (limit 1 requests)' % small, body
    assert send(s, key, uniq("u3"), uniq("other-team"))[0] == 200
    status, _, body = send(s, key, uniq("u4"), locked, model="claude-haiku-4-5")
    assert status == 403 and error_body(body) == (
        "permission_error",
        'model "claude-haiku-4-5-20251001" is not allowed for group "%s"' % locked), body
    assert send(s, key, uniq("u5"), locked, model="claude-sonnet-4-5")[0] == 200


def test_owner_group_quota_binds_requests_attributed_to_invented_ids():
    """The owner's group quota counts every attributed request, whatever end
    user and group it names (ids that exist nowhere, without quotas): it stops
    them at its limit, and its usd row is charged what they cost."""
    s = attr_stack()
    key, key_id, owner, team = new_key(s, trusted=True)
    n = 3
    s.ctl("quota", "set", "--group", team, "--metric", "requests", "--window", "total",
          "--limit", str(n))
    s.ctl("quota", "set", "--group", team, "--metric", "usd", "--window", "total",
          "--limit", "1000.00")
    s.ctl("quota", "set", "--user", owner, "--metric", "tokens", "--window", "total",
          "--limit", "100000000")
    got, ids = [], []
    for i in range(n + 2):
        end_user, end_group = uniq("ghost"), uniq("ghost-team")
        status, headers, body = send(s, key, end_user, end_group)
        got.append((status, error_body(body)[1] if status != 200 else None))
        if status == 200:
            ids.append(headers["x-request-id"])
            assert usage_of(s, (status, headers, body)) == (key_id, end_user, end_group)
    denied = 'quota exceeded: group "%s" requests in total (limit %d requests)' % (team, n)
    assert got == [(200, None)] * n + [(429, denied)] * 2, got
    rows = s.psql("select count(*), sum(cost_micros), sum(input_tokens + output_tokens"
                  " + cache_read_tokens + cache_write_tokens) from tollgate.usage"
                  " where api_key_id = %s" % key_id)
    count, cost, tokens = (int(v) for v in rows[0])
    assert count == n and cost > 0, rows
    used = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in s.psql(
        "select subject_kind, metric, used, reserved from tollgate.quota_list"
        " where (subject_kind, subject) in (('group', '%s'), ('user', '%s'))" % (team, owner))}
    assert used == {("group", "requests"): (n, 0), ("group", "usd"): (cost, 0),
                    ("user", "tokens"): (tokens, 0)}, (used, cost, tokens)


def test_owner_named_as_end_user_is_counted_once():
    s = attr_stack()
    key, key_id, owner, team = new_key(s, trusted=True)
    s.ctl("quota", "set", "--group", team, "--metric", "requests", "--window", "total",
          "--limit", "2")
    s.ctl("quota", "set", "--user", owner, "--metric", "requests", "--window", "total",
          "--limit", "2")
    assert usage_of(s, send(s, key, owner, team)) == (key_id, owner, team)
    assert usage_of(s, send(s, key, owner)) == (key_id, owner, team)
    status, _, body = send(s, key, owner, team)
    assert status == 429, (status, body)
    used = s.psql("select subject_kind, used from tollgate.quota_list"
                  " where (subject_kind, subject) in (('group', '%s'), ('user', '%s'))"
                  " order by 1" % (team, owner))
    assert used == [["group", "2"], ["user", "2"]], used


def test_untrusted_key_headers_are_ignored_with_a_warning():
    s = attr_stack()
    key, key_id, owner, team = new_key(s, trusted=False)
    for end_user, end_group in ((uniq("intruder"), uniq("other-team")),
                                (uniq("intruder"), None),
                                (None, uniq("other-team")),
                                ("not an identifier", "x" * 200)):   # not judged: ignored
        reply = send(s, key, end_user, end_group)
        assert usage_of(s, reply) == (key_id, owner, team), (end_user, end_group)
        rid = reply[1]["x-request-id"]
        warned = wait_for(lambda: warnings_for(s, rid), 10, "the attribution warning of %s" % rid)
        text = json.dumps(warned)
        assert "attribution ignored" in text and key[:11] in text, warned
        for value in (end_user, end_group, key, key[11:]):
            assert value is None or value not in text, "warning holds %r" % value
    # a quota on the named end user does not touch an untrusted key's requests
    victim = uniq("victim")
    s.ctl("quota", "set", "--user", victim, "--metric", "requests", "--window", "total",
          "--limit", "0")
    assert send(s, key, end_user=victim)[0] == 200
    reply = send(s, key)
    assert usage_of(s, reply) == (key_id, owner, team)
    assert not warnings_for(s, reply[1]["x-request-id"]), "a warning without headers"


def test_invalid_values_on_a_trusted_key_are_400():
    s = attr_stack()
    key, key_id, owner, team = new_key(s, trusted=True)
    marker = uniq("attr-bad")
    bad = [("end user", None), (None, "end team"), ("u" * 200, None), (None, "g" * 129),
           ("-leading-dash", None), ("semi;colon", None), ("slash/user", "team"),
           ("ok-user", "quote'team"), ("tab\tuser", None), ("user", "caf\u00e9".encode("utf-8"))]
    problems = []
    for end_user, end_group in bad:
        status, headers, body = send(s, key, end_user, end_group, prompt=marker)
        try:
            err = error_body(body)
        except (AssertionError, ValueError) as e:
            err = str(e)
        if (status, err) != (400, ("invalid_request_error", BAD_VALUE)):
            problems.append("%r/%r: %d %s" % (end_user, end_group, status, err))
        for value in (end_user, end_group):
            if isinstance(value, str) and value not in BAD_VALUE and value.encode() in body:
                problems.append("%r echoed in the response" % value)
    assert not problems, "\n".join(problems)
    assert not s.mock_requests(marker), "a refused attribution reached the provider"
    # the longest identifier (128) is accepted
    longest = "u" * 128
    assert usage_of(s, send(s, key, longest, "g" * 128)) == (key_id, longest, "g" * 128)


def test_configured_header_names():
    s = named_stack()
    key, key_id, owner, team = new_key(s, trusted=True)
    end_user, end_group = uniq("named-user"), uniq("named-team")
    names = ("x-user-id", "x-team-id")
    assert usage_of(s, send(s, key, end_user, end_group, names=names)) == \
        (key_id, end_user, end_group)
    # the default names mean nothing here
    assert usage_of(s, send(s, key, end_user, end_group)) == (key_id, owner, team)
    status, _, body = send(s, key, "bad user", None, names=names)
    assert status == 400 and error_body(body) == ("invalid_request_error", BAD_VALUE), body
    # and an untrusted key's configured headers are ignored with a warning
    other, other_id, other_owner, other_team = new_key(s, trusted=False)
    reply = send(s, other, end_user, end_group, names=names)
    assert usage_of(s, reply) == (other_id, other_owner, other_team)
    rid = reply[1]["x-request-id"]
    wait_for(lambda: warnings_for(s, rid), 10, "the attribution warning of %s" % rid)


def test_bytes_that_are_not_utf8_are_judged_like_any_bad_value():
    """Header values are bytes: one that is not UTF-8 (a Latin-1 e-acute, 0xff)
    is refused for a trusted key and ignored for an untrusted one, as any
    other non-identifier -- never taken for the database being down."""
    s = attr_stack()
    trusted, _, _, _ = new_key(s, trusted=True)
    untrusted, u_id, u_owner, u_team = new_key(s, trusted=False)
    problems = []
    for value in (b"caf\xe9", b"\xff\xfe", b"ok\x80"):
        for names in ((value, None), (None, value)):
            status, _, body = send(s, trusted, *names)
            if status != 400 or error_body(body) != ("invalid_request_error", BAD_VALUE):
                problems.append("trusted key, %r: %d %s" % (names, status, body[:120]))
            reply = send(s, untrusted, *names)
            if reply[0] != 200:
                problems.append("untrusted key, %r: %d %s (want 200, headers ignored)"
                                % (names, reply[0], reply[2][:120]))
            elif usage_of(s, reply) != (u_id, u_owner, u_team):
                problems.append("untrusted key, %r: usage %s" % (names, usage_of(s, reply)))
    assert not problems, "\n".join(problems)


def test_bad_bytes_do_not_bypass_quotas_when_the_database_policy_is_local_only():
    """With quotas.on_database_down = local_only, a request the database
    refuses to run must not pass for "the database is down": a key whose
    quota is spent stays refused whatever attribution bytes it sends."""
    s = stack(tag="attribution-local-only", processes=1, threads=2,
              extra_config={"quotas": {"on_database_down": "local_only"}})
    for trusted in (False, True):
        key, _, _, _ = new_key(s, trusted=trusted)
        s.ctl("quota", "set", "--key", key[:11], "--metric", "requests", "--window", "total",
              "--limit", "1")
        assert send(s, key)[0] == 200       # seen once: a key local_only would recall
        assert send(s, key)[0] == 429
        got = [send(s, key, end_user=b"\xff")[0] for _ in range(3)]
        assert 200 not in got, "trusted=%s: quota bypassed with a non-UTF-8 x-tollgate-user: %s" \
            % (trusted, got)
