#!/usr/bin/env bash
# Delta-sync benchmark: initial sync rows/s, empty pull vs /healthz, push of 100 mutations,
# on SQLite and PostgreSQL. Settings and method: scripts/bench_sync.py (its docstring).
# Environment: RUNS=3 SECS=8 DEMO_UNITS=50000 DEMO_EQUIPMENT=300000 BACKENDS="sqlite postgres"
# PG_URL=postgres://postgres@127.0.0.1:5432 SCALE_CHECK=0|1. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,20p' scripts/bench_sync.py; exit 0 ;; esac
if ! command -v wrk >/dev/null; then
  echo "== wrk not found: installing it with apt-get" >&2
  { apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; } >/dev/null || { echo "bench_sync.sh: could not install wrk" >&2; exit 2; }
fi
cargo build --release >/dev/null 2>&1 || cargo build --release
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xuncha: $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($(git status --porcelain 2>/dev/null | wc -l) changed paths)"
exec python3 scripts/bench_sync.py "$PWD/target/release/xuncha"
