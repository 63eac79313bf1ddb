#!/usr/bin/env bash
# Device-fleet load test (issue 8): for each backend, a fresh database (SQLite in a temp dir;
# PostgreSQL: a new database, dropped after) filled with the demo city by `xuncha demo`, a
# release `xuncha serve` on it, and DEVICES simulated phones (src/bin/xuncha_sim.rs) playing
# PROFILE against it. Prints each report and writes it (text and JSON) to RESULTS. The city is
# made by its own process, not `serve --demo`: the server's peak RSS is then that of serving
# (the generator's peak and the heap it leaves behind would count otherwise).
#
#   scripts/load.sh            # 1000 phones, morning sync (initial + 3 pulls + push of 20)
#   scripts/load.sh --smoke    # 20 phones, full profile, on a small city: a quick check
#
# Environment: DEVICES=1000 PROFILE=morning|full BACKENDS="sqlite postgres" CONCURRENCY=200
#   PG_URL=postgres://postgres@127.0.0.1:5432 RESULTS=target/load/<time> SIM_ARGS="…" (more
#   xuncha_sim flags, e.g. "--ramp-secs 300 --drop-rate 0.02"; `xuncha_sim --help` lists them)
#   DEMO_ARGS="…" (`xuncha demo` options, default the issue's city: 50,000 units, 300,000
#   equipment, 500 inspectors; pass --inspectors N to the simulator too when it is not 500).
# Exits 1 when a run fails (errors or convergence); a backend that is not there (PostgreSQL
# not answering) is skipped, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
case "${1:-}" in
  -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
  --smoke) SMOKE=1 ;;
  "") ;;
  *) echo "load.sh: unknown argument $1 (--smoke or --help)" >&2; exit 2 ;;
esac
if [ "$SMOKE" = 1 ]; then
  DEVICES=${DEVICES:-20}
  PROFILE=${PROFILE:-full}
  DEMO_ARGS=${DEMO_ARGS:---units 2000 --equipment 12000 --districts 3 --inspectors 40 --managers 5 --hazards 300}
  SIM_ARGS=${SIM_ARGS:---inspectors 40 --rate-secs 1}
fi
DEVICES=${DEVICES:-1000}
PROFILE=${PROFILE:-morning}
BACKENDS=${BACKENDS:-sqlite postgres}
CONCURRENCY=${CONCURRENCY:-200}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
RESULTS=${RESULTS:-target/load/$(date +%Y%m%d-%H%M%S)}
DEMO_ARGS=${DEMO_ARGS:-}
SIM_ARGS=${SIM_ARGS:-}

command -v cc >/dev/null && command -v cmake >/dev/null && command -v nasm >/dev/null || bash scripts/setup.sh
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "load.sh: needs $tool (apt-get install $tool)" >&2; exit 2; }
done
case " $BACKENDS " in
  *" postgres "*) command -v psql >/dev/null || { echo "load.sh: needs psql for the PostgreSQL run (apt-get install postgresql-client, or BACKENDS=sqlite)" >&2; exit 2; } ;;
esac
cargo build --release --bin xuncha --bin xuncha_sim >/dev/null 2>&1 || cargo build --release --bin xuncha --bin xuncha_sim
BIN=$PWD/target/release/xuncha
SIM=$PWD/target/release/xuncha_sim
mkdir -p "$RESULTS"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d "$PG_URL/postgres" -c "$1" >/dev/null; }

SERVER_PID=""
WORK=""
PG_DB=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
  if [ -n "$PG_DB" ]; then
    psql_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" || true
    PG_DB=""
  fi
  if [ -n "$WORK" ]; then
    rm -rf "$WORK"
    WORK=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

header() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "xuncha: $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($(git status --porcelain 2>/dev/null | wc -l) changed paths)"
  echo "command: DEVICES=$DEVICES PROFILE=$PROFILE CONCURRENCY=$CONCURRENCY SIM_ARGS='$SIM_ARGS' DEMO_ARGS='$DEMO_ARGS' scripts/load.sh$([ "$SMOKE" = 1 ] && echo ' --smoke')"
}

status=0
for backend in $BACKENDS; do
  WORK=$(mktemp -d /tmp/xuncha-load-XXXXXX)
  db_url=""
  case "$backend" in
    sqlite) ;;
    postgres)
      if ! psql_admin "SELECT 1" 2>/dev/null; then
        echo "=================================================================="
        echo "== load.sh: PostgreSQL does not answer at $PG_URL: SKIPPED postgres"
        echo "=================================================================="
        rm -rf "$WORK"; WORK=""
        continue
      fi
      PG_DB="xuncha_load_$$"
      psql_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
      psql_admin "CREATE DATABASE $PG_DB"
      db_url="$PG_URL/$PG_DB"
      ;;
    *) echo "load.sh: unknown backend $backend" >&2; exit 2 ;;
  esac
  export XUNCHA_ADMIN_PASSWORD=admin-load-pass XUNCHA_LOG=warn XUNCHA_DATA_DIR="$WORK" DATABASE_URL="$db_url"
  # No background writes during the run (as the bench servers): a job's commit would move the
  # sync head between a device's last pull and its checksum.
  export XUNCHA_RISK_REFRESH_INTERVAL_SECS=0 XUNCHA_OVERDUE_CHECK_INTERVAL_SECS=0 \
    XUNCHA_SURPRISE_REVEAL_INTERVAL_SECS=0 XUNCHA_SYNC_PRUNE_INTERVAL_SECS=0 \
    XUNCHA_UPLOAD_SWEEP_INTERVAL_SECS=0
  port=$(free_port)
  echo "== $backend: demo city and server on 127.0.0.1:$port (data in $WORK)" >&2
  t0=$(date +%s)
  # shellcheck disable=SC2086
  "$BIN" demo $DEMO_ARGS >/dev/null 2>"$WORK/demo.log" || { tail -5 "$WORK/demo.log" >&2; exit 1; }
  echo "== $backend: demo city made in $(( $(date +%s) - t0 )) s" >&2
  "$BIN" serve --bind "127.0.0.1:$port" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  t0=$(date +%s)
  until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "load.sh: the $backend server exited; its log:" >&2; tail -20 "$WORK/server.log" >&2; exit 1
    fi
    if [ $(( $(date +%s) - t0 )) -gt 900 ]; then
      echo "load.sh: the $backend server is not ready after 900 s" >&2; exit 1
    fi
    sleep 0.5
  done
  echo "== $backend: ready after $(( $(date +%s) - t0 )) s; $DEVICES devices, profile $PROFILE" >&2
  report="$RESULTS/$backend.txt"
  header >"$report"
  echo "backend: $backend" >>"$report"
  rc=0
  # shellcheck disable=SC2086
  "$SIM" --url "http://127.0.0.1:$port" --devices "$DEVICES" --profile "$PROFILE" \
    --concurrency "$CONCURRENCY" --server-pid "$SERVER_PID" --json "$RESULTS/$backend.json" \
    $SIM_ARGS >>"$report" || rc=$?
  cat "$report"
  if [ "$rc" != 0 ]; then
    echo "== load.sh: $backend run FAILED (exit $rc); server log tail:"
    tail -20 "$WORK/server.log"
    status=1
  fi
  cleanup
done
echo "== reports in $RESULTS" >&2
exit $status
