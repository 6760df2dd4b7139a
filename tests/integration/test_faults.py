"""Faults on the real stack under load (issue 12 item 3): a worker killed with
kill -9 (the master respawns it), PostgreSQL restarted, a provider that is
slow, resets its connection, truncates its stream, sends a malformed event or
a reply larger than server.max_response_bytes, and clients that leave at
several stages — all in one bounded run.  Afterwards no usage row is lost or
duplicated and the quota rows are exact.

Then one small test per provider fault, in both client dialects (Anthropic
Messages and OpenAI chat completions against the same Anthropic backend): the
status, the error's shape, and the usage row saying what the provider served.
test_errors.py covers the Anthropic dialect's status errors, drops and timeout.
"""

import http.client
import json
import os
import secrets
import signal
import socket
import struct
import threading
import time
from collections import Counter

from harness import pid_gone, stack, wait_for
from test_quotas import group_usage, quota_row, reservations, uniq

MAX_RESPONSE = 256 * 1024
TIMEOUT_MS = 3000


def faults_stack():
    """2 processes x 8 threads; a 3 s provider timeout, a 256 KiB reply cap,
    a 2 s drain and a sweeper every 500 ms."""
    return stack(tag="faults", processes=2, threads=8, timeout_ms=TIMEOUT_MS,
                 max_body_bytes=65536,
                 extra_config={"server": {"max_response_bytes": MAX_RESPONSE,
                                          "drain_timeout_ms": 2000},
                               "quotas": {"sweep_interval_ms": 500,
                                          "reservation_ttl_ms": 12000}})


def rst_close(conn):
    """Closes an http.client connection with an RST, as a killed client does."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    conn.close()


# ---- the request mix ------------------------------------------------------------------

USAGE = {"input_tokens": 37, "output_tokens": 11, "cache_read_input_tokens": 3}

# kind: (stream, directive, what the client does: "read" | "leave_N" (after N
# events) | "leave_before" (before the reply comes))
KINDS = {
    "ok": (False, {"usage": USAGE}, "read"),
    "ok_stream": (True, {"usage": USAGE, "chunks": 4, "event_delay_ms": 40}, "read"),
    "slow": (False, {"usage": USAGE, "delay_ms": TIMEOUT_MS + 1500}, "read"),
    "reset": (False, {"usage": USAGE, "drop": "reset"}, "read"),
    "reset_stream": (True, {"usage": USAGE, "chunks": 4, "drop": "reset"}, "read"),
    "truncated_stream": (True, {"usage": USAGE, "chunks": 4, "truncate_after": 5}, "read"),
    "malformed_stream": (True, {"usage": USAGE, "chunks": 4, "malformed_after": 4}, "read"),
    "oversize": (False, {"usage": USAGE, "pad_bytes": MAX_RESPONSE + 1000}, "read"),
    "dropped": (False, {"usage": USAGE, "drop": "before_headers"}, "read"),
    "leave_before": (False, {"usage": USAGE, "delay_ms": 800}, "leave_before"),
    "leave_stream_start": (True, {"usage": USAGE, "chunks": 6, "event_delay_ms": 150},
                           "leave_1"),
    "leave_stream_mid": (True, {"usage": USAGE, "chunks": 6, "event_delay_ms": 150},
                         "leave_5"),
}
MIX = ["ok", "ok_stream", "ok", "slow", "ok_stream", "reset", "ok", "reset_stream",
       "truncated_stream", "ok", "malformed_stream", "oversize", "ok_stream", "dropped",
       "leave_before", "ok", "leave_stream_start", "leave_stream_mid"]


def one_request(s, key, kind, marker):
    """Sends one request of this kind; returns what the client saw."""
    stream, directive, action = KINDS[kind]
    body = s.body(prompt="fault %s %s" % (kind, marker), directive=directive, stream=stream)
    seen = {"kind": kind, "marker": marker, "status": None, "id": None, "began": False,
            "events": 0, "t_sent": time.time()}
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    try:
        conn.request("POST", "/v1/messages", json.dumps(body),
                     dict(s.auth(key), **{"content-type": "application/json"}))
        if action == "leave_before":
            time.sleep(0.3)
            rst_close(conn)
            seen["status"] = "left"
            return seen
        resp = conn.getresponse()
        seen["status"] = resp.status
        seen["id"] = resp.getheader("x-request-id")
        seen["began"] = stream and resp.status == 200 and \
            resp.getheader("content-type", "").startswith("text/event-stream")
        if action.startswith("leave_"):
            want = int(action.split("_")[1])
            while seen["events"] < want:
                line = resp.fp.readline()
                if not line:
                    break
                seen["events"] += line.startswith(b"event:")
            rst_close(conn)
            seen["left"] = True
            return seen
        try:
            data = resp.read()
            seen["events"] = data.count(b"\nevent:") + data.startswith(b"event:")
        except (OSError, http.client.HTTPException) as e:
            seen["cut"] = repr(e)[:80]
    except (OSError, http.client.HTTPException) as e:
        seen["error"] = repr(e)[:120]
    finally:
        conn.close()
        seen["t_done"] = time.time()
    return seen


def mock_markers(s):
    """{marker: number of times the provider saw it} for this test's markers."""
    seen = Counter()
    for rec in s.mock_requests():
        body = rec["body"]
        at = body.find("flt-")
        if at >= 0:
            seen[body[at:at + 16]] += 1
    return seen


