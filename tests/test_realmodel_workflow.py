"""The workflow end to end on OpenAI's trained tiny.en and real speech: labels from the
converted openai-whisper checkpoint, calibration files that decode to the recordings'
transcripts, a quality report whose numbers say what INT8 costs on a model that
actually transcribes, and the runtime bundle (compiled by the qbcompiler test double)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from realmodel import build
from realmodel.fixtures import realmodel_dir  # noqa: F401

from conftest import snakemake

N_CALIBRATION, N_EVAL = 8, 6


@pytest.fixture(scope="module")
def real_run(realmodel_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("realmodel_run")
    cfg = yaml.safe_load((realmodel_dir / build.CONFIG).read_text())
    cfg["samples_per_language"] = N_CALIBRATION
    cfg["calibration"]["samples_per_job"] = N_CALIBRATION
    cfg["quality"].update(
        {"eval": {"split": build.EVAL_SPLIT, "samples_per_language": N_EVAL}, "max_new_tokens": 64, "latency_runs": 1}
    )
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    bundle = f"bundle/{build.MODEL_DIR}-mxq"
    snakemake(work, "labels", "calibration", "quality", bundle, "-j2", "--configfile", str(config), timeout=1800)
    return work


def _calibration_transcripts(realmodel_dir) -> list[str]:
    """Row r of the calibration split is sample en_us_{r:04d}."""
    catalogue = json.loads((realmodel_dir / build.CATALOGUE).read_text())["clips"]
    return [c["transcript"] for c in catalogue if c["split"] == build.CALIBRATION_SPLIT]


def _normalize(text: str) -> str:
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()(text)


@pytest.mark.slow
def test_calibration_tokens_decode_to_the_recordings(realmodel_dir, real_run):
    """qbcompiler's decoder calibration file carries each sample's token ids: on real
    speech they spell the recording's transcript (sample en_us_NNNN is row NNNN of the
    calibration split)."""
    import jiwer
    from transformers import WhisperTokenizerFast

    tok = WhisperTokenizerFast.from_pretrained(realmodel_dir / build.MODEL_DIR)
    transcripts = _calibration_transcripts(realmodel_dir)
    calib = json.loads((real_run / "calibration" / "decoder" / "whisper_decoder_calib.json").read_text())
    refs, hyps = [], []
    for entry, (decoder_states, _) in zip(calib["metadata"], calib["calib paths"], strict=True):
        row = int(Path(decoder_states).parent.name.rsplit("_", 1)[1])
        refs.append(_normalize(transcripts[row]))
        hyps.append(_normalize(tok.decode(entry["token_ids"], skip_special_tokens=True)))
    assert len(refs) == N_CALIBRATION
    assert sum(r == h for r, h in zip(refs, hyps)) >= N_CALIBRATION // 3  # word for word
    assert jiwer.wer(refs, hyps) < 0.3


@pytest.mark.slow
def test_quality_report_measures_a_model_that_transcribes(real_run):
    (report_path,) = (real_run / "reports").glob("*_quality.json")
    report = json.loads(report_path.read_text())
    overall = report["overall"]
    assert overall["clips"] == N_EVAL
    assert overall["wer_fp32"] < 0.35  # a random model: ~1
    recipe = report.get("recipe") or report.get("calibration", {}).get("recipe", "naive")
    if recipe == "default":  # 6 clips: one word is ~0.03 of WER
        assert overall["encoder_sqnr_db"] >= 20 and overall["wer_int8"] - overall["wer_fp32"] <= 0.1
    else:  # the naive per-tensor INT8 must show its damage, not hide it as a random model does
        assert overall["encoder_sqnr_db"] < 10 and overall["wer_int8"] > overall["wer_fp32"] + 0.1


@pytest.mark.slow
def test_labels_from_the_converted_openai_whisper_checkpoint(realmodel_dir, real_run):
    import jiwer

    labels = json.loads((real_run / "data" / "transcriptions.json").read_text())
    transcripts = _calibration_transcripts(realmodel_dir)
    rows = sorted(labels)
    assert len(rows) == N_CALIBRATION
    refs = [_normalize(transcripts[int(Path(r).stem.rsplit("_", 1)[1])]) for r in rows]
    assert jiwer.wer(refs, [_normalize(labels[r]) for r in rows]) < 0.2  # 0.08 measured on 25 clips


@pytest.mark.slow
def test_bundle_of_the_real_model(real_run):
    folder = real_run / "bundle" / f"{build.MODEL_DIR}-mxq"
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "mobilint-whisper" and config["vocab_size"] == 51864
    assert (folder / config["encoder_mxq_path"]).is_file() and (folder / config["decoder_mxq_path"]).is_file()
