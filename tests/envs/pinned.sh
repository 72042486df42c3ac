#!/usr/bin/env bash
# A virtualenv of the tutorial's pinned model stack, built from envs/*.yaml:
#   tests/envs/pinned.sh <venv-dir>
# Every pip requirement of envs/calibration.yaml, data.yaml and quality.yaml (snapshot,
# labels, calibration, quality), with two departures, both for a CPU-only box:
# - torch 2.13.0 (CPU wheel) instead of the pinned 2.7.1, whose PyPI build is the CUDA
#   one (GBs of wheels a CPU can't use). transformers keeps its pin, 4.50.0, the version
#   qbcompiler 1.0.1 needs and the one this stack exists to prove.
# - openai-whisper without triton (1 GB of GPU kernels, never imported on a CPU).
# Plus snakemake and pytest to drive the workflow. Idempotent: a stamp in the venv
# records what it was built from; a rerun with nothing changed does nothing.
set -euo pipefail
venv=${1:?usage: tests/envs/pinned.sh <venv-dir>}
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-python3}

# The requirements, read from the env files, so a changed pin changes this venv.
reqs=$("$python" - "$repo" <<'PY'
import pathlib, sys
import yaml
repo = pathlib.Path(sys.argv[1])
seen = []
for name in ("calibration", "data", "quality"):
    env = yaml.safe_load((repo / "envs" / f"{name}.yaml").read_text())
    for dep in env["dependencies"]:
        for req in dep.get("pip", []) if isinstance(dep, dict) else []:
            req = "torch==2.13.0" if req.replace(" ", "").startswith("torch==") else req
            if req not in seen:
                seen.append(req)
print("\n".join(seen + ["snakemake>=9,<10", "pytest"]))
PY
)
want=$( { "$python" --version 2>&1; echo "$reqs"; cat "$0"; } | sha256sum | cut -d' ' -f1)
stamp="$venv/.pinned-stack"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "pinned stack up to date in $venv"
  exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --no-compile)
mapfile -t main < <(echo "$reqs" | grep -v '^openai-whisper')
whisper=$(echo "$reqs" | grep '^openai-whisper' || true)
"${pip[@]}" "${main[@]}"
if [ -n "$whisper" ]; then
  "${pip[@]}" numba more-itertools tiktoken tqdm  # its requirements but triton
  "${pip[@]}" --no-deps "$whisper"
fi
if ! check=$("$venv/bin/python" -m pip check 2>&1); then
  if echo "$check" | grep -v 'requires triton' | grep .; then exit 1; fi
fi
echo "$want" > "$stamp"
"$venv/bin/python" -c 'import torch, transformers; print("pinned stack in", __import__("sys").prefix, "- torch", torch.__version__, "transformers", transformers.__version__)'
