"""Requests nobody waits for any more are never sent to the provider nor
billed (issue 12, hole 1).

Before its reserve and again just before its forward, a request is checked:
its client gone (lighttpd closed or aborted its FastCGI connection: outcome
"client_gone", 499 in the access log, nothing sent) or older than
server.queue_deadline_ms (503 overloaded, outcome "queue_timeout"). Either
way the reservation goes back and no usage row is written. The age comes
from the web server's X-Request-Start stamp when there is one, else from the
FastCGI accept. A client that left is seen even when lighttpd keeps the
FastCGI connection open (it takes a FIN for a half-close): the worker asks the
kernel for lighttpd's socket of that client (peer.c).
"""

import json
import socket
import struct
import threading
import time

from harness import stack, wait_for
from test_quotas import group_usage, quota_row, reservations, uniq

THREADS = 2
ABANDONED = 6


def gone_stack(frontend="lighttpd"):
    return stack(tag="client_gone" if frontend == "lighttpd" else "client_gone_" + frontend,
                 processes=1, threads=THREADS, timeout_ms=20000, frontend=frontend)


def send_and_leave(s, body, headers, after_s, abort=True):
    """Sends POST /v1/messages on a raw socket and closes it after after_s
    without reading the answer (a client that gave up)."""
    data = json.dumps(body).encode()
    head = "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "".join("%s: %s\r\n" % kv for kv in headers.items())
    head += "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(data)
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:
        sock.sendall(head.encode() + data)
        sock.settimeout(after_s)
        try:
            got = sock.recv(1)
        except socket.timeout:
            got = b""
        assert got == b"", "an abandoned request was answered within %.1f s" % after_s
    finally:
        if abort:  # RST, as a client killed or timed out with unread data does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


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


def check_client_gone_while_queued(frontend, resets=True):
    """With every thread busy, six requests wait (one in a worker's admission
    wait, the rest in lighttpd and the FastCGI backlog); their clients give up
    after 1 s, half closing (FIN), half resetting (RST). lighttpd keeps their
    FastCGI connections open, yet none reaches the provider: each is dropped
    as client_gone (499), its reservation given back, no usage row; quotas stay
    exact and a later request is served."""
    s = gone_stack(frontend)
    group = uniq("gone")
    key = s.key(group=group, user=uniq("gone-user"))
    for metric, window, limit in (("usd", "month", "100.00"), ("tokens", "day", "10000000"),
                                  ("requests", "hour", "100000")):
        s.ctl("quota", "set", "--group", group, "--metric", metric, "--window", window,
              "--limit", limit)
    busy_marker, gone_marker = uniq("busy"), uniq("abandoned")
    usage = {"input_tokens": 11, "output_tokens": 7}
    seen_before = len(access_records(s))
    # every thread busy for 4 s
    busy_results = []

    def busy(i):
        busy_results.append(s.messages(key, prompt="%s %d" % (busy_marker, i),
                                       directive={"delay_ms": 4000, "usage": usage}))
    busy_threads = [threading.Thread(target=busy, args=(i,)) for i in range(THREADS)]
    for t in busy_threads:
        t.start()
    wait_for(lambda: len(s.mock_requests(busy_marker)) == THREADS, 10,
             "every thread busy with a slow request")
    # requests that queue behind them, whose clients leave after 1 s
    leavers = [threading.Thread(target=send_and_leave, args=(
        s, s.body(prompt="%s %d" % (gone_marker, i)),
        s.auth(key), 1.0, resets and i % 2 == 0)) for i in range(ABANDONED)]  # half FIN, half RST
    for t in leavers:
        t.start()
    for t in leavers:
        t.join(15)
    for t in busy_threads:
        t.join(30)
    assert sorted(r[0] for r in busy_results) == [200] * THREADS, busy_results
    # the abandoned requests reach the workers once the threads are free
    def taken_up():  # (the abandoned ones may be refused before their key is looked up)
        return [r for r in access_records(s)[seen_before:] if r.get("path") == "/v1/messages"]
    wait_for(lambda: len(taken_up()) >= THREADS + ABANDONED, 20,
             "the abandoned requests to be taken up")
    forwarded = len(s.mock_requests(gone_marker))
    assert forwarded == 0, "%d of %d abandoned requests were sent to the provider" % (
        forwarded, ABANDONED)
    outcomes = sorted(r["outcome"] for r in taken_up())
    assert outcomes == ["client_gone"] * ABANDONED + ["ok"] * THREADS, outcomes
    assert all(r["http_status"] == 499 for r in taken_up() if r["outcome"] == "client_gone")
    # a later request still goes through
    status, _, _ = s.messages(key, prompt=uniq("after"), directive={"usage": usage})
    assert status == 200
    wait_for(lambda: reservations(s, group) == 0, 20, "every reservation to be released")
    n, spent, tokens = group_usage(s, group)
    assert n == THREADS + 1, "%d usage rows, want %d (the busy ones and the later one)" % (
        n, THREADS + 1)
    assert s.psql("select count(*) from tollgate.usage where group_id = '%s' "
                  "and outcome <> 'ok'" % group) == [["0"]]
    for metric, window, used in (("usd", "month", spent), ("tokens", "day", tokens),
                                 ("requests", "hour", n)):
        q = quota_row(s, "group", group, metric, window)
        assert (q["used"], q["reserved"]) == (used, 0), \
            "%s: used %d reserved %d, want %d and 0" % (metric, q["used"], q["reserved"], used)


def test_client_gone_while_queued_is_never_forwarded_nor_billed():
    check_client_gone_while_queued("lighttpd")


def test_client_gone_while_queued_behind_apache_is_never_forwarded_nor_billed():
    """Behind Apache too, for clients that close (FIN). Apache passes the Host
    header's port as SERVER_PORT, so a lone listener there is not taken for
    proof (another program may listen on it): a client that reset (RST) before
    its request was first looked at is not seen to have left."""
    check_client_gone_while_queued("apache", resets=False)
