"""No usage is lost: a provider call that finishes while PostgreSQL is down is
spooled to disk (fsync'd) and replayed, exactly once, when it is back."""

import threading
import time

from harness import stack


def spool_stack():
    return stack(tag="spool", processes=1)


def test_usage_settled_during_outage_is_replayed():
    s = spool_stack()
    key = s.default_key()
    assert s.messages(key)[0] == 200
    result = {}

    def slow_call():
        directive = {"delay_ms": 2500, "usage": {"input_tokens": 11, "output_tokens": 7}}
        result["reply"] = s.messages(key, directive=directive, timeout=30)

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(0.8)  # past authentication, waiting on the provider
    s.stop_db()
    try:
        caller.join(30)
        status, headers, body = result["reply"]
        assert status == 200, (status, body[:300])
        assert "x-tollgate-cost-usd" not in headers, "cost cannot be known without the database"
        spooled_id = headers["x-request-id"]
        assert "usage spooled" in s.logs(), "the spool was not used"
    finally:
        s.start_db()
    # the next settled request replays the spool
    assert s.messages(key)[0] == 200
    row = s.usage(spooled_id)
    assert (row["input_tokens"], row["output_tokens"]) == ("11", "7"), row
    assert row["http_status"] == "200" and row["outcome"] == "ok", row
    count = s.psql("select count(*) from tollgate.usage where request_id = '%s'" % spooled_id)
    assert count[0][0] == "1", count
    # a replayed spool is emptied: more requests do not duplicate anything
    assert s.messages(key)[0] == 200
    assert s.psql("select count(*) from tollgate.usage where request_id = '%s'"
                  % spooled_id)[0][0] == "1"
