"""Overload and capacity, supervised workers (issue 12): the master replaces a
killed worker within seconds and /health says "degraded" meanwhile; a host
whose request threads are all busy still answers /health and /metrics at once
and refuses new requests with a quick 503 in the client's dialect; and the
shipped sizing (4 workers x 256 threads) holds 1,000 open streams with short
requests, /health and the workers' memory in bounds."""

import json
import os
import re
import resource
import selectors
import signal
import socket
import time

import harness
from harness import error_body, stack, wait_for


def health(s, timeout=5):
    t0 = time.monotonic()
    status, _, body = s.request("GET", "/health", timeout=timeout)
    return status, json.loads(body), time.monotonic() - t0


def gauges(s):
    status, _, body = s.request("GET", "/metrics", timeout=5)
    assert status == 200, (status, body[:300])
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r"^(tollgate_(?:worker|workers|requests_admitted|requests_capacity|overload)\w*) (\d+)$",
        body.decode(), re.M)}


def served_by(s, request_id):
    def find():
        for line in s.logs().splitlines():
            if '"event":"request"' in line and request_id in line:
                return json.loads(line)["pid"]
        return None
    return wait_for(find, 5, "the access log line of %s" % request_id)


def test_killed_worker_is_replaced_and_health_is_degraded_meanwhile():
    s = stack(tag="capacity-kill", processes=2, threads=2)
    status, doc, _ = health(s)
    assert status == 200 and doc["status"] == "ok", doc
    assert doc["workers"] == {"alive": 2, "configured": 2}, doc
    before = s.workers()
    assert len(before) == 2, before
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    s.worker_pids.remove(victim)   # replaced, not a worker that died for good
    t_killed = time.monotonic()
    seen = []
    while time.monotonic() - t_killed < 5:
        status, doc, _ = health(s)
        # a request that met the dying worker's connection gets the web
        # server's own JSON error (conf/errors): no workers to report
        seen.append((status, doc.get("status", doc.get("type")),
                     doc.get("workers", {}).get("alive")))
        now = s.workers()
        if status == 200 and len(now) == 2 and victim not in now:
            break
        time.sleep(0.02)
    took = time.monotonic() - t_killed
    replaced = [p for p in s.workers() if p not in before]
    assert len(replaced) == 1 and victim not in s.workers(), (before, s.workers())
    assert took < 5, "replaced after %.1f s: %s" % (took, seen)
    assert (503, "degraded", 1) in seen, "never degraded while a worker was missing: %s" % seen
    assert seen[-1] == (200, "ok", 2), seen
    # the new worker serves: enough requests that both workers answer some
    key = s.default_key()
    pids = set()
    for _ in range(20):
        status, headers, body = s.messages(key)
        assert status == 200, (status, body[:300])
        pids.add(served_by(s, headers["x-request-id"]))
        if replaced[0] in pids:
            break
    assert replaced[0] in pids, (replaced, pids)
    assert gauges(s)["tollgate_workers_respawned_total"] >= 1


def test_saturated_host_answers_health_and_metrics_and_refuses_quickly():
    s = stack(tag="capacity-saturated", processes=1, threads=3,
              extra_config={"server": {"drain_timeout_ms": 0, "queue_timeout_ms": 0}})
    key = s.default_key()
    directive = {"event_delay_ms": 500, "chunks": 40}   # about 20 s each
    streams = []
    try:
        for _ in range(3):
            st = s.stream(s.body(directive=directive, stream=True, max_tokens=2000),
                          s.auth(key))
            assert st.status == 200, st.status
            streams.append(st)
        status, doc, took = health(s)
        assert status == 200 and doc["status"] == "ok", doc
        assert took < 1, "/health took %.2f s with every request thread busy" % took
        assert doc["threads"] == {"busy": 4, "total": 4}, doc   # 3 streams + this one
        t0 = time.monotonic()
        g = gauges(s)
        assert time.monotonic() - t0 < 1
        assert g["tollgate_worker_threads_busy"] == g["tollgate_worker_threads"] == 4, g
        assert g["tollgate_requests_admitted"] == g["tollgate_requests_capacity"] == 3, g
        assert g["tollgate_workers_alive"] == g["tollgate_workers_configured"] == 1, g

        t0 = time.monotonic()
        status, headers, body = s.messages(key)
        took = time.monotonic() - t0
        assert status == 503, (status, body[:300])
        assert took < 1, "the refusal took %.2f s" % took
        assert error_body(body)[0] == "overloaded_error", body
        assert headers.get("retry-after") == "1", headers

        t0 = time.monotonic()
        status, headers, body = s.request(
            "POST", "/v1/chat/completions",
            {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]},
            {"authorization": "Bearer " + key}, timeout=5)
        took = time.monotonic() - t0
        assert status == 503 and took < 1, (status, took, body[:300])
        doc = json.loads(body)
        assert set(doc) == {"error"} and doc["error"]["type"] == "server_error", doc
        assert doc["error"]["message"] and headers.get("retry-after") == "1", (doc, headers)
        assert gauges(s)["tollgate_overload_rejections_total"] >= 2
    finally:
        for st in streams:
            st.conn.close()
    # the threads come back: the next request is served
    wait_for(lambda: gauges(s)["tollgate_requests_admitted"] == 0, 10, "the streams to end")
    status, _, body = s.messages(key)
    assert status == 200, (status, body[:300])


