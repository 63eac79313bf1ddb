#!/usr/bin/env bash
# Throughput/latency benchmark of the xuncha server with wrk. See --help.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/bench.sh [--help]

Builds the release binary, starts `xuncha serve` on a fresh database for each backend and
measures it with wrk:

  GET  /healthz       unauthenticated, touches nothing: the baseline
  GET  /api/v1/me     with a bearer token: JWT check + one session lookup in the database
  POST /api/v1/auth/login   correct password: one argon2id verification + a write transaction

Backends: SQLite (fresh temp data dir, DATABASE_URL empty -> <data_dir>/xuncha.db), and
PostgreSQL when a server answers on 127.0.0.1:5432 (pg_isready) or BENCH_PG_URL is given;
a fresh database xuncha_bench_<pid> is created and dropped at the end.

/healthz and /me are measured BENCH_RUNS times each, alternately (healthz, me, healthz, me,
...) and the summary shows the median requests/s, median p50 and median p99 latency; the
ratio column is the median over runs of (/me req/s) / (/healthz req/s) of the same run.
Login is measured once per backend (its ratio is against the median /healthz req/s).

Environment:
  BENCH_SECS=10          duration of each measured wrk run, seconds
  BENCH_RUNS=3           measured runs per route (/healthz and /me)
  BENCH_CONNS=32         wrk connections for /healthz and /me (threads: 2)
  BENCH_LOGIN_CONNS=4    wrk connections for login (threads: 2)
  BENCH_WARMUP_SECS=2    unrecorded wrk warm-up per route before measuring (0: none)
  BENCH_BACKENDS="sqlite postgres"   backends to try
  BENCH_PG_URL           PostgreSQL server URL WITHOUT a database name, e.g.
                         postgres://user:pass@host:5432 (default: the local server as
                         user postgres on 127.0.0.1:5432, if pg_isready says it is up).
                         The user must be allowed to CREATE/DROP DATABASE.
  Other XUNCHA_* variables in your environment reach the server (they are listed in the
  output); the script sets XUNCHA_ADMIN_PASSWORD, XUNCHA_LOG=warn, XUNCHA_DATA_DIR,
  XUNCHA_BIND, DATABASE_URL, XUNCHA_LOGIN_MAX_FAILURES_PER_ADDRESS/_PER_ACCOUNT and
  XUNCHA_SHUTDOWN_TIMEOUT_SECS itself.

Needs: cargo, curl, python3, wrk (installed with apt-get when missing, as root), and for
PostgreSQL psql/pg_isready. Client (wrk) and server run on the same machine and compete for
its cores: quote the numbers together with the machine line printed at the top.
Exit status: 0 when every request got a 2xx answer; 1 when some did not (flagged loudly);
2 on setup errors.
EOF
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "bench.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

die() { echo "bench.sh: ERROR: $*" >&2; exit 2; }
say() { printf '%s\n' "$*"; }
hr() { say "------------------------------------------------------------------------------"; }
loud() {
  say "##############################################################################"
  say "### $*"
  say "##############################################################################"
}

BENCH_SECS="${BENCH_SECS:-10}"
BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_CONNS="${BENCH_CONNS:-32}"
BENCH_LOGIN_CONNS="${BENCH_LOGIN_CONNS:-4}"
BENCH_WARMUP_SECS="${BENCH_WARMUP_SECS:-2}"
BENCH_BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
BENCH_PG_URL="${BENCH_PG_URL:-}"
THREADS=2
LOGIN_THREADS=2

for v in BENCH_SECS BENCH_RUNS BENCH_CONNS BENCH_LOGIN_CONNS BENCH_WARMUP_SECS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
(( BENCH_SECS >= 1 )) || die "BENCH_SECS must be at least 1"
(( BENCH_RUNS >= 1 )) || die "BENCH_RUNS must be at least 1"
(( BENCH_CONNS >= THREADS )) || die "BENCH_CONNS must be at least $THREADS (the thread count)"
(( BENCH_LOGIN_CONNS >= LOGIN_THREADS )) || die "BENCH_LOGIN_CONNS must be at least $LOGIN_THREADS"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/target/release/xuncha"
LOGIN_LUA="$ROOT/scripts/bench_login.lua"
[[ -f "$LOGIN_LUA" ]] || die "missing $LOGIN_LUA"

