#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (the sync cursor decoder, the tus header parsers, the
# registry CSV importer) for a bounded time each, from the seed corpus in fuzz/corpus.
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECS (default 60) seconds each
#   scripts/fuzz.sh csv_import      # one target
#
# Only a stable toolchain is assumed: the targets are built without a sanitizer (Rust's own
# checks still catch overflows and out-of-bounds access, which panic) and RUSTC_BOOTSTRAP
# lets cargo-fuzz pass its coverage flags. A crash is saved under fuzz/artifacts/<target>/
# and the script fails.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${FUZZ_SECS:-60}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(cursor_decode tus_headers csv_import)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version 0.13.2
fi

export RUSTC_BOOTSTRAP=1
cargo fuzz build --sanitizer none -O
for t in "${targets[@]}"; do
  # New inputs go to a scratch corpus (the first directory); the committed seeds stay as
  # they are.
  work="target/corpus-work/$t"
  mkdir -p "$work" "artifacts/$t"
  echo "== $t: ${secs}s" >&2
  cargo fuzz run --sanitizer none -O "$t" "$work" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -seed="${FUZZ_SEED:-1}" 2>&1 |
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==|SUMMARY|thread '|.*panicked)" >&2
  test "${PIPESTATUS[0]}" -eq 0
done
echo "scripts/fuzz.sh: no crash in ${targets[*]} (${secs}s each)" >&2
