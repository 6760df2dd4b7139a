"""A whole Tollgate stack on loopback, in a temp dir, for integration tests.

    with Stack(processes=2, threads=4) as s:
        key = s.key()
        status, headers, body = s.messages(key, prompt="hello")

Stack = a throwaway PostgreSQL cluster (unix socket only) + migrations, the
mock provider (tests/mock), a generated config, the tollgate-fcgi master
(started by spawn-fcgi -F 1; it forks server.processes workers) from the
build under test ($TOLLGATE_BUILD, default build/debug) and lighttpd from
conf/lighttpd.conf (or Apache from conf/*apache*.conf) on a free port.
Every wait has a deadline; close() stops everything it started, and is safe
to call twice.  stack(**opts) hands out one shared started Stack per set of
options; close_all() ends them.  TOLLGATE_KEEP_TMP=1 keeps the temp dirs;
TOLLGATE_SQL_DIR migrates from another directory than the tree's sql/.

Standard library only; runs under Debian's /usr/bin/python3.
"""

import atexit
import ctypes
import hashlib
import http.client
import json
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PGBIN = Path("/usr/lib/postgresql/15/bin")
SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:")
MODELS = {
    "claude-haiku-4-5-20251001": {"provider": "anthropic", "aliases": ["claude-haiku-4-5"]},
    "claude-sonnet-4-5": {"provider": "anthropic"},
}
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def _become_subreaper():
    # spawn-fcgi forks the workers and exits; as a subreaper we inherit and
    # reap them, instead of leaving zombies to an init that may not reap.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


_become_subreaper()


def sql_dir():
    return Path(os.environ.get("TOLLGATE_SQL_DIR", REPO / "sql")).resolve()


def build_dir():
    return Path(os.environ.get("TOLLGATE_BUILD", REPO / "build" / "debug")).resolve()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


def base_env(**extra):
    """The environment for child processes: never a real provider key."""
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    for k, v in SANITIZER_ENV.items():
        env.setdefault(k, v)
    env["PATH"] = "%s:%s" % (PGBIN, env.get("PATH", "/usr/bin:/bin"))
    env.update(extra)
    return env


def run(cmd, timeout=60, env=None):
    """Runs cmd, returns its stdout; raises with its stderr if it fails."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                       timeout=timeout, env=env or base_env(), stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (Path(str(cmd[0])).name, p.returncode,
                                                 (p.stderr or p.stdout).strip()[-2000:]))
    return p.stdout


def tail(path, n=4000):
    """The last n characters of a file ("" if there is none); n=None: all."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return text if n is None else text[-n:]


def pid_gone(pid):
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def children(pid):
    """The live child processes of pid, oldest first."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path("/proc/%s/stat" % entry).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append((int(fields[19]), int(entry)))   # starttime, pid
    return [p for _, p in sorted(found)]


def stop_pids(pids, sig=signal.SIGTERM, timeout=10):
    """Signals pids, waits for them, SIGKILLs the stragglers."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    try:
        wait_for(lambda: all(pid_gone(p) for p in pids), timeout, "pids %s to exit" % pids)
    except TimeoutError:
        for pid in pids:
            if not pid_gone(pid):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: all(pid_gone(p) for p in pids), 5, "pids %s to die" % pids)


