#!/usr/bin/env bash
# Installs the Debian packages a build needs beyond the Rust toolchain: a C compiler (SQLite
# and libpq are compiled from source), and cmake and nasm, with which the default `turbojpeg`
# feature builds libjpeg-turbo (photo evidence). Installs only what is missing; run as root or
# with sudo. Building with `--no-default-features` needs neither cmake nor nasm.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v nasm >/dev/null 2>&1 || need+=(nasm)
# The tests run a stock tus client from PyPI (scripts/test.sh installs it with pip).
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "setup.sh: installing ${need[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
