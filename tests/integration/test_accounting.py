"""Accounting that cannot leak (issue 9): a client that leaves mid-stream
still pays for what the provider served (the gateway drains the stream for
its final usage), a provider that never finishes is billed on what it
streamed, and a worker killed mid-stream is settled by a sibling from its
journal within one sweep interval.

Each test reads the usage row of its own request (x-request-id) and checks
usage_source: "provider" when the provider's final usage was read,
"estimated" when it was not (never less than what the client received).
"""

import json
import os
import signal
import socket
import struct
import threading
import time

from harness import pid_gone, stack, wait_for
from test_quotas import quota_row, uniq

SWEEP_MS = 500
WORDS = " ".join("word%02d" % i for i in range(20))  # 20 words: 20 deltas of one word


def drain_stack():
    return stack(tag="drain", processes=2, threads=4, timeout_ms=20000,
                 extra_config={"server": {"drain_timeout_ms": 8000},
                               "quotas": {"sweep_interval_ms": SWEEP_MS}})


def bounded_stack():
    """Tight bounds: a 1.5 s drain, and a provider that must answer within 4 s."""
    return stack(tag="bounded", processes=1, threads=4, timeout_ms=4000,
                 extra_config={"server": {"drain_timeout_ms": 1500}})


def hang_up(stream):
    """Leaves abruptly (RST), as a client killed mid-read does."""
    sock = stream.conn.sock
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.conn.close()


def usage_row(s, request_id, timeout=15):
    rows = wait_for(lambda: s.psql(
        "select input_tokens, output_tokens, usage_source, outcome, http_status "
        "from tollgate.usage where request_id = '%s'" % request_id), timeout,
        "the usage row of %s" % request_id)
    assert len(rows) == 1, rows
    i, o, source, outcome, status = rows[0]
    return {"input": int(i), "output": int(o), "source": source, "outcome": outcome,
            "status": int(status)}


def open_stream(s, key, directive):
    st = s.stream(s.body(prompt="Tell me more.", directive=directive, stream=True,
                         max_tokens=8000), s.auth(key))
    assert st.status == 200, st.status
    return st, st.headers["x-request-id"]


def test_client_leaving_at_five_points_pays_what_the_provider_reported():
    s = drain_stack()
    key = s.key(group=uniq("drain"), user=uniq("drain-user"))
    reported = {"input_tokens": 321, "output_tokens": 4000}
    tool = {"name": "lookup", "input": {"query": "a fairly long tool argument " * 4}}
    # (name, directive, read events until this predicate says stop)
    points = [
        ("before the first event", {"delay_ms": 1500, "event_delay_ms": 100}, None),
        ("after message_start", {"event_delay_ms": 150},
         lambda ev, data, n: ev == "message_start"),
        ("mid-text", {"event_delay_ms": 100},
         lambda ev, data, n: n["delta"] == 10),
        ("during a tool-use block", {"event_delay_ms": 100, "tool_use": tool},
         lambda ev, data, n: ev == "content_block_delta" and "input_json_delta" in data),
        ("before message_stop", {"event_delay_ms": 300},
         lambda ev, data, n: ev == "message_delta"),
    ]
    ids = {}
    for name, directive, stop in points:
        directive = dict(directive, text=WORDS, chunks=20, usage=reported)
        st, rid = open_stream(s, key, directive)
        ids[name] = rid
        if stop is None:
            time.sleep(0.3)  # the provider has not answered yet
        else:
            seen = {"delta": 0}
            for ev, data, _ in st:
                seen["delta"] += ev == "content_block_delta"
                if stop(ev, data, seen):
                    break
            else:
                raise AssertionError("%s: the stream ended before the point" % name)
        hang_up(st)
    for name, rid in ids.items():
        row = usage_row(s, rid)
        assert (row["input"], row["output"], row["source"]) == (321, 4000, "provider"), \
            "%s: %s" % (name, row)
        # before message_stop the worker may finish writing before it learns the client left
        allowed = ("client_disconnected", "ok") if name == "before message_stop" \
            else ("client_disconnected",)
        assert row["outcome"] in allowed, "%s: %s" % (name, row)
    # one row each, and the reservation-free path left nothing behind
    assert s.psql("select count(*) from tollgate.usage where request_id in (%s)" % ",".join(
        "'%s'" % r for r in ids.values())) == [[str(len(ids))]]