def stop_proc(proc, sig=signal.SIGTERM, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def error_body(body):
    """The (type, message) of an Anthropic-shaped error body, or raises."""
    doc = json.loads(body)
    assert isinstance(doc, dict) and set(doc) == {"type", "error"} and doc["type"] == "error", \
        "not an Anthropic error body: %r" % body[:300]
    err = doc["error"]
    assert isinstance(err, dict) and isinstance(err.get("type"), str) and \
        isinstance(err.get("message"), str) and err["message"], \
        "error object lacks type/message: %r" % body[:300]
    return err["type"], err["message"]


def frontend_body_caps(max_body_bytes):
    """The web server's request body caps for a Tollgate max_body_bytes, as
    conf/lighttpd.conf (KiB) and conf/apache-tollgate.conf (bytes) want them:
    64 KiB above Tollgate's own, which answers anything close to its cap."""
    return {"MAX_BODY_KIB": max_body_bytes // 1024 + 64,
            "MAX_BODY_BYTES": max_body_bytes + 65536}


class JsonBackend:
    """An http backend on 127.0.0.1 for the tests of http routes: it records
    every POST it receives (path, lower-case headers, body text) in `received`
    and answers respond(record) -> (status, JSON-able reply)."""

    def __init__(self, respond):
        self.received = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                record = {"path": self.path, "body": body.decode(),
                          "headers": {k.lower(): v for k, v in self.headers.items()}}
                backend.received.append(record)
                status, reply = respond(record)
                payload = json.dumps(reply, separators=(",", ":")).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Postgres:
    """A throwaway cluster in DIR/pg, listening only on a socket in DIR."""

    def __init__(self, tmpdir):
        self.dir = Path(tmpdir)
        self.data = self.dir / "pg"
        self.port = free_port()
        self.log = self.dir / "postgres.log"
        self.proc = None

    def url(self, db="tollgate"):
        return "postgresql:///%s?host=%s&port=%d&user=tollgate" % (db, self.dir, self.port)

    def init(self):
        run([PGBIN / "initdb", "-D", self.data, "-U", "tollgate", "-A", "trust", "--no-sync",
             "-E", "UTF8", "--locale=C.UTF-8"], timeout=120)
        self.start()
        self.psql("create database tollgate", db="postgres")

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PGBIN / "postgres", "-D", self.data, "-k", self.dir, "-p", str(self.port),
                 "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited %d: %s" % (self.proc.returncode, tail(self.log)))
            return subprocess.run([PGBIN / "pg_isready", "-q", "-h", self.dir, "-p", str(self.port)],
                                  stdin=subprocess.DEVNULL).returncode == 0
        wait_for(ready, 30, "postgres to accept connections")

    def stop(self):
        stop_proc(self.proc, signal.SIGINT, timeout=15)  # SIGINT = fast shutdown

    def psql(self, sql, db="tollgate"):
        """Rows of the result, each a list of column strings."""
        out = run([PGBIN / "psql", "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1",
                   "-d", self.url(db), "-c", sql])
        return [line.split("|") for line in out.splitlines() if line]

    def __enter__(self):
        self.init()
        return self

    def __exit__(self, *exc):
        self.stop()


def merge_config(base, extra):
    """base with extra merged in: objects recursively, anything else replaced."""
    out = dict(base)
    for k, v in (extra or {}).items():
        out[k] = merge_config(out[k], v) if isinstance(v, dict) and isinstance(
            out.get(k), dict) else v
    return out


def write_config(path, db_url, provider_url, log_file, threads=4, max_body_bytes=1 << 20,
                 timeout_ms=10000, connect_timeout_ms=2000, extra_config=None, processes=2):
    config = {
        # beyond capacity, a request waits for a thread as it did before workers were
        # supervised (test_capacity sets 0: the shipped default, a 503 at once)
        "server": {"processes": processes, "threads": threads, "queue_timeout_ms": 60000,
                   "max_body_bytes": max_body_bytes,
                   "max_response_bytes": 16 << 20},
        "database": {"url": db_url, "pool_size": 4, "connect_timeout_ms": 2000,
                     "statement_timeout_ms": 5000},
        "providers": {"anthropic": {"type": "anthropic", "base_url": provider_url,
                                    "api_key": "$ANTHROPIC_API_KEY",
                                    "connect_timeout_ms": connect_timeout_ms,
                                    "timeout_ms": timeout_ms}},
        "models": MODELS,
        "log": {"file": str(log_file)},
        "spool": {"dir": str(Path(log_file).parent / "spool")},
        # every test client is 127.0.0.1: the per-address failure limit would
        # let one test's bad keys refuse the next test's; test_preauth turns it on
        "auth": {"failure_limit": False},
    }
    config = merge_config(config, extra_config)
    (Path(log_file).parent / "spool").mkdir(exist_ok=True)
    Path(path).write_text(json.dumps(config, indent=2) + "\n")


def ctl(config, *args, timeout=60, env=None):
    """Runs tollgatectl -c CONFIG ARGS..., returns its stdout.  env: extra
    environment variables (e.g. TOLLGATE_NOW)."""
    return run([build_dir() / "fcgi" / "tollgatectl", "-c", config, *args], timeout=timeout,
               env=base_env(**(env or {})))


