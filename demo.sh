#!/usr/bin/env bash
# The offline demo end to end, from nothing: installs everything (install.sh), builds a
# tiny Whisper, a tiny label model and FLEURS-layout speech (espeak-ng) locally, and runs
# the workflow on them in demo-run/: labels, calibration files, ONNX Runtime INT8 and the
# quality report; the .mxq compile and the runtime bundle too where qbcompiler is installed.
# No network beyond the package installs. The tiny model is random: the numbers mean
# nothing, the files, shapes and formats are the real ones.
set -euo pipefail
cd "$(dirname "$0")"
. ./install.sh
targets=(labels calibration quality)
if python -c "import qbcompiler" 2>/dev/null; then
  targets+=(all bundle/whisper-tiny-random-mxq)
else
  echo "qbcompiler is not installed: the demo stops before the .mxq compile (docs/qbcompiler.md)"
fi
# targets before --configfile, which takes several values
snakemake -d demo-run "${targets[@]}" --configfile tests/config/offline.yaml
echo "quality report: demo-run/reports/whisper-tiny-random_quality.json"