# Letters and digits only: it goes into JSON and a Lua string unescaped. ≥10 characters.
ADMIN_PASSWORD="BenchPass$(date +%s)x$$"
PG_DB="xuncha_bench_$$"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/xuncha-bench.XXXXXX")"
RESULTS="$WORK/results.tsv"   # backend route run rps p50_ms p99_ms non2xx socket_errors
: >"$RESULTS"
PROBLEMS="$WORK/problems.txt"
: >"$PROBLEMS"

SERVER_PID=""
PG_CREATED=""
PG_BASE=""

# ---------------------------------------------------------------------------- cleanup
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      say "server $SERVER_PID did not stop within 10 s of SIGTERM; sending SIGKILL"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

pg_admin() {
  if [[ -n "$BENCH_PG_URL" ]]; then
    psql -X -q -v ON_ERROR_STOP=1 -d "${PG_BASE}/postgres" "$@"
  else
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres -d postgres "$@"
  fi
}

cleanup() {
  local rc=$?
  set +e
  stop_server
  if [[ -n "$PG_CREATED" ]]; then
    if pg_admin -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1; then
      say "dropped PostgreSQL database $PG_DB"
    else
      say "WARNING: could not drop PostgreSQL database $PG_DB; drop it by hand"
    fi
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------- helpers
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# parse_wrk FILE -> "rps p50_ms p99_ms non2xx socket_errors requests" (socket_errors: total)
parse_wrk() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def dur_ms(s):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", s)
    if not m:
        raise SystemExit("cannot parse duration %r" % s)
    v, u = float(m.group(1)), m.group(2)
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}[u]
def grab(pattern):
    m = re.search(pattern, text, re.M)
    return m.group(1) if m else None
rps = grab(r"^Requests/sec:\s+([0-9.]+)")
p50 = grab(r"^\s+50%\s+(\S+)")
p99 = grab(r"^\s+99%\s+(\S+)")
reqs = grab(r"^\s+(\d+) requests in ")
if rps is None or p50 is None or p99 is None or reqs is None:
    raise SystemExit("wrk output not understood:\n" + text)
non2xx = int(grab(r"^\s+Non-2xx or 3xx responses:\s+(\d+)") or 0)
sock = 0
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    sock = sum(int(g) for g in m.groups())
print("%s %.3f %.3f %d %d %s" % (rps, dur_ms(p50), dur_ms(p99), non2xx, sock, reqs))
PY
}

# run_wrk LABEL OUTFILE wrk-args...: runs wrk, prints its output indented, checks errors.
run_wrk() {
  local label="$1" out="$2"
  shift 2
  local shown="wrk" a
  for a in "$@"; do
    if [[ "$a" == *" "* ]]; then shown+=" '$a'"; else shown+=" $a"; fi
  done
  say "    \$ $shown" | sed -E "s/Bearer [^ ']+/Bearer <token>/"
  if ! wrk "$@" >"$out" 2>&1; then
    sed 's/^/    | /' "$out"
    die "wrk failed for $label (output above)"
  fi
  sed 's/^/    | /' "$out"
}

# check_wrk BACKEND LABEL OUTFILE PARSED: flags non-2xx and socket errors.
check_wrk() {
  local backend="$1" label="$2" out="$3"
  local rps p50 p99 non2xx sock reqs
  read -r rps p50 p99 non2xx sock reqs <<<"$4"
  if (( non2xx > 0 )); then
    loud "NON-2xx RESPONSES: $backend $label: $non2xx of $reqs requests were not 2xx"
    echo "$backend $label: $non2xx non-2xx of $reqs requests" >>"$PROBLEMS"
    grep -E '^(status|first_non2xx) ' "$out" | sed 's/^/### /' || true
  fi
  if (( sock > 0 )); then
    local line
    line="$(grep -E 'Socket errors' "$out" | sed 's/^ *//')"
    loud "SOCKET ERRORS: $backend $label: $line"
    echo "$backend $label: $line" >>"$PROBLEMS"
  fi
}

