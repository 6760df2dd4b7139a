"""RBAC through the whole stack: a matrix of groups x roles x key model lists
x models x endpoints, for API keys and for JWT callers.

A request passes only if its group, its role and its key each allow the
endpoint and the model (tollgate.groups / tollgate.roles allowed_endpoints and
allowed_models, api_keys.allowed_models; null: no restriction; '*' and '?'
globs, everything else literal).  The expected answer of every cell is
computed here from those rules, independently of the SQL: 200, or 403
permission_error naming the model (or endpoint) and who refused -- group "g",
role "r", or this API key -- checked endpoint first, then group, role, key.
"""

import re
import secrets

from harness import error_body, stack
from test_jwt import AUD, ISS, claims, mint_hs256, secret

EXTRA_MODELS = {"claude-opus-4-5": {"provider": "anthropic"},
                "claude-3-5-haiku-20241022": {"provider": "anthropic"}}
HAIKU = "claude-haiku-4-5-20251001"
# what the client asks for -> the canonical name RBAC judges (an alias is its model)
REQUESTED = {HAIKU: HAIKU, "claude-haiku-4-5": HAIKU, "claude-sonnet-4-5": "claude-sonnet-4-5",
             "claude-opus-4-5": "claude-opus-4-5",
             "claude-3-5-haiku-20241022": "claude-3-5-haiku-20241022"}
MESSAGES, LIST = "/v1/messages", "/v1/models"

# id -> (allowed_models, allowed_endpoints)
GROUPS = {
    "rbac-open": (None, None),
    "rbac-haiku": (["claude-haiku-*"], [MESSAGES, LIST]),
    "rbac-messages-only": (["claude-sonnet-4-5", "claude-opus-*", "*haiku-2024*"], [MESSAGES]),
    # '_' and '%' are literal, not LIKE wildcards: claude_sonnet% matches nothing here
    "rbac-literal": (["claude_sonnet%", "claude-opus-4-?"], ["/v1/*"]),
}
ROLES = {
    "user": None,                     # no tollgate.roles row: no restriction
    "rbac-r-open": (None, None),
    "rbac-r-haiku": (["*haiku*"], None),
    "rbac-r-list": (None, [LIST]),
    "rbac-r-glob": (["claude-?????-4-5*", "claude-opus-4-5"], ["/v1/m*"]),
}
KEY_MODELS = {"any": None, "two": ["claude-sonnet-4-5", "claude-haiku-4-5-2025*"]}


def glob(name, patterns):
    if patterns is None:
        return True
    return any(re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                                    for c in p), name, re.S) for p in patterns)


def expected(group, role, key_models, endpoint, model, via_key):
    """(200, None) or (403, message) by the rules, in their order."""
    g_models, g_eps = GROUPS[group]
    r_models, r_eps = ROLES[role] or (None, None)
    if not glob(endpoint, g_eps):
        return 403, 'endpoint "%s" is not allowed for group "%s"' % (endpoint, group)
    if not glob(endpoint, r_eps):
        return 403, 'endpoint "%s" is not allowed for role "%s"' % (endpoint, role)
    if model is not None:
        if not glob(model, g_models):
            return 403, 'model "%s" is not allowed for group "%s"' % (model, group)
        if not glob(model, r_models):
            return 403, 'model "%s" is not allowed for role "%s"' % (model, role)
        if via_key and not glob(model, key_models):
            return 403, 'model "%s" is not allowed for this API key' % model
    return 200, None


def sql_array(values):
    if values is None:
        return "null"
    return "array[%s]::text[]" % ", ".join("'%s'" % v for v in values)


def rbac_stack():
    jwt = {"issuer": ISS, "audience": AUD, "create_unknown": True,
           "keys": [{"kid": "hs256", "alg": "HS256", "secret": secret("hs256")}]}
    s = stack(tag="rbac", processes=2, threads=2,
              extra_config={"models": EXTRA_MODELS, "auth": {"jwt": [jwt]}})
    if not getattr(s, "rbac_prepared", False):
        sql = []
        for g, (models, eps) in GROUPS.items():
            sql.append("insert into tollgate.groups (id, allowed_models, allowed_endpoints) "
                       "values ('%s', %s, %s) on conflict (id) do update set "
                       "allowed_models = excluded.allowed_models, "
                       "allowed_endpoints = excluded.allowed_endpoints"
                       % (g, sql_array(models), sql_array(eps)))
        for r, rules in ROLES.items():
            if rules is not None:
                sql.append("insert into tollgate.roles (id, allowed_models, allowed_endpoints) "
                           "values ('%s', %s, %s) on conflict do nothing"
                           % (r, sql_array(rules[0]), sql_array(rules[1])))
        s.psql("; ".join(sql))
        s.rbac_prepared = True
    return s


