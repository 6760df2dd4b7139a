"""Prices without holes (issue 9, item 3; sql/009_prices.sql): a model the
config serves must have a price.  tollgatectl price check names the config's
models without a price in force and exits 1, migrate warns about each (and
exits 0), the worker logs each at start; price set and PUT /admin/prices take
the new components (1-hour cache writes, the long-context premium, the web
search fee), price list and GET /admin/prices show them."""

import json
import re
import secrets
import subprocess
import time

from harness import SANITIZER_RE, base_env, build_dir, sql_dir, stack, wait_for
from test_admin import admin_stack, call, changed, expect_error

UNPRICED = "tollgate-test-unpriced"      # served by prices_stack; no test prices it
LATE = "tollgate-test-priced-later"     # served too; priced by a test, from a later date


def prices_stack():
    return stack(tag="prices", processes=1, extra_config={
        "models": {UNPRICED: {"provider": "anthropic"}, LATE: {"provider": "anthropic"}}})


def uniq(name):
    return "%s-%s" % (name, secrets.token_hex(3))


def tollgatectl(s, *args, env=None):
    """(exit status, stdout, stderr) of tollgatectl -c CONFIG ARGS."""
    p = subprocess.run([str(build_dir() / "fcgi" / "tollgatectl"), "-c", str(s.config), *args],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                       env=base_env(**(env or {})))
    assert not SANITIZER_RE.search(p.stderr), p.stderr
    return p.returncode, p.stdout, p.stderr


def log_errors(s, since=0):
    """(level, msg) of the warnings and errors in the worker log, from line since on."""
    out = []
    for line in s.logs().splitlines()[since:]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("level") in ("error", "warn"):
            out.append((rec["level"], rec.get("msg", "")))
    return out


def unpriced_line(model):
    return ('model "%s" has no price in force: its requests are refused until one is set '
            '(tollgatectl price set)' % model)


# ---- price check and migrate --------------------------------------------------------


def test_price_check_names_the_unpriced_models_and_exits_1():
    s = prices_stack()
    status, out, err = tollgatectl(s, "price", "check")
    assert status == 1, (status, out, err)
    # canonical names, in the config's order; the priced ones (Haiku, Sonnet) are not named
    assert out.splitlines() == [UNPRICED, LATE], out
    assert err == ("tollgatectl: error: 2 of the config's models have no price in force:"
                   " their requests are refused\n"), err

    # a price from a later date does not count yet; with TOLLGATE_NOW after it, it does
    s.ctl("price", "set", LATE, "--input", "1000000", "--output", "2000000", "--from",
          "2099-01-01T00:00:00Z")
    assert tollgatectl(s, "price", "check")[:2] == (1, UNPRICED + "\n" + LATE + "\n")
    status, out, _ = tollgatectl(s, "price", "check",
                                 env={"TOLLGATE_NOW": "2099-06-01 00:00:00+00"})
    assert (status, out) == (1, UNPRICED + "\n"), (status, out)


