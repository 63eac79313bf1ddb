#!/usr/bin/env python3
"""Unannounced-check draw benchmark (run through scripts/bench_surprise.sh, which builds).

For each backend, on a fresh database filled by `xuncha demo` (DEMO_UNITS units,
DEMO_EQUIPMENT equipment, the demo's 500 inspectors; the defaults are the issue's demo city):
a city-wide manager creates RUNS plans of TARGETS targets over the whole city and draws each
one (POST /api/v1/surprise-plans/{id}/draw, which reads the pool, draws, and writes the sealed
assignments in one transaction). Reported: the median draw time, and as the baseline measured
in the same run, the median of GET /api/v1/surprise-plans/{id} of a drawn plan (an
authenticated request that reads the plan and its assignments) — their ratio says how much of
the draw is the draw rather than the request. After the runs, each plan's verification is
recomputed (`xuncha surprise verify`) and must match.
"""
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from benchlib import Server, call

BIN = sys.argv[1]
RUNS = int(os.environ.get("RUNS", "5"))
TARGETS = int(os.environ.get("TARGETS", "50"))
UNITS = int(os.environ.get("DEMO_UNITS", "50000"))
EQUIPMENT = int(os.environ.get("DEMO_EQUIPMENT", "300000"))
BACKENDS = os.environ.get("BACKENDS", "sqlite postgres").split()
CITY = "330100"


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def bench(backend):
    print("== %s: demo city %d units, %d equipment" % (backend, UNITS, EQUIPMENT), flush=True)
    srv = Server(BIN, backend, UNITS, EQUIPMENT)
    print("   demo filled in %.1f s" % srv.demo_s, flush=True)
    draws, gets, plans = [], [], []
    try:
        tok = srv.login("manager01", "bench-surprise")
        start = datetime.now(timezone.utc) + timedelta(days=30)
        for i in range(RUNS):
            body = {"title": "bench %d" % i, "region_code": CITY,
                    "window_start": iso(start + timedelta(days=2 * i)),
                    "window_end": iso(start + timedelta(days=2 * i + 1)),
                    "target_count": TARGETS, "team_size": 2, "min_key_share": 50}
            plan, _ = call("POST", srv.base + "/api/v1/surprise-plans", tok, body)
            t0 = time.perf_counter()
            drawn, _ = call("POST", srv.base + "/api/v1/surprise-plans/%s/draw" % plan["id"], tok, {})
            draws.append((time.perf_counter() - t0) * 1000)
            got = len(drawn["assignments"])
            plans.append(plan["id"])
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                call("GET", srv.base + "/api/v1/surprise-plans/%s" % plan["id"], tok)
                times.append((time.perf_counter() - t0) * 1000)
            gets.append(statistics.median(times))
            print("   draw %d: %d targets in %.1f ms (plan GET %.2f ms)" % (i + 1, got, draws[-1], gets[-1]),
                  flush=True)
            if got != TARGETS:
                raise SystemExit("drew %d targets, wanted %d" % (got, TARGETS))
    finally:
        srv.proc.terminate()
        srv.proc.wait()
    env = dict(os.environ, XUNCHA_DATA_DIR=srv.dir, DATABASE_URL=srv.db, XUNCHA_LOG="warn")
    for p in plans:
        out = subprocess.run([BIN, "surprise", "verify", p], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit("plan %s does not verify:\n%s%s" % (p, out.stdout, out.stderr))
    print("   all %d plans verify" % len(plans), flush=True)
    srv.stop()
    return statistics.median(draws), statistics.median(gets)


results = {b: bench(b) for b in BACKENDS}
print()
print("== SUMMARY (medians of %d draws of %d targets each; client and server share the machine)"
      % (RUNS, TARGETS))
for b, (d, g) in results.items():
    print("%-9s draw: %.1f ms; plan GET (baseline) %.2f ms; ratio %.1f" % (b, d, g, d / g))