class Stream:
    """A streamed response: status, headers, and iteration over SSE events
    as (event, data, t_received) tuples, t_received being time.time()."""

    def __init__(self, conn, resp):
        self.conn, self.resp = conn, resp
        self.status = resp.status
        self.headers = _headers(resp)

    def __iter__(self):
        event, data = None, []
        try:
            for raw in self.resp:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if event is not None or data:
                        yield event or "message", "\n".join(data), time.time()
                    event, data = None, []
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event = value
                    elif field == "data":
                        data.append(value)
        finally:
            self.conn.close()

    def read(self):
        try:
            return self.resp.read()
        finally:
            self.conn.close()


def _headers(resp):
    out = {}
    for name, value in resp.getheaders():
        name = name.lower()
        out[name] = out[name] + ", " + value if name in out else value
    return out


class Stack:
    """The whole gateway.  Options: processes, threads, timeout_ms,
    connect_timeout_ms, max_body_bytes, provider_url (default: the mock;
    anything else means no mock), frontend ("lighttpd" or "apache"), tag
    (only to tell shared stacks apart), extra_config (a dict merged into the
    generated config, e.g. {"quotas": {...}, "rate_limits": [...]})."""

    def __init__(self, processes=2, threads=4, timeout_ms=10000, connect_timeout_ms=2000,
                 max_body_bytes=1 << 20, provider_url=None, frontend="lighttpd", tag=None,
                 extra_config=None):
        assert frontend in ("lighttpd", "apache"), frontend
        self.frontend = frontend
        self.processes, self.threads = processes, threads
        self.timeout_ms, self.connect_timeout_ms = timeout_ms, connect_timeout_ms
        self.max_body_bytes = max_body_bytes
        self.provider_url = provider_url
        self.tag = tag
        self.extra_config = extra_config
        self.provider_key = "sk-ant-test-PROVIDERKEY-" + secrets.token_hex(12)
        self.dir = self.db = self.mock = self.frontend_proc = None
        self.worker_pids = []   # the workers as started (a replaced one is not added)
        self.master_pid = None
        self.sanitizer_findings = []
        self._key = None

    # ---- lifecycle ---------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self):
        self.dir = Path(tempfile.mkdtemp(prefix="tollgate-it-"))
        self.config = self.dir / "tollgate.json"
        self.log_file = self.dir / "tollgate.log"
        self.stderr_file = self.dir / "worker.stderr"
        self.frontend_log = self.dir / ("%s.log" % self.frontend)
        self.socket = self.dir / "tollgate.sock"
        self.db = Postgres(self.dir)
        self.db.init()
        if self.provider_url is None:
            self._start_mock()
            self.provider_url = "http://127.0.0.1:%d" % self.mock_port
        write_config(self.config, self.db.url(), self.provider_url, self.log_file,
                     threads=self.threads, max_body_bytes=self.max_body_bytes,
                     processes=self.processes, timeout_ms=self.timeout_ms,
                     connect_timeout_ms=self.connect_timeout_ms,
                     extra_config=self.extra_config)
        ctl(self.config, "migrate", "--sql-dir", sql_dir())
        self._start_workers()
        self._start_frontend()
        try:
            wait_for(lambda: self._health_status() == 200, 30, "GET /health = 200")
        except TimeoutError as e:
            raise RuntimeError("%s\nworker stderr:\n%s\nworker log:\n%s\n%s log:\n%s" % (
                e, tail(self.stderr_file), tail(self.log_file), self.frontend,
                tail(self.frontend_log)))

    def _start_mock(self):
        out = self.dir / "mock.out"
        with open(out, "wb") as f:
            self.mock = subprocess.Popen(
                [sys.executable, REPO / "tests" / "mock" / "mock_provider.py", "--port", "0"],
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=base_env(),
                start_new_session=True)

        def ready():
            if self.mock.poll() is not None:
                raise RuntimeError("mock provider exited: %s" % tail(out))
            return re.search(r"READY port=(\d+)", tail(out))
        self.mock_port = int(wait_for(ready, 15, "mock provider READY").group(1))

    def _start_workers(self):
        pidfile = self.dir / "tollgate-fcgi.pid"
        worker = [build_dir() / "fcgi" / "tollgate-fcgi", "-c", self.config]
        # spawn-fcgi points the workers' stderr at /dev/null; keep it (ASan
        # and UBSan report there) by redirecting in a shell that execs them.
        wrapper = ["/bin/sh", "-c", 'exec "$0" "$@" 2>>%s' % shlex.quote(str(self.stderr_file))]
        env = base_env(ANTHROPIC_API_KEY=self.provider_key)
        with open(self.dir / "spawn-fcgi.out", "wb") as f:
            p = subprocess.run([str(c) for c in ["spawn-fcgi", "-s", self.socket,
                                                 "-F", "1", "-P", pidfile,
                                                 "--", *wrapper, *worker]],
                               stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env, timeout=30)
        if pidfile.exists():
            self.master_pid = int(pidfile.read_text().split()[0])
        if p.returncode != 0 or self.master_pid is None:
            raise RuntimeError("spawn-fcgi failed: %s" % tail(self.dir / "spawn-fcgi.out"))

        def forked():
            if pid_gone(self.master_pid):
                raise RuntimeError("the master exited: %s %s" % (tail(self.stderr_file),
                                                                  tail(self.log_file)))
            pids = children(self.master_pid)
            return len(pids) == self.processes and pids
        self.worker_pids = wait_for(forked, 15, "%d workers" % self.processes)

    def workers(self):
        """The master's workers now, oldest first (replacements included)."""
        return children(self.master_pid) if self.master_pid else []

    def _start_frontend(self):
        """lighttpd from conf/lighttpd.conf, or Apache from conf/*apache*.conf
        (a site file: no Listen, no LoadModule) inside a minimal server config."""
        for sub in ("docroot", "upload", "apache-run"):
            (self.dir / sub).mkdir(exist_ok=True)
        if self.frontend == "lighttpd":
            template = REPO / "conf" / "lighttpd.conf"
        else:
            found = sorted((REPO / "conf").glob("*apache*.conf"))
            assert len(found) == 1, "want one conf/*apache*.conf site file, found %s" % found
            template = found[0]
        for attempt in range(3):
            self.port = free_port()
            conf = template.read_text()
            for name, value in {"BIND": "127.0.0.1", "PORT": self.port, "SOCKET": self.socket,
                                "DOCROOT": self.dir / "docroot",
                                "ERRORLOG": self.frontend_log,
                                "PIDFILE": self.dir / "frontend.pid",
                                "TMPDIR": self.dir / "upload", "CONFDIR": REPO / "conf",
                                **frontend_body_caps(self.max_body_bytes)}.items():
                conf = conf.replace("@%s@" % name, str(value))
            assert str(self.socket) in conf, "%s does not use @SOCKET@" % template
            path = self.dir / template.name
            path.write_text(conf)
            if self.frontend == "lighttpd":
                cmd = ["lighttpd", "-D", "-f", path]
            else:
                cmd = ["apache2", "-DFOREGROUND", "-f", self._apache_server_conf(path)]
            with open(self.dir / "frontend.out", "ab") as f:
                self.frontend_proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                                      stderr=f, start_new_session=True)

            def listening():
                if self.frontend_proc.poll() is not None:
                    return "exited"
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", self.port)) == 0 and "up"
            if wait_for(listening, 15, "%s to listen" % self.frontend) == "up":
                return
        raise RuntimeError("%s did not start: %s %s" % (
            self.frontend, tail(self.dir / "frontend.out"), tail(self.frontend_log)))

    def _apache_server_conf(self, site):
        mods = "/usr/lib/apache2/modules"
        # mod_qos (per-address connections) needs PCRE 1's symbols, which
        # Debian's apache2 binary no longer brings
        lines = ["LoadFile /usr/lib/x86_64-linux-gnu/libpcre.so.3"]
        lines += ["LoadModule %s_module %s/mod_%s.so" % (m, mods, m)
                  for m in ("mpm_event", "authz_core", "proxy", "proxy_fcgi", "headers",
                            "setenvif", "reqtimeout", "env", "rewrite", "qos")]
        lines += ["ServerName localhost", "Listen 127.0.0.1:%d" % self.port,
                  "PidFile %s" % (self.dir / "frontend.pid"),
                  "DefaultRuntimeDir %s" % (self.dir / "apache-run"),
                  "ErrorLog %s" % self.frontend_log,
                  # the server-wide limits conf/apache-tollgate.conf asks for
                  "MaxRequestWorkers 400", "Timeout 60", "Include %s" % site]
        path = self.dir / "apache-server.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def dead_workers(self):
        return [p for p in self.worker_pids if pid_gone(p)]

    def stop_workers(self):
        """SIGTERM to the master, which stops its workers (they finish their requests);
        workers started without a master (the bench's fcgi-fixed) are stopped themselves."""
        if self.master_pid:
            workers = self.workers()
            stop_pids([self.master_pid], timeout=15)
            stop_pids(workers, timeout=5)   # gone with the master (or by its death signal)
            self.master_pid = None
        else:
            stop_pids(self.worker_pids, timeout=15)
        self.worker_pids = []

    def restart_workers(self):
        """Stops the master and its workers and starts new ones on the same socket."""
        self.stop_workers()
        self._start_workers()
        wait_for(lambda: self._health_status() == 200, 30, "GET /health = 200 after a restart")

    @property
    def shm_segment(self):
        """The workers' shared memory segment (named after the FastCGI socket)."""
        digest = hashlib.sha256(("unix:%s" % self.socket).encode()).hexdigest()
        return Path("/dev/shm/tollgate-%s" % digest[:16])

    def close(self):
        if self.dir is None:
            return
        stop_proc(self.frontend_proc)
        self.stop_workers()
        stop_proc(self.mock)
        if self.db:
            self.db.stop()
        try:   # the workers leave it behind; each stack has its own
            self.shm_segment.unlink()
        except OSError:
            pass
        self.sanitizer_findings = [line for text in (self.worker_stderr(), self.logs())
                                   for line in text.splitlines() if SANITIZER_RE.search(line)]
        if self.sanitizer_findings or os.environ.get("TOLLGATE_KEEP_TMP"):
            print("# kept %s" % self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # ---- the database --------------------------------------------------------

    def psql(self, sql):
        return self.db.psql(sql)

    def stop_db(self):
        self.db.stop()

    def start_db(self):
        self.db.start()

    def usage(self, request_id, timeout=10):
        """The usage row of request_id as a dict of strings; waits for it."""
        cols = ("request_id api_key_id user_id group_id provider model input_tokens "
                "output_tokens cache_read_tokens cache_write_tokens cost_micros http_status "
                "latency_ms upstream_ms stream outcome").split()
        sql = "select %s from tollgate.usage where request_id = '%s'" % (
            ", ".join(cols), request_id.replace("'", ""))
        rows = wait_for(lambda: self.psql(sql), timeout, "usage row %s" % request_id)
        return dict(zip(cols, rows[0]))

    def usage_count(self, key):
        return int(self.psql(
            "select count(*) from tollgate.usage u join tollgate.api_keys k "
            "on k.id = u.api_key_id where k.prefix = '%s'" % key[:11])[0][0])

    # ---- keys ---------------------------------------------------------------

    def key(self, group="qa", user="tester", name=None, role=None):
        args = ["key", "create", "--group", group, "--user", user,
                "--name", name or "it-" + secrets.token_hex(4), "--quiet"]
        if role:
            args += ["--role", role]
        key = ctl(self.config, *args).strip()
        assert re.fullmatch(r"tg-[A-Za-z0-9_-]{43}", key), "key create printed %r" % key
        return key

    def default_key(self):
        if self._key is None:
            self._key = self.key(name="default")
        return self._key

    def revoke(self, key):
        ctl(self.config, "key", "revoke", key[:11])

    @staticmethod
    def key_hash(key):
        """The bytea literal of a key's hash, as api_keys.key_hash holds it."""
        return "\\x" + hashlib.sha256(key.encode()).hexdigest()

    # ---- tollgatectl ----------------------------------------------------------

    def ctl(self, *args, env=None, timeout=60):
        """tollgatectl -c <this stack's config> ARGS...; its stdout.  env: extra
        environment, e.g. {"TOLLGATE_NOW": "2026-12-01 00:00:05+00"}."""
        return ctl(self.config, *args, env=env, timeout=timeout)

    # ---- HTTP ---------------------------------------------------------------

    def _send(self, method, path, body, headers, timeout):
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None:
            headers.setdefault("content-type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers with lower-case names, body bytes)."""
        conn, resp = self._send(method, path, body, headers, timeout)
        try:
            return resp.status, _headers(resp), resp.read()
        finally:
            conn.close()

    def stream(self, body, headers=None, path="/v1/messages", timeout=30):
        """A Stream of the response; iterate it for the events as they come."""
        return Stream(*self._send("POST", path, body, headers, timeout))

    def _health_status(self):
        try:
            return self.request("GET", "/health", timeout=5)[0]
        except OSError:
            return None

    # ---- /v1/messages helpers ---------------------------------------------

    @staticmethod
    def body(model="claude-haiku-4-5", prompt="Say hello.", directive=None, stream=False,
             max_tokens=64, **extra):
        text = prompt + (" MOCK" + json.dumps(directive) if directive else "")
        body = {"model": model, "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream"] = True
        body.update(extra)
        return body

    @staticmethod
    def auth(key, bearer=False):
        h = {"anthropic-version": "2023-06-01"}
        if key is not None:
            h["authorization" if bearer else "x-api-key"] = ("Bearer " + key) if bearer else key
        return h

    def messages(self, key, bearer=False, timeout=30, **body_args):
        return self.request("POST", "/v1/messages", self.body(**body_args),
                            self.auth(key, bearer), timeout=timeout)

    def burst(self, key, bodies, processes=5, threads=40, timeout=120, duration=None,
              pause_ms=0):
        """Many concurrent POST /v1/messages from `processes` client processes
        of `threads` threads each, all starting at one wall-clock time.
        bodies: str, bytes or dicts.  Without duration: one request per body,
        the threads taking them in turn; results in the order of bodies.
        With duration (seconds): every thread sends bodies round-robin until
        that much time has passed, pausing pause_ms after a non-200 answer;
        results in the order they finished.  A result is a dict: status (int,
        or the exception's repr), headers (lower-case names), body (str),
        t_sent and t_done (time.time()).  Every connection has `timeout`."""
        encoded = [b if isinstance(b, str) else b.decode() if isinstance(b, bytes)
                   else json.dumps(b) for b in bodies]
        n_procs = processes if duration else max(1, min(processes, len(encoded)))
        shares = [[[j, encoded[j]] for j in range(i, len(encoded), n_procs)]
                  for i in range(n_procs)]
        start_at = time.time() + 1.0 + 0.1 * n_procs
        if duration:
            shares = [[[j, b] for j, b in enumerate(encoded)]] * n_procs
            deadline = start_at + duration + 2 * timeout + 30
        else:
            deadline = start_at + timeout * (1 + len(encoded) // (n_procs * threads)) + 30
        job_dir = Path(tempfile.mkdtemp(prefix="tollgate-burst-"))
        procs = []
        try:
            for i, share in enumerate(shares):
                spec = {"port": self.port, "key": key, "threads": threads, "timeout": timeout,
                        "start_at": start_at, "jobs": share,
                        "until": start_at + duration if duration else None,
                        "pause_ms": pause_ms}
                (job_dir / ("in%d.json" % i)).write_text(json.dumps(spec))
                with open(job_dir / ("err%d" % i), "wb") as err:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-c", _BURST_CLIENT, job_dir / ("in%d.json" % i),
                         job_dir / ("out%d.json" % i)], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=err))
            for p in procs:
                p.wait(max(1, deadline - time.time()))
            results = []
            for i, p in enumerate(procs):
                out = job_dir / ("out%d.json" % i)
                if p.returncode != 0 or not out.exists():
                    raise RuntimeError("burst client %d exited %s: %s" % (
                        i, p.returncode, tail(job_dir / ("err%d" % i))))
                results += json.loads(out.read_text())
            if duration:
                return [res for _, res in sorted(results, key=lambda jr: jr[1]["t_done"])]
            ordered = [None] * len(encoded)
            for j, res in results:
                ordered[j] = res
            return ordered
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
            shutil.rmtree(job_dir, ignore_errors=True)

    # ---- the mock and the logs ------------------------------------------------

    def _mock_call(self, method):
        conn = http.client.HTTPConnection("127.0.0.1", self.mock_port, timeout=10)
        try:
            conn.request(method, "/_mock/requests")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def mock_requests(self, marker=None):
        """The mock's records, only those whose body contains marker if given."""
        recs = self._mock_call("GET")
        return [r for r in recs if marker is None or marker in r["body"]]

    def clear_mock(self):
        self._mock_call("DELETE")

    def logs(self):
        return tail(self.log_file, None)

    def worker_stderr(self):
        return tail(self.stderr_file, None)

    def frontend_errors(self):
        """lighttpd's (or Apache's) error log."""
        return tail(self.frontend_log, None)


