#!/bin/bash
# The workflow's real `snakemake` on a GPU machine without network, 17 languages x 59
# clips (1003), whisper-small-shaped model and large-v3-shaped label model with random
# weights, 64-token decodes; plus the decoders' race and the label step's checks.
# From the project root, after tests/benchmarks/gpu_e2e/prepare.sh filled .gpu/:
#   bash tests/benchmarks/gpu_e2e/driver.sh PHASE...
# (prepare.sh also puts the committed tree in .gpu/main: run that copy's driver.sh with
# E2E_GPU=$PWD/.gpu to measure exactly a commit.)
# Phases (state in $E2E_ROOT, default /tmp/e2e, kept while the machine stays up):
#   install   the carried wheels -> $E2E_SITE
#   inputs    models and FLEURS-layout data (build_inputs.py)
#   decoders  decoding.Greedy vs transformers' static-cache generate (+ torch.compile),
#             each a calibrate job of 1000 clips in a process of its own (decoders.py)
#   one       snakemake on GPU 0: labels + calibration of the 1003 clips, timed from the
#             command to its end (the model snapshots made beforehand, untimed)
#   two       the same on two GPUs (--resources gpu=2)
#   labels    load, tutorial loop and agreement of the label step (labels_check.py)
#   startup   where a calibrate job's start goes, step by step (../startup.py)
#   summary   summarize.py over what ran -> $OUT
# E2E_MODE=tiny E2E_DEVICE=cpu: a CPU rehearsal with tiny shapes and 3 clips a language.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
ROOT=${E2E_ROOT:-/tmp/e2e}
MODE=${E2E_MODE:-full}
DEV=${E2E_DEVICE:-cuda}
PY=${E2E_PY:-python3}
SITE=${E2E_SITE:-/tmp/site}
OUT=${OUT:-$ROOT/out}
mkdir -p "$ROOT" "$OUT"
log() { echo "[$(date +%T)] $*" | tee -a "$ROOT/driver.log"; }
if [ "$MODE" = full ]; then CLIPS=59; TOK=64; TINY=; DEC_CLIPS=1000; else CLIPS=3; TOK=8; TINY=--tiny; DEC_CLIPS=8; fi
export PYTHONPATH=$SITE:$REPO/workflow HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
IN=$ROOT/inputs
GPUDIR=${E2E_GPU:-$REPO/.gpu}  # prepare.sh's wheels and processor

config() {  # the run's config: local stand-ins for the Hub model, large-v3 and FLEURS
  cat > "$1" <<YAML
model: $IN/whisper-small
fleurs: {source: $IN/fleurs, split: validation}
samples_per_language: $CLIPS
labels: {model: $IN/large-v3.pt, device: $DEV, max_tokens: $TOK}
calibration: {samples_per_job: auto, max_new_tokens: $TOK, device: $DEV}
YAML
}

smk_run() {  # NAME GPUS VISIBLE: snapshots first (untimed), then the timed run
  local name=$1 gpus=$2 visible=$3 dir=$ROOT/$1
  mkdir -p "$dir"; config "$dir/config.yaml"
  # targets before --configfile, which takes several values
  local base="$PY -m snakemake -s $REPO/Snakefile -d $dir/run" cfg="--configfile $dir/config.yaml"
  CUDA_VISIBLE_DEVICES=$visible $base -j4 models/whisper-small models/openai-whisper/large-v3.pt $cfg > "$dir/snapshots.out" 2>&1 \
    || { log "$name: snapshots failed"; tail -30 "$dir/snapshots.out"; return 1; }
  [ "$DEV" = cuda ] && { setsid nohup $PY "$HERE/gpu_monitor.py" "$dir/gpu.csv" 900 > /dev/null 2>&1 < /dev/null & }
  local cmd="$base data/transcriptions.json data/translations.json calibration -j16 --resources gpu=$gpus $cfg"
  echo "CUDA_VISIBLE_DEVICES=$visible $cmd" > "$dir/cmd"
  log "$name: $(cat "$dir/cmd")"
  local t0=$(date +%s.%N)
  CUDA_VISIBLE_DEVICES=$visible $cmd > "$dir/snakemake.out" 2>&1
  local rc=$?
  local t1=$(date +%s.%N)
  touch "$dir/gpu.csv.stop"
  echo "{\"rc\": $rc, \"wall_s\": $($PY -c "print($t1 - $t0)")}" > "$dir/wall.json"
  log "$name: rc=$rc wall $(cat "$dir/wall.json")"
  [ $rc = 0 ] || tail -40 "$dir/snakemake.out"
}

