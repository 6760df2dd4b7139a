"""Requests refused before the provider, counted in tollgate.denials (issue 5,
item 2): each worker counts its refusals in memory and its sweeper adds them
every quotas.sweep_interval_ms in one statement; a graceful stop sends the
rest.

From several client threads and two worker processes: 7 × 401 (unknown keys),
5 × 429 (a key with a quota of 2 requests, sent 7) and 3 × 403 (a model the
group does not allow) end up in tollgate.denials exactly, per reason, status
and group, and sql/reports/blocked.sql, run through psql, reports the same
numbers.  Counted while PostgreSQL is stopped, refusals are kept and added
once it is back; none is lost and none counted twice.
"""

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from harness import PGBIN, REPO, error_body, run, stack, wait_for

SWEEP_MS = 200
HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-5"


def denials_stack():
    return stack(tag="denials", processes=2, threads=4,
                 extra_config={"quotas": {"sweep_interval_ms": SWEEP_MS}})


def uniq(prefix):
    return "%s-%s" % (prefix, secrets.token_hex(4))


def unknown_key():
    return "tg-" + secrets.token_urlsafe(32)[:43]


def counts(s):
    """{(group or "", reason, http_status): requests} over every day."""
    rows = s.psql("select coalesce(group_id, ''), reason, http_status, sum(requests) "
                  "from tollgate.denials group by 1, 2, 3")
    return {(g, reason, int(status)): int(n) for g, reason, status, n in rows}


def wait_counts(s, want, timeout=20):
    """Waits until counts(s) is want on every key of want; returns counts(s)."""
    seen = {}

    def done():
        seen.update(counts(s))
        return all(seen.get(k, 0) == n for k, n in want.items())
    try:
        wait_for(done, timeout, "tollgate.denials to hold %s" % want)
    except TimeoutError as e:
        raise AssertionError("%s; it holds %s" % (e, seen))
    # none arrives late and overshoots
    time.sleep(3 * SWEEP_MS / 1000)
    final = counts(s)
    assert all(final.get(k, 0) == n for k, n in want.items()), (want, final)
    return final


def key_id(s, key):
    return s.psql("select id from tollgate.api_keys where prefix = '%s'" % key[:11])[0][0]


def blocked_report(s, month):
    out = run([PGBIN / "psql", "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1",
               "-v", "month=" + month, "-d", s.db.url(), "-f",
               REPO / "sql" / "reports" / "blocked.sql"])
    return {(g, reason, int(status)): (int(n), int(users))
            for g, reason, status, n, users in (l.split("|") for l in out.splitlines() if l)}


def send_all(jobs, threads=8):
    """Runs the (label, fn) jobs from a thread pool: {label: [status, ...]}."""
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda job: (job[0], job[1]()), jobs))
    out = {}
    for label, (status, _, body) in results:
        out.setdefault(label, []).append((status, body))
    return out


def test_denials_counted_reported_and_kept_across_a_database_restart():
    s = denials_stack()
    base = counts(s)
    quota_group, rbac_group = uniq("dn-quota"), uniq("dn-rbac")
    quota_user, rbac_user = uniq("dn-q"), uniq("dn-r")
    quota_key = s.key(group=quota_group, user=quota_user)
    rbac_key = s.key(group=rbac_group, user=rbac_user)
    s.ctl("quota", "set", "--key", quota_key[:11], "--metric", "requests", "--window", "total",
          "--limit", "2")
    s.ctl("group", "set", rbac_group, "--models", "claude-haiku-*")

    jobs = ([("401", lambda: s.messages(unknown_key()))] * 7 +
            [("quota", lambda: s.messages(quota_key, model=HAIKU))] * 7 +
            [("403", lambda: s.messages(rbac_key, model=SONNET))] * 3)
    jobs = [jobs[i] for i in sorted(range(len(jobs)), key=lambda i: (i * 7) % len(jobs))]
    got = send_all(jobs)
    assert [st for st, _ in got["401"]] == [401] * 7, got["401"]
    assert sorted(st for st, _ in got["quota"]) == [200] * 2 + [429] * 5, got["quota"]
    assert [st for st, _ in got["403"]] == [403] * 3, got["403"]
    assert error_body(got["403"][0][1])[0] == "permission_error"

    nobody_401 = ("", "rejected", 401)
    want = {nobody_401: base.get(nobody_401, 0) + 7,
            (quota_group, "quota_exceeded", 429): 5,
            (rbac_group, "rejected", 403): 3}
    final = wait_counts(s, want)
    # nothing else from these groups: the two admitted requests wrote usage rows instead
    assert {k: n for k, n in final.items() if k[0] in (quota_group, rbac_group)} == \
        {k: n for k, n in want.items() if k[0]}, final
    assert s.usage_count(quota_key) == 2
    who = s.psql("select user_id, api_key_id, day = (now() at time zone 'UTC')::date "
                 "from tollgate.denials where group_id in ('%s', '%s') order by group_id"
                 % (quota_group, rbac_group))
    assert sorted(map(tuple, who)) == sorted([(quota_user, key_id(s, quota_key), "t"),
                                              (rbac_user, key_id(s, rbac_key), "t")]), who

    # the ready-made report, through psql, says the same
    month = s.psql("select to_char(now() at time zone 'UTC', 'YYYY-MM-DD')")[0][0]
    report = blocked_report(s, month)
    assert report[(quota_group, "quota_exceeded", 429)] == (5, 1), report
    assert report[(rbac_group, "rejected", 403)] == (3, 1), report
    assert report[nobody_401][0] == final[nobody_401], (report, final)

    # PostgreSQL stops: refusals go on being counted and are kept
    base_503 = final.get(("", "database_unavailable", 503), 0)
    marker = len(s.logs())
    s.stop_db()
    try:
        down = send_all([("401", lambda: s.messages(None))] * 4 +
                        [("503", lambda: s.messages(rbac_key, model=HAIKU))] * 3)
        assert [st for st, _ in down["401"]] == [401] * 4, down["401"]
        assert [st for st, _ in down["503"]] == [503] * 3, down["503"]
        wait_for(lambda: "denial counts kept for the next flush" in s.logs()[marker:], 15,
                 "a flush to fail while the database is down")
        time.sleep(3 * SWEEP_MS / 1000)   # a few more failed flushes
    finally:
        s.start_db()
    # back: added once, exactly
    wait_counts(s, {nobody_401: want[nobody_401] + 4,
                    ("", "database_unavailable", 503): base_503 + 3,
                    (quota_group, "quota_exceeded", 429): 5,
                    (rbac_group, "rejected", 403): 3})


def test_denials_sent_at_a_graceful_stop():
    """With a sweep interval of an hour, only the stop sends the counts."""
    s = stack(tag="denials-stop", processes=2, threads=2,
              extra_config={"quotas": {"sweep_interval_ms": 3600000}})
    group = uniq("dn-stop")
    key = s.key(group=group, user=uniq("dn-s"))
    s.ctl("group", "set", group, "--models", "claude-haiku-*")
    got = send_all([("403", lambda: s.messages(key, model=SONNET))] * 6 +
                   [("401", lambda: s.messages(unknown_key()))] * 4, threads=4)
    assert [st for st, _ in got["403"]] == [403] * 6 and [st for st, _ in got["401"]] == [401] * 4
    time.sleep(1)
    assert counts(s) == {}, "counts were sent before the stop: %s" % counts(s)
    s.restart_workers()   # SIGTERM: the graceful stop
    assert counts(s) == {(group, "rejected", 403): 6, ("", "rejected", 401): 4}, counts(s)