# cpu_busy: percentage of all cores busy over the next second (other load on the machine).
cpu_busy() {
  python3 - <<'PY' 2>/dev/null || echo "?"
import time
def snap():
    f = open("/proc/stat").readline().split()[1:]
    v = [int(x) for x in f]
    return sum(v), v[3] + v[4]
t1, i1 = snap(); time.sleep(1); t2, i2 = snap()
print("%.0f%%" % (100.0 * (1 - (i2 - i1) / max(1, t2 - t1))))
PY
}

machine_load() {
  say "machine:   load avg $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'), CPU busy over the last second $(cpu_busy) (nothing of ours running)"
}

wait_ready() {
  local base="$1" log="$2" deadline=$((SECONDS + 60)) code
  while (( SECONDS < deadline )); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      say "server exited during start-up; its log:"
      sed 's/^/    | /' "$log"
      die "server did not start"
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/readyz" || true)"
    if [[ "$code" == "200" ]]; then
      return 0
    fi
    sleep 0.25
  done
  say "server log:"
  sed 's/^/    | /' "$log"
  die "GET /readyz did not answer 200 within 60 s (last status: ${code:-none})"
}

show_server_log() {
  local backend="$1" log="$2"
  if [[ -s "$log" ]]; then
    local n
    n="$(wc -l <"$log")"
    loud "SERVER LOGGED $n LINE(S) at warn or above ($backend); last 40:"
    tail -n 40 "$log" | sed 's/^/    | /'
    echo "$backend: server logged $n line(s) at warn+ (see output)" >>"$PROBLEMS"
  else
    say "server log ($backend): nothing at warn or above"
  fi
}

# ---------------------------------------------------------------------------- 1. build, wrk
hr
say "== Build: cargo build --release"
cargo build --release || die "cargo build --release failed (output above); nothing was measured"
[[ -x "$BIN" ]] || die "no binary at $BIN after the build"

if ! command -v wrk >/dev/null 2>&1; then
  say "== wrk not found: installing it with 'apt-get update && apt-get install -y wrk'"
  command -v apt-get >/dev/null 2>&1 || die "wrk is missing and apt-get is not available; install wrk by hand"
  if [[ "$(id -u)" != "0" ]]; then
    die "wrk is missing and this is not root; run 'apt-get install wrk' as root (or install wrk) and retry"
  fi
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; }; then
    die "installing wrk with apt-get failed (output above); install wrk by hand and retry"
  fi
  command -v wrk >/dev/null 2>&1 || die "apt-get ran but wrk is still not on PATH"
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# ---------------------------------------------------------------------------- machine
hr
say "== Machine and settings"
CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown)"
say "date:      $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
say "host:      $(uname -srm), $(nproc) CPU core(s) ($CPU_MODEL), $(free -m 2>/dev/null | awk '/^Mem:/ {print $2 " MiB RAM"}')"
say "load avg:  $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown) (before the benchmark)"
say "xuncha:    $("$BIN" --version) (git: $(git rev-parse --short HEAD 2>/dev/null || echo 'no commit'), $(git status --porcelain 2>/dev/null | wc -l) changed/untracked paths)"
say "wrk:       $(wrk --version 2>&1 | head -n1 || true)"
say "runs:      BENCH_RUNS=$BENCH_RUNS x BENCH_SECS=${BENCH_SECS}s per route, -t$THREADS -c$BENCH_CONNS --latency, warm-up ${BENCH_WARMUP_SECS}s per route"
say "login:     ${BENCH_SECS}s, -t$LOGIN_THREADS -c$BENCH_LOGIN_CONNS, scripts/bench_login.lua"
say "CAVEAT:    wrk, the server (and PostgreSQL) run on the same $(nproc)-core machine and compete"
say "           for CPU; absolute numbers are lower than on separate machines, and any other"
say "           load on the machine (builds, tests) skews them: see the 'machine:' lines."
extra_env="$(env | grep -E '^(XUNCHA_|DATABASE_URL=)' | grep -vE '^(XUNCHA_ADMIN_PASSWORD|XUNCHA_TOKEN_SIGNING_KEY|DATABASE_URL|XUNCHA_DATABASE_URL)=' || true)"
if [[ -n "$extra_env" ]]; then
  say "environment passed to the server (set by you):"
  printf '%s\n' "$extra_env" | sed 's/^/    /'