def test_price_check_passes_when_every_model_is_priced():
    s = prices_stack()
    # a config with only the stack's priced models, on the same database
    doc = json.loads(s.config.read_text())
    doc["models"] = {m: v for m, v in doc["models"].items() if m not in (UNPRICED, LATE)}
    priced = s.config.parent / "tollgate-priced.json"
    priced.write_text(json.dumps(doc))
    p = subprocess.run([str(build_dir() / "fcgi" / "tollgatectl"), "-c", str(priced), "price",
                        "check"], capture_output=True, text=True, timeout=60,
                       env=base_env(), stdin=subprocess.DEVNULL)
    assert (p.returncode, p.stdout, p.stderr) == (
        0, "every model of the config has a price in force\n", ""), p
    p = subprocess.run([str(build_dir() / "fcgi" / "tollgatectl"), "-c", str(priced), "migrate",
                        "--sql-dir", str(sql_dir())],
                       capture_output=True, text=True, timeout=60, env=base_env(),
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0 and "database is up to date" in p.stdout and p.stderr == "", p


def test_migrate_warns_about_each_unpriced_model_and_exits_0():
    s = prices_stack()
    status, out, err = tollgatectl(s, "migrate", "--sql-dir", str(sql_dir()))
    assert status == 0, (status, out, err)
    assert re.search(r"^database is up to date \(\d+ migrations\)$", out, re.M), out
    assert err.splitlines() == ["tollgatectl: warning: " + unpriced_line(UNPRICED),
                                "tollgatectl: warning: " + unpriced_line(LATE)], err


def test_price_check_refuses_a_config_without_models():
    s = prices_stack()
    doc = json.loads(s.config.read_text())
    del doc["models"]
    bare = s.config.parent / "tollgate-no-models.json"
    bare.write_text(json.dumps(doc))
    p = subprocess.run([str(build_dir() / "fcgi" / "tollgatectl"), "-c", str(bare), "price",
                        "check"], capture_output=True, text=True, timeout=60, env=base_env(),
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1 and p.stdout == "", p
    assert p.stderr == ('tollgatectl: error: config "%s": models: must name at least one model\n'
                        % bare), p.stderr


# ---- the worker at start -----------------------------------------------------------------


def test_worker_logs_each_unpriced_model_at_start():
    s = prices_stack()
    wait_for(lambda: ("error", unpriced_line(UNPRICED)) in log_errors(s), 10,
             "the start check's log line")
    errors = log_errors(s)
    assert ("error", unpriced_line(LATE)) in errors, errors
    # the priced models are not named
    assert not [m for _, m in errors if "has no price" in m and "claude-" in m], errors

    # priced now, the next start names only the one still unpriced
    s.ctl("price", "set", UNPRICED, "--input", "1000000", "--output", "2000000", "--from",
          "2020-01-01T00:00:00Z")
    try:
        mark = len(s.logs().splitlines())
        s.restart_workers()

        wait_for(lambda: ("error", unpriced_line(LATE)) in log_errors(s, mark), 10,
                 "the check after a restart")
        assert [m for _, m in log_errors(s, mark) if "has no price" in m] == [
            unpriced_line(LATE)], log_errors(s, mark)
    finally:
        # the stack's other tests want UNPRICED unpriced: take the price back out
        s.psql("delete from tollgate.prices where model = '%s'" % UNPRICED)


def test_worker_starts_without_the_check_when_the_database_is_down():
    s = prices_stack()
    mark = len(s.logs().splitlines())
    s.stop_workers()
    s.stop_db()
    try:
        s._start_workers()

        skipped = ("warn", "could not check that every model has a price: database unavailable")
        wait_for(lambda: skipped in log_errors(s, mark), 15, "the skipped check's warning")
        assert "worker started" in "\n".join(s.logs().splitlines()[mark:])
        assert not [m for _, m in log_errors(s, mark) if "has no price" in m], log_errors(s, mark)
    finally:
        s.start_db()
    wait_for(lambda: s._health_status() == 200, 30, "GET /health = 200 with the database back")


# ---- price set and price list with the new components ----------------------------------------


def test_price_set_takes_every_component_and_price_list_shows_them():
    s = prices_stack()
    model = uniq("it-price")
    out = s.ctl("price", "set", model, "--input", "3000000", "--output", "15000000",
                "--cache-read", "300000", "--cache-write", "3750000", "--cache-write-1h",
                "6000000", "--web-search", "10000", "--long-context-threshold", "200000",
                "--long-input", "6000000", "--long-output", "22500000", "--long-cache-read",
                "600000", "--long-cache-write", "7500000", "--long-cache-write-1h", "12000000",
                "--from", "2026-01-01T00:00:00Z")
    assert out == ('price of "%s" from 2026-01-01T00:00:00Z, in micro-dollars per million '
                   "tokens: input 3000000, output 15000000, cache read 300000, cache write "
                   "3750000, cache write 1h 6000000; web search 10000 micro-dollars per search; "
                   "above 200000 prompt tokens: input 6000000, output 22500000, cache read "
                   "600000, cache write 7500000, cache write 1h 12000000\n" % model), out
    row = s.psql("select tollgate.price_micros('%s', now(), 150001, 1000, 30000, 20000, 5000, 2)"
                 % model)
    assert row == [["1133006"]], row   # the long-context rates, and 2 searches

    # without the optional components: 1-hour writes at the cache-write rate, no
    # search fee, no premium
    later = s.ctl("price", "set", model, "--input", "1000000", "--output", "2000000",
                  "--cache-write", "1250000", "--from", "2026-02-01T00:00:00Z")
    assert later.endswith("cache write 1250000, cache write 1h 1250000; web search 0 "
                          "micro-dollars per search\n"), later

    header, *rows = [l.split() for l in s.ctl("price", "list").splitlines()
                     if l.startswith("MODEL ") or l.startswith(model + " ")]
    assert header == ["MODEL", "FROM", "INPUT", "OUTPUT", "CACHE_READ", "CACHE_WRITE",
                      "CACHE_WRITE_1H", "WEB_SEARCH", "LONG_CONTEXT", "IN_FORCE"], header
    assert rows == [
        [model, "2026-01-01T00:00:00Z", "3000000", "15000000", "300000", "3750000", "6000000",
         "10000", "200000:6000000/22500000/600000/7500000/12000000", "no"],
        [model, "2026-02-01T00:00:00Z", "1000000", "2000000", "0", "1250000", "1250000", "0",
         "-", "yes"]], rows
    # the seeded Anthropic versions show every component too
    sonnet = [l.split() for l in s.ctl("price", "list").splitlines()
              if l.startswith("claude-sonnet-4-5 ") and " yes" in l]
    assert sonnet == [["claude-sonnet-4-5", "2026-11-01T00:00:00Z", "3000000", "15000000",
                       "300000", "3750000", "6000000", "10000",
                       "200000:6000000/22500000/600000/7500000/12000000", "yes"]], sonnet


def test_price_set_refuses_bad_components():
    s = prices_stack()
    model = uniq("it-price-bad")

    def refused(*args):
        status, out, err = tollgatectl(s, "price", "set", model, "--input", "1", "--output", "1",
                                       *args)
        assert status in (1, 2) and out == "" and "tollgatectl: error: " in err, (status, out,
                                                                                  err)
        return err
    assert "a long-context price needs the threshold and all five long-context rates" in \
        refused("--long-context-threshold", "1000", "--long-input", "2")
    assert "a long-context price needs the threshold" in refused(
        "--long-input", "1", "--long-output", "1", "--long-cache-read", "1",
        "--long-cache-write", "1", "--long-cache-write-1h", "1")
    assert 'invalid --long-context-threshold "0" (prompt tokens, at least 1' in refused(
        "--long-context-threshold", "0")
    assert 'invalid --web-search "0.01" (micro-dollars per search' in refused(
        "--web-search", "0.01")
    assert 'invalid --cache-write-1h "-1" (micro-dollars per million tokens' in refused(
        "--cache-write-1h", "-1")
    assert 'unexpected argument "--long-context"' in refused("--long-context", "5")
    assert s.psql("select count(*) from tollgate.prices where model = '%s'" % model) == [["0"]]


# ---- the admin API ------------------------------------------------------------------------


def test_admin_prices_take_and_show_the_new_components():
    s = admin_stack()
    model = uniq("it-admin-price")
    price = {"model": model, "effective_from": "2026-01-01T00:00:00Z", "input": 3000000,
             "output": 15000000, "cache_read": 300000, "cache_write": 3750000,
             "cache_write_1h": 6000000, "web_search": 10000, "long_context_threshold": 200000,
             "long_input": 6000000, "long_output": 22500000, "long_cache_read": 600000,
             "long_cache_write": 7500000, "long_cache_write_1h": 12000000}
    status, _, doc = changed(s, [("price.set", "price:" + model)],
                             lambda: call(s, "PUT", "/admin/prices", price))
    assert status == 200, (status, doc)
    assert {k: doc[k] for k in ("cache_write_1h_micros_per_mtok", "web_search_micros_per_use",
                                "long_context_threshold_tokens", "long_input_micros_per_mtok",
                                "long_output_micros_per_mtok", "long_cache_read_micros_per_mtok",
                                "long_cache_write_micros_per_mtok",
                                "long_cache_write_1h_micros_per_mtok")} == {
        "cache_write_1h_micros_per_mtok": 6000000, "web_search_micros_per_use": 10000,
        "long_context_threshold_tokens": 200000, "long_input_micros_per_mtok": 6000000,
        "long_output_micros_per_mtok": 22500000, "long_cache_read_micros_per_mtok": 600000,
        "long_cache_write_micros_per_mtok": 7500000,
        "long_cache_write_1h_micros_per_mtok": 12000000}, doc
    listed = [p for p in call(s, "GET", "/admin/prices")[2]["prices"] if p["model"] == model]
    assert len(listed) == 1 and listed[0]["in_force"] is True, listed
    assert listed[0]["long_cache_write_1h_micros_per_mtok"] == 12000000, listed

    # the base four alone still do (optional components null / 0)
    base = {"model": model, "effective_from": "2026-02-01T00:00:00Z", "input": 1, "output": 2,
            "cache_read": 0, "cache_write": 3}
    status, _, doc = call(s, "PUT", "/admin/prices", base)
    assert status == 200 and doc["cache_write_1h_micros_per_mtok"] is None \
        and doc["long_context_threshold_tokens"] is None \
        and doc["web_search_micros_per_use"] == 0, doc

    bad = dict(base, effective_from="2026-03-01T00:00:00Z")
    expect_error(call(s, "PUT", "/admin/prices", dict(bad, long_context_threshold=1000)), 400,
                 "invalid_request_error", "needs the threshold and all five long-context rates")
    expect_error(call(s, "PUT", "/admin/prices", dict(bad, long_context_threshold=0)), 400,
                 "invalid_request_error", '"long_context_threshold"')
    expect_error(call(s, "PUT", "/admin/prices", dict(bad, web_search=-1)), 400,
                 "invalid_request_error", '"web_search"')
    expect_error(call(s, "PUT", "/admin/prices", dict(bad, cache_write_1h="2")), 400,
                 "invalid_request_error", '"cache_write_1h"')
    expect_error(call(s, "PUT", "/admin/prices", dict(bad, long_context=1)), 400,
                 "invalid_request_error", '"long_context": unknown field')
    assert [p["effective_from"][:10] for p in call(s, "GET", "/admin/prices")[2]["prices"]
            if p["model"] == model] == ["2026-01-01", "2026-02-01"]


def test_price_check_of_a_large_config_keeps_its_order():
    """One statement for the whole list, in the config's order, however long."""
    s = prices_stack()
    doc = json.loads(s.config.read_text())
    doc["models"] = {"tollgate-test-m%03d" % i: {"provider": "anthropic"} for i in range(300)}
    big = s.config.parent / "tollgate-300-models.json"
    big.write_text(json.dumps(doc))
    t0 = time.monotonic()
    p = subprocess.run([str(build_dir() / "fcgi" / "tollgatectl"), "-c", str(big), "price",
                        "check"], capture_output=True, text=True, timeout=60, env=base_env(),
                       stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    assert p.returncode == 1 and len(p.stdout.splitlines()) == 300, p
    assert p.stdout.splitlines()[:2] == ["tollgate-test-m000", "tollgate-test-m001"], p.stdout
    assert elapsed < 5, elapsed