for phase in "$@"; do
  case $phase in
    install)
      [ -f "$SITE/.done" ] || $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$GPUDIR"/whl/*.whl && touch "$SITE/.done"
      { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; nproc; free -g | head -2
        $PY -c "import torch, transformers, snakemake; print('torch', torch.__version__, 'transformers', transformers.__version__, 'snakemake', snakemake.__version__, 'gpus', torch.cuda.device_count())"
      } > "$ROOT/machine.txt" 2>&1
      cat "$ROOT/machine.txt" ;;
    inputs)
      mkdir -p "$IN"
      $PY "$HERE/build_inputs.py" hf "$IN/whisper-small" --processor "$GPUDIR/processor" $TINY > "$ROOT/in_hf.log" 2>&1 &
      $PY "$HERE/build_inputs.py" ow "$IN/large-v3.pt" $TINY > "$ROOT/in_ow.log" 2>&1 &
      $PY "$HERE/build_inputs.py" fleurs "$IN/fleurs" --clips $CLIPS > "$ROOT/in_fleurs.log" 2>&1 &
      wait; cat "$ROOT"/in_*.log | tee -a "$ROOT/driver.log" ;;
    decoders)
      # clips of the `one` run if it ran, else a quick download of their own
      [ -d "$ROOT/one/run/data/audio_files" ] || { mkdir -p "$ROOT/dl"; config "$ROOT/dl/config.yaml"
        $PY -m snakemake -s "$REPO/Snakefile" -d "$ROOT/dl/run" -j8 data models/whisper-small \
          --configfile "$ROOT/dl/config.yaml" > "$ROOT/dl/out" 2>&1 || tail -20 "$ROOT/dl/out"; }
      CLIPDIR=$([ -d "$ROOT/one/run/data/audio_files" ] && echo "$ROOT/one/run" || echo "$ROOT/dl/run")
      CUDA_VISIBLE_DEVICES=0 $PY "$REPO/tests/benchmarks/decoders.py" --snapshot "$CLIPDIR/models/whisper-small" \
        --wavs-from "$CLIPDIR" --clips $DEC_CLIPS --tokens $TOK --device $DEV \
        --decoders greedy,static,static-compile,greedy --out "$ROOT/decoders.jsonl" 2>&1 | tee "$ROOT/decoders.out" ;;
    one) smk_run one 1 0 ;;
    two) smk_run two 2 0,1 ;;
    labels)
      CUDA_VISIBLE_DEVICES=0 $PY "$HERE/labels_check.py" --model "$IN/large-v3.pt" --wavs "$ROOT/one/run/data/audio_files" \
        --tokens $TOK --out "$ROOT/labels.json" > "$ROOT/labels.out" 2>&1; tail -25 "$ROOT/labels.out" ;;
    startup)
      CUDA_VISIBLE_DEVICES=0 $PY "$REPO/tests/benchmarks/startup.py" --model "$IN/whisper-small" --repeats 2 \
        > "$ROOT/startup.out" 2>&1; grep -E "^(in order|CUDA start)" "$ROOT/startup.out" ;;
    summary)
      $PY "$HERE/summarize.py" "$ROOT" > "$OUT/summary.txt" 2>&1; cat "$OUT/summary.txt"
      (cd "$ROOT" && tar czf "$OUT/e2e.tar.gz" --ignore-failed-read machine.txt driver.log decoders.jsonl decoders.out \
        labels.json labels.out startup.out summary.json one/cmd one/wall.json one/snakemake.out one/gpu.csv one/run/logs \
        one/run/benchmarks two/cmd two/wall.json two/snakemake.out two/gpu.csv two/run/logs two/run/benchmarks 2>/dev/null) ;;
    *) echo "unknown phase $phase"; exit 2 ;;
  esac
done
cp "$ROOT/driver.log" "$OUT/" 2>/dev/null; true