fi

# ---------------------------------------------------------------------------- per backend
bench_backend() {
  local backend="$1" db_url="$2"
  local data_dir="$WORK/data-$backend" log="$WORK/server-$backend.log" port base
  mkdir -p "$data_dir"
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  hr
  say "== Backend: $backend"
  machine_load
  if [[ -z "$db_url" ]]; then
    say "database:  SQLite, DATABASE_URL empty -> $data_dir/xuncha.db"
  else
    say "database:  PostgreSQL, database $PG_DB"
  fi

  local -a server_env=(
    "XUNCHA_ADMIN_PASSWORD=$ADMIN_PASSWORD"
    "XUNCHA_LOG=warn"
    "XUNCHA_DATA_DIR=$data_dir"
    "DATABASE_URL=$db_url"
    "XUNCHA_LOGIN_MAX_FAILURES_PER_ADDRESS=100000"
    "XUNCHA_LOGIN_MAX_FAILURES_PER_ACCOUNT=1000"
    "XUNCHA_SHUTDOWN_TIMEOUT_SECS=5"
  )

  say "argon2id (from 'xuncha config'):"
  env -u XUNCHA_DATABASE_URL "${server_env[@]}" "$BIN" config --bind "127.0.0.1:$port" 2>&1 \
    | grep -E '^argon2' | sed 's/^/    /' || say "    (could not read argon2 settings)"
  say "workers:   $(env "${server_env[@]}" "$BIN" config 2>/dev/null | grep -E '^workers ' || true) (0 = one per core)"

  say "starting:  $BIN serve --bind 127.0.0.1:$port"
  env -u XUNCHA_DATABASE_URL "${server_env[@]}" "$BIN" serve --bind "127.0.0.1:$port" >"$log" 2>&1 &
  SERVER_PID=$!
  local t0=$SECONDS
  wait_ready "$base" "$log"
  say "ready:     GET /readyz -> 200 after $((SECONDS - t0)) s (pid $SERVER_PID)"

  # Log in once for the bearer token.
  local login_body="{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\",\"device_id\":\"bench\"}"
  local login_out="$WORK/login-$backend.json" code token
  code="$(curl -s -o "$login_out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data "$login_body" "$base/api/v1/auth/login" || true)"
  if [[ "$code" != "200" ]]; then
    say "login answer ($code):"; cat "$login_out" 2>/dev/null || true; echo
    die "login as admin failed on $backend (HTTP $code)"
  fi
  token="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$login_out")"
  [[ -n "$token" ]] || die "no access_token in the login answer"
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/api/v1/me" || true)"
  [[ "$code" == "200" ]] || die "GET /api/v1/me with the fresh token answered $code on $backend"
  say "login:     ok, access token obtained; GET /api/v1/me -> 200"

  local -a common=(-t"$THREADS" -c"$BENCH_CONNS" --latency)
  local -a auth=(-H "Authorization: Bearer $token")
  if (( BENCH_WARMUP_SECS > 0 )); then
    say "warm-up:   ${BENCH_WARMUP_SECS}s each on /healthz and /api/v1/me (not recorded)"
    wrk "${common[@]}" -d"${BENCH_WARMUP_SECS}s" "$base/healthz" >/dev/null 2>&1 || true
    wrk "${common[@]}" -d"${BENCH_WARMUP_SECS}s" "${auth[@]}" "$base/api/v1/me" >/dev/null 2>&1 || true
  fi

  local run out parsed
  for run in $(seq 1 "$BENCH_RUNS"); do
    say ""
    say "-- $backend run $run/$BENCH_RUNS: GET /healthz"
    out="$WORK/wrk-$backend-healthz-$run.txt"
    run_wrk "/healthz" "$out" "${common[@]}" -d"${BENCH_SECS}s" "$base/healthz"
    parsed="$(parse_wrk "$out")"
    check_wrk "$backend" "GET /healthz (run $run)" "$out" "$parsed"
    printf '%s\t%s\t%s\t%s\n' "$backend" "GET /healthz" "$run" "$(tr ' ' '\t' <<<"$parsed")" >>"$RESULTS"

    say "-- $backend run $run/$BENCH_RUNS: GET /api/v1/me (bearer token)"
    out="$WORK/wrk-$backend-me-$run.txt"
    run_wrk "/api/v1/me" "$out" "${common[@]}" -d"${BENCH_SECS}s" "${auth[@]}" "$base/api/v1/me"
    parsed="$(parse_wrk "$out")"
    check_wrk "$backend" "GET /api/v1/me (run $run)" "$out" "$parsed"
    printf '%s\t%s\t%s\t%s\n' "$backend" "GET /api/v1/me" "$run" "$(tr ' ' '\t' <<<"$parsed")" >>"$RESULTS"
  done

  say ""
  say "-- $backend: POST /api/v1/auth/login (correct password, device_id bench-login)"
  out="$WORK/wrk-$backend-login.txt"
  BENCH_LOGIN_USER=admin BENCH_LOGIN_PASSWORD="$ADMIN_PASSWORD" BENCH_LOGIN_DEVICE=bench-login \
    run_wrk "login" "$out" -t"$LOGIN_THREADS" -c"$BENCH_LOGIN_CONNS" -d"${BENCH_SECS}s" --latency \
    -s "$LOGIN_LUA" "$base/api/v1/auth/login"
  parsed="$(parse_wrk "$out")"
  check_wrk "$backend" "POST /api/v1/auth/login" "$out" "$parsed"
  printf '%s\t%s\t%s\t%s\n' "$backend" "POST /api/v1/auth/login" 1 "$(tr ' ' '\t' <<<"$parsed")" >>"$RESULTS"

  # Still healthy after the load?
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/readyz" || true)"
  if [[ "$code" != "200" ]]; then
    loud "GET /readyz answered $code AFTER the benchmark on $backend"
    echo "$backend: /readyz answered $code after the benchmark" >>"$PROBLEMS"
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    loud "THE SERVER EXITED during the $backend benchmark"
    echo "$backend: server process exited during the benchmark" >>"$PROBLEMS"
  fi
  stop_server
  show_server_log "$backend" "$log"
}