def test_faults_under_load_lose_and_duplicate_no_usage_and_quotas_stay_exact():
    s = faults_stack()
    group = uniq("faults")
    key = s.key(group=group, user=uniq("faults-user"))
    for metric, window, limit in (("usd", "total", "1000.00"), ("tokens", "day", "100000000"),
                                  ("requests", "day", "1000000")):
        s.ctl("quota", "set", "--group", group, "--metric", metric, "--window", window,
              "--limit", limit)
    assert s.messages(key, directive={"usage": USAGE})[0] == 200
    results, lock, stop = [], threading.Lock(), threading.Event()
    counter = iter(range(1 << 30))

    def client(i):
        n = i
        while not stop.is_set():
            kind = MIX[n % len(MIX)]
            n += 1
            marker = "flt-%06x%06x" % (next(counter), secrets.randbelow(1 << 24))
            seen = one_request(s, key, kind, marker)
            with lock:
                results.append(seen)
            if seen["status"] == 503:
                time.sleep(0.1)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    events = {}
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        # 1. kill -9 of a busy worker; the master forks a replacement
        time.sleep(4)
        victim = s.workers()[0]
        before = set(s.workers())
        os.kill(victim, signal.SIGKILL)
        events["killed"] = time.time()
        wait_for(lambda: pid_gone(victim), 10, "the killed worker to be reaped")
        wait_for(lambda: len(s.workers()) == 2 and set(s.workers()) != before, 15,
                 "the master to respawn the worker")
        events["respawned"] = time.time()
        if victim in s.worker_pids:
            s.worker_pids.remove(victim)
        # 2. PostgreSQL restarted under the load
        time.sleep(3)
        events["db_stop"] = time.time()
        s.stop_db()
        time.sleep(3)
        s.start_db()
        events["db_start"] = time.time()
        time.sleep(6)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    elapsed = time.monotonic() - t0
    assert elapsed < 45, "the load ran %.0fs" % elapsed

    # what the clients saw
    by_kind = {}
    for r in results:
        by_kind.setdefault(r["kind"], Counter())[r["status"]] += 1
    statuses = Counter(r["status"] for r in results)
    assert statuses[200] > 50 and statuses[503] > 0, "statuses %s" % dict(statuses)
    for kind, want in (("slow", 504), ("reset", 502), ("oversize", 502), ("dropped", 502)):
        assert by_kind[kind][want] > 0, "%s: %s" % (kind, dict(by_kind[kind]))
        assert by_kind[kind][200] == 0, "%s answered 200: %s" % (kind, dict(by_kind[kind]))
    ok_after = [r for r in results if r["status"] == 200 and r["t_sent"] > events["db_start"]]
    assert ok_after, "no 200 after PostgreSQL came back"

    # settle: the spool replays, the sweeper settles the dead worker's journal
    wait_for(lambda: reservations(s, group) == 0, 40,
             "every reservation to be settled or swept")
    wait_for(lambda: not s.psql("select 1 from tollgate.reservations where group_id = '%s'"
                                % group) and _spool_empty(s), 30, "the spool to drain")
    time.sleep(1.5)   # a last sweep

    provider_saw = mock_markers(s)
    twice = [m for m, n in provider_saw.items() if n > 1]
    by_marker = {r["marker"]: r for r in results}
    # (a provider that drops a reused connection before its headers got the
    # call twice while libcurl could rewind the body: never again)
    assert not twice, "the provider got %d requests twice: %s" % (len(twice), Counter(
        (by_marker[m]["kind"], by_marker[m]["status"]) for m in twice))
    rows = {}
    for rid, outcome, source in s.psql(
            "select request_id, outcome, usage_source from tollgate.usage "
            "where group_id = '%s'" % group):
        assert rid not in rows, "two usage rows for %s" % rid
        rows[rid] = (outcome, source)
    answered = [r for r in results if r["id"]]
    ids = Counter(r["id"] for r in answered)
    assert not [i for i, n in ids.items() if n > 1], "a request id answered twice"
    served = [r for r in answered if r["status"] == 200 or r["began"]]
    lost = [(r["kind"], r["id"]) for r in served if r["id"] not in rows]
    assert not lost, "%d of %d requests the provider served have no usage row: %s" % (
        len(lost), len(served), lost[:5])
    # every request the provider saw and whose id the client got has its row
    seen_ids = [r for r in answered if provider_saw[r["marker"]]]
    lost = [(r["kind"], r["status"], r["id"]) for r in seen_ids if r["id"] not in rows]
    assert not lost, "requests that reached the provider have no usage row: %s" % lost[:5]
    # requests the provider never saw: no "ok" row
    never = [r for r in answered if not provider_saw[r["marker"]]]
    wrong = [(r["kind"], r["status"], rows[r["id"]]) for r in never
             if r["id"] in rows and rows[r["id"]][0] == "ok"]
    assert not wrong, "ok rows for requests the provider never saw: %s" % wrong[:5]
    # the rows no client got an id for: requests the provider saw whose client
    # lost its connection (the killed worker's) or left before the headers
    no_id_seen = sum(1 for r in results if not r["id"] and provider_saw[r["marker"]])
    extra = [rid for rid in rows if rid not in ids]
    assert len(extra) == no_id_seen + 1, \
        "%d rows without a client-seen id, want %d (requests the provider saw, id unseen) " \
        "+ 1 (the first request): %s" % (len(extra), no_id_seen, Counter(
            rows[rid] for rid in extra))
    # quotas: used = the sum of the rows, nothing reserved
    n, spent, tokens = group_usage(s, group)
    assert n == len(rows)
    for metric, window, used in (("usd", "total", spent), ("tokens", "day", tokens),
                                 ("requests", "day", n)):
        q = quota_row(s, "group", group, metric, window)
        assert (q["used"], q["reserved"]) == (used, 0), \
            "%s/%s: used %d reserved %d, want used %d (sum of %d rows) reserved 0" % (
                metric, window, q["used"], q["reserved"], used, n)
    print("# faults: %d requests in %.0fs, statuses %s, %d usage rows (%d with no id seen), "
          "outcomes %s" % (len(results), elapsed, dict(statuses), n, len(extra),
                           dict(Counter(o for o, _ in rows.values()))))


