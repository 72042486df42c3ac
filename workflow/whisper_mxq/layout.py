"""Every file name the workflow writes, in one place.

The names under data/, calibration/ and compiled/ are the tutorial's and are a
contract with qbcompiler and the NPU runtime: keep them. Paths are relative to the
working directory (Snakemake's ``-d``). Patterns use ``{name}`` fields so the same
string serves ``str.format`` here and wildcards in the rules.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

# --- samples -----------------------------------------------------------------
SAMPLE = "{lang}_{index:04d}"  # the tutorial's `{lang}_{i:04d}`


def sample_id(lang: str, index: int) -> str:
    return SAMPLE.format(lang=lang, index=index)


def sample_lang(sample: str) -> str:
    """FLEURS language of a sample id (`de_de_0003` -> `de_de`)."""
    return sample.rsplit("_", 1)[0]


# --- step 1: data ------------------------------------------------------------
AUDIO = "data/audio_files/{sample}.wav"
# Per language, the local source files its downloads read, by checksum (data.py):
# what makes its clips stale when the source changes. The held-out clips' source gets
# its own where it is another folder or split.
SOURCE_STAMP = "data/sources/{lang}.json"
# The offline demo's FLEURS-layout source: one shard a language (demo.py).
DEMO_SHARD = "{folder}/{lang}/{split}/0000.parquet"
EVAL_SOURCE_STAMP = "data/eval_sources/{lang}.json"
# One download job's clips: FLEURS ids, texts, durations, checksums, skipped clips.
MANIFEST = "data/manifests/{job}.json"
# A few bytes that stand for the job's clips and manifest (the manifest's checksum and
# where each language's source rows stop). Jobs that read the clips declare this as
# their input: Snakemake checksums every input for every output when a job ends, so
# naming each clip would make that bookkeeping quadratic in the samples.
DOWNLOAD_STAMP = "data/manifests/{job}.stamp.json"
LABELS = "data/labels/{job}.json"  # one label job's output
TRANSCRIPTIONS = "data/transcriptions.json"
TRANSLATIONS = "data/translations.json"

# --- step 2: calibration -----------------------------------------------------
ENCODER_NPY = "calibration/encoder/encoder_calib_{sample}.npy"
ENCODER_LIST = "calibration/encoder/whisper_encoder_cali.txt"
DECODER_SAMPLE_DIR = "calibration/decoder/sample_{sample}"
ENCODER_STATES_FILE = "encoder_hidden_states.npy"
DECODER_STATES_FILE = "decoder_hidden_states.npy"
DECODER_ENCODER_STATES = f"{DECODER_SAMPLE_DIR}/{ENCODER_STATES_FILE}"
DECODER_DECODER_STATES = f"{DECODER_SAMPLE_DIR}/{DECODER_STATES_FILE}"
# Ours: one calibrate job's samples with their task, token ids and text, in list order.
# The aggregate steps read these instead of thousands of per-sample files.
CALIBRATION_JOB = "calibration/jobs/{job}.json"
DECODER_JSON = "calibration/decoder/whisper_decoder_calib.json"
DECODER_METADATA = "calibration/decoder/whisper_decoder_calib_metadata.json"
CALIBRATION_REPORT = "calibration/report.json"

# --- step 3: compile ---------------------------------------------------------
QBCOMPILER_FOUND = "compiled/qbcompiler.json"  # the release the compile jobs found
MBLT = "compiled/{model}_{part}.mblt"
MXQ = "compiled/{model}_{part}.mxq"
PARTS = ("encoder", "decoder")

# --- models ------------------------------------------------------------------
MODEL_SNAPSHOT = "models/{model}"  # save_pretrained folder: weights + processor
LABEL_MODEL = "models/openai-whisper/{label_model}.pt"


def model_name(model: str) -> str:
    """`openai/whisper-small` or `/x/whisper-small/` -> `whisper-small`."""
    name = PurePosixPath(model.rstrip("/")).name
    if not name or name in (".", ".."):
        raise ValueError(f"config key 'model': cannot name a model after {model!r}")
    return name


def label_model_name(label_model: str) -> str:
    """`large-v3` -> `large-v3`; `path/to/tiny.pt` -> `tiny`."""
    name = PurePosixPath(label_model).name
    return name[: -len(".pt")] if name.endswith(".pt") else name


def inside_workdir(path: str, key: str) -> str:
    """Refuse an output path built from config or data that would leave the working
    directory (`../x`, `/x`). Inputs such as a local model folder may live anywhere."""
    norm = os.path.normpath(path)
    if os.path.isabs(path) or norm == ".." or norm.startswith(".." + os.sep):
        raise ValueError(f"{key}: path {path!r} leaves the working directory")
    return path


# --- step 4: bundle ----------------------------------------------------------
# The folder Mobilint's runtime loads. Inside it the .mxq files keep
# their compiled/ names, which config.json records; the other names are transformers'.
BUNDLE = "bundle/{model}-mxq"
BUNDLE_CONFIG = "config.json"
BUNDLE_EMBEDDINGS = "model.safetensors"


# --- quality: ONNX Runtime INT8 backend and report ---------------------------
ONNX = "compiled/{model}_{part}.onnx"  # float32 export, NPU-shaped inputs
ONNX_INT8 = "compiled/{model}_{part}.int8.onnx"
ONNX_INT8_PRECISION = "compiled/{model}_{part}.int8.json"  # which node got which precision
EVAL_AUDIO = "data/eval_audio/{sample}.wav"  # held out: never in the calibration set
EVAL_MANIFEST = "data/eval_manifests/{job}.json"
EVAL_STAMP = "data/eval_manifests/{job}.stamp.json"
EVAL_LABELS = "data/eval_labels/{job}.json"  # the label model's translations
# per language, which English reference translations are scored against (human where the
# source's en_us has the same sentence ids), and the human texts
EVAL_ENGLISH = "data/eval_english.json"
QUALITY_REFERENCE = "reports/quality/{model}_fp32.json"  # FP32 greedy tokens, computed once
QUALITY = "reports/{model}_quality.json"
QUALITY_PLOTS = {
    "wer": "reports/{model}_quality_wer.png",
    "agreement": "reports/{model}_quality_agreement.png",
    "latency": "reports/{model}_quality_latency.png",
}
SWEEP_POINT = "reports/sweep/{model}/{mix}_{size}.json"
SWEEP = "reports/{model}_sweep.json"
SWEEP_PLOT = "reports/{model}_sweep.png"
