#!/usr/bin/env python3
"""Delta-sync benchmark (run through scripts/bench_sync.sh, which builds the binary).

For each backend, on a fresh database filled by `xuncha demo` (DEMO_UNITS units, DEMO_EQUIPMENT
equipment; the defaults are the issue's demo city):

  initial   an inspector's initial sync (pages of 5000), rows/s and gzip bytes: RUNS devices
            on a server without a row cache (XUNCHA_SYNC_ROW_CACHE_MB=0: every row read
            from the database), median, and as many alternating with them on a server
            without read-ahead of the next page (XUNCHA_SYNC_PREFETCH_PAGES=0) and on one
            that reads a page on one connection (XUNCHA_SYNC_PAGE_CONNECTIONS=1), the
            order rotating from run to run; then, with
            the cache, the first device after a start (also the process's first pages) and
            RUNS more devices of the same district (rows from the cache), median of those. The client counts rows and
            takes the cursor from each page's tail rather than parsing the whole JSON, so
            that Python's parser is not what is measured. Also given: rows/s over the
            time the server took to answer (request sent to the page's last byte received),
            without the client's gunzip and scan between pages
  empty     wrk on GET /api/v1/sync/pull?cursor=<caught up> against GET /healthz, RUNS
            alternating runs of SECS s; medians and the median of same-run ratios
  push      RUNS x 10 pushes of 100 hazard.report mutations; median ms per push

With SCALE_CHECK=1 the empty pull is also measured on a city 10x smaller (same run), and the
ratio of the median latencies (big / small) is printed: the cost must not grow with data.
"""
import gzip
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid

from benchlib import Server as DemoServer, call

BIN = sys.argv[1]
RUNS = int(os.environ.get("RUNS", "3"))
SECS = int(os.environ.get("SECS", "8"))
UNITS = int(os.environ.get("DEMO_UNITS", "50000"))
EQUIPMENT = int(os.environ.get("DEMO_EQUIPMENT", "300000"))
BACKENDS = os.environ.get("BACKENDS", "sqlite postgres").split()
SCALE = os.environ.get("SCALE_CHECK", "0") == "1"

UNIT_PUT = re.compile(rb'"table":"units","op":"put","id":"([^"]+)"')
TAIL = re.compile(rb'"cursor":"([^"]+)","has_more":(true|false)')


def call_raw(method, url, token):
    """The body (gunzipped) and its size on the wire, unparsed, and the seconds from sending
    the request to receiving its last byte."""
    req = urllib.request.Request(url, method=method)
    req.add_header("authorization", "Bearer " + token)
    req.add_header("accept-encoding", "gzip")
    t0 = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        raw = r.read()
        secs = time.perf_counter() - t0
        n = len(raw)
        if r.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        return raw, n, secs


def parse_wrk(out):
    import re
    def ms(s):
        m = re.fullmatch(r"([0-9.]+)(us|ms|s)", s)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0


def wrk(url, token=None):
    args = ["wrk", "-t2", "-c32", "-d%ds" % SECS, "--latency", url]
    if token:
        args[1:1] = ["-H", "Authorization: Bearer " + token]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


class Server(DemoServer):
    def __init__(self, backend, units, equipment):
        super().__init__(BIN, backend, units, equipment)

    def initial_sync(self, token, served=None):
        """Pulls until done: (rows, gzip bytes, seconds, cursor, unit ids). With a list as
        `served`, appends the seconds the server took to answer (request sent to the last
        byte received; the client's gunzip and scan excluded)."""
        cursor, rows, wire, t0 = None, 0, 0, time.time()
        pages = []
        answering = 0.0
        while True:
            url = self.base + "/api/v1/sync/pull?limit=5000"
            if cursor:
                url += "&cursor=" + cursor
            raw, n, secs = call_raw("GET", url, token)
            answering += secs
            wire += n
            rows += raw.count(b'"op":"')
            pages.append(raw)
            tail = TAIL.search(raw[-1000:])
            if tail is None:
                raise SystemExit("unexpected page: %r" % raw[:300])
            cursor = tail.group(1).decode()
            if tail.group(2) == b"false":
                secs = time.time() - t0
                if served is not None:
                    served.append(answering)
                # The unit ids (for the pushes) are picked out after the clock stopped.
                units = [m.decode() for raw in pages for m in UNIT_PUT.findall(raw)]
                return rows, wire, secs, cursor, units


