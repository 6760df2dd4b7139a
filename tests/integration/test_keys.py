"""Key lifecycle on the real stack: a revoked key fails on the very next request,
whichever worker process takes it (keys are looked up in the reserve round trip,
never cached on the request path)."""

from harness import error_body, stack


def test_revoke_takes_effect_on_the_next_request_on_every_worker():
    s = stack(tag="keys", processes=3, threads=2)
    assert len(s.worker_pids) == 3, s.worker_pids
    key = s.key(group="lifecycle", user="revokee")
    # warm every worker's pool with this key, so a cache would have it
    for _ in range(12):
        assert s.messages(key)[0] == 200
    listed = s.ctl("key", "list")
    assert key[:11] in listed and key[11:] not in listed, "key list must show the prefix only"
    s.revoke(key)
    replies = [s.messages(key) for _ in range(12)]
    assert [status for status, _, _ in replies] == [401] * 12, [r[0] for r in replies]
    for _, _, body in replies:
        etype, message = error_body(body)
        assert etype == "authentication_error" and "revoked" in message, (etype, message)
