"""No usage is lost and none blocks the rest: a provider call that finishes
while PostgreSQL is down is spooled to disk (framed, fsync'd) and replayed,
exactly once, when it is back — by the sweeper, with no further request; a
record PostgreSQL refuses goes to the dead letter (counted on /metrics) and
the records after it are replayed; a torn record loses only itself. A
request a guardrail blocked, settled while the database cannot take it, keeps
its rule (usage.guard_rule) through the spool; a spooled record of the
previous version (no guard_rule) is replayed with none."""

import json
import re
import secrets
import struct
import threading
import time
import uuid

from harness import REPO, stack, wait_for

SWEEP_MS = 1000
MAGIC = 0x4754FEFF
POISON_MODEL = "claude-sonnet-4-5"
# PostgreSQL refuses every usage row of POISON_MODEL (as a check constraint would)
POISON_SQL = (
    "create or replace function tollgate.test_poison() returns trigger language plpgsql as $$"
    " begin raise exception 'test poison: model % refused', new.model"
    " using errcode = 'check_violation'; end $$;"
    " create trigger test_poison before insert on tollgate.usage for each row"
    " when (new.model = '" + POISON_MODEL + "') execute function tollgate.test_poison();")
UNPOISON_SQL = ("drop trigger if exists test_poison on tollgate.usage;"
                " drop function if exists tollgate.test_poison()")


def spool_stack():
    return stack(tag="spool", processes=1,
                 extra_config={"quotas": {"sweep_interval_ms": SWEEP_MS}})


# A block is settled microseconds after its reservation, so the outage is made
# for usage rows of blocked requests only: PostgreSQL answers their insert as a
# read-only standby does after a failover (SQLSTATE 25006), which the worker
# treats as the database being unavailable, as it does a stopped server.
UNAVAILABLE_FOR_BLOCKS_SQL = (
    "create or replace function tollgate.test_read_only() returns trigger language plpgsql"
    " as $$ begin raise exception 'test: read-only for blocked rows'"
    " using errcode = 'read_only_sql_transaction'; end $$;"
    " create trigger test_read_only before insert on tollgate.usage for each row"
    " when (new.outcome = 'blocked') execute function tollgate.test_read_only();")
AVAILABLE_SQL = ("drop trigger if exists test_read_only on tollgate.usage;"
                 " drop function if exists tollgate.test_read_only()")


# ---- framed files (fcgi/frame.h), for reading the dead letter and writing a spool --------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ CRC_TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def frame(payload):
    return struct.pack("<III", MAGIC, len(payload), crc32c(payload)) + payload


def read_frames(path):
    """The payloads of a framed file whose records are all intact."""
    data = path.read_bytes() if path.exists() else b""
    out, at = [], 0
    while at < len(data):
        magic, length, crc = struct.unpack_from("<III", data, at)
        payload = data[at + 12:at + 12 + length]
        assert magic == MAGIC and crc32c(payload) == crc, "bad record at %d in %s" % (at, path)
        out.append(json.loads(payload))
        at += 12 + length
    return out


def assert_crc32c():
    assert crc32c(b"123456789") == 0xE3069283  # the check value: same CRC as frame.c


# ---- helpers --------------------------------------------------------------------------

def dead_letters(s):
    return read_frames(s.dir / "spool" / "usage.deadletter")


def dead_letter_metric(s):
    status, _, body = s.request("GET", "/metrics")
    assert status == 200, body[:300]
    for line in body.decode().splitlines():
        if line.startswith("tollgate_usage_dead_letters_total "):
            return int(line.split()[1])
    raise AssertionError("no tollgate_usage_dead_letters_total in /metrics")


