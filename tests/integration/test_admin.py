"""The admin API (/admin/) on the real stack: who may call it (the admin key
from the config, read from $TOLLGATE_ADMIN_KEY; a JWT with the admin role),
the key lifecycle end to end (create, use, change, rotate with and without
grace, revoke), users, groups, roles, quotas and prices round trips, bad
bodies naming their field, one audit row per change with the caller as
actor, and secrets (the admin key, key hashes, new keys) kept out of
responses and logs.

JWTs are minted here with Python's hmac (HS256), independent of the C code.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

from harness import error_body, main_stack, stack

ADMIN_KEY = "tg-admin-" + secrets.token_urlsafe(30)
ACTOR = "admin-key:" + hashlib.sha256(ADMIN_KEY.encode()).hexdigest()[:8]
JWT_SECRET = secrets.token_urlsafe(48)
ISS, AUD, ADMIN_ROLE = "https://idp.admin.test", "tollgate-admin-it", "tollgate-admin"
# a second issuer, the consumers' IdP: its tokens never make an admin
CONSUMER_ISS, CONSUMER_SECRET = "https://idp.consumers.test", secrets.token_urlsafe(48)
ADMIN_CONFIG = {
    "admin": {"keys": ["$TOLLGATE_ADMIN_KEY"], "jwt_role": ADMIN_ROLE, "jwt_issuers": [ISS]},
    "auth": {"jwt": [{"issuer": ISS, "audience": AUD,
                      "keys": [{"kid": "k1", "alg": "HS256", "secret": JWT_SECRET}]},
                     {"issuer": CONSUMER_ISS, "audience": AUD,
                      "keys": [{"kid": "k1", "alg": "HS256", "secret": CONSUMER_SECRET}]}]},
}

# every key secret the admin API handed out, and its hash in hex: neither may
# show up anywhere but in the one response that created it
CREATED = {}
SENT_TOKENS = set()


def admin_stack():
    # the workers (and tollgatectl) inherit the test process's environment
    os.environ["TOLLGATE_ADMIN_KEY"] = ADMIN_KEY
    return stack(tag="admin", extra_config=ADMIN_CONFIG)


def uniq(prefix):
    return "%s-%s" % (prefix, secrets.token_hex(4))


def call(s, method, path, body=None, key=ADMIN_KEY, bearer=False, raw=False):
    """(status, headers, parsed JSON body) of an admin request, after checking
    that the body holds no key hash and no secret other than a new "key"."""
    headers = {}
    if key is not None:
        headers["authorization" if bearer else "x-api-key"] = \
            ("Bearer " + key) if bearer else key
    status, resp_headers, data = s.request(method, path, body, headers)
    text = data.decode()
    assert "key_hash" not in text, "%s %s answered a key_hash: %s" % (method, path, text[:300])
    assert ADMIN_KEY not in text, "%s %s answered the admin key" % (method, path)
    doc = json.loads(text) if text else None
    new_key = doc.get("key") if isinstance(doc, dict) and status in (200, 201) else None
    for secret, hash_hex in CREATED.items():
        assert hash_hex not in text, "%s %s answered a key's hash" % (method, path)
        if secret != new_key:
            assert secret[11:] not in text, "%s %s answered an old key secret" % (method, path)
    return status, resp_headers, doc


def expect_error(result, status, etype, *fragments):
    got_status, _, doc = result
    assert got_status == status, "status %d, want %d: %r" % (got_status, status, doc)
    got_type, message = error_body(json.dumps(doc))
    assert got_type == etype, (got_type, message)
    for fragment in fragments:
        assert fragment in message, "%r not in %r" % (fragment, message)
    return message


def last_audit_id(s):
    return int(s.psql("select coalesce(max(id), 0) from tollgate.audit_log")[0][0])


def audit_since(s, since):
    return s.psql("select actor, action, subject from tollgate.audit_log where id > %d "
                  "order by id" % since)


def changed(s, expected, fn, actor=ACTOR):
    """Runs fn(); asserts it left exactly the audit rows expected, a list of
    (action, subject), all by actor. Returns fn's result."""
    since = last_audit_id(s)
    result = fn()
    rows = audit_since(s, since)
    assert rows == [[actor, action, subject] for action, subject in expected], \
        "audit rows %s, want %s" % (rows, expected)
    return result


