#!/bin/bash
# On a machine with PyPI, from the project's root: fill .gpu/ (git-ignored) with what the
# GPU machine (no network) lacks: wheels of the packages its stock PyTorch image does not
# have, and the multilingual processor the models are built with. Then, on the GPU
# machine, from the same root with .gpu carried along:
#   bash tests/benchmarks/gpu_e2e/driver.sh install inputs one two
set -eu
rm -rf .gpu/whl .gpu/processor .gpu/main; mkdir -p .gpu/whl .gpu/main
git archive HEAD | tar -x -C .gpu/main  # the commit measured, apart from work in progress
git rev-parse HEAD > .gpu/main/COMMIT
P="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_35_x86_64"
for p in annotated-types==0.8.0 argparse-dataclass==2.0.0 cffi==2.1.1 conda-inject==1.3.2 configargparse==1.9.0 \
  datasets==5.2.0 dill==0.4.1 docutils==0.22.4 dpath==2.2.0 fastjsonschema==2.22.3 gitdb==4.0.12 gitpython==3.2.1 \
  greenlet==3.5.6 humanfriendly==10.0 immutables==0.21 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
  jupyter-core==5.9.1 more-itertools==11.2.1 multiprocess==0.70.19 nbformat==5.11.1 platformdirs==4.14.8 pulp==3.3.2 \
  pycparser==3.12 pydantic==2.14.4 pydantic-core==2.50.5 referencing==0.37.0 rpds-py==2026.9.1 smart-open==7.7.1 \
  smmap==5.0.3 snakemake==9.27.1 snakemake-interface-common==1.23.0 snakemake-interface-executor-plugins==9.4.0 \
  snakemake-interface-logger-plugins==2.1.0 snakemake-interface-report-plugins==1.3.0 \
  snakemake-interface-scheduler-plugins==2.0.2 snakemake-interface-storage-plugins==4.4.1 soundfile==0.14.0 \
  sqlalchemy==2.0.58 sqlmodel==0.0.37 tenacity==9.2.1 throttler==1.2.3 traitlets==5.16.1 typing-inspection==0.4.5 yte==1.9.4; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $P -d .gpu/whl $p
done
# sdist-only packages: build their (pure Python) wheels here
python3 -m pip wheel -q --no-deps -w .gpu/whl connection-pool==0.0.3 openai-whisper==20250625
python3 - <<'PY'
import sys
sys.path.insert(0, "workflow")
from transformers import WhisperFeatureExtractor, WhisperProcessor
from whisper_mxq import demo

tok = demo.build_tokenizer()
WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok).save_pretrained(".gpu/processor")
demo._generation_config(tok, english_only=False).save_pretrained(".gpu/processor")
PY
du -sh .gpu
