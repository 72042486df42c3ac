"""The ONNX Runtime INT8 backend and the quality report: units, then the offline demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import OFFLINE, copy_run, snakemake

from whisper_mxq import atomic, onnx_int8, quality

CFG = yaml.safe_load(OFFLINE.read_text())
LANGS = CFG["languages"]
MODEL = "whisper-tiny-random"


# --- units ------------------------------------------------------------------------------
def test_sqnr_and_cosine():
    x = np.ones(100, dtype=np.float32)
    assert quality.sqnr_db(x, x * 1.1) == pytest.approx(20.0)  # noise 1/10 of signal
    assert quality.sqnr_db(x, x) == float("inf")
    assert quality.cosine(x, 3 * x) == pytest.approx(1.0)
    assert quality.cosine(x, -x) == pytest.approx(-1.0)


def test_greedy_stops_at_end_and_never_picks_special_tokens():
    eot = 10
    def logits(ids):  # favours a special token (11), then text token len(ids), then eot
        row = np.zeros((len(ids), 20))
        row[-1, 11] = 9
        row[-1, eot if len(ids) >= 4 else len(ids)] = 5
        return row
    assert quality.greedy(logits, [15, 16], eot, max_new=10, max_len=448) == [15, 16, 2, 3, eot]
    assert quality.greedy(logits, [15, 16], eot, max_new=1, max_len=448) == [15, 16, 2]
    assert quality.greedy(logits, [15, 16], eot, max_new=10, max_len=3) == [15, 16, 2]


def test_top1_agreement_compares_each_next_token():
    tokens = [50, 51, 1, 2, 3]
    logits = np.zeros((5, 60))
    for pos, nxt in enumerate([0, 1, 2, 7, 0]):  # position 3 predicts 7, FP32 chose 3
        logits[pos, nxt] = 1
    assert quality.top1_agreement(tokens, 2, logits, eot=40) == pytest.approx(2 / 3)


def test_sweep_sizes_are_powers_of_two_up_to_all():
    assert quality.sweep_sizes(24, None) == [1, 2, 4, 8, 16, 24]
    assert quality.sweep_sizes(16, None) == [1, 2, 4, 8, 16]
    assert quality.sweep_sizes(5, [1, 4, 99]) == [1, 4, 5]


def test_held_out_skips_every_calibrated_sentence():
    manifest = {"samples": [{"raw_transcription": "A b."}, {"raw_transcription": "C d."}]}
    rows = [{"raw_transcription": t} for t in ("A b.", "E f.", " C d.", "G h.")]
    assert [r["raw_transcription"] for r in quality.held_out(rows, manifest)] == ["E f.", "G h."]


def _fake_calibration(root: Path, samples: list[tuple[str, bool]], n_mels=4, frames=6, d=3):
    """Calibration files in the workflow's layout and formats, tiny shapes."""
    enc_paths, pairs, metadata = [], [], []
    for k, (sample, translate) in enumerate(samples):
        enc = root / f"calibration/encoder/encoder_calib_{sample}.npy"
        atomic.write_npy(enc, np.full((1, frames, n_mels), k, np.float32))
        folder = root / f"calibration/decoder/sample_{sample}"
        atomic.write_npy(folder / "encoder_hidden_states.npy", np.full((1, 5, d), k, np.float32))
        atomic.write_npy(folder / "decoder_hidden_states.npy", np.full((1, 2 + k, d), k, np.float32))
        enc_paths.append(str(enc))
        pairs.append([str(folder / "decoder_hidden_states.npy"), str(folder / "encoder_hidden_states.npy")])
        metadata.append({"use_translation": translate, "task_type": "x"})
    (root / "list.txt").write_text("".join(p + "\n" for p in enc_paths))
    info = {"input names": list(onnx_int8.DECODER_INPUTS), "input shapes": [[1, -1, d], [1, 5, d]]}
    atomic.write_json(root / "calib.json", {"info": info, "calib paths": pairs, "metadata": metadata})
    return root / "list.txt", root / "calib.json"


