#!/usr/bin/env bash
# Photo upload benchmark: parallel tus uploads over loopback, transfer alone vs whole photo
# ingest, and the server's peak memory. Method and settings: scripts/bench_upload.py.
# Environment: BENCH_RUNS=5 PARALLEL=16.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '1,17p' scripts/bench_upload.py; exit 0 ;; esac
cargo build --release --bins >/dev/null 2>&1 || cargo build --release --bins
photo="$(mktemp --suffix=.jpg)"
trap 'rm -f "$photo"' EXIT
target/release/bench_ingest gen "$photo" >/dev/null
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xuncha: $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($(git status --porcelain 2>/dev/null | wc -l) changed paths)"
python3 scripts/bench_upload.py "$PWD/target/release/xuncha" "$photo"
