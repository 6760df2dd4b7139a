"""Quotas and dollar budgets (issue 3): exact under concurrency, windows and
resets with an injected clock, tollgatectl with audit rows, the sweeper after
kill -9, a database restart under load, denials, headers, alerts, the
database-down policies and allowed models.

The races make the reserved upper bound exact: every request sends the same
body of L bytes (the upper_bound estimator counts L input tokens) and the mock
reports cache_creation_input_tokens = L, input_tokens = 0 and output_tokens =
max_tokens.  price_upper_micros prices input at the highest input rate (cache
write), so with L a multiple of 4 the upper bound and the actual cost are the
same whole number of micro-dollars, and the token bound equals the actual
token count.  A limit of N such requests then admits exactly N.  These
requests ask for EXACT, a model of the test's own whose 1-hour cache writes
cost the 5-minute rate (Anthropic's 1-hour rate is higher, and it is in the
bound since sql/009: with a real model the bound would exceed what the
mock's 5-minute writes cost).
"""

import calendar
import http.client
import json
import os
import re
import secrets
import signal
import socket
import threading
import time
import uuid
from collections import Counter

from harness import error_body, main_stack, pid_gone, stack, wait_for

HAIKU = "claude-haiku-4-5-20251001"
EXACT = "tollgate-test-exact"   # exact_body's model: priced by exact_body
N = 37                     # requests a race admits
RACE_REQUESTS = 200        # concurrent requests in a race
RACE_PROCESSES, RACE_THREADS = 5, 40
BODY_BYTES, MAX_TOKENS = 1200, 64


# ---- helpers (also used by test_ratelimit) ------------------------------------

def uniq(prefix):
    return "%s-%s" % (prefix, secrets.token_hex(4))


