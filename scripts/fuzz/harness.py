"""One schemathesis run against one backend: a fresh database with a small demo city, a
server on a free port, users of two districts, then `schemathesis run` with their logins.

Driven by scripts/fuzz_api.sh (which installs schemathesis and builds the binary); run it by
hand with `python3 scripts/fuzz/harness.py --help`. Exits with schemathesis's status (0: no
failure), or 2 when the harness itself could not set up.
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import free_port  # noqa: E402  (scripts/benchlib.py)

ADMIN_PASSWORD = "fuzz-admin-password"
PASSWORD = "fuzz-password-123"

# The demo city's first two districts.
DISTRICT_A = "330101"
DISTRICT_B = "330102"

# The identities schemathesis logs in as, in the order it tries them (it moves to the next
# when an operation answers 401/403). Names are the WFC entries' names; usernames are ours.
IDENTITIES = [
    # name, username, role, region
    ("manager-a", "fz-manager-a", "manager", DISTRICT_A),
    ("inspector-a", "fz-inspector-a", "inspector", DISTRICT_A),
    ("manager-b", "fz-manager-b", "manager", DISTRICT_B),
    ("inspector-b", "fz-inspector-b", "inspector", DISTRICT_B),
]
# The checks run on every response. Left out: `positive_data_acceptance` (it wants a 2xx for
# every schema-valid request, but most requests a schema admits are refused by rules no
# schema states: opaque cursors, ids that must exist, a unit of the caller's region, dates
# inside a campaign, ...).
CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance", "response_headers_conformance", "ignored_auth",
    "object_level_authorization", "use_after_free", "ensure_resource_availability",
    "negative_data_rejection", "missing_required_header", "unsupported_method",
    "allow_header_conformance",
])
# Users of different districts: none may see what another created or listed.
PEERS = ["manager-a", "manager-b"]


def log(msg):
    print("fuzz: " + msg, flush=True)


def call(method, url, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def psql(pg, sql):
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    subprocess.run(["psql", "-X", "-q", "-d", pg + "/postgres", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL, env=env)


class Server:
    def __init__(self, args, out_dir):
        self.args = args
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="xuncha-fuzz-")
        self.pgname = None
        db = ""
        if args.backend == "postgres":
            self.pgname = "xuncha_fuzz_%d" % os.getpid()
            psql(args.pg_url, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pgname)
            psql(args.pg_url, "CREATE DATABASE %s" % self.pgname)
            db = args.pg_url + "/" + self.pgname
        self.env = dict(
            os.environ,
            XUNCHA_ADMIN_PASSWORD=ADMIN_PASSWORD,
            XUNCHA_DATA_DIR=self.dir,
            DATABASE_URL=db,
            XUNCHA_LOG="warn",
            # The fuzzer sends thousands of wrong logins from 127.0.0.1; the harness's own
            # logins (and schemathesis's re-logins after a fuzzed logout) must still pass.
            XUNCHA_LOGIN_MAX_FAILURES_PER_ADDRESS="100000",
            XUNCHA_LOGIN_MAX_FAILURES_PER_ACCOUNT="1000",
            XUNCHA_MAX_OPEN_UPLOADS_PER_USER="10000",
            # Let the background jobs run while the fuzzer works.
            XUNCHA_RISK_REFRESH_INTERVAL_SECS="60",
            XUNCHA_OVERDUE_CHECK_INTERVAL_SECS="20",
            XUNCHA_SURPRISE_REVEAL_INTERVAL_SECS="5",
        )
        self.env.pop("XUNCHA_CONFIG", None)
        self.log_path = os.path.join(out_dir, "server.log")

    def demo(self):
        t0 = time.time()
        r = subprocess.run(
            [self.args.bin, "demo", "--units", "60", "--equipment", "240", "--districts", "2",
             "--inspectors", "8", "--managers", "4", "--hazards", "60"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("xuncha demo failed: " + r.stderr.strip()[-2000:])
        log("demo city made in %.1f s" % (time.time() - t0))

    def start(self):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.args.bin, "serve", "--bind", "127.0.0.1:%d" % self.port],
                                     env=self.env, stdout=self.logf, stderr=subprocess.STDOUT)
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited with %s; see %s" % (self.proc.returncode, self.log_path))
            try:
                if call("GET", self.base + "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not answer /readyz within 60 s")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.pgname:
            psql(self.args.pg_url, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pgname)


def login(base, username, password, device):
    st, b = call("POST", base + "/api/v1/auth/login",
                 body={"username": username, "password": password, "device_id": device})
    if st != 200:
        raise RuntimeError("login of %s answered %s: %s" % (username, st, b))
    return b["access_token"]


def seed(base):
    """Users of two districts (and a twin of each, which hooks.py aims at instead when a
    fuzzed request would lock one of them out)."""
    admin = login(base, "admin", ADMIN_PASSWORD, "fuzz-harness")
    ids = {}
    for name, username, role, region in IDENTITIES:
        for suffix in ("", "-twin"):
            body = {"username": username + suffix, "password": PASSWORD, "role": role,
                    "region_code": region, "display_name": "fuzz " + name + suffix}
            if role == "inspector":
                body["credential_no"] = "TZ-FUZZ-" + name + suffix
            st, b = call("POST", base + "/api/v1/users", admin, body)
            if st != 201:
                raise RuntimeError("creating %s answered %s: %s" % (username + suffix, st, b))
            ids[username + suffix] = b["id"]
    return ids


def seed_work(base):
    """In each district, as its manager and inspector: a campaign, an assignment (team:
    the inspector and its twin) with an inspection under way, a hazard, a directive and a
    surprise plan, so that the lists the fuzzer reads from hold ids its links can follow
    (the demo city has units, equipment and hazards, but none of these)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    today = now.date()

    def iso(t):
        return t.isoformat().replace("+00:00", "Z")

    def ok(st, b, what):
        if st not in (200, 201):
            raise RuntimeError("seeding %s answered %s: %s" % (what, st, b))
        return b

    users = {}
    for name, username, _, _ in IDENTITIES:
        users[name] = login(base, username, PASSWORD, "fuzz-harness")
    for district, suffix in ((DISTRICT_A, "a"), (DISTRICT_B, "b")):
        mgr, insp = users["manager-" + suffix], users["inspector-" + suffix]
        _, me = call("GET", base + "/api/v1/me", insp)
        _, twin = call("GET", base + "/api/v1/users?role=inspector&limit=500", mgr)
        team = [me["id"]] + [u["id"] for u in twin["items"] if u["username"] == "fz-inspector-%s-twin" % suffix]
        _, units = call("GET", base + "/api/v1/units?region=%s&limit=3" % district, mgr)
        unit = units["items"][0]["id"]
        _, eq = call("GET", base + "/api/v1/equipment?unit_id=%s&limit=1" % unit, mgr)
        equipment = [e["id"] for e in eq["items"]]
        camp = ok(*call("POST", base + "/api/v1/campaigns", mgr, {
            "title": "fuzz campaign " + suffix, "region_code": district,
            "starts_on": str(today - datetime.timedelta(days=1)),
            "ends_on": str(today + datetime.timedelta(days=60))}), "campaign")
        asg = ok(*call("POST", base + "/api/v1/assignments", mgr, {
            "kind": "routine", "unit_id": unit, "team": team, "equipment_ids": equipment,
            "window_start": iso(now - datetime.timedelta(hours=1)),
            "window_end": iso(now + datetime.timedelta(days=7)), "campaign_id": camp["id"]}),
            "assignment")
        ok(*call("POST", base + "/api/v1/inspections", insp, {
            "assignment_id": asg["id"], "started_at": iso(now), "lat": 30.25, "lng": 120.16}),
            "inspection")
        ok(*call("POST", base + "/api/v1/hazards", insp, {
            "unit_id": unit, "description": "fuzz hazard " + suffix, "level": "general",
            "equipment_id": equipment[0] if equipment else None}), "hazard")
        ok(*call("POST", base + "/api/v1/directives", mgr, {
            "kind": "directive", "doc_no": "FUZZ-%s-1" % suffix, "unit_id": unit,
            "content": "fuzz directive", "deadline": iso(now + datetime.timedelta(days=10))}),
            "directive")
        ok(*call("POST", base + "/api/v1/surprise-plans", mgr, {
            "title": "fuzz plan " + suffix, "region_code": district, "target_count": 2,
            "team_size": 2, "window_start": iso(now + datetime.timedelta(days=1)),
            "window_end": iso(now + datetime.timedelta(days=8))}), "surprise plan")