def spool_during_outage(s, key, calls):
    """Sends calls (dicts: model, delay_ms, usage) at once, stops PostgreSQL once
    the provider has them all (past the reservation), waits for the answers.
    Returns their request ids, in call order; PostgreSQL is left stopped."""
    marker = "spool-" + secrets.token_hex(6)
    results = [None] * len(calls)

    def call(i, c):
        directive = {"delay_ms": c["delay_ms"], "usage": c["usage"]}
        results[i] = s.messages(key, model=c.get("model", "claude-haiku-4-5"),
                                prompt="%s-%d secret prompt text" % (marker, i),
                                directive=directive, timeout=30)

    threads = [threading.Thread(target=call, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(s.mock_requests(marker)) == len(calls), 15,
                 "the provider to receive every call")
    finally:
        s.stop_db()
    for t in threads:
        t.join(30)
    ids = []
    for status, headers, body in results:
        assert status == 200, (status, body[:300])
        # priced by the worker's copy of the prices, though the row waits in the spool
        assert re.fullmatch(r"\d+\.\d{6}", headers.get("x-tollgate-cost-usd", "")), headers
        ids.append(headers["x-request-id"])
    return ids, marker


def usage_rows(s, ids):
    rows = s.psql("select request_id, input_tokens, output_tokens from tollgate.usage "
                  "where request_id in (%s)" % ", ".join("'%s'" % i for i in ids))
    return {r[0]: (r[1], r[2]) for r in rows}


# ---- tests ----------------------------------------------------------------------------

def test_usage_settled_during_outage_is_replayed():
    s = spool_stack()
    key = s.default_key()
    assert s.messages(key)[0] == 200
    try:
        ids, _ = spool_during_outage(s, key, [
            {"delay_ms": 2500, "usage": {"input_tokens": 11, "output_tokens": 7}}])
        spooled_id = ids[0]
        assert "usage spooled" in s.logs(), "the spool was not used"
    finally:
        s.start_db()
    assert s.messages(key)[0] == 200
    row = s.usage(spooled_id)
    assert (row["input_tokens"], row["output_tokens"]) == ("11", "7"), row
    assert row["http_status"] == "200" and row["outcome"] == "ok", row
    count = s.psql("select count(*) from tollgate.usage where request_id = '%s'" % spooled_id)
    assert count[0][0] == "1", count
    # a replayed spool is emptied: more requests and sweeps do not duplicate anything
    assert s.messages(key)[0] == 200
    time.sleep(2 * SWEEP_MS / 1000)
    assert s.psql("select count(*) from tollgate.usage where request_id = '%s'"
                  % spooled_id)[0][0] == "1"


def test_replayed_by_the_sweeper_without_requests():
    """An idle gateway: no request after the database is back, the rows still
    appear within a sweep interval."""
    s = spool_stack()
    key = s.default_key()
    assert s.messages(key)[0] == 200
    try:
        ids, _ = spool_during_outage(s, key, [
            {"delay_ms": 2500, "usage": {"input_tokens": 21 + i, "output_tokens": 5}}
            for i in range(3)])
        # sweeps while the database is down keep every record
        time.sleep(2 * SWEEP_MS / 1000)
    finally:
        s.start_db()
    back = time.monotonic()
    rows = wait_for(lambda: len(usage_rows(s, ids)) == 3 and usage_rows(s, ids),
                    SWEEP_MS / 1000 + 10, "the spooled rows")
    elapsed = time.monotonic() - back
    # one sweep interval, plus the time psql polling and the replay itself take
    assert elapsed < SWEEP_MS / 1000 + 2.0, "replayed %.1fs after the database came back" % elapsed
    assert sorted(rows.values()) == [("21", "5"), ("22", "5"), ("23", "5")], rows
    wait_for(lambda: not (s.dir / "spool" / "usage.replay").exists(), 5, "the replay file gone")


def test_poisoned_record_goes_to_dead_letter():
    """A record PostgreSQL refuses (a trigger raises for one model) is put in
    the dead letter with the reason and counted; the records around it go in."""
    s = spool_stack()
    key = s.default_key()
    assert s.messages(key)[0] == 200
    dead_before = dead_letter_metric(s)
    letters_before = len(dead_letters(s))
    s.psql(POISON_SQL)
    try:
        try:
            # settled in this order: good, poisoned, good, good
            ids, marker = spool_during_outage(s, key, [
                {"delay_ms": 2000, "usage": {"input_tokens": 31, "output_tokens": 1}},
                {"delay_ms": 2400, "usage": {"input_tokens": 32, "output_tokens": 1},
                 "model": POISON_MODEL},
                {"delay_ms": 2800, "usage": {"input_tokens": 33, "output_tokens": 1}},
                {"delay_ms": 3200, "usage": {"input_tokens": 34, "output_tokens": 1}},
            ])
        finally:
            s.start_db()
        good = [ids[0], ids[2], ids[3]]
        rows = wait_for(lambda: len(usage_rows(s, good)) == 3 and usage_rows(s, good),
                        SWEEP_MS / 1000 + 10, "the good rows replayed")
        assert sorted(rows.values()) == [("31", "1"), ("33", "1"), ("34", "1")], rows
        assert usage_rows(s, [ids[1]]) == {}
        letters = wait_for(lambda: len(dead_letters(s)) > letters_before and dead_letters(s),
                           5, "the dead letter")
        new = letters[letters_before:]
        assert [d["request_id"] for d in new] == [ids[1]], new
        d = new[0]
        assert d["model"] == POISON_MODEL and d["input_tokens"] == 32, d
        assert d["error"].startswith("23514: test poison: model %s refused" % POISON_MODEL), d
        assert d["dead_lettered_at"].endswith("Z"), d
        raw = (s.dir / "spool" / "usage.deadletter").read_bytes()
        assert marker.encode() not in raw and b"secret prompt" not in raw, "prompt text kept"
        assert dead_letter_metric(s) == dead_before + 1
        assert "kept in the dead letter" in s.logs()
        # the spool is empty and nothing is replayed again
        time.sleep(2 * SWEEP_MS / 1000)
        assert not (s.dir / "spool" / "usage.replay").exists()
        assert len(dead_letters(s)) == letters_before + 1
    finally:
        s.psql(UNPOISON_SQL)


def test_refused_at_settle_goes_to_dead_letter():
    """Refused while the database is up: dead-lettered at once, not spooled."""
    s = spool_stack()
    key = s.default_key()
    dead_before = dead_letter_metric(s)
    s.psql(POISON_SQL)
    try:
        status, headers, body = s.messages(key, model=POISON_MODEL)
    finally:
        s.psql(UNPOISON_SQL)
    assert status == 200, body[:300]
    rid = headers["x-request-id"]
    assert rid in [d["request_id"] for d in dead_letters(s)]
    assert dead_letter_metric(s) == dead_before + 1
    assert not (s.dir / "spool" / "usage.pending").exists() or \
        rid.encode() not in (s.dir / "spool" / "usage.pending").read_bytes()


def test_a_block_spooled_while_the_database_is_unavailable_keeps_its_rule():
    s = stack(tag="spool-guard", processes=1, extra_config={
        "quotas": {"sweep_interval_ms": SWEEP_MS},
        "guardrails": {"rules_file": str(REPO / "conf" / "guardrails.json")}})
    key = s.default_key()
    assert s.messages(key)[0] == 200
    s.psql(UNAVAILABLE_FOR_BLOCKS_SQL)
    try:
        status, headers, body = s.messages(key, prompt="my key is AKIAQ3EXAMPLE7ZZYYXX")
        assert status == 400 and b"aws_access_key" in body, (status, body[:300])
        rid = headers["x-request-id"]
        wait_for(lambda: rid in s.logs() and "usage spooled" in s.logs(), 5, "the block spooled")
        spool = s.dir / "spool"  # a sweep may have moved it into usage.replay
        waiting = read_frames(spool / "usage.pending") + read_frames(spool / "usage.replay")
        mine = [r for r in waiting if r["request_id"] == rid]
        assert len(mine) == 1 and mine[0]["guard_rule"] == "aws_access_key", mine
        assert mine[0]["outcome"] == "blocked", mine
        # sweeps while it is still unavailable keep it
        time.sleep(2 * SWEEP_MS / 1000)
        assert s.psql("select count(*) from tollgate.usage where request_id = '%s'"
                      % rid)[0][0] == "0"
    finally:
        s.psql(AVAILABLE_SQL)
    row = wait_for(lambda: s.psql(
        "select outcome, cost_micros, http_status, guard_rule from tollgate.usage"
        " where request_id = '%s'" % rid), SWEEP_MS / 1000 + 10, "the block replayed")
    assert row == [["blocked", "0", "400", "aws_access_key"]], row


def test_torn_record_in_the_middle_is_skipped():
    """A spool file with a torn record between good ones (a crash mid-write,
    then more appends): only the torn record is lost."""
    assert_crc32c()
    s = spool_stack()
    ids = [str(uuid.uuid4()) for _ in range(4)]

    def record(i):
        return json.dumps({
            "request_id": ids[i], "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "api_key_id": 0, "user_id": None, "group_id": None, "provider": "anthropic",
            "model": "claude-haiku-4-5-20251001", "input_tokens": 40 + i, "output_tokens": 2,
            "cache_read_tokens": 0, "cache_write_tokens": 0, "http_status": 200,
            "latency_ms": 10, "upstream_ms": 9, "stream": False, "outcome": "ok",
        }).encode()

    torn = frame(record(1))[:40]
    data = frame(record(0)) + torn + frame(record(2)) + frame(record(3))
    path = s.dir / "spool" / "usage.pending"
    with open(path, "ab") as f:
        f.write(data)
    good = [ids[0], ids[2], ids[3]]
    rows = wait_for(lambda: len(usage_rows(s, good)) == 3 and usage_rows(s, good),
                    SWEEP_MS / 1000 + 10, "the intact records replayed")
    assert sorted(rows.values()) == [("40", "2"), ("42", "2"), ("43", "2")], rows
    assert usage_rows(s, [ids[1]]) == {}
    # records of the previous version (no guard_rule field): replayed with none
    assert s.psql("select count(*) from tollgate.usage where request_id in (%s)"
                  " and guard_rule is null" % ", ".join("'%s'" % i for i in good)) == [["3"]]
    wait_for(lambda: "skipped 1 damaged records (40 bytes)" in s.logs(), 5,
             "the damaged record logged")