def dollars(micros):
    return "%d.%06d" % (micros // 1000000, micros % 1000000)


def exact_body(s, marker, length=BODY_BYTES, max_tokens=MAX_TOKENS, delay_ms=0):
    """(body text of exactly `length` bytes, its cost in micro-dollars), such
    that the reserved upper bound equals what the mock then reports (see the
    module docstring).  Asserts the two prices are equal.  s serves EXACT
    (race_stack); its price (Haiku 4.5's, 1-hour writes at the 5-minute
    rate) is set here, once."""
    assert length % 4 == 0 and 1000 <= length <= 9999, length
    s.ctl("price", "set", EXACT, "--input", "1000000", "--output", "5000000", "--cache-read",
          "100000", "--cache-write", "1250000", "--cache-write-1h", "1250000", "--from",
          "2020-01-01T00:00:00Z")
    directive = {"usage": {"input_tokens": 0, "output_tokens": max_tokens,
                           "cache_read_input_tokens": 0,
                           "cache_creation_input_tokens": length}}
    if delay_ms:
        directive["delay_ms"] = delay_ms

    def make(pad):
        return json.dumps(s.body(model=EXACT, prompt=marker + " " + "x" * pad,
                                 directive=directive, max_tokens=max_tokens))
    pad = length - len(make(0).encode())
    assert pad >= 0, "marker too long for a %d-byte body" % length
    body = make(pad)
    assert len(body.encode()) == length, (len(body.encode()), length)
    upper, actual = s.psql(
        "select tollgate.price_upper_micros('%s', now(), %d, %d), "
        "tollgate.price_micros('%s', now(), 0, %d, 0, %d)"
        % (EXACT, length, max_tokens, EXACT, max_tokens, length))[0]
    assert upper == actual and int(upper) > 0, \
        "upper bound %s != actual cost %s: the race would not be exact" % (upper, actual)
    return body, int(upper)


def quota_row(s, kind, subject, metric, window):
    """The raw quotas row (no rollover applied) as a dict of ints/strings."""
    rows = s.psql(
        "select q.id, q.limit_value, q.used, q.reserved, "
        "to_char(q.window_start at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), q.alerted_pct "
        "from tollgate.quotas q where q.subject_kind = '%s' "
        "and q.subject_id = tollgate.quota_subject_id('%s', '%s') "
        "and q.metric = '%s' and q.\"window\" = '%s'" % (kind, kind, subject, metric, window))
    assert len(rows) == 1, "no quota %s %s %s/%s" % (kind, subject, metric, window)
    r = rows[0]
    return {"id": int(r[0]), "limit": int(r[1]), "used": int(r[2]), "reserved": int(r[3]),
            "window_start": r[4], "alerted_pct": int(r[5])}


def group_usage(s, group):
    """(rows, sum of cost_micros, sum of all tokens) of a group's usage rows."""
    n, cost, tokens = s.psql(
        "select count(*), coalesce(sum(cost_micros), 0), coalesce(sum(input_tokens + "
        "output_tokens + cache_read_tokens + cache_write_tokens), 0) "
        "from tollgate.usage where group_id = '%s'" % group)[0]
    return int(n), int(cost), int(tokens)


def reservations(s, group):
    return int(s.psql("select count(*) from tollgate.reservations where group_id = '%s'"
                      % group)[0][0])


def log_records(s):
    """Every JSON line of the worker log, as a dict."""
    out = []
    for line in s.logs().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            rec = {"msg": line}
        out.append(rec if isinstance(rec, dict) else {"msg": line})
    return out


def log_messages(s):
    """The msg of every line of the worker log."""
    return [rec.get("msg") or "" for rec in log_records(s)]


def statuses(results):
    return Counter(r["status"] for r in results)


def max_overlap(intervals):
    """The largest number of (start, end) intervals open at one time."""
    events = sorted([(a, 1) for a, b in intervals] + [(b, -1) for a, b in intervals])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def mock_overlap(s, marker):
    recs = [r for r in s.mock_requests(marker) if r.get("t_done")]
    return max_overlap([(r["t_received"], r["t_done"]) for r in recs])


def seconds_to(window, t):
    """Seconds from t (Unix time) to the end of its UTC window."""
    g = time.gmtime(t)
    if window == "minute":
        end = (int(t) // 60 + 1) * 60
    elif window == "hour":
        end = (int(t) // 3600 + 1) * 3600
    elif window == "day":
        end = (int(t) // 86400 + 1) * 86400
    elif window == "month":
        y, m = (g.tm_year + 1, 1) if g.tm_mon == 12 else (g.tm_year, g.tm_mon + 1)
        end = calendar.timegm((y, m, 1, 0, 0, 0))
    else:
        raise ValueError(window)
    return end - t


def assert_reset_near(value, window, t0, t1, what, slack=2):
    """value (header text) is the seconds to the window's end at some time
    between t0 and t1 (the request's send and answer), give or take slack."""
    assert value is not None and re.fullmatch(r"\d+", value), "%s: %r" % (what, value)
    v, early, late = int(value), seconds_to(window, t0), seconds_to(window, t1)
    if late <= early:       # one window throughout
        ok = late - slack <= v <= early + slack
    else:                   # a boundary passed meanwhile: near either end
        ok = abs(v - early) <= slack or abs(v - late) <= slack
    assert ok, "%s = %s, want between %.1f and %.1f" % (what, value, late, early)


def month_end_iso(t):
    g = time.gmtime(t)
    y, m = (g.tm_year + 1, 1) if g.tm_mon == 12 else (g.tm_year, g.tm_mon + 1)
    return "%04d-%02d-01T00:00:00Z" % (y, m)


def at(s, now, sql):
    """psql with tollgate.now set to `now` for the statement; its rows."""
    rows = s.psql("set tollgate.now = '%s'; %s" % (now, sql))
    return rows[1:] if rows and rows[0] == ["SET"] else rows


RESERVE_COLS = ("status denied_subject denied_metric denied_window denied_limit retry_after_s "
                "tokens_limit tokens_remaining tokens_reset_s warn_used_pct").split()


def sql_reserve(s, now, key, input_tokens, max_output, rid=None, model=HAIKU):
    """tollgate.reserve at the injected time `now`: (request id, dict of columns)."""
    rid = rid or str(uuid.uuid4())
    row = at(s, now, "select %s from tollgate.reserve('%s', '%s'::bytea, '%s', %d, %d, "
                     "'test:1', 600000, null)" % (", ".join(RESERVE_COLS), rid,
                                                  s.key_hash(key), model, input_tokens,
                                                  max_output))
    assert len(row) == 1, row
    return rid, dict(zip(RESERVE_COLS, row[0]))


def key_identity(s, key):
    kid, user, group = s.psql("select id, user_id, group_id from tollgate.api_keys "
                              "where prefix = '%s'" % key[:11])[0]
    return kid, user, group


def sql_settle(s, now, rid, key, input_tokens, output_tokens, cache_read=0, cache_write=0):
    """tollgate.settle at the injected time `now`: (cost_micros, alerts list)."""
    kid, user, group = key_identity(s, key)
    row = at(s, now, "select cost_micros, alerts from tollgate.settle('%s', null, %s, '%s', "
                     "'%s', 'anthropic', '%s', %d, %d, %d, %d, 200, 10, 10, false, 'ok')"
             % (rid, kid, user, group, HAIKU, input_tokens, output_tokens, cache_read,
                cache_write))
    return int(row[0][0]), json.loads(row[0][1])


def audit_rows(s, subject):
    """[(action, actor, before, after)] of audit_log rows for subject, oldest first."""
    rows = s.psql("select action, actor, coalesce(before::text, 'null'), after::text "
                  "from tollgate.audit_log where subject = '%s' order by id" % subject)
    return [(a, actor, json.loads(b), json.loads(af)) for a, actor, b, af in rows]


def check_race_denials(results, want_message, what):
    for r in results:
        if r["status"] != 429:
            continue
        etype, message = error_body(r["body"])
        assert etype == "rate_limit_error", "%s: 429 of type %r" % (what, etype)
        assert message == want_message, "%s: 429 says %r, want %r" % (what, message,
                                                                         want_message)


def race_stack():
    # several workers (4 x 8 threads), so requests really are served at once
    return stack(tag="race", processes=4, threads=8, timeout_ms=10000,
                 extra_config={"models": {EXACT: {"provider": "anthropic"}}})


# ---- 1. race on a USD budget -----------------------------------------------------

def test_race_usd_group_budget_admits_exactly_n():
    s = race_stack()
    group, marker = uniq("race-usd"), uniq("race-usd")
    key = s.key(group=group, user=uniq("race-usd-user"))
    body, cost = exact_body(s, marker, delay_ms=300)
    limit = N * cost
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "total",
          "--limit", dollars(limit))
    assert quota_row(s, "group", group, "usd", "total")["limit"] == limit

    results = s.burst(key, [body] * RACE_REQUESTS, processes=RACE_PROCESSES,
                      threads=RACE_THREADS)
    got = statuses(results)
    assert got == Counter({200: N, 429: RACE_REQUESTS - N}), \
        "want exactly %d x 200 and %d x 429, got %s" % (N, RACE_REQUESTS - N, dict(got))
    check_race_denials(results, 'quota exceeded: group "%s" usd in total (limit %s USD)'
                       % (group, dollars(limit)), "usd race")
    assert len(s.mock_requests(marker)) == N, "the provider saw %d requests, want %d" % (
        len(s.mock_requests(marker)), N)
    assert mock_overlap(s, marker) >= 4, \
        "admitted requests did not overlap at the provider (max %d at once)" % mock_overlap(
            s, marker)

    rows, spent, _ = group_usage(s, group)
    assert (rows, spent) == (N, limit), "usage rows %d costing %d, want %d costing %d" % (
        rows, spent, N, limit)
    q = quota_row(s, "group", group, "usd", "total")
    assert q["used"] <= q["limit"], q
    assert (q["used"], q["reserved"]) == (limit, 0), q
    assert reservations(s, group) == 0, "reservations left behind"
    ok = [r for r in results if r["status"] == 200]
    assert all(r["headers"].get("x-tollgate-cost-usd") == dollars(cost) for r in ok), \
        {r["headers"].get("x-tollgate-cost-usd") for r in ok}
    warnings = {r["headers"].get("x-tollgate-budget-warning") for r in results
                if r["status"] == 429}
    assert warnings == {"100%% of %s usd used; resets never" % dollars(limit)}, warnings


# ---- 2. race on a tokens-per-minute quota -------------------------------------------

def wait_for_minute_room(seconds):
    """Sleeps, if need be, until at least `seconds` remain in this minute (UTC)."""
    left = seconds_to("minute", time.time())
    if left < seconds + 1:
        time.sleep(left + 1)


def test_race_tokens_per_minute_user_quota_admits_exactly_n():
    s = race_stack()
    group, user, marker = uniq("race-tok"), uniq("race-tok-user"), uniq("race-tok")
    key = s.key(group=group, user=user)
    body, _ = exact_body(s, marker, delay_ms=300)
    per_request = BODY_BYTES + MAX_TOKENS   # reserved bound = actual tokens
    limit = N * per_request
    wait_for_minute_room(35)   # the whole race in one minute window
    minute = time.strftime("%Y-%m-%d %H:%M:00", time.gmtime())
    s.ctl("quota", "set", "--user", user, "--metric", "tokens", "--window", "minute",
          "--limit", str(limit))

    results = s.burst(key, [body] * RACE_REQUESTS, processes=RACE_PROCESSES,
                      threads=RACE_THREADS)
    t_first = min(r["t_sent"] for r in results)
    t_last = max(r["t_done"] for r in results)
    assert int(t_first) // 60 == int(t_last) // 60, \
        "the race straddled a minute boundary (%.1f .. %.1f): a timing problem of the test" % (
            t_first, t_last)
    got = statuses(results)
    assert got == Counter({200: N, 429: RACE_REQUESTS - N}), \
        "want exactly %d x 200 and %d x 429, got %s" % (N, RACE_REQUESTS - N, dict(got))
    check_race_denials(results, 'quota exceeded: user "%s" tokens per minute (limit %d tokens)'
                       % (user, limit), "tokens race")
    for r in results:
        h = r["headers"]
        assert h.get("x-ratelimit-limit-tokens") == str(limit), h
        remaining = int(h.get("x-ratelimit-remaining-tokens", -1))
        if r["status"] == 200:
            assert 0 <= remaining <= limit - per_request, h
        else:
            assert 0 <= remaining < per_request, h
            assert_reset_near(h.get("retry-after"), "minute", r["t_sent"], r["t_done"],
                              "retry-after of a tokens/minute 429")
        assert_reset_near(h.get("x-ratelimit-reset-tokens"), "minute", r["t_sent"],
                          r["t_done"], "x-ratelimit-reset-tokens")
    assert len(s.mock_requests(marker)) == N
    assert mock_overlap(s, marker) >= 4, "admitted requests did not overlap"

    q = quota_row(s, "user", user, "tokens", "minute")
    assert q["window_start"] == minute, (q, minute)
    assert (q["used"], q["reserved"]) == (limit, 0), q
    rows, _, tokens = group_usage(s, group)
    assert (rows, tokens) == (N, limit), (rows, tokens)
    assert reservations(s, group) == 0


# ---- 4. windows, the monthly reset and manual control with an injected clock -----------

def clock_stack():
    # Its own database: rollovers at an injected 2026-12-01 touch every quota.
    return stack(tag="clock", processes=1)


def test_minute_window_rolls_at_next_use():
    s = clock_stack()
    key = s.key(group=uniq("minute"), user=uniq("minute-user"))
    prefix = key[:11]
    s.ctl("quota", "set", "--key", prefix, "--metric", "tokens", "--window", "minute",
          "--limit", "1000", env={"TOLLGATE_NOW": "2026-11-30 12:00:05+00"})
    q = quota_row(s, "key", prefix, "tokens", "minute")
    assert (q["window_start"], q["used"], q["reserved"]) == ("2026-11-30 12:00:00", 0, 0), q

    r1, res = sql_reserve(s, "2026-11-30 12:00:10+00", key, 300, 300)
    assert (res["status"], res["tokens_limit"], res["tokens_remaining"],
            res["tokens_reset_s"]) == ("ok", "1000", "400", "50"), res
    _, res = sql_reserve(s, "2026-11-30 12:00:20+00", key, 300, 200)
    assert res["status"] == "quota_exceeded", res
    assert (res["denied_subject"], res["denied_metric"], res["denied_window"],
            res["denied_limit"], res["retry_after_s"]) == (
        'key "%s"' % prefix, "tokens", "minute", "1000", "40"), res
    sql_settle(s, "2026-11-30 12:00:30+00", r1, key, 100, 150)
    q = quota_row(s, "key", prefix, "tokens", "minute")
    assert (q["used"], q["reserved"]) == (250, 0), q

    _, res = sql_reserve(s, "2026-11-30 12:00:59+00", key, 700, 51)     # 250 + 751 > 1000
    assert (res["status"], res["retry_after_s"]) == ("quota_exceeded", "1"), res
    r4, res = sql_reserve(s, "2026-11-30 12:00:59+00", key, 700, 50)    # exactly 1000
    assert (res["status"], res["tokens_remaining"]) == ("ok", "0"), res
    sql_settle(s, "2026-11-30 12:00:59.5+00", r4, key, 10, 10)

    # Nothing rolls the row by itself: it is still the old window...
    q = quota_row(s, "key", prefix, "tokens", "minute")
    assert (q["window_start"], q["used"], q["reserved"]) == ("2026-11-30 12:00:00", 270, 0), q
    shown = at(s, "2026-11-30 12:01:00.5+00",
               "select used, window_start = '2026-11-30 12:01:00+00' from tollgate.quota_list "
               "where id = %d" % q["id"])
    assert shown == [["0", "t"]], "quota_list does not show the new window: %s" % shown
    # ...until its next use, which rolls it atomically
    r5, res = sql_reserve(s, "2026-11-30 12:01:00.5+00", key, 600, 300)
    assert (res["status"], res["tokens_remaining"], res["tokens_reset_s"]) == (
        "ok", "100", "60"), res
    q = quota_row(s, "key", prefix, "tokens", "minute")
    assert (q["window_start"], q["used"], q["reserved"]) == ("2026-11-30 12:01:00", 0, 900), q
    # settling in a later minute rolls it again before counting
    sql_settle(s, "2026-11-30 12:02:10+00", r5, key, 40, 2)
    q = quota_row(s, "key", prefix, "tokens", "minute")
    assert (q["window_start"], q["used"], q["reserved"]) == ("2026-11-30 12:02:00", 42, 0), q


def test_monthly_reset_by_tollgatectl_rollover():
    s = clock_stack()
    group = uniq("month")
    key = s.key(group=group, user=uniq("month-user"))
    label = "group:%s usd/month" % group
    before_nov = "2026-11-30 23:59:00+00"
    last_second = "2026-11-30 23:59:59+00"
    after_reset = "2026-12-01 00:00:05+00"
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "month",
          "--limit", "1.00", env={"TOLLGATE_NOW": before_nov})
    q = quota_row(s, "group", group, "usd", "month")
    assert (q["limit"], q["window_start"]) == (1000000, "2026-11-01 00:00:00"), q

    # fill it: 200000 output tokens of haiku = $1.00 exactly
    rid, res = sql_reserve(s, last_second, key, 0, 200000)
    assert res["status"] == "ok", res
    cost, alerts = sql_settle(s, last_second, rid, key, 0, 200000)
    assert cost == 1000000, cost
    assert sorted(a["threshold_pct"] for a in alerts) == [80, 100], alerts
    q = quota_row(s, "group", group, "usd", "month")
    assert (q["used"], q["reserved"], q["alerted_pct"]) == (1000000, 0, 100), q
    _, res = sql_reserve(s, last_second, key, 0, 1)
    assert (res["status"], res["denied_subject"], res["denied_metric"], res["denied_window"],
            res["denied_limit"], res["retry_after_s"]) == (
        "quota_exceeded", 'group "%s"' % group, "usd", "month", "1000000", "1"), res
    shown = s.ctl("quota", "show", "--group", group, env={"TOLLGATE_NOW": last_second})
    line = [l for l in shown.splitlines() if group in l]
    assert len(line) == 1 and line[0].split()[4:] == [
        "1.000000", "1.000000", "0.000000", "0.000000", "2026-12-01T00:00:00Z"], shown

    n_audit = len(audit_rows(s, label))
    out = s.ctl("quota", "rollover", env={"TOLLGATE_NOW": after_reset})
    m = re.search(r"rolled over (\d+) quotas", out)
    assert m and int(m.group(1)) >= 1, out
    q = quota_row(s, "group", group, "usd", "month")
    assert (q["used"], q["reserved"], q["alerted_pct"], q["window_start"]) == (
        0, 0, 0, "2026-12-01 00:00:00"), q
    audit = audit_rows(s, label)
    assert len(audit) == n_audit + 1, audit
    action, actor, before, after = audit[-1]
    assert action == "quota.rollover" and actor, audit[-1]
    assert (before["used"], after["used"]) == (1000000, 0), (before, after)
    assert after["window_start"].startswith("2026-12-01"), after

    # a second run in the same month has nothing to roll for this quota
    s.ctl("quota", "rollover", env={"TOLLGATE_NOW": "2026-12-01 00:10:00+00"})
    assert len(audit_rows(s, label)) == n_audit + 1, "rolled twice"
    # December: the budget is back, and alerts can be raised again in the new window
    rid, res = sql_reserve(s, after_reset, key, 0, 160000)
    assert res["status"] == "ok", res
    cost, alerts = sql_settle(s, after_reset, rid, key, 0, 160000)
    assert cost == 800000 and [a["threshold_pct"] for a in alerts] == [80], (cost, alerts)
    rows = s.psql("select threshold_pct, to_char(window_start at time zone 'UTC', 'MM-DD') "
                  "from tollgate.quota_alerts where quota_id = %d order by id" % q["id"])
    assert rows == [["80", "11-01"], ["100", "11-01"], ["80", "12-01"]], rows


def test_month_rolls_at_midnight_in_the_configured_time_zone():
    s = clock_stack()
    group = uniq("tz")
    key = s.key(group=group, user=uniq("tz-user"))
    s.psql("update tollgate.settings set value = 'America/New_York' where key = 'timezone'")
    try:
        s.ctl("quota", "set", "--group", group, "--metric", "tokens", "--window", "month",
              "--limit", "100", env={"TOLLGATE_NOW": "2026-11-30 20:00:00+00"})
        q = quota_row(s, "group", group, "tokens", "month")
        assert q["window_start"] == "2026-11-01 04:00:00", q     # Nov 1, 00:00 EDT
        rid, res = sql_reserve(s, "2026-11-30 20:00:00+00", key, 50, 50)
        assert res["status"] == "ok", res
        sql_settle(s, "2026-11-30 20:00:00+00", rid, key, 50, 50)
        # 2026-12-01 04:59:59 UTC is still November in New York: full, 1 s to go
        _, res = sql_reserve(s, "2026-12-01 04:59:59+00", key, 1, 0)
        assert (res["status"], res["retry_after_s"]) == ("quota_exceeded", "1"), res
        s.ctl("quota", "rollover", env={"TOLLGATE_NOW": "2026-12-01 03:00:00+00"})
        assert quota_row(s, "group", group, "tokens", "month")["used"] == 100, \
            "rolled over before midnight in the configured zone"
        s.ctl("quota", "rollover", env={"TOLLGATE_NOW": "2026-12-01 05:00:05+00"})
        q = quota_row(s, "group", group, "tokens", "month")
        assert (q["used"], q["window_start"]) == (0, "2026-12-01 05:00:00"), q
    finally:
        s.psql("update tollgate.settings set value = 'UTC' where key = 'timezone'")


def test_manual_set_adjust_reset_leave_audit_rows():
    s = clock_stack()
    group, user = uniq("manual"), uniq("manual-user")
    key = s.key(group=group, user=user)
    tok_label = "group:%s tokens/day" % group
    usd_label = "group:%s usd/month" % group
    assert audit_rows(s, tok_label) == [] and audit_rows(s, usd_label) == []

    s.ctl("quota", "set", "--group", group, "--metric", "tokens", "--window", "day",
          "--limit", "1000")
    (action, actor, before, after), = audit_rows(s, tok_label)
    assert (action, before, after["limit_value"]) == ("quota.set", None, 1000), after
    assert actor, "audit row without an actor"

    rid, res = sql_reserve(s, time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime()), key,
                           200, 100)
    assert res["status"] == "ok", res
    sql_settle(s, time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime()), rid, key, 200, 100)
    assert quota_row(s, "group", group, "tokens", "day")["used"] == 300

    steps = [(("set", "--limit", "2000"), "quota.set", "limit_value", 1000, 2000),
             (("adjust", "--by", "-500"), "quota.adjust", "limit_value", 2000, 1500),
             (("adjust", "--by", "+250"), "quota.adjust", "limit_value", 1500, 1750),
             (("reset",), "quota.reset", "used", 300, 0)]
    for args, want_action, field, old, new in steps:
        s.ctl("quota", args[0], "--group", group, "--metric", "tokens", "--window", "day",
              *args[1:])
        action, _, before, after = audit_rows(s, tok_label)[-1]
        assert (action, before[field], after[field]) == (want_action, old, new), \
            "%s: audit %s %s -> %s" % (args, action, before.get(field), after.get(field))
    assert len(audit_rows(s, tok_label)) == 1 + len(steps)
    q = quota_row(s, "group", group, "tokens", "day")
    assert (q["limit"], q["used"], q["reserved"]) == (1750, 0, 0), q

    # USD in dollars, adjusted both ways
    for args, old, new in ((("set", "--limit", "5.00"), None, 5000000),
                           (("adjust", "--by", "+1.5"), 5000000, 6500000),
                           (("adjust", "--by", "-0.25"), 6500000, 6250000)):
        s.ctl("quota", args[0], "--group", group, "--metric", "usd", "--window", "month",
              *args[1:])
        _, _, before, after = audit_rows(s, usd_label)[-1]
        assert ((before or {}).get("limit_value"), after["limit_value"]) == (old, new), args
    assert quota_row(s, "group", group, "usd", "month")["limit"] == 6250000
    shown = s.ctl("quota", "show", "--group", group)
    assert re.search(r"\busd\s+month\s+6\.250000\b", shown), shown

    # a key's quota by its prefix; a user's
    s.ctl("quota", "set", "--key", key[:11], "--metric", "requests", "--window", "hour",
          "--limit", "7")
    assert audit_rows(s, "key:%s requests/hour" % key[:11])[-1][3]["limit_value"] == 7
    s.ctl("quota", "set", "--user", user, "--metric", "tokens", "--window", "day",
          "--limit", "9")
    assert audit_rows(s, "user:%s tokens/day" % user)[-1][0] == "quota.set"

    # refused changes leave no audit row
    n = s.psql("select count(*) from tollgate.audit_log")[0][0]
    for args in (("adjust", "--group", group, "--metric", "tokens", "--window", "hour",
                  "--by", "5"),
                 ("reset", "--group", uniq("nobody"), "--metric", "usd", "--window", "day"),
                 ("set", "--key", "tg-NoSuchKy", "--metric", "usd", "--window", "day",
                  "--limit", "1"),
                 ("set", "--group", group, "--metric", "usd", "--window", "day",
                  "--limit", "1.0000001")):
        try:
            s.ctl("quota", *args)
        except RuntimeError:
            pass
        else:
            raise AssertionError("tollgatectl quota %s succeeded" % " ".join(args))
    assert s.psql("select count(*) from tollgate.audit_log")[0][0] == n