def test_readers_feed_the_calibration_formats_and_subsets(tmp_path):
    samples = [("de_de_0000", False), ("de_de_0001", True), ("de_de_0002", False),
               ("en_us_0000", False), ("en_us_0001", True)]
    txt, js = _fake_calibration(tmp_path, samples)
    enc = onnx_int8.encoder_reader(str(txt))
    feeds = [enc.get_next() for _ in range(enc.count)]
    assert enc.get_next() is None and enc.count == 5
    assert [f[onnx_int8.ENCODER_INPUT].shape for f in feeds] == [(1, 6, 4)] * 5  # NPU layout, as stored
    enc.rewind()
    assert float(enc.get_next()[onnx_int8.ENCODER_INPUT][0, 0, 0]) == 0
    dec = onnx_int8.decoder_reader(str(js), {"de_de_0001", "en_us_0000"})
    first = dec.get_next()
    assert dec.count == 2 and set(first) == set(onnx_int8.DECODER_INPUTS)
    assert first["decoder_hidden_states"].shape == (1, 3, 3)
    # round robin over languages; the transcribe mix leaves the translation samples out
    assert quality.sweep_subset(str(js), 3, "all") == ["de_de_0000", "en_us_0000", "de_de_0001"]
    assert quality.sweep_subset(str(js), 9, "transcribe") == ["de_de_0000", "en_us_0000", "de_de_0002"]
    with pytest.raises(ValueError, match="no calibration samples"):
        onnx_int8.encoder_reader(str(txt), {"fr_fr_0000"})


# --- the offline demo ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def quality_run(demo_run, tmp_path_factory) -> Path:
    """The finished demo, plus the quality report and the calibration-size sweep."""
    work = copy_run(demo_run, tmp_path_factory.mktemp("quality") / "run")
    snakemake(work, "-j2", "quality", "quality_sweep", "--configfile", str(OFFLINE))
    return work