ran_any=""
for backend in $BENCH_BACKENDS; do
  case "$backend" in
    sqlite)
      bench_backend sqlite ""
      ran_any=1
      ;;
    postgres)
      if [[ -n "$BENCH_PG_URL" ]]; then
        PG_BASE="${BENCH_PG_URL%/}"
        command -v psql >/dev/null 2>&1 || die "BENCH_PG_URL is set but psql is not installed"
        pg_admin -Atc 'SELECT 1' >/dev/null || die "BENCH_PG_URL is set but ${PG_BASE}/postgres does not answer"
        PG_URL="${PG_BASE}/$PG_DB"
      else
        PG_BASE="postgres://postgres@127.0.0.1:5432"
        if ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
          hr
          loud "SKIPPING PostgreSQL: pg_isready/psql not installed (set BENCH_PG_URL or install postgresql-client)"
          continue
        fi
        if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
          hr
          loud "SKIPPING PostgreSQL: no server answers on 127.0.0.1:5432 (pg_isready) and BENCH_PG_URL is not set"
          continue
        fi
        PG_URL="postgres://postgres@127.0.0.1:5432/$PG_DB"
      fi
      pg_admin -c "CREATE DATABASE $PG_DB" >/dev/null || die "could not create database $PG_DB"
      PG_CREATED=1
      say "created PostgreSQL database $PG_DB ($(pg_admin -Atc 'SHOW server_version' 2>/dev/null || echo '?'))"
      bench_backend postgres "$PG_URL"
      ran_any=1
      ;;
    *) die "unknown backend '$backend' in BENCH_BACKENDS (sqlite, postgres)" ;;
  esac