def test_tollgatectl_sweep_releases_expired_reservations():
    s = clock_stack()
    group = uniq("sweep")
    key = s.key(group=group, user=uniq("sweep-user"))
    s.ctl("quota", "set", "--group", group, "--metric", "tokens", "--window", "total",
          "--limit", "100000")
    now = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
    rid, res = sql_reserve(s, now, key, 100, 23)      # ttl 600000 ms
    assert res["status"] == "ok", res
    assert quota_row(s, "group", group, "tokens", "total")["reserved"] == 123
    out = s.ctl("quota", "sweep")
    assert quota_row(s, "group", group, "tokens", "total")["reserved"] == 123, \
        "a live reservation was swept: %s" % out
    later = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(time.time() + 601))
    out = s.ctl("quota", "sweep", env={"TOLLGATE_NOW": later})
    assert re.search(r"released [1-9]\d* ", out), out
    q = quota_row(s, "group", group, "tokens", "total")
    assert (q["used"], q["reserved"]) == (0, 0), q
    assert reservations(s, group) == 0
    # settling after the sweep counts the usage once and releases nothing twice
    sql_settle(s, later, rid, key, 10, 5)
    q = quota_row(s, "group", group, "tokens", "total")
    assert (q["used"], q["reserved"]) == (15, 0), q


