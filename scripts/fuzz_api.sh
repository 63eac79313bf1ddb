#!/usr/bin/env bash
# Fuzzes the running API against api-spec/openapi.yaml with schemathesis (from PyPI), within a
# bounded time: on SQLite, then on PostgreSQL when one answers on 127.0.0.1:5432.
#
# Each backend gets a fresh database (SQLite in a temporary directory; a PostgreSQL database
# this script creates and drops) filled with a small demo city, a `xuncha serve` on a free
# port, and users of two districts made through the API: a manager and an inspector of each
# (schemathesis logs in as them itself, and again when it logs itself out). Then
# `schemathesis run` with every phase (examples, coverage, fuzzing, stateful: the spec's
# `links`), a fixed seed and a time budget, and these checks on every response:
# not_a_server_error, status_code_conformance, content_type_conformance,
# response_schema_conformance, response_headers_conformance, ignored_auth,
# object_level_authorization (the managers of the two districts must not see each other's
# objects), use_after_free, ensure_resource_availability, negative_data_rejection,
# missing_required_header, unsupported_method, allow_header_conformance. Exits 1 on any
# failure on either backend (both run); the reports (JUnit, JSON, NDJSON), the server's log
# and the settings used are in target/fuzz-results/<backend>/.
#
# How it drives schemathesis, and the few narrow exceptions to its checks (each with its
# reason): scripts/fuzz/harness.py, scripts/fuzz/hooks.py, scripts/fuzz/schemathesis.toml.
#
# Usage: scripts/fuzz_api.sh [--require-postgres] [--release] [-- more `schemathesis run` args]
#   --require-postgres   fail when PostgreSQL does not answer (also XUNCHA_FUZZ_REQUIRE_POSTGRES=1)
#   --release            fuzz the release build (default: the debug build `scripts/test.sh` leaves)
# Environment:
#   XUNCHA_FUZZ_SECS          schemathesis time budget per backend, seconds (default 120)
#   XUNCHA_FUZZ_SEED          the seed (default 20251126)
#   XUNCHA_FUZZ_MAX_EXAMPLES  test cases per operation and pass (default 50)
#   XUNCHA_FUZZ_WORKERS       concurrent schemathesis workers (default 1: with more, Python 3.11
#                             sometimes fails inside hypothesis, "AST constructor recursion
#                             depth mismatch", a CPython bug of ast.parse in threads)
#   XUNCHA_FUZZ_BACKENDS      which backends, e.g. `postgres` (default `sqlite postgres`)
#   XUNCHA_FUZZ_PG_URL        the PostgreSQL server, without a database name
#                             (default postgres://postgres@127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"

require_pg="${XUNCHA_FUZZ_REQUIRE_POSTGRES:-0}"
profile=debug
while [ $# -gt 0 ]; do
  case "$1" in
    --require-postgres) require_pg=1; shift ;;
    --release) profile=release; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz_api.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

secs="${XUNCHA_FUZZ_SECS:-120}"
seed="${XUNCHA_FUZZ_SEED:-20251126}"
max_examples="${XUNCHA_FUZZ_MAX_EXAMPLES:-50}"
workers="${XUNCHA_FUZZ_WORKERS:-1}"
backends="${XUNCHA_FUZZ_BACKENDS:-sqlite postgres}"
pg_url="${XUNCHA_FUZZ_PG_URL:-postgres://postgres@127.0.0.1:5432}"
pg_url="${pg_url%/}"
results="$PWD/target/fuzz-results"

# The build's Debian packages (a C compiler; cmake and nasm for libjpeg-turbo), if missing.
scripts/setup.sh

# schemathesis, pinned, in its own directory of target/ (as scripts/test.sh does for tuspy).
tools="$PWD/target/fuzztools"
if ! PYTHONPATH="$tools" python3 -c "import sys, schemathesis; sys.exit(schemathesis.__version__ != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into target/fuzztools"
  rm -rf "$tools"
  python3 -m pip install --quiet --disable-pip-version-check --target "$tools" "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ "$profile" = release ]; then
  cargo build --locked --release --bin xuncha
else
  cargo build --locked --bin xuncha
fi
bin="$PWD/target/$profile/xuncha"

pg_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$pg_url/postgres"
  else
    local hostport="${pg_url##*@}"
    hostport="${hostport#postgres://}"
    (exec 3<>"/dev/tcp/${hostport%%:*}/${hostport##*:}") 2>/dev/null
  fi
}

failed=()
skipped=""
started=$(date +%s)
for backend in $backends; do
  if [ "$backend" = postgres ] && ! pg_answers; then
    if [ "$require_pg" = 1 ]; then
      echo "fuzz_api.sh: PostgreSQL is required but does not answer at $pg_url" >&2
      failed+=(postgres)
      continue
    fi
    skipped="!!! PostgreSQL NOT AVAILABLE at $pg_url: the PostgreSQL half of the fuzzing is SKIPPED. !!!"
    echo "$skipped" >&2
    continue
  fi
  out="$results/$backend"
  rm -rf "$out"
  mkdir -p "$out"
  echo "== fuzzing the API on $backend for ${secs}s (reports in target/fuzz-results/$backend)"
  if ! PYTHONPATH="$tools" python3 scripts/fuzz/harness.py --bin "$bin" --backend "$backend" \
      --pg-url "$pg_url" --out "$out" --max-time "$secs" --seed "$seed" \
      --max-examples "$max_examples" --workers "$workers" -- "$@"; then
    failed+=("$backend")
  fi
done

echo "== fuzzing took $(($(date +%s) - started))s"
if [ -n "$skipped" ]; then
  echo "$skipped" >&2
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz_api.sh: FAILED on ${failed[*]} (see target/fuzz-results/)" >&2
  exit 1
fi
echo "fuzz_api.sh: no failures"
