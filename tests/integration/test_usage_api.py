"""GET /v1/usage (issue 5): the caller's own usage, per model, with what is
left of its quotas; the period parameters; refusals in the Anthropic shape."""

import json
import secrets

from harness import error_body, main_stack

HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5"


def _usage(s, key, query=""):
    status, headers, body = s.request("GET", "/v1/usage" + query, None, s.auth(key))
    return status, (json.loads(body) if status == 200 else body)


def test_usage_is_the_callers_own_and_adds_up():
    s = main_stack()
    group = "ua-" + secrets.token_hex(3)
    mine, other = s.key(group=group, user="ua-me"), s.key(group=group, user="ua-other")
    sent = [(HAIKU, 11, 22), (HAIKU, 5, 7), (SONNET, 3, 4)]
    for model, inp, out in sent:
        status, _, body = s.messages(mine, model=model,
                                     directive={"usage": {"input_tokens": inp, "output_tokens": out}})
        assert status == 200, body
    s.messages(other, directive={"usage": {"input_tokens": 1000, "output_tokens": 1000}})
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "month",
          "--limit", "500.00")
    status, doc = _usage(s, mine, "?days=1")
    assert status == 200, doc
    total = doc["total"]
    assert total["requests"] == 3, doc
    assert (total["input_tokens"], total["output_tokens"]) == (19, 33), doc
    rows = s.psql("select sum(cost_micros) from tollgate.usage u join tollgate.api_keys k"
                  " on k.id = u.api_key_id where k.user_id = 'ua-me' and k.group_id = '%s'" % group)
    assert str(total["cost_micros"]) == rows[0][0], (total, rows)
    by_model = {m["model"]: m for m in doc["by_model"]}
    assert by_model[HAIKU]["requests"] == 2 and by_model[SONNET]["requests"] == 1, doc
    assert sum(m["cost_micros"] for m in doc["by_model"]) == total["cost_micros"]
    quota = [q for q in doc["quotas"] if q["subject_kind"] == "group"]
    assert quota and quota[0]["limit"] == 500000000 and quota[0]["metric"] == "usd", doc
    assert quota[0]["remaining"] == 500000000 - quota[0]["used"] - quota[0]["reserved"], doc


def test_usage_period_parameters():
    s = main_stack()
    key = s.key(group="ua-period")
    status, _, body = s.messages(key)
    assert status == 200, body
    today = s.psql("select (now() at time zone 'UTC')::date")[0][0]
    status, doc = _usage(s, key, "?from=%s&to=%s" % (today, today))
    assert status == 200 and doc["total"]["requests"] == 1, doc
    status, doc = _usage(s, key, "?from=2020-01-01&to=2020-01-31")
    assert status == 200 and doc["total"]["requests"] == 0 and doc["by_model"] == [], doc
    for query, param in (("?days=0", "days"), ("?days=x", "days"), ("?from=2026-13", "from"),
                         ("?to=2026-01-01", "from"), ("?days=3&from=2026-01-01", "days"),
                         ("?from=2026-02-30", "from"), ("?limit=3", "(unknown)")):
        status, body = _usage(s, key, query)
        assert status == 400, (query, status, body)
        etype, message = error_body(body)
        assert etype == "invalid_request_error" and '"%s"' % param in message, (query, message)


def test_usage_needs_a_valid_credential():
    s = main_stack()
    status, body = _usage(s, "tg-" + "x" * 43)
    assert status == 401 and error_body(body)[0] == "authentication_error", body
    status, _, body = s.request("GET", "/v1/usage", None, {})
    assert status == 401, body