# ---- 5. kill -9 of a worker mid-request ----------------------------------------------

def kill_stack():
    return stack(tag="kill", processes=2, threads=4, timeout_ms=15000,
                 extra_config={"quotas": {"sweep_interval_ms": 500}})


def holder_domain():
    """This host's reservation-holder domain, as fcgi/holder.c computes it."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    host = socket.gethostname().split(":")[0].split("/")[0]
    return "%s/%s/%d" % (host, boot, os.stat("/proc/self/ns/pid").st_ino)


def test_sweeper_judges_only_holders_of_its_own_host():
    """Another host with the same host name (or a container in another PID
    namespace) holds reservations under a name the sweeper cannot confuse with
    its own workers': they stay. One of this host's, whose pid is gone or was
    reused by a process started later, is released."""
    s = kill_stack()
    host = socket.gethostname()
    dead_pid = 4194303  # above any pid_max: no such process here
    own_pid = s.worker_pids[0]
    foreign = ["%s:%d" % (host, dead_pid),                      # the old "host:pid" form
               "%s/%s/%d:%d:1" % (host, uuid.uuid4(), 4026531836, dead_pid),  # another boot
               "%s/%s:%d:1" % (holder_domain().rsplit("/", 1)[0], "1", dead_pid)]  # other PID ns
    ours = ["%s:%d:1" % (holder_domain(), dead_pid),
            "%s:%d:1" % (holder_domain(), own_pid)]             # a live pid, another start time
    for h in foreign + ours:
        s.psql("insert into tollgate.reservations (request_id, expires_at, holder) "
               "values ('%s', now() + interval '1 hour', '%s')" % (uuid.uuid4(), h))
    names = "'" + "', '".join(foreign + ours) + "'"
    wait_for(lambda: s.psql("select count(*) from tollgate.reservations where holder in (%s)"
                            % names) == [[str(len(foreign))]], 10,
             "the sweeper to release this host's dead holders")
    time.sleep(1.2)  # two more sweeps: the foreign ones stay
    left = sorted(r[0] for r in s.psql(
        "select holder from tollgate.reservations where holder in (%s)" % names))
    assert left == sorted(foreign), left
    s.psql("delete from tollgate.reservations where holder in (%s)" % names)


def test_kill_9_worker_mid_request_is_settled_from_its_journal():
    s = kill_stack()
    assert len(s.worker_pids) == 2 and not s.dead_workers(), s.worker_pids
    group = uniq("kill")
    key = s.key(group=group, user=uniq("kill-user"))
    for metric, window, limit in (("usd", "total", "1000.00"), ("tokens", "day", "100000000"),
                                  ("requests", "day", "100000")):
        s.ctl("quota", "set", "--group", group, "--metric", metric, "--window", window,
              "--limit", limit)
    usage = {"input_tokens": 100, "output_tokens": 50}
    for _ in range(3):
        assert s.messages(key, directive={"usage": usage})[0] == 200

    results, threads = [], []
    lock = threading.Lock()

    def slow():
        try:
            r = s.messages(key, directive={"usage": usage, "delay_ms": 6000}, timeout=60)
        except Exception as e:  # the killed worker's clients lose their connection
            r = (repr(e), {}, b"")
        with lock:
            results.append(r)
    for _ in range(8):   # = 2 workers x 4 threads: every thread holds one
        t = threading.Thread(target=slow)
        t.start()
        threads.append(t)
    try:
        holders = wait_for(lambda: (lambda rows: len(rows) == 2 and sum(
            int(c) for _, c in rows) == 8 and rows)(s.psql(
                "select holder, count(*) from tollgate.reservations where group_id = '%s' "
                "group by holder order by holder" % group)),
            10, "8 reservations held by both workers")
        # holder names: "HOST/BOOT/PIDNS:PID:START" (fcgi/holder.h)
        pids = [int(h.split(":")[1]) for h, _ in holders]
        assert all(h.startswith(holder_domain() + ":") for h, _ in holders), holders
        assert sorted(pids) == sorted(s.worker_pids), (pids, s.worker_pids)
        # a worker has a spare thread (capacity.c): the split need not be 4/4
        victim, victim_holder, held = pids[0], holders[0][0], int(holders[0][1])
        os.kill(victim, signal.SIGKILL)
        # gone for good: reaped (we are the workers' subreaper), not a zombie
        # that kill(pid, 0) in the sweeper would still find
        wait_for(lambda: pid_gone(victim) and not os.path.exists("/proc/%d" % victim), 10,
                 "the killed worker to be reaped")
        s.worker_pids.remove(victim)
        # the survivor's sweeper (or the replacement worker, at its start) (every 500 ms) settles the dead worker's requests from its
        # journal (they went upstream: the provider may have served them), which gives their
        # reservations back
        wait_for(lambda: s.psql("select count(*) from tollgate.reservations where holder = "
                                "'%s'" % victim_holder) == [["0"]],
                 10, "the sweeper to settle the dead worker's reservations")
        def recovered():   # logged just after each settle commits; maybe by two workers
            return sum(int(n) for n in re.findall(
                r"settled (\d+) requests? from dead workers' journals", s.logs()))
        try:
            wait_for(lambda: recovered() == held, 5, "the recovery log lines")
        except TimeoutError:
            raise AssertionError("no recovery log line: %s" % [
                m for m in log_messages(s) if "journal" in m or "sweep" in m])
    finally:
        for t in threads:
            t.join(90)
    got = Counter(r[0] for r in results)
    assert got[200] == 8 - held and sum(got.values()) == 8, "statuses %s" % dict(got)
    wait_for(lambda: reservations(s, group) == 0, 10, "every reservation to be released")
    rows, spent, tokens = group_usage(s, group)
    assert rows == 3 + 8, "%d usage rows, want 11 (3 before, %d survivors, %d lost)" % (
        rows, 8 - held, held)
    lost = s.psql("select outcome, usage_source, input_tokens >= 100, output_tokens "
                  "from tollgate.usage where group_id = '%s' and outcome = 'worker_lost'" % group)
    # non-stream calls killed mid-flight: nothing streamed, so billed at the reserved bound
    # (the body's bytes for input, max_tokens for output)
    assert lost == [["worker_lost", "reserved_bound", "t", "64"]] * held, lost
    want = {("usd", "total"): spent, ("tokens", "day"): tokens, ("requests", "day"): rows}
    for (metric, window), used in want.items():
        q = quota_row(s, "group", group, metric, window)
        assert (q["used"], q["reserved"]) == (used, 0), \
            "%s/%s: used %d reserved %d, want used %d reserved 0" % (
                metric, window, q["used"], q["reserved"], used)
    assert s.messages(key)[0] == 200, "the surviving worker does not serve"


# ---- 6. database restart during a load run -----------------------------------------

def dbload_stack():
    return stack(tag="dbload", processes=2, threads=8, timeout_ms=5000,
                 extra_config={"quotas": {"sweep_interval_ms": 1000,
                                          "reservation_ttl_ms": 12000}})


def test_database_down_at_reserve_is_503_by_default():
    s = dbload_stack()
    key = s.key(group=uniq("down"), user=uniq("down-user"))
    marker = uniq("down")
    assert s.messages(key)[0] == 200
    s.stop_db()
    try:
        t0 = time.monotonic()
        status, headers, body = s.messages(key, prompt=marker, timeout=20)
        assert status == 503, (status, body[:300])
        assert error_body(body)[0] == "api_error", body
        assert time.monotonic() - t0 < 6, "503 took %.1fs" % (time.monotonic() - t0)
        assert "admitted on local rate limits only" not in s.logs()
    finally:
        s.start_db()
    assert not s.mock_requests(marker), "a request went upstream with the database down"
    wait_for(lambda: s.messages(key)[0] == 200, 20, "a 200 after the restart")


def test_database_restart_during_load_no_usage_lost_or_duplicated():
    s = dbload_stack()
    group = uniq("load")
    key = s.key(group=group, user=uniq("load-user"))
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "total",
          "--limit", "1000.00")
    s.ctl("quota", "set", "--group", group, "--metric", "tokens", "--window", "day",
          "--limit", "100000000")
    body = s.body(prompt=uniq("load"), directive={"delay_ms": 500, "usage": {
        "input_tokens": 40, "output_tokens": 30, "cache_read_input_tokens": 7}})
    outcome = {}

    def load():
        try:
            outcome["results"] = s.burst(key, [body], processes=2, threads=10, duration=20,
                                         pause_ms=200, timeout=30)
        except Exception as e:  # reported below
            outcome["error"] = e
    t0 = time.time()
    loader = threading.Thread(target=load)
    loader.start()
    try:
        time.sleep(max(0, t0 + 1.2 + 6 - time.time()))
        t_stop = time.time()
        s.stop_db()
        time.sleep(5)
        t_start = time.time()
        s.start_db()
    finally:
        loader.join(120)
    assert "error" not in outcome, "load failed: %s" % outcome.get("error")
    results = outcome["results"]
    got = statuses(results)
    assert set(got) <= {200, 503}, "unexpected answers: %s %s" % (dict(got), [
        (r["status"], r["body"][:200]) for r in results if r["status"] not in (200, 503)][:5])
    assert got[503] > 0, "no request saw the outage: %s" % dict(got)
    ok = [r for r in results if r["status"] == 200]
    assert any(r["t_done"] < t_stop for r in ok) and any(r["t_sent"] > t_start for r in ok), \
        "want 200s both before and after the outage"
    ids = [r["headers"]["x-request-id"] for r in ok]
    assert len(set(ids)) == len(ids), "a request id was answered twice"
    spooled = {rec.get("request_id") for rec in log_records(s)
               if "usage spooled" in (rec.get("msg") or "")}
    assert spooled, "no usage was spooled: no request settled during the outage"
    assert spooled <= set(ids), "spooled usage of requests not answered 200: %s" % (
        spooled - set(ids))

    def missing():
        have = {row[0] for row in s.psql(
            "select request_id from tollgate.usage where group_id = '%s'" % group)}
        return [i for i in ids if i not in have]
    deadline = time.monotonic() + 30
    while missing() and time.monotonic() < deadline:
        status, headers, _ = s.messages(key)   # a settle replays the spool
        if status == 200:
            ids.append(headers["x-request-id"])
        time.sleep(0.3)
    lost = missing()
    assert not lost, "%d of %d requests answered 200 have no usage row, e.g. %s " \
        "(%d of them spooled)" % (len(lost), len(ids), lost[:3], len(spooled & set(lost)))
    rows = s.psql("select request_id from tollgate.usage where group_id = '%s'" % group)
    assert sorted(r[0] for r in rows) == sorted(ids), \
        "%d usage rows for %d requests served (extra: %s)" % (
            len(rows), len(ids), sorted({r[0] for r in rows} - set(ids))[:3])
    assert "replayed" in s.logs(), "no spool replay logged"
    wait_for(lambda: reservations(s, group) == 0, 45,
             "reservations to be settled or expire and be swept")
    n, spent, tokens = group_usage(s, group)
    for metric, window, used in (("usd", "total", spent), ("tokens", "day", tokens)):
        q = quota_row(s, "group", group, metric, window)
        assert (q["used"], q["reserved"]) == (used, 0), \
            "%s: used %d reserved %d, want used %d (sum of %d usage rows), reserved 0" % (
                metric, q["used"], q["reserved"], used, n)


def test_every_outcome_settles_or_releases_its_reservation():
    """Provider errors, dropped connections, streams and a client that goes
    away mid-stream: no reservation is left and every quota counts exactly
    the usage rows."""
    s = main_stack()
    group = uniq("outcomes")
    key = s.key(group=group, user=uniq("outcomes-user"))
    for metric, window, limit in (("usd", "month", "100.00"), ("tokens", "day", "10000000"),
                                  ("requests", "hour", "100000")):
        s.ctl("quota", "set", "--group", group, "--metric", metric, "--window", window,
              "--limit", limit)
    usage = {"input_tokens": 21, "output_tokens": 8, "cache_read_input_tokens": 5}
    for directive in ({"usage": usage}, {"status": 500}, {"status": 429, "retry_after": 2},
                      {"drop": "before_headers"}, {"drop": "mid_stream", "usage": usage}):
        status, _, resp = s.messages(key, directive=directive)
        assert status != 200 or "drop" not in directive, (directive, status)
    for directive in ({"usage": usage, "chunks": 3},
                      {"drop": "mid_stream", "chunks": 3, "usage": usage}):
        resp = s.stream(s.body(stream=True, directive=directive), s.auth(key))
        try:
            list(resp)
        except (OSError, ValueError, http.client.HTTPException):
            pass
    resp = s.stream(s.body(stream=True, directive={"usage": usage, "chunks": 10,
                                                    "event_delay_ms": 300}), s.auth(key))
    next(iter(resp))
    resp.conn.close()     # the client goes away mid-stream
    wait_for(lambda: reservations(s, group) == 0, 20, "every reservation to be released")
    wait_for(lambda: group_usage(s, group)[0] == 8, 10, "8 usage rows")
    n, spent, tokens = group_usage(s, group)
    for metric, window, used in (("usd", "month", spent), ("tokens", "day", tokens),
                                 ("requests", "hour", n)):
        q = quota_row(s, "group", group, metric, window)
        assert (q["used"], q["reserved"]) == (used, 0), \
            "%s: used %d reserved %d, want %d and 0" % (metric, q["used"], q["reserved"], used)


# ---- 7. denial details, headers, budget warning, alerts --------------------------------

def test_denial_headers_budget_warning_and_alerts():
    s = race_stack()   # it serves EXACT
    group, user, marker = uniq("deny"), uniq("deny-user"), uniq("deny")
    key = s.key(group=group, user=user)
    body, cost = exact_body(s, marker)
    per_request = BODY_BYTES + MAX_TOKENS
    limit, tok_limit, req_limit = 10 * cost, 1000000, 100
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "month",
          "--limit", dollars(limit))
    s.ctl("quota", "set", "--user", user, "--metric", "tokens", "--window", "day",
          "--limit", str(tok_limit))
    s.ctl("quota", "set", "--key", key[:11], "--metric", "requests", "--window", "hour",
          "--limit", str(req_limit))

    def send():
        t0 = time.time()
        status, headers, resp = s.request("POST", "/v1/messages", body, s.auth(key))
        return status, headers, resp, t0, time.time()

    for i in range(1, 11):
        status, h, resp, t0, t1 = send()
        assert status == 200, (i, status, resp[:300])
        assert "retry-after" not in h
        assert (h.get("x-ratelimit-limit-tokens"), h.get("x-ratelimit-remaining-tokens")) == (
            str(tok_limit), str(tok_limit - i * per_request)), (i, h)
        assert (h.get("x-ratelimit-limit-requests"), h.get("x-ratelimit-remaining-requests")) \
            == (str(req_limit), str(req_limit - i)), (i, h)
        assert_reset_near(h.get("x-ratelimit-reset-tokens"), "day", t0, t1, "reset-tokens")
        assert_reset_near(h.get("x-ratelimit-reset-requests"), "hour", t0, t1, "reset-requests")
        warning = h.get("x-tollgate-budget-warning")
        if i < 8:
            assert warning is None, "budget warning at %d%%: %r" % (i * 10, warning)
        else:
            assert warning == "%d%% of %s usd used; resets %s" % (
                i * 10, dollars(limit), month_end_iso(t1)), (i, warning)
        assert not [k for k in h if k.startswith("anthropic-ratelimit-")], h

    for j in range(5):
        status, h, resp, t0, t1 = send()
        assert status == 429, (j, status, resp[:300])
        etype, message = error_body(resp)
        assert etype == "rate_limit_error", etype
        assert message == 'quota exceeded: group "%s" usd per month (limit %s USD)' % (
            group, dollars(limit)), message
        assert_reset_near(h.get("retry-after"), "month", t0, t1, "retry-after of a usd/month 429")
        assert (h.get("x-ratelimit-remaining-tokens"), h.get("x-ratelimit-remaining-requests")) \
            == (str(tok_limit - 10 * per_request), str(req_limit - 10)), h
        assert h.get("x-ratelimit-limit-tokens") == str(tok_limit), h
        assert h.get("x-tollgate-budget-warning") == "100%% of %s usd used; resets %s" % (
            dollars(limit), month_end_iso(t1)), h
    assert len(s.mock_requests(marker)) == 10, "429s reached the provider"

    q = quota_row(s, "group", group, "usd", "month")
    assert (q["used"], q["reserved"], q["alerted_pct"]) == (limit, 0, 100), q
    alerts = s.psql("select threshold_pct, used, limit_value from tollgate.quota_alerts "
                    "where quota_id = %d order by id" % q["id"])
    assert alerts == [["80", str(8 * cost), str(limit)], ["100", str(limit), str(limit)]], alerts
    subject = 'quota alert: group "%s" usd per month' % group

    def alert_lines():
        return [m for m in log_messages(s) if subject in m]
    wait_for(lambda: len(alert_lines()) >= 2, 5, "two alert log lines")
    lines = alert_lines()
    assert len(lines) == 2 and "crossed 80%" in lines[0] and "crossed 100%" in lines[1], lines
    # the other quotas stayed under their warn_pct: no alerts for them
    assert not [m for m in log_messages(s) if "quota alert" in m and (
        user in m or key[:11] in m)]


# ---- 8. database down at reserve: local_only ---------------------------------------------

LO_GROUP = "lo-limited"


def local_only_stack():
    return stack(tag="local-only", processes=1, extra_config={
        "quotas": {"on_database_down": "local_only", "estimator": "approximate"},
        "rate_limits": [{"name": "lo-bucket", "per": "key", "mode": "local",
                         "match": {"group": LO_GROUP}, "max_tokens": 3,
                         "tokens_per_fill": 1, "fill_interval_ms": 600000}]})


def test_database_down_local_only_admits_known_key_and_replays():
    s = local_only_stack()
    known = s.key(group=LO_GROUP, user=uniq("lo-user"))
    stranger = s.key(group=LO_GROUP, user=uniq("lo-user"))
    s.ctl("quota", "set", "--group", LO_GROUP, "--metric", "usd", "--window", "total",
          "--limit", "100.00")
    usage = {"input_tokens": 30, "output_tokens": 20}
    assert s.messages(known, directive={"usage": usage})[0] == 200      # bucket 3 -> 2
    s.stop_db()
    admitted = []
    try:
        for _ in range(2):                                                 # 2 -> 1 -> 0
            status, h, resp = s.messages(known, directive={"usage": usage}, timeout=20)
            assert status == 200, ("known key, database down", status, resp[:300])
            assert "x-tollgate-cost-usd" in h  # the worker's copy of the prices
            admitted.append(h["x-request-id"])
        status, h, resp = s.messages(known, timeout=20)
        assert status == 429, ("the local bucket still applies", status, resp[:300])
        etype, message = error_body(resp)
        assert etype == "rate_limit_error" and 'rate limit "lo-bucket" exceeded' in message, \
            message
        assert h.get("retry-after") and 1 <= int(h["retry-after"]) <= 600, h
        status, _, resp = s.messages(stranger, timeout=20)
        assert status == 503 and error_body(resp)[0] == "api_error", \
            ("a key never seen must be refused", status, resp[:300])
        for rid in admitted:
            lines = [l for l in s.logs().splitlines() if rid in l]
            assert any("admitted on local rate limits only" in l for l in lines), lines
    finally:
        s.start_db()

    def replayed():
        if s.psql("select count(*) from tollgate.usage where request_id in ('%s')"
                  % "','".join(admitted)) == [[str(len(admitted))]]:
            return True
        s.messages(stranger)    # a settle replays the spool
        time.sleep(0.3)
        return False
    wait_for(replayed, 30, "the spooled usage to be replayed")
    for rid in admitted:
        row = s.usage(rid)
        assert (row["input_tokens"], row["output_tokens"], row["http_status"]) == (
            "30", "20", "200"), row
    n, spent, _ = group_usage(s, LO_GROUP)
    q = quota_row(s, "group", LO_GROUP, "usd", "total")
    assert (q["used"], q["reserved"]) == (spent, 0), (q, n, spent)


def test_database_down_local_only_refuses_a_key_revoked_before():
    """A key the gateway saw refused as revoked (or expired) must not be
    admitted from the local_only memory of its earlier success."""
    s = local_only_stack()
    revoked = s.key(group=uniq("lo-revoked"), user=uniq("lo-user"))
    expired = s.key(group=uniq("lo-expired"), user=uniq("lo-user"))
    assert s.messages(revoked)[0] == 200 and s.messages(expired)[0] == 200
    s.revoke(revoked)
    s.psql("update tollgate.api_keys set expires_at = now() - interval '1 minute' "
           "where prefix = '%s'" % expired[:11])
    assert s.messages(revoked)[0] == 401 and s.messages(expired)[0] == 401
    s.stop_db()
    try:
        got = {name: s.messages(key, timeout=20)[0]
               for name, key in (("revoked", revoked), ("expired", expired))}
    finally:
        s.start_db()
    assert got == {"revoked": 503, "expired": 503}, \
        "with the database down, keys refused before were answered %s" % got


def test_approximate_estimator_reserves_a_quarter_of_the_bytes():
    s = local_only_stack()
    user = uniq("approx-user")
    key = s.key(group=uniq("approx"), user=user)
    s.ctl("quota", "set", "--user", user, "--metric", "tokens", "--window", "day",
          "--limit", "100000")
    body = json.dumps(s.body(prompt="approx " + "y" * 800, max_tokens=100,
                             directive={"usage": {"input_tokens": 5, "output_tokens": 6}}))
    status, h, resp = s.request("POST", "/v1/messages", body, s.auth(key))
    assert status == 200, (status, resp[:300])
    want = 100000 - (len(body.encode()) // 4 + 1 + 100)
    assert h.get("x-ratelimit-remaining-tokens") == str(want), (h, want)
    q = quota_row(s, "user", user, "tokens", "day")
    assert (q["used"], q["reserved"]) == (11, 0), q


# ---- 9. allowed models, expired keys ---------------------------------------------------

def test_model_not_allowed_is_403():
    s = main_stack()
    key = s.key(group=uniq("models"), user=uniq("models-user"))
    s.psql("update tollgate.api_keys set allowed_models = '{claude-sonnet-4-5}' "
           "where prefix = '%s'" % key[:11])
    marker = uniq("notallowed")
    status, h, resp = s.messages(key, model=HAIKU, prompt=marker)
    assert status == 403, (status, resp[:300])
    etype, message = error_body(resp)
    assert etype == "permission_error" and "not allowed" in message, (etype, message)
    assert h.get("x-request-id")
    assert not s.mock_requests(marker), "a refused model reached the provider"
    status, _, resp = s.messages(key, model="claude-sonnet-4-5")
    assert status == 200, (status, resp[:300])
    # allowed by its canonical name: a request by alias is the same model
    s.psql("update tollgate.api_keys set allowed_models = '{%s}' where prefix = '%s'"
           % (HAIKU, key[:11]))
    for model in (HAIKU, "claude-haiku-4-5"):
        status, _, resp = s.messages(key, model=model)
        assert status == 200, (model, status, resp[:300])
    status, _, resp = s.messages(key, model="claude-sonnet-4-5")
    assert status == 403, (status, resp[:300])


def test_expired_key_is_401():
    s = main_stack()
    key = s.key(group=uniq("expired"), user=uniq("expired-user"))
    assert s.messages(key)[0] == 200
    s.psql("update tollgate.api_keys set expires_at = now() - interval '1 minute' "
           "where prefix = '%s'" % key[:11])
    status, _, resp = s.messages(key)
    assert status == 401 and error_body(resp)[0] == "authentication_error", (status, resp)