@pytest.mark.slow
def test_onnx_targets_build_with_npu_shaped_inputs(quality_run):
    import onnx

    for part in ("encoder", "decoder"):
        fp32 = onnx.load(quality_run / f"compiled/{MODEL}_{part}.onnx")
        int8 = onnx.load(quality_run / f"compiled/{MODEL}_{part}.int8.onnx")
        onnx.checker.check_model(int8)
        ops = {n.op_type for n in int8.graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops, part
        assert not {"QuantizeLinear"} & {n.op_type for n in fp32.graph.node}
    enc = onnx.load(quality_run / f"compiled/{MODEL}_encoder.int8.onnx")
    dims = [d.dim_value for d in enc.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3000, 80]  # [1, frames, n_mels]: the .npy layout, the NPU's
    dec = onnx.load(quality_run / f"compiled/{MODEL}_decoder.int8.onnx")
    assert [i.name for i in dec.graph.input] == list(onnx_int8.DECODER_INPUTS)
    assert dec.graph.input[0].type.tensor_type.shape.dim[1].dim_param  # T is dynamic


@pytest.mark.slow
def test_report_has_every_field_for_every_language(quality_run):
    report = json.loads((quality_run / f"reports/{MODEL}_quality.json").read_text())
    assert "mean little" in report["note"]
    assert set(report["languages"]) == set(LANGS)
    for name, row in [*report["languages"].items(), ("overall", report["overall"])]:
        assert set(quality.METRICS) <= set(row), name
        assert all(isinstance(row[k], (int, float)) for k in quality.METRICS), name
    assert report["overall"]["clips"] == len(LANGS) * CFG["quality"]["eval"]["samples_per_language"]
    assert report["calibration"]["encoder_samples"] == len(LANGS) * CFG["samples_per_language"]
    assert report["latency"]["encoder_int8_onnx_ms"] > 0
    for key in ("wer", "agreement", "latency"):
        assert (quality_run / f"reports/{MODEL}_quality_{key}.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_eval_clips_are_held_out(quality_run):
    for lang in LANGS:
        calib = json.loads((quality_run / f"data/manifests/{lang}.json").read_text())
        held = json.loads((quality_run / f"data/eval_manifests/{lang}.json").read_text())
        used = {s["raw_transcription"] for s in calib["samples"]}
        assert held["samples"] and not used & {s["raw_transcription"] for s in held["samples"]}


@pytest.mark.slow
def test_sweep_covers_every_size_and_mix(quality_run):
    sweep = json.loads((quality_run / f"reports/{MODEL}_sweep.json").read_text())
    got = {(p["mix"], p["size"]) for p in sweep["points"]}
    assert got == {(m, s) for m in ("all", "transcribe") for s in (1, 24)}
    assert all(p["calibration_samples"] <= p["size"] for p in sweep["points"])
    assert (quality_run / f"reports/{MODEL}_sweep.png").exists()
    assert not list((quality_run / f"reports/sweep/{MODEL}").glob(".*"))  # no leftovers


@pytest.mark.slow
def test_snakemake_report_shows_the_plots(quality_run):
    snakemake(quality_run, "--report", "report.html", "quality", "--configfile", str(OFFLINE))
    html = (quality_run / "report.html").read_text(errors="replace")
    for key in ("wer", "agreement", "latency"):
        assert f"{MODEL}_quality_{key}.png" in html


@pytest.mark.slow
def test_constant_calibration_features_give_worse_encoder_sqnr(quality_run, tmp_path):
    """A broken calibration set (every feature one constant) must show in the metric."""
    real_list = quality_run / "calibration/encoder/whisper_encoder_cali.txt"
    entries = onnx_int8.encoder_calibration(str(real_list))
    level = float(np.mean([atomic.read_npy(p).mean() for _, p in entries]))
    lines = []
    for sample, path in entries:
        broken = tmp_path / f"calibration/encoder/encoder_calib_{sample}.npy"
        atomic.write_npy(broken, np.full_like(atomic.read_npy(path), level))
        lines.append(f"{broken}\n")
    (tmp_path / "broken.txt").write_text("".join(lines))
    fp32 = str(quality_run / f"compiled/{MODEL}_encoder.onnx")
    broken_onnx = str(tmp_path / "encoder.broken.int8.onnx")
    onnx_int8.quantize_part("encoder", fp32, str(tmp_path / "broken.txt"), broken_onnx, "minmax")

    reference = onnx_int8.session(fp32)
    held = [quality_run / f"data/eval_audio/{lang}_0000.wav" for lang in LANGS[:3]]
    from transformers import WhisperFeatureExtractor

    from whisper_mxq import audio, calibration

    fe = WhisperFeatureExtractor.from_pretrained(quality_run / f"models/{MODEL}")
    feats = [calibration.encoder_features(fe, audio.load(w)) for w in held]

    def sqnr(model: str) -> float:
        sess = onnx_int8.session(model)
        return float(np.mean([quality.sqnr_db(onnx_int8.run_encoder(reference, f),
                                              onnx_int8.run_encoder(sess, f)) for f in feats]))

    real = sqnr(str(quality_run / f"compiled/{MODEL}_encoder.int8.onnx"))
    broken = sqnr(broken_onnx)
    assert real > broken + 3, (real, broken)


@pytest.mark.slow
def test_fp32_onnx_pair_matches_pytorch_with_host_embeddings(quality_run):
    """The exported graphs are the model: encoder on [1, frames, n_mels], decoder on
    host-side token + position embeddings, for more than one sequence length."""
    import torch

    from whisper_mxq import calibration, models

    model = models.load_model(str(quality_run / f"models/{MODEL}"))
    enc = onnx_int8.session(str(quality_run / f"compiled/{MODEL}_encoder.onnx"))
    dec = onnx_int8.session(str(quality_run / f"compiled/{MODEL}_decoder.onnx"))
    feats = atomic.read_npy(quality_run / f"calibration/encoder/encoder_calib_{LANGS[0]}_0000.npy")
    with torch.no_grad():
        want = model.get_encoder()(torch.from_numpy(feats).transpose(1, 2)).last_hidden_state
    states = onnx_int8.run_encoder(enc, feats)
    np.testing.assert_allclose(states, want.numpy(), rtol=1e-4, atol=1e-4)
    for ids in ([50258], [50258, 50259, 50359, 50363, 400, 500, 600]):
        with torch.no_grad():
            logits = model(encoder_outputs=(want,), decoder_input_ids=torch.tensor([ids])).logits
        got = onnx_int8.run_decoder(dec, calibration.decoder_input(calibration.embedding_tables(model), ids), states)
        np.testing.assert_allclose(got, logits.numpy(), rtol=1e-3, atol=1e-3)
