"""Shared pieces of the benchmark scripts: a demo-city server on SQLite or PostgreSQL, and a
small HTTP client (urllib only)."""
import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

PG = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432")
PASSWORD = "demo-password-123"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def call(method, url, token=None, body=None, gz=False):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    if gz:
        req.add_header("accept-encoding", "gzip")
    with urllib.request.urlopen(req, timeout=120) as r:
        raw = r.read()
        wire = len(raw)
        if r.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw), wire


def psql(sql):
    subprocess.run(["psql", "-X", "-q", "-d", PG + "/postgres", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


class Server:
    """`xuncha demo` into a fresh database, then `xuncha serve` on a free port."""

    def __init__(self, bin_path, backend, units, equipment, extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="xuncha-sbench-")
        self.db = ""
        if backend == "postgres":
            name = "xuncha_sbench_%d_%d" % (os.getpid(), units)
            psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
            psql("CREATE DATABASE %s" % name)
            self.db = PG + "/" + name
            self.pgname = name
        env = dict(os.environ, XUNCHA_ADMIN_PASSWORD="admin-bench-pass", XUNCHA_LOG="warn",
                   XUNCHA_DATA_DIR=self.dir, DATABASE_URL=self.db,
                   # No background writes during a measurement: a commit moves the sync
                   # head, and a device's "caught up" cursor would then go to the database.
                   XUNCHA_RISK_REFRESH_INTERVAL_SECS="0", XUNCHA_OVERDUE_CHECK_INTERVAL_SECS="0")
        env.update(extra_env or {})
        t0 = time.time()
        subprocess.run([bin_path, "demo", "--units", str(units), "--equipment", str(equipment)],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.demo_s = time.time() - t0
        self.bin, self.env = bin_path, env
        self.backend = backend
        self._serve()

    def _serve(self):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen([self.bin, "serve", "--bind", "127.0.0.1:%d" % self.port],
                                     env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                call("GET", self.base + "/readyz")
                break
            except Exception:
                time.sleep(0.1)

    def restart(self, extra_env=None):
        """Stops the server and starts it again on the same database (new port), with
        `extra_env` added to its environment (a value of None removes the variable)."""
        self.proc.terminate()
        self.proc.wait()
        for k, v in (extra_env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = v
        self._serve()

    def login(self, user, device):
        b, _ = call("POST", self.base + "/api/v1/auth/login",
                    body={"username": user, "password": PASSWORD, "device_id": device})
        return b["access_token"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.backend == "postgres":
            psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pgname)
