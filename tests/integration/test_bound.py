"""A true bound (issue 9 item 2): what a request reserves covers everything the
provider can bill for it, also what its body's bytes do not hold — images and
documents by URL or file id, base64 images, server tools — so a tight USD
budget is never overspent under 200 concurrent requests; an anthropic-beta
value the config does not list, or a max_tokens above the model's maximum, is
refused before anything is reserved or sent.

Each race sends 200 copies of one body of exactly L bytes whose mock directive
makes the provider report the largest usage the gateway's bound allows for
that kind of content (bound.h's rule, with this stack's config), all as cache
writes (priced at the highest input-side rate, as the reservation is), so a
request then costs what it reserved. The budget is N such requests. With the
old bound (the body's bytes) each request would reserve far less than it
costs, and the budget would be passed.
"""

import http.client
import json
import secrets
import threading
import time
from collections import Counter

from harness import error_body, stack
from test_quotas import (dollars, group_usage, mock_overlap, quota_row, reservations, statuses,
                         uniq)

HAIKU = "claude-haiku-4-5-20251001"
N = 20                      # requests a budget pays for
REQUESTS = 200              # concurrent requests in a race
PROCESSES, THREADS = 5, 40
L = 2400                    # bytes of every race body (a multiple of 4)
MAX_TOKENS = 64
MODEL_MAX_OUTPUT = 4096
IMAGE_MAX, DOCUMENT_MAX = 1600, 4000
TOOL_SYSTEM, BUILTIN_TOOL, USE_MAX = 500, 700, 1000
ALLOWED = ["prompt-caching-2024-07-31", "files-api-2025-04-14"]
PNG = "iVBORw0KGgo" + "A" * 1013     # a 1024-byte base64 payload

BOUNDS = {"allowed_betas": ALLOWED, "image_max_tokens": IMAGE_MAX,
          "document_max_tokens": DOCUMENT_MAX, "tool_system_tokens": TOOL_SYSTEM,
          "builtin_tool_tokens": BUILTIN_TOOL, "server_tool_default_uses": 10,
          "server_tool_use_max_tokens": USE_MAX}


def bound_stack():
    return stack(tag="bound", processes=2, threads=4, timeout_ms=10000,
                 extra_config={"bounds": BOUNDS,
                               "models": {HAIKU: {"max_output_tokens": MODEL_MAX_OUTPUT}}})


# ---- the kinds of content: (blocks before the text, extra body fields, bound) ----

