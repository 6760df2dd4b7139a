"""A model without a price in force is refused before the provider (issue 9):
400 invalid_request_error naming the model, nothing reserved, nothing sent,
no usage row; served again as soon as an operator sets a price.

The stack is this file's own: the test removes a price from its database.
"""

import secrets

from harness import error_body, stack

MODEL = "claude-opus-4-5"


def test_unpriced_model_is_400_and_never_reaches_the_provider():
    s = stack(tag="unpriced", processes=1, threads=2,
              extra_config={"models": {MODEL: {"provider": "anthropic"}}})
    key = s.key(group="unpriced", user="unpriced-user")
    status, headers, _ = s.messages(key, model=MODEL)
    assert status == 200
    s.usage(headers["x-request-id"])   # settled: the count below is stable
    prices = s.psql("select effective_from, input_micros_per_mtok, output_micros_per_mtok, "
                    "cache_read_micros_per_mtok, cache_write_micros_per_mtok "
                    "from tollgate.prices where model = '%s'" % MODEL)
    assert prices, "no seed price for %s" % MODEL
    s.psql("delete from tollgate.prices where model = '%s'" % MODEL)
    # a usd quota would have to hold the request's cost: nothing is reserved on it
    s.psql("select tollgate.quota_set('group', 'unpriced', 'usd', 'month', 1000000, 'test')")

    marker = "unpriced-" + secrets.token_hex(4)
    status, headers, body = s.messages(key, model=MODEL, prompt=marker)
    assert status == 400, (status, body[:300])
    assert error_body(body) == (
        "invalid_request_error",
        'model "%s" has no price: an operator must set one before it is served' % MODEL), body
    assert headers.get("x-request-id")
    assert not s.mock_requests(marker), "an unpriced model reached the provider"
    # the refused request never settles: its id has no usage row
    assert s.psql("select count(*) from tollgate.usage where request_id = '%s'"
                  % headers["x-request-id"].replace("'", "")) == [["0"]]
    assert s.psql("select reserved, used from tollgate.quotas where subject_kind = 'group' "
                  "and subject_id = 'unpriced' and metric = 'usd'") == [["0", "0"]]
    assert s.psql("select count(*) from tollgate.reservations where group_id = 'unpriced'") \
        == [["0"]]
    # other models are served meanwhile
    assert s.messages(key, model="claude-sonnet-4-5")[0] == 200

    for row in prices:
        s.psql("insert into tollgate.prices (model, effective_from, input_micros_per_mtok, "
               "output_micros_per_mtok, cache_read_micros_per_mtok, "
               "cache_write_micros_per_mtok) values ('%s', '%s', %s, %s, %s, %s)"
               % ((MODEL,) + tuple(row)))
    status, _, body = s.messages(key, model=MODEL)
    assert status == 200, (status, body[:300])
