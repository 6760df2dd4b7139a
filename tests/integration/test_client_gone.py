"""Requests nobody waits for any more are never sent to the provider nor
billed (issue 12, hole 1).

Before its reserve and again just before its forward, a request is checked:
its client gone (lighttpd closed or aborted its FastCGI connection: outcome
"client_gone", 499 in the access log, nothing sent) or older than
server.queue_deadline_ms (503 overloaded, outcome "queue_timeout"). Either
way the reservation goes back and no usage row is written. The age comes
from the web server's X-Request-Start stamp when there is one, else from the
FastCGI accept. The client-gone case depends on lighttpd noticing the client
left, which it does not do reliably (see the report): it is not tested here.
"""

import json
import time

from harness import stack, wait_for
from test_quotas import group_usage, quota_row, reservations, uniq


def gone_stack():
    return stack(tag="client_gone", processes=1, threads=2, timeout_ms=20000)


def access_records(s):
    """The worker's access lines (event "request")."""
    out = []
    for line in s.logs().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event") == "request":
            out.append(rec)
    return out


def test_client_gone_queue_deadline_refuses_without_forwarding_or_billing():
    """A request that waited past server.queue_deadline_ms (its age from the web
    server's X-Request-Start stamp) is a 503 in the client's dialect: nothing
    goes upstream, no usage row, the reservation is given back."""
    s = gone_stack()
    group = uniq("late")
    key = s.key(group=group, user=uniq("late-user"))
    for metric, window, limit in (("usd", "month", "100.00"), ("requests", "hour", "100000")):
        s.ctl("quota", "set", "--group", group, "--metric", metric, "--window", window,
              "--limit", limit)
    marker = uniq("late")
    now = time.time()
    for stamp in ("t=%d" % int((now - 60) * 1e6), "t=%.3f" % (now - 45), "%d" % int(now - 40)):
        headers = dict(s.auth(key), **{"x-request-start": stamp})
        status, hdrs, body = s.request("POST", "/v1/messages",
                                       s.body(prompt=marker, directive={"usage": {}}), headers)
        assert status == 503, (stamp, status, body)
        err = json.loads(body)
        assert err["type"] == "error" and err["error"]["type"] == "overloaded_error", err
        assert hdrs.get("retry-after") == "1", hdrs
    headers = {"authorization": "Bearer " + key, "x-request-start": "t=%d" % int((now - 60) * 1e3)}
    status, _, body = s.request("POST", "/v1/chat/completions", {
        "model": "claude-haiku-4-5", "messages": [{"role": "user", "content": marker}]}, headers)
    assert status == 503 and json.loads(body)["error"]["code"] == "overloaded", (status, body)
    # a fresh stamp, a stamp from the future and a malformed one are served
    for stamp in ("t=%d" % int(time.time() * 1e6), "t=%d" % int((time.time() + 3600) * 1e6),
                  "yesterday"):
        headers = dict(s.auth(key), **{"x-request-start": stamp})
        status, _, body = s.request("POST", "/v1/messages", s.body(prompt=uniq("fresh")),
                                    headers)
        assert status == 200, (stamp, status, body)
    assert s.mock_requests(marker) == [], "a late request was sent to the provider"
    wait_for(lambda: reservations(s, group) == 0, 20, "every reservation to be released")
    n, spent, _ = group_usage(s, group)
    assert n == 3, "%d usage rows, want the 3 served" % n
    for metric, window, used in (("usd", "month", spent), ("requests", "hour", n)):
        q = quota_row(s, "group", group, metric, window)
        assert (q["used"], q["reserved"]) == (used, 0), (metric, q)
    # refused before its key was looked up: the access line has no group
    lines = [r for r in access_records(s) if r.get("outcome") == "queue_timeout"]
    assert len(lines) == 4 and all(r["http_status"] == 503 for r in lines), lines
