#!/usr/bin/env bash
# Runs every test: unit tests, and the HTTP integration suite on SQLite and on PostgreSQL.
#
# PostgreSQL: the server in XUNCHA_TEST_DATABASE_URL (a URL to any database on it; each test
# creates its own database there and drops it after), else the local one on 127.0.0.1:5432
# when it answers. Without one, only the SQLite half runs, and this script says so loudly;
# with --require-postgres (or XUNCHA_TEST_REQUIRE_POSTGRES=1, as CI does) that is a failure.
#
# Extra arguments go to `cargo test` after `--` (e.g. a test name filter); without any, the
# API is then fuzzed against its spec (scripts/fuzz_api.sh; XUNCHA_FUZZ_SECS=0 skips that).
set -euo pipefail
cd "$(dirname "$0")/.."

# The build's Debian packages (a C compiler; cmake and nasm for libjpeg-turbo), if missing.
scripts/setup.sh

# The stock tus client the suite runs against the server (tuspy, from PyPI), in target/.
pytools="$PWD/target/pytools"
if ! PYTHONPATH="$pytools" python3 -c 'import tusclient' 2>/dev/null; then
  echo "== installing tuspy (the stock tus client the tests use) into target/pytools"
  python3 -m pip install --quiet --disable-pip-version-check --target "$pytools" 'tuspy==1.1.0'
fi
export XUNCHA_TEST_PYTHONPATH="$pytools"

require_pg="${XUNCHA_TEST_REQUIRE_POSTGRES:-0}"
if [ "${1:-}" = "--require-postgres" ]; then
  require_pg=1
  shift
fi

pg_answers() {
  if [ -n "${XUNCHA_TEST_DATABASE_URL:-}" ]; then
    if command -v pg_isready >/dev/null 2>&1; then
      pg_isready -q -d "$XUNCHA_TEST_DATABASE_URL"
    else
      return 0 # trust the caller's URL; the tests report a clear error if it is wrong
    fi
  elif command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p 5432
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

skip=()
if pg_answers; then
  export XUNCHA_TEST_DATABASE_URL="${XUNCHA_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  # Databases of this run share a prefix, so anything a crashed test left is dropped below.
  export XUNCHA_TEST_DB_PREFIX="xt_$$_$(date +%s)"
  cleanup() {
    command -v psql >/dev/null 2>&1 || return 0
    psql "$XUNCHA_TEST_DATABASE_URL" -Atqc \
      "SELECT datname FROM pg_database WHERE datname LIKE '${XUNCHA_TEST_DB_PREFIX}\_%'" 2>/dev/null |
      while read -r db; do
        [ -n "$db" ] && psql "$XUNCHA_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
      done
  }
  trap cleanup EXIT
  echo "scripts/test.sh: PostgreSQL at ${XUNCHA_TEST_DATABASE_URL%%\?*} — running both backends"
else
  if [ "$require_pg" = "1" ]; then
    echo "scripts/test.sh: PostgreSQL is required but does not answer" >&2
    exit 1
  fi
  skip=(--skip pg::)
  banner="!!! PostgreSQL NOT AVAILABLE: the PostgreSQL half of the test suite is SKIPPED. !!!"
  echo "$banner" >&2
  echo "!!! Start PostgreSQL on 127.0.0.1:5432 or set XUNCHA_TEST_DATABASE_URL to run it. !!!" >&2
fi

cargo test --locked --all-targets -- "${skip[@]}" "$@"

# Then schemathesis against the spec and a running server, for a bounded time per backend
# (XUNCHA_FUZZ_SECS, 120 by default; 0 skips it). Not when a test filter was given.
if [ $# -eq 0 ] && [ "${XUNCHA_FUZZ_SECS:-120}" != 0 ]; then
  if [ -n "${XUNCHA_TEST_DATABASE_URL:-}" ] && [ -z "${XUNCHA_FUZZ_PG_URL:-}" ]; then
    pg_server="${XUNCHA_TEST_DATABASE_URL%%\?*}"
    export XUNCHA_FUZZ_PG_URL="${pg_server%/*}"
  fi
  XUNCHA_FUZZ_REQUIRE_POSTGRES="$require_pg" scripts/fuzz_api.sh
fi

if [ ${#skip[@]} -gt 0 ]; then
  echo "$banner" >&2
fi