def unchanged(s, fn):
    return changed(s, [], fn)


def create_key(s, **fields):
    body = {"name": uniq("it-admin"), "user": "admin-it-user", "group": "admin-it"}
    body.update(fields)
    status, headers, doc = call(s, "POST", "/admin/keys", body)
    assert status == 201, (status, doc)
    key = doc["key"]
    assert len(key) == 46 and key.startswith("tg-"), key
    assert doc["prefix"] == key[:11] and isinstance(doc["id"], int), doc
    assert headers.get("location") == "/admin/keys/" + doc["prefix"], headers
    CREATED[key] = hashlib.sha256(key.encode()).hexdigest()
    return key, doc


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(role, sub="ops-alice", secret=JWT_SECRET, iss=ISS):
    now = int(time.time())
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64u(json.dumps({"iss": iss, "aud": AUD, "sub": sub, "group_id": "ops",
                            "role": role, "iat": now, "exp": now + 600}).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    token = "%s.%s.%s" % (head, body, b64u(sig))
    SENT_TOKENS.add(token)
    return token


# ---- who may call ---------------------------------------------------------------

def test_admin_api_is_404_without_an_admin_section():
    s = main_stack()
    for headers in ({}, {"x-api-key": s.default_key()}, {"x-api-key": ADMIN_KEY}):
        status, _, body = s.request("GET", "/admin/keys", None, headers)
        assert status == 404, (status, body)
        assert error_body(body)[0] == "not_found_error"


def test_admin_refuses_missing_consumer_and_unknown_credentials():
    s = admin_stack()
    consumer = s.key(group="admin-it", user="consumer")
    expect_error(call(s, "GET", "/admin/keys", key=None), 401, "authentication_error",
                 "missing admin credential")
    for key, bearer in ((consumer, False), (consumer, True), (ADMIN_KEY + "x", False),
                        ("not-a-key", True)):
        expect_error(call(s, "GET", "/admin/keys", key=key, bearer=bearer), 401,
                     "authentication_error", "invalid admin credential")
    # authentication comes before routing: an unknown path tells nothing either
    expect_error(call(s, "GET", "/admin/nothing-here", key=consumer), 401,
                 "authentication_error")
    # the admin key is not a consumer key
    assert s.messages(ADMIN_KEY)[0] == 401
    # both ways of presenting the admin key work
    assert call(s, "GET", "/admin/keys")[0] == 200
    assert call(s, "GET", "/admin/keys", bearer=True)[0] == 200


def test_admin_jwt_with_the_admin_role_passes_and_without_gets_403():
    s = admin_stack()
    token = mint(ADMIN_ROLE, sub="ops-alice")
    status, _, doc = call(s, "GET", "/admin/users", key=token, bearer=True)
    assert status == 200 and isinstance(doc["users"], list), (status, doc)
    group = uniq("jwt-group")
    changed(s, [("group.upsert", "group:" + group)],
            lambda: call(s, "PUT", "/admin/groups/" + group, {}, key=token, bearer=True),
            actor="jwt:ops-alice")
    expect_error(call(s, "GET", "/admin/users", key=mint("member"), bearer=True), 403,
                 "permission_error")
    expect_error(call(s, "GET", "/admin/users", key=mint(ADMIN_ROLE, secret="x" * 40),
                      bearer=True), 401, "authentication_error", "invalid admin credential")
    # a token in x-api-key is not a bearer token: just an unknown key
    expect_error(call(s, "GET", "/admin/users", key=token), 401, "authentication_error")


def test_admin_role_counts_only_from_the_pinned_issuers():
    """A valid token from another configured issuer (the consumers' IdP) whose
    role claim says admin is refused: only admin.jwt_issuers grant the role."""
    s = admin_stack()
    token = mint(ADMIN_ROLE, sub="mallory", secret=CONSUMER_SECRET, iss=CONSUMER_ISS)
    # the token is good: the consumers' issuer accepts it for /v1/ calls
    assert s.messages(token, bearer=True)[0] != 401
    expect_error(call(s, "GET", "/admin/users", key=token, bearer=True), 403,
                 "permission_error", "issuer does not give access")


def test_admin_api_only_answers_addresses_in_admin_allow():
    """admin.allow (default: loopback) is checked before any credential."""
    config = json.loads(json.dumps(ADMIN_CONFIG))
    config["admin"]["allow"] = ["10.9.9.9", "fd00::/8"]
    s = stack(tag="admin-allow", extra_config=config)
    for key in (ADMIN_KEY, None):
        expect_error(call(s, "GET", "/admin/keys", key=key), 403, "permission_error",
                     "not open to this address")
    assert "127.0.0.1" in s.logs() and "admin.allow" in s.logs()
    assert ADMIN_KEY not in s.logs()
    # consumers are not affected
    assert s.messages(s.default_key())[0] == 200


# ---- keys ---------------------------------------------------------------------------

def test_admin_key_lifecycle_create_use_patch_rotate_revoke():
    s = admin_stack()
    since = last_audit_id(s)
    key, doc = create_key(s)
    prefix = doc["prefix"]
    assert audit_since(s, since) == [[ACTOR, "key.create", "key:" + prefix]]
    assert doc["user_id"] == "admin-it-user" and doc["group_id"] == "admin-it", doc
    assert s.messages(key)[0] == 200

    status, _, listed = call(s, "GET", "/admin/keys")
    assert status == 200
    row = [k for k in listed["keys"] if k["prefix"] == prefix]
    assert len(row) == 1 and row[0]["status"] == "active", row

    # PATCH: only this model from now on
    status, _, doc = changed(s, [("key.update", "key:" + prefix)], lambda: call(
        s, "PATCH", "/admin/keys/" + prefix, {"allowed_models": ["claude-sonnet-4-5"]}))
    assert status == 200 and doc["allowed_models"] == ["claude-sonnet-4-5"], (status, doc)
    assert s.messages(key)[0] == 403
    assert s.messages(key, model="claude-sonnet-4-5")[0] == 200

    # rotate with the default grace: both secrets work
    status, _, doc = changed(s, [("key.rotate", "key:" + prefix)],
                             lambda: call(s, "POST", "/admin/keys/%s/rotate" % prefix))
    assert status == 200, (status, doc)
    key2, prefix2 = doc["key"], doc["prefix"]
    CREATED[key2] = hashlib.sha256(key2.encode()).hexdigest()
    assert key2 != key and prefix2 == key2[:11] and doc["previous_prefix"] == prefix, doc
    for k in (key, key2):
        assert s.messages(k, model="claude-sonnet-4-5")[0] == 200

    # rotate without grace: the previous secret stops at once
    status, _, doc = changed(s, [("key.rotate", "key:" + prefix2)], lambda: call(
        s, "POST", "/admin/keys/%s/rotate" % prefix2, {"grace_s": 0}))
    assert status == 200, (status, doc)
    key3 = doc["key"]
    CREATED[key3] = hashlib.sha256(key3.encode()).hexdigest()
    assert s.messages(key2, model="claude-sonnet-4-5")[0] == 401
    assert s.messages(key, model="claude-sonnet-4-5")[0] == 401
    assert s.messages(key3, model="claude-sonnet-4-5")[0] == 200

    # revoke: the next request fails
    status, _, doc = changed(s, [("key.revoke", "key:" + key3[:11])],
                             lambda: call(s, "DELETE", "/admin/keys/" + key3[:11]))
    assert status == 200 and doc == {"prefix": key3[:11], "revoked": True}, (status, doc)
    status, _, body = s.messages(key3, model="claude-sonnet-4-5")
    assert status == 401 and "revoked" in error_body(body)[1], body
    expect_error(unchanged(s, lambda: call(s, "POST", "/admin/keys/%s/rotate" % key3[:11])),
                 404, "not_found_error")
    for method, path, body in (("DELETE", "/admin/keys/tg-AAAAAAAA", None),
                               ("PATCH", "/admin/keys/tg-AAAAAAAA", {"name": "x"}),
                               ("POST", "/admin/keys/tg-AAAAAAAA/rotate", None)):
        expect_error(unchanged(s, lambda: call(s, method, path, body)), 404, "not_found_error")


def test_admin_key_create_with_optional_fields_in_one_transaction():
    s = admin_stack()
    since = last_audit_id(s)
    key, doc = create_key(s, role="analyst", allowed_models=["claude-haiku-*"],
                          expires_at="2099-01-01T00:00:00Z", trusted_attribution=True)
    prefix = doc["prefix"]
    assert doc["role"] == "analyst" and doc["allowed_models"] == ["claude-haiku-*"], doc
    assert doc["trusted_attribution"] is True and doc["expires_at"].startswith("2099-01-01"), doc
    # key_create writes key.create and key_update key.update, both committed together
    assert audit_since(s, since) == [[ACTOR, "key.create", "key:" + prefix],
                                     [ACTOR, "key.update", "key:" + prefix]]
    assert s.messages(key)[0] == 200
    assert s.messages(key, model="claude-sonnet-4-5")[0] == 403
    # a bad optional field rolls the whole create back
    n_keys = s.psql("select count(*) from tollgate.api_keys")[0][0]
    expect_error(unchanged(s, lambda: call(s, "POST", "/admin/keys", {
        "name": "bad", "user": "u1", "group": "g1", "allowed_models": "claude-haiku-*"})),
        400, "invalid_request_error", "allowed_models")
    assert s.psql("select count(*) from tollgate.api_keys")[0][0] == n_keys


# ---- users, groups, roles -------------------------------------------------------------

def test_admin_users_groups_roles_round_trips():
    s = admin_stack()
    group, user, role = uniq("team"), uniq("bob"), uniq("auditor")

    status, _, doc = changed(s, [("group.upsert", "group:" + group)], lambda: call(
        s, "PUT", "/admin/groups/" + group, {"allowed_models": ["claude-sonnet-4-5"]}))
    assert status == 200 and doc["id"] == group, doc
    assert doc["allowed_models"] == ["claude-sonnet-4-5"] and doc["allowed_endpoints"] is None
    # the same again changes nothing and writes no audit row
    assert unchanged(s, lambda: call(s, "PUT", "/admin/groups/" + group,
                                     {"allowed_models": ["claude-sonnet-4-5"]}))[0] == 200
    listed = call(s, "GET", "/admin/groups")[2]["groups"]
    assert [g["allowed_models"] for g in listed if g["id"] == group] == [["claude-sonnet-4-5"]]

    status, _, doc = changed(s, [("user.upsert", "user:" + user)],
                             lambda: call(s, "PUT", "/admin/users/" + user, {"group": group}))
    assert status == 200 and doc["id"] == user and doc["group_id"] == group, doc
    listed = call(s, "GET", "/admin/users")[2]["users"]
    assert [u["group_id"] for u in listed if u["id"] == user] == [group], listed

    # an empty list is not null: this role allows no model at all
    status, _, doc = changed(s, [("role.upsert", "role:" + role)], lambda: call(
        s, "PUT", "/admin/roles/" + role,
        {"allowed_models": [], "allowed_endpoints": ["/v1/messages", "/v1/models"]}))
    assert status == 200 and doc["allowed_models"] == [], doc
    assert doc["allowed_endpoints"] == ["/v1/messages", "/v1/models"], doc
    listed = call(s, "GET", "/admin/roles")[2]["roles"]
    assert [r["allowed_models"] for r in listed if r["id"] == role] == [[]], listed

    # the group's restriction applies to a key created for it
    key, _ = create_key(s, user=user, group=group)
    assert s.messages(key)[0] == 403
    assert s.messages(key, model="claude-sonnet-4-5")[0] == 200

    # deletes: refused while something still belongs to the subject (409), then done
    expect_error(unchanged(s, lambda: call(s, "DELETE", "/admin/groups/" + group)), 409,
                 "invalid_request_error", group)
    expect_error(unchanged(s, lambda: call(s, "DELETE", "/admin/users/" + user)), 409,
                 "invalid_request_error", user)
    status, _, doc = changed(s, [("role.delete", "role:" + role)],
                             lambda: call(s, "DELETE", "/admin/roles/" + role))
    assert status == 200 and doc == {"id": role, "deleted": True}, doc
    for kind in ("roles", "groups", "users"):
        expect_error(unchanged(s, lambda: call(s, "DELETE", "/admin/%s/%s" % (kind, uniq("no")))),
                     404, "not_found_error")

    other = uniq("carol")
    changed(s, [("user.upsert", "user:" + other)],
            lambda: call(s, "PUT", "/admin/users/" + other, {"group": group}))
    changed(s, [("user.delete", "user:" + other)],
            lambda: call(s, "DELETE", "/admin/users/" + other))
    assert other not in [u["id"] for u in call(s, "GET", "/admin/users")[2]["users"]]
    # percent-encoded ids are decoded
    mail = uniq("dave") + "@example.test"
    changed(s, [("user.upsert", "user:" + mail)], lambda: call(
        s, "PUT", "/admin/users/" + mail.replace("@", "%40"), {"group": group}))
    changed(s, [("user.delete", "user:" + mail)],
            lambda: call(s, "DELETE", "/admin/users/" + mail))


# ---- quotas and prices -------------------------------------------------------------

def test_admin_quotas_round_trip_usd_as_dollars():
    s = admin_stack()
    _, doc = create_key(s)
    prefix, user = doc["prefix"], uniq("quota-user")
    status, _, q = changed(s, [("quota.set", "key:%s usd/month" % prefix)], lambda: call(
        s, "PUT", "/admin/quotas",
        {"kind": "key", "subject": prefix, "metric": "usd", "window": "month",
         "limit": "500.25"}))
    assert status == 200, (status, q)
    assert q["limit_value"] == 500250000 and q["subject"] == prefix and q["warn_pct"] == 80, q
    status, _, q = changed(s, [("quota.set", "user:%s tokens/day" % user)], lambda: call(
        s, "PUT", "/admin/quotas", {"kind": "user", "subject": user, "metric": "tokens",
                                    "window": "day", "limit": 100000, "warn_pct": 90}))
    assert status == 200 and q["limit_value"] == 100000 and q["warn_pct"] == 90, q
    # a whole number of dollars is dollars too
    status, _, q = call(s, "PUT", "/admin/quotas", {"kind": "key", "subject": prefix,
                                                    "metric": "usd", "window": "month",
                                                    "limit": 7})
    assert status == 200 and q["limit_value"] == 7000000, q

    quotas = call(s, "GET", "/admin/quotas")[2]["quotas"]
    mine = sorted((x["subject"], x["metric"], x["window"], x["limit_value"]) for x in quotas
                  if x["subject"] in (prefix, user))
    assert mine == sorted([(prefix, "usd", "month", 7000000), (user, "tokens", "day", 100000)]), \
        mine

    ident = {"kind": "user", "subject": user, "metric": "tokens", "window": "day"}
    status, _, doc = changed(s, [("quota.delete", "user:%s tokens/day" % user)],
                             lambda: call(s, "DELETE", "/admin/quotas", ident))
    assert status == 200 and doc == dict(ident, deleted=True), doc
    expect_error(unchanged(s, lambda: call(s, "DELETE", "/admin/quotas", ident)), 404,
                 "not_found_error")
    expect_error(unchanged(s, lambda: call(s, "PUT", "/admin/quotas", {
        "kind": "key", "subject": "tg-AAAAAAAA", "metric": "usd", "window": "day",
        "limit": "1"})), 404, "not_found_error", "tg-AAAAAAAA")


def test_admin_prices_round_trip():
    s = admin_stack()
    model = uniq("it-model")
    price = {"model": model, "effective_from": "2020-01-01T00:00:00Z", "input": 3000000,
             "output": 15000000, "cache_read": 300000, "cache_write": 3750000}
    status, _, doc = changed(s, [("price.set", "price:" + model)],
                             lambda: call(s, "PUT", "/admin/prices", price))
    assert status == 200, (status, doc)
    assert doc["input_micros_per_mtok"] == 3000000 and doc["model"] == model, doc
    assert unchanged(s, lambda: call(s, "PUT", "/admin/prices", price))[0] == 200
    prices = [p for p in call(s, "GET", "/admin/prices")[2]["prices"] if p["model"] == model]
    assert len(prices) == 1 and prices[0]["in_force"] is True, prices
    assert prices[0]["cache_write_micros_per_mtok"] == 3750000, prices


# ---- bad requests -----------------------------------------------------------------

BAD_BODIES = [
    # (method, path, body, status, text the message must hold)
    ("POST", "/admin/keys", {"user": "u", "group": "g"}, 400, '"name": is required'),
    ("POST", "/admin/keys", {"name": "n", "user": "bad user!", "group": "g"}, 400, '"user"'),
    ("POST", "/admin/keys", {"name": "n", "user": "u", "group": "g", "colour": 1}, 400,
     '"colour": unknown field'),
    ("POST", "/admin/keys", "[1, 2]", 400, "JSON object"),
    ("POST", "/admin/keys", '{"name": ', 400, "not valid JSON"),
    ("PUT", "/admin/quotas", {"kind": "key", "subject": "tg-AAAAAAAA", "metric": "usd",
                              "window": "month", "limit": 12.5}, 400,
     '"limit": must be an integer or a dollar string'),
    ("PUT", "/admin/quotas", {"kind": "user", "subject": "u", "metric": "usd",
                              "window": "month", "limit": "12.3456789"}, 400, '"limit"'),
    ("PUT", "/admin/quotas", {"kind": "user", "subject": "u", "metric": "tokens",
                              "window": "month", "limit": "100"}, 400, '"limit"'),
    ("PUT", "/admin/quotas", {"kind": "user", "subject": "u", "metric": "tokens",
                              "window": "month", "limit": -1}, 400, '"limit"'),
    ("PUT", "/admin/quotas", {"kind": "team", "subject": "u", "metric": "tokens",
                              "window": "month", "limit": 1}, 400, '"kind"'),
    ("PUT", "/admin/quotas", {"kind": "user", "subject": "u", "metric": "tokens",
                              "window": "week", "limit": 1}, 400, '"window"'),
    ("PUT", "/admin/quotas", {"kind": "user", "subject": "u", "metric": "tokens",
                              "window": "day", "limit": 1, "warn_pct": 0}, 400, '"warn_pct"'),
    ("PUT", "/admin/prices", {"model": "m", "input": "3", "output": 1, "cache_read": 0,
                              "cache_write": 0}, 400, '"input"'),
    ("PUT", "/admin/prices", {"input": 1, "output": 1, "cache_read": 0, "cache_write": 0}, 400,
     '"model": is required'),
    ("PUT", "/admin/prices", {"model": "m", "effective_from": "soon", "input": 1, "output": 1,
                              "cache_read": 0, "cache_write": 0}, 400, "soon"),
    ("PUT", "/admin/groups/g-bad", {"allowed_models": ["ok", 3]}, 400, '"allowed_models"'),
    ("PUT", "/admin/groups/bad%20id", {}, 400, "invalid group id"),
    ("PUT", "/admin/users/u-bad", {}, 400, '"group": is required'),
    ("POST", "/admin/keys/tg-AAAAAAAA/rotate", {"grace_s": -1}, 400, '"grace_s"'),
    ("POST", "/admin/keys/tg-AAAAAAAA/rotate", {"grace_s": 2592001}, 400, '"grace_s"'),
    ("GET", "/admin/audit?limit=0", None, 400, '"limit"'),
    ("GET", "/admin/audit?limit=1001", None, 400, '"limit"'),
    ("GET", "/admin/audit?limit=x", None, 400, '"limit"'),
]


def test_admin_bad_bodies_name_the_field_and_change_nothing():
    s = admin_stack()
    for method, path, body, want_status, fragment in BAD_BODIES:
        result = unchanged(s, lambda: call(s, method, path, body))
        message = expect_error(result, want_status, "invalid_request_error")
        assert fragment in message, "%s %s: %r not in %r" % (method, path, fragment, message)
    _, doc = create_key(s)
    expect_error(unchanged(s, lambda: call(s, "PATCH", "/admin/keys/" + doc["prefix"],
                                           {"allowed_models": "all"})),
                 400, "invalid_request_error", "allowed_models")
    expect_error(unchanged(s, lambda: call(s, "PATCH", "/admin/keys/" + doc["prefix"],
                                           {"secret": "x"})),
                 400, "invalid_request_error", "secret")


def test_admin_unknown_paths_404_and_wrong_methods_405_with_allow():
    s = admin_stack()
    for path in ("/admin/", "/admin/nothing", "/admin/keys/tg-AAAAAAAA/spin",
                 "/admin/keys/a/b/c", "/admin/users//x", "/admin/users/%zz"):
        expect_error(call(s, "GET", path), 404, "not_found_error")
    for method, path, allow in (("DELETE", "/admin/keys", "GET, POST"),
                                ("GET", "/admin/keys/tg-AAAAAAAA", "PATCH, DELETE"),
                                ("GET", "/admin/keys/tg-AAAAAAAA/rotate", "POST"),
                                ("POST", "/admin/quotas", "GET, PUT, DELETE"),
                                ("POST", "/admin/audit", "GET")):
        status, headers, doc = call(s, method, path, {} if method != "GET" else None)
        assert status == 405 and headers.get("allow") == allow, (method, path, status, headers)
        assert error_body(json.dumps(doc))[0] == "invalid_request_error"
    # one trailing slash is tolerated
    assert call(s, "GET", "/admin/keys/")[0] == 200


def test_admin_audit_lists_newest_first():
    s = admin_stack()
    group = uniq("audit-group")
    call(s, "PUT", "/admin/groups/" + group, {})
    call(s, "PUT", "/admin/groups/" + group, {"allowed_models": ["claude-sonnet-4-5"]})
    status, _, doc = call(s, "GET", "/admin/audit?limit=2")
    assert status == 200 and len(doc["audit"]) == 2, doc
    newest, older = doc["audit"]
    assert newest["id"] > older["id"] and newest["subject"] == "group:" + group, doc
    assert newest["actor"] == ACTOR and newest["action"] == "group.upsert", newest
    assert newest["before"]["allowed_models"] is None, newest
    assert newest["after"]["allowed_models"] == ["claude-sonnet-4-5"], newest
    assert len(call(s, "GET", "/admin/audit")[2]["audit"]) <= 100


def test_admin_database_down_is_503_and_recovers():
    # its own stack: this test stops and starts the database
    os.environ["TOLLGATE_ADMIN_KEY"] = ADMIN_KEY
    s = stack(tag="admin-outage", extra_config=ADMIN_CONFIG)
    assert call(s, "GET", "/admin/keys")[0] == 200
    s.stop_db()
    try:
        for method, path, body in (("GET", "/admin/keys", None),
                                   ("POST", "/admin/keys", {"name": "n", "user": "u",
                                                            "group": "g"})):
            expect_error(call(s, method, path, body), 503, "api_error", "database")
    finally:
        s.start_db()
    # reads are retried once on a connection the restart broke: no 503 now
    statuses = [call(s, "GET", "/admin/keys")[0] for _ in range(24)]
    assert set(statuses) == {200}, statuses


# ---- secrets ----------------------------------------------------------------------

def test_admin_secrets_stay_out_of_responses_and_logs():
    s = admin_stack()
    key, doc = create_key(s)
    call(s, "POST", "/admin/keys/%s/rotate" % doc["prefix"], {"grace_s": 60})
    # the lists and the audit log show prefixes, never secrets or hashes (call checks)
    for path in ("/admin/keys", "/admin/audit?limit=1000", "/admin/users", "/admin/quotas"):
        assert call(s, "GET", path)[0] == 200
    assert s.psql("select count(*) from tollgate.audit_log where before ? 'key_hash' "
                  "or after ? 'key_hash' or before ? 'previous_key_hash' "
                  "or after ? 'previous_key_hash'")[0][0] == "0"
    logs = {"worker log": s.logs(), "worker stderr": s.worker_stderr(),
            "lighttpd error log": s.frontend_errors()}
    assert ACTOR in logs["worker log"], "the access log names the admin actor"
    for name, text in logs.items():
        assert ADMIN_KEY not in text, "the admin key is in the %s" % name
        for secret, hash_hex in CREATED.items():
            assert secret[11:] not in text, "a created key is in the %s" % name
            assert hash_hex not in text, "a created key's hash is in the %s" % name
        for token in SENT_TOKENS:
            assert token.rsplit(".", 1)[1] not in text, "a JWT is in the %s" % name