def run_matrix(s, callers):
    """callers: [(label, group, role, key_models name, headers, via_key)].
    Sends every model and both endpoints for each; returns (cells, problems)."""
    problems, cells, denied_markers = [], 0, []
    tag = secrets.token_hex(3)
    for label, group, role, km, headers, via_key in callers:
        requests = [(MESSAGES, requested) for requested in REQUESTED] + [(LIST, None)]
        for endpoint, requested in requests:
            model = REQUESTED.get(requested)
            want_status, want_message = expected(group, role, KEY_MODELS[km], endpoint, model,
                                                 via_key)
            cell = "%s %s %s" % (label, endpoint, requested or "")
            marker = "rbac-%s-%04d." % (tag, cells)
            cells += 1
            if endpoint == MESSAGES:
                status, _, body = s.request("POST", MESSAGES,
                                            s.body(model=requested, prompt=marker), headers)
            else:
                status, _, body = s.request("GET", LIST, None, headers)
            if status != want_status:
                problems.append("%s: %d, want %d (%s): %s" % (
                    cell, status, want_status, want_message, body[:160]))
                continue
            if status == 200:
                if endpoint == LIST and b'"data"' not in body:
                    problems.append("%s: not a model list: %s" % (cell, body[:160]))
                continue
            denied_markers.append(marker)
            etype, message = error_body(body)
            if (etype, message) != ("permission_error", want_message):
                problems.append("%s: (%s, %r), want (permission_error, %r)" % (
                    cell, etype, message, want_message))
    reached = [r for r in s.mock_requests("rbac-%s-" % tag)
               if any(m in r["body"] for m in denied_markers)]
    if reached:
        problems.append("%d denied requests reached the provider" % len(reached))
    return cells, problems


def test_rbac_matrix_api_keys():
    s = rbac_stack()
    callers, keys = [], {}
    for g in GROUPS:
        for r in ROLES:
            for km, models in KEY_MODELS.items():
                key = s.key(group=g, user="u-%s-%s" % (g, r), role=r,
                            name="rbac-%s-%s-%s" % (g, r, km))
                if models is not None:
                    s.psql("update tollgate.api_keys set allowed_models = %s where prefix = '%s'"
                           % (sql_array(models), key[:11]))
                keys[(g, r, km)] = key
                callers.append(("key %s/%s/%s" % (g, r, km), g, r, km, s.auth(key), True))
    cells, problems = run_matrix(s, callers)
    assert cells >= 2 * 2 * 2 * 4, cells
    assert not problems, "%d of %d cells wrong:\n%s" % (len(problems), cells,
                                                         "\n".join(problems[:40]))
    # one usage row per allowed POST, none for a denial
    for (g, r, km), key in keys.items():
        want = sum(1 for m in REQUESTED.values()
                   if expected(g, r, KEY_MODELS[km], MESSAGES, m, True)[0] == 200)
        got = s.usage_count(key)
        assert got == want, "key %s/%s/%s: %d usage rows, want %d" % (g, r, km, got, want)


def test_rbac_matrix_jwt_callers():
    s = rbac_stack()
    callers = []
    for g in GROUPS:
        for r in ROLES:
            user = "jwt-%s-%s" % (g, r)
            # role "user" is also what a token without a role claim gets
            token = mint_hs256(claims(sub=user, group_id=g, role=None if r == "user" else r))
            headers = {"anthropic-version": "2023-06-01", "authorization": "Bearer " + token}
            callers.append(("jwt %s/%s" % (g, r), g, r, "any", headers, False))
    cells, problems = run_matrix(s, callers)
    assert cells >= 2 * 2 * 4 * 2, cells
    assert not problems, "%d of %d cells wrong:\n%s" % (len(problems), cells,
                                                         "\n".join(problems[:40]))


def test_rbac_changes_apply_to_the_next_request():
    """Rules are read in the request's own round trip: no cache to wait for."""
    s = rbac_stack()
    g = "rbac-live-%s" % secrets.token_hex(3)
    key = s.key(group=g, user="live-" + g)
    assert s.messages(key, model="claude-sonnet-4-5")[0] == 200
    s.psql("update tollgate.groups set allowed_models = '{claude-haiku-*}' where id = '%s'" % g)
    for _ in range(4):   # both worker processes
        status, _, body = s.messages(key, model="claude-sonnet-4-5")
        assert status == 403 and error_body(body) == (
            "permission_error",
            'model "claude-sonnet-4-5" is not allowed for group "%s"' % g), (status, body)
        assert s.messages(key, model="claude-haiku-4-5")[0] == 200
    s.psql("update tollgate.groups set allowed_models = null, allowed_endpoints = '{/v1/models}' "
           "where id = '%s'" % g)
    status, _, body = s.messages(key, model="claude-haiku-4-5")
    assert status == 403 and error_body(body) == (
        "permission_error", 'endpoint "/v1/messages" is not allowed for group "%s"' % g), body
    assert s.request("GET", "/v1/models", None, s.auth(key))[0] == 200

