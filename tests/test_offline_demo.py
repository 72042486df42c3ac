"""The offline demo end to end, checked against independent computations."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from conftest import OFFLINE, REPO, copy_run, offline_env, read_calls

pytestmark = pytest.mark.slow

CFG = yaml.safe_load(OFFLINE.read_text())
LANGS = CFG["languages"]
N = CFG["samples_per_language"]
SAMPLES = [f"{lang}_{i:04d}" for lang in LANGS for i in range(N)]
MODEL_DIR = CFG["model"]


@pytest.fixture(scope="module")
def model(demo_run):
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration.from_pretrained(
        demo_run / "models" / "whisper-tiny-random", local_files_only=True
    ).eval()


def test_audio_files_are_16k_mono_with_manifests(demo_run):
    """Every clip once, in list order, across the download jobs' manifests; each job
    continues its language at the source row where the one before stopped."""
    from whisper_mxq import data

    manifests = sorted((demo_run / "data/manifests").glob("[0-9][0-9][0-9].json"))
    clips = [s for m in manifests for s in data.manifest_samples(json.loads(m.read_text()))]
    assert [s["file"] for s in clips] == [f"{s}.wav" for s in SAMPLES]
    rows: dict[str, int] = {}
    for m in manifests:
        for lang, part in json.loads(m.read_text())["languages"].items():
            assert part["first_row"] == rows.get(lang, 0)
            rows[lang] = part["next_row"]
    for clip in clips:
        info = sf.info(demo_run / clip["wav"])
        assert (info.samplerate, info.channels) == (16000, 1)
        assert 0.5 < info.duration <= 30


def test_labels_cover_every_clip(demo_run):
    transcriptions = json.loads((demo_run / "data/transcriptions.json").read_text())
    translations = json.loads((demo_run / "data/translations.json").read_text())
    names = {f"{s}.wav" for s in SAMPLES}
    assert set(transcriptions) == names == set(translations)
    entry = translations["de_de_0000.wav"]
    assert entry["source_language_fleurs"] == "de_de"
    assert entry["source_language_whisper"] == "de"
    assert entry["target_language"] == "en"
    assert isinstance(entry["translation"], str)


def test_encoder_file_equals_feature_extractor_output(demo_run):
    """Recomputed from the WAV with the feature extractor of the source model folder."""
    import librosa
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor.from_pretrained(demo_run / MODEL_DIR)
    lines = (demo_run / "calibration/encoder/whisper_encoder_cali.txt").read_text().splitlines()
    assert lines == [str(demo_run / f"calibration/encoder/encoder_calib_{s}.npy") for s in SAMPLES]
    for sample in (SAMPLES[0], SAMPLES[-1]):
        wav, sr = librosa.load(demo_run / f"data/audio_files/{sample}.wav", sr=None)
        assert sr == 16000
        want = fe(wav, sampling_rate=16000, return_tensors="np").input_features  # [1, 80, 3000]
        got = np.load(demo_run / f"calibration/encoder/encoder_calib_{sample}.npy", allow_pickle=False)
        assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
        assert got.shape == (1, 3000, fe.feature_size)
        np.testing.assert_allclose(got, want.transpose(0, 2, 1), rtol=1e-5, atol=1e-5)


def test_decoder_states_equal_embedding_tables_and_encoder(demo_run, model):
    """decoder_hidden_states = token table[ids] + position table[0..T); encoder states =
    the model's own encoder on the features."""
    import torch
    from safetensors.numpy import load_file

    weights = load_file(demo_run / MODEL_DIR / "model.safetensors")
    tokens_table = weights["model.decoder.embed_tokens.weight"]
    positions_table = weights["model.decoder.embed_positions.weight"]
    calib = json.loads((demo_run / "calibration/decoder/whisper_decoder_calib.json").read_text())
    d = model.config.d_model
    assert calib["info"] == {
        "input names": ["decoder_hidden_states", "encoder_hidden_states"],
        "input shapes": [[1, -1, d], [1, model.config.max_source_positions, d]],
    }
    assert len(calib["calib paths"]) == len(calib["metadata"]) == len(SAMPLES)
    metadata_list = json.loads((demo_run / "calibration/decoder/whisper_decoder_calib_metadata.json").read_text())
    assert metadata_list == [m["decoded_tokens"] for m in calib["metadata"]]
    for (dec_path, enc_path), meta, sample in zip(calib["calib paths"], calib["metadata"], SAMPLES):
        assert os.path.isabs(dec_path) and os.path.isabs(enc_path)
        assert Path(dec_path).parent.name == f"sample_{sample}"
        ids = meta["token_ids"]
        dec = np.load(dec_path, allow_pickle=False)
        assert dec.shape == (1, len(ids), d) and dec.dtype == np.float32
        np.testing.assert_allclose(dec[0], tokens_table[ids] + positions_table[: len(ids)], rtol=1e-6, atol=1e-6)
        assert meta["task_type"] in ("transcription_with_lang", "translation_with_lang")
        assert meta["use_translation"] == (meta["task_type"] == "translation_with_lang")
    # the model's own encoder, on two samples (a forward costs seconds)
    for (_dec_path, enc_path), sample in list(zip(calib["calib paths"], SAMPLES))[:2]:
        feats = np.load(demo_run / f"calibration/encoder/encoder_calib_{sample}.npy")
        with torch.no_grad():
            want = model.model.encoder(torch.from_numpy(feats).transpose(1, 2)).last_hidden_state
        got = np.load(enc_path, allow_pickle=False)
        assert got.shape == (1, model.config.max_source_positions, d)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def test_token_sequences_have_prompt_text_and_end(demo_run):
    import whisper.tokenizer

    tok = whisper.tokenizer.get_tokenizer(multilingual=True)
    calib = json.loads((demo_run / "calibration/decoder/whisper_decoder_calib.json").read_text())
    for meta, sample in zip(calib["metadata"], SAMPLES):
        ids = meta["token_ids"]
        lang = meta["source_language"]
        task = "translate" if meta["use_translation"] else "transcribe"
        prompt = [tok.sot, tok.special_tokens[f"<|{lang}|>"], tok.special_tokens[f"<|{task}|>"], tok.no_timestamps]
        assert ids[:4] == prompt, sample
        assert ids[-1] == tok.eot and tok.eot not in ids[4:-1]
        assert all(t < tok.eot for t in ids[4:-1])
        assert meta["decoded_tokens"].startswith("<|startoftranscript|>")