def _spool_empty(s):
    spool = s.dir / "spool"
    pending = spool / "usage.pending"
    replay = spool / "usage.replay"
    return all(not p.exists() or p.stat().st_size == 0 for p in (pending, replay))


# ---- each provider fault, in each dialect ----------------------------------------------

def fault_request(s, key, dialect, directive, stream, marker=None):
    """(status, headers, body bytes or None, complete) of one request in the dialect."""
    marker = marker or "flt1-" + secrets.token_hex(6)
    text = "fault %s MOCK%s" % (marker, json.dumps(directive))
    if dialect == "anthropic":
        path, headers = "/v1/messages", s.auth(key)
        body = {"model": "claude-haiku-4-5", "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": text}]}
    else:
        path, headers = "/v1/chat/completions", {"authorization": "Bearer " + key}
        body = {"model": "claude-haiku-4-5", "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": text}]}
    headers = dict(headers, **{"content-type": "application/json"})
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), headers)
        resp = conn.getresponse()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        try:
            return resp.status, hdrs, resp.read(), True
        except (OSError, http.client.HTTPException) as e:
            return resp.status, hdrs, getattr(e, "partial", b""), False
    finally:
        conn.close()


def assert_error_shape(dialect, body):
    doc = json.loads(body)
    if dialect == "anthropic":
        assert doc.get("type") == "error" and doc["error"]["type"] == "api_error", doc
    else:
        assert set(doc) == {"error"} and isinstance(doc["error"].get("message"), str) and \
            "type" in doc["error"], doc


def usage_of(s, rid):
    rows = wait_for(lambda: s.psql(
        "select outcome, usage_source, input_tokens, output_tokens, http_status "
        "from tollgate.usage where request_id = '%s'" % rid), 15, "the usage row of %s" % rid)
    assert len(rows) == 1, rows
    o, src, i, out, st = rows[0]
    return {"outcome": o, "source": src, "input": int(i), "output": int(out), "status": int(st)}


# name: (stream, directive, client status, usage row (outcome, source) or None)
FAULTS = {
    "slow": (False, {"delay_ms": TIMEOUT_MS + 1500}, 504, ("upstream_timeout", None)),
    # a 200 whose body did not arrive whole: the provider may bill it, so the
    # caller pays the reserved bound (never nothing)
    "reset": (False, {"drop": "reset", "usage": USAGE}, 502, ("upstream_error", "reserved_bound")),
    "oversize": (False, {"pad_bytes": MAX_RESPONSE + 1000, "usage": USAGE}, 502,
                 ("upstream_error", "reserved_bound")),
    "reset_stream": (True, {"drop": "reset", "chunks": 4, "usage": USAGE}, 200,
                     (None, "estimated")),
    "truncated_stream": (True, {"truncate_after": 5, "chunks": 4, "usage": USAGE}, 200,
                         (None, "estimated")),
    "malformed_stream": (True, {"malformed_after": 4, "chunks": 4, "usage": USAGE}, 200,
                         ("ok", "provider")),
}


