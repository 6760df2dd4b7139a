"""Slow clients must not starve well-behaved ones (issue 12).

Connections that send their request headers a line every few seconds
(slowhttptest's Slowloris mode, from Debian; bounded: 1,500 connections behind
lighttpd, as many as starved the old config, and 300 behind Apache; 20 s,
loopback only) used to be able to fill lighttpd's connection table.  The shipped configs bound them (conf/lighttpd.conf:
server.max-connections, max-read-idle, max-keep-alive-idle and a per-address
cap in conf/lighttpd-peraddr.lua; conf/apache-tollgate.conf: mod_reqtimeout's
RequestReadTimeout and the MaxRequestWorkers it documents), so a
well-behaved client's p99 under the attack stays within 2x its unloaded p99
(+ 50 ms, so that a few milliseconds of scheduling noise on tiny figures on a
shared 2-core machine do not fail it), measured in the same test.

The attack comes from 127.0.0.1, the well-behaved client from 127.0.0.2 (its
own address, as it would be in life; loopback too on Linux)."""

import http.client
import json
import re
import shutil
import socket
import subprocess
import time

from harness import MAIN, REPO, error_body, stack, wait_for

FRONTENDS = {"lighttpd": MAIN, "apache": dict(MAIN, frontend="apache")}
# lighttpd: as many slow connections as starved the old config (1,400-1,500);
# Apache reads request headers on its worker threads (MaxRequestWorkers 400),
# so more slow connections than workers hold it until RequestReadTimeout: 300.
ATTACK = {"lighttpd": 1500, "apache": 300}
ATTACK_SECONDS, ATTACK_INTERVAL = 20, 5
SAMPLES = 150
FLOOR_S = 0.050


def good_latencies(s, key, n, src="127.0.0.2"):
    """n sequential POST /v1/messages, each on a new connection from src;
    their latencies in seconds (every one must be a 200)."""
    data = json.dumps(s.body(prompt="well-behaved")).encode()
    headers = dict(s.auth(key), **{"content-type": "application/json"})
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30,
                                          source_address=(src, 0))
        try:
            conn.request("POST", "/v1/messages", data, headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
        finally:
            conn.close()
        out.append(time.monotonic() - t0)
    return out


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def slowloris(port, log, connections):
    """slowhttptest in Slowloris mode against the stack; returns the Popen."""
    assert shutil.which("slowhttptest"), "slowhttptest missing (scripts/lib/deps.sh installs it)"
    return subprocess.Popen(
        ["slowhttptest", "-H", "-c", str(connections), "-r", "500",
         "-i", str(ATTACK_INTERVAL), "-l", str(ATTACK_SECONDS), "-p", "5",
         "-u", "http://127.0.0.1:%d/v1/messages" % port],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def connections_held(port, peer="0100007F"):
    """Established connections to 127.0.0.1:port from 127.0.0.1, counted on
    the server's side (/proc/net/tcp; slowhttptest's own report is buffered)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            local, remote, state = line.split()[1:4]
            if state == "01" and int(local.split(":")[1], 16) == port and \
                    remote.split(":")[0] == peer:
                n += 1
    return n


def make_slow_client_test(name, opts):
    def test():
        connections = ATTACK[name]
        s = stack(**opts)
        key = s.default_key()
        good_latencies(s, key, 10)  # warm up
        unloaded = p99(good_latencies(s, key, SAMPLES))
        log_path = s.dir / "slowhttptest.out"
        with open(log_path, "wb") as log:
            attack = slowloris(s.port, log, connections)
            try:
                # let it open its connections before measuring
                wait_for(lambda: connections_held(s.port) >= connections * 0.8
                         or attack.poll() is not None, 10, "slowhttptest to hold its connections")
                held = connections_held(s.port)
                t0 = time.monotonic()
                loaded = p99(good_latencies(s, key, SAMPLES))
                held_after = connections_held(s.port)
                measured_under_attack = attack.poll() is None
                took = time.monotonic() - t0
            finally:
                if attack.poll() is None:
                    attack.wait(ATTACK_SECONDS + 15)
        print("%s: p99 unloaded %.1f ms, under %d slow connections %.1f ms (%.1f s)" % (
            s.frontend, unloaded * 1000, held, loaded * 1000, took))
        assert measured_under_attack, "the attack ended before the measurement did"
        # held when the measurement began; some may have been cut by its end
        assert held >= connections * 0.8, "the attack held only %d connections" % held
        assert held_after >= connections * 0.5, "only %d connections at the end" % held_after
        assert loaded <= 2 * unloaded + FLOOR_S, \
            "p99 %.1f ms under attack, %.1f ms unloaded" % (loaded * 1000, unloaded * 1000)
        # and nothing is left starving afterwards (once the attack's connections
        # are gone: from its own address, over the per-address cap, they are 429s)
        wait_for(lambda: s.request("GET", "/health")[0] == 200, 20,
                 "the attacking address to be served again")
    return test


for _name, _opts in FRONTENDS.items():
    globals()["test_slow_clients_do_not_starve_behind_" + _name] = make_slow_client_test(_name, _opts)


def make_per_address_test(name, opts):
    """conf/lighttpd-peraddr.lua (lighttpd), mod_qos's QS_SrvMaxConnPerIP
    (Apache): an address holding more than 256 connections has its next
    request refused with a JSON 429; other addresses are not."""
    def test():
        per_address_cap(stack(**opts), name)
    return test


def per_address_cap(s, name):
    if name == "lighttpd":
        cap = int(re.search(r"MAX_CONNS_PER_ADDR = (\d+)",
                            (REPO / "conf" / "lighttpd-peraddr.lua").read_text()).group(1))
    else:
        cap = int(re.search(r"QS_SrvMaxConnPerIP (\d+)",
                            (REPO / "conf" / "apache-tollgate.conf").read_text()).group(1))
    hog, other = "127.0.0.3", "127.0.0.4"

    def get(src):
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10,
                                          source_address=(src, 0))
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            return resp.status, resp.getheader("content-type", ""), resp.read()
        finally:
            conn.close()

    assert get(hog)[0] == 200
    held = []
    try:
        for _ in range(cap + 10):
            sock = socket.socket()
            sock.bind((hog, 0))
            sock.connect(("127.0.0.1", s.port))
            sock.sendall(b"GET /health HTTP/1.1\r\n")  # and nothing more
            held.append(sock)
        time.sleep(0.5)
        if name == "apache":
            # mod_qos refuses at the connection: closed (often reset) before a request
            try:
                refused = get(hog)
            except (ConnectionError, http.client.HTTPException) as e:
                refused = (None, "", repr(e).encode())
            assert refused[0] in (None, 429), refused
        else:
            status, ctype, body = get(hog)
            assert status == 429 and ctype.startswith("application/json"), (status, ctype, body)
            assert error_body(body)[0] == "rate_limit_error", body
        assert get(other)[0] == 200, "another address was refused too"
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: get(hog)[0] == 200, 10, "the address to be served again")


for _name, _opts in FRONTENDS.items():
    globals()["test_per_address_connection_cap_" + _name] = make_per_address_test(_name, _opts)