def url_image():
    return ([{"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}],
            {}, L + IMAGE_MAX)


def file_id_document():
    return ([{"type": "document",
              "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}}],
            {}, L + DOCUMENT_MAX)


def base64_image():
    # its payload is billed as the image, so the bound takes it out of the bytes
    return ([{"type": "image",
              "source": {"type": "base64", "media_type": "image/png", "data": PNG}}],
            {}, L - len(PNG) + IMAGE_MAX)


def web_search():
    uses = 2
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": uses}]
    step = L + TOOL_SYSTEM + BUILTIN_TOOL + uses * USE_MAX + MAX_TOKENS
    return [], {"tools": tools}, (uses + 1) * step


def race_body(marker, kind):
    """(body text of exactly L bytes, the bound the gateway must compute for it);
    the mock reports that bound as the request's input (all cache writes)."""
    blocks, extra, bound = kind()
    assert bound % 4 == 0, bound
    directive = {"delay_ms": 50,
                 "usage": {"input_tokens": 0, "cache_read_input_tokens": 0,
                           "cache_creation_input_tokens": bound, "output_tokens": MAX_TOKENS}}

    def make(pad):
        text = "%s %s MOCK%s" % (marker, "x" * pad, json.dumps(directive))
        body = {"model": HAIKU, "max_tokens": MAX_TOKENS,
                "messages": [{"role": "user",
                              "content": blocks + [{"type": "text", "text": text}]}]}
        body.update(extra)
        return json.dumps(body)
    pad = L - len(make(0).encode())
    assert pad >= 0, "a %s body does not fit in %d bytes" % (kind.__name__, L)
    body = make(pad)
    assert len(body.encode()) == L
    return body, bound


def cost_of(s, body):
    """What one request of body costs, settled (a key without quotas)."""
    key = s.key(group=uniq("bound-calibrate"), user=uniq("bound-calibrate-user"))
    status, headers, resp = s.request("POST", "/v1/messages", body, s.auth(key))
    assert status == 200, (status, resp[:300])
    return int(s.usage(headers["x-request-id"])["cost_micros"])


def race(kind):
    s = bound_stack()
    group, marker = uniq("bound-" + kind.__name__), uniq("bound")
    body, bound = race_body(marker, kind)
    cost = cost_of(s, body)
    assert cost > 0, cost
    limit = N * cost
    key = s.key(group=group, user=uniq("bound-user"))
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "total",
          "--limit", dollars(limit))

    results = s.burst(key, [body] * REQUESTS, processes=PROCESSES, threads=THREADS)
    got = statuses(results)
    assert set(got) <= {200, 429}, "%s: statuses %s" % (kind.__name__, dict(got))
    admitted = got[200]
    assert 1 <= admitted <= N, "%s: %d admitted for a budget of %d requests (%s)" % (
        kind.__name__, admitted, N, dict(got))
    for r in results:
        if r["status"] == 429:
            etype, message = error_body(r["body"])
            assert etype == "rate_limit_error" and message.startswith(
                'quota exceeded: group "%s" usd' % group), (etype, message)

    # never overspent: not in the usage rows, not in the quota row
    rows, spent, _ = group_usage(s, group)
    assert rows == admitted, "%d usage rows for %d admitted requests" % (rows, admitted)
    assert spent <= limit, "%s: spent %s of a %s USD budget" % (
        kind.__name__, dollars(spent), dollars(limit))
    q = quota_row(s, "group", group, "usd", "total")
    assert q["used"] <= q["limit"], "%s: quota row %s" % (kind.__name__, q)
    assert (q["used"], q["reserved"]) == (spent, 0), q
    assert reservations(s, group) == 0, "reservations left behind"
    # the rows record what the provider reported, which was the whole bound
    writes = s.psql("select distinct cache_write_tokens from tollgate.usage "
                    "where group_id = '%s'" % group)
    assert writes == [[str(bound)]], "%s: cache writes %s, want %d" % (
        kind.__name__, writes, bound)
    assert len(s.mock_requests(marker)) == admitted + 1   # + the calibration
    assert mock_overlap(s, marker) >= 2, "admitted requests never overlapped at the provider"


def test_url_image_budget_never_overspent():
    race(url_image)


def test_file_id_document_budget_never_overspent():
    race(file_id_document)


def test_base64_image_budget_never_overspent():
    race(base64_image)


def test_server_tool_budget_never_overspent():
    race(web_search)


# ---- refusals before anything is reserved ---------------------------------------------

def concurrent_posts(s, key, body, headers, n):
    """n POST /v1/messages at once, each with headers added; [(status, body)]."""
    barrier, out = threading.Barrier(n), [None] * n

    def one(i):
        try:
            barrier.wait(30)
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            try:
                conn.request("POST", "/v1/messages", body,
                             dict(s.auth(key), **{"content-type": "application/json"},
                                  **headers))
                resp = conn.getresponse()
                out[i] = (resp.status, resp.read())
            finally:
                conn.close()
        except Exception as e:
            out[i] = (repr(e), b"")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def assert_nothing_reached(s, group, marker, what):
    assert s.mock_requests(marker) == [], "%s reached the provider" % what
    assert group_usage(s, group) == (0, 0, 0), "%s left usage rows" % what
    q = quota_row(s, "group", group, "usd", "total")
    assert (q["used"], q["reserved"]) == (0, 0), "%s: quota row %s" % (what, q)
    assert reservations(s, group) == 0, "%s left reservations" % what


def test_unlisted_beta_refused_under_200_concurrent_requests():
    s = bound_stack()
    group, marker = uniq("bound-beta"), uniq("bound-beta")
    key = s.key(group=group, user=uniq("bound-beta-user"))
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "total",
          "--limit", "0.010000")
    body = json.dumps(s.body(model=HAIKU, prompt=marker, max_tokens=MAX_TOKENS,
                             directive={"delay_ms": 50}))
    # a listed value first: the unlisted one still refuses the whole request
    results = concurrent_posts(s, key, body,
                               {"anthropic-beta": ALLOWED[0] + ", computer-use-2025-01-24"},
                               REQUESTS)
    assert Counter(r[0] for r in results) == Counter({400: REQUESTS}), \
        Counter(r[0] for r in results)
    for _, resp in results:
        assert error_body(resp) == (
            "invalid_request_error",
            'anthropic-beta: "computer-use-2025-01-24" is not allowed by this gateway'), resp
    assert_nothing_reached(s, group, marker, "an unlisted beta")
    assert marker not in s.logs(), "the prompt reached the log"


def test_listed_betas_forwarded_normalised_and_only_them():
    s = bound_stack()
    key = s.key(group=uniq("bound-beta-ok"), user=uniq("bound-beta-ok-user"))
    marker = uniq("bound-beta-ok")
    headers = dict(s.auth(key), **{"anthropic-beta": " %s ,%s\t" % tuple(ALLOWED)})
    status, _, resp = s.request("POST", "/v1/messages", s.body(prompt=marker), headers)
    assert status == 200, (status, resp[:300])
    recs = s.mock_requests(marker)
    assert len(recs) == 1 and recs[0]["headers"].get("anthropic-beta") == ",".join(ALLOWED), \
        [r["headers"] for r in recs]
    # no header: none is sent on
    marker = uniq("bound-beta-none")
    assert s.messages(key, prompt=marker)[0] == 200
    recs = s.mock_requests(marker)
    assert len(recs) == 1 and "anthropic-beta" not in recs[0]["headers"], recs[0]["headers"]


def test_max_tokens_over_the_model_maximum_refused():
    s = bound_stack()
    group, marker = uniq("bound-max"), uniq("bound-max")
    key = s.key(group=group, user=uniq("bound-max-user"))
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "total",
          "--limit", "1.000000")
    status, _, resp = s.messages(key, prompt=marker, max_tokens=MODEL_MAX_OUTPUT + 1)
    assert status == 400, (status, resp[:300])
    assert error_body(resp) == (
        "invalid_request_error",
        "max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s"
        % (MODEL_MAX_OUTPUT + 1, MODEL_MAX_OUTPUT, HAIKU)), resp
    assert_nothing_reached(s, group, marker, "max_tokens over the maximum")
    # the maximum itself is fine
    status, _, resp = s.messages(key, prompt=marker, max_tokens=MODEL_MAX_OUTPUT)
    assert status == 200, (status, resp[:300])
    deadline = time.monotonic() + 10
    while group_usage(s, group)[0] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_usage(s, group)[0] == 1


def exceeded_total(s):
    status, _, body = s.request("GET", "/metrics")
    assert status == 200, status
    lines = [l for l in body.decode().splitlines()
             if l.startswith("tollgate_reservation_exceeded_total ")]
    assert len(lines) == 1, lines
    return int(lines[0].split()[1])


def test_usage_over_the_bound_is_recorded_logged_and_counted():
    s = bound_stack()
    group, marker = uniq("bound-over"), uniq("bound-over")
    key = s.key(group=group, user=uniq("bound-over-user"))
    before = exceeded_total(s)
    status, _, resp = s.messages(key, prompt=marker, max_tokens=MAX_TOKENS,
                                 directive={"usage": {"input_tokens": 10,
                                                      "output_tokens": MAX_TOKENS}})
    assert status == 200, (status, resp[:300])
    assert exceeded_total(s) == before
    for stream in (False, True):
        body = s.body(model=HAIKU, prompt=marker, max_tokens=MAX_TOKENS, stream=stream,
                      directive={"usage": {"input_tokens": 1000000,
                                           "output_tokens": MAX_TOKENS + 1}})
        status, headers, resp = s.request("POST", "/v1/messages", body, s.auth(key))
        assert status == 200, (status, resp[:300])
        row = s.usage(headers["x-request-id"])
        assert (row["input_tokens"], row["output_tokens"]) == (
            "1000000", str(MAX_TOKENS + 1)), row
        warned = [l for l in s.logs().splitlines()
                  if "reservation exceeded" in l and headers["x-request-id"] in l]
        assert len(warned) == 1, "no warning for %s" % headers["x-request-id"]
        assert "reported 1000000 input tokens (bound %d)" % len(json.dumps(body)) in warned[0]
    assert exceeded_total(s) == before + 2
    assert marker not in s.logs(), "the prompt reached the log"


def test_huge_or_malformed_output_bounds_are_a_400_in_every_dialect():
    """max_tokens / max_completion_tokens of 2e18, 2^63-1, 1e30 (a real, as
    jansson parses it), 2^64, negative or zero, and n times a large per-choice
    bound: a 400 in the client's dialect, never a 500 (once `bigint out of
    range` inside reserve), and nothing reaches the provider or a quota."""
    s = bound_stack()
    group, marker = uniq("bound-huge"), uniq("bound-huge")
    key = s.key(group=group, user=uniq("bound-huge-user"))
    s.ctl("quota", "set", "--group", group, "--metric", "usd", "--window", "total",
          "--limit", "1000.000000")
    huge = ("2000000000000000000", "9223372036854775807", "1e30", "18446744073709551616",
            "-1", "0", "1.5", "\"100\"", "null")
    msgs = '[{"role": "user", "content": "%s"}]' % marker
    for value in huge:
        body = '{"model": "%s", "max_tokens": %s, "messages": %s}' % (HAIKU, value, msgs)
        status, _, resp = s.request("POST", "/v1/messages", body, s.auth(key))
        assert status == 400, (value, status, resp[:300])
        assert error_body(resp)[0] == "invalid_request_error", (value, resp[:300])
        for name in ("max_completion_tokens", "max_tokens"):
            if value == "null":
                continue  # null: the model's maximum applies (OpenAI's meaning)
            body = '{"model": "%s", "%s": %s, "messages": %s}' % (HAIKU, name, value, msgs)
            status, _, resp = s.request("POST", "/v1/chat/completions", body, s.auth(key))
            assert status == 400, (name, value, status, resp[:300])
            assert json.loads(resp)["error"]["type"] == "invalid_request_error", resp[:300]
    # n x the model's maximum: a true bound, still an integer the database holds
    for n in ("129", "1e3", "-1", "0", "9223372036854775807"):
        body = '{"model": "%s", "n": %s, "max_completion_tokens": %d, "messages": %s}' % (
            HAIKU, n, MODEL_MAX_OUTPUT, msgs)
        status, _, resp = s.request("POST", "/v1/chat/completions", body, s.auth(key))
        assert status == 400, (n, status, resp[:300])
    assert_nothing_reached(s, group, marker, "huge output bounds")