def read_words(st, n):
    """Reads the stream until n words of text arrived; returns the text."""
    received = ""
    for ev, data, _ in st:
        if ev == "content_block_delta":
            received += json.loads(data)["delta"]["text"]
            if len(received.split()) >= n:
                return received
    raise AssertionError("the stream ended after %r" % received)


def test_drain_that_hits_its_deadline_is_billed_on_what_was_streamed():
    s = bounded_stack()
    key = s.key(group=uniq("cut"), user=uniq("cut-user"))
    # 20 deltas 250 ms apart: 5 s of stream, cut by the 1.5 s drain after the client left
    directive = {"text": WORDS, "chunks": 20, "event_delay_ms": 250,
                 "usage": {"input_tokens": 77, "output_tokens": 4000}}
    st, rid = open_stream(s, key, directive)
    received = read_words(st, 4)
    hang_up(st)
    row = usage_row(s, rid, timeout=20)
    assert row["source"] == "estimated" and row["outcome"] == "client_disconnected", row
    assert row["input"] == 77, row  # message_start's input usage is kept
    # at least what the client received, at most what the provider streamed in all
    assert len(received.split()) <= row["output"] <= len(WORDS.encode()), (row, received)


def test_provider_that_never_finishes_is_billed_on_what_it_streamed():
    s = bounded_stack()
    key = s.key(group=uniq("hang"), user=uniq("hang-user"))
    # 3 events of prelude + 8 one-word deltas, then silence: the final usage never comes
    directive = {"text": WORDS, "chunks": 20, "hang_after": 11, "hang_ms": 30000,
                 "usage": {"input_tokens": 77, "output_tokens": 4000}}
    st, rid = open_stream(s, key, directive)
    received, last = "", None
    for ev, data, _ in st:  # the client stays to the end
        last = ev
        if ev == "content_block_delta":
            received += json.loads(data)["delta"]["text"]
    assert last == "error", last  # the gateway ends the stream with an error event
    row = usage_row(s, rid)
    assert row["source"] == "estimated" and row["outcome"] == "upstream_timeout", row
    assert row["input"] == 77 and row["status"] == 200, row
    assert len(received.split()) == 8, received
    assert 8 <= row["output"] <= len(received.encode()), (row, received)
    wait_for(lambda: any(r.get("peer_closed") for r in s.mock_requests("hang_after")), 10,
             "the gateway to close the hanging provider connection")


def test_worker_killed_mid_stream_is_settled_from_its_journal():
    s = drain_stack()
    assert len(s.worker_pids) == 2, s.worker_pids
    group = uniq("lost")
    key = s.key(group=group, user=uniq("lost-user"))
    for metric, window, limit in (("usd", "total", "1000.00"), ("tokens", "day", "100000000"),
                                  ("requests", "day", "100000")):
        s.ctl("quota", "set", "--group", group, "--metric", metric, "--window", window,
              "--limit", limit)
    directive = {"text": WORDS, "chunks": 20, "event_delay_ms": 200,
                 "usage": {"input_tokens": 50, "output_tokens": 4000}}
    st, rid = open_stream(s, key, directive)
    received = ""
    for ev, data, _ in st:
        if ev == "content_block_delta":
            received += json.loads(data)["delta"]["text"]
            if len(received.split()) == 7:
                break
    holder = s.psql("select holder from tollgate.reservations where request_id = '%s'" % rid)
    assert len(holder) == 1, holder
    victim = int(holder[0][0].split(":")[1])  # "HOST/BOOT/PIDNS:PID:START"
    assert victim in s.worker_pids, (victim, s.worker_pids)
    os.kill(victim, signal.SIGKILL)
    t_killed = time.time()
    wait_for(lambda: pid_gone(victim) and not os.path.exists("/proc/%d" % victim), 10,
             "the worker to be reaped")
    s.worker_pids.remove(victim)
    hang_up(st)
    row = usage_row(s, rid, timeout=10)
    took = time.time() - t_killed
    assert took < 1 + 3 * SWEEP_MS / 1000.0, "recovered after %.1f s" % took
    assert row["outcome"] == "worker_lost" and row["source"] == "estimated", row
    assert row["output"] >= len(received.split()), (row, received)
    assert row["input"] == 50, row
    # quotas consistent: used is what the usage rows say, nothing stays reserved
    n, cost, tokens = (int(v) for v in s.psql(
        "select count(*), sum(cost_micros), sum(input_tokens + output_tokens + "
        "cache_read_tokens + cache_write_tokens) from tollgate.usage "
        "where group_id = '%s'" % group)[0])
    for (metric, window), used in {("usd", "total"): cost, ("tokens", "day"): tokens,
                                   ("requests", "day"): n}.items():
        q = quota_row(s, "group", group, metric, window)
        assert (q["used"], q["reserved"]) == (used, 0), (metric, q, used)
    # the dead worker's journal is gone once settled; the survivor's own stays
    spool = s.dir / "spool"
    left = [p.name for p in spool.glob("journal-*-%d-*.tgj" % victim)] if spool.exists() else []
    assert left == [], left