# One burst client process: its jobs, `threads` threads taking them in turn,
# all starting at start_at (a wall-clock time shared with the other processes).
_BURST_CLIENT = r"""
import http.client, json, sys, threading, time
spec = json.load(open(sys.argv[1]))
jobs, lock, out = list(spec["jobs"]), threading.Lock(), []
until, pause = spec["until"], spec["pause_ms"] / 1000.0
def send(body):
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=spec["timeout"])
        try:
            c.request("POST", "/v1/messages", body.encode(), {"x-api-key": spec["key"],
                      "content-type": "application/json", "anthropic-version": "2023-06-01"})
            r = c.getresponse()
            data = r.read().decode("utf-8", "replace")
            headers = {}
            for k, v in r.getheaders():
                k = k.lower()
                headers[k] = headers[k] + ", " + v if k in headers else v
            res = {"status": r.status, "headers": headers, "body": data}
        finally:
            c.close()
    except Exception as e:
        res = {"status": repr(e), "headers": {}, "body": ""}
    res["t_sent"], res["t_done"] = t0, time.time()
    return res
def one(i):
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    n = i
    while True:
        if until is not None:
            if time.time() >= until:
                return
            j, body = jobs[n % len(jobs)]
            n += 1
        else:
            with lock:
                if not jobs:
                    return
                j, body = jobs.pop(0)
        res = send(body)
        with lock:
            out.append([j, res])
        if until is not None and res["status"] != 200 and pause > 0:
            time.sleep(pause)
threads = [threading.Thread(target=one, args=(i,)) for i in range(spec["threads"])]
[t.start() for t in threads]
[t.join() for t in threads]
json.dump(out, open(sys.argv[2], "w"))
"""

