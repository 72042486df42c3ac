#!/usr/bin/env bash
# The offline demo end to end, from nothing: installs everything (install.sh), builds a
# tiny Whisper, a tiny label model and FLEURS-layout speech (espeak-ng) locally, and runs
# the workflow on them in demo-run/ (or $DEMO_RUN): labels, calibration files, ONNX Runtime INT8 and the
# quality report; the .mxq compile and the runtime bundle too where qbcompiler is installed.
# No network beyond the package installs. The tiny model is random: the numbers mean
# nothing, the files, shapes and formats are the real ones.
set -euo pipefail
cd "$(dirname "$0")"
. ./install.sh
run=${DEMO_RUN:-demo-run}  # the run folder
targets=(labels calibration quality)
if python -c "import qbcompiler" 2>/dev/null; then
  targets+=(all bundle/whisper-tiny-random-mxq)
else
  echo "qbcompiler is not installed: the demo stops before the .mxq compile (docs/qbcompiler.md)"
fi
# targets before --configfile, which takes several values
snakemake -d "$run" "${targets[@]}" --configfile tests/config/offline.yaml
# Snakemake's HTML report of the finished run: the plots, each job's runtime, the DAG
snakemake -d "$run" quality --report "$run/report.html" --configfile tests/config/offline.yaml \
  >"$run/logs/report.log" 2>&1 || { cat "$run/logs/report.log"; exit 1; }
echo
python -m whisper_mxq.summary "$run" whisper-tiny-random --html "$run/report.html"
cat <<'NEXT'

The tiny model is random: its verdicts mean nothing, the files and formats are real.
Next, a real model (it needs the Hugging Face Hub and FLEURS; on a GPU host):
  snakemake -n compiled/whisper-small_decoder.mxq quality    # the plan, one line a job
  snakemake -j8 compiled/whisper-small_decoder.mxq quality   # the .mxq pair needs qbcompiler
NEXT