def test_reply_priced_by_the_worker_equals_the_row_for_every_price_component():
    """With PostgreSQL down the usage waits in the spool and the reply is priced by
    the worker's copy of the prices; the row, replayed later, is priced by
    PostgreSQL. Both must agree to the micro-dollar, component by component."""
    s = drain_stack()
    key = s.key(group=uniq("price"), user=uniq("price-user"))
    cases = [
        ("claude-haiku-4-5", {"input_tokens": 1234, "output_tokens": 567}),
        ("claude-haiku-4-5", {"input_tokens": 10, "output_tokens": 20,
                              "cache_read_input_tokens": 3000,
                              "cache_creation_input_tokens": 900,
                              "cache_creation": {"ephemeral_5m_input_tokens": 300,
                                                 "ephemeral_1h_input_tokens": 600}}),
        ("claude-haiku-4-5", {"input_tokens": 5, "output_tokens": 7,
                              "server_tool_use": {"web_search_requests": 3}}),
        ("claude-sonnet-4-5", {"input_tokens": 150000, "output_tokens": 1000,
                               "cache_read_input_tokens": 50001}),  # above 200k: long context
        ("claude-sonnet-4-5", {"input_tokens": 150000, "output_tokens": 1000,
                               "cache_read_input_tokens": 50000}),  # exactly at it
    ]
    assert s.messages(key)[0] == 200  # the worker's prices are loaded
    # reserve needs the database: stop it while the calls are upstream, so that
    # their settles find it down
    marker = uniq("spoolprice")
    results = {}

    def call(i, model, usage):
        results[i] = s.messages(key, model=model, prompt="%s-%d" % (marker, i),
                                directive={"usage": usage, "delay_ms": 1500}, timeout=30)
    threads = [threading.Thread(target=call, args=(i, m, u)) for i, (m, u) in enumerate(cases)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(s.mock_requests(marker)) == len(cases), 15,
                 "the provider to receive every call")
    finally:
        s.stop_db()
    for t in threads:
        t.join(30)
    s.start_db()
    headers_of = {}
    for i, (model, usage) in enumerate(cases):
        status, headers, body = results[i]
        assert status == 200, body[:200]
        headers_of[headers["x-request-id"]] = (model, usage, headers["x-tollgate-cost-usd"])
    assert "usage spooled" in s.logs(), "the rows did not wait in the spool"
    _check_against_rows(s, headers_of)


def _check_against_rows(s, headers_of):
    for rid, (model, usage, header) in headers_of.items():
        row = wait_for(lambda: s.psql(
            "select cost_micros, cache_write_1h_tokens, web_search_requests from tollgate.usage "
            "where request_id = '%s'" % rid), 15, "the row of %s" % rid)[0]
        micros = int(row[0])
        assert header == "%d.%06d" % (micros // 1000000, micros % 1000000), \
            (model, usage, header, row)
        assert int(row[1]) == usage.get("cache_creation", {}).get("ephemeral_1h_input_tokens", 0)
        assert int(row[2]) == usage.get("server_tool_use", {}).get("web_search_requests", 0)
        assert micros > 0, row