_stacks = {}
# The stack most tests share: 5 s provider timeout (a 5-chunk stream with
# 300 ms between events fits; the slow-provider test waits it out), 64 KiB bodies.
MAIN = dict(timeout_ms=5000, max_body_bytes=65536)


def stack(**opts):
    """A started Stack shared by every test asking for the same options."""
    key = tuple(sorted((k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                       for k, v in opts.items()))
    if key not in _stacks:
        try:
            _stacks[key] = Stack(**opts).start()
        except Exception as e:  # do not retry a slow failing start in every test
            _stacks[key] = e
    if isinstance(_stacks[key], Exception):
        raise RuntimeError("stack failed to start: %s" % _stacks[key])
    return _stacks[key]


def live_stacks():
    return [s for s in _stacks.values() if isinstance(s, Stack)]


def main_stack():
    return stack(**MAIN)


def close_all():
    """Closes the shared stacks; returns {description: sanitizer findings}."""
    findings = {}
    while _stacks:
        key, s = _stacks.popitem()
        if isinstance(s, Exception):
            continue
        s.close()
        findings["stack(%s)" % ", ".join("%s=%r" % kv for kv in key)] = s.sanitizer_findings
    return findings


atexit.register(close_all)


class Mock:
    """One mock process on a free port; a context manager that stops it."""

    def __init__(self, script, *args, quiet=True):
        cmd = [sys.executable, str(REPO / "tests" / "mock" / script), "--port", "0"] + list(args)
        if quiet:
            cmd.append("--quiet")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("READY port="):
            self.proc.kill()
            raise AssertionError("%s did not print READY: %r %r" % (
                script, line, self.proc.stderr.read(2000)))
        self.ready_line = line
        self.port = int(line.split("=", 1)[1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """(status, headers with lower-case names, body bytes); a body that ends
        early comes back as far as it got."""
        c = self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            try:
                data = r.read()
            except http.client.IncompleteRead as e:
                data = e.partial
                hdrs["x-test-incomplete"] = "1"
            return r.status, hdrs, data
        finally:
            c.close()

    def post(self, path, body, headers=None, **kw):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, body, h, **kw)

    def records(self):
        status, _, body = self.request("GET", "/_mock/requests")
        assert status == 200, status
        return json.loads(body)

    def clear(self):
        return json.loads(self.request("DELETE", "/_mock/requests")[2])

    def health(self):
        return json.loads(self.request("GET", "/_mock/health")[2])

    def last_record(self, timeout=5):
        """The newest record, once it is done."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records()
            if recs and recs[-1]["t_done"] is not None:
                return recs[-1]
            assert time.monotonic() < deadline, "no finished record: %s" % recs[-1:]
            time.sleep(0.05)
