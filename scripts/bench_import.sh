#!/usr/bin/env bash
# Registry import benchmark: rows/s of the CSV import on SQLite and PostgreSQL. See --help.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench_import.sh [--help]

Builds the release binary, generates a synthetic registry with scripts/gen_registry_csv.py
(BENCH_UNITS units, BENCH_EQUIPMENT equipment), and for each backend and each of BENCH_RUNS
runs, on a fresh database and a fresh server:

  baseline   POST the equipment file to the units import: the body is uploaded and spooled
             to disk, then refused at its header. What moving the bytes costs.
  units      import of the units file (all rows created)
  equipment  import of the equipment file (all rows created)
  reimport   the equipment file again (every row unchanged: validation + lookups, no writes)

and the server's peak RSS (VmHWM) after the run. The summary gives median seconds, rows/s
and the ratio of each step's time to the baseline of the same run (median over runs).

Environment:
  BENCH_RUNS=3                 runs per backend (each on a fresh database)
  BENCH_UNITS=50000            rows of the units file
  BENCH_EQUIPMENT=300000       rows of the equipment file
  BENCH_BACKENDS="sqlite postgres"
  BENCH_PG_URL                 PostgreSQL server URL without a database name
                               (default postgres://postgres@127.0.0.1:5432 when pg_isready
                               answers); a database xuncha_ibench_<pid> is created and dropped.
Needs: cargo, curl, python3, and psql/pg_isready for PostgreSQL.
USAGE
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "bench_import.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

die() { echo "bench_import.sh: ERROR: $*" >&2; exit 2; }
BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_UNITS="${BENCH_UNITS:-50000}"
BENCH_EQUIPMENT="${BENCH_EQUIPMENT:-300000}"
BENCH_BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
for v in BENCH_RUNS BENCH_UNITS BENCH_EQUIPMENT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && (( ${!v} >= 1 )) || die "$v must be a whole number >= 1"
done
for tool in cargo curl python3; do command -v "$tool" >/dev/null || die "$tool is required"; done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/target/release/xuncha"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/xuncha-ibench.XXXXXX")"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
PG_DB="xuncha_ibench_$$"
PG_BASE="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}"
PG_BASE="${PG_BASE%/}"
SERVER_PID=""
PASSWORD="BenchImport$$x"

stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
pg() { psql -X -q -v ON_ERROR_STOP=1 -d "$PG_BASE/postgres" "$@"; }
cleanup() {
  set +e
  stop_server
  if command -v psql >/dev/null 2>&1; then
    pg -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== build"
cargo build --release >/dev/null 2>&1 || cargo build --release || die "build failed"
echo "== generating $BENCH_UNITS units and $BENCH_EQUIPMENT equipment"
python3 scripts/gen_registry_csv.py "$WORK/csv" --units "$BENCH_UNITS" --equipment "$BENCH_EQUIPMENT"
ls -l "$WORK/csv"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CAVEAT: curl, the server and PostgreSQL share the machine."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# post TOKEN ROUTE FILE -> prints "seconds http_code"
post() {
  curl -s -o "$WORK/out.json" -w '%{time_total} %{http_code}' \
    -H "authorization: Bearer $1" -H 'content-type: text/csv' \
    --data-binary "@$3" "$BASE/api/v1/imports/$2"
}

run_once() {
  local backend="$1" run="$2" url="$3" data="$WORK/data-$backend-$run" port
  mkdir -p "$data"
  port="$(free_port)"
  BASE="http://127.0.0.1:$port"
  XUNCHA_ADMIN_PASSWORD="$PASSWORD" XUNCHA_LOG=warn XUNCHA_DATA_DIR="$data" DATABASE_URL="$url" \
    XUNCHA_RISK_REFRESH_INTERVAL_SECS=0 "$BIN" serve --bind "127.0.0.1:$port" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    curl -sf "$BASE/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; die "server exited"; }
    sleep 0.1
  done
  local token
  token="$(curl -s "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\",\"device_id\":\"bench\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
  local step route file expect t code
  for step in baseline units equipment reimport; do
    case "$step" in
      baseline) route=units; file=equipment; expect=422 ;;
      units) route=units; file=units; expect=200 ;;
      *) route=equipment; file=equipment; expect=200 ;;
    esac
    read -r t code < <(post "$token" "$route" "$WORK/csv/$file.csv"; echo) || true
    if [[ "$code" != "$expect" ]]; then
      head -c 600 "$WORK/out.json"; echo
      die "$backend run $run: $step answered $code, expected $expect"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$backend" "$run" "$step" "$t" "$(head -c 200 "$WORK/out.json" | tr '\t\n' '  ')" >>"$RESULTS"
    echo "  $backend run $run: $step ${t}s $(head -c 120 "$WORK/out.json")"
  done
  local hwm
  hwm="$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")"
  printf '%s\t%s\t%s\t%s\t%s\n' "$backend" "$run" "rss_kib" "$hwm" "" >>"$RESULTS"
  echo "  $backend run $run: server peak RSS $((hwm / 1024)) MiB"
  stop_server
}

for backend in $BENCH_BACKENDS; do
  echo "== $backend"
  for run in $(seq 1 "$BENCH_RUNS"); do
    case "$backend" in
      sqlite) run_once sqlite "$run" "" ;;
      postgres)
        if ! command -v psql >/dev/null || ! pg -Atc 'SELECT 1' >/dev/null 2>&1; then
          echo "##### SKIPPING PostgreSQL: no server at $PG_BASE #####"
          break
        fi
        pg -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
        pg -c "CREATE DATABASE $PG_DB" >/dev/null
        run_once postgres "$run" "$PG_BASE/$PG_DB"
        pg -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
        ;;
      *) die "unknown backend $backend" ;;
    esac
  done
done

echo "== SUMMARY (medians over $BENCH_RUNS run(s); ratio = step time / baseline time of the same run)"
python3 - "$RESULTS" "$BENCH_UNITS" "$BENCH_EQUIPMENT" <<'PY'
import sys
from statistics import median
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
n_units, n_eq = int(sys.argv[2]), int(sys.argv[3])
data = {}
for b, run, step, v, _ in rows:
    data.setdefault(b, {}).setdefault(int(run), {})[step] = float(v)
count = {"baseline": n_eq, "units": n_units, "equipment": n_eq, "reimport": n_eq}
print("%-9s %-10s %10s %12s %18s" % ("backend", "step", "median s", "rows/s", "x baseline"))
for b, runs in data.items():
    for step in ["baseline", "units", "equipment", "reimport"]:
        ts = [r[step] for r in runs.values() if step in r]
        ratios = [r[step] / r["baseline"] for r in runs.values() if step in r and r.get("baseline")]
        print("%-9s %-10s %10.2f %12.0f %18s" % (b, step, median(ts), count[step] / median(ts),
              "%.1f" % median(ratios) if step != "baseline" else "1.0 (upload+spool)"))
    rss = [r["rss_kib"] for r in runs.values() if "rss_kib" in r]
    print("%-9s peak RSS median %.0f MiB (max %.0f MiB)" % (b, median(rss) / 1024, max(rss) / 1024))
PY