done
[[ -n "$ran_any" ]] || die "no backend was benchmarked"

# ---------------------------------------------------------------------------- summary
hr
say "== Per-run results (req/s, p50 ms, p99 ms, non-2xx, socket errors)"
python3 - "$RESULTS" <<'PY'
import sys
for line in open(sys.argv[1]):
    b, route, run, rps, p50, p99, non2xx, sock, reqs = line.rstrip("\n").split("\t")
    print("  %-9s %-24s run %s  %10.1f req/s  p50 %8.3f ms  p99 %8.3f ms  non-2xx %s  sock-err %s"
          % (b, route, run, float(rps), float(p50), float(p99), non2xx, sock))
PY

hr
say "== SUMMARY (medians over $BENCH_RUNS run(s) of ${BENCH_SECS}s; login: 1 run; wrk -t$THREADS, -c$BENCH_CONNS for GETs, -c$BENCH_LOGIN_CONNS for login)"
python3 - "$RESULTS" <<'PY'
import sys
from statistics import median
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
order, data = [], {}
for b, route, run, rps, p50, p99, non2xx, sock, reqs in rows:
    key = (b, route)
    if key not in data:
        order.append(key)
        data[key] = {}
    data[key][int(run)] = (float(rps), float(p50), float(p99), int(non2xx), int(sock))
hdr = ("backend", "route", "median req/s", "median p50", "median p99", "ratio vs /healthz", "non-2xx")
fmt = "%-9s | %-24s | %12s | %11s | %11s | %-24s | %s"
print(fmt % hdr)
print("-" * 9 + "-+-" + "-" * 24 + "-+-" + "-" * 12 + "-+-" + "-" * 11 + "-+-" + "-" * 11 + "-+-" + "-" * 24 + "-+-" + "-" * 7)
for b, route in order:
    runs = data[(b, route)]
    rps = median(r[0] for r in runs.values())
    p50 = median(r[1] for r in runs.values())
    p99 = median(r[2] for r in runs.values())
    bad = sum(r[3] for r in runs.values())
    health = data.get((b, "GET /healthz"), {})
    if route == "GET /healthz":
        ratio = "1.000 (baseline)"
    elif route == "GET /api/v1/me":
        per_run = [runs[i][0] / health[i][0] for i in runs if i in health and health[i][0] > 0]
        ratio = "%.3f (same-run median)" % median(per_run) if per_run else "n/a"
    else:
        h = median(r[0] for r in health.values()) if health else 0
        ratio = "%.4f (vs median)" % (rps / h) if h else "n/a"
    print(fmt % (b, route, "%.1f" % rps, "%.3f ms" % p50, "%.3f ms" % p99, ratio,
                 ("%d  <-- NOT ALL 2xx" % bad) if bad else "0"))
PY
say ""
say "Machine: $(nproc) core(s) ($CPU_MODEL); wrk and the server share them (see CAVEAT above)."
machine_load

if [[ -s "$PROBLEMS" ]]; then
  hr
  loud "PROBLEMS SEEN DURING THE BENCHMARK:"
  sed 's/^/### /' "$PROBLEMS"
  if grep -qE 'non-2xx|exited|readyz' "$PROBLEMS"; then
    exit 1
  fi
fi
exit 0
