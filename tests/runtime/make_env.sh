#!/usr/bin/env bash
# The runtime environment of tests/test_runtime_bundle.py and tests/test_npu.py: Mobilint's
# own client from PyPI (transformers-mblt on mobilint-qb-runtime), in a venv of its own,
# as it needs transformers >= 4.54, < 5.18 and the workflow runs a newer one.
#
#   tests/runtime/make_env.sh [VENV_DIR]     (default: ~/.cache/whisper-mxq/runtime-venv)
#
# Idempotent: a venv holding exactly these pins is left as it is.
set -euo pipefail

VENV="${1:-${WHISPER_MXQ_RUNTIME_VENV:-$HOME/.cache/whisper-mxq/runtime-venv}}"
PYTHON="${PYTHON:-python}"
TORCH="torch==2.13.0"  # where pip is pointed at the CPU wheel, that one
PINS=(transformers==4.57.1 mobilint-qb-runtime==1.5.0 mblt-npu-python==0.1.0)
CLIENT="transformers-mblt==0.6.1"
STAMP="$VENV/.whisper-mxq-runtime"
WANT="$TORCH ${PINS[*]} $CLIENT"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "runtime env up to date: $VENV"
  exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "$TORCH"
"$VENV/bin/python" -m pip install -q "${PINS[@]}"
# transformers-mblt's other requirements (torchvision, opencv, matplotlib, the serving
# extras, mblt-tracker) serve its other models and tools; its Whisper path imports none.
"$VENV/bin/python" -m pip install -q --no-deps "$CLIENT"
"$VENV/bin/python" -c "import qbruntime, mblt_npu, transformers_mblt.models.whisper.modeling_whisper"
echo "$WANT" > "$STAMP"
echo "runtime env ready: $VENV"