def make_fault_test(dialect, stream, directive, want_status, want_row):
    def test():
        s = faults_stack()
        key = s.key(group=uniq("fault1"), user=uniq("fault1-user"))
        status, headers, body, complete = fault_request(s, key, dialect, directive, stream)
        assert status == want_status, (status, body[:300])
        rid = headers.get("x-request-id")
        assert rid, headers
        if status != 200:
            assert complete and headers.get("content-type", "").startswith("application/json")
            assert_error_shape(dialect, body)
        row = usage_of(s, rid)
        want_outcome, want_source = want_row
        if dialect == "openai" and "malformed_after" in directive:
            # translated: an event that cannot be read cannot be said in the
            # client's dialect; the stream ends with an error event (the
            # provider's own stream is still read to its end for the usage)
            want_outcome = "upstream_error"
            assert b'"error"' in body, body[-300:]
        if want_outcome:
            assert row["outcome"] == want_outcome, row
        if want_source:
            assert row["source"] == want_source, row
        if want_source == "reserved_bound":   # max_tokens 64, the input's bound at least 37
            assert row["output"] == 64 and row["input"] >= USAGE["input_tokens"], row
        assert row["status"] == status, row
        if stream:
            # the provider began serving: it said 37 input tokens in message_start
            assert row["input"] == USAGE["input_tokens"], row
            if want_source == "provider":
                assert row["output"] == USAGE["output_tokens"], row
            else:   # never billed less than what reached the client
                assert row["output"] >= 1, row
        if want_outcome == "ok":
            text = body.decode("utf-8", "replace")
            assert ("message_stop" in text) if dialect == "anthropic" else ("[DONE]" in text), \
                text[-300:]
        if "truncate_after" in directive or "drop" in directive:
            text = body.decode("utf-8", "replace")
            assert "message_stop" not in text, text[-300:]
    return test


for _dialect in ("anthropic", "openai"):
    for _name, (_stream, _directive, _status, _row) in FAULTS.items():
        globals()["test_fault_%s_%s" % (_name, _dialect)] = make_fault_test(
            _dialect, _stream, _directive, _status, _row)


def test_a_request_is_never_sent_twice_when_a_reused_connection_drops():
    """libcurl sends a request again, once, when a reused keep-alive connection
    closes before any byte of the reply, taking it for a stale connection; the
    provider may have received and billed the first. Tollgate's body cannot be
    rewound, so that second send never happens: a provider that reads the
    request and closes gets it exactly once, the client gets a 502 in its
    dialect, the access line says why, and the next request is served on a
    fresh connection. One worker process (one request thread and the spare):
    requests go out on kept-alive connections, which ones is the thread's
    draw, so drops are sent until one went out on a reused connection."""
    s = stack(tag="faults_reuse", processes=1, threads=1, timeout_ms=TIMEOUT_MS)
    key = s.key(group=uniq("reuse"), user=uniq("reuse-user"))
    reused = {"anthropic": 0, "openai": 0}
    for attempt in range(16):
        dialect = ("anthropic", "openai")[attempt % 2]
        for _ in range(3):   # connections kept alive on both threads, most likely
            status, _, _, _ = fault_request(s, key, dialect, {"usage": USAGE}, False)
            assert status == 200
        marker = uniq("dropped-" + dialect)
        status, headers, body, complete = fault_request(
            s, key, dialect, {"usage": USAGE, "drop": "before_headers"}, False, marker)
        assert status == 502 and complete, (status, body[:300])
        assert_error_shape(dialect, body)
        seen = len(s.mock_requests(marker))
        assert seen == 1, "the provider got the request %d times" % seen
        rid = headers["x-request-id"]
        line = wait_for(lambda: [json.loads(x) for x in s.logs().splitlines()
                                 if rid in x and '"event":"request"' in x.replace(" ", "")], 10,
                        "the access line of %s" % rid)[0]
        assert line.get("attempts") == 1, line
        if "reused connection" in line.get("error_detail", ""):
            reused[dialect] += 1
        else:   # went out on a fresh connection: the provider's empty reply
            assert "Empty reply" in line.get("error_detail", ""), line
        if all(reused.values()):
            break
    assert all(reused.values()), "no drop went out on a reused connection: %s" % reused
    status, _, _, _ = fault_request(s, key, "anthropic", {"usage": USAGE}, False)
    assert status == 200
