"""PostgreSQL outages: fail closed with 503, recover without restarting workers."""

import json
import time

from harness import error_body, pid_gone, stack


def outage_stack():
    # Its own stack: these tests stop and start the database.
    return stack(tag="outage")


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    result = fn(*args, **kw)
    return result, time.monotonic() - t0


def test_health_reflects_database():
    s = outage_stack()
    assert s.request("GET", "/health")[0] == 200
    s.stop_db()
    try:
        (status, _, body), elapsed = timed(s.request, "GET", "/health", timeout=15)
        assert status == 503, (status, body)
        assert json.loads(body).get("database") != "ok", body
        assert elapsed < 5, "/health took %.1fs with the database down" % elapsed
    finally:
        s.start_db()


def test_database_restart_mid_run():
    s = outage_stack()
    pids = list(s.worker_pids)
    key = s.default_key()
    for _ in range(4):
        status, _, body = s.messages(key)
        assert status == 200, ("before the outage", status, body)
    s.stop_db()
    try:
        for i in range(4):
            (status, _, body), elapsed = timed(s.messages, key, timeout=15)
            assert status == 503, ("during the outage", status, body[:300])
            assert error_body(body)[0] == "api_error", body
            assert elapsed < 5, "a request took %.1fs with the database down" % elapsed
    finally:
        s.start_db()
    # More requests than pooled connections, so every pooled connection of
    # every worker must have recovered.
    for i in range(24):
        status, headers, body = s.messages(key)
        assert status == 200, ("request %d after the restart" % i, status, body[:300])
    s.usage(headers["x-request-id"])
    assert not any(pid_gone(p) for p in pids), "a worker died"