STREAMS = 1000


def open_streams(s, key, n, directive):
    """n streamed /v1/messages on raw sockets; returns the sockets once each
    answered its status line (all still open)."""
    body = json.dumps(s.body(directive=directive, stream=True, max_tokens=4000)).encode()
    head = ("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: %s\r\n"
            "anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
            "content-length: %d\r\n\r\n" % (key, len(body))).encode()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))
    sel = selectors.DefaultSelector()
    socks, got = [], {}
    for i in range(n):
        # many clients, as in real use: lighttpd caps connections per address
        # (conf/lighttpd-peraddr.lua, 256), so 200 per loopback address
        source = ("127.0.1.%d" % (1 + i // 200), 0)
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10, source_address=source)
        c.sendall(head + body)
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, b"")
        socks.append(c)
    deadline = time.monotonic() + 40
    while len(got) < n and time.monotonic() < deadline:
        for k, _ in sel.select(timeout=1):
            data = k.fileobj.recv(65536)
            if not data:
                got[k.fileobj] = b"closed"
                sel.unregister(k.fileobj)
            elif k.fileobj not in got:
                got[k.fileobj] = data.split(b"\r\n", 1)[0]
    statuses = {}
    for line in got.values():
        statuses[line] = statuses.get(line, 0) + 1
    return sel, socks, statuses


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_shipped_sizing_holds_a_thousand_open_streams():
    s = stack(tag="capacity-1000", processes=4, threads=256,
              extra_config={"server": {"drain_timeout_ms": 0, "queue_timeout_ms": 0}})
    key = s.default_key()
    t0 = time.monotonic()
    sel, socks, statuses = open_streams(s, key, STREAMS, {"event_delay_ms": 2000, "chunks": 20})
    opened = time.monotonic() - t0
    try:
        assert statuses == {b"HTTP/1.1 200 OK": STREAMS}, statuses
        status, doc, t_health = health(s)
        assert status == 200 and t_health < 1, (status, doc, t_health)
        t1 = time.monotonic()
        status, _, body = s.messages(key)
        t_short = time.monotonic() - t1
        assert status == 200 and t_short < 1, (status, t_short, body[:300])
        g = gauges(s)
        assert g["tollgate_requests_admitted"] >= STREAMS, g
        rss = {pid: rss_kib(pid) for pid in s.workers()}
        total_mib = sum(rss.values()) / 1024.0
        print("# %d streams open in %.1f s; /health %.3f s, a short request %.3f s; "
              "threads busy %d of %d; worker RSS %.0f MiB in all (%s); build %s" % (
                  STREAMS, opened, t_health, t_short, g["tollgate_worker_threads_busy"],
                  g["tollgate_worker_threads"], total_mib,
                  ", ".join("%d MiB" % (v // 1024) for v in rss.values()),
                  harness.build_dir().name), flush=True)
        assert total_mib < 1024, rss
    finally:
        for c in socks:
            c.close()
        sel.close()
    wait_for(lambda: gauges(s)["tollgate_requests_admitted"] == 0, 30, "the streams to end")