def write_auth(out_dir):
    """The WFC auth document (schemathesis logs in itself, and again after a 401, e.g. when
    it fuzzed a logout) and the schemathesis.toml naming it and the peers."""
    entries = []
    for name, username, _, _ in IDENTITIES:
        entries.append({
            "name": name,
            "loginEndpointAuth": {
                "endpoint": "/api/v1/auth/login",
                "verb": "POST",
                "contentType": "application/json",
                "payloadRaw": json.dumps({"username": username, "password": PASSWORD,
                                          "device_id": "fuzz-device"}),
                "token": {"extractFrom": "body", "extractSelector": "/access_token",
                          "sendIn": "header", "sendName": "Authorization",
                          "sendTemplate": "Bearer {token}"},
            },
        })
    auth_path = os.path.join(out_dir, "auth.json")
    with open(auth_path, "w") as f:
        json.dump({"schemaVersion": "0.2.0", "auth": entries}, f, indent=1)
    config_path = os.path.join(out_dir, "schemathesis.toml")
    with open(os.path.join(HERE, "schemathesis.toml")) as f:
        shared = f.read()
    with open(config_path, "w") as f:
        f.write("# Written by scripts/fuzz/harness.py from scripts/fuzz/schemathesis.toml\n")
        f.write(shared)
        f.write("\n[auth.wfc]\npath = %s\npeers = %s\n" % (json.dumps(auth_path), json.dumps(PEERS)))
    return config_path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the xuncha binary")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    ap.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--spec", default="api-spec/openapi.yaml")
    ap.add_argument("--out", required=True, help="results directory of this backend")
    ap.add_argument("--max-time", type=int, default=120)
    ap.add_argument("--max-examples", type=int, default=50)
    ap.add_argument("--seed", type=int, default=20251126)
    ap.add_argument("--workers", default="1")
    ap.add_argument("st_args", nargs="*", help="more arguments for `schemathesis run`")
    args = ap.parse_args()
    args.out = os.path.abspath(args.out)

    os.makedirs(args.out, exist_ok=True)
    try:
        server = Server(args, args.out)
    except (OSError, subprocess.CalledProcessError) as e:
        log("setup failed on %s: %s" % (args.backend, e))
        return 2
    try:
        try:
            server.demo()
            server.start()
            ids = seed(server.base)
            seed_work(server.base)
            config = write_auth(args.out)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            log("setup failed on %s: %s" % (args.backend, e))
            return 2
        with open(os.path.join(args.out, "protected.json"), "w") as f:
            json.dump(ids, f, indent=1)
        env = dict(os.environ, SCHEMATHESIS_HOOKS="hooks",
                   PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   XUNCHA_FUZZ_PROTECTED=os.path.join(args.out, "protected.json"))
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", config, "run",
               os.path.abspath(args.spec),
               "--url", server.base,
               "--phases", "examples,coverage,fuzzing,stateful", "--checks", CHECKS,
               "--seed", str(args.seed), "--max-time", str(args.max_time),
               "--max-examples", str(args.max_examples), "--workers", str(args.workers),
               "--report", "junit,json,ndjson", "--report-dir", args.out,
               "--no-color"] + args.st_args
        log("on %s at %s: schemathesis for %d s (seed %d)" % (args.backend, server.base, args.max_time, args.seed))
        # In the results directory, so that nothing schemathesis writes lands in the repo.
        rc = subprocess.call(cmd, env=env, cwd=args.out)
        if server.proc.poll() is not None:
            log("the server DIED during the run (exit %s); see %s" % (server.proc.returncode, server.log_path))
            rc = rc or 1
        # Internal errors the answers did not show (a background job's, say) fail the run too.
        with open(server.log_path, errors="replace") as f:
            errors = [line.rstrip() for line in f if " ERROR xuncha" in line]
        if errors:
            log("the server logged %d error(s), in %s:" % (len(errors), server.log_path))
            for line in errors[:20]:
                print("    " + line[:500])
            rc = rc or 1
        return rc
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
