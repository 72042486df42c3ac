#!/usr/bin/env bash
# Everything the workflow needs, on a Debian or Ubuntu machine with Python 3.10+:
# espeak-ng (the offline demo's speech) from apt, then the Python packages into .venv
# (or into the environment already active). Sourced by demo.sh and .ci/run; on its own:
#   bash install.sh && . .venv/bin/activate
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
if ! command -v espeak-ng >/dev/null || ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq espeak-ng python3-venv >/dev/null
fi
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  . .venv/bin/activate
fi
# torch first: the workflow runs on any torch >= 2.1; 2.13.0 is the one tested (a CPU-only
# machine may want the CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[quality,test]"
