"""The same smoke test behind each front end: lighttpd (mod_fastcgi) and
Apache (mod_proxy_fcgi), both talking to spawn-fcgi workers."""

import secrets

from harness import MAIN, error_body, stack
from test_messages import cost_usd, parse_sse

FRONTENDS = {"lighttpd": MAIN, "apache": dict(MAIN, frontend="apache")}


def make_smoke_test(opts):
    def test():
        s = stack(**opts)
        key = s.default_key()
        assert s.request("GET", "/health")[0] == 200

        marker = secrets.token_hex(6)
        status, headers, body = s.messages(key, prompt="smoke " + marker)
        assert status == 200, (status, body[:300])
        rec = s.mock_requests(marker)[0]
        assert body == rec["response_body"].encode(), "body changed on the way"
        row = s.usage(headers["x-request-id"])
        assert headers.get("x-tollgate-cost-usd") == cost_usd(row["cost_micros"]), headers

        marker = secrets.token_hex(6)
        resp = s.stream(s.body(prompt="smoke " + marker, stream=True,
                               directive={"event_delay_ms": 200, "chunks": 3}), s.auth(key))
        assert resp.status == 200, resp.status
        got = list(resp)
        rec = s.mock_requests(marker)[0]
        want = [(e["event"], e["data"]) for e in parse_sse(rec["response_body"])]
        assert [(e, d) for e, d, _ in got] == want, "stream events differ"
        assert got[0][2] < rec["t_last_event"], "the stream was buffered"
        assert s.usage(resp.headers["x-request-id"])["stream"] == "t"

        status, _, body = s.messages(None)
        assert status == 401 and error_body(body)[0] == "authentication_error", (status, body)
        status, _, body = s.request("GET", "/no/such/path", headers=s.auth(key))
        assert status == 404 and error_body(body)[0] == "not_found_error", (status, body)
    return test


for _name, _opts in FRONTENDS.items():
    globals()["test_smoke_behind_" + _name] = make_smoke_test(_opts)
