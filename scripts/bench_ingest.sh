#!/usr/bin/env bash
# Photo-evidence ingest benchmark: our inspect + render beside libvips' vipsthumbnail. See --help.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench_ingest.sh [--help] [PHOTO.jpg]

Builds bench_ingest (release), generates a phone-like photo unless one is given (4000x3000,
quality 90, 4:2:0, EXIF with orientation 6: a phone held upright), then in each of BENCH_RUNS
rounds, interleaved so that a busy machine weighs on all of them alike:

  ours       one ingest in a fresh process: sniff + header limits + EXIF (inspect), then one
             DCT-scaled decode, 1280 px preview and 320 px thumbnail, oriented, JPEG-encoded
             (render). For each codec: libjpeg-turbo (default build) and pure Rust.
             Reported: time inside the process, the process's wall time, and its peak RSS
             (VmHWM, including the ~3 MB any process starts with).
  vips       `vipsthumbnail -s 320` (a 320 px thumbnail only; libvips decodes at 1/8 scale):
             the process's wall time, and its time per image inside a process (a batch of
             11 files minus a batch of 1: the start-up cost drops out).

Then, per codec, warm in-process medians (`bench_ingest loop`), and the ratios:
  in-process  ours (warm, in process) / vips per image in a batch
  process     ours (process wall) / vipsthumbnail (process wall)

Environment:
  BENCH_RUNS=7     rounds (medians are over these)
Needs: cargo, and vipsthumbnail (installed with apt-get as libvips-tools when missing);
the default build also needs cmake and nasm (scripts/setup.sh).
USAGE
}

photo=""
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  -*) echo "bench_ingest.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  *) photo="$1" ;;
esac

cd "$(dirname "$0")/.."
runs="${BENCH_RUNS:-7}"

if ! command -v vipsthumbnail >/dev/null 2>&1; then
  echo "bench_ingest.sh: installing libvips-tools for vipsthumbnail"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends libvips-tools
fi
scripts/setup.sh

cargo build --release -j1 --bin bench_ingest
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/bench_ingest"
work="$target/bench-ingest"
mkdir -p "$work/batch"
if [ -z "$photo" ]; then
  photo="$work/phone.jpg"
  [ -f "$photo" ] || "$bin" gen "$photo"
fi
echo "photo: $photo ($(stat -c %s "$photo") bytes)"

# Hard links under distinct names: libvips caches operations by file name.
rm -f "$work"/batch/*
for i in $(seq -w 1 11); do ln "$photo" "$work/batch/p$i.jpg" 2>/dev/null || cp "$photo" "$work/batch/p$i.jpg"; done

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
med() { echo "$1" | tr ' ' '\n' | grep -v '^$' | median; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
# Runs a command; prints its wall and CPU (user + system, all threads) milliseconds. Its
# standard output is kept in $work/last.out.
measure() {
  local TIMEFORMAT='%3R %3U %3S' t
  t=$( { time "$@" >"$work/last.out" 2>/dev/null; } 2>&1 )
  echo "$t" | tail -1 | awk '{printf "%.1f %.1f\n", $1 * 1000, ($2 + $3) * 1000}'
}

codecs="rust"
"$bin" once "$photo" turbo >/dev/null 2>&1 && codecs="turbo rust"

# Warm the page cache and both programs once.
for c in $codecs; do "$bin" once "$photo" "$c" >/dev/null; done
vipsthumbnail "$photo" -s 320 -o "$work/vips_%s.jpg"

declare -A wall cpu warm warm_cpu peak
for round in $(seq 1 "$runs"); do
  for c in $codecs; do
    read -r w u < <(measure "$bin" once "$photo" "$c")
    wall[$c]+="$w " cpu[$c]+="$u "
    peak[$c]+="$(field peak_kb <"$work/last.out") "
    read -r w u < <(measure "$bin" loop "$photo" 3 "$c")
    warm[$c]+="$(field median_ms <"$work/last.out") "
    warm_cpu[$c]+="$(awk -v u="$u" 'BEGIN {printf "%.1f", u / 3}') "
  done
  read -r w u < <(measure vipsthumbnail "$photo" -s 320 -o "$work/vips_%s.jpg")
  wall[vips]+="$w " cpu[vips]+="$u "
  read -r w1 u1 < <(measure vipsthumbnail "$work/batch/p01.jpg" -s 320 -o "$work/vips_%s.jpg")
  read -r w11 u11 < <(measure vipsthumbnail "$work"/batch/p*.jpg -s 320 -o "$work/vips_%s.jpg")
  warm[vips]+="$(awk -v a="$w1" -v b="$w11" 'BEGIN {printf "%.1f", (b - a) / 10}') "
  warm_cpu[vips]+="$(awk -v a="$u1" -v b="$u11" 'BEGIN {printf "%.1f", (b - a) / 10}') "
  echo "round $round/$runs done"
done

vips_peak=""
if [ -x /usr/bin/time ]; then
  vips_peak=$(/usr/bin/time -f %M vipsthumbnail "$photo" -s 320 -o "$work/vips_%s.jpg" 2>&1 >/dev/null | tail -1)
fi
mb() { awk -v k="$1" 'BEGIN {if (k == "") print "-"; else printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
row() { printf '%-20s %12s %12s %12s %12s %9s\n' "$@"; }

echo
echo "== medians of $runs rounds, milliseconds per image =="
row "" "in-proc wall" "in-proc CPU" "proc wall" "proc CPU" "peak MB"
row "vipsthumbnail 320" "$(med "${warm[vips]}")" "$(med "${warm_cpu[vips]}")" \
  "$(med "${wall[vips]}")" "$(med "${cpu[vips]}")" "$(mb "$vips_peak")"
summary=""
for c in $codecs; do
  row "ours ($c)" "$(med "${warm[$c]}")" "$(med "${warm_cpu[$c]}")" \
    "$(med "${wall[$c]}")" "$(med "${cpu[$c]}")" "$(mb "$(med "${peak[$c]}")")"
  summary+="ours ($c) / vips: in-process wall $(ratio "$(med "${warm[$c]}")" "$(med "${warm[vips]}")"),"
  summary+=" in-process CPU $(ratio "$(med "${warm_cpu[$c]}")" "$(med "${warm_cpu[vips]}")"),"
  summary+=" process wall $(ratio "$(med "${wall[$c]}")" "$(med "${wall[vips]}")")"$'\n'
done
echo
printf '%s' "$summary"
echo "(in-process: ours repeated in one process (median of 3; CPU: the process's / 3), vips per"
echo " image in a batch of 11 less a batch of 1; proc: one fresh process each, peak = VmHWM /"
echo " maxrss. ours = inspect + render: thumb and preview; vips = the thumbnail only.)"