def empty_pull_ms(srv, token, cursor, n=200):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call("GET", srv.base + "/api/v1/sync/pull?cursor=" + cursor, token)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench(backend):
    print("== %s: demo city %d units, %d equipment" % (backend, UNITS, EQUIPMENT), flush=True)
    srv = Server(backend, UNITS, EQUIPMENT)
    print("   demo filled in %.1f s" % srv.demo_s, flush=True)
    try:
        res = {}
        # From the database (no row cache): as configured by default (read-ahead of the next
        # page, a big page's stored rows read on two connections), without read-ahead, and
        # on one connection per page; alternating, each on a server started for it.
        modes = {
            "read-ahead": {},
            "no read-ahead": {"XUNCHA_SYNC_PREFETCH_PAGES": "0"},
            "one connection a page": {"XUNCHA_SYNC_PAGE_CONNECTIONS": "1"},
        }
        e2e = {m: [] for m in modes}
        served = {m: [] for m in modes}
        # The order rotates from run to run: the first server of a run came out slower
        # (on SQLite two identically configured variants differed by 1.2x), and so each
        # variant takes each place as often as RUNS allows.
        order = list(modes.items())
        for i in range(RUNS):
            for j in range(len(order)):
                k = (i + j) % len(order)
                mode, extra = order[k]
                env = {"XUNCHA_SYNC_ROW_CACHE_MB": "0", "XUNCHA_SYNC_PREFETCH_PAGES": None,
                       "XUNCHA_SYNC_PAGE_CONNECTIONS": None}
                env.update(extra)
                srv.restart(env)
                tok = srv.login("inspector001", "bench-nocache-%d-%d" % (i, k))
                rows, wire, secs, _, _ = srv.initial_sync(tok, served[mode])
                e2e[mode].append(rows / secs)
                print("   initial sync %d (no row cache, %s): %d rows, %.1f MB gzip, %.2f s,"
                      " %.0f rows/s; answering %.2f s, %.0f rows/s"
                      % (i + 1, mode, rows, wire / 1e6, secs, rows / secs, served[mode][-1],
                         rows / served[mode][-1]), flush=True)
        res["initial_db_rps"] = statistics.median(e2e["read-ahead"])
        res["initial_db_served_rps"] = statistics.median(rows / s for s in served["read-ahead"])
        for mode, key in (("no read-ahead", "noahead"), ("one connection a page", "onecon")):
            res["initial_db_%s_rps" % key] = statistics.median(e2e[mode])
            res["initial_db_%s_served_rps" % key] = statistics.median(
                rows / s for s in served[mode])
        srv.restart({"XUNCHA_SYNC_ROW_CACHE_MB": None, "XUNCHA_SYNC_PREFETCH_PAGES": None,
                     "XUNCHA_SYNC_PAGE_CONNECTIONS": None})
        syncs, served = [], []
        for i in range(RUNS + 1):
            tok = srv.login("inspector001", "bench-initial-%d" % i)
            rows, wire, secs, cursor, units = srv.initial_sync(tok, served)
            syncs.append((rows, wire, secs))
            print("   initial sync %d (%s): %d rows, %.1f MB gzip, %.2f s, %.0f rows/s;"
                  " answering %.2f s, %.0f rows/s"
                  % (i + 1, "first after a start" if i == 0 else "row cache", rows, wire / 1e6,
                     secs, rows / secs, served[-1], rows / served[-1]),
                  flush=True)
        res["initial_served_rps"] = statistics.median(syncs[0][0] / s for s in served[1:])
        res["initial_rows"] = syncs[0][0]
        res["initial_cold_rps"] = syncs[0][0] / syncs[0][2]
        res["initial_rps"] = statistics.median(r / s for r, _, s in syncs[1:])
        res["initial_bytes"] = statistics.median(w for _, w, _ in syncs)
        tok = srv.login("inspector001", "bench-empty")
        _, _, _, cursor, units = srv.initial_sync(tok)
        runs = []
        for i in range(RUNS):
            h = wrk(srv.base + "/healthz")
            e = wrk(srv.base + "/api/v1/sync/pull?cursor=" + cursor, tok)
            runs.append((h, e))
            print("   run %d: /healthz %.0f req/s p99 %.2f ms | empty pull %.0f req/s p50 %.2f ms p99 %.2f ms (non-2xx %d)"
                  % (i + 1, h[0], h[2], e[0], e[1], e[2], e[3]), flush=True)
        res["healthz_rps"] = statistics.median(h[0] for h, _ in runs)
        res["empty_rps"] = statistics.median(e[0] for _, e in runs)
        res["empty_p50"] = statistics.median(e[1] for _, e in runs)
        res["empty_p99"] = statistics.median(e[2] for _, e in runs)
        res["empty_ratio"] = statistics.median(e[0] / h[0] for h, e in runs)
        res["empty_ms_seq"] = empty_pull_ms(srv, tok, cursor)
        # Push: 100 mutations a push.
        ptok = srv.login("inspector001", "bench-push")
        seq, times = 1, []
        for i in range(RUNS * 10):
            muts = []
            for _ in range(100):
                muts.append({"seq": seq, "name": "hazard.report", "args": {
                    "id": str(uuid.uuid4()), "unit_id": units[seq % len(units)],
                    "description": "bench", "level": "general", "fixed_on_site": False}})
                seq += 1
            t0 = time.perf_counter()
            b, _ = call("POST", srv.base + "/api/v1/sync/push", ptok,
                        {"device_id": "bench-push", "mutations": muts})
            times.append((time.perf_counter() - t0) * 1000)
            bad = [r for r in b["results"] if r["status"] != "applied"]
            if bad:
                raise SystemExit("push not applied: %s" % bad[:2])
        res["push_ms"] = statistics.median(times)
        print("   push of 100: median %.1f ms (p max %.1f ms over %d pushes)"
              % (res["push_ms"], max(times), len(times)), flush=True)
    finally:
        srv.stop()
    if SCALE:
        small = Server(backend, UNITS // 10, EQUIPMENT // 10)
        try:
            tok = small.login("inspector001", "bench-small")
            _, _, _, cursor, _ = small.initial_sync(tok)
            res["small_empty_ms_seq"] = empty_pull_ms(small, tok, cursor)
        finally:
            small.stop()
    return res


results = {b: bench(b) for b in BACKENDS}
print()
print("== SUMMARY (medians of %d runs; wrk -t2 -c32 %ds; client and server share the machine)" % (RUNS, SECS))
for b, r in results.items():
    print("%-9s initial sync: %d rows, %.1f MB gzip; from the database %.0f rows/s; with the row cache: first device after a start %.0f rows/s, next devices %.0f rows/s"
          % (b, r["initial_rows"], r["initial_bytes"] / 1e6, r["initial_db_rps"], r["initial_cold_rps"], r["initial_rps"]))
    print("%-9s   the same, server answering time only (client gunzip and scan excluded): from the database %.0f rows/s, next devices %.0f rows/s"
          % (b, r["initial_db_served_rps"], r["initial_served_rps"]))
    print("%-9s   from the database without read-ahead (XUNCHA_SYNC_PREFETCH_PAGES=0): %.0f rows/s end to end, %.0f rows/s answering; read-ahead ratio %.2f / %.2f"
          % (b, r["initial_db_noahead_rps"], r["initial_db_noahead_served_rps"],
             r["initial_db_rps"] / r["initial_db_noahead_rps"],
             r["initial_db_served_rps"] / r["initial_db_noahead_served_rps"]))
    print("%-9s   from the database on one connection a page (XUNCHA_SYNC_PAGE_CONNECTIONS=1): %.0f rows/s end to end, %.0f rows/s answering; two-connection ratio %.2f / %.2f"
          % (b, r["initial_db_onecon_rps"], r["initial_db_onecon_served_rps"],
             r["initial_db_rps"] / r["initial_db_onecon_rps"],
             r["initial_db_served_rps"] / r["initial_db_onecon_served_rps"]))
    print("%-9s empty pull: %.0f req/s (p50 %.2f ms, p99 %.2f ms) vs /healthz %.0f req/s: ratio %.3f"
          % (b, r["empty_rps"], r["empty_p50"], r["empty_p99"], r["healthz_rps"], r["empty_ratio"]))
    print("%-9s empty pull, one at a time: %.3f ms" % (b, r["empty_ms_seq"]))
    if "small_empty_ms_seq" in r:
        print("%-9s   vs a 10x smaller city: %.3f ms: ratio %.2f" % (b, r["small_empty_ms_seq"], r["empty_ms_seq"] / r["small_empty_ms_seq"]))
    print("%-9s push of 100 mutations: median %.1f ms" % (b, r["push_ms"]))
