#!/usr/bin/env bash
# What calibration.pack_languages costs, side by side on the offline demo's models
# (6 languages x 4 clips, 12 clips a job): the full run to `calibration`, then one row of
# de_de's shard changed and the rerun, with each choice. Run from the repository root in
# its venv; work folder as the argument (default /tmp/pack_languages).
#   bash tests/benchmarks/pack_languages.sh [/tmp/pack_languages]
set -euo pipefail
repo=$(pwd)
work=${1:-/tmp/pack_languages}
mkdir -p "$work" && cd "$work"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=$repo/workflow
sm() { python -m snakemake -s "$repo/Snakefile" "$@"; }
offline=$repo/tests/config/offline.yaml
[ -f base/demo/openai-whisper-tiny-random.pt ] || sm -d base labels calibration -j2 --configfile "$offline" >base.log 2>&1
jobs() { awk '/^Job stats:/{f=1; next} f && /^total/{exit} f && NR>0 && $2 ~ /^[0-9]+$/ {printf "%s ", $1}' "$1"; }
for pack in true false; do
  w=run_$pack
  rm -rf "$w" && mkdir -p "$w/demo"
  cp -r base/demo/whisper-tiny-random base/demo/openai-whisper-tiny-random.pt "$w/demo/"
  cp -r base/demo/fleurs "$w/my_fleurs"
  printf "fleurs: {source: my_fleurs, split: validation}\nsamples_per_language: 4\ncalibration: {samples_per_job: 12, pack_languages: %s}\n" "$pack" >"$w/c.yaml"
  t0=$(date +%s.%N); sm -d "$w" calibration -j2 --configfile "$offline" "$w/c.yaml" >"$w/full.log" 2>&1; t1=$(date +%s.%N)
  echo "pack_languages=$pack full run: $(echo "$t1 - $t0" | bc) s; jobs: $(jobs "$w/full.log")"
  python - "$w/my_fleurs/de_de/validation/0000.parquet" <<'PY'
import sys
import pyarrow as pa
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
texts = t.column("transcription").to_pylist()
texts[0] += " (corrected)"
pq.write_table(t.set_column(t.schema.get_field_index("transcription"), "transcription", pa.array(texts)), sys.argv[1])
PY
  t0=$(date +%s.%N); sm -d "$w" calibration -j2 --configfile "$offline" "$w/c.yaml" >"$w/rerun.log" 2>&1; t1=$(date +%s.%N)
  echo "pack_languages=$pack rerun after one de_de row: $(echo "$t1 - $t0" | bc) s; jobs: $(jobs "$w/rerun.log")"
done
