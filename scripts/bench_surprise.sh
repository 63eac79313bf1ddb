#!/usr/bin/env bash
# Unannounced-check draw benchmark: draw time for TARGETS targets from the demo city, on SQLite
# and PostgreSQL. Settings and method: scripts/bench_surprise.py (its docstring).
# Environment: RUNS=5 TARGETS=50 DEMO_UNITS=50000 DEMO_EQUIPMENT=300000
# BACKENDS="sqlite postgres" PG_URL=postgres://postgres@127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,14p' scripts/bench_surprise.py; exit 0 ;; esac
cargo build --release >/dev/null 2>&1 || cargo build --release
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xuncha: $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($(git status --porcelain 2>/dev/null | wc -l) changed paths)"
exec python3 scripts/bench_surprise.py "$PWD/target/release/xuncha"