def test_calibration_report_counts_every_language(demo_run):
    report = json.loads((demo_run / "calibration/report.json").read_text())
    assert report["samples"] == len(SAMPLES)
    assert set(report["languages"]) == set(LANGS)
    assert sum(report["task_types"].values()) == len(SAMPLES)


def test_compile_calls_qbcompiler_with_every_calibration_file(demo_run):
    calls = read_calls(demo_run / "qbcompiler_calls.jsonl")
    mblt = {c["target"]: c for c in calls if c["call"] == "mblt_compile"}
    mxq = {Path(c["save_path"]).name: c for c in calls if c["call"] == "mxq_compile"}
    assert mblt["encoder"]["backend"] == "torch" and mblt["decoder"]["backend"] == "hf"
    assert all(c["training"] is False and c["dtype"] == "torch.float32" for c in mblt.values())
    enc = next(c for name, c in mxq.items() if "encoder" in name)
    dec = next(c for name, c in mxq.items() if "decoder" in name)
    assert enc["inference_scheme"] == "global4" and enc["llm_config"] is None
    assert dec["llm_config"] == {"generation": "1.0", "apply": True, "use_full_seq_length": True}
    assert enc["calib_data_path"].endswith("calibration/encoder/whisper_encoder_cali.txt")
    assert dec["calib_data_path"].endswith("calibration/decoder/whisper_decoder_calib.json")
    assert len(enc["calibration_files"]) == len(SAMPLES)
    assert len(dec["calibration_files"]) == 2 * len(SAMPLES)
    for part in ("encoder", "decoder"):
        out = demo_run / f"compiled/whisper-tiny-random_{part}.mxq"
        assert out.read_bytes().startswith(b"QBCOMPILER-TEST-DOUBLE")
    # nothing half-written is left beside the outputs
    assert not list((demo_run / "compiled").glob(".*"))


def test_the_console_carries_no_empty_shell_commands(demo_run):
    """Every rule runs a script: "Shell command: None" once a job was noise only."""
    console = (demo_run / "console.txt").read_text()
    assert "Finished jobid" in console and "Shell command" not in console


def test_the_demo_console_stays_short(demo_run):
    """One line a job (its message), not every file it reads and writes."""
    console = (demo_run / "console.txt").read_text()
    assert len(console) < 55_000, f"{len(console)} characters"  # 62 kB before, labels to quality only
    assert "Job " in console and "calibrate_000: 2 clips (en_us 0-1)" in console


def test_demo_script_ends_with_verdicts_plots_html_and_next_command(demo_run, tmp_path):
    """demo.sh on a finished run (its jobs are done): the report's verdict per language
    and task, the three plots, Snakemake's HTML report made, the command to run next."""
    run = copy_run(demo_run, tmp_path / "demo-run")
    proc = subprocess.run(
        ["bash", str(REPO / "demo.sh")],
        env=offline_env(double=False, DEMO_RUN=str(run)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    report_path = run / "reports/whisper-tiny-random_quality.json"
    report = json.loads(report_path.read_text())
    tail = out[out.index(f"INT8 against FP32 on held-out clips ({report_path}):") :].splitlines()
    verdicts = [line for line in tail if re.fullmatch(r"  \w+: .*", line)]
    assert verdicts == [f"  {lang}: {e['verdict']}" for lang, e in sorted(report["languages"].items())] + [
        f"  overall: {report['overall']['verdict']}"
    ]
    de = report["languages"]["de_de"]["verdicts"]
    assert f"    translate: {de['translate']['verdict']} ({de['translate']['reason']})" in tail
    plots = [run / f"reports/whisper-tiny-random_quality_{kind}.png" for kind in ("wer", "agreement", "latency")]
    assert f"Plots: {', '.join(map(str, plots))}" in tail
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    html = run / "report.html"
    assert f"HTML report (plots, runtimes, the DAG): {html}" in tail
    assert b"<html" in html.read_bytes()[:5000].lower()
    assert "  snakemake -j8 compiled/whisper-small_decoder.mxq quality   # the .mxq pair needs qbcompiler" in tail
