"""50 concurrent requests from several client processes, 2+ worker processes."""

import json
import subprocess
import sys
import time

from harness import main_stack

PROCESSES, THREADS = 5, 10

# One client process: THREADS threads released together by a barrier, one
# request each; prints [[status, x-request-id], ...] as JSON.
CLIENT = r"""
import http.client, json, sys, threading
port, key, n, body = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
barrier, out = threading.Barrier(n), [None] * n
def one(i):
    try:
        barrier.wait(30)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", "/v1/messages", body, {"x-api-key": key,
                  "content-type": "application/json", "anthropic-version": "2023-06-01"})
        r = c.getresponse()
        r.read()
        out[i] = [r.status, r.getheader("x-request-id")]
    except Exception as e:
        out[i] = [repr(e), None]
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(out))
"""


def test_50_concurrent_requests():
    s = main_stack()
    assert s.processes >= 2, s.processes
    key = s.key(name="concurrency")
    body = json.dumps(s.body(prompt="concurrent", directive={"delay_ms": 200}))
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, str(s.port), key, str(THREADS),
                               body], stdout=subprocess.PIPE, text=True)
             for _ in range(PROCESSES)]
    results = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=120)
            results += json.loads(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    statuses = [r[0] for r in results]
    assert statuses == [200] * PROCESSES * THREADS, "statuses: %s" % statuses
    ids = {r[1] for r in results}
    assert len(ids) == PROCESSES * THREADS, "%d distinct request ids" % len(ids)
    deadline = time.monotonic() + 10
    while s.usage_count(key) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # a late duplicate would show up now
    assert s.usage_count(key) == len(ids), "%d usage rows for %d requests" % (
        s.usage_count(key), len(ids))
    quoted = ",".join("'%s'" % i for i in ids)
    n = s.psql("select count(*) from tollgate.usage where request_id in (%s)" % quoted)[0][0]
    assert int(n) == len(ids), "%s usage rows carry the returned request ids" % n
